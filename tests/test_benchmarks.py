"""The speed benchmarks: refused devices, and a measurement kept as a speed row."""

import json

import pytest
import torch
from conftest import benchmark_module


def test_throughput_refuses_a_device_it_cannot_run_on_in_one_line(capsys):
    throughput = benchmark_module("throughput")
    bad = ["gpu"] + ([] if torch.cuda.is_available() else ["cuda"])  # cuda is refused only where there is none
    for device in bad:
        with pytest.raises(SystemExit) as exit_info:
            throughput.main(["--quick", "--device", device])
        assert exit_info.value.code == 2
        captured = capsys.readouterr()
        err = captured.err.strip()
        assert err.startswith("error: ") and device in err and "\n" not in err
        assert captured.out == ""  # refused before any timing, nothing printed as if it had run


def test_amp_records_a_speed_row_that_the_speed_page_renders(tmp_path, monkeypatch, capsys):
    import vit_tutorial.speed as speed

    amp = benchmark_module("amp")
    monkeypatch.setattr(speed, "SPEED", tmp_path)
    monkeypatch.setattr(amp, "record", lambda *a, **k: speed.record(*a, **k, root=tmp_path))
    assert amp.main(["--reps", "1", "--steps", "1", "--batch-size", "4", "--models", "mnist-sample/vit",
                     "--record"]) == 0
    (path,) = tmp_path.glob("amp-*.json")
    row = json.loads(path.read_text())
    assert row["schema"] == speed.SCHEMA and row["machine"]["threads"] == torch.get_num_threads()
    assert [r["model"] for r in row["rows"]] == ["mnist-sample/vit"] and row["rows"][0]["float32"] > 0
    monkeypatch.setattr(speed, "speed_rows", lambda benchmark=None, root=tmp_path: [row])
    table = speed.speed_table({"benchmark": "amp"})
    assert "| mnist-sample/vit | 139,018 |" in table and row["machine"]["cpu"] in table


def test_the_books_timings_are_recorded_as_a_speed_row(tmp_path, monkeypatch, capsys):
    import vit_tutorial.speed as speed

    written = []
    real = speed.record
    monkeypatch.setattr(speed, "record", lambda *a, **k: written.append(real(*a, **k, root=tmp_path)) or written[-1])
    assert speed.main(["book", "400", "01_patching=9", "13_small_data=30"]) == 0
    row = json.loads(written[0].read_text())
    assert row["benchmark"] == "book" and row["settings"]["total_seconds"] == 400
    assert [r["notebook"] for r in row["rows"]] == ["01_patching", "13_small_data"]
    assert "| 13_small_data | 30 |" in speed.book_table(row)
    assert speed.main(["nonsense"]) == 2


def test_the_flops_of_a_training_image_are_three_forward_passes_of_two_per_multiply_add():
    """Counted by torch's flop counter on our model, they equal the count from the configuration (notebook 10)."""
    throughput = benchmark_module("throughput")
    for patch in (7, 4):
        model = throughput.build_ours(patch)
        N, T, P, D, M = (28 // patch) ** 2, (28 // patch) ** 2 + 1, patch, throughput.WIDTH, throughput.MLP_DIM
        per_block = T * D * 3 * D + 2 * T * T * D + T * D * D + 2 * T * D * M  # qkv; QK^T and AV; output; MLP
        macs = N * P * P * 1 * D + throughput.DEPTH * per_block + D * throughput.NUM_CLASSES
        assert throughput.train_flops(model, torch.device("cpu")) == 3 * 2 * macs
    peak = throughput.matmul_peak(torch.device("cpu"), torch.float32, n=256, reps=2)
    assert peak > 1e8  # a matrix product of 256 x 256 runs at more than 0.1 GFLOP/s on any machine

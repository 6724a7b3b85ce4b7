"""benchmarks/accuracy.py: exploring a recipe on the validation split, then scoring the chosen run's test split once."""

import json

import pytest
import torch
from conftest import REPO, benchmark_module

accuracy = benchmark_module("accuracy")


def test_set_parses_numbers_tuples_and_words():
    assert list(accuracy.config_changes(["depth=8", "pool=mean", "stem_strides=(1, 2)", "mlp_ratio=2.5"])) == [
        ("depth", 8), ("pool", "mean"), ("stem_strides", (1, 2)), ("mlp_ratio", 2.5)]


def test_no_test_then_resume_scores_the_same_run(tmp_path, capsys):
    run, first, second = tmp_path / "run", tmp_path / "first.json", tmp_path / "second.json"
    common = ["--dataset", "mnist", "--data-root", str(tmp_path / "data"), "--epochs", "1", "--threads", "1",
              "--lr", "3e-3", "--set", "pool=mean", "--set", "depth=1", "--out", str(run)]
    assert accuracy.main([*common, "--no-test", "--json", str(first)]) == 0
    out = capsys.readouterr().out
    assert "val accuracy" in out and "test accuracy" not in out
    explored = json.loads(first.read_text())
    assert "test_accuracy" not in explored
    assert explored["changes"] == {"pool": "mean", "depth": 1} and explored["recipe"]["lr"] == 3e-3
    assert explored["parameters"] < 139_018  # one block instead of the mnist preset's four
    # the same command again, without --resume: refused in one line, the finished run untouched
    before = (run / "checkpoint.pt").read_bytes()
    assert accuracy.main([*common, "--no-test"]) == 2
    err = capsys.readouterr().err.strip()
    assert "already holds a checkpoint.pt" in err and "--resume" in err and "\n" not in err
    assert (run / "checkpoint.pt").read_bytes() == before
    # the chosen run's test split, scored without training again: same weights, same validation accuracy
    assert accuracy.main([*common, "--resume", "--json", str(second)]) == 0
    scored = json.loads(second.read_text())
    assert "test accuracy" in capsys.readouterr().out
    assert scored["val_accuracy"] == explored["val_accuracy"]
    assert 0 <= scored["test_accuracy"] <= 1 and scored["test_images"] == 500
    assert scored["training_seconds"] == pytest.approx(explored["training_seconds"])


@pytest.mark.parametrize("change, words", [
    ("pool", "--set needs FIELD=VALUE"),
    ("pol=mean", "the mnist preset has no field pol;"),
    ("pool=max", "pool must be 'cls' or 'mean'"),
])
def test_a_bad_change_is_one_line_and_exit_2(change, words, tmp_path, capsys):
    code = accuracy.main(["--dataset", "mnist", "--data-root", str(tmp_path), "--set", change,
                          "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and words in err and "\n" not in err
    assert not (tmp_path / "run").exists()


def test_a_teacher_is_read_from_a_checkpoint_of_the_same_dataset(tmp_path, capsys):
    common = ["--dataset", "mnist", "--data-root", str(tmp_path / "data"), "--epochs", "1", "--threads", "1",
              "--set", "depth=1", "--no-test"]
    result = tmp_path / "taught.json"
    teacher = str(REPO / "checkpoints" / "mnist-cnn.pt")
    assert accuracy.main([*common, "--teacher", teacher, "--distill", "soft", "--distill-weight", "0.9",
                          "--out", str(tmp_path / "taught"), "--json", str(result)]) == 0
    assert "mnist-cnn.pt (soft distillation)" in capsys.readouterr().out
    taught = json.loads(result.read_text())
    assert taught["teacher"] == teacher
    assert (taught["recipe"]["distill"], taught["recipe"]["distill_weight"]) == ("soft", 0.9)
    for path, words in ((REPO / "checkpoints" / "fashion-mnist-cnn.pt", "was trained on fashion-mnist, not mnist"),
                        (tmp_path / "missing.pt", "checkpoint not found")):
        code = accuracy.main([*common, "--teacher", str(path), "--out", str(tmp_path / "refused")])
        err = capsys.readouterr().err.strip()
        assert code == 2 and words in err and "\n" not in err
    assert not (tmp_path / "refused").exists()


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

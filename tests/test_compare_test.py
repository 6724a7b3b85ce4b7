"""benchmarks/compare_test.py: several checkpoints on the same images, each with its interval, pairs by McNemar."""

import json

import torch
from conftest import benchmark_module

from vit_tutorial import ViT, evaluate, preset, save_checkpoint

compare = benchmark_module("compare_test")


def test_two_runs_named_checkpoint_pt_are_both_scored_and_compared(tmp_path, mnist_sample, capsys):
    paths, models = [], []
    for seed in (0, 1):  # two untrained models that answer differently
        torch.manual_seed(seed)
        models.append(ViT(preset("tiny")).eval())
        paths.append(tmp_path / f"run{seed}" / "checkpoint.pt")
        paths[-1].parent.mkdir()
        save_checkpoint(paths[-1], models[-1])
    out = tmp_path / "scores.json"
    assert compare.main(["--dataset", "mnist", "--data-root", str(tmp_path / "data"), "--split", "val",
                         "--json", str(out), *map(str, paths)]) == 0
    scores = json.loads(out.read_text())
    assert [r["model"] for r in scores["results"]] == [str(p) for p in paths]  # not one "checkpoint" for both
    for r, model in zip(scores["results"], models):
        assert r["accuracy"] == evaluate(model, mnist_sample.val, device="cpu").accuracy
        assert r["interval95"][0] <= r["accuracy"] <= r["interval95"][1] and r["images"] == 500
    (pair,) = scores["pairs"]
    assert (pair["a"], pair["b"]) == (str(paths[0]), str(paths[1]))
    assert "McNemar" in capsys.readouterr().out


def test_a_missing_checkpoint_is_one_line_before_any_scoring(tmp_path, capsys):
    good = tmp_path / "good.pt"
    save_checkpoint(good, ViT(preset("tiny")))
    code = compare.main(["--dataset", "mnist", "--data-root", str(tmp_path / "data"), str(good),
                         str(tmp_path / "missing.pt")])
    captured = capsys.readouterr()
    assert code == 2 and captured.err.startswith("error: checkpoint not found") and captured.err.count("\n") == 1
    assert "accuracy" not in captured.out

"""benchmarks/compare_test.py: several checkpoints on the same images, each with its interval, pairs by McNemar."""

import json

import pytest
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


def test_a_shipped_result_is_paired_with_checkpoints_without_running_it(tmp_path, mnist_sample, capsys):
    """A model shipped as its per-image test results takes part like a checkpoint (same accuracy, same pairs)."""
    from vit_tutorial.scaling import score

    torch.manual_seed(0)
    model = ViT(preset("tiny")).eval()
    ckpt = tmp_path / "model.pt"
    save_checkpoint(ckpt, model)
    row = tmp_path / "shipped.json"
    row.write_text(json.dumps({"dataset": "mnist", **score(model, mnist_sample.test)}))
    out = tmp_path / "scores.json"
    args = ["--dataset", "mnist", "--data-root", str(tmp_path / "data"), "--json", str(out)]
    assert compare.main([*args, str(ckpt), str(row)]) == 0
    scores = json.loads(out.read_text())
    ran, shipped = scores["results"]
    assert shipped["model"] == "shipped" and shipped["images"] == 500
    assert abs(shipped["accuracy"] - ran["accuracy"]) < 1e-6 and shipped["interval95"] == ran["interval95"]
    (pair,) = scores["pairs"]
    assert pair["a_only"] == pair["b_only"] == 0  # the same answers, image by image
    assert "(shipped result)" in capsys.readouterr().out


@pytest.mark.parametrize("case, message", [
    ("other-dataset", "was scored on fashion-mnist, not mnist"),
    ("val-split", "holds test results only"),
    ("wrong-length", "holds results for 3 images, not the 500"),
    ("not-a-result", "is not a shipped result"),
    ("a-list", "is not a shipped result"),
])
def test_a_shipped_result_that_does_not_fit_is_one_line(tmp_path, mnist_sample, capsys, case, message):
    row = {"dataset": "fashion-mnist" if case == "other-dataset" else "mnist",
           "correct": "101" if case == "wrong-length" else "1" * 500}
    path = tmp_path / "shipped.json"
    if case == "a-list":  # booleans in a list, not the shipped string of 0s and 1s: refused, not read as all wrong
        row["correct"] = [True] * 500
    path.write_text("[1, 2]" if case == "not-a-result" else json.dumps(row))
    split = ["--split", "val"] if case == "val-split" else []
    code = compare.main(["--dataset", "mnist", "--data-root", str(tmp_path / "data"), *split, str(path)])
    captured = capsys.readouterr()
    assert code == 2 and captured.err.startswith("error: ") and message in captured.err
    assert captured.err.count("\n") == 1 and "accuracy" not in captured.out


def test_a_checkpoint_of_another_dataset_is_refused_not_scored(tmp_path, mnist_sample, capsys):
    """Clothes and digits are both 28 x 28 in 10 classes: without the check the score would be silently wrong."""
    path = tmp_path / "clothes.pt"
    save_checkpoint(path, ViT(preset("tiny")), dataset={"name": "fashion-mnist", "image_shape": [1, 28, 28]})
    code = compare.main(["--dataset", "mnist", "--data-root", str(tmp_path / "data"), str(path)])
    captured = capsys.readouterr()
    assert code == 2 and "was trained on fashion-mnist, not mnist" in captured.err
    assert captured.err.count("\n") == 1 and "accuracy" not in captured.out

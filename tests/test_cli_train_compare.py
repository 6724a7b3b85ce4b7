"""The command line made the shipped models: train --model with changes, the test split on request, compare, and
every shipped checkpoint's recorded command, run as written (in quick mode)."""

import json
import shlex

import pytest
import torch

from vit_tutorial import ViT, evaluate, preset, registry, save_checkpoint
from vit_tutorial.checkpoint import config_from_payload, read_checkpoint
from vit_tutorial.cli import main
from vit_tutorial.registry import ids
from vit_tutorial.results import read_row
from vit_tutorial.runner import checkpoint_path

TINY = ["--set", "embed_dim=32", "--set", "depth=1", "--set", "num_heads=2"]


def one_line_error(rc, err, words):
    assert rc == 2 and err.startswith("error: ") and err.count("\n") == 1 and words in err, err


def test_explore_on_validation_then_read_the_test_split_of_the_same_run(tmp_path, capsys):
    run, first = tmp_path / "run", tmp_path / "first.json"
    common = ["train", "--model", "mnist-sample/vit", *TINY, "--epochs", "1", "--lr", "3e-3", "--set", "pool=mean",
              "--data-root", str(tmp_path / "data"), "--out", str(run), "--no-progress", "--threads", "1"]
    assert main([*common, "--json", str(first)]) == 0
    out = capsys.readouterr().out
    assert "validation accuracy" in out and "test accuracy" not in out
    explored = json.loads(first.read_text())
    assert explored["test"] is None and explored["changes"]["pool"] == "mean" and explored["recipe"]["lr"] == 3e-3
    assert explored["parameters"] < 139_018 and explored["command"].startswith("python -m vit_tutorial train")
    before = (run / "checkpoint.pt").read_bytes()
    assert main(common) == 2  # the same command again, without --resume: refused, the finished run untouched
    assert "already holds a checkpoint.pt" in capsys.readouterr().err
    assert (run / "checkpoint.pt").read_bytes() == before
    assert main([*common, "--resume", "--read-test"]) == 0  # the chosen run's test split, without training again
    assert "test accuracy" in capsys.readouterr().out
    scored = read_row(run / "row.json")
    assert scored["val"] == explored["val"] and scored["test"]["images"] == 500 and scored["key"] == explored["key"]


@pytest.mark.parametrize("argv, words", [
    (["--set", "pool"], "--set needs KEY=VALUE"),
    (["--set", "pol=mean"], "has no setting pol"),
    (["--set", "pool=max"], "pool must be 'cls' or 'mean'"),
    (["--preset", "fashion-mnist-plain"], "--preset is retired: use --model fashion-mnist/vit"),
    (["--preset", "tiny"], "'tiny' is a size, not a model"),
    (["--model", "mnist"], "is retired; it is now mnist/vit"),
    (["--model", "mnist/vit", "--offline"], "offline, the 5,000-digit sample is the dataset mnist-sample"),
    (["--model", "mnist-sample/vit", "--dataset", "fashion-mnist"], "trains on mnist-sample, not --dataset"),
    (["--model", "mnist-sample/vit", "--threads", "0"], "--threads must be at least 1"),
    (["--dataset", "svhn"], "unknown dataset 'svhn'"),
])
def test_a_bad_training_request_is_one_line_and_writes_nothing(argv, words, tmp_path, capsys):
    rc = main(["train", *argv, "--out", str(tmp_path / "run"), "--data-root", str(tmp_path / "data")])
    one_line_error(rc, capsys.readouterr().err, words)
    assert not (tmp_path / "run").exists()


def test_a_teacher_is_read_from_a_checkpoint_or_an_id_of_the_same_data(tmp_path, capsys):
    common = ["train", "--model", "mnist-sample/vit", *TINY, "--epochs", "1", "--data-root", str(tmp_path / "data"),
              "--no-progress", "--threads", "1"]
    teacher = str(checkpoint_path("mnist-sample/cnn"))
    assert main([*common, "--teacher", teacher, "--distill", "soft", "--distill-weight", "0.9",
                 "--out", str(tmp_path / "taught")]) == 0
    assert "(soft distillation)" in capsys.readouterr().out
    row = read_row(tmp_path / "taught" / "row.json")
    assert row["recipe"]["teacher"] == teacher and row["recipe"]["distill_weight"] == 0.9
    for path, words in ((checkpoint_path("fashion-mnist/cnn"), "was trained on fashion-mnist, not mnist-sample"),
                        (tmp_path / "missing.pt", "checkpoint not found")):
        rc = main([*common, "--teacher", str(path), "--out", str(tmp_path / "refused")])
        one_line_error(rc, capsys.readouterr().err, words)
    assert not (tmp_path / "refused").exists()


@pytest.mark.parametrize("model_id", [m for m in ids() if checkpoint_path(m).is_file()])
def test_every_shipped_checkpoints_command_runs_as_written(model_id, tmp_path, capsys):
    """The recorded command trains the shipped model (here in quick mode: its model and recipe, in two epochs)."""
    payload = read_checkpoint(checkpoint_path(model_id))
    words = shlex.split(payload["command"])
    assert words[:5] == ["python", "-m", "vit_tutorial", "train", "--model"] and words[5] == model_id
    argv = words[3:]
    argv[argv.index("--out") + 1] = str(tmp_path / "run")
    assert main([*argv, "--quick", "--no-progress", "--threads", "1"]) == 0
    row = read_row(tmp_path / "run" / "row.json")
    assert row["model"] == model_id and row["config"] == registry.config(model_id).to_dict()
    assert config_from_payload(payload) == registry.config(model_id)  # the shipped weights are of that model
    settings = json.loads(payload["train_settings"])
    assert all(row["recipe"][k] == settings[k] for k in ("batch_size", "lr", "weight_decay", "label_smoothing"))
    assert ("distill" in settings) == ("teacher" in row["recipe"])
    capsys.readouterr()


def test_compare_pairs_checkpoints_and_shipped_rows_on_the_same_images(tmp_path, mnist_sample, capsys):
    paths, models = [], []
    for seed in (0, 1):  # two untrained models that answer differently
        torch.manual_seed(seed)
        models.append(ViT(preset("tiny")).eval())
        paths.append(tmp_path / f"run{seed}" / "checkpoint.pt")
        paths[-1].parent.mkdir()
        save_checkpoint(paths[-1], models[-1], dataset={"name": "mnist-sample", "image_shape": [1, 28, 28]})
    out = tmp_path / "scores.json"
    assert main(["compare", "--split", "val", "--json", str(out), "--data-root", str(tmp_path / "data"),
                 *map(str, paths)]) == 0
    scores = json.loads(out.read_text())
    assert [r["model"] for r in scores["results"]] == [str(p) for p in paths]
    for r, model in zip(scores["results"], models):
        assert r["correct"] == evaluate(model, mnist_sample.val, device="cpu").correct and r["images"] == 500
    (pair,) = scores["pairs"]
    assert pair["low"] <= pair["difference"] <= pair["high"]
    assert "exact McNemar p" in capsys.readouterr().out
    # shipped models by id: the checkpoints where they ship, the rows of those that ship as rows
    assert main(["compare", "fashion-mnist/cnn", "fashion-mnist/hybrid-lsa+kd", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "(shipped row)" in printed and "10,000 images" in printed


@pytest.mark.parametrize("argv, words", [
    (["mnist-sample/vit"], "at least two models"),
    (["mnist-sample/vit", "mnist-sample/vit"], "named twice"),
    (["mnist-sample/vit", "fashion-mnist/cnn"], "compare models of one dataset"),
    (["mnist-sample/vit", "MISSING.pt"], "checkpoint not found"),
    (["mnist-sample/vit", "mnist-sample/vit+kd"], "ships neither a checkpoint nor a row"),
])
def test_a_bad_comparison_is_one_line(argv, words, tmp_path, capsys):
    argv = [str(tmp_path / a) if a.endswith(".pt") else a for a in argv]
    rc = main(["compare", *argv, "--data-root", str(tmp_path / "data")])
    captured = capsys.readouterr()
    one_line_error(rc, captured.err, words)
    assert "accuracy" not in captured.out

"""The one runner: a spec in, a row out; rows kept and read back; folds and teachers that never see what is scored."""

import json

import pytest
import torch

import vit_tutorial.runner as runner
from vit_tutorial import VitTutorialError, build_model, fit, set_seed
from vit_tutorial.data import stratified_sample
from vit_tutorial.evaluation import evaluate
from vit_tutorial.results import check_row, correct_of, read_row, write_row
from vit_tutorial.runner import RunSpec, cross_validate, run

SMALL = {"depth": 1, "embed_dim": 32, "num_heads": 2, "epochs": 1}  # a model and recipe that train in a second


def test_a_spec_checks_its_model_and_changes_before_any_work():
    with pytest.raises(VitTutorialError, match="retired"):
        RunSpec("mnist")
    with pytest.raises(VitTutorialError, match="has no setting dept"):
        RunSpec("mnist-sample/vit", {"dept": 2})
    with pytest.raises(VitTutorialError, match="pool must be"):
        RunSpec("mnist-sample/vit", {"pool": "max"})
    with pytest.raises(VitTutorialError, match="never reads the test split"):
        RunSpec("mnist-sample/vit", cv=(3, 0, 0), read_test=True)
    with pytest.raises(VitTutorialError, match="fold in 0..folds-1"):
        RunSpec("mnist-sample/vit", cv=(3, 3, 0))
    spec = RunSpec("mnist-sample/vit", {"depth": 2, "lr": 1e-3})
    assert spec.config().depth == 2 and spec.recipe()["lr"] == 1e-3 and spec.recipe()["epochs"] == 160


def test_the_key_changes_with_everything_the_result_depends_on():
    base = RunSpec("mnist-sample/vit", SMALL)
    key = base.key()
    assert RunSpec("mnist-sample/vit", dict(SMALL)).key() == key
    assert RunSpec("mnist-sample/vit", SMALL, read_test=True).key() == key  # reading the test split is not a new run
    others = [RunSpec("mnist-sample/vit", {**SMALL, "lr": 1e-3}), RunSpec("mnist-sample/vit", SMALL, seed=1),
              RunSpec("mnist-sample/vit", SMALL, train_size=500), RunSpec("mnist-sample/vit", SMALL, quick=True),
              RunSpec("mnist-sample/vit", SMALL, cv=(3, 0, 0)), RunSpec("mnist/vit", SMALL),
              RunSpec("mnist-sample/vit", {**SMALL, "depth": 2})]
    assert len({o.key() for o in others} | {key}) == len(others) + 1
    # the epochs of the recipe given as a change are the recipe itself: the same run
    assert RunSpec("mnist-sample/vit", {"epochs": 160}).key() == RunSpec("mnist-sample/vit").key()


def test_a_run_is_kept_as_its_row_and_read_back(tmp_path, mnist_sample, monkeypatch):
    spec = RunSpec("mnist-sample/vit", SMALL, train_size=300, seed=1)
    row = run(spec, cache=tmp_path, splits=mnist_sample)
    path = spec.path(tmp_path)
    assert path.is_file() and read_row(path) == row
    assert row["model"] == "mnist-sample/vit" and row["data"]["train"] == 300
    assert row["data"]["dataset"] == "mnist-sample"
    assert row["val"]["images"] == 500 and len(row["val"]["bits"]) == 500 and row["test"] is None
    assert row["recipe"]["epochs"] == 1 and row["config"]["depth"] == 1 and row["seed"] == 1
    assert row["machine"]["threads"] >= 1 and row["command"].startswith("python -m vit_tutorial train --model")
    assert row["val"]["low"] <= row["val"]["accuracy"] <= row["val"]["high"]

    def no_training(*args, **kwargs):
        raise AssertionError("trained again")

    monkeypatch.setattr(runner, "train", no_training)
    assert run(spec, cache=tmp_path, splits=mnist_sample) == row
    with pytest.raises(AssertionError, match="trained again"):  # the test split was not read: that is a new request
        run(RunSpec("mnist-sample/vit", SMALL, train_size=300, seed=1, read_test=True), cache=tmp_path,
            splits=mnist_sample)


def test_a_damaged_row_is_trained_again_with_a_note(tmp_path, mnist_sample, capsys):
    spec = RunSpec("mnist-sample/vit", SMALL, train_size=100)
    row = run(spec, cache=tmp_path, splits=mnist_sample)
    spec.path(tmp_path).write_text("{not json")
    again = run(spec, cache=tmp_path, splits=mnist_sample)
    assert "running it again" in capsys.readouterr().out
    assert again["val"]["bits"] == row["val"]["bits"]  # the same run, on the same machine: the same answers


def test_the_runner_trains_as_fit_does_from_the_same_seed(mnist_sample):
    """A subset run: the class-balanced subset and the initial weights drawn from the seed, then fit."""
    spec = RunSpec("mnist-sample/hybrid", {"epochs": 1}, train_size=200, seed=2, read_test=True)
    row = run(spec, cache=None, splits=mnist_sample)
    train = stratified_sample(mnist_sample.train, 200, 2)
    set_seed(2)
    model = build_model(spec.config())
    fit(model, train, None, **spec.recipe(), seed=2, progress=False, verbose=False)
    ev = evaluate(model, mnist_sample.test, device="cpu")
    assert row["test"]["bits"] == "".join("1" if c else "0" for c in (ev.predictions == ev.labels).tolist())


def test_a_cross_validation_scores_every_pooled_image_once_and_never_the_test_split(tmp_path, mnist_sample):
    result = cross_validate(RunSpec("mnist-sample/vit", SMALL), 3, cache=tmp_path, splits=mnist_sample)
    rows = result["rows"]
    assert [r["data"]["cv"]["fold"] for r in rows] == [0, 1, 2] and all(r["test"] is None for r in rows)
    assert sum(r["val"]["images"] for r in rows) == len(result["correct"]) == 4500
    assert int(result["correct"].sum()) == sum(r["val"]["correct"] for r in rows)
    assert [r["seed"] for r in rows] == [0, 1, 2]
    pool, folds = runner.cv_pool(mnist_sample, 3)
    assert all(len(set(a) & set(b)) == 0 for a, b in folds)
    assert sorted(i for _, held in folds for i in held) == list(range(4500))


def test_a_teacher_is_trained_on_the_folds_training_images_only(tmp_path, mnist_sample, monkeypatch):
    """In a cross-validation the teacher (the dataset's CNN) is trained per fold; the shipped one has seen it all."""
    monkeypatch.setattr(runner, "RUNS", tmp_path / "runs")
    calls = []
    real = runner.train

    def spy(spec, **kwargs):
        calls.append((spec.model, spec.cv, spec.seed))
        return real(spec, **kwargs)

    monkeypatch.setattr(runner, "train", spy)
    monkeypatch.setitem(runner.registry.MODELS, "mnist-sample/cnn", runner.registry.ModelSpec(
        "mnist-sample/cnn", runner.registry.get("mnist-sample/cnn").config.replace(channels=(8, 8, 8)),
        dict(runner.registry.get("mnist-sample/cnn").recipe, epochs=1)))
    row = run(RunSpec("mnist-sample/vit+kd", SMALL, cv=(2, 1, 0), seed=1), cache=tmp_path, splits=mnist_sample)
    assert ("mnist-sample/cnn", (2, 1, 0), 1) in calls  # the teacher: the same fold and seed
    assert row["recipe"]["teacher"] == "mnist-sample/cnn" and row["recipe"]["distill"] == "soft"
    assert list((tmp_path / "runs" / "teachers" / "mnist-sample" / "cnn").glob("cv2-1-seed1-*/checkpoint.pt"))


def test_rows_are_checked_when_read(tmp_path, mnist_sample):
    row = run(RunSpec("mnist-sample/vit", SMALL, train_size=100), cache=None, splits=mnist_sample)
    bad = dict(row, val=dict(row["val"], correct=row["val"]["correct"] + 1))
    with pytest.raises(VitTutorialError, match="answers do not match"):
        check_row(bad)
    with pytest.raises(VitTutorialError, match="not a result row"):
        check_row({"schema": "something else"})
    write_row(tmp_path / "r.json", row)
    assert json.loads((tmp_path / "r.json").read_text()) == row
    assert torch.equal(correct_of(row["val"]), torch.tensor([c == "1" for c in row["val"]["bits"]]))
    with pytest.raises(VitTutorialError, match="result not found"):
        read_row(tmp_path / "missing.json")

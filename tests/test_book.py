"""The book's models: the shipped checkpoint, a finished run, or a new training, in that order; rows read back."""

import shutil

import pytest
import torch
from conftest import REPO

import vit_tutorial.book as book
import vit_tutorial.runner as runner
from vit_tutorial.results import RESULTS


@pytest.fixture
def private_runs(tmp_path, monkeypatch):
    """Runs and checkpoints in a folder of the test's own: nothing of the clone's is read or written."""
    monkeypatch.setattr(book, "RUNS", tmp_path / "runs")
    monkeypatch.setattr(runner, "RUNS", tmp_path / "runs")
    monkeypatch.setattr(runner, "CHECKPOINTS", tmp_path / "checkpoints")
    monkeypatch.delenv("VIT_TUTORIAL_QUICK", raising=False)
    monkeypatch.delenv("VIT_TUTORIAL_RETRAIN", raising=False)
    return tmp_path


def no_training(*args, **kwargs):
    raise AssertionError("trained again")


def test_a_finished_run_is_reused_even_when_retraining_is_asked_for(private_runs, monkeypatch, mnist_sample):
    """Under VIT_TUTORIAL_RETRAIN=1 the first notebook trains a model and the later ones reuse it."""
    monkeypatch.setenv("VIT_TUTORIAL_QUICK", "1")
    monkeypatch.setenv("VIT_TUTORIAL_RETRAIN", "1")
    model, history = book.load("mnist-sample/vit", mnist_sample, progress=False)
    assert (private_runs / "runs" / "quick" / "mnist-sample" / "vit" / "checkpoint.pt").is_file()
    assert len(history) == 2 and book.LOADED_FROM["mnist-sample/vit"].name == "checkpoint.pt"
    monkeypatch.setattr("vit_tutorial.training.train_epoch", no_training)
    again, history2 = book.load("mnist-sample/vit", mnist_sample, progress=False)
    assert history2.to_dict() == history.to_dict()  # fit resumed a finished run: no epoch trained
    for a, b in zip(model.state_dict().values(), again.state_dict().values()):
        assert torch.equal(a, b)


def test_importing_the_module_creates_no_folder_and_images_is_created_on_use(tmp_path, monkeypatch):
    monkeypatch.setattr(book, "RUNS", tmp_path / "runs")
    monkeypatch.setenv("VIT_TUTORIAL_QUICK", "1")
    assert not (tmp_path / "runs").exists()
    from vit_tutorial.book import IMAGES

    assert IMAGES == tmp_path / "runs" / "images-quick" and IMAGES.is_dir()
    with pytest.raises(AttributeError):
        book.NOT_A_NAME  # noqa: B018


def test_the_shipped_model_is_loaded_in_full_mode_and_not_trained(private_runs, monkeypatch, mnist_sample):
    shipped = runner.checkpoint_path("mnist-sample/cnn", REPO / "checkpoints")
    target = runner.checkpoint_path("mnist-sample/cnn", private_runs / "checkpoints")
    target.parent.mkdir(parents=True)
    shutil.copy(shipped, target)
    monkeypatch.setattr(runner, "train", no_training)
    monkeypatch.setattr(book, "train", no_training)
    model, history = book.load("mnist-sample/cnn", mnist_sample, progress=False)
    assert book.LOADED_FROM["mnist-sample/cnn"] == target and len(history) == runner.registry.recipe(
        "mnist-sample/cnn")["epochs"]


def test_a_shipped_model_of_another_recipe_or_model_is_not_taken_for_this_one(private_runs, capsys):
    """After a change to a model or recipe in the registry, the shipped checkpoint no longer stands for the model."""
    from vit_tutorial import registry
    from vit_tutorial.checkpoint import read_checkpoint

    payload = read_checkpoint(runner.checkpoint_path("mnist-sample/cnn", REPO / "checkpoints"))
    assert runner.shipped_differences(payload, "mnist-sample/cnn") == []
    assert "epochs 60 (the recipe: 15)" in runner.shipped_differences(payload, "mnist/cnn")
    assert runner.shipped_differences(payload, "mnist-sample/vit")[0] == "another model than mnist-sample/vit"
    assert "no teacher" in runner.shipped_differences(payload, "mnist-sample/hybrid+kd")
    target = runner.checkpoint_path("mnist-sample/hybrid", private_runs / "checkpoints")
    target.parent.mkdir(parents=True)
    shutil.copy(runner.checkpoint_path("mnist-sample/cnn", REPO / "checkpoints"), target)  # the wrong model
    assert runner.load_shipped("mnist-sample/hybrid", private_runs / "checkpoints") is None
    assert "is not taken for mnist-sample/hybrid" in capsys.readouterr().out
    assert registry.get("mnist-sample/hybrid").recipe["epochs"] == 60


def test_snapshots_end_with_the_shipped_model_stored_once(private_runs, monkeypatch):
    """The last snapshot is the shipped model itself: not stored twice, but still one of the snapshots."""
    from vit_tutorial.checkpoint import read_checkpoint

    monkeypatch.setattr(runner, "CHECKPOINTS", REPO / "checkpoints")
    monkeypatch.setattr(book, "checkpoint_path", lambda m: runner.checkpoint_path(m, REPO / "checkpoints"))
    final_path = runner.checkpoint_path("mnist-sample/vit", REPO / "checkpoints")
    pack = read_checkpoint(final_path.with_name("vit-snapshots.pt"))
    final = read_checkpoint(final_path)
    assert str(final["epoch"]) not in pack["snapshots"]
    snaps = book.snapshots("mnist-sample/vit")
    assert [e for e, _ in snaps][0] == 0 and snaps[-1][0] == final["epoch"]
    last = snaps[-1][1].state_dict()
    assert all(torch.equal(last[k].half(), v) for k, v in final["model"].items())


def test_model_row_reads_the_shipped_row_and_trains_when_retraining(private_runs, monkeypatch, mnist_sample):
    shipped = runner.cached(runner.RunSpec("mnist-sample/vit", read_test=True), RESULTS)
    assert shipped is not None and shipped["test"]["images"] == len(mnist_sample.test)
    monkeypatch.setattr(runner, "train", no_training)
    assert book.model_row("mnist-sample/vit", mnist_sample) == shipped  # no training: the shipped row
    monkeypatch.setenv("VIT_TUTORIAL_RETRAIN", "1")
    monkeypatch.setenv("VIT_TUTORIAL_QUICK", "1")
    assert book.results_root() is None
    with pytest.raises(AssertionError, match="trained again"):
        book.model_row("mnist-sample/vit", mnist_sample)

"""train_or_load: the shipped model, a finished run, or a new training, in that order."""

import pytest

import vit_tutorial.book as book


def test_a_finished_run_is_reused_even_when_retraining_is_asked_for(tmp_path, monkeypatch, mnist_sample):
    """Under VIT_TUTORIAL_RETRAIN=1 the first notebook trains a model and the later ones reuse it."""
    monkeypatch.setattr(book, "RUNS", tmp_path / "runs")
    monkeypatch.setattr(book, "CHECKPOINTS", tmp_path / "checkpoints")
    model, history, _ = book.train_or_load("mnist", quick=True, retrain=True, splits=mnist_sample, progress=False)
    assert (tmp_path / "runs" / "mnist-quick" / "checkpoint.pt").is_file() and len(history) == 2

    def no_training(*args, **kwargs):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr(book, "fit", no_training)
    again, history2, _ = book.train_or_load("mnist", quick=True, retrain=True, splits=mnist_sample, progress=False)
    assert history2.to_dict() == history.to_dict()
    for a, b in zip(model.state_dict().values(), again.state_dict().values()):
        assert (a == b).all()
    # A run of another training set (here: 500 images instead of 1,000) is not taken for this one.
    monkeypatch.setattr(book, "QUICK_TRAIN_SIZE", 500)
    monkeypatch.setattr(book, "training_set", lambda splits, quick=None, seed=0: splits.train.sample(500, seed))
    with pytest.raises(AssertionError, match="trained again"):
        book.train_or_load("mnist", quick=True, retrain=True, splits=mnist_sample, progress=False)


def test_importing_the_module_creates_no_folder_and_images_is_created_on_use(tmp_path, monkeypatch):
    monkeypatch.setattr(book, "RUNS", tmp_path / "runs")
    monkeypatch.setenv("VIT_TUTORIAL_QUICK", "1")
    assert not (tmp_path / "runs").exists()
    from vit_tutorial.book import IMAGES

    assert IMAGES == tmp_path / "runs" / "images-quick" and IMAGES.is_dir()
    with pytest.raises(AttributeError):
        book.NOT_A_NAME  # noqa: B018


def test_a_recipes_teacher_is_the_books_model_of_that_name(tmp_path, monkeypatch, mnist_sample):
    """with_teacher turns the teacher's name in a recipe into that model: shipped, trained before, or trained now."""
    from vit_tutorial import CNN, VitTutorialError, build_model, fit
    from vit_tutorial.config import RECIPES, recipe

    monkeypatch.setattr(book, "RUNS", tmp_path / "runs")
    monkeypatch.setattr(book, "CHECKPOINTS", tmp_path / "checkpoints")
    assert RECIPES["fashion-mnist-distilled"]["teacher"] == "fashion-mnist-cnn"
    kwargs = dict(recipe("mnist", quick=True), teacher="mnist-cnn", distill="soft")
    with pytest.raises(VitTutorialError, match="not its name 'mnist-cnn'"):
        fit(build_model("tiny"), mnist_sample.train.sample(64), **dict(kwargs, epochs=1), progress=False)
    taught = book.with_teacher(kwargs, "mnist", mnist_sample, quick=True, retrain=True, progress=False)
    assert isinstance(taught["teacher"], CNN) and not taught["teacher"].training
    assert (tmp_path / "runs" / "mnist-cnn-quick" / "checkpoint.pt").is_file()  # the teacher was trained first
    assert kwargs["teacher"] == "mnist-cnn"  # the recipe given is left as it was
    assert book.with_teacher(recipe("mnist", quick=True), "mnist", mnist_sample) == recipe("mnist", quick=True)


def test_shipped_snapshots_end_with_the_shipped_model_stored_once(tmp_path, monkeypatch):
    """The last snapshot is the shipped model itself: not stored twice, but still one of the snapshots."""
    import torch

    if not (book.CHECKPOINTS / "mnist-snapshots.pt").is_file():
        pytest.skip("no snapshots shipped")
    monkeypatch.setattr(book, "RUNS", tmp_path / "runs")  # no run of our own: the shipped files only
    monkeypatch.delenv("VIT_TUTORIAL_RETRAIN", raising=False)
    pack = book.read_checkpoint(book.CHECKPOINTS / "mnist-snapshots.pt")
    final = book.read_checkpoint(book.CHECKPOINTS / "mnist.pt")
    assert str(final["epoch"]) not in pack["snapshots"]
    snaps = book.snapshots("mnist", quick=False)
    assert [e for e, _ in snaps] == book.snapshot_epochs(int(final["epoch"]))
    last = snaps[-1][1].state_dict()
    assert all(torch.equal(last[k].half(), v) for k, v in final["model"].items())

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
    assert RECIPES["fashion-mnist-plain-distilled"]["teacher"] == "fashion-mnist-cnn"
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
    assert [e for e, _ in snaps] == [e for e in book.snapshot_epochs(int(final["epoch"]))
                                     if e not in book.SHIPPED_SNAPSHOTS_LEFT_OUT]
    last = snaps[-1][1].state_dict()
    assert all(torch.equal(last[k].half(), v) for k, v in final["model"].items())


def test_a_model_shipped_as_its_row_is_read_back_and_trained_when_it_no_longer_fits(tmp_path, monkeypatch,
                                                                                    mnist_sample):
    """model_point: the shipped row in full mode; train_or_load when retraining, or when the row is of another model."""
    import json

    from vit_tutorial import build_model

    monkeypatch.setattr(book, "CHECKPOINTS", tmp_path / "checkpoints")
    monkeypatch.delenv("VIT_TUTORIAL_QUICK", raising=False)
    row = dict(model="mnist", train_size=len(mnist_sample.train), test_images=len(mnist_sample.test),
               parameters=build_model("mnist").num_parameters(), test_acc=0.5,
               config=json.loads(json.dumps(build_model("mnist").config.to_dict())))
    folder = tmp_path / "checkpoints" / "results" / "models"
    folder.mkdir(parents=True)
    (folder / "mnist.json").write_text(json.dumps(row))
    trained = []

    def train_or_load(dataset, name=None, splits=None, progress=True):
        trained.append(name)
        return build_model(name), book.History.from_dict(dict(epoch=[1], train_acc=[0.1], val_acc=[0.1])), splits

    monkeypatch.setattr(book, "train_or_load", train_or_load)
    assert book.model_point("mnist", "mnist", mnist_sample) == row and trained == []
    monkeypatch.setenv("VIT_TUTORIAL_RETRAIN", "1")
    retrained = book.model_point("mnist", "mnist", mnist_sample)
    assert trained == ["mnist"] and retrained["test_images"] == len(mnist_sample.test) and "correct" in retrained
    monkeypatch.delenv("VIT_TUTORIAL_RETRAIN")
    (folder / "mnist.json").write_text(json.dumps(dict(row, config=dict(row["config"], pool="mean"))))
    book.model_point("mnist", "mnist", mnist_sample)  # the preset has changed since (the same parameter count)
    assert trained == ["mnist", "mnist"]
    (folder / "mnist.json").write_text(json.dumps({k: v for k, v in row.items() if k != "config"}))
    book.model_point("mnist", "mnist", mnist_sample)  # a row that does not say which model it is
    assert trained == ["mnist", "mnist", "mnist"]


def test_the_rows_shipped_for_models_are_those_of_their_presets():
    import json

    from vit_tutorial import build_model
    from vit_tutorial.config import preset

    rows = sorted((book.CHECKPOINTS / "results" / "models").glob("*.json"))
    assert rows, "no model shipped as its row"
    for path in rows:
        row = json.loads(path.read_text())
        assert row["model"] == path.stem and row["parameters"] == build_model(preset(path.stem)).num_parameters()
        assert row["config"] == json.loads(json.dumps(preset(path.stem).to_dict()))
        assert len(row["correct"]) == row["test_images"] and row["correct"].count("1") == row["test_correct"]
        assert row["test_acc"] == pytest.approx(row["test_correct"] / row["test_images"], abs=1e-6)
        assert row["test_low"] <= row["test_acc"] <= row["test_high"]


def test_a_shipped_model_of_another_recipe_or_preset_is_not_taken_for_this_one(tmp_path, monkeypatch, capsys):
    """After a change to a preset or recipe in config.py, the shipped checkpoint no longer stands for the model."""
    import shutil

    from conftest import REPO

    from vit_tutorial.checkpoint import read_checkpoint
    from vit_tutorial.config import CNN_PRESETS, recipe

    shipped = REPO / "checkpoints" / "mnist-cnn.pt"
    if not shipped.is_file():
        pytest.skip("no shipped mnist-cnn checkpoint")
    monkeypatch.setattr(book, "CHECKPOINTS", tmp_path)
    shutil.copy(shipped, tmp_path / "mnist-cnn.pt")
    kwargs = recipe("mnist", full=False, preset="mnist-cnn")
    assert book._shipped("mnist-cnn", 4000, "mnist", kwargs) is not None
    assert book._shipped("mnist-cnn", 55000, "mnist", kwargs) is None  # another training set: silently not it
    payload = read_checkpoint(tmp_path / "mnist-cnn.pt")
    for changes, says in ((dict(epochs=kwargs["epochs"] + 20), "epochs"), (dict(lr=kwargs["lr"] / 2), "lr"),
                          (dict(augment_strength=1.5), "another augmentation"),
                          (dict(teacher="mnist-hybrid"), "no teacher")):
        other = dict(kwargs, **changes)
        assert any(says in d for d in book.recipe_differences(payload, "mnist-cnn", other)), changes
        assert book._shipped("mnist-cnn", 4000, "mnist", other) is None
        assert "training mnist-cnn anew" in capsys.readouterr().out
    monkeypatch.setitem(CNN_PRESETS, "mnist-cnn", CNN_PRESETS["mnist-cnn"].replace(num_classes=5))
    assert book.recipe_differences(payload, "mnist-cnn", kwargs) == ["another model than the mnist-cnn preset"]


def test_a_run_shipped_as_its_row_is_read_back_by_model_point(tmp_path, monkeypatch, mnist_sample):
    """ship_result writes the row model_point reads instead of training; a run of another preset is refused."""
    import json

    from vit_tutorial.errors import VitTutorialError

    monkeypatch.setattr(book, "RUNS", tmp_path / "runs")
    monkeypatch.setattr(book, "CHECKPOINTS", tmp_path / "checkpoints")
    book.train_or_load("mnist", quick=True, retrain=True, splits=mnist_sample, progress=False)
    run = tmp_path / "runs" / "mnist-quick"
    path = book.ship_result("mnist", "mnist", "python -m vit_tutorial train", run=run, splits=mnist_sample)
    row = json.loads(path.read_text())
    assert path == tmp_path / "checkpoints" / "results" / "models" / "mnist.json"
    assert row["command"] == "python -m vit_tutorial train" and len(row["correct"]) == len(mnist_sample.test)

    def no_training(*args, **kwargs):
        raise AssertionError("a shipped row was trained again")

    monkeypatch.delenv("VIT_TUTORIAL_QUICK", raising=False)
    monkeypatch.delenv("VIT_TUTORIAL_RETRAIN", raising=False)
    monkeypatch.setattr(book, "train_or_load", no_training)
    assert book.model_point("mnist", "mnist", mnist_sample) == row
    with pytest.raises(VitTutorialError, match="is not a run of the mnist-hybrid preset"):
        book.ship_result("mnist-hybrid", "mnist", "cmd", run=run, splits=mnist_sample)

"""Where the book keeps things, and the trained models the notebooks share.

The models the book trains for more than about a minute ship with it, in
``checkpoints/`` (half-precision weights, with their config, history and the
command that made them), so a fresh clone runs the whole book in minutes.
``VIT_TUTORIAL_RETRAIN=1`` (or ``bash scripts/book.sh --retrain``) trains
everything from scratch instead.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from .checkpoint import FORMAT, config_from_payload, model_from_payload, read_checkpoint
from .config import build_model, preset
from .data import Splits, load_dataset
from .errors import VitTutorialError
from .evaluation import evaluate
from .training import QUICK_TRAIN_SIZE, History, fit, recipe
from .utils import atomic_write, project_root, quick_mode, set_seed, shown_path

ROOT = project_root(Path(__file__).parent)
DATA = ROOT / "data"
RUNS = ROOT / "runs"
CHECKPOINTS = ROOT / "checkpoints"


def images_dir() -> Path:
    """Where the notebooks save their figures, created on first use: ``images/``, or
    ``runs/images-quick/`` in quick mode (tests, CI), so quick runs never replace the book's figures."""
    path = RUNS / "images-quick" if quick_mode() else ROOT / "images"
    path.mkdir(parents=True, exist_ok=True)
    return path


def __getattr__(name: str):
    # ``from vit_tutorial.book import IMAGES`` (what the notebooks do) asks for the folder and creates
    # it; importing the module alone creates nothing.
    if name == "IMAGES":
        return images_dir()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# Where train_or_load found (or wrote) each model it returned: {name: path of the checkpoint}.
LOADED_FROM: dict = {}


def retrain_requested() -> bool:
    """True when VIT_TUTORIAL_RETRAIN=1: train every model from scratch instead of loading the shipped ones."""
    return os.environ.get("VIT_TUTORIAL_RETRAIN", "0").strip().lower() in ("1", "true", "yes")


def results_dir(name: str) -> Path:
    """Where a notebook keeps the results of its many small runs (one JSON file each).

    The book ships the results of its full runs in ``checkpoints/results/<name>``:
    short runs differ from one CPU to the next (the arithmetic, and with it
    every trained number, changes with the CPU and the thread count), so a
    reader reruns the book from the results its prose describes.
    ``VIT_TUTORIAL_RETRAIN=1`` trains them again, into ``runs/<name>``.
    """
    shipped = CHECKPOINTS / "results" / name
    return RUNS / name if retrain_requested() or not shipped.is_dir() else shipped


def snapshot_epochs(epochs: int) -> list:
    """Epochs at which the book keeps a copy of the weights: 0, 1, 2, 5, 10, 20, ... and the last."""
    marks = {0, 1, 2, epochs}
    k = 5
    while k < epochs:
        marks.add(k)
        k *= 2
    return sorted(m for m in marks if m <= epochs)


def run_dir(name: str = "mnist", quick: bool | None = None) -> Path:
    """runs/<name> for the full book, runs/<name>-quick for quick mode (``name``: a dataset or a preset)."""
    quick = quick_mode() if quick is None else quick
    return RUNS / (f"{name}-quick" if quick else name)


def training_set(splits: Splits, quick: bool | None = None, seed: int = 0):
    """The training images the book uses: all of them, or 1,000 in quick mode."""
    quick = quick_mode() if quick is None else quick
    return splits.train.sample(QUICK_TRAIN_SIZE, seed) if quick else splits.train


# The settings of a recipe that make another model when they change (what ``fit`` records as ``train_settings``).
RECIPE_KEYS = ("epochs", "batch_size", "lr", "weight_decay", "warmup_epochs", "label_smoothing")


def recipe_differences(payload: dict, name: str, kwargs: dict) -> list:
    """How a checkpoint's model differs from preset ``name`` trained with ``kwargs`` (a recipe): [] if it does not.

    Compares the model's config (through the loader, so that a field added
    since, at its default, is the same model) and the recipe settings that
    ``fit`` recorded: epochs, batch, learning rate, weight decay, warm-up,
    label smoothing, augmentation, and whether a teacher taught it.
    """
    from .augment import get_augment

    out = []
    try:
        config = config_from_payload(payload)
    except (VitTutorialError, KeyError):
        config = None
    if config != preset(name):
        out.append(f"another model than the {name} preset")
    settings = json.loads(payload.get("train_settings", "{}"))
    for key in RECIPE_KEYS:
        if key in kwargs and settings.get(key) != kwargs[key]:
            out.append(f"{key} {settings.get(key)} (the recipe: {kwargs[key]})")
    augment = get_augment(kwargs.get("augment", "digits"), kwargs.get("augment_strength", 1.0)).record()
    if settings.get("augment") != augment:
        out.append("another augmentation")
    if ("distill" in settings) != (kwargs.get("teacher") is not None):
        out.append("a teacher" if "distill" in settings else "no teacher")
    return out


def _shipped(name: str, train_size: int, dataset: str, kwargs: dict) -> dict | None:
    """The shipped checkpoint of ``name``, if there is one and it is the preset trained with ``kwargs`` on this
    training set.

    A shipped model of another preset or recipe (one changed in ``config.py``
    since) is not taken for this one: a line says so, and the model is trained.
    """
    path = CHECKPOINTS / f"{name}.pt"
    if not path.is_file():
        return None
    payload = read_checkpoint(path)
    settings = json.loads(payload.get("train_settings", "{}"))
    if settings.get("dataset") != dataset or settings.get("train_size") != train_size:
        return None  # e.g. the shipped MNIST model was trained on the offline sample, and this is the full set
    changed = recipe_differences(payload, name, kwargs)
    if changed:
        print(f"Note: {shown_path(path)} was trained with {', '.join(changed)}; training {name} anew instead")
        return None
    return payload


def train_or_load(dataset: str = "mnist", quick: bool | None = None, retrain: bool | None = None,
                  progress: bool = True, seed: int = 0, splits: Splits | None = None, name: str | None = None):
    """The book's model ``name`` (default: the dataset's preset), trained with its recipe on ``dataset``.

    In this order: the shipped checkpoint in ``checkpoints/`` (full mode,
    unless retraining is asked for, and only if it was trained on the same
    training set); a finished run under ``runs/`` (trained here, from
    scratch: under ``VIT_TUTORIAL_RETRAIN=1`` the first notebook that needs a
    model trains it and the later ones reuse it; delete ``runs/<name>`` to
    train it once more); else it is trained now (and saved under ``runs/``,
    resuming an interrupted run with the same settings).

    Returns ``(model, history, splits)``.
    """
    quick = quick_mode() if quick is None else quick
    retrain = retrain_requested() if retrain is None else retrain
    name = name or dataset
    splits = splits or load_dataset(dataset, DATA)
    train = training_set(splits, quick, seed)
    kwargs = recipe(dataset, quick=quick, full=splits.full, preset=name)
    if not quick and not retrain and seed == 0:
        payload = _shipped(name, len(train), dataset, kwargs)
        if payload is not None:
            path = LOADED_FROM[name] = CHECKPOINTS / f"{name}.pt"
            return model_from_payload(payload, shown_path(path)), History.from_dict(payload["history"]), splits
    out = run_dir(name if seed == 0 else f"{name}-seed{seed}", quick)
    ckpt = LOADED_FROM[name] = out / "checkpoint.pt"
    if ckpt.exists():
        payload = read_checkpoint(ckpt)
        settings = json.loads(payload.get("train_settings", "{}"))
        if int(payload.get("epoch", -1)) == kwargs["epochs"] and settings.get("train_size") == len(train):
            return model_from_payload(payload, ckpt), History.from_dict(payload["history"]), splits
    kwargs = with_teacher(kwargs, dataset, splits, quick, retrain, progress)  # only now: a finished run needs none
    set_seed(seed)  # the same initial weights as `python -m vit_tutorial train --seed SEED`
    model = build_model(preset(name))
    history = fit(model, train, splits.val, **kwargs, seed=seed, out_dir=out,
                  resume=True, snapshot_epochs=snapshot_epochs(kwargs["epochs"]), progress=progress)
    return model.cpu(), history, splits


def model_point(name: str, dataset: str, splits: Splits, test=None) -> dict:
    """The test row (``scaling.full_point``) of the book's model ``name``, trained on the whole training split.

    Most of the book's models ship as checkpoints. A few ship only as this row,
    in ``checkpoints/results/models/<name>.json`` (their accuracy, and which
    test images they got right; ``ship_result`` writes it), because their
    weights would take ``checkpoints/`` past its 10 MB. In full mode that row is read back, unless
    ``VIT_TUTORIAL_RETRAIN=1``; otherwise, or for a model shipped as a
    checkpoint, ``train_or_load`` gives the model and it is scored on ``test``
    (default: the test split).
    """
    from .scaling import full_point

    test = splits.test if test is None else test
    train_size = len(training_set(splits))
    path = CHECKPOINTS / "results" / "models" / f"{name}.json"
    if not quick_mode() and not retrain_requested() and path.is_file():
        row = json.loads(path.read_text())
        config = json.loads(json.dumps(preset(name).to_dict()))  # a row of another model is not read back
        if (row.get("test_images"), row.get("train_size"), row.get("config")) == (len(test), train_size, config):
            LOADED_FROM[name] = path
            return row
    model, history, _ = train_or_load(dataset, name=name, splits=splits, progress=False)
    return full_point(name, dataset, model.eval(), history, train_size, test)


def with_teacher(kwargs: dict, dataset: str, splits: Splits, quick: bool | None = None, retrain: bool | None = None,
                 progress: bool = True) -> dict:
    """A recipe (``fit``'s keyword arguments) with the name of its teacher, if it has one, replaced by the model.

    The teacher is the book's model of that name, from ``train_or_load``: the
    shipped checkpoint where it fits, else trained here first.
    """
    name = kwargs.get("teacher")
    if not isinstance(name, str):
        return kwargs
    teacher, _, _ = train_or_load(dataset, quick=quick, retrain=retrain, progress=progress, splits=splits, name=name)
    return dict(kwargs, teacher=teacher)


def snapshots(name: str = "mnist", quick: bool | None = None) -> list:
    """[(epoch, model), ...] copies of the weights kept during training (epoch 0 = before training).

    From the run folder when the model was trained here, else from the shipped
    ``checkpoints/<name>-snapshots.pt``.
    """
    quick = quick_mode() if quick is None else quick
    folder = run_dir(name, quick) / "snapshots"
    files = sorted(folder.glob("epoch_*.pt"))
    shipped = CHECKPOINTS / f"{name}-snapshots.pt"
    if files and (quick or retrain_requested() or not shipped.is_file()):
        return [(int(f.stem.split("_")[1]), model_from_payload(read_checkpoint(f), shown_path(f))) for f in files]
    if not quick and shipped.is_file():
        payload = read_checkpoint(shipped)
        states = dict(payload["snapshots"])
        final = CHECKPOINTS / f"{name}.pt"
        if final.is_file():  # the last epoch's weights are the shipped model itself, not stored twice
            main = read_checkpoint(final)
            states.setdefault(str(int(main["epoch"])), main["model"])
        out = []
        for epoch, state in sorted(states.items(), key=lambda kv: int(kv[0])):
            out.append((int(epoch), model_from_payload({**payload, "model": state}, shown_path(shipped))))
        return out
    return [(int(f.stem.split("_")[1]), model_from_payload(read_checkpoint(f), shown_path(f))) for f in files]


# Snapshot epochs the shipped checkpoints/mnist-snapshots.pt leaves out, to keep checkpoints/ within
# the 10 MB (10,000,000 bytes): the larger mnist-hybrid of 2026-12-03 took it to 10.23 MB with
# epoch 1 left out, 9.93 MB without epoch 40 as well. Epoch 2 stays: the maps take shape between 2 and 5.
SHIPPED_SNAPSHOTS_LEFT_OUT = (1, 40)


def _half(state: dict) -> dict:
    """Weights in half precision; the input normalisation (``mean``, ``std``: a few numbers) kept exact."""
    return {k: v.half() if v.is_floating_point() and k not in ("mean", "std") else v for k, v in state.items()}


def ship_result(name: str, dataset: str, command: str, run: str | Path | None = None,
                splits: Splits | None = None) -> Path:
    """Score the finished run ``run`` (default ``runs/<name>``) once on the test split and ship its row.

    For a model whose weights would take ``checkpoints/`` past its 10 MB: it
    ships as ``checkpoints/results/models/<name>.json`` (accuracy, interval
    and which test images it got right), the row ``model_point`` reads back,
    with ``command``, the command that trained it. A run of another model
    than the preset ``name`` is refused.
    """
    from .scaling import full_point

    run = Path(run) if run is not None else run_dir(name, quick=False)
    src = run / "checkpoint.pt"
    payload = read_checkpoint(src)
    model = model_from_payload(payload, src).eval()
    if model.config != preset(name):
        raise VitTutorialError(f"{shown_path(src)} is not a run of the {name} preset")
    splits = load_dataset(dataset, DATA, verbose=False) if splits is None else splits
    row = full_point(name, dataset, model, History.from_dict(payload["history"]), len(splits.train), splits.test)
    half = any(v.dtype == torch.float16 for v in payload["model"].values())  # e.g. a checkpoint shipped before
    row.update(command=command, weights=f"{'float16' if half else 'float32'}, not shipped (checkpoints/ would "
                                        f"exceed 10 MB)", val_images=len(splits.val))
    dst = CHECKPOINTS / "results" / "models" / f"{name}.json"
    atomic_write(dst, lambda f: f.write(json.dumps(row).encode()))
    return dst


def ship(name: str, dataset: str, command: str, run: str | Path | None = None, with_snapshots: bool = False) -> Path:
    """Copy the finished run ``run`` (default ``runs/<name>``) into ``checkpoints/<name>.pt`` in half precision.

    ``command`` is the command that trained it, as a reader would type it.

    Keeps the config, history, training settings, the dataset it was trained
    on and the command that made it, and records the validation accuracy of
    the half-precision weights (the test in tests/ reproduces it).
    """
    run = Path(run) if run is not None else run_dir(name, quick=False)
    src = run / "checkpoint.pt"
    payload = read_checkpoint(src)
    keep = ("format", "kind", "config", "epoch", "history", "train_settings", "classes", "dataset")
    shipped = {k: payload[k] for k in keep if k in payload}
    shipped["format"] = FORMAT
    shipped["model"] = _half(payload["model"])
    shipped["command"] = command
    model = model_from_payload(shipped, src)
    splits = load_dataset(dataset, DATA, verbose=False)
    ev = evaluate(model, splits.val, device="cpu")
    shipped["val_accuracy"] = ev.accuracy
    shipped["val_images"] = len(splits.val)
    dst = CHECKPOINTS / f"{name}.pt"
    atomic_write(dst, lambda f: torch.save(shipped, f))
    if with_snapshots:
        files = sorted((run / "snapshots").glob("epoch_*.pt"))
        snaps = {str(int(f.stem.split("_")[1])): _half(read_checkpoint(f)["model"]) for f in files
                 if int(f.stem.split("_")[1]) not in SHIPPED_SNAPSHOTS_LEFT_OUT}
        last = snaps.get(str(int(shipped["epoch"])))
        if last is not None and all(torch.equal(last[k], shipped["model"][k]) for k in shipped["model"]):
            del snaps[str(int(shipped["epoch"]))]  # the shipped model itself: snapshots() takes it from there
        pack = {k: shipped[k] for k in ("format", "kind", "config", "dataset", "command")}
        pack["snapshots"] = snaps
        atomic_write(CHECKPOINTS / f"{name}-snapshots.pt", lambda f: torch.save(pack, f))
    return dst

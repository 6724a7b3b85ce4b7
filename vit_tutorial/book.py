"""Where the book keeps things, and the trained models the notebooks share.

The models the book trains for more than about a minute ship with it, in
``checkpoints/DATASET/ARCHITECTURE.pt`` (half-precision weights, with their
configuration, history and the command that made them), and every scored run
ships as its row in ``results/``, so a fresh clone runs the whole book in
minutes. ``VIT_TUTORIAL_RETRAIN=1`` (or ``bash scripts/book.sh --retrain``)
trains everything from scratch instead, into ``runs/``.
"""

from __future__ import annotations

import os
from pathlib import Path

from . import registry
from .checkpoint import model_from_payload, read_checkpoint
from .data import Splits, load_dataset
from .results import RESULTS
from .runner import CHECKPOINTS, DATA, ROOT, RUNS, RunSpec, checkpoint_path, load_shipped, run, train
from .utils import quick_mode, shown_path

__all__ = ["CHECKPOINTS", "DATA", "ROOT", "RUNS", "digits", "images_dir", "load", "model_row", "results_root",
           "retrain_requested", "run_dir", "snapshots", "training_set"]


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


# Where ``load`` found (or wrote) each model it returned: {model id: path of the checkpoint}.
LOADED_FROM: dict = {}


def retrain_requested() -> bool:
    """True when VIT_TUTORIAL_RETRAIN=1: train every model from scratch instead of loading the shipped ones."""
    return os.environ.get("VIT_TUTORIAL_RETRAIN", "0").strip().lower() in ("1", "true", "yes")


def results_root() -> Path | None:
    """Where the notebooks find and keep rows: the shipped ``results/``; ``runs/results/`` when retraining;
    none in quick mode (quick runs are never kept as results)."""
    if quick_mode():
        return None
    return RUNS / "results" if retrain_requested() else RESULTS


def digits(root: str | Path = DATA) -> Splits:
    """The digits the book trains on: the full MNIST where it can be loaded, else the offline sample (one line
    says so). ``splits.dataset`` ("mnist" or "mnist-sample") is the first half of the models' ids."""
    return load_dataset("mnist", root)


def training_set(splits: Splits, quick: bool | None = None, seed: int = 0):
    """The training images a model of the book sees: all of them, or ``registry.QUICK_TRAIN_SIZE`` in quick mode."""
    quick = quick_mode() if quick is None else quick
    return splits.train.sample(registry.QUICK_TRAIN_SIZE, seed) if quick else splits.train


def snapshot_epochs(epochs: int) -> list:
    """Epochs at which the book keeps a copy of the weights: 0, 1, 2, 5, 10, 20, ... and the last."""
    marks = {0, 1, 2, epochs}
    k = 5
    while k < epochs:
        marks.add(k)
        k *= 2
    return sorted(m for m in marks if m <= epochs)


def run_dir(model_id: str, quick: bool | None = None) -> Path:
    """The run folder of a model the book trains: ``runs/ID``, or ``runs/quick/ID`` in quick mode."""
    quick = quick_mode() if quick is None else quick
    return RUNS / "quick" / model_id if quick else RUNS / model_id


def load(model_id: str, splits: Splits | None = None, progress: bool = True):
    """The book's model ``model_id``, trained with its recipe: ``(model, history)``.

    In this order: the shipped checkpoint (full mode, unless retraining is
    asked for); a finished run in its run folder (trained here: under
    ``VIT_TUTORIAL_RETRAIN=1`` the first notebook that needs a model trains it
    and the later ones reuse it; delete the folder to train it once more);
    else it is trained now, in its run folder (an interrupted run resumes).
    """
    registry.get(model_id)
    quick = quick_mode()
    if not quick and not retrain_requested():
        shipped = load_shipped(model_id)
        if shipped is not None:
            LOADED_FROM[model_id] = checkpoint_path(model_id)  # where load_shipped found it
            return shipped[0], shipped[1]
    out = run_dir(model_id, quick)
    epochs = registry.recipe(model_id, quick=quick)["epochs"]
    result = train(RunSpec(model_id, quick=quick), splits=splits, data_root=DATA, out_dir=out,
                   snapshot_epochs=snapshot_epochs(epochs), progress=progress, shipped_teacher=not retrain_requested())
    LOADED_FROM[model_id] = out / "checkpoint.pt"
    return result.model, result.history


def model_row(model_id: str, splits: Splits | None = None) -> dict:
    """The row of the book's model ``model_id`` trained on its whole training split, test split included.

    In full mode, the shipped row in ``results/``; otherwise (quick mode, or
    retraining, or a model not shipped) the model from ``load`` scored now.
    """
    quick = quick_mode()
    spec = RunSpec(model_id, quick=quick, read_test=True)
    return run(spec, cache=results_root(), splits=splits, data_root=DATA, out_dir=run_dir(model_id, quick),
               shipped_teacher=not retrain_requested())


def snapshots(model_id: str) -> list:
    """[(epoch, model), ...] copies of the weights kept during training (epoch 0 = before training).

    From the run folder when the model was trained here, else from the shipped
    ``checkpoints/DATASET/ARCHITECTURE-snapshots.pt``.
    """
    quick = quick_mode()
    folder = run_dir(model_id, quick) / "snapshots"
    files = sorted(folder.glob("epoch_*.pt"))
    final = checkpoint_path(model_id)
    shipped = final.with_name(final.stem + "-snapshots.pt")
    if not quick and not retrain_requested() and shipped.is_file():
        payload = read_checkpoint(shipped)
        states = dict(payload["snapshots"])
        if final.is_file():  # the last epoch's weights are the shipped model itself, not stored twice
            main = read_checkpoint(final)
            states.setdefault(str(int(main["epoch"])), main["model"])
        return [(int(epoch), model_from_payload({**payload, "model": state}, shown_path(shipped)))
                for epoch, state in sorted(states.items(), key=lambda kv: int(kv[0]))]
    return [(int(f.stem.split("_")[1]), model_from_payload(read_checkpoint(f), shown_path(f))) for f in files]

"""Accuracy against the size of the training set: the measurements of notebook 13.

One *point* is one model (a preset: the pure ViT, the hybrid or the CNN)
trained with its dataset's recipe on a class-balanced subset of the training
split, then scored once on the test split. A point's row keeps, besides its
accuracy, which test images it got right, so that two models can be compared
on the same images (``evaluation.mcnemar``).

With ``cache_dir``, each row is kept as one JSON file, with the recipe and
the model's config it was trained with, and a second call with the same
recipe and config reads it back instead of training.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch

from .config import build_model, preset, recipe
from .data import ImageDataset, Splits
from .errors import VitTutorialError
from .evaluation import evaluate, mcnemar, wilson_interval
from .training import fit
from .utils import atomic_write, set_seed

# The three models compared on each dataset, in the order the book shows them.
MODELS = {
    "mnist": ("mnist", "mnist-hybrid", "mnist-cnn"),
    "fashion-mnist": ("fashion-mnist-plain", "fashion-mnist-hybrid", "fashion-mnist-cnn"),
}
LABELS = {"": "ViT", "-hybrid": "hybrid", "-cnn": "CNN"}

# The equal-budget series on digits: every size sees this many images (80 epochs of 2,000 digits).
EQUAL_SEEN = 160_000
# What notebook 13 trains (benchmarks/small_data.py runs the same list): (dataset, training-set
# size, seeds, epochs or None for the recipe's, models or None for all three). The whole
# training splits (4,000 sample digits, 55,000 clothes) are the book's shipped models.
POINTS = [
    # The recipe unchanged (on digits 160 epochs for the ViT, 60 for the hybrid and the CNN, as
    # cross-validated; 30 on clothes): fewer images also means fewer steps.
    ("mnist", 500, (0, 1, 2), None, None),
    ("mnist", 1000, (0, 1, 2), None, None),
    ("mnist", 2000, (0,), None, None),
    ("fashion-mnist", 1000, (0, 1, 2), None, None),
    ("fashion-mnist", 5000, (0,), None, None),
    # The same number of images seen at every size (EQUAL_SEEN), so that only the data changes,
    # not the training.
    ("mnist", 500, (0,), 320, None),
    # Where a model's recipe already gives 160,000 images (the ViT's 160 epochs of 1,000 digits),
    # its recipe point serves both series.
    ("mnist", 1000, (0,), 160, ("mnist-hybrid", "mnist-cnn")),
    ("mnist", 2000, (0,), 80, None),
    ("mnist", 4000, (0,), 40, None),
]
# Quick mode (as in CI): the same code on a few hundred images, two epochs, one seed.
QUICK_POINTS = [
    ("mnist", 200, (0,), None, None),
    ("mnist", 400, (0,), None, None),
    ("fashion-mnist", 400, (0,), None, None),
]


def label(name: str) -> str:
    """"ViT", "hybrid" or "CNN" for a preset name such as "mnist-hybrid"."""
    for suffix in ("-hybrid", "-cnn"):
        if name.endswith(suffix):
            return LABELS[suffix]
    return LABELS[""]


def stratified_sample(data: ImageDataset, n: int, seed: int = 0) -> ImageDataset:
    """``n`` images of ``data`` with the classes in the same proportions (all of them if ``n >= len(data)``)."""
    if n >= len(data):
        return data
    if n < len(data.classes):
        raise VitTutorialError(f"a class-balanced sample needs at least one image per class "
                               f"({len(data.classes)}), not {n}")
    from sklearn.model_selection import train_test_split

    keep, _ = train_test_split(np.arange(len(data)), train_size=n, stratify=data.labels.numpy(),
                               random_state=seed)
    return data.subset(np.sort(keep))


def _bits(correct: torch.Tensor) -> str:
    return "".join("1" if c else "0" for c in correct.tolist())


def correct_of(row: dict) -> torch.Tensor:
    """The (M,) booleans of a row: which test images the model got right."""
    return torch.tensor([c == "1" for c in row["correct"]])


def score(model: torch.nn.Module, test: ImageDataset) -> dict:
    """The test part of a row: accuracy, its 95 % interval and the per-image results."""
    ev = evaluate(model, test, device="cpu")
    lo, hi = ev.interval
    return dict(test_acc=ev.accuracy, test_correct=ev.correct, test_images=len(test), test_low=lo, test_high=hi,
                correct=_bits(ev.predictions == ev.labels))


def point_file(cache_dir: str | Path, name: str, train_size: int, seed: int, epochs: int) -> Path:
    return Path(cache_dir) / f"{name}-n{train_size}-seed{seed}-e{epochs}.json"


def run_point(name: str, dataset: str, splits: Splits, train_size: int, seed: int = 0, *,
              epochs: int | None = None, quick: bool = False, cache_dir: str | Path | None = None,
              test: ImageDataset | None = None, device=None) -> dict:
    """Train preset ``name`` on ``train_size`` class-balanced training images; its row.

    The recipe is the dataset's (``config.recipe``), so every model and every
    size is trained the same way; ``epochs`` overrides its number of epochs.
    ``seed`` draws both the subset and the initial weights.
    """
    kwargs = recipe(dataset, quick=quick, full=splits.full, preset=name)
    if epochs is not None:
        kwargs["epochs"] = epochs
    settings = json.loads(json.dumps(kwargs))  # as the row keeps them
    config = json.loads(json.dumps(preset(name).to_dict()))  # the model, as the row keeps it
    test = splits.test if test is None else test
    path = point_file(cache_dir, name, train_size, seed, kwargs["epochs"]) if cache_dir is not None else None
    if path is not None and path.is_file():
        try:
            row = json.loads(path.read_text())
            # a row of another model (the preset has changed since), of another recipe or without its
            # model's config is trained again
            if row.get("test_images") == len(test) and row.get("settings") == settings and row.get("config") == config:
                return row
        except (OSError, json.JSONDecodeError):
            pass  # a damaged or outdated entry: train again and overwrite it
    train = stratified_sample(splits.train, train_size, seed)
    set_seed(seed)
    model = build_model(preset(name))
    t0 = time.perf_counter()
    # No validation pass after every epoch (on small subsets it would cost as much as the training): once, at the end.
    history = fit(model, train, None, **kwargs, seed=seed, device=device, progress=False, verbose=False)
    seconds = time.perf_counter() - t0
    model.cpu()
    row = dict(model=name, dataset=dataset, train_size=len(train), seed=seed, epochs=kwargs["epochs"],
               images_seen=kwargs["epochs"] * len(train), parameters=model.num_parameters(),
               val_acc=evaluate(model, splits.val, device="cpu").accuracy, train_acc=history.train_acc[-1],
               seconds=seconds, settings=settings, config=config, **score(model, test))
    if path is not None:
        atomic_write(path, lambda f: f.write(json.dumps(row).encode()))
    return row


def full_point(name: str, dataset: str, model: torch.nn.Module, history, train_size: int,
               test: ImageDataset) -> dict:
    """The row of a model trained on ``train_size`` images elsewhere (the book's shipped models)."""
    return dict(model=name, dataset=dataset, train_size=train_size, seed=0, epochs=len(history),
                images_seen=len(history) * train_size, parameters=model.num_parameters(),
                val_acc=history.val_acc[-1], train_acc=history.train_acc[-1],
                config=json.loads(json.dumps(model.config.to_dict())), **score(model, test))


def summarise(rows: list) -> list:
    """One line per (model, training-set size): mean test accuracy over seeds, and each seed's."""
    groups: dict = {}
    for r in rows:
        groups.setdefault((r["model"], r["train_size"], r["epochs"]), []).append(r)
    out = []
    for (name, size, epochs), rs in groups.items():
        accs = [r["test_acc"] for r in sorted(rs, key=lambda r: r["seed"])]
        out.append(dict(model=name, train_size=size, epochs=epochs, seeds=len(rs), mean=float(np.mean(accs)),
                        low=min(r["test_low"] for r in rs), high=max(r["test_high"] for r in rs),
                        accs=accs, images_seen=rs[0]["images_seen"], parameters=rs[0]["parameters"]))
    return out


def compare(rows: list, a: str, b: str, train_size: int) -> list:
    """McNemar's test of model ``a`` against ``b`` at one size, seed by seed (same seed = same training images)."""
    by = {(r["model"], r["seed"]): r for r in rows if r["train_size"] == train_size}
    out = []
    for (name, seed), ra in sorted(by.items()):
        if name != a or (b, seed) not in by:
            continue
        rb = by[(b, seed)]
        t = mcnemar(correct_of(ra), correct_of(rb))
        out.append(dict(seed=seed, a=ra["test_acc"], b=rb["test_acc"], **t))
    return out


def interval_text(row: dict) -> str:
    lo, hi = wilson_interval(row["test_correct"], row["test_images"])
    return f"{100 * row['test_acc']:.1f} % ({100 * lo:.1f}-{100 * hi:.1f})"

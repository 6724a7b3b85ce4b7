"""Accuracy against the size of the training set: the sweep of notebook 13 (``lab/small_data.py`` runs it too).

One *point* is one model (the pure ViT, the hybrid or the CNN) trained with
its recipe on a class-balanced subset of the training split, then scored once
on the test split: a ``runner.RunSpec`` with a ``train_size``. Its row keeps
which test images it got right, so that two models are compared on the same
images (``evaluation.mcnemar``).
"""

from __future__ import annotations

import numpy as np

from .results import correct_of
from .runner import RunSpec

# The three models compared on each dataset, in the order the book shows them.
MODELS = {
    "mnist-sample": ("mnist-sample/vit", "mnist-sample/hybrid", "mnist-sample/cnn"),
    "fashion-mnist": ("fashion-mnist/vit", "fashion-mnist/hybrid", "fashion-mnist/cnn"),
}
LABELS = {"vit": "ViT", "hybrid": "hybrid", "cnn": "CNN"}

# The equal-budget series on digits: every size sees this many images (80 epochs of 2,000 digits).
EQUAL_SEEN = 160_000
# The points of the sweep: (dataset, training-set size, seeds, epochs or None for the recipe's, models or None
# for all three). The whole training splits (4,000 sample digits, 55,000 clothes) are the book's shipped models.
POINTS = [
    # The recipe unchanged (on digits 160 epochs for the ViT, 60 for the hybrid and the CNN; 30 on clothes):
    # fewer images also means fewer steps.
    ("mnist-sample", 500, (0, 1, 2), None, None),
    ("mnist-sample", 1000, (0, 1, 2), None, None),
    ("mnist-sample", 2000, (0,), None, None),
    ("fashion-mnist", 1000, (0, 1, 2), None, None),
    ("fashion-mnist", 5000, (0,), None, None),
    # The same number of images seen at every size (EQUAL_SEEN), so that only the data changes, not the training.
    ("mnist-sample", 500, (0,), 320, None),
    # Where a model's recipe already gives 160,000 images (the ViT's 160 epochs of 1,000 digits), its recipe
    # point serves both series.
    ("mnist-sample", 1000, (0,), 160, ("mnist-sample/hybrid", "mnist-sample/cnn")),
    ("mnist-sample", 2000, (0,), 80, None),
    ("mnist-sample", 4000, (0,), 40, None),
]
# Quick mode (as in CI): the same code on a few hundred images, two epochs, one seed.
QUICK_POINTS = [
    ("mnist-sample", 200, (0,), None, None),
    ("mnist-sample", 400, (0,), None, None),
    ("fashion-mnist", 400, (0,), None, None),
]


def label(model_id: str) -> str:
    """"ViT", "hybrid" or "CNN" for a model id such as "mnist-sample/hybrid"."""
    return LABELS[model_id.split("/", 1)[1].split("+")[0].split("-")[0]]


def specs(points: list, quick: bool = False) -> list:
    """The runs of ``points`` (``POINTS`` or ``QUICK_POINTS``), each reading its test split once."""
    out = []
    for dataset, size, seeds, epochs, chosen in points:
        for seed in seeds:
            for model in chosen or MODELS[dataset]:
                out.append(RunSpec(model, {"epochs": epochs} if epochs else {}, train_size=size, seed=seed,
                                   quick=quick, read_test=True))
    return out


def point(row: dict) -> dict:
    """A row of ``runner`` as one flat point of the sweep: model, size, seed, epochs, and its test scores."""
    test = row["test"]
    return dict(model=row["model"], dataset=row["data"]["dataset"], train_size=row["data"]["train"],
                seed=row["seed"], epochs=row["epochs"], images_seen=row["images_seen"],
                parameters=row["parameters"], val_acc=row["val"]["accuracy"], train_acc=row["train_acc"],
                seconds=row["train_seconds"], test_acc=test["accuracy"], test_correct=test["correct"],
                test_images=test["images"], test_low=test["low"], test_high=test["high"], correct=test["bits"],
                config=row["config"])


def point_correct(p: dict):
    """The (M,) booleans of a point: which test images it got right."""
    return correct_of({"bits": p["correct"]})


# Two-sided 95 % quantiles of Student's t by degrees of freedom: the interval of a mean over a few seeds.
T_975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262}


def summarise(points: list) -> list:
    """One line per (model, training-set size, epochs): mean test accuracy over seeds, each seed's, and a 95 %
    interval: of the mean over seeds (Student's t: it counts the noise of training) where there are several,
    the Wilson interval of the one run (the noise of the test images only) where there is one."""
    from .evaluation import wilson_interval

    groups: dict = {}
    for p in points:
        groups.setdefault((p["model"], p["train_size"], p["epochs"]), []).append(p)
    out = []
    for (name, size, epochs), ps in groups.items():
        accs = [p["test_acc"] for p in sorted(ps, key=lambda p: p["seed"])]
        mean = float(np.mean(accs))
        if len(ps) > 1:
            half = T_975[len(ps) - 1] * float(np.std(accs, ddof=1)) / len(ps) ** 0.5
            low, high, kind = max(0.0, mean - half), min(1.0, mean + half), "seeds"
        else:
            (low, high), kind = wilson_interval(ps[0]["test_correct"], ps[0]["test_images"]), "test images"
        out.append(dict(model=name, train_size=size, epochs=epochs, seeds=len(ps), mean=mean, accs=accs, low=low,
                        high=high, interval=kind, images_seen=ps[0]["images_seen"], parameters=ps[0]["parameters"]))
    return out


def compare(points: list, a: str, b: str, train_size: int) -> list:
    """McNemar's test of model ``a`` against ``b`` at one size, seed by seed (same seed = same training images)."""
    from .evaluation import mcnemar

    by = {(p["model"], p["seed"]): p for p in points if p["train_size"] == train_size}
    out = []
    for (name, seed), pa in sorted(by.items()):
        if name != a or (b, seed) not in by:
            continue
        pb = by[(b, seed)]
        out.append(dict(seed=seed, a=pa["test_acc"], b=pb["test_acc"],
                        **mcnemar(point_correct(pa), point_correct(pb))))
    return out

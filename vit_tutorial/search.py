"""Grid search: train many variants of one model under one budget and compare them on the validation set.

A point of the grid is a dict of changes to a model of the registry: fields
of its configuration (``patch_size``, ``depth``, ``embed_dim``, ...) or of
its recipe (``lr``, ``augment``, ``augment_strength``, ``epochs``, ...).
Every point is one ``runner.RunSpec``, trained by the same ``fit``; the test
split is never read here.
"""

from __future__ import annotations

import itertools

from .errors import VitTutorialError
from .runner import RunSpec, run

# What ``run_grid`` adds to a point's settings for each of its lines.
RESULT_KEYS = ("val_acc", "train_acc", "parameters", "epochs", "images_seen", "seconds", "row")


def grid(**axes) -> list[dict]:
    """Every combination of the values given per key, e.g. ``grid(depth=[2, 4], lr=[1e-3, 3e-3])`` -> 4 points."""
    for key, values in axes.items():
        if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
            raise VitTutorialError(f"grid axis {key!r} needs a list of values, not {values!r}")
    keys = list(axes)
    return [dict(zip(keys, combo)) for combo in itertools.product(*axes.values())]


def line(point: dict, row: dict) -> dict:
    """One line of a grid's table: the point's settings, then what its row measured."""
    return {**point, "val_acc": row["val"]["accuracy"], "train_acc": row["train_acc"],
            "parameters": row["parameters"], "epochs": row["epochs"], "images_seen": row["images_seen"],
            "seconds": row["train_seconds"], "row": row}


def run_grid(points: list, model: str, budget: dict | None = None, *, seed: int = 0, quick: bool = False,
             verbose: bool = True, **kwargs) -> list:
    """Every point of the grid, as changes to ``model`` on top of ``budget`` (changes shared by all points,
    e.g. ``{"epochs": 8}``): ``runner.run`` each in order, print a line per point; the lines (``line``).

    ``kwargs`` go to ``runner.run`` (``cache``, ``splits``, ``device``, ...).
    """
    out = []
    for i, point in enumerate(points, 1):
        row = run(RunSpec(model, {**(budget or {}), **point}, seed=seed, quick=quick), **kwargs)
        out.append(line(point, row))
        if verbose:
            settings = ", ".join(f"{k}={v}" for k, v in point.items())
            print(f"{i:2d}/{len(points)}  {settings}: validation {row['val']['accuracy']:.2%} "
                  f"({row['parameters']:,} parameters, {row['train_seconds']:.0f} s)")
    return out


def best(lines: list, key: str = "val_acc") -> dict:
    """The line with the highest ``key``; the first one on ties."""
    if not lines:
        raise VitTutorialError("no results to choose from")
    return max(lines, key=lambda r: r[key])

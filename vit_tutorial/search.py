"""Grid search: train many variants under one budget and compare them on the validation set.

A point of the grid is a dict. Keys that are fields of ``ViTConfig``
(``patch_size``, ``depth``, ``embed_dim``, ...) change the model; the other
keys are keyword arguments of ``fit`` (``lr``, ``augment``,
``augment_strength``, ``epochs``, ...). Every point goes through the same
``fit``; the test set is never looked at here.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import time
from pathlib import Path

from .augment import Augment
from .config import ViTConfig
from .data import ImageDataset
from .errors import VitTutorialError
from .model import ViT
from .training import fit
from .utils import atomic_write

CONFIG_FIELDS = {f.name for f in dataclasses.fields(ViTConfig)}
FIT_ARGS = {"epochs", "batch_size", "lr", "weight_decay", "warmup_epochs", "label_smoothing", "augment",
            "augment_strength", "grad_clip", "amp"}


RESULT_KEYS = ("val_acc", "best_val_acc", "train_acc", "parameters", "epochs", "images_seen", "seconds")


def grid(**axes) -> list[dict]:
    """Every combination of the values given per key, e.g. ``grid(depth=[2, 4], lr=[1e-3, 3e-3])`` -> 4 points."""
    for key, values in axes.items():
        if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
            raise VitTutorialError(f"grid axis {key!r} needs a list of values, not {values!r}")
    keys = list(axes)
    return [dict(zip(keys, combo)) for combo in itertools.product(*axes.values())]


def split_point(point: dict) -> tuple[dict, dict]:
    """(changes to the model's config, changes to fit's arguments)."""
    unknown = set(point) - CONFIG_FIELDS - FIT_ARGS
    if unknown:
        raise VitTutorialError(f"unknown grid keys: {', '.join(sorted(unknown))}; use ViTConfig fields or "
                               f"fit arguments ({', '.join(sorted(FIT_ARGS))})")
    return ({k: v for k, v in point.items() if k in CONFIG_FIELDS},
            {k: v for k, v in point.items() if k in FIT_ARGS})


def _jsonable(value):
    return value.record() if isinstance(value, Augment) else value


# Config fields added after results were first saved, with the value every earlier model had: left out of the
# key at that value, so that a new option does not orphan the saved results of the trials that do not use it.
LATER_FIELDS = {"lsa": False}


def trial_key(config: ViTConfig, fit_kwargs: dict, seed: int, train: ImageDataset, val: ImageDataset) -> str:
    """A name for one trial that changes whenever anything that affects its result changes."""
    fields = {k: v for k, v in config.to_dict().items() if not (k in LATER_FIELDS and v == LATER_FIELDS[k])}
    what = dict(config=fields, fit={k: _jsonable(v) for k, v in sorted(fit_kwargs.items())},
                seed=seed, data=[train.name, len(train), int(train.labels.sum()), len(val), int(val.labels.sum())])
    return hashlib.sha1(json.dumps(what, sort_keys=True).encode()).hexdigest()[:16]


def run_trial(point: dict, base: ViTConfig, recipe: dict, train: ImageDataset, val: ImageDataset, *,
              seed: int = 0, cache_dir: str | Path | None = None, device=None) -> dict:
    """Train ``base`` changed by ``point`` with ``recipe`` changed by ``point``; one result row.

    With ``cache_dir``, the row is kept as JSON and a second call with the same
    settings returns it without training (re-running a notebook is then cheap).
    """
    config_changes, fit_changes = split_point(point)
    config = base.replace(**config_changes)
    kwargs = {**recipe, **fit_changes}
    path = Path(cache_dir) / f"{trial_key(config, kwargs, seed, train, val)}.json" if cache_dir else None
    settings = {k: _jsonable(v) for k, v in point.items()}
    if path is not None and path.is_file():
        try:
            # The same trial may have been asked for under other keys (a grid that spells out
            # the book's depth, another that leaves it at its default): the row uses this point's.
            cached = json.loads(path.read_text())
            return {**settings, **{k: v for k, v in cached.items() if k in RESULT_KEYS}}
        except (OSError, json.JSONDecodeError):
            pass  # a damaged cache entry: train again and overwrite it
    model = ViT(config)
    t0 = time.perf_counter()
    history = fit(model, train, val, **kwargs, seed=seed, device=device, progress=False, verbose=False)
    row = {**settings,
           "val_acc": history.val_acc[-1], "best_val_acc": max(history.val_acc),
           "train_acc": history.train_acc[-1], "parameters": model.num_parameters(),
           "epochs": len(history), "images_seen": len(history) * len(train),
           "seconds": time.perf_counter() - t0}
    if path is not None:
        atomic_write(path, lambda f: f.write(json.dumps(row, indent=1).encode()))
    return row


def run_grid(points: list, base: ViTConfig, recipe: dict, train: ImageDataset, val: ImageDataset, *,
             seed: int = 0, cache_dir: str | Path | None = None, device=None, verbose: bool = True) -> list:
    """``run_trial`` for every point, in order, printing one line per point; the rows."""
    rows = []
    for i, point in enumerate(points, 1):
        row = run_trial(point, base, recipe, train, val, seed=seed, cache_dir=cache_dir, device=device)
        rows.append(row)
        if verbose:
            settings = ", ".join(f"{k}={v}" for k, v in point.items())
            print(f"{i:2d}/{len(points)}  {settings}: validation {row['val_acc']:.2%} "
                  f"({row['parameters']:,} parameters, {row['seconds']:.0f} s)")
    return rows


def best(rows: list, key: str = "val_acc") -> dict:
    """The row with the highest ``key``; the first one on ties."""
    if not rows:
        raise VitTutorialError("no results to choose from")
    return max(rows, key=lambda r: r[key])

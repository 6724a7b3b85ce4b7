"""The one runner: a run's description in, a result row out.

Everything in the book that trains a model and keeps its result goes through
``run``: the command line, the notebooks, the lab's cross-validations and
sweeps. A ``RunSpec`` names a model of the registry, the changes made to it,
which of its data it trains on (all its training images, a class-balanced
subset, or one fold of a cross-validation), the seed and quick mode. ``run``
trains it (or finds its row, when it was run before) and returns the row of
``results.py``; ``train`` does the same and also hands back the model.

In one pass: registry (configuration and recipe) -> data -> ``fit`` -> scores
-> row. Training repeats exactly on one machine: the seed fixes the subset,
the initial weights (``set_seed`` just before the model is built), the order
of the images, the augmentation and dropout.
"""

from __future__ import annotations

import dataclasses
import json
import shlex
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from . import registry
from .checkpoint import config_from_payload, model_from_payload, read_checkpoint
from .cnn import CNNConfig
from .config import build_model
from .data import ImageDataset, Splits, load_dataset, stratified_sample
from .errors import VitTutorialError
from .evaluation import evaluate
from .machine import commit, machine_info
from .results import RESULTS, SCHEMA, key_config, key_of, read_row, row_path, scored, write_row
from .training import History, check_recipe, fit
from .utils import project_root, set_seed, shown_path

ROOT = project_root(Path(__file__).parent)
DATA = ROOT / "data"
RUNS = ROOT / "runs"
CHECKPOINTS = ROOT / "checkpoints"

# The keyword arguments of fit that a recipe may hold (the rest of a run's changes are fields of its configuration).
RECIPE_KEYS = ("epochs", "batch_size", "lr", "weight_decay", "warmup_epochs", "label_smoothing", "augment",
               "augment_strength", "grad_clip", "amp", "teacher", "distill", "distill_weight", "distill_temperature",
               "ema")
# In quick mode the validation and test splits are scored on at most this many images each.
QUICK_EVAL_SIZE = 1000


@dataclass
class RunSpec:
    """One run: a model id, changes to its configuration or recipe, its data, its seed.

    ``train_size``: train on a class-balanced subset of that many training
    images (drawn with ``seed``). ``cv=(folds, fold, split_seed)``: pool the
    training and validation splits, cut them into ``folds`` class-balanced
    folds (shuffled with ``split_seed``), train on all but fold ``fold`` and
    score that one in place of the validation split. ``read_test``: also score
    the test split (a cross-validation never does). ``quick``: the recipe's
    quick form (``registry.recipe``) on ``registry.QUICK_TRAIN_SIZE`` images.
    """

    model: str
    changes: dict = field(default_factory=dict)
    train_size: int | None = None
    seed: int = 0
    quick: bool = False
    cv: tuple | None = None
    read_test: bool = False

    def __post_init__(self):
        spec = registry.get(self.model)  # an unknown or retired id fails here, before any work
        self.changes = dict(self.changes)
        fields = {f.name for f in dataclasses.fields(spec.config)}
        unknown = sorted(set(self.changes) - fields - set(RECIPE_KEYS))
        if unknown:
            raise VitTutorialError(f"{self.model} has no setting {', '.join(unknown)}: a change is a field of its "
                                   f"configuration ({', '.join(sorted(fields))}) or of its recipe "
                                   f"({', '.join(RECIPE_KEYS)})")
        if self.cv is not None:
            folds, fold, split_seed = (int(v) for v in self.cv)
            if not 2 <= folds or not 0 <= fold < folds:
                raise VitTutorialError(f"a cross-validation fold is (folds >= 2, fold in 0..folds-1, split seed), "
                                       f"not {self.cv}")
            if self.read_test:
                raise VitTutorialError("a cross-validation never reads the test split")
            self.cv = (folds, fold, split_seed)
        if self.train_size is not None and (not isinstance(self.train_size, int) or self.train_size < 1):
            raise VitTutorialError(f"train_size must be a positive number of images, not {self.train_size!r}")
        self.config()  # an impossible configuration fails now too

    @property
    def dataset(self) -> str:
        return registry.get(self.model).dataset

    def config(self):
        return registry.config(self.model, **{k: v for k, v in self.changes.items() if k not in RECIPE_KEYS})

    def recipe(self) -> dict:
        """fit's keyword arguments (the teacher, if any, as an id or a checkpoint path)."""
        return registry.recipe(self.model, quick=self.quick,
                               **{k: v for k, v in self.changes.items() if k in RECIPE_KEYS})

    def key(self) -> str:
        config = self.config()
        return key_of({"model": self.model, "kind": "cnn" if isinstance(config, CNNConfig) else "vit",
                       "config": key_config(config.to_dict()), "recipe": jsonable(self.recipe()),
                       "data": {"dataset": self.dataset, "train_size": self.train_size,
                                "cv": list(self.cv) if self.cv else None},
                       "seed": self.seed, "quick": self.quick})

    def name(self) -> str:
        """The row's file name (without ``.json``): what it is in words, then its key."""
        parts = []
        if self.train_size is not None:
            parts.append(f"n{self.train_size}")
        if self.cv is not None:
            folds, fold, split_seed = self.cv
            parts.append(f"cv{folds}-{fold}" + (f"-split{split_seed}" if split_seed else ""))
        parts.append(f"seed{self.seed}")
        if self.quick:
            parts.append("quick")
        return "-".join(parts) + "-" + self.key()[:8]

    def path(self, root: str | Path = RESULTS) -> Path:
        return row_path(root, self.model, self.name())

    def command(self, out: str | None = None) -> str:
        """The command that runs this spec and writes its row."""
        sets = [f"--set {shlex.quote(f'{k}={v}')}" for k, v in sorted(self.changes.items())]
        if self.cv is not None:
            folds, fold, split_seed = self.cv
            candidate = ",".join([f"run={self.model}", *(f"{k}={v}" for k, v in sorted(self.changes.items()))])
            return f"python lab/cv.py --folds {folds} --split-seed {split_seed} {shlex.quote(candidate)}"
        words = ["python -m vit_tutorial train", f"--model {self.model}", f"--out {out or f'runs/{self.model}'}", *sets]
        if self.train_size is not None:
            words.append(f"--train-size {self.train_size}")
        if self.seed:
            words.append(f"--seed {self.seed}")
        if self.quick:
            words.append("--quick")
        if self.read_test:
            words.append("--read-test")
        return " ".join(words)


def jsonable(value):
    """``value`` as JSON keeps it: tuples as lists, an augmentation by its record, a model by its class."""
    from .augment import Augment

    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, Augment):
        return value.record()
    if isinstance(value, torch.nn.Module):
        return type(value).__name__
    if isinstance(value, Path):
        return str(value)
    return value


@dataclass
class Run:
    """What ``train`` returns: the row, and the model and history it was made from."""

    row: dict
    model: torch.nn.Module
    history: History
    splits: Splits


# --------------------------------------------------------------------------- data

_SPLITS: dict = {}


def load_splits(dataset: str, data_root: str | Path | None = None) -> Splits:
    """The splits of ``dataset`` (a dataset id of the registry), loaded once per process and root.

    No stand-in: ``mnist`` is the full MNIST or an error (its sample is ``mnist-sample``).
    """
    root = Path(data_root) if data_root is not None else DATA
    key = (dataset, str(root.resolve()))
    if key not in _SPLITS:
        _SPLITS[key] = load_dataset(dataset, root, verbose=False, fallback=False)
    return _SPLITS[key]


def cv_pool(splits: Splits, folds: int, split_seed: int = 0) -> tuple:
    """The training and validation splits pooled, and its ``folds`` class-balanced folds: (pool, [(train, held)])."""
    from sklearn.model_selection import StratifiedKFold

    pool = ImageDataset(torch.cat([splits.train.images, splits.val.images]),
                        torch.cat([splits.train.labels, splits.val.labels]), splits.train.classes, splits.train.name)
    if folds > len(pool) or folds > int(torch.bincount(pool.labels).min()):
        raise VitTutorialError(f"{folds} folds need at least {folds} images of every class")
    cut = StratifiedKFold(folds, shuffle=True, random_state=split_seed).split(np.zeros(len(pool)), pool.labels.numpy())
    return pool, [(np.sort(a), np.sort(b)) for a, b in cut]


def run_data(spec: RunSpec, splits: Splits) -> tuple:
    """(training images, images scored as "val") of ``spec``."""
    if spec.cv is not None:
        folds, fold, split_seed = spec.cv
        pool, cut = cv_pool(splits, folds, split_seed)
        train_idx, held_out = cut[fold]
        return pool.subset(train_idx), pool.subset(held_out)
    train = splits.train
    if spec.train_size is not None:
        train = stratified_sample(train, spec.train_size, spec.seed)
    elif spec.quick:
        train = train.sample(registry.QUICK_TRAIN_SIZE, spec.seed)
    return train, splits.val


def _eval_set(data: ImageDataset, quick: bool) -> ImageDataset:
    return data.sample(QUICK_EVAL_SIZE, 0) if quick else data


# --------------------------------------------------------------------------- shipped checkpoints and teachers


def checkpoint_path(model_id: str, root: str | Path | None = None) -> Path:
    """Where model ``model_id`` ships, e.g. ``checkpoints/mnist-sample/vit.pt`` (under ``root``: checkpoints/)."""
    dataset, _, arch = registry.get(model_id).id.partition("/")
    return Path(root if root is not None else CHECKPOINTS) / dataset / f"{arch}.pt"


def shipped_differences(payload: dict, model_id: str) -> list:
    """How a checkpoint's model differs from ``model_id`` trained with its recipe: [] where it does not.

    Compares the configuration and the recipe's settings that ``fit``
    recorded (epochs, batch, learning rate, weight decay, warm-up, label
    smoothing, augmentation, whether a teacher taught it), and the data.
    """
    from .augment import get_augment

    spec = registry.get(model_id)
    out = []
    try:
        config = config_from_payload(payload)
    except (VitTutorialError, KeyError):
        config = None
    if config != spec.config:
        out.append(f"another model than {model_id}")
    settings = json.loads(payload.get("train_settings", "{}"))
    recipe = spec.recipe
    for key in ("epochs", "batch_size", "lr", "weight_decay", "warmup_epochs", "label_smoothing"):
        if settings.get(key) != recipe[key]:
            out.append(f"{key} {settings.get(key)} (the recipe: {recipe[key]})")
    if settings.get("augment") != get_augment(recipe["augment"], recipe.get("augment_strength", 1.0)).record():
        out.append("another augmentation")
    if ("distill" in settings) != (spec.teacher is not None):
        out.append("a teacher" if "distill" in settings else "no teacher")
    trained_on = settings.get("dataset")
    if trained_on is not None and not (trained_on == spec.dataset
                                       or (spec.dataset == "mnist-sample" and trained_on == "mnist"
                                           and settings.get("train_size") == 4000)):
        out.append(f"trained on {trained_on}")
    return out


def load_shipped(model_id: str, root: str | Path | None = None):
    """(model, history, payload) of ``model_id``'s shipped checkpoint; None where none ships or it is of
    another model or recipe than the registry's (a line then says so)."""
    path = checkpoint_path(model_id, root)
    if not path.is_file():
        return None
    payload = read_checkpoint(path)
    changed = shipped_differences(payload, model_id)
    if changed:
        print(f"Note: {shown_path(path)} was trained with {', '.join(changed)}; it is not taken for {model_id}")
        return None
    return model_from_payload(payload, shown_path(path)), History.from_dict(payload["history"]), payload


def teacher_model(spec: RunSpec, splits: Splits, *, data_root=None, device=None, progress: bool = False,
                  shipped: bool = True):
    """The trained teacher that ``spec``'s recipe names, as a model.

    A checkpoint path is loaded. An id is, for a run on the whole training
    split (quick mode included), the shipped checkpoint of that id where one
    ships (and ``shipped``); for a subset or a fold, that model trained on the
    same images from the same seed (it never sees the images ``spec`` is
    scored on). Teachers trained here are kept under ``runs/`` and reused.
    """
    teacher = spec.recipe().get("teacher")
    if teacher is None:
        return None
    if str(teacher).endswith(".pt"):
        from .checkpoint import check_dataset

        payload = read_checkpoint(teacher)
        check_dataset(payload, spec.dataset, teacher)
        return model_from_payload(payload, teacher)
    whole = spec.train_size is None and spec.cv is None
    if whole and shipped:
        found = load_shipped(teacher)
        if found is not None:
            return found[0]
    tspec = RunSpec(teacher, train_size=spec.train_size, seed=spec.seed, quick=spec.quick, cv=spec.cv)
    if spec.train_size is None and spec.cv is None and spec.seed == 0:  # the book's own run of that model
        out = RUNS / "quick" / teacher if spec.quick else RUNS / teacher
    else:
        out = RUNS / "teachers" / tspec.model / tspec.name()
    return train(tspec, splits=splits, data_root=data_root, out_dir=out, device=device, progress=progress).model


# --------------------------------------------------------------------------- running


def make_row(spec: RunSpec, model, history: History, splits: Splits, train_set: ImageDataset,
             scored_set: ImageDataset, seconds: float, device=None, command: str | None = None) -> dict:
    """The row of a trained model: scored on ``scored_set`` (validation, or the held-out fold), and on the test
    split where ``spec.read_test``."""
    config = spec.config()
    val = evaluate(model, scored_set, device="cpu")
    test = None
    if spec.read_test:
        ev = evaluate(model, _eval_set(splits.test, spec.quick), device="cpu")
        test = scored(ev.predictions == ev.labels)
    cv = None
    if spec.cv is not None:
        folds, fold, split_seed = spec.cv
        cv = {"folds": folds, "fold": fold, "split_seed": split_seed, "pool": len(splits.train) + len(splits.val)}
    return {
        "schema": SCHEMA,
        "key": spec.key(),
        "model": spec.model,
        "changes": jsonable(spec.changes),
        "kind": "cnn" if isinstance(config, CNNConfig) else "vit",
        "config": config.to_dict(),
        "recipe": jsonable(spec.recipe()),
        "data": {"dataset": splits.dataset, "source": splits.source, "train": len(train_set), "val": len(scored_set),
                 "test": len(splits.test), "train_size": spec.train_size, "cv": cv},
        "seed": spec.seed,
        "quick": spec.quick,
        "parameters": model.num_parameters(),
        "epochs": len(history),
        "images_seen": len(history) * len(train_set),
        "train_acc": history.train_acc[-1] if len(history) else None,
        "val": scored(val.predictions == val.labels),
        "test": test,
        "train_seconds": float(sum(history.seconds)),
        "wall_seconds": seconds,
        "machine": machine_info(device or "cpu"),
        "commit": commit(),
        "command": command or spec.command(),
        "converted_from": None,
        "note": None,
    }


def train(spec: RunSpec, *, splits: Splits | None = None, data_root=None, out_dir: str | Path | None = None,
          resume: bool = True, device=None, progress: bool = False, verbose: bool = False, teacher=None,
          shipped_teacher: bool = True, snapshot_epochs=(), command: str | None = None) -> Run:
    """Train ``spec``'s model and score it: its ``Run`` (row, model, history, splits).

    With ``out_dir`` the run is saved there after every epoch (``fit``); with
    ``resume`` an interrupted run goes on and a finished one is loaded, not
    trained again. ``teacher`` (a model) replaces the teacher the recipe names; ``shipped_teacher=False``
    trains the recipe's teacher rather than loading its shipped checkpoint.
    """
    splits = splits if splits is not None else load_splits(spec.dataset, data_root)
    if splits.dataset != spec.dataset:
        raise VitTutorialError(f"{spec.model} trains on {spec.dataset}, and these splits hold {splits.dataset}")
    kwargs = spec.recipe()
    check_recipe(kwargs)
    train_set, scored_set = run_data(spec, splits)
    if "teacher" in kwargs:
        kwargs["teacher"] = teacher if teacher is not None else teacher_model(
            spec, splits, data_root=data_root, device=device, shipped=shipped_teacher)
    set_seed(spec.seed)
    model = build_model(spec.config())
    start = time.perf_counter()
    watched = _eval_set(scored_set, spec.quick) if out_dir is not None else None  # validated after every epoch
    history = fit(model, train_set, watched, **kwargs, seed=spec.seed,
                  device=device, out_dir=out_dir, resume=resume and out_dir is not None,
                  snapshot_epochs=snapshot_epochs, progress=progress, verbose=verbose)
    seconds = time.perf_counter() - start
    model.cpu().eval()
    row = make_row(spec, model, history, splits, train_set, _eval_set(scored_set, spec.quick), seconds, device,
                   command)
    return Run(row, model, history, splits)


def cached(spec: RunSpec, cache: str | Path = RESULTS) -> dict | None:
    """``spec``'s row under ``cache`` if it was run before (and read its test split, where ``spec`` asks to)."""
    path = spec.path(cache)
    if not path.is_file():
        return None
    try:
        row = read_row(path)
    except VitTutorialError as e:
        print(f"Note: {e}; running it again")
        return None
    if row["key"] != spec.key() or (spec.read_test and row["test"] is None):
        return None
    return row


def run(spec: RunSpec, *, cache: str | Path | None = RESULTS, **kwargs) -> dict:
    """``spec``'s row: read back from ``cache`` where it was run before, else trained (``train``) and kept there.

    ``cache=None`` neither reads nor writes rows. ``kwargs`` go to ``train``.
    """
    if cache is not None:
        row = cached(spec, cache)
        if row is not None:
            return row
    row = train(spec, **kwargs).row
    if cache is not None:
        write_row(spec.path(cache), row)
    return row


def cross_validate(spec: RunSpec, folds: int, split_seed: int = 0, *, cache: str | Path | None = RESULTS,
                   log=None, **kwargs) -> dict:
    """Every fold of a cross-validation of ``spec`` (its model and changes), pooled.

    Fold k trains from seed ``k + folds * split_seed`` (k for split seed 0).
    Each fold's row is kept as soon as it is scored, so an interrupted
    cross-validation starts again at the fold it was training. Returns
    {"rows": [...], "correct": (pool,) booleans in the pool's order, "seconds"}.
    """
    from .results import correct_of

    fold_rows, correct = [], None
    for k in range(folds):
        fold_spec = dataclasses.replace(spec, cv=(folds, k, split_seed), seed=k + folds * split_seed,
                                        read_test=False)
        start = time.perf_counter()
        row = run(fold_spec, cache=cache, **kwargs)
        fold_rows.append(row)
        if correct is None:
            correct = torch.zeros(row["data"]["cv"]["pool"], dtype=torch.bool)
        splits = kwargs.get("splits") or load_splits(spec.dataset, kwargs.get("data_root"))
        _, cut = cv_pool(splits, folds, split_seed)
        correct[torch.as_tensor(cut[k][1])] = correct_of(row["val"])
        if log:
            took = time.perf_counter() - start
            how = "read back" if took < 1 else f"{took:.0f} s"
            log(f"  fold {k + 1}/{folds}: {100 * row['val']['accuracy']:.2f} % of {row['val']['images']} "
                f"held-out images, {how}")
    return {"rows": fold_rows, "correct": correct, "seconds": sum(r["train_seconds"] or 0 for r in fold_rows)}

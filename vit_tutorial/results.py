"""Results as data: one JSON file per scored run, in one schema.

A *row* records one model trained once and scored: which model (its id, the
changes made to it, the configuration and recipe it actually had), on which
data (dataset, split sizes, a class-balanced subset or a cross-validation
fold), from which seed, in quick mode or not; then its accuracy on the
validation images (for a cross-validation fold: the fold it left out) and,
only where the test split was read, on the test images, each with its Wilson
95 % interval and which images it got right; the seconds it took, the
machine, the torch version, the commit and the command that reproduces it.

Rows live under ``results/`` (in the repository: what the book and the
tables are made from), one folder per model id, e.g.
``results/mnist-sample/vit/seed0-1a2b3c4d.json``. The file name ends in the
row's *key*, a hash of everything the result depends on, so a second request
for the same run finds it (``runner.run``). A row converted from an older log
(a number measured before rows existed) says so in ``converted_from``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch

from .errors import VitTutorialError
from .evaluation import wilson_interval
from .utils import atomic_write, project_root

SCHEMA = "vit_tutorial/row/1"
ROOT = project_root(Path(__file__).parent)
RESULTS = ROOT / "results"

# Fields every row has (``check_row`` refuses a file without them).
REQUIRED = ("schema", "key", "model", "changes", "config", "recipe", "data", "seed", "quick", "val", "test")

# Configuration fields added after rows were first written, at the value every earlier model had: left out of
# the key at that value, so that a new option does not orphan the rows of the runs that do not use it.
LATER_FIELDS = {"pos_temperature": 10000.0}


def bits(correct: torch.Tensor) -> str:
    """Right or wrong for every image, as a row keeps it: "1" right, "0" wrong."""
    return "".join("1" if c else "0" for c in torch.as_tensor(correct).bool().tolist())


def scored(correct: torch.Tensor) -> dict:
    """The part of a row for one split: images, correct, accuracy, Wilson 95 % interval, the per-image bits."""
    correct = torch.as_tensor(correct).bool()
    n, k = len(correct), int(correct.sum())
    lo, hi = wilson_interval(k, n)
    return {"images": n, "correct": k, "accuracy": k / n if n else float("nan"), "low": lo, "high": hi,
            "bits": bits(correct)}


def scored_counts(correct: int, n: int) -> dict:
    """A split's part for a number converted from a log that kept only the count, not the per-image answers."""
    lo, hi = wilson_interval(correct, n)
    return {"images": n, "correct": correct, "accuracy": correct / n, "low": lo, "high": hi, "bits": None}


def correct_of(part: dict) -> torch.Tensor:
    """The (M,) booleans of a split's part: which images the model got right."""
    if not part or part.get("bits") is None:
        raise VitTutorialError("this result kept no per-image answers (it was converted from a log)")
    return torch.tensor([c == "1" for c in part["bits"]])


def key_of(what: dict) -> str:
    """A 16-hex-digit name for ``what`` (model, configuration, recipe, data, seed, quick): the row's key."""
    text = json.dumps(what, sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def key_config(config: dict) -> dict:
    """A configuration as the key sees it: ``LATER_FIELDS`` at their old value left out."""
    return {k: v for k, v in config.items() if not (k in LATER_FIELDS and v == LATER_FIELDS[k])}


def row_path(root: str | Path, model: str, name: str) -> Path:
    """Where a row of model ``model`` (an id such as "fashion-mnist/vit+kd") named ``name`` lives under ``root``."""
    dataset, _, arch = model.partition("/")
    return Path(root) / dataset / arch / f"{name}.json"


def check_row(row, path: str | Path = "row") -> dict:
    """``row`` if it is a row of this schema; a one-line error otherwise."""
    if not isinstance(row, dict) or row.get("schema") != SCHEMA:
        raise VitTutorialError(f"{path} is not a result row of {SCHEMA}")
    missing = [k for k in REQUIRED if k not in row]
    if missing:
        raise VitTutorialError(f"{path} lacks {', '.join(missing)}")
    for split in ("val", "test"):
        part = row[split]
        if part is None:
            continue
        if not isinstance(part, dict) or not {"images", "correct", "accuracy", "bits"} <= set(part):
            raise VitTutorialError(f"{path}: its {split} part is not a scored split")
        b = part["bits"]
        if b is not None and (not isinstance(b, str) or len(b) != part["images"] or set(b) - {"0", "1"}
                              or b.count("1") != part["correct"]):
            raise VitTutorialError(f"{path}: its {split} answers do not match its counts")
    return row


def read_row(path: str | Path) -> dict:
    """A row from its file, checked; a one-line error for a missing, damaged or foreign file."""
    path = Path(path)
    try:
        row = json.loads(path.read_text())
    except FileNotFoundError:
        raise VitTutorialError(f"result not found: {path}") from None
    except (OSError, ValueError) as e:
        raise VitTutorialError(f"cannot read {path}: {type(e).__name__}") from None
    return check_row(row, path)


def write_row(path: str | Path, row: dict) -> Path:
    """Write ``row`` to ``path`` atomically (a crash never leaves half a file), one key per line."""
    check_row(row, path)
    text = json.dumps(row, indent=1, sort_keys=True) + "\n"
    atomic_write(path, lambda f: f.write(text.encode()))
    return Path(path)


def rows(root: str | Path = RESULTS, model: str | None = None) -> list:
    """Every row under ``root`` (or those of one model id), in file-name order."""
    root = Path(root)
    folder = root if model is None else row_path(root, model, "x").parent
    return [read_row(p) for p in sorted(folder.rglob("*.json"))] if folder.is_dir() else []

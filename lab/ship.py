"""Ship a finished run of the book: its checkpoint in half precision, and its row.

    python lab/ship.py MODEL_ID RUN_FOLDER [--row-only] [--snapshots]

``RUN_FOLDER`` is where ``python -m vit_tutorial train --model MODEL_ID --out
RUN_FOLDER`` trained the model with its registered recipe (a run of another
model or recipe is refused). The weights go to
``checkpoints/DATASET/ARCHITECTURE.pt`` in half precision (the input
normalisation kept exact), with the configuration, history, training
settings and the command that trains it; ``--snapshots`` also ships the
weights ``fit`` kept during training. The shipped weights are then scored
once on the validation and the test split, and that row is written to
``results/`` where the book and the tables read it. ``--row-only`` ships the
row alone, for a model whose weights would take ``checkpoints/`` past its
budget (``BUDGET`` bytes of ``.pt`` files in all).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from vit_tutorial.checkpoint import FORMAT, model_from_payload, read_checkpoint  # noqa: E402
from vit_tutorial.errors import VitTutorialError  # noqa: E402
from vit_tutorial.evaluation import count_summary  # noqa: E402
from vit_tutorial.results import RESULTS, write_row  # noqa: E402
from vit_tutorial.runner import RunSpec, checkpoint_path, load_splits, make_row, shipped_differences  # noqa: E402
from vit_tutorial.training import History  # noqa: E402
from vit_tutorial.utils import atomic_write, shown_path  # noqa: E402

BUDGET = 20_000_000  # bytes: every shipped .pt file together
# Snapshot epochs the shipped snapshots leave out, to keep checkpoints/ within its budget. Epoch 2 stays: the
# attention maps take shape between epochs 2 and 5.
SNAPSHOTS_LEFT_OUT = (1, 40)


def half(state: dict) -> dict:
    """Weights in half precision; the input normalisation (``mean``, ``std``: a few numbers) kept exact."""
    return {k: v.half() if v.is_floating_point() and k not in ("mean", "std") else v for k, v in state.items()}


def ship(model_id: str, run: Path, row_only: bool = False, with_snapshots: bool = False) -> dict:
    src = run / "checkpoint.pt"
    payload = read_checkpoint(src)
    changed = shipped_differences(payload, model_id)
    if changed:
        raise VitTutorialError(f"{shown_path(src)} is not {model_id} trained with its recipe: {', '.join(changed)}")
    spec = RunSpec(model_id, read_test=True)
    keep = ("kind", "config", "epoch", "history", "train_settings", "classes", "dataset")
    shipped = {k: payload[k] for k in keep if k in payload}
    shipped.update(format=FORMAT, model=half(payload["model"]), model_id=model_id, command=RunSpec(model_id).command())
    model = model_from_payload(shipped, src)
    history = History.from_dict(payload["history"])
    splits = load_splits(spec.dataset)
    row = make_row(spec, model, history, splits, splits.train, splits.val, float(sum(history.seconds)),
                   command=shipped["command"])
    row["note"] = "the shipped half-precision weights scored" + ("; not shipped as a checkpoint" if row_only else "")
    if not row_only:
        dst = checkpoint_path(model_id)
        atomic_write(dst, lambda f: torch.save(shipped, f))
        if with_snapshots:
            files = sorted((run / "snapshots").glob("epoch_*.pt"))
            snaps = {str(int(f.stem.split("_")[1])): half(read_checkpoint(f)["model"]) for f in files
                     if int(f.stem.split("_")[1]) not in SNAPSHOTS_LEFT_OUT}
            snaps.pop(str(int(shipped["epoch"])), None)  # the shipped model itself: book.snapshots takes it from there
            pack = {k: shipped[k] for k in ("format", "kind", "config", "dataset", "command")}
            pack["snapshots"] = snaps
            atomic_write(dst.with_name(dst.stem + "-snapshots.pt"), lambda f: torch.save(pack, f))
        total = sum(p.stat().st_size for p in (ROOT / "checkpoints").rglob("*.pt"))
        if total > BUDGET:
            print(f"warning: checkpoints/ now holds {total:,} bytes of weights, over its budget of {BUDGET:,}")
    write_row(spec.path(RESULTS), row)
    return row


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("run", type=Path)
    ap.add_argument("--row-only", action="store_true", help="ship the row, not the weights")
    ap.add_argument("--snapshots", action="store_true", help="also ship the weights kept during training")
    args = ap.parse_args(argv)
    try:
        row = ship(args.model, args.run, args.row_only, args.snapshots)
    except VitTutorialError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(count_summary(row["val"]["correct"], row["val"]["images"], "validation accuracy"))
    print(count_summary(row["test"]["correct"], row["test"]["images"], "test accuracy"))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Accuracy per unit of compute: train from scratch with the package's defaults, report once.

    python benchmarks/accuracy.py --dataset mnist
    python benchmarks/accuracy.py --dataset fashion-mnist [--preset fashion-mnist-hybrid] [--epochs 30]

Exploring a recipe without touching the test split: ``--no-test`` trains and
reports the validation accuracy only, ``--set pool=mean`` changes a field of the
preset, ``--lr`` the learning rate; later ``--resume --out RUN`` (with the same
settings) scores the chosen run's test split, without training it again.

Trains the dataset's preset (or ``--preset``: a ViT, a hybrid or a CNN) with its recipe (the same ones the
notebooks and the command line use), on the training split, watching the
validation split; then evaluates the test split once and prints: test
accuracy, epochs, images seen, parameters, wall time, the data used and the
machine. Nothing is chosen with the test split.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from throughput import machine_info  # noqa: E402  (the machine, printed the same way by both benchmarks)

from vit_tutorial import evaluate, fit, load_dataset, set_seed  # noqa: E402
from vit_tutorial.book import LOADED_FROM, with_teacher  # noqa: E402
from vit_tutorial.checkpoint import check_dataset, check_run_folder, model_from_payload, read_checkpoint  # noqa: E402
from vit_tutorial.config import build_model, preset, recipe  # noqa: E402
from vit_tutorial.data import DATASETS  # noqa: E402
from vit_tutorial.errors import VitTutorialError  # noqa: E402
from vit_tutorial.training import DISTILL_KINDS, choose_amp  # noqa: E402
from vit_tutorial.utils import resolve_device, shown_path  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dataset", required=True, choices=DATASETS)
    p.add_argument("--preset", help="model preset, e.g. mnist-hybrid or fashion-mnist-cnn (default: the dataset's)")
    p.add_argument("--augment", help="augmentation (default: the recipe's)")
    p.add_argument("--batch-size", type=int, help="batch size (default: the recipe's)")
    p.add_argument("--epochs", type=int, help="epochs (default: the dataset's recipe)")
    p.add_argument("--lr", type=float, help="peak learning rate (default: the recipe's)")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                   help="change one field of the preset, e.g. pool=mean or depth=8 (repeatable)")
    p.add_argument("--teacher", type=Path, metavar="CHECKPOINT",
                   help="distil from this trained classifier of the same dataset "
                   "(e.g. checkpoints/fashion-mnist-cnn.pt; default: the recipe's teacher, if any)")
    p.add_argument("--distill", choices=DISTILL_KINDS,
                   help="with a teacher: learn its top class (hard) or its probabilities (soft); default: the "
                   "recipe's, else hard")
    p.add_argument("--distill-weight", type=float, help="with a teacher: the share of the teacher's term (default 0.5)")
    p.add_argument("--distill-temperature", type=float, help="with soft distillation: the temperature (default 2)")
    p.add_argument("--no-test", action="store_true",
                   help="report the validation accuracy only; the test split is not read")
    p.add_argument("--resume", action="store_true",
                   help="continue (or, when finished, only score) the run in --out")
    p.add_argument("--overwrite", action="store_true",
                   help="train anew even where --out already holds a checkpoint (it is replaced after epoch 1)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-root", default="data")
    p.add_argument("--device", help="cpu or cuda (default: cuda if available)")
    p.add_argument("--out", type=Path, help="run folder for the checkpoint (default: runs/accuracy-DATASET)")
    p.add_argument("--json", type=Path, help="also write the results to this file")
    p.add_argument("--threads", type=int, help="compute threads (default: torch's, one per core)")
    return p.parse_args(argv)


def config_changes(pairs: list[str]):
    """``["pool=mean", "depth=8"]`` -> ``[("pool", "mean"), ("depth", 8)]``: numbers and tuples parsed, text kept."""
    for pair in pairs:
        field, sep, text = pair.partition("=")
        if not sep or not field:
            raise VitTutorialError(f"--set needs FIELD=VALUE, not {pair!r}")
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            value = text
        yield field.strip(), value


def with_teacher_of(args, kwargs: dict, splits) -> tuple[dict, str | None]:
    """The recipe ``kwargs`` with its teacher, if any, as a model, and where that model came from.

    ``--teacher CHECKPOINT`` wins over the recipe's teacher (a name, resolved by
    ``book.with_teacher``); the ``--distill*`` flags change how it teaches.
    """
    if args.teacher is not None:
        payload = read_checkpoint(args.teacher)
        check_dataset(payload, args.dataset, args.teacher)
        kwargs, source = dict(kwargs, teacher=model_from_payload(payload, args.teacher)), str(args.teacher)
    elif isinstance(kwargs.get("teacher"), str):  # the recipe's teacher: the book's shipped model, or trained first
        name = kwargs["teacher"]
        kwargs = with_teacher(kwargs, args.dataset, splits, quick=False, progress=False)
        source = str(shown_path(LOADED_FROM[name]))
    else:
        return kwargs, None
    flags = dict(distill=args.distill, distill_weight=args.distill_weight, distill_temperature=args.distill_temperature)
    return dict(kwargs, **{k: v for k, v in flags.items() if v is not None}), source


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    name = args.preset or args.dataset
    out = args.out or Path("runs") / f"accuracy-{name}"
    try:
        check_run_folder(out, args.resume, args.overwrite)
        args.device = resolve_device(args.device)
        splits = load_dataset(args.dataset, args.data_root)
    except VitTutorialError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    try:
        config = preset(name)
        fields = dict(config_changes(args.set))
        unknown = sorted(set(fields) - {f.name for f in dataclasses.fields(config)})
        if unknown:
            raise VitTutorialError(f"the {name} preset has no field {', '.join(unknown)}; its fields are "
                                   f"{', '.join(f.name for f in dataclasses.fields(config))}")
        config = config.replace(**fields)
    except VitTutorialError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    changes = {k: v for k, v in dict(epochs=args.epochs, augment=args.augment, batch_size=args.batch_size,
                                     lr=args.lr).items() if v is not None}
    kwargs = recipe(args.dataset, full=splits.full, preset=name, **changes)
    try:
        kwargs, teacher_source = with_teacher_of(args, kwargs, splits)
    except VitTutorialError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    teacher = kwargs.get("teacher")
    set_seed(args.seed)
    model = build_model(config)
    start = time.perf_counter()
    try:
        history = fit(model, splits.train, splits.val, **kwargs, seed=args.seed, device=args.device, out_dir=out,
                      resume=args.resume, progress=False)
    except VitTutorialError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    wall = time.perf_counter() - start
    val = evaluate(model, splits.val, device=args.device)
    device = next(model.parameters()).device
    result = {
        "dataset": args.dataset,
        "data": splits.source,
        "full_dataset": splits.full,
        "preset": name,
        "changes": fields,
        "recipe": {k: v for k, v in kwargs.items() if k != "teacher"},
        "teacher": teacher_source,
        "val_accuracy": val.accuracy,
        "val_interval95": list(val.interval),
        "val_images": len(splits.val),
        "val_accuracy_last_epoch": history.val_acc[-1],
        "epochs": len(history),
        "images_seen": len(history) * len(splits.train),
        "parameters": model.num_parameters(),
        "wall_seconds": wall,
        "training_seconds": sum(history.seconds),
        "amp": str(choose_amp(model, device, "auto") or "float32").replace("torch.", ""),
        "machine": machine_info(device),
    }
    m = result["machine"]
    lo, hi = val.interval
    print(f"\nval accuracy    {val.accuracy:.2%} (95 % interval {lo:.2%}-{hi:.2%}) on {len(splits.val):,} "
          f"validation images")
    if not args.no_test:
        test = evaluate(model, splits.test, device=args.device)
        result.update(test_accuracy=test.accuracy, test_interval95=list(test.interval), test_images=len(splits.test))
        lo, hi = test.interval
        print(f"test accuracy   {test.accuracy:.2%} (95 % interval {lo:.2%}-{hi:.2%}) on {len(splits.test):,} "
              f"test images ({splits.source})")
    if teacher is not None:
        print(f"teacher         {teacher_source} ({kwargs.get('distill', 'hard')} distillation)")
    if result["changes"]:
        print(f"changes         {', '.join(args.set)}")
    print(f"epochs          {result['epochs']}  ({result['images_seen']:,} images seen)")
    print(f"parameters      {result['parameters']:,}  (preset {result['preset']}, {result['amp']})")
    print(f"wall time       {wall:.0f} s  ({result['training_seconds']:.0f} s in training steps)")
    print(f"machine         {m['cpu']}, {m['cores_available']} cores, torch {m['torch']} "
          f"({m['torch_threads']} threads), capability {m['cpu_capability']}, "
          f"native bfloat16 {m['cpu_bf16'] or 'no'}, {m['device']}, {m['date']}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

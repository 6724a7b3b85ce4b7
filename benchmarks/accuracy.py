"""Accuracy per unit of compute: train from scratch with the package's defaults, report once.

    python benchmarks/accuracy.py --dataset mnist
    python benchmarks/accuracy.py --dataset fashion-mnist [--preset fashion-mnist] [--epochs 30]

Trains the dataset's preset with the dataset's recipe (the same ones the
notebooks and the command line use), on the training split, watching the
validation split; then evaluates the test split once and prints: test
accuracy, epochs, images seen, parameters, wall time, the data used and the
machine. Nothing is chosen with the test split.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from throughput import machine_info  # noqa: E402  (the machine, printed the same way by both benchmarks)

from vit_tutorial import ViT, evaluate, fit, load_dataset, preset, set_seed  # noqa: E402
from vit_tutorial.errors import VitTutorialError  # noqa: E402
from vit_tutorial.training import RECIPES, choose_amp, recipe  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dataset", required=True, choices=sorted(RECIPES))
    p.add_argument("--preset", help="model preset (default: the dataset's)")
    p.add_argument("--epochs", type=int, help="epochs (default: the dataset's recipe)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-root", default="data")
    p.add_argument("--device", help="cpu or cuda (default: cuda if available)")
    p.add_argument("--out", type=Path, help="run folder for the checkpoint (default: runs/accuracy-DATASET)")
    p.add_argument("--json", type=Path, help="also write the results to this file")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        splits = load_dataset(args.dataset, args.data_root)
    except VitTutorialError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    kwargs = recipe(args.dataset, full=splits.full, **({"epochs": args.epochs} if args.epochs else {}))
    set_seed(args.seed)
    model = ViT(preset(args.preset or args.dataset))
    out = args.out or Path("runs") / f"accuracy-{args.dataset}"
    start = time.perf_counter()
    history = fit(model, splits.train, splits.val, **kwargs, seed=args.seed, device=args.device, out_dir=out)
    wall = time.perf_counter() - start
    test = evaluate(model, splits.test, device=args.device)
    device = next(model.parameters()).device
    result = {
        "dataset": args.dataset,
        "data": splits.source,
        "full_dataset": splits.full,
        "preset": args.preset or args.dataset,
        "recipe": kwargs,
        "test_accuracy": test.accuracy,
        "test_images": len(splits.test),
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
    print(f"\ntest accuracy   {test.accuracy:.2%} on {len(splits.test):,} test images ({splits.source})")
    print(f"epochs          {result['epochs']}  ({result['images_seen']:,} images seen)")
    print(f"parameters      {result['parameters']:,}  (preset {result['preset']}, {result['amp']})")
    print(f"wall time       {wall:.0f} s  ({result['training_seconds']:.0f} s in training steps)")
    print(f"machine         {m['cpu']}, {m['cores_available']} cores, torch {m['torch']} "
          f"({m['torch_threads']} threads), AMX {'yes' if m['amx'] else 'no'}, {m['device']}, {m['date']}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

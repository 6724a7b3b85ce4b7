"""Score shipped checkpoints on a test split, once, with 95 % intervals and paired McNemar tests.

    python benchmarks/compare_test.py --dataset mnist checkpoints/mnist.pt checkpoints/mnist-hybrid.pt ...

Every model sees the same test images, so pairs are compared on the images
where they disagree (McNemar), not on two accuracies each with its own noise.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from vit_tutorial import evaluate, load_checkpoint, load_dataset  # noqa: E402
from vit_tutorial.errors import VitTutorialError  # noqa: E402
from vit_tutorial.evaluation import mcnemar  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dataset", required=True)
    p.add_argument("--data-root", default="data")
    p.add_argument("--split", default="test", choices=["val", "test"])
    p.add_argument("--json", type=Path)
    p.add_argument("checkpoints", nargs="+", type=Path)
    args = p.parse_args(argv)
    # each model is named by its file's stem; where two stems repeat (runs/a/checkpoint.pt, runs/b/checkpoint.pt),
    # by the path as given, so that no model's results replace another's
    stems = [path.stem for path in args.checkpoints]
    labels = [stem if stems.count(stem) == 1 else str(path) for stem, path in zip(stems, args.checkpoints)]
    if len(set(labels)) < len(labels):
        print("error: a checkpoint is named twice", file=sys.stderr)
        return 2
    try:
        splits = load_dataset(args.dataset, args.data_root, verbose=False)
        models = [load_checkpoint(path) for path in args.checkpoints]  # all read before any is scored
    except VitTutorialError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    data = getattr(splits, args.split)
    print(f"{args.split} split: {len(data):,} images of {splits.source}")
    width = max(22, *map(len, labels))
    results, correct = [], {}
    for label, model in zip(labels, models):
        ev = evaluate(model, data, device="cpu")
        correct[label] = ev.predictions == ev.labels
        lo, hi = ev.interval
        results.append({"model": label, "accuracy": ev.accuracy, "interval95": [lo, hi], "images": len(data)})
        print(f"{label:{width}s} {ev.summary()}")
    pairs = []
    for a, b in itertools.combinations(correct, 2):
        t = mcnemar(correct[a], correct[b])
        pairs.append({"a": a, "b": b, **t})
        print(f"McNemar {a} vs {b}: right only for {a} {t['a_only']}, only for {b} {t['b_only']}, "
              f"p = {t['p_value']:.3g}")
    if args.json:
        args.json.write_text(json.dumps({"split": args.split, "dataset": args.dataset, "results": results,
                                         "pairs": pairs}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

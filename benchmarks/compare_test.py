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
from vit_tutorial.evaluation import mcnemar  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dataset", required=True)
    p.add_argument("--data-root", default="data")
    p.add_argument("--split", default="test", choices=["val", "test"])
    p.add_argument("--json", type=Path)
    p.add_argument("checkpoints", nargs="+", type=Path)
    args = p.parse_args(argv)
    splits = load_dataset(args.dataset, args.data_root, verbose=False)
    data = getattr(splits, args.split)
    print(f"{args.split} split: {len(data):,} images of {splits.source}")
    results, correct = [], {}
    for path in args.checkpoints:
        ev = evaluate(load_checkpoint(path), data, device="cpu")
        correct[path.stem] = ev.predictions == ev.labels
        lo, hi = ev.interval
        results.append({"model": path.stem, "accuracy": ev.accuracy, "interval95": [lo, hi], "images": len(data)})
        print(f"{path.stem:22s} {ev.summary()}")
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

"""Score shipped checkpoints on a test split, once, with 95 % intervals and paired McNemar tests.

    python benchmarks/compare_test.py --dataset mnist checkpoints/mnist.pt checkpoints/mnist-hybrid.pt ...

Every model sees the same test images, so pairs are compared on the images
where they disagree (McNemar), not on two accuracies each with its own noise.
A model shipped as its test results instead of its weights
(``checkpoints/results/models/NAME.json``: which test images it got right)
takes part on the test split like a checkpoint, without being run.
A checkpoint or result of another dataset is refused, not scored.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from vit_tutorial import evaluate, load_dataset  # noqa: E402
from vit_tutorial.checkpoint import check_dataset, model_from_payload, read_checkpoint  # noqa: E402
from vit_tutorial.errors import VitTutorialError  # noqa: E402
from vit_tutorial.evaluation import accuracy_summary, mcnemar, wilson_interval  # noqa: E402
from vit_tutorial.scaling import correct_of  # noqa: E402


def read_model(path: Path, dataset: str, split: str, images: int):
    """A checkpoint's model, or a shipped result's per-image answers (a .json file, test split only)."""
    if path.suffix != ".json":
        payload = read_checkpoint(path)
        check_dataset(payload, dataset, path)
        return model_from_payload(payload, path)
    try:
        row = json.loads(path.read_text())
        dataset_of, bits = row["dataset"], row["correct"]
        if not isinstance(bits, str) or not bits or set(bits) - {"0", "1"}:
            raise ValueError("'correct' is not a string of 0s and 1s")
    except FileNotFoundError:
        raise VitTutorialError(f"result not found: {path}") from None
    except (OSError, ValueError, KeyError, TypeError):
        raise VitTutorialError(f"{path} is not a shipped result (a JSON file with 'dataset' and 'correct')") from None
    if dataset_of != dataset:
        raise VitTutorialError(f"{path} was scored on {dataset_of}, not {dataset}")
    if split != "test":
        raise VitTutorialError(f"{path} holds test results only, not --split {split}")
    if len(bits) != images:
        raise VitTutorialError(f"{path} holds results for {len(bits):,} images, not the {images:,} "
                               f"of the {split} split")
    return correct_of(row)


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
        data = getattr(splits, args.split)
        models = [read_model(path, args.dataset, args.split, len(data)) for path in args.checkpoints]  # all first
    except VitTutorialError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"{args.split} split: {len(data):,} images of {splits.source}")
    width = max(22, *map(len, labels))
    results, correct = [], {}
    for label, model in zip(labels, models):
        if isinstance(model, torch.Tensor):  # a shipped result: its answers on these images, not run again
            correct[label] = model
            n = int(model.sum())
            accuracy, (lo, hi) = n / len(data), wilson_interval(n, len(data))
            line = accuracy_summary(accuracy, (lo, hi), len(data)) + " (shipped result)"
        else:
            ev = evaluate(model, data, device="cpu")
            correct[label] = ev.predictions == ev.labels
            accuracy, (lo, hi), line = ev.accuracy, ev.interval, ev.summary()
        results.append({"model": label, "accuracy": accuracy, "interval95": [lo, hi], "images": len(data)})
        print(f"{label:{width}s} {line}")
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

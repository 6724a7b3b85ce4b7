"""Notebook 13's measurements: pure ViT, hybrid and CNN against the size of the training set.

    python benchmarks/small_data.py [--out runs/small-data] [--threads 2]

Trains every point notebook 13 shows (``vit_tutorial.scaling.POINTS``) with
its dataset's recipe, scores each once on the test split and keeps one JSON
row per point in ``--out``. The notebook reads them back from there (the
book ships them in ``checkpoints/results/small-data``). Prints one line per
point, with its wall time, and the CPU it ran on.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from throughput import machine_header  # noqa: E402  (the CPU, named as the other benchmarks name it)

from vit_tutorial.data import load_dataset  # noqa: E402
from vit_tutorial.scaling import MODELS, POINTS, interval_text, run_point  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "runs" / "small-data"))
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(machine_header(), flush=True)
    start = time.perf_counter()
    cache = {}
    for dataset, size, seeds, epochs, models in POINTS:
        splits = cache.setdefault(dataset, load_dataset(dataset, ROOT / "data", verbose=False))
        for seed in seeds:
            for name in models or MODELS[dataset]:
                t0 = time.perf_counter()
                row = run_point(name, dataset, splits, size, seed, epochs=epochs, cache_dir=args.out)
                took = time.perf_counter() - t0
                when = (f"trained in {row['seconds']:.0f} s ({took:.0f} s with scoring)" if took > 1
                        else f"read back from {args.out} (trained in {row['seconds']:.0f} s)")
                print(f"{name:22s} n={size:5d} seed {seed} epochs {row['epochs']:3d}: test {interval_text(row)} "
                      f"on {row['test_images']:,}, val {100 * row['val_acc']:.1f} %, "
                      f"{row['parameters']:,} parameters, {when}", flush=True)
    print(f"# total {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()

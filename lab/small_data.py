"""Notebook 13's sweep: the pure ViT, the hybrid and the CNN against the size of the training set.

    python lab/small_data.py [--threads 2]

Runs every point of ``vit_tutorial.scaling.POINTS`` through the runner: each
is trained with its recipe on a class-balanced subset of the training split,
scored once on the test split, and kept as its row in ``results/`` (a point
run before is read back). Notebook 13 reads the same rows. Prints one line per
point, with its training time, and the CPU it ran on.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from vit_tutorial.evaluation import count_summary  # noqa: E402
from vit_tutorial.machine import machine_header  # noqa: E402
from vit_tutorial.results import RESULTS  # noqa: E402
from vit_tutorial.runner import run  # noqa: E402
from vit_tutorial.scaling import POINTS, specs  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", type=Path, default=RESULTS, help="where the rows are kept (default results/)")
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(machine_header(), flush=True)
    start = time.perf_counter()
    for spec in specs(POINTS):
        t0 = time.perf_counter()
        row = run(spec, cache=args.results)
        took = time.perf_counter() - t0
        test = row["test"]
        print(f"{spec.model:22s} n={spec.train_size:5d} seed {spec.seed} epochs {row['epochs']:3d}: "
              f"{count_summary(test['correct'], test['images'], 'test')}, "
              + (f"trained in {took:.0f} s" if took > 1 else "read back"), flush=True)
    print(f"# total {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

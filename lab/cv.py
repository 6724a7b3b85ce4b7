"""Cross-validation of models and recipes: the lab's way to choose on small data without reading the test split.

    python lab/cv.py CANDIDATE [CANDIDATE ...] [--folds 3] [--split-seed 0] [--threads N]

A CANDIDATE is ``LABEL=MODEL[,KEY=VALUE...]``: a model id of the registry, then
changes to its configuration (``depth=6``, ``lsa=True``) or to its recipe
(``epochs=80``, ``lr=1e-3``), e.g. ``vit=mnist-sample/vit``,
``vit-80=mnist-sample/vit,epochs=80``, ``taught=mnist-sample/vit+kd``.

The training and validation splits are pooled and cut into class-balanced
folds; every candidate is trained on all folds but one and scored on the one
left out, so every image is scored once per candidate. A teacher (``+kd``) is
trained on each fold's training images only. The test split is never read.

Each fold is one run of ``vit_tutorial.runner`` and one row in ``results/``:
a candidate asked for again is read back, and an interrupted cross-validation
goes on from the fold it was training. Prints each candidate's pooled accuracy
with its 95 % interval and, against the first candidate, the difference with
its interval and McNemar's test on the same images, with Holm's correction
over the comparisons.
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from vit_tutorial.errors import VitTutorialError  # noqa: E402
from vit_tutorial.evaluation import (  # noqa: E402
    count_summary,
    difference_summary,
    holm,
    mcnemar,
    mcnemar_summary,
    p_text,
    paired_difference,
)
from vit_tutorial.machine import machine_header  # noqa: E402
from vit_tutorial.results import RESULTS  # noqa: E402
from vit_tutorial.runner import RunSpec, cross_validate  # noqa: E402


def parse_candidate(text: str) -> tuple:
    """``LABEL=MODEL[,KEY=VALUE...]`` -> (label, RunSpec); a one-line error for anything else."""
    label, sep, rest = text.partition("=")
    if not sep or not label or not rest:
        raise VitTutorialError(f"a candidate is LABEL=MODEL[,KEY=VALUE...], not {text!r}")
    model, *pairs = [p.strip() for p in re.split(r",(?![^()]*\))", rest)]  # not the commas inside (32, 64)
    changes = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise VitTutorialError(f"{label}: a change is KEY=VALUE, not {pair!r}")
        try:
            changes[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            changes[key] = value  # text, e.g. augment=digits
    return label, RunSpec(model, changes)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("candidates", nargs="+", metavar="LABEL=MODEL[,KEY=VALUE...]")
    ap.add_argument("--folds", type=int, default=3)
    ap.add_argument("--split-seed", type=int, default=0,
                    help="draw other folds (and train them from other seeds) to check a result on a second split")
    ap.add_argument("--results", type=Path, default=RESULTS, help="where the rows are kept (default results/)")
    ap.add_argument("--data-root", type=Path, help="folder for the datasets (default data/)")
    ap.add_argument("--threads", type=int, help="compute threads (default: one per core)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        candidates = [parse_candidate(c) for c in args.candidates]
        if len({label for label, _ in candidates}) < len(candidates):
            raise VitTutorialError("two candidates have the same label")
        print(machine_header())
        print(f"# {args.folds} class-balanced folds of the training and validation splits, split seed "
              f"{args.split_seed}; the test split is not read", flush=True)
        start, pooled = time.perf_counter(), {}
        for label, spec in candidates:
            t0 = time.perf_counter()
            result = cross_validate(spec, args.folds, args.split_seed, cache=args.results, data_root=args.data_root,
                                    log=lambda s: print(s, flush=True))
            correct = pooled[label] = result["correct"]
            took = time.perf_counter() - t0
            print(f"{label:22s} {count_summary(int(correct.sum()), len(correct), 'cross-validated accuracy')}, "
                  f"{result['rows'][0]['parameters']:,} parameters"
                  + (f", {took:.0f} s" if took >= 1 else ", read back"), flush=True)
    except VitTutorialError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    base = candidates[0][0]
    others = [label for label, _ in candidates[1:]]
    tests = {label: mcnemar(pooled[label], pooled[base]) for label in others}
    adjusted = dict(zip(others, holm([tests[label]["p_value"] for label in others])))
    for label in others:
        d = paired_difference(pooled[label], pooled[base])
        print(f"  {label} - {base}: {difference_summary(d)}; {mcnemar_summary(tests[label], label, base)}"
              + (f"; Holm-adjusted p = {p_text(adjusted[label])}" if len(others) > 1 else ""))
    print(f"# total {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

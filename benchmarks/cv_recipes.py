"""Cross-validation of training recipes on the 5,000-digit offline MNIST sample.

    python benchmarks/cv_recipes.py CANDIDATE [CANDIDATE ...] [--folds 3] [--split-seed 0] [--json FILE]

A CANDIDATE is ``LABEL=PRESET`` followed by changes, comma-separated:
``hybrid=mnist-hybrid``, ``hybrid-lsa=mnist-hybrid,lsa=True``,
``hybrid-taught=mnist-hybrid,teacher=mnist-cnn,distill=soft``. A change names
either a field of the preset's config (the model changes) or one of ``fit``'s
keyword arguments (the recipe changes: ``epochs``, ``lr``, ``augment``,
``distill_weight``, ...). The recipe starts from the preset's own recipe on the
sample (``config.recipe(..., full=False)``).

``teacher=PRESET`` distils from a model of that preset, trained on each fold's
training digits with its own recipe, so that no digit a candidate is scored on
was ever seen by its teacher (the shipped teacher has seen all of them).

As in ``cv_epochs.py``, the 4,500 digits that are not the test split are cut
into class-balanced folds; every candidate is trained on all folds but one and
scored on the one left out, so every digit is scored once per candidate. The
test split is never read. Prints each candidate's pooled accuracy with its
95 % interval, and McNemar's test of every candidate against the first one on
the same 4,500 digits. Results are kept under ``runs/cv/`` and reused when the
same candidate is asked for again; each fold's are kept as soon as it is scored,
so an interrupted run starts again at the fold it was training. ``--split-seed N``
draws other folds and trains them from other seeds: a second look at a lead
found on the first split.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import hashlib
import json
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from vit_tutorial.config import build_model, preset, recipe  # noqa: E402
from vit_tutorial.data import ImageDataset, load_dataset  # noqa: E402
from vit_tutorial.errors import VitTutorialError  # noqa: E402
from vit_tutorial.evaluation import evaluate, mcnemar, wilson_interval  # noqa: E402
from vit_tutorial.training import fit  # noqa: E402
from vit_tutorial.utils import atomic_write, set_seed  # noqa: E402

sys.path.insert(0, str(ROOT / "benchmarks"))
from throughput import machine_header  # noqa: E402

CACHE = ROOT / "runs" / "cv"
RECIPE_KEYS = ("epochs", "batch_size", "lr", "weight_decay", "warmup_epochs", "label_smoothing", "augment",
               "augment_strength", "grad_clip", "teacher", "distill", "distill_weight", "distill_temperature", "ema")


@dataclasses.dataclass
class Candidate:
    """One recipe to cross-validate: a preset, changes to its model, changes to its recipe."""

    label: str
    preset: str
    model_changes: dict
    recipe_changes: dict

    @classmethod
    def parse(cls, text: str) -> Candidate:
        label, sep, rest = text.partition("=")
        if not sep or not label or not rest:
            raise VitTutorialError(f"a candidate is LABEL=PRESET[,FIELD=VALUE...], not {text!r}")
        name, *pairs = [p.strip() for p in re.split(r",(?![^()]*\))", rest)]  # not the commas inside (32, 64)
        fields = {f.name for f in dataclasses.fields(preset(name))}
        model_changes, recipe_changes = {}, {}
        for pair in pairs:
            key, sep, value = pair.partition("=")
            if not sep:
                raise VitTutorialError(f"{label}: a change is FIELD=VALUE, not {pair!r}")
            try:
                value = ast.literal_eval(value)
            except (ValueError, SyntaxError):
                pass  # text, e.g. augment=digits or teacher=mnist-cnn
            if key in fields:
                model_changes[key] = value
            elif key in RECIPE_KEYS:
                recipe_changes[key] = value
            else:
                raise VitTutorialError(f"{label}: {key!r} is neither a field of the {name} preset nor a recipe "
                                       f"setting ({', '.join(RECIPE_KEYS)})")
        if "teacher" in recipe_changes:
            preset(recipe_changes["teacher"])  # an unknown teacher fails now, not after hours of training
        return cls(label, name, model_changes, recipe_changes)

    def recipe(self) -> dict:
        return recipe("mnist", full=False, preset=self.preset, **self.recipe_changes)

    def key(self, folds: int, split_seed: int = 0) -> str:
        """What the result depends on, as a file name: the same candidate asked for again is read back."""
        teacher = self.recipe_changes.get("teacher")
        return spec_key(self.preset, self.model_changes, self.recipe(), fold_spec(folds, split_seed),
                        teacher and spec_key(teacher, {}, recipe("mnist", full=False, preset=teacher),
                                             fold_spec(folds, split_seed)))


def fold_spec(folds: int, split_seed: int):
    """How the folds are drawn, for a key (split seed 0 keeps the keys results were first cached under)."""
    return folds if split_seed == 0 else [folds, split_seed]


def fold_seed(k: int, n_folds: int, split_seed: int) -> int:
    """The training seed of fold k: k for split seed 0, new seeds for every other split."""
    return k + n_folds * split_seed


def spec_key(*spec) -> str:
    """A short name for what a result depends on (with the torch version: the arithmetic changes with it)."""
    text = json.dumps([*spec, torch.__version__], sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def sample_pool_and_folds(n_folds: int, data_root: Path = ROOT / "data", split_seed: int = 0):
    """The 4,500 non-test digits of the offline sample and their class-balanced folds (drawn with ``split_seed``)."""
    from sklearn.model_selection import StratifiedKFold

    splits = load_dataset("mnist", data_root, verbose=False)
    if splits.full:
        raise SystemExit("this benchmark is about the 5,000-digit offline sample; the full MNIST is loaded")
    pool = ImageDataset(torch.cat([splits.train.images, splits.val.images]),
                        torch.cat([splits.train.labels, splits.val.labels]), splits.train.classes, "mnist")
    folds = StratifiedKFold(n_folds, shuffle=True, random_state=split_seed).split(np.zeros(len(pool)),
                                                                               pool.labels.numpy())
    return pool, [(np.sort(a), np.sort(b)) for a, b in folds]


def cross_validate(pool: ImageDataset, folds: list, name: str, config=None, teachers: list | None = None,
                   split_seed: int = 0, fold_cache: Path | None = None, log=None, **kwargs) -> torch.Tensor:
    """Which of ``pool``'s digits a model of preset ``name`` gets right when trained without them.

    ``kwargs``: ``fit``'s; ``teachers``: one trained teacher per fold (or None).
    Fold k is trained from ``set_seed(s)`` with ``seed=s``, s = ``fold_seed(k, ...)`` (k for split seed 0).
    With ``fold_cache`` (a path without suffix), fold k's answers are kept in ``fold_file(fold_cache, k)``
    as soon as it is scored and read back instead of trained again: an interrupted run of many folds
    loses one fold's training, not all of them. ``log``, if given, is called with a line per fold.
    """
    correct = torch.zeros(len(pool), dtype=torch.bool)
    for k, (train_idx, held_out) in enumerate(folds):
        t0 = time.perf_counter()
        path = fold_cache and fold_file(fold_cache, k)
        if path and path.is_file():
            fold_correct, how = read_answers(path, len(held_out)), "read back"
        else:
            seed = fold_seed(k, len(folds), split_seed)
            set_seed(seed)
            model = build_model(config if config is not None else preset(name))
            teacher = dict(teacher=teachers[k]) if teachers else {}
            fit(model, pool.subset(train_idx), None, **kwargs, **teacher, seed=seed, progress=False, verbose=False)
            ev = evaluate(model, pool.subset(held_out), device="cpu")
            fold_correct, how = ev.predictions == ev.labels, f"{time.perf_counter() - t0:.0f} s"
            if path:
                text = json.dumps(dict(fold=k, correct=answers_text(fold_correct))).encode()
                atomic_write(path, lambda f, t=text: f.write(t))
        correct[torch.as_tensor(held_out)] = fold_correct
        if log:
            log(f"  fold {k + 1}/{len(folds)}: {100 * fold_correct.float().mean():.2f} % of {len(held_out)} "
                f"held-out digits, {how}")
    return correct


def fold_file(fold_cache: Path, k: int) -> Path:
    """Where fold k's answers are kept while a candidate's folds are being trained."""
    return fold_cache.with_name(f"{fold_cache.name}-fold{k}.json")


def answers_text(correct: torch.Tensor) -> str:
    """Right or wrong for every digit, as the text kept on disk: "1" right, "0" wrong."""
    return "".join("1" if v else "0" for v in correct.tolist())


def read_answers(path: Path, n: int) -> torch.Tensor:
    """The kept answers (right or wrong, one per digit) of a candidate or of one of its folds."""
    try:
        bits = json.loads(path.read_text())["correct"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise VitTutorialError(f"{path} is not a kept result ({type(e).__name__}); delete it to train again") from None
    if not isinstance(bits, str) or len(bits) != n or set(bits) - {"0", "1"}:
        raise VitTutorialError(f"{path} does not hold {n} answers; delete it to train again")
    return torch.tensor([ch == "1" for ch in bits])


def fold_teachers(pool: ImageDataset, folds: list, name: str, cache: Path = CACHE,
                  split_seed: int = 0) -> tuple[list, torch.Tensor]:
    """One model of preset ``name`` per fold, trained on that fold's training digits with its own recipe,
    and which held-out digits those teachers get right (their own cross-validated accuracy)."""
    models, correct = [], torch.zeros(len(pool), dtype=torch.bool)
    for k, (train_idx, held_out) in enumerate(folds):
        kwargs = recipe("mnist", full=False, preset=name)
        path = cache / "teachers" / f"{name}-{spec_key(name, {}, kwargs, fold_spec(len(folds), split_seed))}-fold{k}.pt"
        seed = fold_seed(k, len(folds), split_seed)
        set_seed(seed)
        model = build_model(preset(name))
        if path.is_file():
            model.load_state_dict(torch.load(path, weights_only=True))
        else:
            fit(model, pool.subset(train_idx), None, **kwargs, seed=seed, progress=False, verbose=False)
            atomic_write(path, lambda f, m=model: torch.save(m.state_dict(), f))
        model.eval()
        ev = evaluate(model, pool.subset(held_out), device="cpu")
        correct[torch.as_tensor(held_out)] = ev.predictions == ev.labels
        models.append(model)
    return models, correct


def line(label: str, correct: torch.Tensor, extra: str = "") -> str:
    n = int(correct.sum())
    lo, hi = wilson_interval(n, len(correct))
    return (f"{label:22s} cross-validated accuracy {100 * n / len(correct):.2f} % "
            f"(95 % interval {100 * lo:.1f}-{100 * hi:.1f}) on {len(correct)} digits{extra}")


def run_candidates(candidates: list, pool: ImageDataset, folds: list, args) -> dict:
    """Every candidate's answers on the pool (and each teacher's), trained or read back, printed as they come."""
    results, teachers = {}, {}
    for c in candidates:
        kwargs = c.recipe()
        teacher = kwargs.pop("teacher", None)
        path = args.cache / f"{c.key(args.folds, args.split_seed)}.json"
        t0 = time.perf_counter()
        if path.is_file():
            correct = read_answers(path, len(pool))
            extra = ", read back"
        else:
            fold_models = None
            if teacher is not None:
                if teacher not in teachers:
                    teachers[teacher] = fold_teachers(pool, folds, teacher, args.cache, args.split_seed)
                    results[f"teacher:{teacher}"] = teachers[teacher][1]
                    print(line(f"teacher:{teacher}", teachers[teacher][1], ", one per fold"), flush=True)
                fold_models = teachers[teacher][0]
            config = preset(c.preset, **c.model_changes)
            fold_cache = path.with_suffix("")
            correct = cross_validate(pool, folds, c.preset, config, fold_models, args.split_seed,
                                     fold_cache=fold_cache, log=lambda s: print(s, flush=True), **kwargs)
            text = json.dumps(dict(label=c.label, spec=args_of(c), correct=answers_text(correct))).encode()
            atomic_write(path, lambda f, t=text: f.write(t))
            for k in range(len(folds)):  # the whole result is kept now; its folds' files are not needed
                fold_file(fold_cache, k).unlink(missing_ok=True)
            extra = f", {time.perf_counter() - t0:.0f} s for {args.folds} folds"
        params = build_model(preset(c.preset, **c.model_changes)).num_parameters()
        results[c.label] = correct
        print(line(c.label, correct, f", {params:,} parameters{extra}"), flush=True)
    return results


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("candidates", nargs="+", metavar="LABEL=PRESET[,FIELD=VALUE...]")
    ap.add_argument("--folds", type=int, default=3)
    ap.add_argument("--split-seed", type=int, default=0,
                    help="draw other folds (and train them from other seeds) to check a result on a second split")
    ap.add_argument("--json", type=Path, help="also write the per-digit results here")
    ap.add_argument("--data-root", type=Path, default=ROOT / "data")
    ap.add_argument("--cache", type=Path, default=CACHE, help="where results and teachers are kept (default runs/cv)")
    ap.add_argument("--threads", type=int, help="compute threads (default: torch's, one per core)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        candidates = [Candidate.parse(c) for c in args.candidates]
    except VitTutorialError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    pool, folds = sample_pool_and_folds(args.folds, args.data_root, args.split_seed)
    print(machine_header())
    print(f"# {len(pool)} digits (training + validation splits), {args.folds} class-balanced folds, "
          f"split seed {args.split_seed}", flush=True)
    start = time.perf_counter()
    try:
        results = run_candidates(candidates, pool, folds, args)
    except VitTutorialError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    base = candidates[0].label
    for label, correct in results.items():
        if label != base:
            t = mcnemar(correct, results[base])
            print(f"  {label} vs {base}: right for {label} only {t['a_only']}, for {base} only {t['b_only']}, "
                  f"McNemar p = {t['p_value']:.2g}")
    print(f"# total {time.perf_counter() - start:.0f} s")
    if args.json:
        args.json.write_text(json.dumps({label: answers_text(c) for label, c in results.items()}))
    return 0


def args_of(c: Candidate) -> str:
    """The candidate as it is written on the command line."""
    changes = {**c.model_changes, **c.recipe_changes}
    return ",".join([f"{c.label}={c.preset}", *(f"{k}={v}" for k, v in changes.items())])


if __name__ == "__main__":
    sys.exit(main())

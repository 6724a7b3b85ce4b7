"""Once: the book's results from before rows existed, made into rows (``vit_tutorial.results``).

    python lab/convert_results.py

Kept to show where every converted row came from. It ran once, on the files as they were at commit 45bc452
(``git show 45bc452:checkpoints/results/...`` shows them); only its last step, ``python lab/convert_results.py cv``,
which reads the logs kept in ``lab/logs/``, can run again, and rewrites the same rows.

- The shipped checkpoints move to ``checkpoints/DATASET/ARCHITECTURE.pt`` under their model ids (the weights
  unchanged; the command that trains them written with the id) and are scored anew on their validation and test
  splits: these rows are measured, not converted.
- The results the notebooks kept as JSON files (``checkpoints/results/``: the small-data sweep, the grids of
  notebooks 11 and 12, the two models shipped as results) become rows of the same runs. Where the file kept the
  per-image answers (the test splits) the row has them; the validation accuracies were kept as numbers only.
- The cross-validations whose per-image answers a JSON file in ``lab/logs/`` kept become one row per fold.
- Results that only a text log holds become rows read from that log by the patterns below, each marked
  ``converted_from`` the log.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import shlex
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vit_tutorial import registry  # noqa: E402
from vit_tutorial.checkpoint import FORMAT, model_from_payload, read_checkpoint  # noqa: E402
from vit_tutorial.config import build_model  # noqa: E402
from vit_tutorial.evaluation import evaluate  # noqa: E402
from vit_tutorial.results import RESULTS, SCHEMA, scored, scored_counts, write_row  # noqa: E402
from vit_tutorial.runner import RunSpec, checkpoint_path, cv_pool, jsonable, load_splits  # noqa: E402
from vit_tutorial.training import History  # noqa: E402
from vit_tutorial.utils import atomic_write  # noqa: E402

OLD = ROOT / "checkpoints" / "results"
LOGS = ROOT / "lab" / "logs"

# The shipped checkpoints: old file -> model id.
CHECKPOINTS = {
    "mnist.pt": "mnist-sample/vit",
    "mnist-hybrid.pt": "mnist-sample/hybrid",
    "mnist-cnn.pt": "mnist-sample/cnn",
    "fashion-mnist.pt": "fashion-mnist/vit-spt-lsa",
    "fashion-mnist-plain.pt": "fashion-mnist/vit",
    "fashion-mnist-hybrid.pt": "fashion-mnist/hybrid",
    "fashion-mnist-cnn.pt": "fashion-mnist/cnn",
    "fashion-mnist-spt-lsa-distilled.pt": "fashion-mnist/vit-spt-lsa+kd",
}
# The models shipped as their results only: old file -> model id.
MODEL_ROWS = {"fashion-mnist-plain-distilled.json": "fashion-mnist/vit+kd",
              "fashion-mnist-hybrid-lsa-distilled.json": "fashion-mnist/hybrid-lsa+kd"}
# Names the notebooks' result files used before ids: old name -> id.
OLD_NAMES = {"mnist": "mnist-sample/vit", "mnist-hybrid": "mnist-sample/hybrid", "mnist-cnn": "mnist-sample/cnn",
             "fashion-mnist-plain": "fashion-mnist/vit", "fashion-mnist-hybrid": "fashion-mnist/hybrid",
             "fashion-mnist-cnn": "fashion-mnist/cnn", "fashion-mnist-cnn-teacher": "fashion-mnist/cnn"}


def base_row(spec: RunSpec, source: str, note: str) -> dict:
    """A converted row's fields that come from its spec; the measured parts are filled in by the caller."""
    config = spec.config()
    return {"schema": SCHEMA, "key": spec.key(), "model": spec.model, "changes": jsonable(spec.changes),
            "kind": "cnn" if type(config).__name__ == "CNNConfig" else "vit", "config": config.to_dict(),
            "recipe": jsonable(spec.recipe()), "seed": spec.seed, "quick": spec.quick, "val": None, "test": None,
            "train_acc": None, "train_seconds": None, "wall_seconds": None, "machine": None, "commit": None,
            "command": spec.command(), "converted_from": source, "note": note,
            "parameters": build_model(config).num_parameters()}


def data_part(spec: RunSpec, train: int, val: int, test: int, cv=None) -> dict:
    splits = load_splits(spec.dataset)
    return {"dataset": spec.dataset, "source": splits.source, "train": train, "val": val, "test": test,
            "train_size": spec.train_size, "cv": cv}


# --------------------------------------------------------------------------- shipped checkpoints


def move_checkpoints() -> None:
    for old, model_id in CHECKPOINTS.items():
        src = ROOT / "checkpoints" / old
        dst = checkpoint_path(model_id)
        payload = read_checkpoint(src if src.is_file() else dst)
        payload["model_id"] = model_id
        payload["command"] = RunSpec(model_id).command()
        if registry.get(model_id).dataset == "mnist-sample":  # what "mnist" meant for these runs: the sample
            payload["dataset"] = dict(payload["dataset"], name="mnist-sample")
            settings = json.loads(payload["train_settings"])
            payload["train_settings"] = json.dumps(dict(settings, dataset="mnist-sample"))
        atomic_write(dst, lambda f, p=payload: torch.save(p, f))
        if src.is_file():
            src.unlink()
        print(f"{old} -> {dst.relative_to(ROOT)}")
    snaps = ROOT / "checkpoints" / "mnist-snapshots.pt"
    dst = checkpoint_path("mnist-sample/vit").with_name("vit-snapshots.pt")
    if snaps.is_file():
        pack = read_checkpoint(snaps)
        pack["command"] = RunSpec("mnist-sample/vit").command()
        pack["dataset"] = dict(pack["dataset"], name="mnist-sample")
        pack["format"] = FORMAT
        atomic_write(dst, lambda f: torch.save(pack, f))
        snaps.unlink()


def score_shipped() -> None:
    """The row of every shipped checkpoint: its half-precision weights scored on validation and test."""
    for model_id in CHECKPOINTS.values():
        path = checkpoint_path(model_id)
        payload = read_checkpoint(path)
        model = model_from_payload(payload, path).eval()
        history = History.from_dict(payload["history"])
        spec = RunSpec(model_id, read_test=True)
        splits = load_splits(spec.dataset)
        row = base_row(spec, str(path.relative_to(ROOT)),
                       "the shipped half-precision weights scored on the validation and test splits; the training "
                       "time is the sum of its epochs in the checkpoint's history")
        val = evaluate(model, splits.val, device="cpu")
        test = evaluate(model, splits.test, device="cpu")
        row.update(data=data_part(spec, len(splits.train), len(splits.val), len(splits.test)),
                   epochs=len(history), images_seen=len(history) * len(splits.train),
                   train_acc=history.train_acc[-1], val=scored(val.predictions == val.labels),
                   test=scored(test.predictions == test.labels), train_seconds=float(sum(history.seconds)),
                   converted_from=None, command=payload["command"])
        write_row(spec.path(RESULTS), row)
        print(f"{model_id}: val {row['val']['accuracy']:.4f} test {row['test']['accuracy']:.4f}")


def model_rows() -> None:
    for old, model_id in MODEL_ROWS.items():
        src = OLD / "models" / old
        old_row = json.loads(src.read_text())
        spec = RunSpec(model_id, read_test=True)
        row = base_row(spec, f"checkpoints/results/models/{old}",
                       "weights not shipped; validation accuracy from the run's last epoch (under autocast)")
        row.update(data=data_part(spec, old_row["train_size"], old_row["val_images"], old_row["test_images"]),
                   epochs=old_row["epochs"], images_seen=old_row["images_seen"], train_acc=old_row["train_acc"],
                   val=scored_counts(round(old_row["val_acc"] * old_row["val_images"]), old_row["val_images"]),
                   test=scored(torch.tensor([c == "1" for c in old_row["correct"]])))
        write_row(spec.path(RESULTS), row)
        print(f"{model_id}: test {row['test']['accuracy']:.4f}")


# --------------------------------------------------------------------------- the notebooks' result files


def small_data() -> None:
    for src in sorted((OLD / "small-data").glob("*.json")):
        old = json.loads(src.read_text())
        model_id = OLD_NAMES[old["model"]]
        recipe_epochs = registry.recipe(model_id)["epochs"]
        changes = {} if old["epochs"] == recipe_epochs else {"epochs": old["epochs"]}
        spec = RunSpec(model_id, changes, train_size=old["train_size"], seed=old["seed"], read_test=True)
        assert jsonable(spec.recipe()) == {**old["settings"]}, (src, spec.recipe(), old["settings"])
        row = base_row(spec, f"checkpoints/results/small-data/{src.name}",
                       "validation accuracy kept as a number only")
        val_images = 500 if spec.dataset == "mnist-sample" else 5000
        row.update(data=data_part(spec, old["train_size"], val_images, old["test_images"]),
                   epochs=old["epochs"], images_seen=old["images_seen"], train_acc=old["train_acc"],
                   val=scored_counts(round(old["val_acc"] * val_images), val_images),
                   test=scored(torch.tensor([c == "1" for c in old["correct"]])), train_seconds=old["seconds"])
        assert row["test"]["correct"] == old["test_correct"]
        write_row(spec.path(RESULTS), row)
    print("small-data rows converted")


def old_trial_key(config, fit_kwargs: dict, seed: int, train_n: int, train_sum: int, val_n: int, val_sum: int):
    """The name the grids' result files had (``search.trial_key`` before rows)."""
    fields = {k: v for k, v in config.to_dict().items() if k != "pos_temperature" and not (k == "lsa" and not v)}
    what = dict(config=fields, fit=dict(sorted(fit_kwargs.items())), seed=seed,
                data=["mnist", train_n, train_sum, val_n, val_sum])
    return hashlib.sha1(json.dumps(what, sort_keys=True).encode()).hexdigest()[:16]


def grid_rows(folder: str, points: list, budget: dict, seeds) -> dict:
    """Convert the grid results in ``OLD/folder`` of ``points`` (changes to mnist-sample/vit) over ``budget``."""
    splits = load_splits("mnist-sample")
    sums = (len(splits.train), int(splits.train.labels.sum()), len(splits.val), int(splits.val.labels.sum()))
    found = {}
    config_fields = set(registry.config("mnist-sample/vit").to_dict())
    for seed in seeds:
        for point in points:
            spec = RunSpec("mnist-sample/vit", {**budget, **point}, seed=seed)
            fit_kwargs = {k: v for k, v in spec.recipe().items()}
            fit_kwargs.update({k: v for k, v in point.items() if k not in config_fields})
            src = OLD / folder / f"{old_trial_key(spec.config(), fit_kwargs, seed, *sums)}.json"
            if not src.is_file():
                continue
            old = json.loads(src.read_text())
            row = base_row(spec, f"checkpoints/results/{folder}/{src.name}",
                           "validation accuracy of the last epoch (under autocast), kept as a number only; the "
                           "initial weights were drawn without seeding each run")
            row.update(data=data_part(spec, len(splits.train), len(splits.val), len(splits.test)),
                       epochs=old["epochs"], images_seen=old["images_seen"], train_acc=old["train_acc"],
                       val=scored_counts(round(old["val_acc"] * len(splits.val)), len(splits.val)),
                       train_seconds=old["seconds"])
            write_row(spec.path(RESULTS), row)
            found[src.name] = spec
    return found


def grids() -> None:
    def grid(**axes):
        import itertools
        return [dict(zip(axes, combo)) for combo in itertools.product(*axes.values())]

    found = {}
    transforms = [{"augment": "none", "augment_strength": 1.0},
                  *grid(augment=["shift", "rotate", "zoom", "digits"], augment_strength=[0.5, 1.0, 2.0]),
                  {"augment": "mirror", "augment_strength": 1.0}]
    points = list(transforms)
    for t in transforms:  # the later grids were run with the best transformation; try each
        points += [{**p, **t} for p in grid(patch_size=[7, 4], depth=[2, 4, 6])]
        points += [{**p, **t} for p in grid(embed_dim=[32, 64, 96], lr=[1e-3, 2e-3, 4e-3])]
    found.update(grid_rows("grid", points, {"epochs": 8}, [0]))
    lr = registry.recipe("mnist-sample/vit")["lr"]
    pool_points = grid(pool=["cls", "mean"], pos_embed=["learned", "sincos"]) + \
        grid(pool=["cls", "mean"], pos_embed=["learned"], lr=[lr / 2])
    found.update(grid_rows("pooling", pool_points, {"epochs": 20}, [0, 1]))
    missing = [p.name for folder in ("grid", "pooling") for p in (OLD / folder).glob("*.json")
               if p.name not in found and not p.name.startswith("sincos")]
    assert not missing, missing
    # notebook 11's own runs: the sine-cosine table at a lower temperature
    G, K = 4, 16
    T = (2 * (G - 1) / math.pi) ** (K / (K - 1))
    splits = load_splits("mnist-sample")
    for src in sorted((OLD / "pooling").glob("sincos-*.json")):
        old = json.loads(src.read_text())
        spec = RunSpec("mnist-sample/vit", {"epochs": 20, "pool": old["pool"], "pos_embed": "sincos",
                                            "pos_temperature": T}, seed=old["seed"])
        row = base_row(spec, f"checkpoints/results/pooling/{src.name}",
                       "validation accuracy of the last epoch (under autocast), kept as a number only")
        row.update(data=data_part(spec, len(splits.train), len(splits.val), len(splits.test)), epochs=20,
                   images_seen=20 * len(splits.train),
                   val=scored_counts(round(old["val_acc"] * len(splits.val)), len(splits.val)),
                   train_seconds=old["seconds"])
        write_row(spec.path(RESULTS), row)
    print(f"{len(found)} grid rows converted, and notebook 11's sine-cosine runs")


# --------------------------------------------------------------------------- cross-validations kept per digit


def presets_at(commit: str) -> dict:
    """The presets and their recipes on the MNIST sample as the package defined them at ``commit``.

    {name: {"kind", "config", "recipe"}}, read by that commit's own code in a separate process: a name
    such as ``mnist-hybrid`` meant another model before some of these runs.
    """
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        archive = subprocess.run(["git", "archive", commit, "vit_tutorial"], cwd=ROOT, capture_output=True,
                                 check=True).stdout
        subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
        code = ("import json, sys; sys.path.insert(0, sys.argv[1]); from vit_tutorial import config as c; "
                "names = [*c.PRESETS, *getattr(c, 'CNN_PRESETS', {})]; out = {}\n"
                "for n in names:\n"
                "    cfg = c.preset(n)\n"
                "    try: r = c.recipe('mnist', full=False, preset=n)\n"
                "    except Exception: r = None\n"
                "    out[n] = dict(kind='cnn' if type(cfg).__name__ == 'CNNConfig' else 'vit', "
                "config=json.loads(json.dumps(cfg.to_dict())), recipe=r)\n"
                "print(json.dumps(out))")
        done = subprocess.run([sys.executable, "-c", code, tmp], capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def adding_commit(path: Path) -> str:
    import subprocess

    out = subprocess.run(["git", "log", "--diff-filter=A", "--format=%H", "--", str(path.relative_to(ROOT))],
                         cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    return out[-1]


def candidate(text: str, presets: dict) -> tuple | None:
    """``LABEL=PRESET,key=value,...`` of the old cross-validation script, with the presets of its day ->
    (label, model id, changes) of the same model and recipe; None where no id can say it (a teacher that is
    not today's model of its id)."""
    import ast

    label, _, rest = text.partition("=")
    name, *pairs = [p.strip() for p in re.split(r",(?![^()]*\))", rest)]
    old = presets[name]
    config, recipe = dict(old["config"]), dict(old["recipe"])
    for pair in pairs:
        key, _, value = pair.partition("=")
        try:
            value = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            pass
        value = json.loads(json.dumps(value)) if isinstance(value, tuple) else value
        (config if key in config or key in registry.config(OLD_NAMES[name]).to_dict() else recipe)[key] = value
    model_id = OLD_NAMES[name]
    teacher = recipe.pop("teacher", None)
    if teacher is not None:
        t_old, t_id = presets[teacher], OLD_NAMES[teacher]
        t_now = registry.get(t_id)
        if (t_old["config"] != json.loads(json.dumps(t_now.config.to_dict()))
                or t_old["recipe"] != t_now.recipe):
            return None  # that teacher is not today's model of its id
        taught = dict(distill=recipe.pop("distill", "hard"), distill_weight=recipe.pop("distill_weight", 0.5),
                      distill_temperature=recipe.pop("distill_temperature", 2.0))
        if taught != registry.TAUGHT or t_id != registry.get(model_id + "+kd").teacher:
            return None
        model_id += "+kd"
    now = registry.get(model_id)
    now_config = json.loads(json.dumps(now.config.to_dict()))
    changes = {k: v for k, v in config.items() if now_config.get(k) != v}
    plain_recipe = {k: v for k, v in now.recipe.items() if k not in ("teacher", *registry.TAUGHT)}
    changes.update({k: v for k, v in recipe.items() if plain_recipe.get(k) != v})
    missing = [k for k in plain_recipe if k not in recipe]
    assert not missing, (text, missing)
    spec = RunSpec(model_id, changes)
    assert json.loads(json.dumps(spec.config().to_dict())) == {**now_config, **config}, text
    return label, model_id, changes


def cv_commands(log: Path) -> list:
    """The candidates of every cross-validation command a log records, with its folds and split seed."""
    out = []
    for line in log.read_text().splitlines():
        m = re.search(r"python benchmarks/cv_recipes\.py (.*)", line)
        if not m:
            continue
        words = shlex.split(m.group(1))
        folds = int(words[words.index("--folds") + 1]) if "--folds" in words else 3
        split = int(words[words.index("--split-seed") + 1]) if "--split-seed" in words else 0
        out += [(folds, split, w) for w in words if "=" in w and not w.startswith("-")]
    return out


def cv_folds(model_id: str, changes: dict, folds: int, split_seed: int, bits: str, source: str,
             note: str = "") -> None:
    """One row per fold of a pooled cross-validation result (its per-digit answers in the pool's order)."""
    splits = load_splits(registry.get(model_id).dataset)
    pool, cut = cv_pool(splits, folds, split_seed)
    correct = torch.tensor([c == "1" for c in bits])
    assert len(correct) == len(pool)
    for k, (train_idx, held_out) in enumerate(cut):
        spec = RunSpec(model_id, changes, cv=(folds, k, split_seed), seed=k + folds * split_seed)
        row = base_row(spec, source, note or "per-digit answers of the pooled cross-validation, cut into its folds")
        epochs = spec.recipe()["epochs"]
        row.update(data=data_part(spec, len(train_idx), len(held_out), len(splits.test),
                                  {"folds": folds, "fold": k, "split_seed": split_seed, "pool": len(pool)}),
                   epochs=epochs, images_seen=epochs * len(train_idx),
                   val=scored(correct[torch.as_tensor(held_out)]))
        write_row(spec.path(RESULTS), row)


def cross_validations() -> None:
    done, skipped = 0, []
    for js in sorted(LOGS.glob("cv*.json")):
        txt = js.with_suffix(".txt")
        if not txt.is_file():
            continue
        answers = json.loads(js.read_text())
        presets = presets_at(adding_commit(ROOT / "benchmarks" / "results" / js.name))
        by_label = {}
        for folds, split, text in cv_commands(txt):
            found = candidate(text, presets)
            if found is None:
                skipped.append(f"{js.name}: {text}")
                continue
            label, model_id, changes = found
            by_label[label] = (folds, split, model_id, changes)
        for label, bits in answers.items():
            if label in by_label:
                folds, split, model_id, changes = by_label[label]
                cv_folds(model_id, changes, folds, split, bits, f"lab/logs/{js.name}")
                done += 1
    print(f"{done} cross-validated candidates converted into fold rows; not expressible by an id: {skipped}")


# --------------------------------------------------------------------------- runs that only a text log holds

TRUNK = {"stem_channels": (32, 32, 64, 64, 128), "stem_strides": (1, 2, 1, 2, 1), "depth": 2}
# (log, which "val accuracy" line, which "test accuracy" line or None, model id, changes, seed): each line as
# ``benchmarks/accuracy.py`` printed it for the run of that command in the log.
LOGGED = [
    ("fashion-distillation-cpu-2core-2026-11-28.txt", 0, None, "fashion-mnist/vit+kd", {"distill": "hard"}, 0),
    ("fashion-distillation-cpu-2core-2026-11-28.txt", 2, None, "fashion-mnist/vit+kd", {"distill_weight": 0.9}, 0),
    ("fashion-distillation-cpu-2core-2026-11-28.txt", 3, None, "fashion-mnist/vit+kd", {"batch_size": 64}, 0),
    ("fashion-spt-vs-lsa-distilled-zen4-cpu-2core-2026-12-06.txt", 0, None, "fashion-mnist/vit+kd",
     {"stem": "shifted"}, 0),
    ("fashion-spt-vs-lsa-distilled-zen4-cpu-2core-2026-12-06.txt", 1, None, "fashion-mnist/vit+kd", {"lsa": True}, 0),
    ("fashion-spt-lsa-cpu-2core-2026-11-28.txt", 3, None, "fashion-mnist/vit-spt-lsa+kd", {}, 1),
    ("accuracy-fashion-mnist-spt-lsa-seeds-zen4-cpu-2core-2026-12-07.txt", 2, 1, "fashion-mnist/vit-spt-lsa", {}, 1),
    ("accuracy-fashion-mnist-hybrid-lsa-distilled-seed1-zen4-cpu-2core-2026-12-06.txt", 0, 0,
     "fashion-mnist/hybrid-lsa+kd", {}, 1),
    ("fashion-hybrid-distilled-no-lsa-seed1-zen4-cpu-2core-2026-12-06.txt", 0, None, "fashion-mnist/hybrid-lsa+kd",
     {"lsa": False}, 1),
    ("fashion-hybrid-lsa-hard-distillation-seed1-zen4-cpu-2core-2026-12-07.txt", 0, None,
     "fashion-mnist/hybrid-lsa+kd", {"distill": "hard"}, 1),
    ("fashion-hybrid-trunk-lsa-distilled-zen4-cpu-2core-2026-12-06.txt", 0, None, "fashion-mnist/hybrid-lsa+kd",
     TRUNK, 0),
    ("fashion-hybrid-trunk-depth6-lsa-distilled-zen4-cpu-2core-2026-12-06.txt", 0, None,
     "fashion-mnist/hybrid-lsa+kd", {**TRUNK, "depth": 6}, 0),
    ("fashion-trunk-temperature4-zen4-cpu-2core-2026-12-06.txt", 0, None, "fashion-mnist/hybrid-lsa+kd",
     {**TRUNK, "distill_temperature": 4.0}, 0),
    ("fashion-stronger-teacher-zen4-cpu-2core-2026-12-06.txt", 0, None, "fashion-mnist/cnn",
     {"channels": (48, 96, 192), "convs_per_stage": (2, 2, 2)}, 0),
    ("fashion-stronger-teacher-zen4-cpu-2core-2026-12-06.txt", 1, None, "fashion-mnist/hybrid-lsa+kd",
     {**TRUNK, "teacher": "runs/fashion-cnn-wide/checkpoint.pt"}, 0),
]
LOGGED_LINE = re.compile(r"^(val|test) accuracy\s+([\d.]+)% \(95 % interval [\d.%-]+\) on ([\d,]+) (?:validation|test)",
                         re.M)


def logged_runs() -> None:
    for log, val_k, test_k, model_id, changes, seed in LOGGED:
        found = {"val": [], "test": []}
        for m in LOGGED_LINE.finditer((LOGS / log).read_text()):
            n = int(m.group(3).replace(",", ""))
            found[m.group(1)].append((round(float(m.group(2)) * n / 100), n))
        spec = RunSpec(model_id, changes, seed=seed, read_test=test_k is not None)
        row = base_row(spec, f"lab/logs/{log}", "accuracies read from the log, which kept no per-image answers")
        val = found["val"][val_k]
        row.update(data=data_part(spec, 55_000, val[1], 10_000), epochs=spec.recipe()["epochs"],
                   images_seen=spec.recipe()["epochs"] * 55_000, val=scored_counts(*val),
                   test=scored_counts(*found["test"][test_k]) if test_k is not None else None)
        write_row(spec.path(RESULTS), row)
    print(f"{len(LOGGED)} runs read from logs")


# --------------------------------------------------------------------------- the digit models taught by the CNN


def taught_digits() -> None:
    """The 9-fold cross-validation of docs/decisions/mnist-taught.md, run by the cross-validation script of the day
    (one thread, per-digit answers in JSON), as fold rows: the taught ViT and hybrid, and their teachers."""
    source = "lab/logs/mnist-taught-cv9-zen4-cpu-1thread-2026-12-08.txt"
    for name, label, model_id in (("vit", "vit-kd", "mnist-sample/vit+kd"),
                                  ("hybrid", "hybrid-kd", "mnist-sample/hybrid+kd"),
                                  ("vit", "teacher:mnist-cnn", "mnist-sample/cnn")):
        answers = json.loads((LOGS / f"mnist-taught-cv9-{name}-zen4-cpu-1thread-2026-12-08.json").read_text())
        note = ("the fold's teacher, trained on the fold's training digits only" if label.startswith("teacher")
                else "taught by a CNN trained on the fold's training digits only")
        cv_folds(model_id, {}, 9, 0, answers[label], source, note)
    print("the taught digit models' folds converted")


# --------------------------------------------------------------------------- speed


AMP_NAMES = {"mnist": "mnist-sample/vit", "fashion-mnist": "fashion-mnist/vit", "cifar10": "cifar10/vit",
             "mnist-hybrid": "mnist-sample/hybrid", "fashion-mnist-hybrid": "fashion-mnist/hybrid",
             "fashion-mnist-distilled": "fashion-mnist/vit+kd", "fashion-mnist-spt-lsa": "fashion-mnist/vit-spt-lsa",
             "fashion-mnist-spt-lsa-distilled": "fashion-mnist/vit-spt-lsa+kd",
             "fashion-mnist-hybrid-lsa-distilled": "fashion-mnist/hybrid-lsa+kd", "mnist-cnn": "mnist-sample/cnn",
             "fashion-mnist-cnn": "fashion-mnist/cnn"}


def old_machine(m: dict, cpu: str | None = None) -> dict:
    return {"cpu": cpu or m["cpu"], "cores": m["cores_available"], "threads": m["torch_threads"],
            "bf16": m["cpu_bf16"], "device": m["device"], "torch": m["torch"].split("+")[0], "python": m["python"],
            "date": m["date"]}


def speed() -> None:
    from vit_tutorial.speed import record, throughput_rows

    cpus = {"amp-zen4-cpu-2core-2026-12-04.json": "AMD EPYC (family 25 model 17)"}
    for name in ("amp-cpu-2core-2026-11-27.json", "amp-zen4-cpu-2core-2026-12-04.json"):
        old = json.loads((ROOT / "benchmarks" / "results" / name).read_text())
        rows = []
        for r in old["rows"]:
            model_id = AMP_NAMES[r["preset"]]
            if build_model(model_id).num_parameters() != r["parameters"]:
                model_id = f"an earlier {r['preset']}"
            rows.append({"model": model_id, "width": r["width"], "parameters": r["parameters"],
                         "float32": r["float32"], "bfloat16": r["bfloat16"], "auto": r["auto"]})
        record("amp", old_machine(old["machine"], cpus.get(name)), {"batch": 128, "repetitions": 5, "steps": 4},
               rows, "python benchmarks/amp.py --record", converted_from=f"benchmarks/results/{name}")
    name = "throughput-cpu-2core-2026-11-27-amd.json"
    old = json.loads((ROOT / "benchmarks" / "results" / name).read_text())
    rows = throughput_rows(old["patches"])
    s = old["settings"]
    record("throughput", old_machine(old["machine"]),
           {"batch": s["batch_size"], "repetitions": s["reps"], "steps": s["steps"], "width": s["config"]["width"],
            "depth": s["config"]["depth"]}, rows, "python benchmarks/throughput.py --record",
           converted_from=f"benchmarks/results/{name}")
    print("speed rows converted")


def main(argv=None) -> None:
    steps = {"checkpoints": (move_checkpoints, score_shipped, model_rows), "notebooks": (small_data, grids),
             "cv": (cross_validations,), "speed": (speed,), "logs": (logged_runs,), "taught": (taught_digits,)}
    for name in (argv if argv else steps):
        for step in steps[name]:
            step()


if __name__ == "__main__":
    main(sys.argv[1:])

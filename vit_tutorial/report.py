"""Every results table of the README and the website, rendered from the rows; never typed.

A page holds a table between two markers::

    <!-- report:NAME {"json": "arguments"} -->
    ...the table, written by ``python -m vit_tutorial report``...
    <!-- /report:NAME -->

``render`` fills every marked region of README.md and of the pages under
``docs/`` from the rows in ``results/`` (and the speed rows in
``results/speed/``); ``report --check`` (and a test) fails when a table
differs from what the rows give, so a row changed without ``report`` run is
caught.

The tables:

- ``headline``: every model that ships (as a checkpoint or as its row), with its test accuracy;
- ``models``: every model of the registry (``python -m vit_tutorial models`` prints the same);
- ``cv``: a cross-validation, candidates against a baseline, pooled over folds;
- ``runs``: single runs scored on one split, each against a baseline on the same images;
- ``pairs``: shipped models compared on the same test images;
- ``files``: rows kept outside ``results/`` (a shipped model trained again), each against the shipped row;
- ``speed``: training speed rows;
- ``cli``: every command's ``--help``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from . import registry
from .errors import VitTutorialError
from .evaluation import count_summary, difference_summary, mcnemar, p_text, paired_difference
from .results import RESULTS, correct_of
from .runner import RunSpec, cached, checkpoint_path
from .utils import atomic_write, project_root

ROOT = project_root(Path(__file__).parent)
MARKER = re.compile(r"<!-- report:([a-z-]+)(?: (\{.*?\}))? -->\n(.*?)<!-- /report:\1 -->", re.S)


def pages(root: Path = ROOT) -> list:
    """The files whose tables ``report`` renders: README.md and the website's Markdown pages."""
    return [root / "README.md", *sorted((root / "docs").rglob("*.md"))]


def shipped_row(model_id: str, results: Path = RESULTS) -> dict | None:
    """The row of ``model_id`` trained on its whole training split with its test split read, if it was run."""
    return cached(RunSpec(model_id, read_test=True), results)


def ships(model_id: str, results: Path = RESULTS) -> str:
    """How ``model_id`` ships: "checkpoint", "row" (its result only) or "no"."""
    if checkpoint_path(model_id).is_file():
        return "checkpoint"
    return "row" if shipped_row(model_id, results) is not None else "no"


def recipe_text(model_id: str) -> str:
    r = registry.recipe(model_id)
    text = f"{r['epochs']} epochs, batch {r['batch_size']}, lr {r['lr']:g}, {r['augment']}"
    if r.get("teacher"):
        text += f", taught by {r['teacher']}"
    return text


def model_table(dataset: str | None = None, results: Path = RESULTS) -> list:
    """One dict per model of the registry (of ``dataset``): what ``models`` prints."""
    from .config import build_model

    out = []
    for model_id in registry.ids(dataset):
        spec = registry.get(model_id)
        row = shipped_row(model_id, results)
        test = row["test"] if row else None
        out.append({"id": model_id, "parameters": build_model(spec.config).num_parameters(),
                    "recipe": recipe_text(model_id), "ships": ships(model_id, results),
                    "test": count_summary(test["correct"], test["images"], short=True) if test else None,
                    "test_images": test["images"] if test else None, "summary": spec.summary})
    return out


def models_text(lines: list) -> str:
    """``model_table`` as aligned text, as ``python -m vit_tutorial models`` prints it."""
    head = ("model", "parameters", "ships", "test accuracy (95 % interval)", "recipe")
    cells = [(m["id"], f"{m['parameters']:,}", m["ships"],
              f"{m['test']} on {m['test_images']:,}" if m["test"] else "-", m["recipe"]) for m in lines]
    widths = [max(len(r[i]) for r in (head, *cells)) for i in range(len(head))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in (head, *cells))


def markdown(header: list, body: list) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in body]
    return "\n".join(lines) + "\n"


def data_text(row: dict) -> str:
    return {"mnist-sample": "MNIST sample", "mnist": "MNIST", "fashion-mnist": "Fashion-MNIST",
            "cifar10": "CIFAR-10"}.get(row["data"]["dataset"], row["data"]["dataset"])


# --------------------------------------------------------------------------- the tables


def table_headline(args: dict, results: Path) -> str:
    body = []
    for model_id in registry.ids():
        row = shipped_row(model_id, results)
        if row is None:
            continue
        t = row["test"]
        body.append((f"`{model_id}`", registry.get(model_id).summary, f"{row['parameters']:,}",
                     count_summary(t["correct"], t["images"], short=True), f"{t['images']:,} ({data_text(row)})"))
    return markdown(["model", "what it is", "parameters", "test accuracy (95 % interval)", "test images"], body)


def table_models(args: dict, results: Path) -> str:
    body = [(f"`{m['id']}`", f"{m['parameters']:,}", m["recipe"], m["ships"],
             f"{m['test']} on {m['test_images']:,}" if m["test"] else "-") for m in model_table(None, results)]
    return markdown(["model", "parameters", "recipe", "ships", "test accuracy (95 % interval)"], body)


def _changes_text(changes: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in changes.items()) or "as registered"


def _versus(correct, base, base_label: str) -> str:
    t, d = mcnemar(correct, base), paired_difference(correct, base)
    return f"{difference_summary(d)}; {t['a_only']}:{t['b_only']}, p = {p_text(t['p_value'])}"


def pooled(model: str, changes: dict, folds: int, split_seed: int, results: Path):
    """The pooled answers of a cross-validation from its fold rows, in the pool's order; None if a fold is missing."""
    import torch

    from .runner import cv_pool, load_splits

    fold_rows = []
    for k in range(folds):
        row = cached(RunSpec(model, changes, cv=(folds, k, split_seed), seed=k + folds * split_seed), results)
        if row is None:
            return None
        fold_rows.append(row)
    splits = load_splits(registry.get(model).dataset)
    _, cut = cv_pool(splits, folds, split_seed)
    correct = torch.zeros(fold_rows[0]["data"]["cv"]["pool"], dtype=torch.bool)
    for k, row in enumerate(fold_rows):
        correct[torch.as_tensor(cut[k][1])] = correct_of(row["val"])
    return correct, fold_rows


def _holm_column(tests: dict) -> dict:
    """Holm-adjusted p-values of a family of McNemar tests {label: test}, as text."""
    from .evaluation import holm

    labels = list(tests)
    return dict(zip(labels, (p_text(p) for p in holm([tests[k]["p_value"] for k in labels]))))


def table_cv(args: dict, results: Path) -> str:
    """A cross-validation's candidates, pooled over folds; each against ``base`` (one label, or a dict from a
    candidate's label to its own baseline's), with Holm's correction over the comparisons."""
    folds, split_seed = args["folds"], args.get("split_seed", 0)
    found = {}
    for label, model, changes in args["rows"]:
        got = pooled(model, changes, folds, split_seed, results)
        if got is None:
            raise VitTutorialError(f"the cross-validation rows of {label} ({model}, {_changes_text(changes)}, "
                                   f"{folds} folds, split seed {split_seed}) are missing")
        found[label] = got
    base = args.get("base")
    base_of = base if isinstance(base, dict) else {label: base for label, *_ in args["rows"] if base and label != base}
    tests = {label: mcnemar(found[label][0], found[b][0]) for label, b in base_of.items()}
    adjusted = _holm_column(tests) if len(tests) > 1 else {}
    body = []
    for label, model, changes in args["rows"]:
        correct, fold_rows = found[label]
        line = [label, f"`{model}`" + (f" with {_changes_text(changes)}" if changes else ""),
                count_summary(int(correct.sum()), len(correct), short=True)]
        if base:
            b = base_of.get(label)
            line.append(f"against {b}: {_versus(correct, found[b][0], b)}" if isinstance(base, dict) and b else
                        _versus(correct, found[b][0], b) if b else "")
        if adjusted:
            line.append(adjusted.get(label, ""))
        body.append(line)
    header = ["candidate", "model", f"cross-validated accuracy, {len(correct):,} images (95 % interval)"]
    if base:
        against = "against its baseline" if isinstance(base, dict) else f"against {base}"
        who = "the baseline" if isinstance(base, dict) else base
        header.append(f"{against}: difference (95 % interval); right for this only : for {who} only, McNemar p")
    if adjusted:
        header.append(f"Holm-adjusted p ({len(tests)} comparisons)")
    return markdown(header, body)


def table_runs(args: dict, results: Path) -> str:
    split = args.get("split", "val")
    found = {}
    for label, model, changes, *rest in args["rows"]:
        seed = rest[0] if rest else 0
        row = cached(RunSpec(model, changes, seed=seed, read_test=split == "test"), results)
        if row is None or row[split] is None:
            raise VitTutorialError(f"the row of {label} ({model}, {_changes_text(changes)}, seed {seed}) with "
                                   f"{split} scores is missing")
        found[label] = row
    base = args.get("base")
    body = []
    for label, model, changes, *_ in args["rows"]:
        row = found[label]
        part = row[split]
        line = [label, f"`{model}`" + (f" with {_changes_text(changes)}" if changes else ""),
                count_summary(part["correct"], part["images"], short=True)]
        if base:
            other = found[base][split]
            paired = label != base and part["bits"] is not None and other["bits"] is not None
            line.append(_versus(correct_of(part), correct_of(other), base) if paired else
                        ("" if label == base else "not kept image by image"))
        body.append(line)
    word = "validation" if split == "val" else "test"
    header = ["run", "model", f"{word} accuracy, {part['images']:,} images (95 % interval)"]
    if base:
        header.append(f"against {base}: difference (95 % interval); right for this only : for {base} only, "
                      f"McNemar p")
    return markdown(header, body)


def table_files(args: dict, results: Path) -> str:
    """Rows kept as files outside ``results/`` (e.g. a shipped model trained again, in ``lab/logs/``), each on the
    test split against the shipped row of its model, on the same images."""
    from .results import read_row

    body = []
    for label, path in args["rows"]:
        row = read_row(ROOT / path)
        shipped = shipped_row(row["model"], results)
        t = row["test"]
        line = [label, f"`{row['model']}`", count_summary(t["correct"], t["images"], short=True)]
        if shipped is not None:
            s = shipped["test"]
            line += [count_summary(s["correct"], s["images"], short=True),
                     "yes" if s["low"] <= t["accuracy"] <= s["high"] else "no",
                     _versus(correct_of(t), correct_of(s), "shipped")]
        body.append(line)
    return markdown(["run", "model", "test accuracy (95 % interval)", "the shipped model's", "inside its interval",
                     "against the shipped model: difference (95 % interval); right for this only : for the "
                     "shipped only, McNemar p"], body)


def table_pairs(args: dict, results: Path) -> str:
    models = args["models"]
    rows = {}
    for model_id in models:
        row = shipped_row(model_id, results)
        if row is None:
            raise VitTutorialError(f"{model_id} has no shipped row")
        rows[model_id] = row
    body = []
    for i, a in enumerate(models):
        for b in models[i + 1:]:
            ca, cb = correct_of(rows[a]["test"]), correct_of(rows[b]["test"])
            body.append((f"`{a}`", f"`{b}`", _versus(ca, cb, b)))
    return markdown(["model", "against", "difference (95 % interval); right for the first only : for the second "
                     "only, McNemar p"], body)


def table_speed(args: dict, results: Path) -> str:
    from .speed import speed_table

    return speed_table(args)


def table_cli(args: dict, results: Path) -> str:
    """Every command's ``--help``, as the command line prints it at a width of 100 columns."""
    import contextlib
    import io
    import os

    from .cli import build_parser

    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices  # argparse keeps the subcommands here
    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "100"
    try:
        parts = []
        for name, sub in commands.items():
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                sub.print_help()
            parts.append(f"## {name}\n\n```text\n{out.getvalue().rstrip()}\n```\n")
    finally:
        if old is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = old
    return "\n".join(parts)


TABLES = {"headline": table_headline, "models": table_models, "cv": table_cv, "runs": table_runs,
          "pairs": table_pairs, "speed": table_speed, "cli": table_cli, "files": table_files}


# --------------------------------------------------------------------------- pages


def render_text(text: str, results: Path = RESULTS, where: str = "page") -> str:
    """``text`` with every marked table rendered anew from the rows."""
    def fill(match: re.Match) -> str:
        name, args = match.group(1), match.group(2)
        if name not in TABLES:
            raise VitTutorialError(f"{where}: unknown table {name!r}; the tables are {', '.join(TABLES)}")
        try:
            parsed = json.loads(args) if args else {}
        except ValueError as e:
            raise VitTutorialError(f"{where}: the arguments of table {name!r} are not JSON ({e})") from None
        return f"<!-- report:{name}{' ' + args if args else ''} -->\n{TABLES[name](parsed, results)}" \
               f"<!-- /report:{name} -->"

    return MARKER.sub(fill, text)


def render(root: Path = ROOT, results: Path = RESULTS) -> dict:
    """{path: new text} for every page with a marked table."""
    out = {}
    for path in pages(root):
        if not path.is_file():
            continue
        text = path.read_text()
        if MARKER.search(text):
            out[path] = render_text(text, results, str(path.relative_to(root)))
    return out


def check(root: Path = ROOT, results: Path = RESULTS) -> list:
    """The pages (relative to ``root``) whose tables differ from what the rows give."""
    return [str(p.relative_to(root)) for p, text in render(root, results).items() if p.read_text() != text]


def write(root: Path = ROOT, results: Path = RESULTS) -> list:
    """Render every table in place; the pages that changed."""
    changed = []
    for path, text in render(root, results).items():
        if path.read_text() != text:
            atomic_write(path, lambda f, t=text: f.write(t.encode()))
            changed.append(str(path.relative_to(root)))
    return changed

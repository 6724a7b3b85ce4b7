"""Speed rows: what the benchmarks measured, on which machine, kept as data and rendered on the speed page.

A speed row is one JSON file under ``results/speed/``, written by a benchmark
(``benchmarks/amp.py``, ``benchmarks/throughput.py``) with ``--record``:
{"schema", "benchmark", "machine", "settings", "rows", "command"}. Each row of
``rows`` is one model or variant timed on that machine. The speed page of the
website shows every recorded measurement with the CPU it ran on; a timing is
compared only with timings of the same measurement (the same process, the same
machine), as a ratio.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from .errors import VitTutorialError
from .results import RESULTS
from .utils import atomic_write

SPEED = RESULTS / "speed"
SCHEMA = "vit_tutorial/speed/1"


def record(benchmark: str, machine: dict, settings: dict, rows: list, command: str, root: Path = SPEED,
           converted_from: str | None = None) -> Path:
    """Write one measurement as a speed row; its file is named by the benchmark, the CPU and the time."""
    cpu = re.sub(r"[^a-z0-9]+", "-", machine.get("cpu", "cpu").lower()).strip("-")
    stamp = re.sub(r"[^0-9]", "", machine.get("date", ""))[:12]
    path = Path(root) / f"{benchmark}-{cpu}-{stamp}.json"
    data = {"schema": SCHEMA, "benchmark": benchmark, "machine": machine, "settings": settings, "rows": rows,
            "command": command, "converted_from": converted_from}
    atomic_write(path, lambda f: f.write((json.dumps(data, indent=1, sort_keys=True) + "\n").encode()))
    return path


def throughput_rows(patches: list) -> list:
    """``benchmarks/throughput.py``'s results per patch size as speed rows: each variant's median, and its
    ratio to our default training path (what ``fit`` runs on that CPU)."""
    rows = []
    for patch in patches:
        default = next(v["median"] for v in patch["variants"] if v["default_training_path"])
        rows += [{"patch_size": patch["patch_size"], "label": v["label"], "precision": v["precision"],
                  "median": v["median"], "ratio": v["median"] / default, "rates": v["images_per_second"],
                  "peak_share": v.get("peak_share")} for v in patch["variants"]]
    return rows


def speed_rows(benchmark: str | None = None, root: Path = SPEED) -> list:
    """Every recorded measurement (of one benchmark), oldest first."""
    out = []
    for path in sorted(Path(root).glob("*.json")):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            raise VitTutorialError(f"cannot read the speed row {path}") from None
        if data.get("schema") != SCHEMA:
            raise VitTutorialError(f"{path} is not a speed row of {SCHEMA}")
        if benchmark is None or data["benchmark"] == benchmark:
            out.append(data)
    return sorted(out, key=lambda d: d["machine"].get("date", ""))


def machine_line(m: dict) -> str:
    """The machine of a measurement in one line: CPU, threads, native bfloat16, torch, date."""
    return (f"{m.get('cpu', 'unknown CPU')}, {m.get('threads', '?')} threads, native bfloat16: "
            f"{m.get('bf16') or 'none'}, torch {m.get('torch', '?')}, {m.get('date', '')[:10]}")


def _markdown(header: list, body: list) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    return "\n".join(lines + ["| " + " | ".join(str(c) for c in r) + " |" for r in body]) + "\n"


def amp_table(data: dict) -> str:
    body = [(r["model"], f"{r['parameters']:,}", f"{r['float32']:.0f}", f"{r['bfloat16']:.0f}",
             f"{r['bfloat16'] / r['float32']:.2f}", r["auto"]) for r in data["rows"]]
    return _markdown(["model", "parameters", "float32 images/s", "bfloat16 images/s", "bfloat16 / float32",
                      "fit's choice"], body)


def book_table(data: dict) -> str:
    body = [(r["notebook"], r["seconds"]) for r in data["rows"]]
    body.append(("**the whole book**, set-up included", data["settings"]["total_seconds"]))
    return _markdown(["notebook", "seconds"], body)


def throughput_table(data: dict) -> str:
    shares = any(r.get("peak_share") is not None for r in data["rows"])
    body = []
    for r in data["rows"]:
        line = [r["patch_size"], r["label"], f"{r['median']:.0f}", f"{r['ratio']:.2f}"]
        if shares:
            line.append(f"{100 * r['peak_share']:.0f} %" if r.get("peak_share") is not None else "-")
        body.append(line)
    header = ["patch", "variant", "median images/s", "against our default path"]
    return _markdown(header + (["share of the measured peak"] if shares else []), body)


TABLES = {"amp": amp_table, "throughput": throughput_table, "book": book_table}


def main(argv=None) -> int:
    """``python -m vit_tutorial.speed book TOTAL NAME=SECONDS ...``: keep ``scripts/book.sh``'s timings as a row."""
    import sys

    from .machine import machine_info
    from .utils import quick_mode

    argv = sys.argv[1:] if argv is None else argv
    if len(argv) < 2 or argv[0] != "book":
        print("usage: python -m vit_tutorial.speed book TOTAL_SECONDS NOTEBOOK=SECONDS ...", file=sys.stderr)
        return 2
    rows = [{"notebook": name, "seconds": int(seconds)} for name, _, seconds in (a.partition("=") for a in argv[2:])]
    import os

    settings = {"total_seconds": int(argv[1]), "quick": quick_mode(),
                "retrain": os.environ.get("VIT_TUTORIAL_RETRAIN", "0") == "1"}
    print(f"recorded in {record('book', machine_info(), settings, rows, 'bash scripts/book.sh --record')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


def speed_table(args: dict) -> str:
    """Every measurement of ``args["benchmark"]``: a line naming the machine, then its table."""
    benchmark = args.get("benchmark")
    if benchmark not in TABLES:
        raise VitTutorialError(f"unknown benchmark {benchmark!r}; the speed tables are {', '.join(TABLES)}")
    parts = []
    for data in speed_rows(benchmark):
        settings = ", ".join(f"{k} {v}" for k, v in data["settings"].items() if not isinstance(v, dict))
        parts.append(f"*{machine_line(data['machine'])}; {settings}*\n\n{TABLES[benchmark](data)}")
    if not parts:
        return "(no measurement recorded yet)\n"
    return "\n".join(parts)

"""Committed notebook outputs that hold on every machine.

nbval compares the outputs of every cell not marked ``# NBVAL_IGNORE_OUTPUT``
with what the cell prints on the machine that runs the tests. A compared
output that names the CPU's precision, the device or the torch version fails
on the next machine; a printed absolute path tells every reader where the
book happened to be executed. Both are caught here, before nbval meets them.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import REPO

# A path under a home or work folder, or a drive letter: the machine that executed the notebook.
ABSOLUTE_PATH = re.compile(r"(?<![\w.])(/(?:root|home|Users|work|tmp|mnt|opt|srv|var/folders)/[^\s'\"]*"
                           r"|[A-Za-z]:\\[^\s'\"]+)")
# What depends on the machine: precision, device, CPU features and names, versions, times.
MACHINE_SPECIFIC = re.compile(r"bfloat16|float16|\bfp32\b|\bbf16\b|\bcuda\b|device\(type=|\bAMX\b|AVX|"
                              r"Xeon|EPYC|Ryzen|torch \d+\.\d+|\d+(\.\d+)? ?(s|seconds|min)\b(?! ?=)|"
                              r"images?/s\b|img/s\b")


def output_texts(cell: dict) -> list:
    texts = []
    for out in cell.get("outputs", []):
        if "text" in out:
            texts.append("".join(out["text"]))
        for mime in ("text/plain", "text/html", "text/markdown"):
            if mime in out.get("data", {}):
                texts.append("".join(out["data"][mime]))
        if out.get("output_type") == "error":
            texts.append("\n".join(out.get("traceback", [])))
    return texts


def compared(cell: dict) -> bool:
    """True when nbval compares this cell's outputs."""
    source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
    return cell["cell_type"] == "code" and not re.search(r"#\s*NBVAL_(IGNORE_OUTPUT|SKIP)", source)


def problems(notebook: Path) -> list:
    cells = json.loads(notebook.read_text())["cells"]
    found = []
    for i, cell in enumerate(cells):
        for text in output_texts(cell):
            for m in ABSOLUTE_PATH.finditer(text):
                found.append(f"{notebook.name} cell {i}: absolute path {m.group(0)[:80]!r}")
            if compared(cell):
                for m in MACHINE_SPECIFIC.finditer(text):
                    found.append(f"{notebook.name} cell {i}: compared output names {m.group(0)!r} "
                                 f"(mark the cell # NBVAL_IGNORE_OUTPUT and assert what matters instead)")
    return found


def test_the_scanner_catches_what_it_should(tmp_path):
    def notebook(source, text):
        nb = {"cells": [{"cell_type": "code", "source": source, "metadata": {}, "execution_count": 1,
                         "outputs": [{"output_type": "stream", "name": "stdout", "text": text}]}],
              "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
        path = tmp_path / "01_x.ipynb"
        path.write_text(json.dumps(nb))
        return problems(path)

    assert notebook("print(1)", "patches: 16, width 64\n") == []
    assert len(notebook("print(p)", "Note: using the sample in /home/ana/vit/data.\n")) == 1
    assert len(notebook("print(p)", "saved to C:\\Users\\ana\\runs\n")) == 1
    # machine-specific values only matter where nbval compares
    assert len(notebook("print(dtype)", "training precision: torch.bfloat16\n")) == 1
    assert len(notebook("print(t)", "one epoch took 12.5 s at 900 img/s\n")) == 2
    assert notebook("# NBVAL_IGNORE_OUTPUT\nprint(dtype)", "training precision: torch.bfloat16\n") == []
    # ... but an absolute path is wrong in any committed output
    assert len(notebook("# NBVAL_IGNORE_OUTPUT\nprint(p)", "data in /root/main/data\n")) == 1
    # paths relative to the project, and system paths that are the same everywhere, are fine
    assert notebook("print(p)", "data from data/ and /usr/share/datasets/fashion-mnist\n") == []


NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_committed_outputs_hold_on_every_machine(notebook):
    found = problems(notebook)
    assert not found, "\n".join(found)


# Run history in a lesson's prose: a date, a CPU or GPU by name, a path to the lab's logs or to a result file, a commit.
RUN_HISTORY = re.compile(r"\b20\d\d-[01]\d-[0-3]\d\b|\b(EPYC|Xeon|Zen \d|Ryzen|H100|H200|A100)\b|lab/logs/|"
                         r"benchmarks/results/|results/[a-z0-9-]+/\S+\.json|\bcommit [0-9a-f]{7,40}\b")
# The notebook whose prose still tells how its results were found; it is being rewritten as a lesson.
HISTORY_NOT_YET_REMOVED = {"13_small_data"}


def history_in(notebook: Path) -> list:
    found = []
    for i, cell in enumerate(json.loads(notebook.read_text())["cells"]):
        if cell["cell_type"] == "markdown":
            text = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
            found += [f"{notebook.name} cell {i}: {m.group(0)!r}" for m in RUN_HISTORY.finditer(text)]
    return found


def test_the_history_scan_catches_dates_machines_and_lab_paths(tmp_path):
    def notebook(text):
        path = tmp_path / "01_x.ipynb"
        path.write_text(json.dumps({"cells": [{"cell_type": "markdown", "source": text, "metadata": {}}],
                                    "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
        return history_in(path)

    assert notebook("A ViT of 139,018 parameters, at 98 % on 500 digits.") == []
    for text in ("run on 2026-12-04", "a 2-core AMD EPYC", "see lab/logs/cv.txt", "on an NVIDIA H200",
                 "in results/mnist-sample/vit/seed0-1234abcd.json"):
        assert len(notebook(text)) == 1, text


@pytest.mark.parametrize("notebook", [p for p in NOTEBOOKS if p.stem not in HISTORY_NOT_YET_REMOVED],
                         ids=[p.stem for p in NOTEBOOKS if p.stem not in HISTORY_NOT_YET_REMOVED])
def test_a_lessons_prose_holds_no_run_history(notebook):
    found = history_in(notebook)
    assert not found, "\n".join(found)

"""The project around the package: dependency lists, notebook pairs, the test command."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import REPO

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")


# ---------------------------------------------------------------- dependencies


def pip_section(environment_yml: str) -> list:
    """The entries under ``- pip:`` of a conda environment file (read by hand: pyyaml may be missing)."""
    entries, pip_indent = [], None
    for line in environment_yml.splitlines():
        text = line.split("#", 1)[0].rstrip()
        if not text.strip():
            continue
        indent = len(text) - len(text.lstrip())
        if pip_indent is None:
            if re.fullmatch(r"-\s*pip:", text.strip()):
                pip_indent = indent
            continue
        if indent <= pip_indent:
            break
        entries.append(re.sub(r"^-\s*", "", text.strip()))
    return entries


def test_pip_section_reader():
    text = "name: x\ndependencies:\n  - python=3.11\n  - pip\n  - pip:\n      - torch>=2.4  # the model\n\n" \
           "      - -e .\n  - numpy\nother: 1\n"
    assert pip_section(text) == ["torch>=2.4", "-e ."]


def test_environment_yml_lists_the_same_packages_as_pyproject():
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    extras = pyproject["optional-dependencies"]
    expected = pyproject["dependencies"] + extras["dev"] + extras["site"]  # what scripts/setup.sh installs
    pip = pip_section((REPO / "environment.yml").read_text())
    assert "-e ." in pip  # the package itself, from the checkout
    listed = [p for p in pip if p != "-e ."]
    assert len(listed) == len(set(listed))
    assert sorted(listed) == sorted(expected)


# ---------------------------------------------------------------- notebooks and their py:percent pairs


def pair_problems(ipynb: Path) -> list:
    """What differs between a notebook and its py:percent pair (outputs and metadata ignored)."""
    import jupytext

    py = ipynb.with_suffix(".py")
    if not py.is_file():
        return [f"{ipynb.name} has no pair {py.name}"]
    cells = [[(c.cell_type, c.source.strip()) for c in jupytext.read(path).cells] for path in (ipynb, py)]
    problems = []
    if len(cells[0]) != len(cells[1]):
        problems.append(f"{ipynb.name} has {len(cells[0])} cells, {py.name} has {len(cells[1])}")
    for i, (a, b) in enumerate(zip(*cells)):
        if a[0] != b[0]:
            problems.append(f"cell {i} is {a[0]} in {ipynb.name}, {b[0]} in {py.name}")
        elif a[1] != b[1]:
            line = next(n for n, (x, y) in enumerate(zip(a[1].splitlines() + [""], b[1].splitlines() + [""]))
                        if x != y)
            problems.append(f"cell {i}, line {line + 1} differs between {ipynb.name} and {py.name}")
    return problems


def book_notebooks(folder: Path) -> list:
    return sorted(folder.glob("[0-9][0-9]_*.ipynb"))


def test_pair_check_detects_a_drift(tmp_path):
    import jupytext
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

    code = new_code_cell("import torch\n\nx = torch.zeros(2)\nassert x.shape == (2,)")
    code.outputs = [new_output("stream", name="stdout", text="an output the .py does not keep\n")]
    nb = new_notebook(cells=[new_markdown_cell("# 01 Patching\n\nWhat this notebook builds."), code])
    ipynb = tmp_path / "01_patching.ipynb"
    jupytext.write(nb, ipynb)
    assert pair_problems(ipynb) == [f"{ipynb.name} has no pair 01_patching.py"]

    py = tmp_path / "01_patching.py"
    jupytext.write(nb, py, fmt="py:percent")
    assert "# %%" in py.read_text()
    assert pair_problems(ipynb) == []
    assert book_notebooks(tmp_path) == [ipynb]

    py.write_text(py.read_text().replace("torch.zeros(2)", "torch.zeros(3)"))
    assert len(pair_problems(ipynb)) == 1
    py.write_text(py.read_text().replace("torch.zeros(3)", "torch.zeros(2)") + "\n# %%\nprint('one more')\n")
    assert pair_problems(ipynb) == [f"{ipynb.name} has 2 cells, {py.name} has 3"]

    nb.cells[0].cell_type = "raw"  # same text, another kind of cell
    jupytext.write(nb, py, fmt="py:percent")
    nb.cells[0].cell_type = "markdown"
    assert len(pair_problems(ipynb)) == 1


def test_every_notebook_has_a_matching_py_percent_pair():
    folder = REPO / "notebooks"
    notebooks = book_notebooks(folder)
    scripts = sorted(folder.glob("[0-9][0-9]_*.py"))
    assert [p.stem for p in scripts] == [p.stem for p in notebooks], \
        "every notebook needs a .py pair and every .py a notebook"
    if not notebooks:
        pytest.skip("no notebooks yet")
    not_percent = [p.name for p in scripts if "# %%" not in p.read_text()]
    assert not not_percent, f"not in py:percent format: {not_percent}"
    problems = [p for nb in notebooks for p in pair_problems(nb)]
    assert not problems, "run `jupytext --sync notebooks/*.ipynb`:\n" + "\n".join(problems)


# ---------------------------------------------------------------- the test command


def ci_commands() -> list:
    """The commands .ci/run executes, without the shell set-up around them."""
    lines = [line.strip() for line in (REPO / ".ci" / "run").read_text().splitlines()]
    return [line for line in lines
            if line and not line.startswith("#") and not re.match(r"(set|cd|export)\b", line)]


def test_ci_runs_the_test_script():
    commands = ci_commands()
    assert commands == ["bash scripts/test.sh"]
    script = (REPO / "scripts" / "test.sh").read_text()
    assert "pytest" in script and "--nbval" in script


def test_readme_gives_the_command_ci_runs():
    readme = REPO / "README.md"
    if not readme.is_file():
        pytest.skip("README.md not written yet")
    text = readme.read_text()
    for command in ci_commands():
        assert command in text, f"README.md should tell the reader to run `{command}`, as .ci/run does"

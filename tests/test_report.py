"""Tables generated from rows, never typed: the README and the website match the rows, which match the checkpoints."""

import re
import shutil

import pytest
from conftest import REPO

from vit_tutorial import VitTutorialError, registry, report
from vit_tutorial.evaluation import count_summary, evaluate
from vit_tutorial.results import RESULTS, read_row, write_row
from vit_tutorial.runner import RunSpec, checkpoint_path, load_shipped, load_splits


def test_every_table_of_the_readme_and_the_website_is_what_the_rows_give():
    stale = report.check()
    assert not stale, f"run `python -m vit_tutorial report`: stale tables in {', '.join(stale)}"


def test_a_row_changed_without_running_report_fails_the_check(tmp_path):
    """Plant a changed number in a copy of the rows: the check names the pages it makes stale."""
    rows = tmp_path / "results"
    shutil.copytree(RESULTS, rows)
    path = RunSpec("mnist-sample/vit", read_test=True).path(rows)
    row = read_row(path)
    bits = row["test"]["bits"]
    flipped = ("0" if bits[0] == "1" else "1") + bits[1:]
    row["test"] = dict(row["test"], bits=flipped, correct=flipped.count("1"), accuracy=flipped.count("1") / len(bits))
    write_row(path, row)
    stale = report.check(REPO, rows)
    assert "README.md" in stale and "docs/results.md" in stale
    assert report.check(REPO, RESULTS) == []


def test_the_headline_table_is_on_the_readmes_first_screen_with_every_shipped_model():
    text = (REPO / "README.md").read_text()
    start = text.index("<!-- report:headline -->")
    assert text[:start].count("\n") < 60, "the headline table must be on the README's first screen"
    table = text[start:text.index("<!-- /report:headline -->")]
    for model_id in registry.ids():
        row = report.shipped_row(model_id)
        if row is not None:
            t = row["test"]
            assert f"`{model_id}`" in table and count_summary(t["correct"], t["images"], short=True) in table


SHIPPED = [m for m in registry.ids() if checkpoint_path(m).is_file()]


@pytest.mark.parametrize("model_id", SHIPPED)
def test_every_shipped_checkpoint_scores_what_its_row_says(model_id):
    """The headline numbers are the shipped weights' own: scored again here, image by image.

    Float sums differ a little from one CPU to another, so an image or two near a tie may flip. The first
    2,000 test images are enough to tell a row of these weights from a row of any other model."""
    model, _, payload = load_shipped(model_id)
    row = report.shipped_row(model_id)
    test = load_splits(registry.get(model_id).dataset).test
    first = test.subset(range(min(2000, len(test))))
    ev = evaluate(model, first, device="cpu")
    bits = "".join("1" if c else "0" for c in (ev.predictions == ev.labels).tolist())
    assert sum(a != b for a, b in zip(bits, row["test"]["bits"][:len(first)])) <= 2
    assert row["model"] == model_id and row["parameters"] == model.num_parameters()
    assert payload["command"] == row["command"] and payload["model_id"] == model_id


@pytest.mark.parametrize("model_id", SHIPPED)
def test_a_shipped_checkpoint_is_of_its_model_and_recipe_today(model_id):
    """A model or recipe changed in the registry without training and shipping it again fails here."""
    from vit_tutorial.checkpoint import read_checkpoint
    from vit_tutorial.runner import shipped_differences

    assert shipped_differences(read_checkpoint(checkpoint_path(model_id)), model_id) == []


def test_the_shipped_weights_stay_within_their_budget():
    total = sum(p.stat().st_size for p in (REPO / "checkpoints").rglob("*.pt"))
    assert 0 < total <= 20 * 10**6, f"checkpoints/ holds {total:,} bytes of weights, more than 20,000,000"
    assert not list((REPO / "checkpoints").glob("*.pt")), "a checkpoint outside checkpoints/DATASET/"


def test_a_bad_table_is_a_one_line_error():
    with pytest.raises(VitTutorialError, match="unknown table 'headlines'"):
        report.render_text("<!-- report:headlines -->\nx\n<!-- /report:headlines -->")
    with pytest.raises(VitTutorialError, match="are not JSON"):
        report.render_text("<!-- report:cv {folds: 3} -->\nx\n<!-- /report:cv -->")
    with pytest.raises(VitTutorialError, match="rows of x .* are missing"):
        report.render_text('<!-- report:cv {"folds": 3, "rows": [["x", "mnist-sample/vit", {"depth": 9}]]} -->\n'
                           "<!-- /report:cv -->")


def test_no_number_in_the_readme_is_typed_outside_a_generated_table():
    """Between the markers the rows speak; outside them the README holds no accuracy or timing of its own."""
    text = re.sub(r"<!-- report:(\S+).*?<!-- /report:\1 -->", "", (REPO / "README.md").read_text(), flags=re.S)
    text = re.sub(r"```.*?```", "", text, flags=re.S)  # commands
    typed = re.findall(r"\d+(?:\.\d+)? ?%|\d+ (?:s|min|minutes|seconds)\b|p = \d", text)
    assert not typed, f"numbers typed into README.md: {typed}"
    assert len((REPO / "README.md").read_text().splitlines()) <= 200

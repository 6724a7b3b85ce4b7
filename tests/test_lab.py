"""The lab's scripts on the runner: cross-validation, and shipping a run as a checkpoint and a row."""

import pytest
from conftest import benchmark_module

import vit_tutorial.runner as runner
from vit_tutorial.results import read_row
from vit_tutorial.runner import RunSpec

cv = benchmark_module("cv", "lab")
ship = benchmark_module("ship", "lab")


@pytest.mark.parametrize("text, words", [
    ("mnist-sample/vit", "a candidate is LABEL=MODEL"),
    ("a=mnist-sample/vit,depth", "a change is KEY=VALUE"),
    ("a=mnist-sample/vit,dept=3", "has no setting dept"),
    ("a=mnist-hybrid", "is retired"),
])
def test_a_bad_candidate_is_one_line_and_exit_2(text, words, capsys):
    assert cv.main([text]) == 2
    err = capsys.readouterr().err.strip()
    assert words in err and "\n" not in err


def test_candidates_are_cross_validated_into_fold_rows_and_read_back(tmp_path, capsys):
    small = "depth=1,embed_dim=32,num_heads=2,epochs=1"
    argv = [f"plain=mnist-sample/vit,{small}", f"wider=mnist-sample/vit,{small},mlp_ratio=3.0", "--folds", "2",
            "--results", str(tmp_path), "--threads", "1"]
    assert cv.main(argv) == 0
    out = capsys.readouterr().out
    assert "plain " in out and "cross-validated accuracy" in out and "on 4,500 images" in out
    assert "wider - plain:" in out and "exact McNemar p" in out
    rows = sorted(tmp_path.rglob("*.json"))
    assert len(rows) == 4 and all(read_row(p)["test"] is None for p in rows)  # two folds each; no test split read
    assert cv.main(argv) == 0
    assert "read back" in capsys.readouterr().out


def test_ship_writes_half_precision_weights_and_the_row_of_the_shipped_model(tmp_path, monkeypatch, mnist_sample):
    monkeypatch.setattr(runner, "CHECKPOINTS", tmp_path / "checkpoints")
    monkeypatch.setattr(ship, "RESULTS", tmp_path / "results")
    run = tmp_path / "run"
    spec = RunSpec("mnist-sample/cnn", quick=True)
    runner.train(spec, splits=mnist_sample, out_dir=run)
    with pytest.raises(ship.VitTutorialError, match="epochs 2 .the recipe: 60."):  # a quick run is not the model
        ship.ship("mnist-sample/cnn", run)
    monkeypatch.setitem(runner.registry.MODELS, "mnist-sample/cnn", runner.registry.ModelSpec(
        "mnist-sample/cnn", runner.registry.get("mnist-sample/cnn").config, spec.recipe()))
    row = ship.ship("mnist-sample/cnn", run)
    payload = ship.read_checkpoint(tmp_path / "checkpoints" / "mnist-sample" / "cnn.pt")
    assert payload["model"]["head.weight"].dtype.is_floating_point and str(payload["model"]["head.weight"].dtype) \
        == "torch.float16"
    assert payload["command"] == RunSpec("mnist-sample/cnn").command() and row["test"]["images"] == 500
    assert read_row(RunSpec("mnist-sample/cnn", read_test=True).path(tmp_path / "results")) == row

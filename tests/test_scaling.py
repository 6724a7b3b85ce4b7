"""Notebook 13's measurements: class-balanced subsets, points kept and read back, paired comparisons."""

import json

import pytest
import torch
from matplotlib.figure import Figure

from vit_tutorial import VitTutorialError, build_model
from vit_tutorial.config import PRESETS
from vit_tutorial.data import ImageDataset, Splits
from vit_tutorial.evaluation import mcnemar
from vit_tutorial.plots import plot_accuracy_vs_data
from vit_tutorial.scaling import (
    EQUAL_SEEN,
    MODELS,
    POINTS,
    QUICK_POINTS,
    compare,
    correct_of,
    label,
    point_file,
    run_point,
    stratified_sample,
    summarise,
)


def dataset(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 1, 28, 28), generator=g, dtype=torch.uint8)
    labels = torch.arange(n) % 10
    return ImageDataset(images, labels, [str(k) for k in range(10)], "mnist")


def test_stratified_sample_keeps_the_class_proportions_and_changes_with_the_seed():
    data = dataset(1000)
    a, b = stratified_sample(data, 200, seed=0), stratified_sample(data, 200, seed=1)
    assert len(a) == 200 and torch.bincount(a.labels).tolist() == [20] * 10
    assert not torch.equal(a.images, b.images)
    assert torch.equal(stratified_sample(data, 200, seed=0).images, a.images)
    assert stratified_sample(data, 5000) is data
    with pytest.raises(VitTutorialError, match="at least one image per class"):
        stratified_sample(data, 5)


def test_the_points_name_three_models_per_dataset_and_seeds_only_at_small_sizes():
    assert [label(n) for n in MODELS["mnist"]] == ["ViT", "hybrid", "CNN"]
    for dataset_name, size, _seeds, _epochs, models in POINTS + QUICK_POINTS:
        assert dataset_name in MODELS and size >= 100
        assert models is None or set(models) <= set(MODELS[dataset_name])
    assert max(size for d, size, seeds, *_ in POINTS if len(seeds) == 3) <= 1000


def test_every_model_has_one_point_per_size_in_each_series_on_the_digits():
    """Notebook 13's two series on the MNIST sample, built from POINTS and each model's recipe:
    the recipe (its own epochs) and the equal budget (160,000 images seen), no point trained twice."""
    from vit_tutorial.config import recipe

    trained = {}  # (model, size, epochs) -> how many times POINTS trains it with seed 0
    for dataset_name, size, seeds, epochs, models in POINTS:
        if dataset_name != "mnist":
            continue
        for name in models or MODELS["mnist"]:
            e = epochs or recipe("mnist", full=False, preset=name)["epochs"]
            trained[(name, size, e)] = trained.get((name, size, e), 0) + (0 in seeds)
    assert set(trained.values()) == {1}, trained
    for name in MODELS["mnist"]:
        own = recipe("mnist", full=False, preset=name)["epochs"]
        shipped = {(name, 4000, own)}  # the largest point of the recipe series is the shipped model
        for size in (500, 1000, 2000):
            assert (name, size, own) in trained, (name, size)
        for size in (500, 1000, 2000, 4000):
            assert (name, size, EQUAL_SEEN // size) in set(trained) | shipped, (name, size)


def test_a_point_is_trained_once_then_read_back(tmp_path, monkeypatch):
    splits = Splits(dataset(300), dataset(50, seed=1), dataset(60, seed=2), "random images", full=False)
    row = run_point("mnist", "mnist", splits, 100, seed=0, quick=True, cache_dir=tmp_path)
    assert row["train_size"] == 100 and row["epochs"] == 2 and row["images_seen"] == 200
    assert row["test_images"] == 60 and len(row["correct"]) == 60
    assert correct_of(row).sum().item() == row["test_correct"]
    assert 0 <= row["test_low"] <= row["test_acc"] <= row["test_high"] <= 1
    path = point_file(tmp_path, "mnist", 100, 0, 2)
    assert json.loads(path.read_text())["test_correct"] == row["test_correct"]

    def no_training(*args, **kwargs):
        raise AssertionError("a kept point was trained again")

    monkeypatch.setattr("vit_tutorial.scaling.fit", no_training)
    assert run_point("mnist", "mnist", splits, 100, seed=0, quick=True, cache_dir=tmp_path) == row
    path.write_text("{ damaged")  # a damaged entry is trained again, not trusted
    with pytest.raises(AssertionError, match="trained again"):
        run_point("mnist", "mnist", splits, 100, seed=0, quick=True, cache_dir=tmp_path)


def test_a_point_of_a_changed_preset_is_trained_again(tmp_path, monkeypatch):
    splits = Splits(dataset(300), dataset(50, seed=1), dataset(60, seed=2), "random images", full=False)
    run_point("mnist", "mnist", splits, 100, seed=0, quick=True, cache_dir=tmp_path)
    monkeypatch.setitem(PRESETS, "mnist", PRESETS["mnist"].replace(depth=1))  # same name, same recipe, other model
    row = run_point("mnist", "mnist", splits, 100, seed=0, quick=True, cache_dir=tmp_path)
    assert row["parameters"] == build_model("mnist").num_parameters() < 139_018


def test_a_point_of_a_preset_changed_without_its_parameter_count_is_trained_again(tmp_path, monkeypatch):
    splits = Splits(dataset(300), dataset(50, seed=1), dataset(60, seed=2), "random images", full=False)
    first = run_point("mnist", "mnist", splits, 100, seed=0, quick=True, cache_dir=tmp_path)
    assert first["config"] == json.loads(json.dumps(PRESETS["mnist"].to_dict()))
    monkeypatch.setitem(PRESETS, "mnist", PRESETS["mnist"].replace(pool="mean"))  # the same weights, read otherwise
    trained = []
    real_fit = run_point.__globals__["fit"]
    monkeypatch.setattr("vit_tutorial.scaling.fit", lambda *a, **k: trained.append(1) or real_fit(*a, **k))
    row = run_point("mnist", "mnist", splits, 100, seed=0, quick=True, cache_dir=tmp_path)
    assert trained and row["parameters"] == first["parameters"] and row["config"]["pool"] == "mean"
    stale = json.loads(point_file(tmp_path, "mnist", 100, 0, 2).read_text())
    del stale["config"]  # a row from before rows kept their config: not trusted
    point_file(tmp_path, "mnist", 100, 0, 2).write_text(json.dumps(stale))
    run_point("mnist", "mnist", splits, 100, seed=0, quick=True, cache_dir=tmp_path)
    assert len(trained) == 2


def fake_row(model, size, seed, correct, epochs=80):
    n = sum(correct)
    return dict(model=model, dataset="mnist", train_size=size, seed=seed, epochs=epochs, images_seen=size * epochs,
                parameters=1000, test_acc=n / len(correct), test_correct=n, test_images=len(correct),
                test_low=max(0.0, n / len(correct) - 0.1), test_high=min(1.0, n / len(correct) + 0.1),
                correct="".join("1" if c else "0" for c in correct))


def test_summary_averages_seeds_and_compare_pairs_the_same_seed():
    a0, b0 = [1, 1, 1, 0, 0, 1], [1, 0, 0, 0, 1, 1]
    rows = [fake_row("mnist-hybrid", 500, 0, a0), fake_row("mnist", 500, 0, b0),
            fake_row("mnist-hybrid", 500, 1, [1] * 6), fake_row("mnist", 500, 1, [0] * 6),
            fake_row("mnist", 500, 0, [1] * 6, epochs=320)]
    summary = {(s["model"], s["epochs"]): s for s in summarise(rows)}
    assert summary[("mnist-hybrid", 80)]["seeds"] == 2
    assert summary[("mnist-hybrid", 80)]["mean"] == pytest.approx((4 / 6 + 1) / 2)
    assert summary[("mnist", 320)]["seeds"] == 1
    tests = compare([r for r in rows if r["epochs"] == 80], "mnist-hybrid", "mnist", 500)
    assert [t["seed"] for t in tests] == [0, 1]
    assert {k: tests[0][k] for k in ("a_only", "b_only", "p_value")} == mcnemar(torch.tensor(a0).bool(),
                                                                               torch.tensor(b0).bool())
    assert (tests[1]["a_only"], tests[1]["b_only"]) == (6, 0)
    fig = plot_accuracy_vs_data(rows + [fake_row("mnist", 4000, 0, [1] * 6)])
    assert isinstance(fig, Figure) and fig.axes[0].get_xscale() == "log"
    with pytest.raises(VitTutorialError):
        plot_accuracy_vs_data([])


def test_the_shipped_points_are_those_of_the_current_presets_and_recipes():
    """Every point notebook 13 reads back was trained with today's preset and recipe, so none is read stale."""
    from vit_tutorial.book import CHECKPOINTS
    from vit_tutorial.config import preset, recipe

    folder = CHECKPOINTS / "results" / "small-data"
    for dataset, size, seeds, epochs, models in POINTS:
        for name in models or MODELS[dataset]:
            kwargs = recipe(dataset, full=dataset != "mnist", preset=name)  # the digits are the offline sample
            kwargs["epochs"] = epochs or kwargs["epochs"]
            for seed in seeds:
                row = json.loads(point_file(folder, name, size, seed, kwargs["epochs"]).read_text())
                assert row["config"] == json.loads(json.dumps(preset(name).to_dict())), (name, size, seed)
                assert row["settings"] == json.loads(json.dumps(kwargs)), (name, size, seed)

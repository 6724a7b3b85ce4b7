"""Notebook 13's sweep on the runner: its points, their rows read back, means over seeds, paired comparisons."""

import pytest
import torch
from matplotlib.figure import Figure

from vit_tutorial import VitTutorialError, registry
from vit_tutorial.evaluation import mcnemar, wilson_interval
from vit_tutorial.plots import plot_accuracy_vs_data
from vit_tutorial.results import RESULTS
from vit_tutorial.runner import cached
from vit_tutorial.scaling import EQUAL_SEEN, MODELS, POINTS, QUICK_POINTS, compare, label, specs, summarise


def test_the_points_name_three_models_per_dataset_and_seeds_only_at_small_sizes():
    assert [label(n) for n in MODELS["mnist-sample"]] == ["ViT", "hybrid", "CNN"]
    for dataset_name, size, _seeds, _epochs, models in POINTS + QUICK_POINTS:
        assert dataset_name in MODELS and size >= 100
        assert models is None or set(models) <= set(MODELS[dataset_name])
    assert max(size for d, size, seeds, *_ in POINTS if len(seeds) == 3) <= 1000
    assert all(s.read_test and s.train_size for s in specs(POINTS))


def test_every_model_has_one_point_per_size_in_each_series_on_the_digits():
    """The recipe series (each model's own epochs) and the equal budget (160,000 images seen), none trained twice."""
    trained = {}
    for spec in specs(POINTS):
        if spec.dataset == "mnist-sample" and spec.seed == 0:
            key = (spec.model, spec.train_size, spec.recipe()["epochs"])
            trained[key] = trained.get(key, 0) + 1
    assert set(trained.values()) == {1}, trained
    for name in MODELS["mnist-sample"]:
        own = registry.recipe(name)["epochs"]
        shipped = {(name, 4000, own)}  # the largest point of the recipe series is the shipped model
        for size in (500, 1000, 2000):
            assert (name, size, own) in trained, (name, size)
        for size in (500, 1000, 2000, 4000):
            assert (name, size, EQUAL_SEEN // size) in set(trained) | shipped, (name, size)


def test_every_point_of_the_sweep_ships_as_a_row_of_todays_models_and_recipes():
    """Notebook 13 reads every point back: none is missing, and none was trained with another model or recipe."""
    for spec in specs(POINTS):
        row = cached(spec, RESULTS)
        assert row is not None, (spec.model, spec.train_size, spec.seed, spec.changes)
        assert row["config"] == spec.config().to_dict() and row["recipe"] == spec.recipe()
        assert row["test"]["images"] == (500 if spec.dataset == "mnist-sample" else 10_000)


def fake_point(model, size, seed, correct, epochs=80):
    n = sum(correct)
    return dict(model=model, dataset="mnist-sample", train_size=size, seed=seed, epochs=epochs,
                images_seen=size * epochs, parameters=1000, test_acc=n / len(correct), test_correct=n,
                test_images=len(correct), test_low=max(0.0, n / len(correct) - 0.1),
                test_high=min(1.0, n / len(correct) + 0.1), correct="".join("1" if c else "0" for c in correct))


def test_summary_averages_seeds_with_the_interval_of_a_mean_and_compare_pairs_the_same_seed():
    a0, b0 = [1, 1, 1, 0, 0, 1], [1, 0, 0, 0, 1, 1]
    hybrid, vit = "mnist-sample/hybrid", "mnist-sample/vit"
    points = [fake_point(hybrid, 500, 0, a0), fake_point(vit, 500, 0, b0), fake_point(hybrid, 500, 1, [1] * 6),
              fake_point(vit, 500, 1, [0] * 6), fake_point(vit, 500, 0, [1] * 6, epochs=320)]
    summary = {(s["model"], s["epochs"]): s for s in summarise(points)}
    two = summary[(hybrid, 80)]
    assert two["seeds"] == 2 and two["mean"] == pytest.approx((4 / 6 + 1) / 2) and two["interval"] == "seeds"
    half = 12.706 * torch.tensor([4 / 6, 1.0]).std().item() / 2 ** 0.5  # Student's t, one degree of freedom
    assert two["low"] == pytest.approx(max(0, two["mean"] - half)) and two["high"] == pytest.approx(1.0)
    one = summary[(vit, 320)]
    assert one["seeds"] == 1 and (one["low"], one["high"]) == wilson_interval(6, 6) and one["interval"] == "test images"
    tests = compare([p for p in points if p["epochs"] == 80], hybrid, vit, 500)
    assert [t["seed"] for t in tests] == [0, 1]
    assert {k: tests[0][k] for k in ("a_only", "b_only", "p_value")} == mcnemar(torch.tensor(a0).bool(),
                                                                               torch.tensor(b0).bool())
    assert (tests[1]["a_only"], tests[1]["b_only"]) == (6, 0)
    fig = plot_accuracy_vs_data(points + [fake_point(vit, 4000, 0, [1] * 6)])
    assert isinstance(fig, Figure) and fig.axes[0].get_xscale() == "log"
    with pytest.raises(VitTutorialError):
        plot_accuracy_vs_data([])

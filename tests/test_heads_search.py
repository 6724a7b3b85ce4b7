"""Other heads on frozen features, and the grid search (notebooks 11 and 12)."""

from __future__ import annotations

import pytest
import torch

from vit_tutorial import ImageDataset, ViT, VitTutorialError, preset
from vit_tutorial.augment import AUGMENTATIONS, get_augment
from vit_tutorial.heads import HEADS, compare_heads, extract_features
from vit_tutorial.plots import plot_feature_map, plot_grid_heatmap
from vit_tutorial.search import best, grid, run_grid


def blobs(n: int, d: int = 8, k: int = 4, spread: float = 0.3, seed: int = 0):
    """n points around k well separated centres in d dimensions, and their labels."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.eye(d)[:k] * 3
    y = torch.arange(n) % k
    return centres[y] + spread * torch.randn(n, d, generator=g), y


@pytest.mark.parametrize("pool", ["cls", "mean"])
def test_features_are_what_the_head_reads(pool):
    torch.manual_seed(0)
    model = ViT(preset("tiny", pool=pool)).eval()
    g = torch.Generator().manual_seed(1)
    data = ImageDataset(torch.randint(0, 256, (37, 1, 28, 28), generator=g, dtype=torch.uint8),
                        torch.arange(37) % 10, [str(i) for i in range(10)], "test")
    features, labels = extract_features(model, data, batch_size=16, device="cpu")
    assert features.shape == (37, model.config.embed_dim)
    assert torch.equal(labels, data.labels)
    x = data.batch(torch.arange(37))[0]
    with torch.no_grad():
        torch.testing.assert_close(model.head(features), model(x))
        tokens = model.forward_features(x)
        expected = tokens[:, 0] if pool == "cls" else tokens[:, 1:].mean(1)
    torch.testing.assert_close(features, expected)


def test_heads_separate_blobs_and_not_noise():
    Xtr, ytr = blobs(400)
    Xte, yte = blobs(200, seed=1)
    results = compare_heads(Xtr, ytr, Xte, yte)
    assert [r.name for r in results] == list(HEADS)
    for r in results:
        assert r.accuracy > 0.95, (r.name, r.accuracy)
        assert r.predictions.shape == (200,)
    # labels that have nothing to do with the features: every head is near chance (1/4)
    shuffled = ytr[torch.randperm(400, generator=torch.Generator().manual_seed(2))]
    for r in compare_heads(Xtr, shuffled, Xte, yte[torch.randperm(200)]):
        assert r.accuracy < 0.45, (r.name, r.accuracy)


def test_heads_bad_input():
    X, y = blobs(20)
    with pytest.raises(VitTutorialError, match="same D"):
        compare_heads(X, y, X[:, :3], y)
    with pytest.raises(VitTutorialError, match="same length"):
        compare_heads(X, y[:5], X, y)
    with pytest.raises(VitTutorialError, match="unknown head"):
        compare_heads(X, y, X, y, names=["svm"])


def test_single_transformations():
    for name, field in (("shift", "translate"), ("rotate", "rotate"), ("zoom", "scale")):
        aug = get_augment(name, 2.0)
        others = {"translate", "rotate", "scale"} - {field}
        assert getattr(aug, field) == 2 * getattr(AUGMENTATIONS["digits"], field)
        assert all(getattr(aug, f) == 0 for f in others) and not aug.hflip
    x = torch.rand(6, 1, 8, 8)
    mirrored = get_augment("mirror")(x, torch.Generator().manual_seed(0))
    # each image is either itself or its mirror image
    for a, b in zip(x, mirrored):
        assert torch.allclose(a, b, atol=1e-5) or torch.allclose(a.flip(-1), b, atol=1e-5)


def test_grid_and_its_errors():
    points = grid(depth=[1, 2], lr=[1e-3, 2e-3, 4e-3])
    assert len(points) == 6 and points[0] == {"depth": 1, "lr": 1e-3} and points[-1] == {"depth": 2, "lr": 4e-3}
    with pytest.raises(VitTutorialError, match="has no setting learning_rate"):
        run_grid([{"learning_rate": 1e-3}], "mnist-sample/vit", cache=None)
    with pytest.raises(VitTutorialError, match="list of values"):
        grid(depth=2)
    with pytest.raises(VitTutorialError, match="no results"):
        best([])
    assert best([{"val_acc": 0.5}, {"val_acc": 0.7}, {"val_acc": 0.7, "x": 1}]) == {"val_acc": 0.7}


def test_run_grid_trains_each_point_once_through_the_runner(mnist_sample, tmp_path, monkeypatch):
    budget = dict(epochs=1, batch_size=50, embed_dim=32, num_heads=2, augment="none")
    points = grid(depth=[1, 2], augment=["none", "shift"])
    rows = run_grid(points, "mnist-sample/vit", budget, quick=True, cache=tmp_path, splits=mnist_sample,
                    device="cpu", verbose=False)
    assert [{k: r[k] for k in ("depth", "augment")} for r in rows] == points
    assert len(list(tmp_path.rglob("*.json"))) == 4
    assert rows[2]["parameters"] > rows[0]["parameters"]  # depth 2 has more weights than depth 1
    for r in rows:
        assert 0 <= r["val_acc"] <= 1 and r["images_seen"] == 1000 and r["epochs"] == 1 and r["row"]["test"] is None
    import vit_tutorial.runner as runner

    monkeypatch.setattr(runner, "train", lambda *a, **k: pytest.fail("trained again"))
    assert run_grid(points, "mnist-sample/vit", budget, quick=True, cache=tmp_path, splits=mnist_sample,
                    verbose=False) == rows  # a second run reads every row back
    # the same run asked for under other keys (depth spelled out at its value) is read back under its own keys
    spelled = {"depth": 1, "augment": "none", "patch_size": 7}
    (again,) = run_grid([spelled], "mnist-sample/vit", budget, quick=True, cache=tmp_path, splits=mnist_sample,
                        verbose=False)
    assert {k: again[k] for k in spelled} == spelled and again["val_acc"] == rows[0]["val_acc"]
    with pytest.raises(pytest.fail.Exception, match="trained again"):  # anything that changes the result: the seed
        run_grid(points[:1], "mnist-sample/vit", budget, seed=1, quick=True, cache=tmp_path, splits=mnist_sample,
                 verbose=False)


def test_grid_figures():
    rows = [{"kind": k, "strength": s, "val_acc": 0.9 + 0.01 * i}
            for i, (k, s) in enumerate([("shift", 0.5), ("shift", 1), ("rotate", 1)])]
    fig = plot_grid_heatmap(rows, x="strength", y="kind")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["shift", "rotate"]
    # the missing (rotate, 0.5) cell is blank: 3 annotated values, not 4
    assert sorted(t.get_text() for t in ax.texts) == ["90.0", "91.0", "92.0"]
    # numbers come in increasing order, whatever order the grid ran them in
    fig = plot_grid_heatmap([{"s": 2.0, "k": "a", "val_acc": 0.5}, {"s": 0.5, "k": "a", "val_acc": 0.6}], x="s", y="k")
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["0.5", "2.0"]
    points, labels = torch.randn(30, 2), torch.arange(30) % 3
    fig = plot_feature_map(points, labels, ["a", "b", "c"])
    assert len(fig.axes[0].collections) == 3
    with pytest.raises(ValueError, match=r"\(M, 2\)"):
        plot_feature_map(torch.randn(5, 3), labels[:5], ["a"])

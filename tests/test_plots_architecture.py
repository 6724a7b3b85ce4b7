"""The architecture figure of notebook 01: its shapes come from the configuration it is given."""

from __future__ import annotations

import pytest
from matplotlib.figure import Figure

from vit_tutorial import preset
from vit_tutorial.plots import plot_architecture


def texts(fig: Figure) -> str:
    """Every piece of text drawn on the figure, titles included, one per line."""
    found = [t.get_text() for ax in fig.axes for t in ax.texts] + [ax.get_title() for ax in fig.axes]
    return "\n".join(found)


def shapes(cfg) -> list:
    """(B, C, H, W), (B, N, P²C), (B, N, D), (B, N+1, D), (B, D), (B, K) in numbers."""
    C, S, P, N, D, K = (cfg.in_channels, cfg.image_size, cfg.patch_size, cfg.num_patches, cfg.embed_dim,
                        cfg.num_classes)
    return [f"(B, {C}, {S}, {S})", f"(B, {N}, {P * P * C})", f"(B, {N}, {D})", f"(B, {N + 1}, {D})",
            f"(B, {D})", f"(B, {K})"]


def test_default_is_the_mnist_model():
    fig = plot_architecture()
    assert isinstance(fig, Figure)
    drawn = texts(fig)
    for shape in ["(B, 1, 28, 28)", "(B, 16, 49)", "(B, 16, 64)", "(B, 17, 64)", "(B, 64)", "(B, 10)"]:
        assert shape in drawn
    for letters in ["(B, C, H, W)", "(B, N, P²C)", "(B, N, D)", "(B, N+1, D)", "(B, K)"]:
        assert letters in drawn
    assert "L = 4" in drawn and "P = 7" in drawn


@pytest.mark.parametrize("name", ["fashion-mnist/vit", "cifar10/vit"])
def test_shapes_follow_the_config(name):
    cfg = preset(name)
    drawn = texts(plot_architecture(cfg))
    for shape in shapes(cfg):
        assert shape in drawn, shape
    assert f"L = {cfg.depth}" in drawn
    # and not the MNIST model's numbers
    assert "(B, 16, 49)" not in drawn and "(B, 17, 64)" not in drawn


def test_changed_sizes_change_the_figure():
    cfg = preset("mnist-sample/vit", patch_size=4, embed_dim=32, depth=2, num_heads=2, num_classes=3)
    drawn = texts(plot_architecture(cfg))
    for shape in ["(B, 49, 16)", "(B, 49, 32)", "(B, 50, 32)", "(B, 3)"]:
        assert shape in drawn
    assert "L = 2" in drawn and "(B, 17, 64)" not in drawn

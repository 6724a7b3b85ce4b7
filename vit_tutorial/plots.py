"""Figures for the book. Every helper returns a matplotlib ``Figure``.

The figures are made without pyplot's global state, so nothing needs
closing; in a notebook, a ``Figure`` as the last expression of a cell is
shown, and ``fig.savefig(path)`` writes it to disk.
"""

from __future__ import annotations

import math

import torch
from matplotlib.figure import Figure

from .evaluation import Evaluation
from .training import History


def _grid(n: int, ncols: int):
    ncols = max(1, min(ncols, n))
    return math.ceil(n / ncols), ncols


def _show_image(ax, image: torch.Tensor, **kw):
    """Draw (C, H, W) or (H, W) values in [0, 1] on ``ax`` without ticks."""
    image = image.detach().float().cpu()
    if image.ndim == 3 and image.shape[0] == 1:
        image = image[0]
    if image.ndim == 3:
        ax.imshow(image.permute(1, 2, 0).clamp(0, 1), **kw)
    else:
        ax.imshow(image, cmap=kw.pop("cmap", "gray"), vmin=kw.pop("vmin", 0), vmax=kw.pop("vmax", 1), **kw)
    ax.set_xticks([])
    ax.set_yticks([])


def plot_images(images: torch.Tensor, titles=None, ncols: int = 8, size: float = 1.3,
                suptitle: str | None = None) -> Figure:
    """A grid of images (M, C, H, W) in [0, 1], each with an optional title."""
    rows, cols = _grid(len(images), ncols)
    fig = Figure(figsize=(cols * size, rows * size * 1.15), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    for i, ax in enumerate(axes.flat):
        if i < len(images):
            _show_image(ax, images[i])
            if titles is not None:
                ax.set_title(str(titles[i]), fontsize=8)
        else:
            ax.axis("off")
    if suptitle:
        fig.suptitle(suptitle)
    return fig


def plot_patches(image: torch.Tensor, patch_size: int) -> Figure:
    """One image with its patch grid drawn on it, and the patches laid out apart, in reading order."""
    image = image.detach().cpu()
    C, H, W = image.shape
    gh, gw = H // patch_size, W // patch_size
    fig = Figure(figsize=(9, 4.2), layout="constrained")
    left, right = fig.subfigures(1, 2, width_ratios=[1, 1.1])
    ax = left.subplots()
    _show_image(ax, image)
    for k in range(1, gh):
        ax.axhline(k * patch_size - 0.5, color="tab:red", lw=1)
    for k in range(1, gw):
        ax.axvline(k * patch_size - 0.5, color="tab:red", lw=1)
    ax.set_title(f"{H}x{W} image, {patch_size}x{patch_size} patches")
    axes = right.subplots(gh, gw, squeeze=False)
    for r in range(gh):
        for c in range(gw):
            a = axes[r, c]
            _show_image(a, image[:, r * patch_size:(r + 1) * patch_size, c * patch_size:(c + 1) * patch_size])
            a.set_title(str(r * gw + c), fontsize=7)
    right.suptitle(f"N = {gh * gw} patches, numbered in reading order")
    return fig


def plot_history(history: History, title: str | None = None) -> Figure:
    """Loss and accuracy per epoch, training and validation side by side."""
    fig = Figure(figsize=(10, 3.8), layout="constrained")
    ax_loss, ax_acc = fig.subplots(1, 2)
    ep = history.epoch
    ax_loss.plot(ep, history.train_loss, "o-", ms=3, label="train")
    ax_loss.plot(ep, history.val_loss, "o-", ms=3, label="validation")
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy loss", title="Loss")
    ax_acc.plot(ep, [100 * a for a in history.train_acc], "o-", ms=3, label="train")
    ax_acc.plot(ep, [100 * a for a in history.val_acc], "o-", ms=3, label="validation")
    ax_acc.set(xlabel="epoch", ylabel="accuracy (%)", title="Accuracy")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    return fig


def plot_accuracy(history: History, title: str = "Accuracy per epoch") -> Figure:
    """Training and validation accuracy per epoch in one panel (the seed's accuracy.png)."""
    fig = Figure(figsize=(6, 4), layout="constrained")
    ax = fig.subplots()
    ax.plot(history.epoch, [100 * a for a in history.train_acc], "o-", ms=3, label="train")
    ax.plot(history.epoch, [100 * a for a in history.val_acc], "o-", ms=3, label="validation")
    ax.set(xlabel="epoch", ylabel="accuracy (%)", title=title)
    ax.grid(alpha=0.3)
    ax.legend()
    return fig


def plot_confusion(evaluation_or_matrix, classes=None, title: str = "Confusion matrix",
                   normalize: bool = False) -> Figure:
    """A seaborn heat map of a confusion matrix: true class down, predicted class across."""
    import seaborn as sns

    if isinstance(evaluation_or_matrix, Evaluation):
        cm, classes = evaluation_or_matrix.confusion, classes or evaluation_or_matrix.classes
    else:
        cm = torch.as_tensor(evaluation_or_matrix)
    cm = cm.double()
    values = cm / cm.sum(1, keepdim=True).clamp(min=1) * 100 if normalize else cm
    K = cm.shape[0]
    classes = classes or [str(i) for i in range(K)]
    size = 4.5 + 0.25 * K
    fig = Figure(figsize=(size * 1.15, size), layout="constrained")
    ax = fig.subplots()
    sns.heatmap(values.numpy(), annot=True, fmt=".1f" if normalize else ".0f", cmap="Blues",
                xticklabels=classes, yticklabels=classes, ax=ax, square=True,
                cbar_kws={"label": "% of the true class" if normalize else "images"},
                annot_kws={"fontsize": 7})
    ax.set(xlabel="predicted class", ylabel="true class", title=title)
    return fig


def plot_per_class_accuracy(evaluation: Evaluation, title: str = "Accuracy per class") -> Figure:
    fig = Figure(figsize=(7, 3.5), layout="constrained")
    ax = fig.subplots()
    acc = 100 * evaluation.per_class_accuracy
    ax.bar(range(len(acc)), acc.numpy(), color="tab:blue")
    ax.set_xticks(range(len(acc)), evaluation.classes, rotation=45 if len(evaluation.classes[0]) > 2 else 0)
    lo = max(0.0, float(acc.min()) - 5)
    ax.set(xlabel="class", ylabel="accuracy (%)", title=title, ylim=(lo, 100))
    ax.grid(axis="y", alpha=0.3)
    return fig


def plot_misclassified(data, evaluation: Evaluation, n: int = 24, ncols: int = 8) -> Figure:
    """The model's most confident mistakes, titled 'true -> predicted (probability)'."""
    idx = evaluation.misclassified[:n]
    images = data.batch(idx)[0] if len(idx) else torch.zeros(0, *data.image_shape)
    titles = [f"{evaluation.classes[evaluation.labels[i]]} -> {evaluation.classes[evaluation.predictions[i]]}"
              f" ({evaluation.probabilities[i, evaluation.predictions[i]]:.0%})" for i in idx.tolist()]
    if not len(idx):
        fig = Figure(figsize=(4, 1))
        fig.text(0.5, 0.5, "no misclassified images", ha="center")
        return fig
    return plot_images(images, titles, ncols=ncols, size=1.5,
                       suptitle="Misclassified: true -> predicted (probability)")

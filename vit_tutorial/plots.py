"""Figures for the book. Every helper returns a matplotlib ``Figure``.

The figures are made without pyplot's global state, so nothing needs
closing; in a notebook, a ``Figure`` as the last expression of a cell is
shown, and ``fig.savefig(path)`` writes it to disk.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
from matplotlib.figure import Figure

from .errors import VitTutorialError

if TYPE_CHECKING:  # for type hints only: plots need neither evaluation nor training to run
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


def plot_architecture(config=None) -> Figure:
    """The Vision Transformer as a flow chart, with the shape of the tensor after every step.

    ``config`` is a ``ViTConfig`` (default: the ``mnist`` preset); the shapes are
    written with letters and with its numbers, e.g. ``(B, N, D) = (B, 16, 64)``.
    The drawing follows the paper's patch stem; a convolutional stem
    (``stem="conv"``) is named in the projection step.
    """
    from matplotlib.patches import FancyBboxPatch

    from .config import preset

    cfg = config if config is not None else preset("mnist-sample/vit")
    C, S, P, N, D = cfg.in_channels, cfg.image_size, cfg.patch_size, cfg.num_patches, cfg.embed_dim
    G, L, h, M, K = cfg.grid_size, cfg.depth, cfg.num_heads, cfg.mlp_dim, cfg.num_classes
    projection = (f"linear projection E, shared by all patches: {P * P * C} → {D}" if cfg.stem == "patch"
                  else f"convolutional stem, then 1 x 1 patches: → {D}")
    positions = "learned" if cfg.pos_embed == "learned" else "fixed sine-cosine"
    pooled = "class token" if cfg.pool == "cls" else "mean of the N patch tokens"
    # (what the step does, the equation of the paper, shape after it in letters, the same in numbers)
    steps = [
        (f"image: C = {C} channel{'s' if C > 1 else ''} of H x W = {S} x {S} pixels", "", "(B, C, H, W)",
         f"(B, {C}, {S}, {S})"),
        (f"cut into N = {G} x {G} = {N} patches of {P} x {P} pixels,\neach flattened to P²C = {P * P * C} numbers",
         "", "(B, N, P²C)", f"(B, {N}, {P * P * C})"),
        (projection, "eq. 1", "(B, N, D)", f"(B, {N}, {D})"),
        (f"prepend the class token,\nadd the {positions} position embeddings E_pos", "eq. 1",
         "(B, N+1, D)", f"(B, {N + 1}, {D})"),
        (f"L = {L} encoder blocks, each:\nz + MSA(LN(z)), {h} heads of d = {D // h}\nz + MLP(LN(z)), {D} → {M} → {D}",
         "eq. 2, 3", "(B, N+1, D)", f"(B, {N + 1}, {D})"),
        (f"final LayerNorm, then read the {pooled}", "eq. 4", "(B, D)", f"(B, {D})"),
        (f"head: linear {D} → K = {K}, one logit per class", "", "(B, K)", f"(B, {K})"),
    ]
    heights = [1.4 if "\n" in s[0] else 0.9 for s in steps]
    heights[4] = 2.0
    gap = 1.0  # room for an arrow and its shape label between two boxes
    total = sum(heights) + gap * len(steps)
    fig = Figure(figsize=(6.6, 0.55 * (total + 0.6)), layout="constrained")
    ax = fig.subplots()
    ax.set(xlim=(-0.8, 8.0), ylim=(-0.6, total))
    ax.axis("off")
    top = total
    for i, (text, eq, letters, numbers) in enumerate(steps):
        height = heights[i]
        y0 = top - height
        encoder = i == 4
        ax.add_patch(FancyBboxPatch((0.6, y0), 5.6, height, boxstyle="round,pad=0.02,rounding_size=0.15",
                                    facecolor="#fde9c9" if encoder else "#dce9f5",
                                    edgecolor="#b26b00" if encoder else "#2f5f8a", lw=1.2))
        ax.text(3.4, y0 + height / 2, text, ha="center", va="center", fontsize=9)
        if eq:
            ax.text(0.45, y0 + height / 2, eq, ha="right", va="center", fontsize=8, color="0.35")
        if encoder:
            ax.text(6.35, y0 + height / 2, f"× {L}", ha="left", va="center", fontsize=12, color="#b26b00",
                    fontweight="bold")
        # the arrow out of the box, labelled with the shape of what flows along it
        y_end = y0 - gap
        ax.annotate("", xy=(3.4, y_end), xytext=(3.4, y0), arrowprops=dict(arrowstyle="-|>", color="0.2", lw=1.2))
        ax.text(3.7, y0 - gap / 2, f"{letters} = {numbers}", ha="left", va="center", fontsize=9,
                family="monospace", color="#2f5f8a")
        top = y_end
    ax.text(3.4, top - 0.05, "logits", ha="center", va="top", fontsize=9)
    ax.set_title(f"The Vision Transformer: image {S} x {S}, P = {P}, N = {N}, D = {D}, L = {L}, h = {h}",
                 fontsize=10)
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

    if hasattr(evaluation_or_matrix, "confusion"):  # an Evaluation
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


# --- Figures for looking inside the model (notebooks 08 and 09) ---


def _as_grid_images(images: torch.Tensor, rows: int, cols: int) -> torch.Tensor:
    """(C, H, W), (rows, C, H, W), (1, cols, C, H, W) or (rows, cols, C, H, W) -> (rows, cols, C, H, W)."""
    images = images.detach().float().cpu()
    if images.ndim == 3:
        images = images[None, None]
    elif images.ndim == 4:
        images = images[:, None]
    return images.expand(rows, cols, *images.shape[-3:])


def plot_attention_grid(images: torch.Tensor, maps: torch.Tensor, row_labels=None, col_labels=None,
                        title: str | None = None, scale: str = "shared", show_input: bool = True,
                        mode: str = "nearest", alpha: float = 0.6, cmap: str = "inferno",
                        cbar_label: str | None = None, titles=None, size: float = 1.25) -> Figure:
    """Attention maps over their images: ``maps`` (R, K, gh, gw) drawn as R rows of K overlays.

    ``images`` is one image (C, H, W) for every cell, one per row (R, C, H, W),
    one per column (1, K, C, H, W) or one per cell (R, K, C, H, W), with values
    in [0, 1]. ``scale="shared"``
    gives every map the same colour scale, from 0 to the largest weight in
    the figure; ``"each"`` stretches every map from its own smallest to its
    largest weight, to show where it looks rather than how strongly. With
    ``show_input`` a first column shows each row's image alone. ``titles``,
    R lists of K strings, puts a title over every map instead of
    ``col_labels`` over the first row.
    """
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    from .inspect import attention_heatmap, overlay

    maps = maps.detach().float().cpu()
    if maps.ndim != 4:
        raise VitTutorialError(f"maps must have shape (R, K, gh, gw), got {tuple(maps.shape)}")
    R, K = maps.shape[:2]
    images = _as_grid_images(images, R, K)
    H, W = images.shape[-2:]
    if scale == "shared":
        vmax = float(maps.max().clamp_min(1e-12))
        heat = attention_heatmap(maps, (H, W), mode=mode, normalize=False) / vmax
        norm = Normalize(0, vmax)
        cbar_label = cbar_label or "attention weight"
    elif scale == "each":
        heat = attention_heatmap(maps, (H, W), mode=mode, normalize=True)
        norm = Normalize(0, 1)
        cbar_label = cbar_label or "relative weight in its map"
    else:
        raise VitTutorialError(f"scale must be 'shared' or 'each', not {scale!r}")
    rgb = overlay(images.reshape(R * K, *images.shape[-3:]), heat.reshape(R * K, H, W), alpha=alpha, cmap=cmap)
    rgb = rgb.view(R, K, 3, H, W)
    ncols = K + int(show_input)
    fig = Figure(figsize=(ncols * size + 1.0, R * size * 1.05 + (0.4 if title else 0)), layout="constrained")
    axes = fig.subplots(R, ncols, squeeze=False)
    for r in range(R):
        if show_input:
            _show_image(axes[r, 0], images[r, 0])
            if r == 0:
                axes[r, 0].set_title("input", fontsize=8)
        for k in range(K):
            ax = axes[r, k + int(show_input)]
            _show_image(ax, rgb[r, k])
            if titles is not None:
                ax.set_title(str(titles[r][k]), fontsize=8)
            elif r == 0 and col_labels is not None:
                ax.set_title(str(col_labels[k]), fontsize=8)
        if row_labels is not None:
            axes[r, 0].set_ylabel(str(row_labels[r]), fontsize=8)
    fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=axes.ravel().tolist(), shrink=0.9 if R < 3 else 0.8,
                 label=cbar_label, aspect=8 + 5 * R)
    if title:
        fig.suptitle(title)
    return fig


def plot_attention_distance(distances: dict, reference: float | None = None, title: str | None = None,
                            from_zero: bool = True) -> Figure:
    """Mean attention distance of every head against depth (the paper's Figure 7, right).

    ``distances`` maps a label to an (L, h) tensor: one dot per head and
    layer. ``reference`` (pixels) is drawn as a dashed line, e.g. the
    distance that uniform attention would give. With ``from_zero`` the
    axis starts at 0 (a head that only looks at its own patch).
    """
    fig = Figure(figsize=(6.4, 4.2), layout="constrained")
    ax = fig.subplots()
    markers = ["o", "x", "s", "^", "D"]
    n = len(distances)
    for i, (label, d) in enumerate(distances.items()):
        d = torch.as_tensor(d).detach().float().cpu()
        L, h = d.shape
        offset = (i - (n - 1) / 2) * 0.12  # side by side, so the sets do not hide each other
        for layer in range(L):
            ax.scatter(torch.full((h,), layer + 1 + offset).numpy(), d[layer].numpy(), s=26,
                       marker=markers[i % len(markers)], color=f"C{i}", label=label if layer == 0 else None,
                       alpha=0.85)
    if reference is not None:
        ax.axhline(reference, color="gray", ls="--", lw=1.2, label=f"uniform attention ({reference:.1f} px)")
    L = max(torch.as_tensor(d).shape[0] for d in distances.values())
    ax.set_xticks(range(1, L + 1))
    ax.set(xlabel="network depth (layer)", ylabel="mean attention distance (pixels)",
           title=title or "How far each head looks")
    if from_zero:
        ax.set_ylim(0, None)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return fig


def _similarity_mosaic(sim: torch.Tensor) -> torch.Tensor:
    """(gh, gw, gh, gw) -> one (gh*(gh+1)-1, gw*(gw+1)-1) image, the small maps apart by a NaN gap."""
    gh, gw = sim.shape[:2]
    out = torch.full((gh * (gh + 1) - 1, gw * (gw + 1) - 1), float("nan"))
    for i in range(gh):
        for j in range(gw):
            out[i * (gh + 1):i * (gh + 1) + gh, j * (gw + 1):j * (gw + 1) + gw] = sim[i, j]
    return out


def plot_position_similarity(similarities: dict, title: str | None = None, size: float = 3.4,
                             shared_scale: bool = False, ncols: int | None = None) -> Figure:
    """Position-embedding similarity grids side by side (the paper's Figure 7, centre).

    ``similarities`` maps a label to a (gh, gw, gh, gw) tensor from
    :func:`vit_tutorial.inspect.position_similarity`. In each panel, the
    small image at row i, column j shows how similar the embedding of
    patch (i, j) is to that of every other patch. Each panel has its own
    colour scale, from its lowest similarity to 1, unless ``shared_scale``
    puts them all on -1 to 1. ``ncols`` wraps the panels into rows.
    """
    from matplotlib import colormaps

    cmap = colormaps["viridis"].with_extremes(bad="white")
    n = len(similarities)
    rows, cols = _grid(n, ncols or n)
    fig = Figure(figsize=(cols * (size + (0 if shared_scale else 0.7)) + 0.8, rows * (size + 0.3) + 0.3),
                 layout="constrained")
    grid = fig.subplots(rows, cols, squeeze=False)
    for ax in grid.flat[n:]:
        ax.axis("off")
    axes = grid.flat[:n]
    for ax, (label, sim) in zip(axes, similarities.items()):
        sim = sim.detach().float().cpu()
        gh, gw = sim.shape[:2]
        vmin = -1.0 if shared_scale else min(float(sim.min()), 0.99)
        im = ax.imshow(_similarity_mosaic(sim).numpy(), cmap=cmap, vmin=vmin, vmax=1, interpolation="nearest")
        step_r, step_c = max(1, gh // 7), max(1, gw // 7)  # at most about 7 tick labels a side
        ax.set_yticks([i * (gh + 1) + (gh - 1) / 2 for i in range(0, gh, step_r)], range(1, gh + 1, step_r))
        ax.set_xticks([j * (gw + 1) + (gw - 1) / 2 for j in range(0, gw, step_c)], range(1, gw + 1, step_c))
        ax.tick_params(length=0, labelsize=8)
        for side in ax.spines.values():
            side.set_visible(False)
        ax.set(xlabel="input patch column", ylabel="input patch row", title=label)
        if not shared_scale:
            fig.colorbar(im, ax=ax, label="cosine similarity", shrink=0.9)
    if shared_scale:
        fig.colorbar(im, ax=grid.ravel().tolist(), label="cosine similarity", shrink=0.9)
    if title:
        fig.suptitle(title)
    return fig


def plot_similarity_by_distance(similarities: dict, title: str | None = None) -> Figure:
    """Mean cosine similarity of two positions' embeddings against their distance on the patch grid."""
    fig = Figure(figsize=(6.4, 4), layout="constrained")
    ax = fig.subplots()
    for i, (label, sim) in enumerate(similarities.items()):
        sim = sim.detach().float().cpu()
        gh, gw = sim.shape[:2]
        rows, cols = torch.meshgrid(torch.arange(gh), torch.arange(gw), indexing="ij")
        cells = torch.stack([rows.flatten(), cols.flatten()], 1).double()
        dist = torch.cdist(cells, cells).flatten().round(decimals=4)
        values = sim.reshape(gh * gw, gh * gw).flatten()
        steps = dist.unique()
        means = torch.stack([values[dist == s].mean() for s in steps])
        ax.plot(steps.numpy(), means.numpy(), "o-", ms=4, color=f"C{i}", label=label)
    ax.axhline(0, color="gray", lw=0.8)
    ax.set(xlabel="distance between the two patches (grid steps)", ylabel="mean cosine similarity",
           title=title or "Near positions get similar embeddings")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def _filter_mosaic(filters: torch.Tensor, ncols: int, rgb: bool) -> torch.Tensor:
    """(k, C, P, P) -> one image of the filters in rows of ``ncols``, one pixel apart.

    One channel: (rows*(P+1)-1, cols*(P+1)-1) with NaN in the gaps. Three
    channels: (rows*(P+1)-1, cols*(P+1)-1, 3), each filter stretched to [0, 1], white gaps.
    """
    k, C, P, _ = filters.shape
    rows, cols = _grid(k, ncols)
    S = P + 1
    if rgb:
        out = torch.ones(rows * S - 1, cols * S - 1, 3)
    else:
        out = torch.full((rows * S - 1, cols * S - 1), float("nan"))
    for i in range(k):
        r, c = divmod(i, cols)
        f = filters[i]
        if rgb:
            lo, hi = f.min(), f.max()
            out[r * S:r * S + P, c * S:c * S + P] = ((f - lo) / (hi - lo).clamp_min(1e-12)).permute(1, 2, 0)
        else:
            out[r * S:r * S + P, c * S:c * S + P] = f[0]
    return out


def plot_filters(filters: torch.Tensor, titles=None, ncols: int = 8, title: str | None = None,
                 cbar_label: str = "weight", size: float = 0.9) -> Figure:
    """Patch-embedding filters or their principal components, (k, C, P, P), as small images.

    One-channel filters share a diverging colour scale centred on zero (with a
    colour bar); three-channel ones are shown as colour images, each
    stretched to the full range on its own. Without ``titles`` the filters
    are drawn as one mosaic, which is much faster for many filters.
    """
    from matplotlib import colormaps
    from matplotlib.colors import Normalize

    filters = filters.detach().float().cpu()
    k, C = filters.shape[:2]
    if C not in (1, 3):
        raise VitTutorialError(f"filters must have 1 or 3 channels, got {C}")
    rgb = C == 3
    rows, cols = _grid(k, ncols)
    lim = float(filters.abs().max().clamp_min(1e-12))
    norm = Normalize(-lim, lim)
    cmap = colormaps["RdBu_r"].with_extremes(bad="0.6")  # grey gaps: near-zero weights are white
    extra_w = 0.2 if rgb else 1.0
    if titles is None:
        fig = Figure(figsize=(cols * size + extra_w, rows * size + (0.5 if title else 0.1)), layout="constrained")
        ax = fig.subplots()
        mosaic = _filter_mosaic(filters, cols, rgb)
        im = ax.imshow(mosaic.numpy(), cmap=None if rgb else cmap, norm=None if rgb else norm,
                       interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        for side in ax.spines.values():
            side.set_visible(False)
        if not rgb:
            fig.colorbar(im, ax=ax, label=cbar_label, shrink=0.8, aspect=30)
    else:
        fig = Figure(figsize=(cols * size + extra_w, rows * size * 1.1 + (0.5 if title else 0.1)),
                     layout="constrained")
        axes = fig.subplots(rows, cols, squeeze=False)
        im = None
        for i, ax in enumerate(axes.flat):
            if i >= k:
                ax.axis("off")
                continue
            f = filters[i]
            if rgb:
                lo, hi = f.min(), f.max()
                ax.imshow(((f - lo) / (hi - lo).clamp_min(1e-12)).permute(1, 2, 0).numpy(), interpolation="nearest")
            else:
                im = ax.imshow(f[0].numpy(), cmap=cmap, norm=norm, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(str(titles[i]), fontsize=7)
        if im is not None:
            fig.colorbar(im, ax=axes.ravel().tolist(), label=cbar_label, shrink=0.8, aspect=30)
    if title:
        fig.suptitle(title)
    return fig


def plot_explained_variance(explained: dict, title: str | None = None) -> Figure:
    """Fraction of the variance each principal component explains, and the running total."""
    fig = Figure(figsize=(10, 3.6), layout="constrained")
    ax_each, ax_total = fig.subplots(1, 2)
    for i, (label, e) in enumerate(explained.items()):
        e = torch.as_tensor(e).detach().float().cpu()
        x = torch.arange(1, len(e) + 1).numpy()
        ax_each.plot(x, (100 * e).numpy(), "o-", ms=3, color=f"C{i}", label=label)
        ax_total.plot(x, (100 * e.cumsum(0)).numpy(), "o-", ms=3, color=f"C{i}", label=label)
    ax_each.set(xlabel="principal component", ylabel="variance explained (%)", title="Each component")
    ax_total.set(xlabel="number of components", ylabel="variance explained (%)", title="Running total",
                 ylim=(0, 101))
    for ax in (ax_each, ax_total):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    return fig


def plot_histograms(values: dict, xlabel: str, title: str | None = None, bins: int = 20) -> Figure:
    """Overlaid histograms, one per labelled set of numbers, each scaled to a density."""
    fig = Figure(figsize=(6.4, 3.8), layout="constrained")
    ax = fig.subplots()
    allv = torch.cat([torch.as_tensor(v).flatten().float() for v in values.values()])
    edges = torch.linspace(float(allv.min()), float(allv.max()) + 1e-6, bins + 1).numpy()
    for i, (label, v) in enumerate(values.items()):
        v = torch.as_tensor(v).flatten().float()
        ax.hist(v.numpy(), bins=edges, density=True, alpha=0.5, color=f"C{i}",
                label=f"{label} ({len(v)}, mean {float(v.mean()):.2f})")
    ax.set(xlabel=xlabel, ylabel="density", title=title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def save_gif(figures, path, duration_ms: int = 800, last_ms: int | None = 2000, dpi: int = 100) -> None:
    """Write figures as the frames of a looping animated GIF (with Pillow).

    Each figure is cropped to its contents; frames of different sizes are
    centred on a white canvas of the largest size.
    """
    import io

    from PIL import Image

    images = []
    for fig in figures:
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight", facecolor="white")
        buf.seek(0)
        images.append(Image.open(buf).convert("RGB"))
    if not images:
        raise VitTutorialError("no figures to write")
    W, H = max(im.width for im in images), max(im.height for im in images)
    frames = []
    for im in images:
        canvas = Image.new("RGB", (W, H), "white")
        canvas.paste(im, ((W - im.width) // 2, (H - im.height) // 2))
        frames.append(canvas)
    durations = [duration_ms] * len(frames)
    if last_ms is not None:
        durations[-1] = last_ms
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=durations, loop=0)


# --- Figures for other heads and the grid search (notebooks 11 and 12) ---


def plot_grid_heatmap(rows: list, x: str, y: str, value: str = "val_acc", title: str | None = None,
                      percent: bool = True, ax=None) -> Figure:
    """A heat map of ``value`` over two keys of grid-search rows; missing combinations stay blank."""
    import numpy as np
    import seaborn as sns

    def values(key):  # in the order first seen; numbers in increasing order
        seen = list(dict.fromkeys(r[key] for r in rows))
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in seen)
        return sorted(seen) if numeric else seen

    xs, ys = values(x), values(y)
    table = np.full((len(ys), len(xs)), np.nan)
    for r in rows:
        table[ys.index(r[y]), xs.index(r[x])] = r[value] * (100 if percent else 1)
    if ax is None:
        fig = Figure(figsize=(1.2 * len(xs) + 2.5, 0.6 * len(ys) + 1.8), layout="constrained")
        ax = fig.subplots()
    else:
        fig = ax.figure
    sns.heatmap(table, annot=True, fmt=".1f" if percent else ".3g", cmap="viridis", ax=ax,
                xticklabels=[str(v) for v in xs], yticklabels=[str(v) for v in ys],
                cbar_kws={"label": value.replace("_", " ") + (" (%)" if percent else "")})
    ax.set(xlabel=x.replace("_", " "), ylabel=y.replace("_", " "), title=title or "")
    ax.tick_params(axis="y", rotation=0)
    return fig


def plot_feature_map(points: torch.Tensor, labels: torch.Tensor, classes, title: str | None = None,
                     ax=None) -> Figure:
    """Points (M, 2), e.g. features after PCA or t-SNE, coloured by class."""
    import matplotlib as mpl

    points = torch.as_tensor(points).float()
    if points.ndim != 2 or points.shape[1] != 2:
        raise VitTutorialError(f"points must be (M, 2), got {tuple(points.shape)}")
    if ax is None:
        fig = Figure(figsize=(6.5, 5), layout="constrained")
        ax = fig.subplots()
    else:
        fig = ax.figure
    cmap = mpl.colormaps["tab10"]
    for k, name in enumerate(classes):
        sel = labels == k
        ax.scatter(points[sel, 0], points[sel, 1], s=4, alpha=0.6, color=cmap(k % 10), label=str(name))
    ax.set(xticks=[], yticks=[], title=title or "")
    ax.legend(markerscale=3, fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    return fig


def plot_accuracy_vs_data(rows: list, title: str | None = None, ax=None) -> Figure:
    """Test accuracy against the number of training images, one line per model (notebook 13).

    ``rows`` are ``scaling`` rows of one dataset and one budget: each seed is
    a dot with its 95 % interval as a bar; the line joins the means over
    seeds.
    """
    from .scaling import label

    if not rows:
        raise VitTutorialError("no results to plot")
    if ax is None:
        fig = Figure(figsize=(6.4, 4.2), layout="constrained")
        ax = fig.subplots()
    else:
        fig = ax.figure
    for i, name in enumerate(dict.fromkeys(r["model"] for r in rows)):
        mine = [r for r in rows if r["model"] == name]
        sizes = sorted({r["train_size"] for r in mine})
        means = [100 * sum(r["test_acc"] for r in mine if r["train_size"] == n)
                 / sum(r["train_size"] == n for r in mine) for n in sizes]
        for r in mine:
            y = 100 * r["test_acc"]
            ax.errorbar(r["train_size"], y, yerr=[[y - 100 * r["test_low"]], [100 * r["test_high"] - y]],
                        fmt="o", ms=4, color=f"C{i}", alpha=0.8, capsize=2, lw=1)
        ax.plot(sizes, means, "-", color=f"C{i}", label=f"{label(name)} ({mine[0]['parameters']:,} parameters)")
    ax.set_xscale("log")
    sizes = sorted({r["train_size"] for r in rows})
    ax.set_xticks(sizes, [f"{n:,}" for n in sizes])
    ax.minorticks_off()
    ax.set(xlabel="training images (log scale)", ylabel="test accuracy (%)", title=title or "")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return fig

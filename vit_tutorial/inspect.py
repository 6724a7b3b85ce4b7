"""Looking inside a trained ViT: attention maps, attention rollout, attention
distance, position-embedding similarity and the patch-embedding filters.

Everything here is a function of tensors (attention weights from
``model(x, return_attention=True)``, ``model.pos_embed``,
``model.patch_embed.proj.weight``), so it works the same on any
:class:`~vit_tutorial.model.ViT`, including one converted from torchvision.
Notebooks 08 and 09 derive each function by hand before using it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .errors import VitTutorialError

HEAD_FUSIONS = ("mean", "max", "min")


def _grid(grid_size) -> tuple[int, int]:
    """``grid_size`` as (gh, gw): an int means a square grid."""
    if isinstance(grid_size, int):
        gh = gw = grid_size
    else:
        try:
            gh, gw = (int(g) for g in grid_size)
        except (TypeError, ValueError):
            raise VitTutorialError(f"grid_size must be an int or a pair (gh, gw), got {grid_size!r}") from None
    if gh < 1 or gw < 1:
        raise VitTutorialError(f"grid_size must be positive, got {(gh, gw)}")
    return gh, gw


def _check_attention(attention, what: str = "attention") -> torch.Tensor:
    """A (B, h, N+1, N+1) tensor, or a clear error."""
    if not isinstance(attention, torch.Tensor):
        raise VitTutorialError(f"{what} must be a tensor, got {type(attention).__name__}")
    if attention.ndim != 4 or attention.shape[-1] != attention.shape[-2]:
        raise VitTutorialError(f"{what} must have shape (B, h, N+1, N+1), got {tuple(attention.shape)}")
    return attention


def _normalise_rows(a: torch.Tensor) -> torch.Tensor:
    return a / a.sum(dim=-1, keepdim=True).clamp_min(torch.finfo(a.dtype).tiny)


# --- Attention rollout --------------------------------------------------------------------------


def fuse_heads(attention: torch.Tensor, head_fusion: str = "mean") -> torch.Tensor:
    """One layer's attention (B, h, N+1, N+1) -> (B, N+1, N+1), the heads combined by mean, max or min."""
    attention = _check_attention(attention)
    if head_fusion == "mean":
        return attention.mean(dim=1)
    if head_fusion == "max":
        return attention.amax(dim=1)
    if head_fusion == "min":
        return attention.amin(dim=1)
    raise VitTutorialError(f"head_fusion must be one of {', '.join(HEAD_FUSIONS)}, not {head_fusion!r}")


def discard_weakest(attention: torch.Tensor, discard_ratio: float) -> torch.Tensor:
    """(B, N+1, N+1) -> a copy with the weakest ``discard_ratio`` of each matrix's weights set to zero.

    Only the weights on patch keys (columns 1..N) can be dropped: the column of
    the class token is always kept, so no row loses all its weight.
    """
    if attention.ndim != 3 or attention.shape[-1] != attention.shape[-2]:
        raise VitTutorialError(f"expected fused attention of shape (B, N+1, N+1), got {tuple(attention.shape)}")
    if not 0.0 <= discard_ratio < 1.0:
        raise VitTutorialError(f"discard_ratio must be in [0, 1), got {discard_ratio}")
    B = attention.shape[0]
    patches = attention[:, :, 1:].reshape(B, -1)  # (B, (N+1)*N): every weight on a patch key
    k = int(discard_ratio * patches.shape[1])
    if k == 0:
        return attention.clone()
    weakest = patches.topk(k, dim=1, largest=False).indices
    patches = patches.scatter(1, weakest, 0.0)
    out = attention.clone()
    out[:, :, 1:] = patches.view(B, attention.shape[1], -1)
    return out


def attention_rollout(attentions, head_fusion: str = "mean", discard_ratio: float = 0.0,
                      residual: bool = True) -> torch.Tensor:
    """Attention rollout (Abnar & Zuidema, 2020): how much each token's final
    representation draws on each input token, through all the layers.

    ``attentions`` is a list with one (B, h, N+1, N+1) tensor per layer, as
    ``model(x, return_attention=True)`` returns it. For every layer the heads
    are fused (``"mean"``, ``"max"`` or ``"min"``), the weakest
    ``discard_ratio`` of the weights on patch keys are dropped (never the
    class-token column), the skip connection is accounted for as
    ``0.5 * A + 0.5 * I`` when ``residual`` is true, and the rows are
    renormalised to sum to 1. The layers are then chained: the joint attention
    after layer l is ``A_l @ joint_{l-1}``.

    Returns (B, N+1, N+1), rows summing to 1; row 0 is the class token's.
    """
    if isinstance(attentions, torch.Tensor) or not isinstance(attentions, (list, tuple)) or not attentions:
        raise VitTutorialError("attentions must be a non-empty list of (B, h, N+1, N+1) tensors, one per layer")
    if head_fusion not in HEAD_FUSIONS:
        raise VitTutorialError(f"head_fusion must be one of {', '.join(HEAD_FUSIONS)}, not {head_fusion!r}")
    if not 0.0 <= discard_ratio < 1.0:
        raise VitTutorialError(f"discard_ratio must be in [0, 1), got {discard_ratio}")
    shape = None
    joint = None
    for i, attention in enumerate(attentions):
        attention = _check_attention(attention, f"attentions[{i}]")
        if shape is None:
            shape = attention.shape
        elif attention.shape[0] != shape[0] or attention.shape[-1] != shape[-1]:
            raise VitTutorialError(f"attentions[{i}] has shape {tuple(attention.shape)}, "
                                   f"attentions[0] has {tuple(shape)}: all layers need the same B and N")
        a = fuse_heads(attention.float(), head_fusion)  # (B, N+1, N+1)
        if discard_ratio:
            a = discard_weakest(a, discard_ratio)
        if residual:
            eye = torch.eye(a.shape[-1], dtype=a.dtype, device=a.device)
            a = 0.5 * a + 0.5 * eye
        a = _normalise_rows(a)
        joint = a if joint is None else a @ joint
    return joint


def cls_attention(attention: torch.Tensor, grid_size) -> torch.Tensor:
    """The class token's attention to the patches, laid out on the patch grid.

    (B, h, N+1, N+1) (one layer) -> (B, h, gh, gw), or (B, N+1, N+1) (fused
    heads, or a rollout) -> (B, gh, gw). The weights are the raw ones: they
    leave out what the class token gives itself, so a map sums to less than 1.
    """
    gh, gw = _grid(grid_size)
    if not isinstance(attention, torch.Tensor) or attention.ndim not in (3, 4) \
            or attention.shape[-1] != attention.shape[-2] or attention.shape[-1] != gh * gw + 1:
        got = tuple(attention.shape) if isinstance(attention, torch.Tensor) else type(attention).__name__
        raise VitTutorialError(f"expected attention of shape (B, [h,] {gh * gw + 1}, {gh * gw + 1}) for a "
                               f"{gh}x{gw} grid, got {got}")
    return attention[..., 0, 1:].unflatten(-1, (gh, gw))  # (..., N) -> (..., gh, gw)


# --- Heat maps over the input -------------------------------------------------------------------


def attention_heatmap(maps: torch.Tensor, image_size, mode: str = "bilinear", normalize: bool = True) -> torch.Tensor:
    """Patch-grid maps (..., gh, gw) -> image-sized heat maps (..., H, W).

    With ``normalize`` every map is scaled to [0, 1] by its own minimum and
    maximum, which is what a colour overlay needs; ``mode`` is
    ``"nearest"`` (one flat block per patch) or ``"bilinear"`` (smooth).
    """
    if not isinstance(maps, torch.Tensor) or maps.ndim < 2:
        raise VitTutorialError("maps must be a tensor of shape (..., gh, gw)")
    if mode not in ("nearest", "bilinear"):
        raise VitTutorialError(f"mode must be 'nearest' or 'bilinear', not {mode!r}")
    H, W = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    lead = maps.shape[:-2]
    x = maps.detach().float().reshape(-1, 1, *maps.shape[-2:])  # (..., gh, gw) -> (M, 1, gh, gw)
    x = F.interpolate(x, size=(H, W), mode=mode, **({"align_corners": False} if mode == "bilinear" else {}))
    x = x.reshape(*lead, H, W)
    if normalize:
        flat = x.flatten(-2)
        lo, hi = flat.amin(-1, keepdim=True), flat.amax(-1, keepdim=True)
        x = ((flat - lo) / (hi - lo).clamp_min(1e-12)).view_as(x)
    return x


def overlay(images: torch.Tensor, heatmaps: torch.Tensor, alpha: float = 0.55, cmap: str = "inferno") -> torch.Tensor:
    """Blend heat maps over images: (B, C, H, W) in [0, 1] and (B, H, W) in [0, 1] -> RGB (B, 3, H, W).

    Each pixel is ``(1 - alpha) * image + alpha * colour(heat)``; grey images
    are repeated into three channels first.
    """
    from matplotlib import colormaps

    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise VitTutorialError(f"images must have shape (B, 1 or 3, H, W), got {tuple(images.shape)}")
    B, _, H, W = images.shape
    if tuple(heatmaps.shape) != (B, H, W):
        raise VitTutorialError(f"heatmaps must have shape {(B, H, W)} to match the images, got {tuple(heatmaps.shape)}")
    table = torch.tensor(colormaps[cmap](torch.linspace(0, 1, 256).numpy())[:, :3], dtype=torch.float32)
    index = (heatmaps.detach().float().clamp(0, 1) * 255).round().long().cpu()
    colour = table[index].permute(0, 3, 1, 2)  # (B, H, W, 3) -> (B, 3, H, W)
    rgb = images.detach().float().cpu().expand(B, 3, H, W)
    return ((1 - alpha) * rgb + alpha * colour).clamp(0, 1)


# --- How far the heads look ---------------------------------------------------------------------


def patch_distances(patch_size: int, grid_size) -> torch.Tensor:
    """(N, N) Euclidean distances in pixels between the centres of every two patches."""
    gh, gw = _grid(grid_size)
    rows, cols = torch.meshgrid(torch.arange(gh), torch.arange(gw), indexing="ij")
    centres = torch.stack([rows.flatten(), cols.flatten()], dim=1).double() * patch_size  # (N, 2)
    return torch.cdist(centres, centres)


def mean_attention_distance(attention: torch.Tensor, patch_size: int, grid_size) -> torch.Tensor:
    """How far each head looks: the paper's "attention distance" (its Figure 7, right).

    One layer's attention (B, h, N+1, N+1) -> (h,): for every query patch, the
    distance in pixels to each key patch (between patch centres, so
    ``patch_size`` times the distance on the grid), weighted by the
    attention; averaged over the queries and the batch. The class token's
    row and column are left out, and each query's weights are renormalised
    over the patch keys before weighting, so a query that sends most of its
    weight to the class token still counts with weights that sum to 1.
    """
    attention = _check_attention(attention)
    gh, gw = _grid(grid_size)
    N = gh * gw
    if attention.shape[-1] != N + 1:
        raise VitTutorialError(f"attention over {attention.shape[-1]} tokens does not fit a {gh}x{gw} grid "
                               f"plus the class token ({N + 1} tokens)")
    a = _normalise_rows(attention[:, :, 1:, 1:].double())  # (B, h, N, N): patches only
    dist = patch_distances(patch_size, (gh, gw)).to(a.device)
    per_query = (a * dist).sum(dim=-1)  # (B, h, N)
    return per_query.mean(dim=(0, 2)).float()


# --- Position embeddings ------------------------------------------------------------------------


def position_similarity(pos_embed: torch.Tensor, grid_size) -> torch.Tensor:
    """Cosine similarity of every patch position's embedding with every other's (the paper's Figure 7, centre).

    ``pos_embed`` is (N+1, D) with the class token's row first (it is left
    out), (N, D), or the model's own (1, N+1, D). Returns (gh, gw, gh, gw):
    entry [i, j] is the (gh, gw) image of how similar position (i, j) is to
    every position.
    """
    gh, gw = _grid(grid_size)
    N = gh * gw
    if not isinstance(pos_embed, torch.Tensor):
        raise VitTutorialError(f"pos_embed must be a tensor, got {type(pos_embed).__name__}")
    e = pos_embed.detach()
    if e.ndim == 3 and e.shape[0] == 1:
        e = e[0]
    if e.ndim != 2 or e.shape[0] not in (N, N + 1):
        raise VitTutorialError(f"pos_embed must have shape ({N + 1}, D) or ({N}, D) for a {gh}x{gw} grid, "
                               f"got {tuple(pos_embed.shape)}")
    e = F.normalize(e[-N:].double(), dim=1)  # drop the class token's row; unit length
    return (e @ e.T).float().view(gh, gw, gh, gw)


# --- Patch-embedding filters --------------------------------------------------------------------


def patch_filter_components(weight: torch.Tensor, num_components: int | None = None):
    """Principal components of the patch-embedding filters (the paper's Figure 7, left).

    ``weight`` is the (D, C, P, P) kernel of ``model.patch_embed.proj``: D
    filters, each a C x P x P image. They are centred (their mean filter
    subtracted) and decomposed; returns ``(components, explained)``:
    components (k, C, P, P) in order of the variance they explain, each of
    unit length with its largest entry positive, and explained (k,), the
    fraction of the variance each one explains.
    """
    if not isinstance(weight, torch.Tensor) or weight.ndim != 4 or weight.shape[-1] != weight.shape[-2]:
        got = tuple(weight.shape) if isinstance(weight, torch.Tensor) else type(weight).__name__
        raise VitTutorialError(f"weight must be a patch-embedding kernel of shape (D, C, P, P), got {got}")
    D = weight.shape[0]
    X = weight.detach().double().flatten(1)  # (D, C*P*P)
    X = X - X.mean(dim=0, keepdim=True)
    _, S, Vh = torch.linalg.svd(X, full_matrices=False)  # rows of Vh: the components
    k = Vh.shape[0] if num_components is None else int(num_components)
    if not 1 <= k <= Vh.shape[0]:
        raise VitTutorialError(f"num_components must be between 1 and {Vh.shape[0]}, got {num_components}")
    var = S**2 / max(D - 1, 1)
    explained = var / var.sum().clamp_min(torch.finfo(var.dtype).tiny)
    comps = Vh[:k]
    # a component's sign is arbitrary; fix it so that results do not flip between runs
    signs = comps.gather(1, comps.abs().argmax(dim=1, keepdim=True)).sign()
    comps = comps * torch.where(signs == 0, torch.ones_like(signs), signs)
    return comps.float().view(k, *weight.shape[1:]), explained[:k].float()

"""Position embeddings: the fixed 2-D sine-cosine table."""

from __future__ import annotations

import torch

from .errors import VitTutorialError


def sincos_1d(positions: torch.Tensor, dim: int, temperature: float = 10000.0) -> torch.Tensor:
    """(L,) positions -> (L, dim): sines in the first half, cosines in the second.

    The frequencies run geometrically from 1 down to ``1 / temperature`` (almost).
    """
    if dim % 2:
        raise VitTutorialError(f"dim must be even, got {dim}")
    omega = 1.0 / temperature ** (torch.arange(dim // 2, dtype=torch.float64) / (dim // 2))
    angles = positions.to(torch.float64)[:, None] * omega[None, :]  # (L, dim/2)
    return torch.cat([angles.sin(), angles.cos()], dim=1)


def sincos_2d(grid_size: int, dim: int, cls_token: bool = True, temperature: float = 10000.0) -> torch.Tensor:
    """Fixed 2-D sine-cosine position embeddings, (N, D) or (N+1, D) with a CLS row.

    Half of the D channels encode the row of a patch and half its column,
    each with sines and cosines of geometrically spaced frequencies. The class
    token has no position, so its row is zeros.
    """
    if dim % 4:
        raise VitTutorialError(f"dim must be divisible by 4, got {dim}")
    rows, cols = torch.meshgrid(torch.arange(grid_size), torch.arange(grid_size), indexing="ij")
    emb = torch.cat([sincos_1d(rows.flatten(), dim // 2, temperature),
                     sincos_1d(cols.flatten(), dim // 2, temperature)], dim=1)
    if cls_token:
        emb = torch.cat([torch.zeros(1, dim, dtype=emb.dtype), emb], dim=0)
    return emb.float()

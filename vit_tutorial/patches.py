"""Cutting an image into patches and embedding each patch as a token."""

from __future__ import annotations

import torch
from torch import nn


class PatchEmbed(nn.Module):
    """Split an image into P x P patches and map each to a D-wide token.

    A ``Conv2d`` whose kernel and stride both equal the patch size looks at
    each patch exactly once, so it is the same as flattening every patch and
    applying one shared linear layer (notebook 01 proves it).

    (B, C, H, W) -> (B, N, D) with N = (H / P) * (W / P).
    """

    def __init__(self, image_size: int = 28, patch_size: int = 7, in_channels: int = 1, embed_dim: int = 64):
        super().__init__()
        self.image_size = image_size
        self.patch_size = patch_size
        self.in_channels = in_channels
        self.grid_size = image_size // patch_size
        self.num_patches = self.grid_size**2
        self.proj = nn.Conv2d(in_channels, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.proj(x)  # (B, C, H, W) -> (B, D, H/P, W/P)
        return x.flatten(2).transpose(1, 2)  # (B, D, gh, gw) -> (B, N, D)


def patchify(images: torch.Tensor, patch_size: int) -> torch.Tensor:
    """(B, C, H, W) -> (B, N, C*P*P): every patch flattened, row by row.

    The order of the values in a flattened patch (channel, row, column)
    matches the layout of a ``Conv2d`` weight, so
    ``patchify(x, P) @ conv.weight.flatten(1).T + conv.bias`` equals the
    patch embedding.
    """
    B, C, H, W = images.shape
    P = patch_size
    if H % P or W % P:
        raise ValueError(f"image of {H}x{W} cannot be cut into {P}x{P} patches")
    x = images.reshape(B, C, H // P, P, W // P, P)  # (B, C, gh, P, gw, P)
    x = x.permute(0, 2, 4, 1, 3, 5)  # -> (B, gh, gw, C, P, P)
    return x.reshape(B, (H // P) * (W // P), C * P * P)  # -> (B, N, C*P*P)

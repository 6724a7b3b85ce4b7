"""Cutting an image into patches and embedding each patch as a token."""

from __future__ import annotations

import torch
from torch import nn

from .errors import VitTutorialError


class PatchEmbed(nn.Module):
    """Split an image into P x P patches and map each to a D-wide token.

    A ``Conv2d`` whose kernel and stride both equal the patch size looks at
    each patch exactly once, so it is the same as flattening every patch and
    applying one shared linear layer (notebook 01 proves it).

    (B, C, H, W) -> (B, N, D) with N = (H / P) * (W / P).
    """

    def __init__(self, image_size: int = 28, patch_size: int = 7, in_channels: int = 1, embed_dim: int = 64):
        super().__init__()
        if patch_size < 1 or image_size % patch_size:
            # A bare Conv2d would silently skip the last image_size % patch_size rows and columns.
            raise VitTutorialError(f"patch_size {patch_size} does not divide image_size {image_size}")
        self.image_size = image_size
        self.patch_size = patch_size
        self.in_channels = in_channels
        self.grid_size = image_size // patch_size
        self.num_patches = self.grid_size**2
        self.proj = nn.Conv2d(in_channels, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.proj(x)  # (B, C, H, W) -> (B, D, H/P, W/P)
        return x.flatten(2).transpose(1, 2)  # (B, D, gh, gw) -> (B, N, D)


class ConvStem(nn.Module):
    """The paper's hybrid input (section 3.1): a small CNN, then 1x1 patches of its feature map.

    Each stage is a 3x3 convolution (no bias), BatchNorm and ReLU; a stride of 2
    halves the map. A final 1x1 convolution projects every position of the
    last map to a D-wide token, so each token is a "patch" of one feature-map
    pixel that sees a whole neighbourhood of the image. The layout is the one
    of torchvision's ``ConvStemConfig`` (Xiao et al., 2021, "Early convolutions
    help transformers see better"), which notebook 13 proves equal.

    Unlike a patch embedding, a convolution slides: the same filter is applied
    at every position (translation equivariance) and looks only at nearby
    pixels (locality). Those are the two assumptions a pure ViT has to learn
    from data.

    (B, C, H, W) -> (B, N, D) with N = (H / S)^2, S the product of the strides.
    """

    def __init__(self, image_size: int = 28, in_channels: int = 1, embed_dim: int = 64,
                 channels: tuple = (32, 64), strides: tuple = (2, 2)):
        super().__init__()
        layers, prev = [], in_channels
        for c, s in zip(channels, strides):
            layers += [nn.Conv2d(prev, c, kernel_size=3, stride=s, padding=1, bias=False),
                       nn.BatchNorm2d(c), nn.ReLU(inplace=True)]
            prev = c
        self.stages = nn.Sequential(*layers)
        self.proj = nn.Conv2d(prev, embed_dim, kernel_size=1)
        self.image_size = image_size
        self.in_channels = in_channels
        self.patch_size = int(torch.tensor(strides).prod()) if strides else 1
        self.grid_size = image_size // self.patch_size
        self.num_patches = self.grid_size**2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.proj(self.stages(x))  # (B, C, H, W) -> (B, D, H/S, W/S)
        return x.flatten(2).transpose(1, 2)  # (B, D, gh, gw) -> (B, N, D)


class ShiftedPatchEmbed(nn.Module):
    """Shifted patch tokenisation (SPT; Lee et al., 2021, arXiv 2112.13492, section 3.1).

    The image is moved by half a patch in each of the four diagonal directions;
    the four moved copies join the image as extra channels, so each P x P patch
    also holds the pixels around it. Every patch (now 5C x P x P values) is
    flattened, layer-normalised and mapped to a D-wide token by one linear
    layer. There is still no convolution: one patch, one token, one shared
    matrix; only the patch is wider than the tokens it stands for.

    The pixels moved in from outside the image take ``fill`` (per channel).
    The ViT passes, at every call, the value its own normalisation gives a
    black pixel: the border must match the background exactly, or the layer
    norm of an empty patch (all five copies nearly equal) blows the tiny
    difference up into a large token.

    (B, C, H, W) -> (B, N, D) with N = (H / P) * (W / P).
    """

    SHIFTS = ((-1, -1), (1, -1), (-1, 1), (1, 1))  # (right, down) in units of half a patch

    def __init__(self, image_size: int = 28, patch_size: int = 4, in_channels: int = 1, embed_dim: int = 64,
                 fill=None, eps: float = 1e-6):
        super().__init__()
        if patch_size < 2 or image_size % patch_size:
            raise VitTutorialError(f"shifted patches need a patch_size of at least 2 that divides image_size "
                                   f"{image_size}, not {patch_size}")
        self.image_size = image_size
        self.patch_size = patch_size
        self.in_channels = in_channels
        self.grid_size = image_size // patch_size
        self.num_patches = self.grid_size**2
        fill = torch.zeros(in_channels) if fill is None else torch.as_tensor(fill, dtype=torch.float32)
        self.register_buffer("fill", fill.reshape(1, in_channels, 1, 1), persistent=False)
        width = 5 * in_channels * patch_size**2
        self.norm = nn.LayerNorm(width, eps=eps)
        self.proj = nn.Linear(width, embed_dim)

    def shifted(self, x: torch.Tensor, right: int, down: int, fill: torch.Tensor | None = None) -> torch.Tensor:
        """x moved ``right`` pixels to the right and ``down`` pixels down (negative: the other way)."""
        H, W = x.shape[-2:]
        fill = self.fill if fill is None else fill.reshape(1, -1, 1, 1)
        out = fill.to(x.dtype).expand_as(x).clone()
        out[..., max(down, 0):H + min(down, 0), max(right, 0):W + min(right, 0)] = \
            x[..., max(-down, 0):H + min(-down, 0), max(-right, 0):W + min(-right, 0)]
        return out

    def forward(self, x: torch.Tensor, fill: torch.Tensor | None = None) -> torch.Tensor:
        s = self.patch_size // 2
        x = torch.cat([x, *(self.shifted(x, r * s, d * s, fill) for r, d in self.SHIFTS)], dim=1)  # (B, 5C, H, W)
        return self.proj(self.norm(patchify(x, self.patch_size)))  # (B, N, 5C*P*P) -> (B, N, D)


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
        raise VitTutorialError(f"image of {H}x{W} cannot be cut into {P}x{P} patches")
    x = images.reshape(B, C, H // P, P, W // P, P)  # (B, C, gh, P, gw, P)
    x = x.permute(0, 2, 4, 1, 3, 5)  # -> (B, gh, gw, C, P, P)
    return x.reshape(B, (H // P) * (W // P), C * P * P)  # -> (B, N, C*P*P)

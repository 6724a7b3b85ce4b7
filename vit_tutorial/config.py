"""Model configuration: one small dataclass and a few named presets."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from .errors import VitTutorialError


@dataclass
class ViTConfig:
    """Everything needed to build a :class:`~vit_tutorial.model.ViT`.

    The defaults are the MNIST model of this book.
    """

    image_size: int = 28  # side of the (square) input image, pixels
    patch_size: int = 7  # side P of one square patch; image_size must be a multiple
    in_channels: int = 1  # C: 1 for grey digits, 3 for colour images
    num_classes: int = 10
    embed_dim: int = 64  # D: width of every token
    depth: int = 4  # number of encoder blocks
    num_heads: int = 4  # h: attention heads; embed_dim must be a multiple
    mlp_ratio: float = 2.0  # hidden width of the MLP = mlp_ratio * embed_dim
    pos_embed: str = "learned"  # "learned" (trained, as in the paper) or "sincos" (fixed 2-D)
    pool: str = "cls"  # "cls": head reads the class token; "mean": mean of the patch tokens
    dropout: float = 0.0  # dropout after embeddings, in the MLP and after attention
    qkv_bias: bool = True
    layer_norm_eps: float = 1e-6  # as in the reference ViT code
    # Input normalisation, stored in the model so that it takes images in [0, 1].
    mean: tuple[float, ...] = (0.1307,)
    std: tuple[float, ...] = (0.3081,)

    def __post_init__(self) -> None:
        self.mean = tuple(float(m) for m in self.mean)
        self.std = tuple(float(s) for s in self.std)
        problems = []
        for name in ("image_size", "patch_size", "in_channels", "num_classes", "embed_dim", "depth", "num_heads"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < (0 if name == "depth" else 1):
                problems.append(f"{name} must be a positive integer, not {value!r}")
        if not self.mlp_ratio > 0:
            problems.append(f"mlp_ratio must be positive, not {self.mlp_ratio!r}")
        if not 0 <= self.dropout < 1:
            problems.append(f"dropout must be in [0, 1), not {self.dropout!r}")
        if problems:
            raise VitTutorialError("invalid ViTConfig: " + "; ".join(problems))
        if self.image_size % self.patch_size:
            problems.append(f"image_size {self.image_size} is not a multiple of patch_size {self.patch_size}")
        if self.embed_dim % self.num_heads:
            problems.append(f"embed_dim {self.embed_dim} is not a multiple of num_heads {self.num_heads}")
        if self.pos_embed not in ("learned", "sincos"):
            problems.append(f"pos_embed must be 'learned' or 'sincos', not {self.pos_embed!r}")
        if self.pos_embed == "sincos" and self.embed_dim % 4:
            problems.append(f"sincos position embeddings need embed_dim divisible by 4, got {self.embed_dim}")
        if self.pool not in ("cls", "mean"):
            problems.append(f"pool must be 'cls' or 'mean', not {self.pool!r}")
        if len(self.mean) != self.in_channels or len(self.std) != self.in_channels:
            problems.append(f"mean and std need one value per channel ({self.in_channels})")
        if any(s <= 0 for s in self.std):
            problems.append("std values must be positive")
        if problems:
            raise VitTutorialError("invalid ViTConfig: " + "; ".join(problems))

    @property
    def grid_size(self) -> int:
        """Patches along one side of the image."""
        return self.image_size // self.patch_size

    @property
    def num_patches(self) -> int:
        """N, the number of patch tokens (the class token not counted)."""
        return self.grid_size**2

    @property
    def mlp_dim(self) -> int:
        return int(round(self.embed_dim * self.mlp_ratio))

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["mean"], d["std"] = list(self.mean), list(self.std)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> ViTConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise VitTutorialError(f"unknown ViTConfig fields: {', '.join(sorted(unknown))}")
        return cls(**d)

    def replace(self, **changes) -> ViTConfig:
        return dataclasses.replace(self, **changes)


# Mean and standard deviation of the training images, per channel.
MNIST_MEAN, MNIST_STD = (0.1307,), (0.3081,)
FASHION_MEAN, FASHION_STD = (0.2860,), (0.3530,)
CIFAR10_MEAN, CIFAR10_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)

PRESETS: dict[str, ViTConfig] = {
    # Small enough for unit tests and smoke runs: a forward pass is a few milliseconds.
    "tiny": ViTConfig(embed_dim=32, depth=2, num_heads=2, mlp_ratio=2.0),
    # The book's MNIST model: 16 patches of 7x7.
    "mnist": ViTConfig(
        image_size=28, patch_size=7, in_channels=1, num_classes=10,
        embed_dim=64, depth=4, num_heads=4, mlp_ratio=2.0,
        mean=MNIST_MEAN, std=MNIST_STD,
    ),
    # Clothes need finer patches and a wider model than digits.
    "fashion-mnist": ViTConfig(
        image_size=28, patch_size=4, in_channels=1, num_classes=10,
        embed_dim=128, depth=6, num_heads=8, mlp_ratio=2.0,
        mean=FASHION_MEAN, std=FASHION_STD,
    ),
    "cifar10": ViTConfig(
        image_size=32, patch_size=4, in_channels=3, num_classes=10,
        embed_dim=192, depth=6, num_heads=6, mlp_ratio=2.0,
        mean=CIFAR10_MEAN, std=CIFAR10_STD,
    ),
}


def preset(name: str, **changes) -> ViTConfig:
    """A copy of a named preset, optionally with some fields changed."""
    if name not in PRESETS:
        raise VitTutorialError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return PRESETS[name].replace(**changes)

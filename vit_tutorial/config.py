"""Model configuration: one small dataclass and a few named presets."""

from __future__ import annotations

import math
from dataclasses import dataclass

from .errors import VitTutorialError
from .utils import ConfigDict


@dataclass
class ViTConfig(ConfigDict):
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
    # "patch": a P x P patch embedding (a Conv2d with kernel = stride = P), as in the paper's ViT;
    # "conv": the paper's hybrid, a small CNN whose feature map is cut into 1x1 patches. Its
    # stages are 3x3 convolutions with these output channels and strides; patch_size must then
    # equal the product of the strides (the pixels one token stands for).
    # "shifted": shifted patch tokens (Lee et al., 2021): each P x P patch together with the same
    # patch of four copies of the image moved half a patch diagonally, then one linear layer.
    stem: str = "patch"
    stem_channels: tuple[int, ...] = (32, 64)
    stem_strides: tuple[int, ...] = (2, 2)
    pos_embed: str = "learned"  # "learned" (trained, as in the paper) or "sincos" (fixed 2-D)
    pos_temperature: float = 10000.0  # of the sine-cosine table: its slowest frequency is about 1 / temperature
    # Locality self-attention (Lee et al., 2021): a learned scale per head, no token attends to itself.
    lsa: bool = False
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
        self.stem_channels = tuple(self.stem_channels)
        self.stem_strides = tuple(self.stem_strides)
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
        if self.stem not in ("patch", "conv", "shifted"):
            problems.append(f"stem must be 'patch', 'conv' or 'shifted', not {self.stem!r}")
        if self.stem == "shifted" and self.patch_size < 2:
            problems.append("stem='shifted' needs a patch_size of at least 2 (it moves the image half a patch)")
        if not isinstance(self.lsa, bool):
            problems.append(f"lsa must be True or False, not {self.lsa!r}")
        if self.stem == "conv":
            if len(self.stem_channels) != len(self.stem_strides) or not all(
                    isinstance(v, int) and v >= 1 for v in (*self.stem_channels, *self.stem_strides)):
                problems.append("stem_channels and stem_strides need one positive integer per stage")
            elif self.patch_size != math.prod(self.stem_strides):
                problems.append(f"with stem='conv', patch_size must be the product of stem_strides "
                                f"({math.prod(self.stem_strides)}), not {self.patch_size}")
        if self.pos_embed not in ("learned", "sincos"):
            problems.append(f"pos_embed must be 'learned' or 'sincos', not {self.pos_embed!r}")
        if not self.pos_temperature > 1:
            problems.append(f"pos_temperature must be above 1, not {self.pos_temperature!r}")
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



# Mean and standard deviation of the training images, per channel.
MNIST_MEAN, MNIST_STD = (0.1307,), (0.3081,)
FASHION_MEAN, FASHION_STD = (0.2860,), (0.3530,)
CIFAR10_MEAN, CIFAR10_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)

# Small enough for unit tests and smoke runs: a forward pass is a few milliseconds. Not a model of the book
# (those are in ``registry.MODELS``, by id), just a size.
TINY = ViTConfig(embed_dim=32, depth=2, num_heads=2, mlp_ratio=2.0)


def preset(name: str, **changes):
    """The configuration of a model of the book by its id (``"mnist-sample/vit"``), or ``"tiny"``,
    with some fields changed: a ``ViTConfig``, or a ``CNNConfig`` for a CNN."""
    if name == "tiny":
        return TINY.replace(**changes)
    from .registry import config

    return config(name, **changes)


def build_model(config):
    """The model a configuration describes: a ``ViT`` for a ``ViTConfig``, a ``CNN`` for a ``CNNConfig``.

    ``config`` may also be a model id (or ``"tiny"``).
    """
    from .cnn import CNN, CNNConfig
    from .model import ViT

    if isinstance(config, str):
        config = preset(config)
    return CNN(config) if isinstance(config, CNNConfig) else ViT(config)

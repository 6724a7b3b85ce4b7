"""A small convolutional network: the baseline the ViT is measured against on small data.

It takes the same images as the ViT (values in [0, 1], normalised inside the
model), is trained by the same ``fit`` and scored by the same ``evaluate``.
Stages of two 3x3 convolutions with BatchNorm and ReLU, a 2x2 max-pool
between stages, global average pooling, one linear layer.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .errors import VitTutorialError
from .utils import ConfigDict


@dataclass
class CNNConfig(ConfigDict):
    """Everything needed to build a :class:`CNN`."""

    image_size: int = 28
    in_channels: int = 1
    num_classes: int = 10
    channels: tuple[int, ...] = (32, 64, 128)  # output channels of each stage; a max-pool halves the map between
    convs_per_stage: tuple[int, ...] = (2, 2, 1)
    dropout: float = 0.0  # before the final linear layer
    mean: tuple[float, ...] = (0.1307,)
    std: tuple[float, ...] = (0.3081,)

    kind = "cnn"  # what checkpoints record to rebuild the right class (a class attribute, not a field)

    def __post_init__(self) -> None:
        self.channels = tuple(self.channels)
        self.convs_per_stage = tuple(self.convs_per_stage)
        self.mean = tuple(float(m) for m in self.mean)
        self.std = tuple(float(s) for s in self.std)
        problems = []
        for name in ("image_size", "in_channels", "num_classes"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                problems.append(f"{name} must be a positive integer, not {v!r}")
        if not self.channels or len(self.channels) != len(self.convs_per_stage) or not all(
                isinstance(v, int) and v >= 1 for v in (*self.channels, *self.convs_per_stage)):
            problems.append("channels and convs_per_stage need one positive integer per stage")
        if not 0 <= self.dropout < 1:
            problems.append(f"dropout must be in [0, 1), not {self.dropout!r}")
        if len(self.mean) != self.in_channels or len(self.std) != self.in_channels:
            problems.append(f"mean and std need one value per channel ({self.in_channels})")
        if problems:
            raise VitTutorialError("invalid CNNConfig: " + "; ".join(problems))


class CNN(nn.Module):
    """(B, C, H, W) images in [0, 1] -> (B, num_classes) logits."""

    def __init__(self, config: CNNConfig | None = None, **overrides):
        super().__init__()
        config = config or CNNConfig()
        self.config = cfg = config.replace(**overrides) if overrides else config
        self.register_buffer("mean", torch.tensor(cfg.mean).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(cfg.std).view(1, -1, 1, 1))
        layers, prev = [], cfg.in_channels
        for i, (c, n) in enumerate(zip(cfg.channels, cfg.convs_per_stage)):
            if i:
                layers.append(nn.MaxPool2d(2))  # (B, c, H, W) -> (B, c, H/2, W/2)
            for _ in range(n):
                layers += [nn.Conv2d(prev, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True)]
                prev = c
        self.features = nn.Sequential(*layers)
        self.drop = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(prev, cfg.num_classes)

    def check_input(self, x: torch.Tensor) -> None:
        cfg = self.config
        want = (cfg.in_channels, cfg.image_size, cfg.image_size)
        if x.ndim != 4 or tuple(x.shape[1:]) != want:
            raise VitTutorialError(f"expected images of shape (B, {want[0]}, {want[1]}, {want[2]}), "
                                   f"got {tuple(x.shape)}")
        if not x.is_floating_point():
            raise VitTutorialError(f"expected float images with values in [0, 1], got {x.dtype}")

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, channels[-1]): the globally average-pooled last feature map."""
        self.check_input(x)
        x = self.features((x - self.mean) / self.std)
        return x.mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.drop(self.forward_features(x)))

    def num_parameters(self, trainable_only: bool = True) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)

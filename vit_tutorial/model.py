"""The Vision Transformer: patches + class token + positions -> encoder -> head.

Also the way in from torchvision: ``from_torchvision`` copies one of its
ViTs, ``pretrained_vit_b_16`` fetches its ImageNet-trained ViT-B/16.
"""

from __future__ import annotations

import socket
from pathlib import Path

import torch
from torch import nn

from .config import ViTConfig
from .embeddings import sincos_2d
from .encoder import Block
from .errors import VitTutorialError
from .patches import ConvStem, PatchEmbed, ShiftedPatchEmbed


class ViT(nn.Module):
    """A Vision Transformer for small images (Dosovitskiy et al., 2020).

    Takes images (B, C, H, W) with values in [0, 1]; the normalisation by the
    training data's mean and standard deviation is part of the model.
    """

    def __init__(self, config: ViTConfig | None = None, **overrides):
        super().__init__()
        config = (config or ViTConfig()).replace(**overrides) if overrides else (config or ViTConfig())
        self.config = cfg = config
        D = cfg.embed_dim
        self.register_buffer("mean", torch.tensor(cfg.mean).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(cfg.std).view(1, -1, 1, 1))
        if cfg.stem == "conv":  # the hybrid: a small CNN, then 1x1 patches of its feature map
            self.patch_embed = ConvStem(cfg.image_size, cfg.in_channels, D, cfg.stem_channels, cfg.stem_strides)
        elif cfg.stem == "shifted":  # shifted patch tokens: each patch with its four half-patch-moved copies
            self.patch_embed = ShiftedPatchEmbed(cfg.image_size, cfg.patch_size, cfg.in_channels, D,
                                                 eps=cfg.layer_norm_eps)
        else:
            self.patch_embed = PatchEmbed(cfg.image_size, cfg.patch_size, cfg.in_channels, D)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, D))
        if cfg.pos_embed == "learned":
            self.pos_embed = nn.Parameter(torch.empty(1, cfg.num_patches + 1, D))
        else:  # fixed: a buffer, so no optimizer ever sees it
            self.register_buffer("pos_embed", sincos_2d(cfg.grid_size, D, temperature=cfg.pos_temperature).unsqueeze(0))
        self.pos_drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(
            Block(D, cfg.num_heads, cfg.mlp_dim, cfg.qkv_bias, cfg.dropout, cfg.layer_norm_eps, cfg.lsa)
            for _ in range(cfg.depth)
        )
        self.norm = nn.LayerNorm(D, eps=cfg.layer_norm_eps)
        self.head = nn.Linear(D, cfg.num_classes)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Truncated-normal weights (std 0.02) and zero biases, as in the reference code."""
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        w = self.patch_embed.proj.weight
        nn.init.trunc_normal_(w.view(w.shape[0], -1), std=0.02)
        nn.init.zeros_(self.patch_embed.proj.bias)
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        for block in self.blocks:
            if block.attn.lsa:
                nn.init.constant_(block.attn.head_scale, block.attn.scale)
        if isinstance(self.pos_embed, nn.Parameter):
            nn.init.trunc_normal_(self.pos_embed, std=0.02)

    def check_input(self, x: torch.Tensor) -> None:
        cfg = self.config
        want = (cfg.in_channels, cfg.image_size, cfg.image_size)
        if x.ndim != 4 or tuple(x.shape[1:]) != want:
            raise VitTutorialError(
                f"expected images of shape (B, {want[0]}, {want[1]}, {want[2]}), got {tuple(x.shape)}"
            )
        if not x.is_floating_point():
            raise VitTutorialError(f"expected float images with values in [0, 1], got {x.dtype} "
                                   f"(divide bytes by 255 first)")

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Images (B, C, H, W) in [0, 1] -> tokens (B, N+1, D): equation 1 of the paper."""
        self.check_input(x)
        x = (x - self.mean) / self.std
        if self.config.stem == "shifted":  # the image's border: a black pixel, normalised the same way
            x = self.patch_embed(x, fill=(0 - self.mean) / self.std)  # (B, N, D)
        else:
            x = self.patch_embed(x)  # (B, N, D)
        cls = self.cls_token.expand(x.shape[0], -1, -1)  # (1, 1, D) -> (B, 1, D)
        x = torch.cat([cls, x], dim=1) + self.pos_embed  # (B, N+1, D)
        return self.pos_drop(x)

    def forward_features(self, x: torch.Tensor, return_attention: bool = False):
        """(B, C, H, W) -> (B, N+1, D) tokens after the final LayerNorm.

        With ``return_attention=True`` also returns a list with one
        (B, h, N+1, N+1) attention matrix per block.
        """
        x = self.embed(x)
        attentions = []
        for block in self.blocks:
            if return_attention:
                x, attn = block(x, return_attention=True)
                attentions.append(attn)
            else:
                x = block(x)
        x = self.norm(x)
        return (x, attentions) if return_attention else x

    def pool(self, x: torch.Tensor) -> torch.Tensor:
        """(B, N+1, D) -> (B, D): the class token, or the mean of the patch tokens."""
        return x[:, 0] if self.config.pool == "cls" else x[:, 1:].mean(dim=1)

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        """(B, N+1, D) -> (B, num_classes) logits."""
        return self.head(self.pool(x))

    def forward(self, x: torch.Tensor, return_attention: bool = False):
        """(B, C, H, W) -> logits (B, num_classes) [, list of (B, h, N+1, N+1)]."""
        if return_attention:
            x, attentions = self.forward_features(x, return_attention=True)
            return self.forward_head(x), attentions
        return self.forward_head(self.forward_features(x))

    def num_parameters(self, trainable_only: bool = True) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)


def from_torchvision(tv_model: nn.Module, mean=None, std=None) -> ViT:
    """Copy a ``torchvision.models.VisionTransformer`` into a :class:`ViT`.

    The result gives the same logits and attention weights as the
    torchvision model. torchvision's models expect inputs that are already
    normalised, so by default the new model's normalisation is the identity;
    pass ``mean`` and ``std`` (e.g. ImageNet's) to have it take images in
    [0, 1] instead.
    """
    try:
        from torchvision.models.vision_transformer import VisionTransformer
    except ImportError as e:  # pragma: no cover - torchvision is a dependency
        raise VitTutorialError("from_torchvision needs torchvision") from e
    if not isinstance(tv_model, VisionTransformer):
        raise VitTutorialError(f"expected a torchvision VisionTransformer, got {type(tv_model).__name__}")
    stem = {}
    if not isinstance(tv_model.conv_proj, nn.Conv2d):  # a conv stem: (Conv2dNormActivation, ...) + conv_last
        stages = list(tv_model.conv_proj)[:-1]
        convs = [stage[0] for stage in stages]
        if not all(len(st) == 3 and isinstance(st[1], nn.BatchNorm2d) and isinstance(st[2], nn.ReLU)
                   and c.kernel_size == (3, 3) and c.bias is None for st, c in zip(stages, convs)):
            raise VitTutorialError("only conv stems of 3x3 convolutions with BatchNorm and ReLU are supported")
        stem = dict(stem="conv", stem_channels=tuple(c.out_channels for c in convs),
                    stem_strides=tuple(c.stride[0] for c in convs))
    if len(tv_model.heads) != 1:
        raise VitTutorialError("torchvision ViTs with a representation layer (pre_logits) are not supported")
    layers = list(tv_model.encoder.layers)
    C = (tv_model.conv_proj.in_channels if not stem else tv_model.conv_proj[0][0].in_channels)
    cfg = ViTConfig(
        image_size=tv_model.image_size,
        patch_size=tv_model.patch_size,
        in_channels=C,
        num_classes=tv_model.num_classes,
        embed_dim=tv_model.hidden_dim,
        depth=len(layers),
        num_heads=layers[0].num_heads if layers else 1,
        mlp_ratio=tv_model.mlp_dim / tv_model.hidden_dim,
        pos_embed="learned",
        pool="cls",
        dropout=0.0,
        qkv_bias=layers[0].self_attention.in_proj_bias is not None if layers else True,
        layer_norm_eps=tv_model.encoder.ln.eps,
        mean=tuple(mean) if mean is not None else (0.0,) * C,
        std=tuple(std) if std is not None else (1.0,) * C,
        **stem,
    )
    model = ViT(cfg)
    with torch.no_grad():
        if stem:
            for i, stage in enumerate(list(tv_model.conv_proj)[:-1]):  # ours: conv, bn, relu flat in one Sequential
                model.patch_embed.stages[3 * i].load_state_dict(stage[0].state_dict())
                model.patch_embed.stages[3 * i + 1].load_state_dict(stage[1].state_dict())
            model.patch_embed.proj.load_state_dict(tv_model.conv_proj.conv_last.state_dict())
        else:
            model.patch_embed.proj.load_state_dict(tv_model.conv_proj.state_dict())
        model.cls_token.copy_(tv_model.class_token)
        model.pos_embed.copy_(tv_model.encoder.pos_embedding)
        for ours, theirs in zip(model.blocks, layers):
            ours.norm1.load_state_dict(theirs.ln_1.state_dict())
            ours.norm2.load_state_dict(theirs.ln_2.state_dict())
            mha = theirs.self_attention
            ours.attn.qkv.weight.copy_(mha.in_proj_weight)
            if mha.in_proj_bias is not None:
                ours.attn.qkv.bias.copy_(mha.in_proj_bias)
            ours.attn.proj.load_state_dict(mha.out_proj.state_dict())
            ours.mlp.fc1.load_state_dict(theirs.mlp[0].state_dict())
            ours.mlp.fc2.load_state_dict(theirs.mlp[3].state_dict())
        model.norm.load_state_dict(tv_model.encoder.ln.state_dict())
        model.head.load_state_dict(tv_model.heads.head.state_dict())
    return model.train(tv_model.training)


# --- torchvision's pretrained weights, from its cache or the network ------------------------------


def network_up(host: str = "download.pytorch.org", port: int = 443, timeout: float = 3.0) -> bool:
    """True when a TCP connection to ``host`` opens within ``timeout`` seconds."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def pretrained_vit_b_16(timeout: float = 3.0):
    """torchvision's ``vit_b_16`` with its ImageNet weights, converted to a :class:`ViT` that takes [0, 1] images.

    Returns ``(model, message)``: the model, or ``None`` with a one-line reason
    when the weights are neither in torch's cache nor downloadable. A download
    is only tried when a quick connection test says the network is up, so
    this never hangs on a machine without one.
    """
    import torchvision

    weights = torchvision.models.ViT_B_16_Weights.IMAGENET1K_V1
    cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name
    host = weights.url.split("/")[2]
    if not cached.is_file() and not network_up(host, timeout=timeout):
        return None, (f"Skipped: the pretrained vit_b_16 weights are not in torch's checkpoint cache "
                      f"(torch.hub.get_dir()) and {host} cannot be reached.")
    try:
        tv = torchvision.models.vit_b_16(weights=weights)
    except Exception as e:  # noqa: BLE001 - any download or file failure means: skip this part
        return None, f"Skipped: the pretrained vit_b_16 weights could not be loaded ({type(e).__name__}: {e})."
    norm = weights.transforms()
    model = from_torchvision(tv, mean=norm.mean, std=norm.std).eval()
    return model, f"Loaded torchvision's vit_b_16 ({weights.name}) and converted it."

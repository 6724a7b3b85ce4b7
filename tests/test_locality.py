"""Shifted patch tokens (SPT) and locality self-attention (LSA), Lee et al. 2021, against PyTorch's pieces."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.testing import assert_close

from vit_tutorial import ViT, VitTutorialError, fit, patchify, preset
from vit_tutorial.attention import Attention
from vit_tutorial.checkpoint import model_from_payload, read_checkpoint, save_checkpoint
from vit_tutorial.config import ViTConfig
from vit_tutorial.patches import ShiftedPatchEmbed

QUIET = dict(amp="off", device="cpu", progress=False, verbose=False)


def images(B=2, C=1, S=28, seed=0):
    return torch.rand(B, C, S, S, generator=torch.Generator().manual_seed(seed))


# ---------------------------------------------------------------- shifted patch tokens


@pytest.mark.parametrize("right, down", [(2, 2), (-2, 2), (2, -2), (-2, -2), (3, 0), (0, -1)])
def test_shift_equals_pad_and_crop(right, down):
    """Moving the image equals padding it with the fill value on one side and cutting the other side off."""
    embed = ShiftedPatchEmbed(8, 4, 2, 16, fill=[-0.5, 0.25])
    x = images(3, 2, 8)
    H = W = 8
    # F.pad's order: (left, right, top, bottom); padding the left by r moves the picture r to the right.
    padded = torch.cat([F.pad(x[:, c:c + 1], (max(right, 0), max(-right, 0), max(down, 0), max(-down, 0)),
                              value=v) for c, v in enumerate((-0.5, 0.25))], dim=1)
    top, left = max(-down, 0), max(-right, 0)
    assert_close(embed.shifted(x, right, down), padded[..., top:top + H, left:left + W])


def test_shifted_patch_embed_is_five_images_patchified_normalised_and_projected():
    torch.manual_seed(0)
    embed = ShiftedPatchEmbed(12, 4, 3, 20, fill=[0.0, 0.0, 0.0])
    with torch.no_grad():
        embed.norm.weight.normal_()
        embed.norm.bias.normal_()
    x = images(2, 3, 12)
    moved = [torch.roll(x, shifts=(d * 2, r * 2), dims=(2, 3)) for r, d in ShiftedPatchEmbed.SHIFTS]
    for m, (r, d) in zip(moved, ShiftedPatchEmbed.SHIFTS):  # torch.roll wraps around: blank what came in
        m[..., slice(0, 2) if d > 0 else slice(-2, None), :] = 0
        m[..., :, slice(0, 2) if r > 0 else slice(-2, None)] = 0
    flat = patchify(torch.cat([x, *moved], dim=1), 4)  # (B, N, 5 * 3 * 16)
    expected = F.linear(F.layer_norm(flat, (flat.shape[-1],), embed.norm.weight, embed.norm.bias, 1e-6),
                        embed.proj.weight, embed.proj.bias)
    assert flat.shape == (2, 9, 240)
    assert_close(embed(x), expected)


def test_shifted_tokens_see_the_neighbouring_patch():
    """A change one pixel outside a patch changes that patch's token with SPT, never with the plain embedding."""
    torch.manual_seed(0)
    spt = ViT(preset("fashion-mnist/vit", stem="shifted")).patch_embed.eval()
    plain = ViT(preset("fashion-mnist/vit")).patch_embed.eval()
    x = images(1)
    y = x.clone()
    y[..., 4, 4] += 0.5  # first pixel of patch (1, 1): patch (0, 0) covers rows and columns 0-3
    with torch.no_grad():
        assert_close(plain(x)[:, 0], plain(y)[:, 0])
        assert not torch.allclose(spt(x)[:, 0], spt(y)[:, 0])
        # but not two patches away: half a patch is as far as a token sees
        z = x.clone()
        z[..., 10, 10] += 0.5
        assert_close(spt(x)[:, 0], spt(z)[:, 0])


def test_shifted_stem_border_is_the_models_own_black():
    """The pixels moved in are black as the model normalises it, even after its mean and std were rounded.

    A black image then gives every patch the same token, border patches included. A border of another
    value, however close, would be blown up by the layer norm of the nearly constant border patches.
    """
    torch.manual_seed(0)
    model = ViT(preset("fashion-mnist/vit", stem="shifted")).eval()
    with torch.no_grad():
        model.patch_embed.norm.weight.normal_()
        model.patch_embed.norm.bias.normal_()
    black = torch.zeros(1, 1, 28, 28)
    for rounded in (False, True):
        if rounded:  # as a checkpoint stored in half precision would have them
            model.mean.copy_(model.mean.half().float())
            model.std.copy_(model.std.half().float())
            assert model.mean.item() != model.config.mean[0]
        with torch.no_grad():
            tokens = model.patch_embed(((black - model.mean) / model.std), fill=(0 - model.mean) / model.std)
            assert_close(tokens, tokens[:, :1].expand_as(tokens), rtol=0, atol=0)
            assert_close(model.embed(black)[:, 1:], tokens + model.pos_embed[:, 1:])


# ---------------------------------------------------------------- locality self-attention


@pytest.mark.parametrize("D, h", [(12, 3), (16, 4), (8, 1)])
def test_lsa_equals_multihead_attention_with_a_diagonal_mask(D, h):
    """LSA = nn.MultiheadAttention with each head's query rows scaled and self-attention masked out."""
    torch.manual_seed(D + h)
    attn = Attention(D, h, lsa=True).eval()
    with torch.no_grad():
        attn.qkv.bias.normal_()
        attn.proj.bias.normal_()
        attn.head_scale.uniform_(0.1, 2.0)  # learned scales, one per head, far from 1/sqrt(d)
    mha = nn.MultiheadAttention(D, h, batch_first=True).eval()
    d = D // h
    factor = (attn.head_scale / d**-0.5).repeat_interleave(d)  # MHA divides by sqrt(d): undo it per head
    with torch.no_grad():
        mha.in_proj_weight.copy_(attn.qkv.weight)
        mha.in_proj_bias.copy_(attn.qkv.bias)
        mha.in_proj_weight[:D] *= factor[:, None]
        mha.in_proj_bias[:D] *= factor
        mha.out_proj.weight.copy_(attn.proj.weight)
        mha.out_proj.bias.copy_(attn.proj.bias)
    x = torch.randn(2, 9, D)
    mask = torch.eye(9, dtype=torch.bool)  # MHA: True = may not attend
    with torch.no_grad():
        theirs, their_weights = mha(x, x, x, attn_mask=mask, need_weights=True, average_attn_weights=False)
        ours, our_weights = attn(x, return_attention=True)
        attn.fused = True
        ours_fused = attn(x)
    assert_close(ours, theirs)
    assert_close(ours_fused, theirs)
    assert_close(our_weights, their_weights)
    assert torch.all(our_weights.diagonal(dim1=-2, dim2=-1) == 0)


def test_lsa_scale_starts_at_one_over_sqrt_d_and_learns_without_weight_decay():
    from vit_tutorial.training import param_groups

    model = ViT(preset("tiny", lsa=True))
    attn = model.blocks[0].attn
    assert_close(attn.head_scale, torch.full((attn.num_heads,), attn.head_dim**-0.5))
    no_decay = {id(p) for p in param_groups(model, 0.05)[1]["params"]}
    assert all(id(b.attn.head_scale) in no_decay for b in model.blocks)
    without = ViT(preset("tiny"))
    assert model.num_parameters() == without.num_parameters() + sum(b.attn.num_heads for b in model.blocks)


def test_default_model_has_no_lsa_and_the_plain_stem():
    model = ViT(preset("fashion-mnist/vit"))
    assert not any(b.attn.lsa for b in model.blocks)
    assert type(model.patch_embed).__name__ == "PatchEmbed"
    assert "head_scale" not in " ".join(model.state_dict())


def test_the_books_clothes_vit_is_the_plain_one_with_locality():
    """fashion-mnist/vit-spt-lsa: fashion-mnist/vit with SPT and LSA, the same recipe, no teacher."""
    from vit_tutorial import registry

    assert preset("fashion-mnist/vit-spt-lsa") == preset("fashion-mnist/vit", stem="shifted", lsa=True)
    assert preset("fashion-mnist/vit-spt-lsa+kd") == preset("fashion-mnist/vit-spt-lsa")
    assert registry.recipe("fashion-mnist/vit") == registry.recipe("fashion-mnist/vit-spt-lsa")
    assert "teacher" not in registry.recipe("fashion-mnist/vit-spt-lsa")
    model = ViT(preset("fashion-mnist/vit-spt-lsa"))
    assert all(b.attn.lsa for b in model.blocks) and type(model.patch_embed).__name__ != "PatchEmbed"


# ---------------------------------------------------------------- the whole model


def test_spt_lsa_model_trains_saves_and_loads(tmp_path):
    from vit_tutorial.data import ImageDataset

    torch.manual_seed(0)
    cfg = preset("tiny", patch_size=4, stem="shifted", lsa=True)
    model = ViT(cfg)
    x = torch.zeros(64, 1, 28, 28, dtype=torch.uint8)
    y = torch.arange(64) % 2
    x[y == 1, :, :14] = 255  # a learnable two-class rule: bright top half or not
    x[y == 0, :, 14:] = 255
    data = ImageDataset(x, y, ["bottom", "top"], "toy")
    history = fit(model, data, data, epochs=8, batch_size=16, lr=3e-3, warmup_epochs=0, augment=None, **QUIET)
    assert history.val_acc[-1] == 1.0
    x = x.float() / 255
    logits, attentions = model.eval()(x[:4], return_attention=True)
    assert len(attentions) == cfg.depth and attentions[0].shape == (4, cfg.num_heads, 50, 50)
    path = tmp_path / "spt.pt"
    save_checkpoint(path, model)
    loaded = model_from_payload(read_checkpoint(path))
    assert loaded.config == cfg
    assert_close(loaded.eval()(x[:4]), logits)


@pytest.mark.parametrize("changes, message", [(dict(stem="shifted", patch_size=1), "at least 2"),
                                              (dict(stem="shifty"), "'patch', 'conv' or 'shifted'"),
                                              (dict(lsa="yes"), "lsa must be True or False")])
def test_bad_locality_settings_are_refused(changes, message):
    with pytest.raises(VitTutorialError, match=message):
        ViTConfig(**changes)


def test_row_keys_ignore_a_later_option_at_its_old_value():
    """A row's key leaves out pos_temperature at 10,000 (every row written before it existed), not at another value."""
    from vit_tutorial.results import key_config

    cfg = preset("mnist-sample/vit").to_dict()
    assert "pos_temperature" not in key_config(cfg)
    assert key_config({**cfg, "pos_temperature": 2.0})["pos_temperature"] == 2.0

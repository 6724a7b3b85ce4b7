"""The model: shapes, bad input, and equivalence with PyTorch's and torchvision's own blocks."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.testing import assert_close

import vit_tutorial.attention
from vit_tutorial import MLP, Attention, Block, PatchEmbed, ViT, ViTConfig, VitTutorialError, from_torchvision, patchify
from vit_tutorial.embeddings import sincos_2d


def images(B=2, C=1, S=28, seed=0):
    return torch.rand(B, C, S, S, generator=torch.Generator().manual_seed(seed))


def tokens(B, N, D, seed=0):
    return torch.randn(B, N, D, generator=torch.Generator().manual_seed(seed))


# ---------------------------------------------------------------- patches


@pytest.mark.parametrize("S, P, C, D", [(28, 7, 1, 16), (32, 8, 3, 24), (28, 14, 3, 5)])
def test_patch_embed_shape(S, P, C, D):
    out = PatchEmbed(S, P, C, D)(images(3, C, S))
    assert out.shape == (3, (S // P) ** 2, D)


def test_patchify_cuts_patches_row_by_row():
    x = images(2, 3, 12)
    p = patchify(x, 4)  # 3 x 3 patches of 3 x 4 x 4 values
    assert p.shape == (2, 9, 3 * 4 * 4)
    for i in range(3):
        for j in range(3):
            assert torch.equal(p[:, 3 * i + j], x[:, :, 4 * i:4 * i + 4, 4 * j:4 * j + 4].flatten(1))


@pytest.mark.parametrize("S, P, C, D", [(28, 7, 1, 16), (32, 8, 3, 24), (12, 4, 2, 7)])
def test_patchify_then_linear_equals_patch_embed(S, P, C, D):
    torch.manual_seed(0)
    embed = PatchEmbed(S, P, C, D)
    x = images(2, C, S)
    conv = embed.proj
    expected = patchify(x, P) @ conv.weight.flatten(1).T + conv.bias
    assert_close(embed(x), expected)


def test_patchify_rejects_sizes_that_do_not_divide():
    with pytest.raises(ValueError, match="7x7"):
        patchify(images(1, 1, 30), 7)


def test_patch_embed_refuses_a_patch_that_does_not_divide_the_image():
    """A bare Conv2d would skip the last rows and columns without a word."""
    from vit_tutorial import PatchEmbed

    with pytest.raises(ValueError, match="patch_size 5 does not divide image_size 28"):
        PatchEmbed(image_size=28, patch_size=5)


# ---------------------------------------------------------------- the whole model


def test_logits_features_and_attention_shapes(tiny_config):
    cfg = tiny_config
    model = ViT(cfg).eval()
    x = images(3)
    N, D = cfg.num_patches, cfg.embed_dim
    assert model(x).shape == (3, cfg.num_classes)
    assert model.forward_features(x).shape == (3, N + 1, D)

    logits, attentions = model(x, return_attention=True)
    assert logits.shape == (3, cfg.num_classes)
    assert isinstance(attentions, list) and len(attentions) == cfg.depth
    for a in attentions:
        assert a.shape == (3, cfg.num_heads, N + 1, N + 1)
        assert (a >= 0).all()
        assert_close(a.sum(-1), torch.ones(3, cfg.num_heads, N + 1))
    # Asking for the weights takes the explicit path; the logits must not change.
    assert_close(logits, model(x))


def test_pool_mean_reads_the_patch_tokens(tiny_config):
    torch.manual_seed(0)
    cls_model = ViT(tiny_config).eval()
    mean_model = ViT(tiny_config.replace(pool="mean")).eval()
    mean_model.load_state_dict(cls_model.state_dict())
    x = images(4)
    features = cls_model.forward_features(x)
    assert_close(mean_model.forward_features(x), features)
    assert_close(cls_model(x), cls_model.head(features[:, 0]))
    assert_close(mean_model(x), cls_model.head(features[:, 1:].mean(dim=1)))
    assert not torch.allclose(mean_model(x), cls_model(x))


def test_sincos_position_embedding_is_a_fixed_buffer(tiny_config):
    cfg = tiny_config.replace(pos_embed="sincos")
    model = ViT(cfg)
    assert "pos_embed" in dict(model.named_buffers())
    assert all(p is not model.pos_embed for p in model.parameters())
    assert not model.pos_embed.requires_grad
    assert_close(model.pos_embed, sincos_2d(cfg.grid_size, cfg.embed_dim).unsqueeze(0))
    assert torch.equal(model.pos_embed[0, 0], torch.zeros(cfg.embed_dim))  # the class token has no position

    before = model.pos_embed.clone()
    head_before = model.head.weight.detach().clone()
    opt = torch.optim.AdamW(model.parameters(), lr=0.1, weight_decay=0.5)
    model(images(4)).logsumexp(-1).sum().backward()
    opt.step()
    assert model.pos_embed.grad is None
    assert torch.equal(model.pos_embed, before)
    assert not torch.equal(model.head.weight, head_before)  # the step did change the weights


def test_learned_position_embedding_is_a_parameter(tiny_config):
    model = ViT(tiny_config)
    assert any(p is model.pos_embed for p in model.parameters())


def test_sincos_2d_rows_and_columns():
    emb = sincos_2d(3, 8, cls_token=False)  # (9, 8): channels 0-3 encode the row, 4-7 the column
    assert emb.shape == (9, 8)
    grid = emb.view(3, 3, 8)
    assert torch.equal(grid[0, :, :4], grid[0, 0, :4].expand(3, 4))  # same row, same first half
    assert torch.equal(grid[:, 0, 4:], grid[0, 0, 4:].expand(3, 4))  # same column, same second half
    assert_close(grid[0, 0], torch.tensor([0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 1.0]))  # sin 0, cos 0
    assert_close(grid[1, 2, 0], torch.tensor(1.0).sin())  # row 1, lowest frequency
    assert_close(grid[1, 2, 4], torch.tensor(2.0).sin())  # column 2


@pytest.mark.parametrize("shape", [(2, 1, 32, 32), (2, 3, 28, 28), (1, 28, 28), (2, 1, 28, 14)])
def test_wrong_input_shape_names_the_expected_shape(shape):
    model = ViT(ViTConfig())  # MNIST: (B, 1, 28, 28)
    with pytest.raises(VitTutorialError, match=r"\(B, 1, 28, 28\)"):
        model(torch.rand(shape))


@pytest.mark.parametrize("changes, words", [
    (dict(image_size=30, patch_size=7), "not a multiple of patch_size"),
    (dict(embed_dim=30, num_heads=4), "not a multiple of num_heads"),
    (dict(pool="max"), "pool"),
    (dict(pos_embed="rope"), "pos_embed"),
    (dict(pos_embed="sincos", embed_dim=18, num_heads=2), "divisible by 4"),
    (dict(in_channels=3), "one value per channel"),
    (dict(std=(0.0,)), "positive"),
])
def test_invalid_config_raises(changes, words):
    with pytest.raises(VitTutorialError, match=words):
        ViTConfig(**changes)
    with pytest.raises(VitTutorialError, match=words):
        ViT(ViTConfig(), **changes)


def test_config_round_trips_through_a_dict(tiny_config):
    cfg = tiny_config.replace(pos_embed="sincos", pool="mean")
    assert ViTConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(VitTutorialError, match="unknown ViTConfig fields: colour"):
        ViTConfig.from_dict({**cfg.to_dict(), "colour": "blue"})


def test_unknown_preset_raises():
    from vit_tutorial import preset

    with pytest.raises(VitTutorialError, match="unknown model 'huge'"):
        preset("huge")


# ---------------------------------------------------------------- attention against nn.MultiheadAttention


def copy_into_mha(attn: Attention, mha: nn.MultiheadAttention) -> None:
    with torch.no_grad():
        mha.in_proj_weight.copy_(attn.qkv.weight)
        mha.in_proj_bias.copy_(attn.qkv.bias)
        mha.out_proj.weight.copy_(attn.proj.weight)
        mha.out_proj.bias.copy_(attn.proj.bias)


@pytest.mark.parametrize("D, h", [(12, 3), (30, 5), (16, 4), (8, 1), (14, 7)])
def test_attention_equals_multihead_attention(D, h):
    torch.manual_seed(D * 10 + h)
    attn = Attention(D, h).eval()
    with torch.no_grad():  # non-zero biases everywhere, so a misplaced bias shows
        attn.qkv.bias.normal_()
        attn.proj.bias.normal_()
    mha = nn.MultiheadAttention(D, h, batch_first=True).eval()
    copy_into_mha(attn, mha)
    x = tokens(2, 9, D)
    with torch.no_grad():
        theirs, their_weights = mha(x, x, x, need_weights=True, average_attn_weights=False)
        ours_fused = attn(x)
        ours, our_weights = attn(x, return_attention=True)
    assert our_weights.shape == (2, h, 9, 9)
    assert_close(ours_fused, theirs)
    assert_close(ours, theirs)
    assert_close(our_weights, their_weights)


class CountingSDPA:
    """Stands in for F.scaled_dot_product_attention and counts the calls."""

    def __init__(self):
        self.calls = 0
        self.real = F.scaled_dot_product_attention

    def __call__(self, *args, **kwargs):
        self.calls += 1
        return self.real(*args, **kwargs)


@pytest.fixture
def sdpa(monkeypatch):
    counter = CountingSDPA()
    monkeypatch.setattr(vit_tutorial.attention.F, "scaled_dot_product_attention", counter)
    return counter


@pytest.mark.parametrize("D, h", [(12, 3), (30, 5), (32, 2)])
def test_fused_path_equals_explicit_path(D, h, sdpa):
    torch.manual_seed(0)
    attn = Attention(D, h).eval()
    x = tokens(3, 17, D)
    with torch.no_grad():
        explicit, _ = attn(x, return_attention=True)
        assert sdpa.calls == 0
        attn.fused = True
        fused = attn(x)
        assert sdpa.calls == 1
        assert_close(fused, explicit)
        fused_asked_for_weights, weights = attn(x, return_attention=True)
        assert sdpa.calls == 1  # asking for the weights always takes the explicit math
        assert weights.shape == (3, h, 17, 17)
        assert_close(fused_asked_for_weights, explicit)

        attn.fused = False
        forced = attn(x)
        assert sdpa.calls == 1  # forced explicit: the fused kernel is not called
        assert_close(forced, explicit)


def test_the_cpu_takes_the_explicit_path_unless_told_otherwise(sdpa):
    torch.manual_seed(0)
    attn = Attention(32, 4).eval()
    x = tokens(2, 17, 32)
    with torch.no_grad():
        reference = attn(x)
        assert not attn.use_fused(x) and sdpa.calls == 0
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = attn(x)
        assert sdpa.calls == 0
        attn.fused = True
        assert attn.use_fused(x)  # an explicit choice wins over the automatic one
        with torch.autocast("cpu", dtype=torch.bfloat16):
            attn(x)
        assert sdpa.calls == 1
    assert out.dtype == torch.bfloat16
    assert_close(out.float(), reference, atol=3e-2, rtol=3e-2)


def test_gpu_inputs_take_the_fused_path():
    attn = Attention(32, 4)
    meta = torch.empty(2, 17, 32, device="meta")
    assert not attn.use_fused(tokens(2, 17, 32))
    assert attn.use_fused(meta)  # any device but the CPU: the fused kernel


def test_attention_with_dropout_differs_in_training_only():
    torch.manual_seed(0)
    attn = Attention(16, 2, dropout=0.5)
    x = tokens(2, 5, 16)
    with torch.no_grad():
        attn.eval()
        assert torch.equal(attn(x), attn(x))
        attn.train()
        assert not torch.equal(attn(x), attn(x))


# ---------------------------------------------------------------- encoder block against nn.TransformerEncoderLayer


@pytest.mark.parametrize("D, h, mlp_dim", [(12, 3, 50), (30, 5, 37), (32, 2, 64)])
def test_block_equals_transformer_encoder_layer(D, h, mlp_dim):
    torch.manual_seed(D + h)
    block = Block(D, h, mlp_dim).eval()
    with torch.no_grad():  # random everywhere, norms included, so nothing is accidentally 0 or 1
        for p in block.parameters():
            p.copy_(torch.randn_like(p) * 0.3)
        block.norm1.weight.add_(1)
        block.norm2.weight.add_(1)
    layer = nn.TransformerEncoderLayer(D, h, dim_feedforward=mlp_dim, dropout=0.0, activation="gelu",
                                       batch_first=True, norm_first=True, layer_norm_eps=1e-6).eval()
    with torch.no_grad():
        copy_into_mha(block.attn, layer.self_attn)
        layer.linear1.load_state_dict(block.mlp.fc1.state_dict())
        layer.linear2.load_state_dict(block.mlp.fc2.state_dict())
        layer.norm1.load_state_dict(block.norm1.state_dict())
        layer.norm2.load_state_dict(block.norm2.state_dict())
        x = tokens(2, 10, D)
        theirs = layer(x)
        assert_close(block(x), theirs)
        out, attn = block(x, return_attention=True)
        assert_close(out, theirs)
        assert attn.shape == (2, h, 10, 10)


def test_mlp_is_linear_gelu_linear():
    torch.manual_seed(0)
    mlp = MLP(6, 11)
    x = tokens(2, 3, 6)
    assert_close(mlp(x), F.linear(F.gelu(F.linear(x, mlp.fc1.weight, mlp.fc1.bias)), mlp.fc2.weight, mlp.fc2.bias))


# ---------------------------------------------------------------- the whole model against torchvision


def random_torchvision_vit(seed, **kwargs):
    from torchvision.models.vision_transformer import VisionTransformer

    torch.manual_seed(seed)
    tv = VisionTransformer(**kwargs).eval()
    # torchvision starts the class token and several biases at zero; random
    # values everywhere make a weight copied to the wrong place show.
    with torch.no_grad():
        for p in tv.parameters():
            p.copy_(torch.randn_like(p) * 0.3)
        for m in tv.modules():
            if isinstance(m, nn.LayerNorm):
                m.weight.add_(1)
    return tv


@torch.no_grad()
def torchvision_attention(tv, x):
    """Run torchvision's layers by hand, keeping each layer's attention weights (B, h, N+1, N+1)."""
    B = x.shape[0]
    y = tv.conv_proj(x).flatten(2).transpose(1, 2)  # (B, D, gh, gw) -> (B, N, D)
    y = torch.cat([tv.class_token.expand(B, -1, -1), y], dim=1) + tv.encoder.pos_embedding
    weights = []
    for layer in tv.encoder.layers:
        z = layer.ln_1(y)
        _, w = layer.self_attention(z, z, z, need_weights=True, average_attn_weights=False)
        weights.append(w)
        y = layer(y)
    return tv.heads(tv.encoder.ln(y)[:, 0]), weights


TV_SIZES = [
    dict(image_size=28, patch_size=7, num_layers=3, num_heads=3, hidden_dim=12, mlp_dim=50, num_classes=7),
    dict(image_size=32, patch_size=8, num_layers=2, num_heads=5, hidden_dim=20, mlp_dim=37, num_classes=7),
    dict(image_size=24, patch_size=12, num_layers=1, num_heads=1, hidden_dim=8, mlp_dim=16, num_classes=3),
]


@pytest.mark.parametrize("sizes", TV_SIZES)
def test_from_torchvision_gives_the_same_logits_and_attention(sizes):
    tv = random_torchvision_vit(0, **sizes)
    model = from_torchvision(tv)
    cfg = model.config
    assert (cfg.image_size, cfg.patch_size, cfg.depth, cfg.num_heads, cfg.embed_dim, cfg.mlp_dim, cfg.num_classes) \
        == tuple(sizes[k] for k in ("image_size", "patch_size", "num_layers", "num_heads", "hidden_dim",
                                    "mlp_dim", "num_classes"))
    assert not model.training
    x = torch.randn(2, 3, sizes["image_size"], sizes["image_size"], generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        theirs = tv(x)
        ours, our_weights = model(x, return_attention=True)
        assert_close(model(x), theirs)
    assert_close(ours, theirs)
    manual_logits, their_weights = torchvision_attention(tv, x)
    assert_close(manual_logits, theirs)  # the hand-run layers are torchvision's forward
    assert len(our_weights) == len(their_weights) == sizes["num_layers"]
    for a, b in zip(our_weights, their_weights):
        assert_close(a, b)


def test_from_torchvision_with_mean_and_std_takes_images_in_0_1():
    sizes = TV_SIZES[1]
    tv = random_torchvision_vit(3, **sizes)
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    model = from_torchvision(tv, mean=mean, std=std)
    x = images(2, 3, 32)
    normalised = (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    with torch.no_grad():
        assert_close(model(x), tv(normalised))
        assert not torch.allclose(model(x), tv(x), atol=1e-3)


def test_from_torchvision_rejects_other_models():
    from torchvision.models.vision_transformer import VisionTransformer

    with pytest.raises(VitTutorialError, match="Linear"):
        from_torchvision(nn.Linear(3, 3))
    tv = VisionTransformer(image_size=28, patch_size=7, num_layers=1, num_heads=2, hidden_dim=8, mlp_dim=16,
                           num_classes=4, representation_size=6)
    with pytest.raises(VitTutorialError, match="pre_logits"):
        from_torchvision(tv)

"""vit_tutorial.inspect: known answers, hand-computed cases and bad input."""

import math

import pytest
import torch
from torch.testing import assert_close

import vit_tutorial.model
from vit_tutorial import ViT, VitTutorialError, from_torchvision, preset
from vit_tutorial import inspect as vi


def softmax_attention(B, h, T, seed=0):
    """Random attention weights (B, h, T, T) whose rows sum to 1."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(B, h, T, T, generator=g).mul(2).softmax(-1)


def eye_attention(B, h, T):
    return torch.eye(T).expand(B, h, T, T).clone()


# --- attention rollout ---------------------------------------------------------------------------


@pytest.mark.parametrize("residual", [True, False])
def test_rollout_of_identity_attention_is_identity(residual):
    attentions = [eye_attention(2, 3, 17) for _ in range(4)]
    out = vi.attention_rollout(attentions, residual=residual)
    assert out.shape == (2, 17, 17)
    assert_close(out, torch.eye(17).expand(2, 17, 17))


def test_rollout_of_one_uniform_layer_with_residual():
    T = 10
    U = torch.full((T, T), 1.0 / T)
    out = vi.attention_rollout([U.expand(1, 4, T, T)])
    assert_close(out[0], 0.5 * U + 0.5 * torch.eye(T))


def test_rollout_multiplies_later_layers_on_the_left():
    a1, a2, a3 = (softmax_attention(2, 4, 5, seed=s) for s in range(3))
    I = torch.eye(5)
    hat = [0.5 * a.mean(1) + 0.5 * I for a in (a1, a2, a3)]
    assert_close(vi.attention_rollout([a1, a2, a3]), hat[2] @ hat[1] @ hat[0])
    # without the residual: the plain product of the head-averaged matrices
    assert_close(vi.attention_rollout([a1, a2], residual=False), a2.mean(1) @ a1.mean(1))
    # the order matters: these matrices do not commute
    assert not torch.allclose(hat[2] @ hat[1] @ hat[0], hat[0] @ hat[1] @ hat[2])


def test_rollout_rows_sum_to_one():
    attentions = [softmax_attention(3, 4, 17, seed=s) for s in range(6)]
    for fusion in vi.HEAD_FUSIONS:
        for ratio in (0.0, 0.5, 0.9):
            out = vi.attention_rollout(attentions, head_fusion=fusion, discard_ratio=ratio)
            assert (out >= 0).all()
            assert_close(out.sum(-1), torch.ones(3, 17))


def test_head_fusion_max_and_min_by_hand():
    # two heads over three tokens; the fused rows no longer sum to 1 and are renormalised
    h0 = torch.tensor([[0.6, 0.3, 0.1], [0.2, 0.2, 0.6], [0.1, 0.1, 0.8]])
    h1 = torch.tensor([[0.2, 0.4, 0.4], [0.5, 0.3, 0.2], [0.3, 0.3, 0.4]])
    att = torch.stack([h0, h1]).unsqueeze(0)  # (1, 2, 3, 3)
    mx = torch.tensor([[0.6, 0.4, 0.4], [0.5, 0.3, 0.6], [0.3, 0.3, 0.8]])
    mn = torch.tensor([[0.2, 0.3, 0.1], [0.2, 0.2, 0.2], [0.1, 0.1, 0.4]])
    for fusion, fused in (("max", mx), ("min", mn)):
        a = 0.5 * fused + 0.5 * torch.eye(3)
        expected = a / a.sum(1, keepdim=True)
        assert_close(vi.attention_rollout([att], head_fusion=fusion)[0], expected)
        no_res = fused / fused.sum(1, keepdim=True)
        assert_close(vi.attention_rollout([att], head_fusion=fusion, residual=False)[0], no_res)
    assert_close(vi.fuse_heads(att, "max")[0], mx)
    assert_close(vi.fuse_heads(att, "min")[0], mn)


def test_discard_ratio_drops_weakest_but_never_the_cls_column():
    T = 17
    att = softmax_attention(2, 4, T, seed=3)
    # make the class-token column the weakest of all, so a careless discard would drop it first
    att[..., 0] = 1e-6
    att = att / att.sum(-1, keepdim=True)
    ratio = 0.6
    fused = vi.fuse_heads(att, "mean")
    dropped = vi.discard_weakest(fused, ratio)
    k = int(ratio * T * (T - 1))
    assert ((dropped[:, :, 1:] == 0).sum(dim=(1, 2)) == k).all()
    assert_close(dropped[:, :, 0], fused[:, :, 0])  # the CLS column untouched
    # every kept patch weight is at least as large as every dropped one
    for b in range(2):
        kept = dropped[b, :, 1:][dropped[b, :, 1:] > 0]
        gone = fused[b, :, 1:][dropped[b, :, 1:] == 0]
        assert kept.min() >= gone.max()
    out = vi.attention_rollout([att], discard_ratio=ratio, residual=False)
    assert (out[:, :, 0] > 0).all()
    assert ((out[:, :, 1:] == 0).sum(dim=(1, 2)) == k).all()
    assert_close(out.sum(-1), torch.ones(2, T))
    # with the residual, rows still sum to 1
    out = vi.attention_rollout([att, att], discard_ratio=ratio)
    assert_close(out.sum(-1), torch.ones(2, T))


def test_rollout_rejects_bad_input():
    good = softmax_attention(1, 2, 5)
    bad_calls = [
        lambda: vi.attention_rollout([]),
        lambda: vi.attention_rollout(good),  # a tensor, not a list of layers
        lambda: vi.attention_rollout([good[0]]),  # 3-D
        lambda: vi.attention_rollout([good[..., :4]]),  # not square
        lambda: vi.attention_rollout([good, softmax_attention(1, 2, 6)]),  # layers disagree
        lambda: vi.attention_rollout([good], head_fusion="median"),
        lambda: vi.attention_rollout([good], discard_ratio=1.0),
        lambda: vi.attention_rollout([good], discard_ratio=-0.1),
    ]
    for call in bad_calls:
        with pytest.raises(VitTutorialError):
            call()


# --- the class token's map and heat maps --------------------------------------------------------


def test_cls_attention_lays_out_the_cls_row_on_the_grid():
    att = softmax_attention(2, 3, 7)  # a 2x3 grid plus the class token
    maps = vi.cls_attention(att, (2, 3))
    assert maps.shape == (2, 3, 2, 3)
    for r in range(2):
        for c in range(3):
            assert_close(maps[:, :, r, c], att[:, :, 0, 1 + r * 3 + c])
    roll = vi.attention_rollout([att])
    assert vi.cls_attention(roll, (2, 3)).shape == (2, 2, 3)
    with pytest.raises(VitTutorialError):
        vi.cls_attention(att, 3)  # 3x3 = 9 patches, but the attention has 6
    with pytest.raises(VitTutorialError):
        vi.cls_attention(att[0, 0, 0], (2, 3))


def test_attention_heatmap_nearest_and_bilinear():
    maps = torch.tensor([[[0.0, 1.0], [2.0, 4.0]]])  # (1, 2, 2)
    near = vi.attention_heatmap(maps, 4, mode="nearest", normalize=False)
    expected = torch.tensor([[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 4, 4], [2, 2, 4, 4]], dtype=torch.float32)
    assert_close(near[0], expected)
    assert_close(vi.attention_heatmap(maps, 4, mode="nearest")[0], expected / 4)
    smooth = vi.attention_heatmap(maps.expand(3, 5, 2, 2), (6, 8))
    assert smooth.shape == (3, 5, 6, 8)
    assert_close(smooth.amin(dim=(-2, -1)), torch.zeros(3, 5))
    assert_close(smooth.amax(dim=(-2, -1)), torch.ones(3, 5))
    with pytest.raises(VitTutorialError):
        vi.attention_heatmap(torch.ones(4), 8)
    with pytest.raises(VitTutorialError):
        vi.attention_heatmap(maps, 8, mode="bicubic")


def test_overlay_blends_image_and_colour_map():
    from matplotlib import colormaps

    images = torch.rand(2, 1, 5, 5)
    heat = torch.zeros(2, 5, 5)
    heat[:, 2, 2] = 1.0
    out = vi.overlay(images, heat, alpha=0.0)
    assert out.shape == (2, 3, 5, 5)
    assert_close(out, images.expand(2, 3, 5, 5))
    top = torch.tensor(colormaps["inferno"](1.0)[:3], dtype=torch.float32)
    assert_close(vi.overlay(images, heat, alpha=1.0)[:, :, 2, 2], top.expand(2, 3))
    with pytest.raises(VitTutorialError):
        vi.overlay(images, heat[:, :4])
    with pytest.raises(VitTutorialError):
        vi.overlay(images[:, 0], heat)


# --- mean attention distance --------------------------------------------------------------------


def brute_force_mean_distance(patch_size, gh, gw):
    """The mean pixel distance between the centres of two patches, over all ordered pairs."""
    cells = [(r, c) for r in range(gh) for c in range(gw)]
    total = 0.0
    for r1, c1 in cells:
        for r2, c2 in cells:
            total += patch_size * math.sqrt((r1 - r2) ** 2 + (c1 - c2) ** 2)
    return total / len(cells) ** 2


def test_patch_distances_by_hand():
    d = vi.patch_distances(7, 4)
    assert d.shape == (16, 16)
    assert d[0, 1] == 7 and d[0, 4] == 7 and d[0, 15] == pytest.approx(7 * math.sqrt(18))
    assert_close(d, d.T)


def test_mean_attention_distance_is_zero_for_attention_to_self():
    T = 17
    assert_close(vi.mean_attention_distance(eye_attention(3, 4, T), 7, 4), torch.zeros(4))
    # half of each query's weight on the class token, half on itself: still zero after renormalising
    att = 0.5 * eye_attention(1, 2, T)
    att[..., 0] += 0.5
    assert_close(vi.mean_attention_distance(att, 7, 4), torch.zeros(2))


@pytest.mark.parametrize("patch_size, gh, gw", [(7, 4, 4), (4, 7, 7), (16, 14, 14), (3, 2, 3)])
def test_mean_attention_distance_of_uniform_attention(patch_size, gh, gw):
    T = gh * gw + 1
    uniform = torch.full((2, 3, T, T), 1.0 / T)
    expected = brute_force_mean_distance(patch_size, gh, gw)
    got = vi.mean_attention_distance(uniform, patch_size, (gh, gw))
    assert got.shape == (3,)
    assert_close(got, torch.full((3,), expected))


def test_mean_attention_distance_renormalises_over_patch_keys():
    # every query sends 0.9 to the class token and 0.1 to the patch two steps to its right (or left)
    T = 17
    att = torch.zeros(1, 1, T, T)
    att[..., 0] = 0.9
    for q in range(16):
        r, c = divmod(q, 4)
        k = r * 4 + (c + 2 if c < 2 else c - 2)
        att[0, 0, 1 + q, 1 + k] = 0.1
    assert_close(vi.mean_attention_distance(att, 7, 4), torch.tensor([14.0]))


def test_mean_attention_distance_per_head():
    T = 17
    att = torch.stack([torch.eye(T), torch.full((T, T), 1 / T)]).unsqueeze(0)  # head 0 self, head 1 uniform
    got = vi.mean_attention_distance(att, 7, 4)
    assert_close(got, torch.tensor([0.0, brute_force_mean_distance(7, 4, 4)]))


def test_mean_attention_distance_rejects_bad_input():
    with pytest.raises(VitTutorialError):
        vi.mean_attention_distance(torch.ones(2, 17, 17), 7, 4)  # no head dimension
    with pytest.raises(VitTutorialError):
        vi.mean_attention_distance(torch.ones(1, 2, 16, 16), 7, 4)  # no class token
    with pytest.raises(VitTutorialError):
        vi.mean_attention_distance(torch.ones(1, 2, 17, 16), 7, 4)
    with pytest.raises(VitTutorialError):
        vi.mean_attention_distance([[1.0]], 7, 4)


# --- position similarity ------------------------------------------------------------------------


def test_position_similarity_diagonal_symmetry_and_layouts():
    g = torch.Generator().manual_seed(0)
    pos = torch.randn(1, 17, 32, generator=g)
    sim = vi.position_similarity(pos, 4)
    assert sim.shape == (4, 4, 4, 4)
    flat = sim.reshape(16, 16)
    assert_close(flat.diagonal(), torch.ones(16))
    assert_close(flat, flat.T)
    assert (flat <= 1 + 1e-6).all() and (flat >= -1 - 1e-6).all()
    # (1, N+1, D), (N+1, D) and (N, D) agree: the class token's row is left out
    assert_close(vi.position_similarity(pos[0], 4), sim)
    assert_close(vi.position_similarity(pos[0, 1:], 4), sim)


def test_position_similarity_by_hand():
    # a 1x3 grid of 2-D embeddings at angles 0, 90 and 180 degrees, plus a longer copy
    pos = torch.tensor([[1.0, 0.0], [0.0, 2.0], [-3.0, 0.0]])
    sim = vi.position_similarity(pos, (1, 3))
    expected = torch.tensor([[1.0, 0.0, -1.0], [0.0, 1.0, 0.0], [-1.0, 0.0, 1.0]])
    assert_close(sim.reshape(3, 3), expected)


def test_position_similarity_rejects_bad_input():
    for bad in (torch.ones(15, 8), torch.ones(2, 17, 8), torch.ones(17), torch.ones(1, 1, 17, 8)):
        with pytest.raises(VitTutorialError):
            vi.position_similarity(bad, 4)
    with pytest.raises(VitTutorialError):
        vi.position_similarity(torch.ones(17, 8), (4, "x"))


# --- patch-embedding filters --------------------------------------------------------------------


def test_patch_filter_components_match_scikit_learn():
    from sklearn.decomposition import PCA

    g = torch.Generator().manual_seed(0)
    weight = torch.randn(64, 1, 7, 7, generator=g) @ torch.randn(7, 7, generator=g)  # correlated filters
    comps, explained = vi.patch_filter_components(weight, 10)
    assert comps.shape == (10, 1, 7, 7) and explained.shape == (10,)
    pca = PCA(10).fit(weight.flatten(1).double().numpy())
    assert_close(explained, torch.tensor(pca.explained_variance_ratio_, dtype=torch.float32))
    ref = torch.tensor(pca.components_, dtype=torch.float32)
    # the same directions, up to sign
    assert_close((comps.flatten(1) * ref).sum(1).abs(), torch.ones(10), atol=1e-4, rtol=0)
    # orthonormal, with the largest entry of each positive
    flat = comps.flatten(1)
    assert_close(flat @ flat.T, torch.eye(10), atol=1e-5, rtol=0)
    assert (flat.gather(1, flat.abs().argmax(1, keepdim=True)) > 0).all()
    assert (explained[:-1] >= explained[1:]).all()
    all_comps, all_explained = vi.patch_filter_components(weight)
    assert all_comps.shape == (49, 1, 7, 7)
    assert all_explained.sum().item() == pytest.approx(1.0, abs=1e-5)


def test_patch_filter_components_rejects_bad_input():
    with pytest.raises(VitTutorialError):
        vi.patch_filter_components(torch.ones(64, 49), 4)
    with pytest.raises(VitTutorialError):
        vi.patch_filter_components(torch.ones(64, 3, 7, 5), 4)
    with pytest.raises(VitTutorialError):
        vi.patch_filter_components(torch.randn(8, 1, 3, 3), 9)  # only 8 filters: at most 8 components


# --- on real models ------------------------------------------------------------------------------


def test_attention_from_the_model_equals_the_explicit_computation():
    torch.manual_seed(0)
    model = ViT(preset("tiny")).eval()
    x = torch.rand(3, 1, 28, 28)
    with torch.no_grad():
        fast = model(x)  # the fused kernel, which never forms the weights
        logits, attentions = model(x, return_attention=True)
        for block in model.blocks:
            block.attn.fused = False
        explicit = model(x)
        # block 0's weights, by hand from the embedded tokens
        tokens = model.blocks[0].norm1(model.embed(x))
        q, k, _ = model.blocks[0].attn.qkv(tokens).chunk(3, dim=-1)
        h = model.config.num_heads
        q = q.unflatten(-1, (h, -1)).transpose(1, 2)  # (B, N+1, D) -> (B, h, N+1, d)
        k = k.unflatten(-1, (h, -1)).transpose(1, 2)
        by_hand = (q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])).softmax(-1)
    assert_close(logits, fast)
    assert_close(explicit, fast)
    assert len(attentions) == model.config.depth
    for a in attentions:
        assert a.shape == (3, h, 17, 17)
        assert_close(a.sum(-1), torch.ones(3, h, 17))
    assert_close(attentions[0], by_hand)


def test_inspection_runs_on_a_model_converted_from_torchvision():
    from torchvision.models.vision_transformer import VisionTransformer

    torch.manual_seed(0)
    tv = VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=2, hidden_dim=32,
                           mlp_dim=64, num_classes=5).eval()
    model = from_torchvision(tv)
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        logits, attentions = model(x, return_attention=True)
        assert_close(logits, tv(x))
    roll = vi.attention_rollout(attentions)
    assert roll.shape == (2, 17, 17)
    assert vi.cls_attention(roll, 4).shape == (2, 4, 4)
    assert vi.mean_attention_distance(attentions[-1], 8, 4).shape == (2,)
    assert vi.position_similarity(model.pos_embed, 4).shape == (4, 4, 4, 4)
    comps, _ = vi.patch_filter_components(model.patch_embed.proj.weight, 5)
    assert comps.shape == (5, 3, 8, 8)
    heat = vi.attention_heatmap(vi.cls_attention(roll, 4), 32)
    assert vi.overlay(x, heat).shape == (2, 3, 32, 32)


def test_pretrained_model_is_skipped_without_network_or_cache(monkeypatch, tmp_path):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    monkeypatch.setattr(vit_tutorial.model, "network_up", lambda *a, **k: False)
    model, message = vit_tutorial.model.pretrained_vit_b_16()
    assert model is None
    assert message.startswith("Skipped:") and "\n" not in message

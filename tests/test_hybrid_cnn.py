"""The hybrid (convolutional stem), the CNN baseline, honest accuracies, and the shipped checkpoints."""

from __future__ import annotations

import pytest
import torch
from torch.testing import assert_close

from vit_tutorial import ViT, VitTutorialError, evaluate, fit, from_torchvision, load_checkpoint, preset, registry
from vit_tutorial.checkpoint import model_from_payload, read_checkpoint, save_checkpoint
from vit_tutorial.cnn import CNN, CNNConfig
from vit_tutorial.config import build_model
from vit_tutorial.evaluation import mcnemar, wilson_interval
from vit_tutorial.inspect import attention_rollout, cls_attention

QUIET = dict(amp="off", device="cpu", progress=False, verbose=False)


def images(B=2, C=1, S=28, seed=0):
    return torch.rand(B, C, S, S, generator=torch.Generator().manual_seed(seed))


# ---------------------------------------------------------------- the hybrid


@pytest.mark.parametrize("S, C, channels, strides", [(28, 1, (8, 16), (2, 2)), (32, 3, (8, 12, 16), (1, 2, 2)),
                                                      (24, 1, (6,), (4,))])
def test_hybrid_equals_torchvisions_conv_stem_vit(S, C, channels, strides):
    """Our conv-stem ViT and torchvision's VisionTransformer(conv_stem_configs=...) with the same weights."""
    from torchvision.models.vision_transformer import ConvStemConfig, VisionTransformer

    torch.manual_seed(0)
    P = 1
    for s in strides:
        P *= s
    stem = [ConvStemConfig(c, 3, s) for c, s in zip(channels, strides)]
    tv = VisionTransformer(image_size=S, patch_size=P, num_layers=2, num_heads=2, hidden_dim=16, mlp_dim=24,
                           num_classes=5, conv_stem_configs=stem)
    tv.train()
    tv(images(8, 3, S))  # give BatchNorm running statistics that are not the identity
    tv.eval()
    ours = from_torchvision(tv)
    assert ours.config.stem == "conv" and ours.config.stem_channels == channels
    assert ours.config.grid_size == S // P
    x = images(3, 3, S, seed=1)
    assert_close(ours(x), tv(x))
    if C == 1:  # the grey model takes one channel: the same stem built for it has the same shapes
        model = ViT(ours.config.replace(in_channels=1, mean=(0.0,), std=(1.0,)))
        assert model(images(2, 1, S)).shape == (2, 5)


def test_hybrid_runs_everything_downstream():
    cfg = preset("mnist-sample/hybrid")
    model = ViT(cfg).eval()
    assert cfg.grid_size == 7 and cfg.num_patches == 49
    logits, attn = model(images(2), return_attention=True)
    assert logits.shape == (2, 10)
    assert len(attn) == cfg.depth and attn[0].shape == (2, cfg.num_heads, 50, 50)
    assert_close(attn[0].sum(-1), torch.ones(2, cfg.num_heads, 50))
    rollout = attention_rollout(attn)
    assert rollout.shape == (2, 50, 50)
    assert_close(rollout.sum(-1), torch.ones(2, 50), rtol=0, atol=1e-5)
    assert cls_attention(attn[-1], cfg.grid_size).shape == (2, cfg.num_heads, 7, 7)
    assert model.forward_features(images(2)).shape == (2, 50, cfg.embed_dim)


def test_patch_stem_is_unchanged_by_the_new_fields():
    cfg = preset("mnist-sample/vit")
    assert cfg.stem == "patch"
    torch.manual_seed(0)
    a = ViT(cfg)
    torch.manual_seed(0)
    b = ViT(cfg.replace(stem_channels=(3,), stem_strides=(7,)))  # ignored by the patch stem
    assert_close(a(images(2)), b(images(2)))
    assert sorted(k for k in a.state_dict() if k.startswith("patch_embed")) == ["patch_embed.proj.bias",
                                                                               "patch_embed.proj.weight"]


def test_bad_stems_are_refused_in_one_line():
    with pytest.raises(VitTutorialError, match="product of stem_strides") as e:
        preset("mnist-sample/hybrid", patch_size=7)
    assert "\n" not in str(e.value)
    with pytest.raises(VitTutorialError, match="stem must be"):
        preset("mnist-sample/vit", stem="resnet")
    with pytest.raises(VitTutorialError, match="one positive integer per stage"):
        preset("mnist-sample/hybrid", stem_channels=(32,))


def test_models_stay_within_their_parameter_budgets():
    counts = {name: build_model(name).num_parameters() for name in registry.ids()}
    assert counts["mnist-sample/vit"] == 139_018  # the book's MNIST model, unchanged
    assert counts["mnist-sample/hybrid"] <= 1_000_000 and counts["fashion-mnist/hybrid"] <= 1_000_000
    assert counts["mnist-sample/cnn"] <= counts["mnist-sample/hybrid"]
    assert counts["fashion-mnist/cnn"] <= counts["fashion-mnist/hybrid"]
    assert registry.recipe("mnist-sample/cnn")["epochs"] == registry.recipe("mnist-sample/hybrid")["epochs"]
    assert registry.recipe("fashion-mnist/hybrid")["epochs"] <= 30


# ---------------------------------------------------------------- the CNN baseline


def test_cnn_shapes_and_bad_input():
    model = CNN(preset("mnist-sample/cnn")).eval()
    assert model(images(3)).shape == (3, 10)
    assert model.forward_features(images(3)).shape == (3, 128)
    with pytest.raises(VitTutorialError, match=r"\(B, 1, 28, 28\)"):
        model(images(1, 3, 28))
    with pytest.raises(VitTutorialError, match="invalid CNNConfig"):
        CNNConfig(channels=(8, 8), convs_per_stage=(1,))


def test_fit_trains_a_cnn_and_evaluate_scores_it(mnist_sample, tmp_path):
    torch.manual_seed(0)
    model = CNN(preset("mnist-sample/cnn"))
    train = mnist_sample.train.sample(800, seed=0)
    history = fit(model, train, mnist_sample.val, epochs=2, batch_size=32, lr=3e-3, augment=None,
                  out_dir=tmp_path / "run", **QUIET)
    assert history.val_acc[-1] > 0.6  # chance is 0.1; measured 0.84
    ev = evaluate(model, mnist_sample.val, device="cpu")
    assert ev.accuracy == pytest.approx(history.val_acc[-1])
    again = load_checkpoint(tmp_path / "run" / "checkpoint.pt")
    assert isinstance(again, CNN)
    assert_close(again(images(2)), model(images(2)))
    payload = read_checkpoint(tmp_path / "run" / "checkpoint.pt")
    assert payload["kind"] == "cnn"
    assert payload["dataset"] == {"name": "mnist-sample", "image_shape": [1, 28, 28],
                                  "classes": [str(i) for i in range(10)]}


def test_checkpoint_kinds_round_trip(tmp_path):
    for model in (ViT(preset("mnist-sample/hybrid")), CNN()):
        save_checkpoint(tmp_path / "m.pt", model)
        again = load_checkpoint(tmp_path / "m.pt")
        assert type(again) is type(model) and again.config == model.config
    payload = read_checkpoint(tmp_path / "m.pt")
    payload["kind"] = "mystery"
    with pytest.raises(VitTutorialError, match="unknown kind"):
        model_from_payload(payload, "m.pt")


# ---------------------------------------------------------------- honest numbers


def test_wilson_interval_matches_scipy():
    stats = pytest.importorskip("scipy.stats")
    for k, n in ((490, 500), (500, 500), (0, 10), (9726, 10000), (7, 9)):
        ci = stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
        assert wilson_interval(k, n) == pytest.approx((ci.low, ci.high), abs=1e-6)
    lo, hi = wilson_interval(490, 500)  # 98 % on 500 images: about +-1.2 points
    assert 0.963 < lo < 0.965 and 0.988 < hi < 0.990


def test_mcnemar_matches_an_exact_binomial_test():
    stats = pytest.importorskip("scipy.stats")
    g = torch.Generator().manual_seed(0)
    a = torch.rand(500, generator=g) < 0.97
    b = torch.rand(500, generator=g) < 0.93
    result = mcnemar(a, b)
    a_only, b_only = int((a & ~b).sum()), int((~a & b).sum())
    assert (result["a_only"], result["b_only"]) == (a_only, b_only)
    expected = stats.binomtest(a_only, a_only + b_only, 0.5).pvalue
    assert result["p_value"] == pytest.approx(expected)
    assert mcnemar(a, a)["p_value"] == 1.0  # the same predictions: nothing to tell apart
    with pytest.raises(VitTutorialError):
        mcnemar(a, b[:10])


def test_evaluation_carries_its_interval(tiny_config, mnist_sample):
    ev = evaluate(ViT(tiny_config), mnist_sample.val, device="cpu")
    lo, hi = ev.interval
    assert lo <= ev.accuracy <= hi
    assert (lo, hi) == wilson_interval(ev.correct, len(mnist_sample.val))
    assert "95 % interval" in ev.summary()


# ---------------------------------------------------------------- errors


def test_the_package_error_is_a_value_error():
    assert issubclass(VitTutorialError, ValueError)
    from vit_tutorial import Attention, ImageDataset, patchify
    from vit_tutorial.embeddings import sincos_2d

    for bad in (lambda: Attention(10, 3), lambda: patchify(images(1, 1, 30), 7), lambda: sincos_2d(4, 6),
                lambda: ImageDataset(torch.zeros(2, 1, 4, 4), torch.zeros(2), ["a"])):
        with pytest.raises(VitTutorialError) as e:
            bad()
        assert "\n" not in str(e.value)

"""Training: a short run that must learn, determinism, resuming, the schedule, augmentation, evaluation."""

from __future__ import annotations

import math

import pytest
import torch
from torch.testing import assert_close

import vit_tutorial.checkpoint
import vit_tutorial.training
from vit_tutorial import ImageDataset, ViT, VitTutorialError, evaluate, fit, load_checkpoint, preset, save_checkpoint
from vit_tutorial.augment import AUGMENTATIONS, Augment, get_augment
from vit_tutorial.cnn import CNN, CNNConfig
from vit_tutorial.training import choose_amp, distillation_loss, make_optimizer, param_groups, train_step, warmup_cosine

QUIET = dict(amp="off", device="cpu", progress=False, verbose=False)


def small_run(**changes):
    """fit's arguments for the small runs below: a few batches, with augmentation and dropout at work."""
    return dict(dict(epochs=3, batch_size=32, lr=3e-3, augment="digits", **QUIET), **changes)


def assert_same_weights(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


# ---------------------------------------------------------------- a short run must learn


def test_short_training_run_beats_chance_by_a_wide_margin(mnist_sample):
    torch.manual_seed(0)
    # 2 x 2 patches of 14 x 14: the smallest ViT that learns digits in a few seconds
    # (it reaches about 0.85 here; 7 x 7 patches need many more epochs).
    model = ViT(preset("tiny", patch_size=14))
    train = mnist_sample.train.sample(1500, seed=0)
    history = fit(model, train, mnist_sample.val, epochs=3, batch_size=32, lr=3e-3, augment=None, **QUIET)
    assert len(history) == 3
    assert history.epoch == [1, 2, 3]
    for column in ("train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds", "images_per_second"):
        assert len(getattr(history, column)) == 3, column
    assert history.val_acc[-1] > 0.7  # chance is 0.1; measured 0.83 to 0.85 over three seeds
    assert history.train_loss[-1] < history.train_loss[0]
    assert not model.training  # fit leaves the model ready for evaluation
    assert evaluate(model, mnist_sample.val, device="cpu").accuracy == pytest.approx(history.val_acc[-1])


def test_fit_rejects_data_of_the_wrong_shape(tiny_config):
    model = ViT(tiny_config)
    colour = ImageDataset(torch.zeros(4, 3, 28, 28, dtype=torch.uint8), torch.zeros(4), ["a"])
    with pytest.raises(VitTutorialError, match=r"\(3, 28, 28\)"):
        fit(model, colour, epochs=1, **QUIET)
    empty = ImageDataset(torch.zeros(0, 1, 28, 28, dtype=torch.uint8), torch.zeros(0), ["a"])
    with pytest.raises(VitTutorialError, match="empty"):
        fit(model, empty, epochs=1, **QUIET)


@pytest.mark.parametrize("change, words", [
    (dict(epochs=0), "epochs must be a positive integer, not 0"),
    (dict(epochs=2.5), "epochs must be a positive integer"),
    (dict(batch_size=-8), "batch_size must be a positive integer"),
    (dict(lr=0.0), "lr must be positive"),
    (dict(lr=float("nan")), "lr must be positive"),
    (dict(weight_decay=-0.1), "weight_decay must be at least 0"),
    (dict(label_smoothing=1.0), r"label_smoothing must be in \[0, 1\)"),
])
def test_fit_refuses_a_recipe_that_trains_nothing_or_nonsense(tiny_config, mnist_sample, tmp_path, change, words):
    model = ViT(tiny_config)
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(VitTutorialError, match=words):
        fit(model, mnist_sample.train.sample(16, seed=0), **dict(dict(epochs=1), **change), out_dir=tmp_path / "run",
            **QUIET)
    assert not (tmp_path / "run").exists()  # refused before anything is written
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_a_device_that_cannot_run_here_is_one_clear_error(tiny_config, mnist_sample, monkeypatch):
    from vit_tutorial.evaluation import batched
    from vit_tutorial.heads import extract_features
    from vit_tutorial.utils import resolve_device

    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(None).type in ("cpu", "cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # as on a laptop without a GPU
    data = mnist_sample.val.sample(16, seed=0)
    for device, words in (("cuda", "sees no CUDA GPU"), ("cuda:1", "sees no CUDA GPU"), ("gpu", "unknown device"),
                          ("meta", "runs on cpu, cuda or mps")):
        with pytest.raises(VitTutorialError, match=words):
            fit(ViT(tiny_config), data, epochs=1, **dict(QUIET, device=device))
        with pytest.raises(VitTutorialError, match=words):
            evaluate(ViT(tiny_config), data, device=device)
        with pytest.raises(VitTutorialError, match=words):  # the library's other ways in: features, batches
            extract_features(ViT(tiny_config), data, device=device)
        with pytest.raises(VitTutorialError, match=words):
            batched(ViT(tiny_config), data, device=device)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(VitTutorialError, match=r"has 1 CUDA GPU\(s\), numbered from 0"):
        resolve_device("cuda:1")


# ---------------------------------------------------------------- determinism and resuming


@pytest.fixture(scope="module")
def small_data(mnist_sample):
    return mnist_sample.train.sample(96, seed=1), mnist_sample.val.sample(32, seed=1)


def test_same_seed_same_weights_other_seed_other_weights(small_data):
    train, val = small_data
    config = preset("tiny", dropout=0.1)
    torch.manual_seed(0)
    start = ViT(config).state_dict()
    models = []
    for seed in (0, 0, 1):
        model = ViT(config)
        model.load_state_dict(start)
        fit(model, train, val, **small_run(epochs=2, seed=seed))
        models.append(model)
    assert_same_weights(models[0], models[1])
    assert not torch.equal(models[0].head.weight, models[2].head.weight)


def same_start(config):
    """A function that builds a fresh ViT of ``config`` with the same starting weights each time."""
    torch.manual_seed(0)
    start = ViT(config).state_dict()

    def fresh():
        model = ViT(config)
        model.load_state_dict(start)
        return model

    return fresh


def interrupted_after_epoch_2(monkeypatch, fit_call) -> None:
    """Run ``fit_call()`` as if the reader pressed Ctrl-C right after epoch 2 was saved."""
    real_save = vit_tutorial.checkpoint.save_checkpoint  # fit's save_run writes checkpoint.pt with it

    def save_then_stop(path, model, **state):
        real_save(path, model, **state)
        if state.get("epoch") == 2:
            raise KeyboardInterrupt

    with monkeypatch.context() as mp, pytest.raises(KeyboardInterrupt):
        mp.setattr(vit_tutorial.checkpoint, "save_checkpoint", save_then_stop)
        fit_call()


def test_interrupted_run_resumes_to_the_same_end(small_data, tmp_path, monkeypatch):
    train, val = small_data
    config = preset("tiny", dropout=0.1)
    fresh = same_start(config)
    whole = fresh()
    whole_history = fit(whole, train, val, **small_run(), out_dir=tmp_path / "A")
    interrupted_after_epoch_2(monkeypatch, lambda: fit(fresh(), train, val, **small_run(), out_dir=tmp_path / "B"))
    assert load_checkpoint(tmp_path / "B" / "checkpoint.pt") is not None

    resumed = ViT(config)  # other initial weights: everything must come from the checkpoint
    torch.manual_seed(123)  # and the global generator's state too
    history = fit(resumed, train, val, **small_run(), out_dir=tmp_path / "B", resume=True)
    assert len(history) == 3 and history.epoch == [1, 2, 3]
    assert_same_weights(resumed, whole)
    assert history.train_loss == whole_history.train_loss
    assert history.val_acc == whole_history.val_acc
    assert_same_weights(load_checkpoint(tmp_path / "B" / "checkpoint.pt"), whole)


def test_fit_is_the_loop_of_its_named_pieces(small_data):
    """fit, written out by hand: the optimizer, the schedule, and per epoch a seeded order, augmentation and
    train_step per batch. Equal weights pin the order of every random draw (validation draws none)."""
    train, val = small_data
    config = preset("tiny", dropout=0.1)
    torch.manual_seed(0)
    start = ViT(config).state_dict()
    models = [ViT(config), ViT(config)]
    for model in models:
        model.load_state_dict(start)
    history = fit(models[0], train, val, **small_run(epochs=2, seed=3))

    model, epochs, batch_size = models[1], 2, 32
    steps = math.ceil(len(train) / batch_size)
    optimizer = make_optimizer(model, lr=3e-3, weight_decay=0.05)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: warmup_cosine(s, steps, epochs * steps))
    augment, generator = get_augment("digits"), torch.Generator().manual_seed(3)
    torch.manual_seed(3)
    losses = []
    for _ in range(epochs):
        model.train()
        order, total = torch.randperm(len(train), generator=generator), 0.0
        for step in range(steps):
            x, y = train.batch(order[step * batch_size:(step + 1) * batch_size])
            loss, _ = train_step(model, optimizer, augment(x, generator), y, label_smoothing=0.1, grad_clip=1.0,
                                 scheduler=scheduler)
            total += loss.item() * len(y)
        losses.append(total / len(train))
    assert_same_weights(models[0], model)
    assert history.train_loss == losses


def test_resume_refuses_a_run_of_another_length(small_data, tmp_path):
    train, val = small_data
    fit(ViT(preset("tiny")), train, val, **small_run(epochs=1), out_dir=tmp_path)
    with pytest.raises(VitTutorialError, match=r"other settings \(epochs\)"):
        fit(ViT(preset("tiny")), train, val, **small_run(epochs=2), out_dir=tmp_path, resume=True)
    with pytest.raises(VitTutorialError, match="another configuration"):
        fit(ViT(preset("tiny", depth=1)), train, val, **small_run(epochs=1), out_dir=tmp_path, resume=True)


@pytest.mark.parametrize("interruption", [RuntimeError("disk full"), KeyboardInterrupt()])
def test_checkpoint_writes_are_atomic(tiny_config, tmp_path, monkeypatch, interruption):
    torch.manual_seed(0)
    old = ViT(tiny_config).eval()
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, old, epoch=1)
    x = torch.rand(2, 1, 28, 28)
    with torch.no_grad():
        old_logits = old(x)

    def broken_save(obj, f, *args, **kwargs):
        f.write(b"half a checkpoint")
        raise interruption

    with monkeypatch.context() as mp, pytest.raises(type(interruption)):
        mp.setattr(torch, "save", broken_save)
        save_checkpoint(path, ViT(tiny_config), epoch=2)
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]  # no temporary file left
    with torch.no_grad():
        assert torch.equal(load_checkpoint(path)(x), old_logits)


# ---------------------------------------------------------------- schedule, precision, weight decay


def test_warmup_cosine_rises_linearly_then_decays():
    warmup, total = 5, 25
    f = [warmup_cosine(s, warmup, total) for s in range(total + 3)]
    assert f[:warmup] == pytest.approx([(s + 1) / warmup for s in range(warmup)])  # linear, from near 0
    assert f[warmup] == pytest.approx(1.0)
    after = f[warmup:total + 1]
    assert all(a > b for a, b in zip(after, after[1:]))  # strictly down
    mid = warmup + (total - warmup) // 2
    assert f[mid] == pytest.approx(0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert f[total] == pytest.approx(0.01)
    assert f[total + 2] == pytest.approx(0.01)  # and stays at the floor
    assert warmup_cosine(0, 1, 10) == pytest.approx(1.0)  # one warm-up step: straight to the peak


def test_choose_amp(tiny_config, monkeypatch):
    narrow = ViT(tiny_config)
    wide = ViT(tiny_config.replace(embed_dim=128, depth=1))
    cnn = CNN(CNNConfig(channels=(4,), convs_per_stage=(1,)))
    cpu = torch.device("cpu")
    for model in (narrow, wide, cnn):  # explicit choices do not depend on the CPU
        assert choose_amp(model, cpu, "off") is None
        assert choose_amp(model, cpu, False) is None
        assert choose_amp(model, cpu, "bf16") is torch.bfloat16
    # "auto" asks the CPU what it computes natively; each answer mocked in turn
    monkeypatch.setattr(vit_tutorial.training, "cpu_bf16_support", lambda: "avx512_bf16")
    assert [choose_amp(m, cpu, "auto") for m in (narrow, wide, cnn)] == [torch.bfloat16] * 3
    monkeypatch.setattr(vit_tutorial.training, "cpu_bf16_support", lambda: "amx")
    assert choose_amp(narrow, cpu, "auto") is None  # measured no faster at width 64 on AMX
    assert choose_amp(wide, cpu, "auto") is torch.bfloat16
    assert choose_amp(cnn, cpu, "auto") is torch.bfloat16
    monkeypatch.setattr(vit_tutorial.training, "cpu_bf16_support", lambda: None)
    assert [choose_amp(m, cpu, "auto") for m in (narrow, wide, cnn)] == [None] * 3
    for junk in ("fp16x", "yes", 3):
        with pytest.raises(VitTutorialError, match="amp must be"):
            choose_amp(narrow, cpu, junk)


def test_cpu_bf16_support_reads_torchs_flags(monkeypatch):
    flags = {"_is_amx_tile_supported": False, "_is_avx512_bf16_supported": False}
    for name in flags:
        monkeypatch.setattr(torch.cpu, name, lambda name=name: flags[name])
    assert vit_tutorial.training.cpu_bf16_support() is None
    flags["_is_avx512_bf16_supported"] = True
    assert vit_tutorial.training.cpu_bf16_support() == "avx512_bf16"
    flags["_is_amx_tile_supported"] = True
    assert vit_tutorial.training.cpu_bf16_support() == "amx"


def test_param_groups_decay_weight_matrices_only(tiny_config):
    model = ViT(tiny_config)
    decay, no_decay = param_groups(model, 0.05)
    assert decay["weight_decay"] == 0.05 and no_decay["weight_decay"] == 0.0
    names = {id(p): n for n, p in model.named_parameters()}
    decayed = {names[id(p)] for p in decay["params"]}
    kept = {names[id(p)] for p in no_decay["params"]}
    assert decayed | kept == set(names.values()) and not decayed & kept
    assert {"cls_token", "pos_embed", "norm.weight", "norm.bias", "head.bias", "patch_embed.proj.bias",
            "blocks.0.norm1.weight", "blocks.1.attn.qkv.bias", "blocks.0.mlp.fc1.bias"} <= kept
    assert {"head.weight", "patch_embed.proj.weight", "blocks.0.attn.qkv.weight", "blocks.1.attn.proj.weight",
            "blocks.0.mlp.fc1.weight", "blocks.1.mlp.fc2.weight"} <= decayed
    assert all(n.endswith("weight") and "norm" not in n for n in decayed)


# ---------------------------------------------------------------- augmentation


def batch(B=8, C=1, S=28, seed=0):
    return torch.rand(B, C, S, S, generator=torch.Generator().manual_seed(seed))


def test_no_augmentation_is_the_identity():
    x = batch()
    assert Augment().is_identity
    assert torch.equal(Augment()(x, torch.Generator().manual_seed(0)), x)
    assert torch.equal(get_augment(None)(x), x)
    assert torch.equal(get_augment("digits", strength=0.0)(x, torch.Generator()), x)


def test_augmentation_is_seeded_and_keeps_shape_and_range():
    aug = get_augment("digits")
    x = batch(B=16)
    a = aug(x, torch.Generator().manual_seed(7))
    b = aug(x, torch.Generator().manual_seed(7))
    c = aug(x, torch.Generator().manual_seed(8))
    assert a.shape == x.shape and a.dtype == x.dtype
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert not torch.allclose(a, x, atol=1e-3)  # it does move the pixels
    assert a.min() >= 0 and a.max() <= 1
    colour = get_augment("photos")(batch(B=4, C=3, S=32), torch.Generator().manual_seed(0))
    assert colour.shape == (4, 3, 32, 32)


def test_hflip_alone_mirrors_exactly_or_leaves_alone():
    x = batch(B=32, C=3, S=12)
    out = Augment(hflip=True)(x, torch.Generator().manual_seed(0))
    flipped = []
    for i in range(len(x)):
        if torch.allclose(out[i], x[i], atol=1e-5):
            flipped.append(False)
        else:
            assert_close(out[i], torch.flip(x[i], dims=[-1]), atol=1e-5, rtol=0)
            flipped.append(True)
    assert 4 < sum(flipped) < 28  # about half, with probability 1 - 1e-5


def test_blur_matrix_is_a_gaussian_reflected_at_the_ends():
    from vit_tutorial.augment import _blur_matrix

    sigma, n, r = 3.0, 20, 9
    t = torch.arange(-r, r + 1, dtype=torch.float32)
    kernel = torch.exp(-0.5 * (t / sigma) ** 2)
    kernel = kernel / kernel.sum()
    x = torch.randn(5, n, generator=torch.Generator().manual_seed(0))
    by_conv = torch.nn.functional.conv1d(torch.nn.functional.pad(x.unsqueeze(1), (r, r), mode="reflect"),
                                         kernel.view(1, 1, -1)).squeeze(1)
    assert_close(x @ _blur_matrix(n, sigma).T, by_conv, atol=1e-6, rtol=0)
    assert_close(_blur_matrix(n, sigma).sum(1), torch.ones(n))  # a constant stays constant
    assert _blur_matrix(6, 4.0).shape == (6, 6)  # a kernel wider than the image is cut to fit
    assert_close(_blur_matrix(6, 4.0).sum(1), torch.ones(6))
    assert torch.equal(_blur_matrix(1, 4.0), torch.ones(1, 1))


def displacement_of(aug, S=28, B=64, seed=0):
    """Per-pixel shift, in pixels, that ``aug`` applies along x and along y, read off two ramp images."""
    ramp = torch.arange(S, dtype=torch.float32)
    x = torch.stack([ramp.expand(S, S), ramp.view(S, 1).expand(S, S)]).expand(B, 2, S, S)  # value = column, row
    out = aug(x.contiguous(), torch.Generator().manual_seed(seed))
    inner = slice(8, S - 8)  # far enough from the border for every shift below to stay inside the image
    return (out - x)[:, :, inner, inner]


def test_elastic_deformation_is_smooth_seeded_and_scales_with_alpha():
    none = Augment(elastic=0.0)
    assert none.is_identity and not Augment(elastic=1.0).is_identity
    d1, d2 = displacement_of(Augment(elastic=8.0)), displacement_of(Augment(elastic=16.0))
    assert_close(d2, 2 * d1, atol=1e-3, rtol=0)  # the same field, twice the size
    assert not torch.equal(d1, displacement_of(Augment(elastic=8.0), seed=1))
    # The field: uniform in [-1, 1] (standard deviation 1/sqrt 3), blurred by a Gaussian of width sigma,
    # whose 2-D kernel has an L2 norm of about 1 / (2 sqrt(pi) sigma), times alpha.
    expected = 8.0 / 3**0.5 / (2 * math.pi**0.5 * 4.0)
    assert 0.7 * expected < d1.std() < 1.5 * expected
    # Smooth: neighbours move nearly together (uncorrelated pixels would differ by about 1.4 times the std).
    assert (d1[..., 1:] - d1[..., :-1]).std() < 0.35 * d1.std()
    assert get_augment(Augment(rotate=10.0, elastic=8.0), strength=0.5).elastic == 4.0
    assert Augment(elastic=8.0)(batch(B=4, C=3, S=32), torch.Generator()).shape == (4, 3, 32, 32)
    with pytest.raises(VitTutorialError, match="elastic_sigma"):
        Augment(elastic=8.0, elastic_sigma=0.0)


def test_an_augmentation_without_elastic_is_recorded_and_shown_as_before_it_existed():
    """Checkpoints and saved results record the augmentation; those made before the elastic fields still match."""
    digits = get_augment("digits")
    assert digits.record() == dict(rotate=10.0, translate=0.1, scale=0.1, hflip=False, erase=0.0)
    assert repr(digits) == "Augment(rotate=10.0, translate=0.1, scale=0.1, hflip=False, erase=0.0)"
    elastic = get_augment("digits-elastic")
    assert elastic.record() == dict(digits.record(), elastic=16.0, elastic_sigma=4.0)
    assert "elastic=16.0" in repr(elastic) and elastic != digits


def test_unknown_augmentation_raises():
    assert set(AUGMENTATIONS) >= {"none", "digits"}
    with pytest.raises(VitTutorialError, match="unknown augmentation"):
        get_augment("sepia")


# ---------------------------------------------------------------- distillation


def test_distillation_loss_reduces_to_cross_entropy_where_it_should():
    g = torch.Generator().manual_seed(0)
    logits, y = torch.randn(16, 10, generator=g), torch.randint(0, 10, (16,), generator=g)
    ce = torch.nn.functional.cross_entropy(logits, y, label_smoothing=0.1)
    agreeing = torch.nn.functional.one_hot(y, 10).float() * 5  # a teacher whose top class is the label
    assert_close(distillation_loss(logits, y, agreeing, kind="hard", label_smoothing=0.1), ce)
    other = (y + 1) % 10
    teacher = torch.nn.functional.one_hot(other, 10).float()
    assert_close(distillation_loss(logits, y, teacher, kind="hard", weight=1.0),
                 torch.nn.functional.cross_entropy(logits, other))
    assert_close(distillation_loss(logits, y, teacher, kind="hard", weight=0.0),
                 torch.nn.functional.cross_entropy(logits, y))
    # soft: no extra loss when the student already answers as the teacher does, some when it does not
    assert_close(distillation_loss(logits, y, logits, kind="soft", weight=0.5),
                 0.5 * torch.nn.functional.cross_entropy(logits, y))
    assert distillation_loss(logits, y, teacher * 5, kind="soft", weight=1.0) > 0.1
    with pytest.raises(VitTutorialError, match="distillation must be"):
        distillation_loss(logits, y, teacher, kind="warm")


def test_a_distilled_student_learns_the_teachers_answers_and_the_teacher_is_untouched(small_data):
    train, val = small_data
    torch.manual_seed(1)
    teacher = ViT(preset("tiny", patch_size=14))  # untrained: its answers are a fixed function of the image
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    answers = evaluate(teacher, train, device="cpu").predictions
    assert answers.unique().numel() > 1 and (answers != train.labels).float().mean() > 0.5
    students = {}
    for name, extra in (("labels", {}), ("teacher", dict(teacher=teacher, distill="hard", distill_weight=1.0))):
        torch.manual_seed(0)
        students[name] = ViT(preset("tiny", patch_size=14))
        fit(students[name], train, val, **small_run(epochs=8, augment=None, label_smoothing=0.0), **extra)
    agree = {name: (evaluate(m, train, device="cpu").predictions == answers).float().mean().item()
             for name, m in students.items()}
    assert agree["teacher"] > agree["labels"] + 0.2, agree
    assert not teacher.training
    for k, v in teacher.state_dict().items():
        assert torch.equal(v, before[k]), k
    with pytest.raises(VitTutorialError, match="distill must be"):
        fit(ViT(preset("tiny")), train, val, **small_run(epochs=1), teacher=teacher, distill="warm")


def test_resume_refuses_a_run_that_had_a_teacher_and_now_has_none(small_data, tmp_path):
    train, val = small_data
    teacher = ViT(preset("tiny"))
    fit(ViT(preset("tiny")), train, val, **small_run(epochs=1), out_dir=tmp_path, teacher=teacher)
    with pytest.raises(VitTutorialError, match=r"other settings \(distill\)"):
        fit(ViT(preset("tiny")), train, val, **small_run(epochs=1), out_dir=tmp_path, resume=True)


# ---------------------------------------------------------------- evaluation


def test_evaluation_counts_and_mistakes(tiny_config):
    from vit_tutorial import predict_proba

    torch.manual_seed(0)
    model = ViT(tiny_config)
    images = (torch.rand(30, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 255).to(torch.uint8)
    preds = predict_proba(model, images.float() / 255).argmax(1)
    # Labels chosen so that exactly the odd-numbered images are wrong.
    wrong = torch.arange(30) % 2 == 1
    labels = torch.where(wrong, (preds + 1) % 10, preds)
    data = ImageDataset(images, labels, [str(i) for i in range(10)])
    ev = evaluate(model, data, batch_size=7, device="cpu")  # batches that do not divide the data
    assert torch.equal(ev.predictions, preds)
    assert ev.confusion.shape == (10, 10)
    assert int(ev.confusion.sum()) == 30
    assert ev.accuracy == pytest.approx(0.5)
    assert ev.accuracy == pytest.approx(ev.confusion.trace().item() / ev.confusion.sum().item())
    for true, pred in zip(labels.tolist(), preds.tolist()):
        assert ev.confusion[true, pred] >= 1
    assert torch.equal(ev.confusion.sum(1), labels.bincount(minlength=10))
    assert torch.equal(ev.confusion.sum(0), preds.bincount(minlength=10))
    assert sorted(ev.misclassified.tolist()) == list(range(1, 30, 2))
    confidence = ev.probabilities[ev.misclassified, ev.predictions[ev.misclassified]]
    assert (confidence[:-1] >= confidence[1:]).all()  # most confident mistakes first
    assert_close(ev.probabilities.sum(1), torch.ones(30))


# ---------------------------------------------------------------- the weight average (fit(ema=...))


def test_weight_average_follows_its_formula_by_hand():
    """Two updates of a WeightAverage against the same arithmetic written out: d = min(decay, (1+t)/(10+t))."""
    from vit_tutorial.training import WeightAverage

    torch.manual_seed(0)
    model = CNN(CNNConfig())  # BatchNorm: running statistics are averaged, the step counter is copied
    average = WeightAverage(model, decay=0.5)
    start = {k: v.clone() for k, v in model.state_dict().items()}
    expected = {k: v.clone().double() if v.is_floating_point() else v.clone() for k, v in start.items()}
    for t in (1, 2):
        with torch.no_grad():
            for v in model.state_dict().values():
                v.add_(1.0) if v.is_floating_point() else v.add_(3)
        average.update(model)
        d = min(0.5, (1 + t) / (10 + t))
        for k, v in model.state_dict().items():
            expected[k] = d * expected[k] + (1 - d) * v.double() if v.is_floating_point() else v.clone()
    assert average.steps == 2
    for k, v in average.model.state_dict().items():
        if v.is_floating_point():
            assert_close(v.double(), expected[k], rtol=0, atol=1e-6, msg=k)
            assert not torch.equal(v, model.state_dict()[k]), k  # it lags behind the model
        else:
            assert torch.equal(v, model.state_dict()[k]), k
    assert not any(p.requires_grad for p in average.model.parameters())
    with pytest.raises(VitTutorialError, match="between 0 and 1"):
        WeightAverage(model, decay=1.0)


def test_fit_with_ema_ends_on_the_average_and_resumes_to_the_same_end(small_data, tmp_path, monkeypatch):
    train, val = small_data
    config = preset("tiny", dropout=0.1)
    fresh = same_start(config)
    plain, averaged = fresh(), fresh()
    fit(plain, train, val, **small_run())
    history = fit(averaged, train, val, **small_run(ema=0.9), out_dir=tmp_path / "A")
    # the same training steps, so the difference is the average alone
    assert not torch.equal(plain.head.weight, averaged.head.weight)
    assert evaluate(averaged, val, device="cpu").accuracy == pytest.approx(history.val_acc[-1])
    assert_same_weights(load_checkpoint(tmp_path / "A" / "checkpoint.pt"), averaged)

    interrupted_after_epoch_2(monkeypatch,
                              lambda: fit(fresh(), train, val, **small_run(ema=0.9), out_dir=tmp_path / "B"))
    resumed = ViT(config)
    again = fit(resumed, train, val, **small_run(ema=0.9), out_dir=tmp_path / "B", resume=True)
    assert_same_weights(resumed, averaged)
    assert again.val_acc == history.val_acc
    # a run saved without the average cannot be resumed with one (other settings), nor the other way round
    with pytest.raises(VitTutorialError, match=r"other settings \(ema\)"):
        fit(fresh(), train, val, **small_run(), out_dir=tmp_path / "B", resume=True)

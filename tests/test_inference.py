"""The one inference loop (evaluation.batched) and what is built on it; a run's folder (checkpoint.save_run)."""

from __future__ import annotations

import json

import pytest
import torch
from torch.testing import assert_close

from vit_tutorial import CNN, CNNConfig, ImageDataset, ViT, VitTutorialError, evaluate, predict_proba, preset
from vit_tutorial.checkpoint import read_checkpoint, resume_run, save_run, start_run
from vit_tutorial.evaluation import batched
from vit_tutorial.heads import extract_features
from vit_tutorial.training import History, make_optimizer, validate, warmup_cosine_schedule


def digits(n: int, seed: int = 0) -> ImageDataset:
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 1, 28, 28), generator=g, dtype=torch.uint8)
    return ImageDataset(images, torch.randint(0, 10, (n,), generator=g), [str(i) for i in range(10)], "mnist")


@pytest.fixture
def model():
    torch.manual_seed(0)
    return ViT(preset("tiny", dropout=0.1))


def test_batched_equals_one_big_batch_in_eval_mode(model):
    data = digits(23)
    x = data.batch(torch.arange(23))[0]
    model.eval()
    with torch.no_grad():
        whole = model(x)
    model.train()  # dropout on: batched must switch it off, then back on
    for source in (data, x):
        for batch_size in (5, 23, 100):  # batches that do not divide the data, one batch, more than the data
            out = batched(model, source, batch_size=batch_size, device="cpu")
            assert out.shape == (23, 10) and out.dtype == torch.float32 and not out.requires_grad
            assert_close(out, whole)
    assert model.training
    features = batched(model, data, lambda m, x: m.forward_features(x)[:, 0], batch_size=4)
    assert features.shape == (23, model.config.embed_dim)


@pytest.mark.parametrize("build", [lambda: ViT(preset("tiny")), lambda: CNN(CNNConfig(channels=(4,),
                                                                                      convs_per_stage=(1,)))])
def test_no_images_give_empty_results_of_the_right_width(build):
    model = build()
    empty = ImageDataset(torch.zeros(0, 1, 28, 28, dtype=torch.uint8), torch.zeros(0), [str(i) for i in range(10)])
    assert batched(model, empty).shape == (0, 10)
    assert predict_proba(model, torch.zeros(0, 1, 28, 28)).shape == (0, 10)
    ev = evaluate(model, empty, device="cpu")
    assert ev.probabilities.shape == (0, 10) and len(ev.predictions) == 0


def test_evaluate_predict_and_features_leave_the_model_as_they_found_it(model):
    data = digits(9)
    for mode in (True, False):
        model.train(mode)
        evaluate(model, data, batch_size=4, device="cpu")
        predict_proba(model, data.batch(torch.arange(9))[0], batch_size=4)
        extract_features(model, data, batch_size=4, device="cpu")
        assert model.training is mode
        assert next(model.parameters()).device.type == "cpu"


def test_batched_under_bfloat16_autocast_is_close_to_float32(model):
    data = digits(16)
    fp32 = batched(model, data, batch_size=8)
    bf16 = batched(model, data, batch_size=8, autocast_dtype=torch.bfloat16)
    assert bf16.dtype == torch.float32  # the default fn returns float32 logits either way
    assert not torch.equal(bf16, fp32)  # it did compute in bfloat16
    assert_close(bf16, fp32, atol=0.1, rtol=0.05)  # 8 significant bits, on logits of size about 1


def test_validate_is_evaluate_in_float32(model):
    data = digits(30)
    loss, acc = validate(model, data, torch.device("cpu"), batch_size=7)
    ev = evaluate(model, data, batch_size=7, device="cpu")
    assert acc == pytest.approx(ev.accuracy)
    expected = -ev.probabilities[torch.arange(30), data.labels].log().mean().item()
    assert loss == pytest.approx(expected, rel=1e-5)
    assert all(v != v for v in validate(model, None, torch.device("cpu")))  # no data: nan, nan


# ---------------------------------------------------------------- a run's folder


def test_save_run_then_resume_run_restores_every_state(model, tmp_path):
    data = digits(8)
    optimizer = make_optimizer(model)
    scheduler = warmup_cosine_schedule(optimizer, steps_per_epoch=4, epochs=2)
    generator = torch.Generator().manual_seed(5)
    settings = {"epochs": 2, "seed": 5}
    assert resume_run(tmp_path, model, optimizer, scheduler, generator, settings) is None  # nothing saved yet

    start_run(tmp_path, model, snapshot=True)
    assert json.loads((tmp_path / "config.json").read_text()) == model.config.to_dict()
    assert read_checkpoint(tmp_path / "snapshots" / "epoch_000.pt")["epoch"] == 0
    x, y = data.batch(torch.arange(8))
    torch.nn.functional.cross_entropy(model(x), y).backward()
    optimizer.step()
    scheduler.step()
    history = History(epoch=[1], train_loss=[2.0])
    save_run(tmp_path, model, 1, optimizer=optimizer, scheduler=scheduler, generator=generator,
             history=history.to_dict(), settings=settings, data=data, snapshot_epochs=(1,))
    assert json.loads((tmp_path / "history.json").read_text()) == history.to_dict()
    assert (tmp_path / "snapshots" / "epoch_001.pt").is_file()
    draws = torch.rand(3, generator=generator), torch.rand(3)

    torch.manual_seed(9)
    other = ViT(model.config)
    other_optimizer = make_optimizer(other)
    other_scheduler = warmup_cosine_schedule(other_optimizer, steps_per_epoch=4, epochs=2)
    other_generator = torch.Generator()
    epoch, saved = resume_run(tmp_path, other, other_optimizer, other_scheduler, other_generator, settings)
    assert epoch == 1 and History.from_dict(saved).train_loss == [2.0]
    for k, v in model.state_dict().items():
        assert torch.equal(other.state_dict()[k], v), k
    assert other_scheduler.state_dict() == scheduler.state_dict()
    ours, theirs = optimizer.state_dict(), other_optimizer.state_dict()
    assert theirs["param_groups"] == ours["param_groups"] and theirs["state"].keys() == ours["state"].keys()
    for i, state in ours["state"].items():
        assert all(torch.equal(theirs["state"][i][k], v) for k, v in state.items()), i
    assert torch.equal(torch.rand(3, generator=other_generator), draws[0])  # both generators where they were
    assert torch.equal(torch.rand(3), draws[1])

    with pytest.raises(VitTutorialError, match=r"other settings \(seed\)"):
        resume_run(tmp_path, other, other_optimizer, other_scheduler, other_generator, {"epochs": 2, "seed": 6})
    with pytest.raises(VitTutorialError, match="another configuration"):
        resume_run(tmp_path, ViT(preset("tiny", depth=1)), other_optimizer, other_scheduler, other_generator,
                   settings)

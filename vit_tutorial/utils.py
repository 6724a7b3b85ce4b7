"""Small helpers every notebook and the command line share."""

from __future__ import annotations

import dataclasses
import os
import random
import tempfile
from pathlib import Path

import torch

from .errors import VitTutorialError


def set_seed(seed: int = 0) -> None:
    """Seed Python's and PyTorch's generators (CPU and CUDA) in one call."""
    random.seed(seed)
    torch.manual_seed(seed)
    try:
        import numpy as np

        np.random.seed(seed)
    except ImportError:  # pragma: no cover
        pass


def default_device() -> torch.device:
    """CUDA when there is a GPU, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """``device`` as a ``torch.device`` (None: ``default_device()``), refused in one line where it cannot run here.

    A mistyped name (``--device gpu``) or CUDA on a machine without a GPU is a ``VitTutorialError``,
    not torch's traceback, and it comes before any data is read or any weight is moved.
    """
    if device is None:
        return default_device()
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise VitTutorialError(f"unknown device {str(device)!r}: use cpu or cuda (cuda:N for GPU N)") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise VitTutorialError(f"device {str(device)!r} asked for, but torch sees no CUDA GPU on this "
                                   "machine; use cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise VitTutorialError(f"device {str(device)!r} asked for, but this machine has "
                                   f"{torch.cuda.device_count()} CUDA GPU(s), numbered from 0")
    elif dev.type == "mps":
        if not torch.backends.mps.is_available():
            raise VitTutorialError(f"device {str(device)!r} asked for, but this machine has no Apple GPU; use cpu")
    elif dev.type != "cpu":
        raise VitTutorialError(f"device {str(device)!r}: this book runs on cpu, cuda or mps")
    return dev


def quick_mode() -> bool:
    """True when the environment variable VIT_TUTORIAL_QUICK is set to 1 (as in CI)."""
    return os.environ.get("VIT_TUTORIAL_QUICK", "0").strip().lower() in ("1", "true", "yes")


def atomic_write(path: str | Path, write) -> None:
    """Call ``write(file)`` on a temporary file beside ``path``, then rename it to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes the file private; give it the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def project_root(start: str | Path | None = None) -> Path:
    """The repository root (the folder with pyproject.toml), found from ``start`` or the working directory."""
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "pyproject.toml").is_file() and (folder / "vit_tutorial").is_dir():
            return folder
    return here


def shown_path(path: str | Path) -> str:
    """``path`` as a reader should see it: relative to the project (or the working directory) when inside it.

    Printed paths never carry the folder a clone happens to live in.
    """
    path = Path(path)
    if not path.is_absolute():
        return str(path)
    resolved = path.resolve()
    for base in (project_root(Path(__file__).parent), Path.cwd().resolve()):
        try:
            return str(resolved.relative_to(base))
        except ValueError:
            continue
    return str(path)


class ConfigDict:
    """JSON round trip and ``replace`` for the configuration dataclasses (``ViTConfig``, ``CNNConfig``)."""

    def to_dict(self) -> dict:
        """The fields as JSON-ready values: tuples become lists."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict):
        from .errors import VitTutorialError

        unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise VitTutorialError(f"unknown {cls.__name__} fields: {', '.join(sorted(unknown))}")
        return cls(**d)

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)

"""Small helpers every notebook and the command line share."""

from __future__ import annotations

import dataclasses
import os
import random
import tempfile
from pathlib import Path

import torch


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

"""Small helpers every notebook and the command line share."""

from __future__ import annotations

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

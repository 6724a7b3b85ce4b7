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

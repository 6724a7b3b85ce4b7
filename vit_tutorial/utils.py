"""Small helpers every notebook and the command line share."""

from __future__ import annotations

import os
import random

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

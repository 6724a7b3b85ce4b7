"""Saving and loading models without ever unpickling arbitrary objects.

A checkpoint is one ``torch.save`` file holding only tensors, numbers,
strings, lists and dicts, so it loads with ``torch.load(weights_only=True)``.
The model's configuration travels inside it as a JSON string. Every write
goes to a temporary file first and is then renamed over the target, so an
interrupted write never destroys the previous checkpoint.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from .config import ViTConfig
from .errors import VitTutorialError
from .model import ViT
from .utils import atomic_write

FORMAT = "vit_tutorial/1"


def save_checkpoint(path: str | Path, model: ViT, **state) -> None:
    """Write the model's weights and config, plus any extra ``state`` (optimizer, history, ...)."""
    payload = {"format": FORMAT, "config": json.dumps(model.config.to_dict()),
               "model": {k: v.detach().cpu() for k, v in model.state_dict().items()}, **state}
    atomic_write(path, lambda f: torch.save(payload, f))


def read_checkpoint(path: str | Path) -> dict:
    """The raw contents of a checkpoint, checked; a clear error for anything else."""
    path = Path(path)
    if not path.is_file():
        raise VitTutorialError(f"checkpoint not found: {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - torch raises many kinds for a damaged file
        raise VitTutorialError(f"cannot read checkpoint {path}: the file is corrupt or not a "
                               f"vit_tutorial checkpoint ({type(e).__name__})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT or "config" not in payload:
        raise VitTutorialError(f"{path} is not a vit_tutorial checkpoint")
    return payload


def model_from_payload(payload: dict, path: str | Path = "checkpoint") -> ViT:
    try:
        config = ViTConfig.from_dict(json.loads(payload["config"]))
    except (ValueError, TypeError, VitTutorialError) as e:
        raise VitTutorialError(f"{path} has an invalid model config: {e}") from None
    try:
        model = ViT(config)
        model.load_state_dict(payload["model"])
    except (RuntimeError, KeyError, TypeError, ValueError) as e:
        first = str(e).strip().splitlines()
        raise VitTutorialError(f"{path}: the weights do not fit the saved config "
                               f"({first[0] if first else type(e).__name__})") from None
    return model.eval()


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> ViT:
    """A ready model (in eval mode) from a checkpoint written by ``fit`` or ``save_checkpoint``."""
    return model_from_payload(read_checkpoint(path), path).to(device)

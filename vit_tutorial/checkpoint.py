"""Saving and loading models without ever unpickling arbitrary objects.

A checkpoint is one ``torch.save`` file holding only tensors, numbers,
strings, lists and dicts, so it loads with ``torch.load(weights_only=True)``.
The model's configuration travels inside it as a JSON string. Every write
goes to a temporary file first and is then renamed over the target, so an
interrupted write never destroys the previous checkpoint.

A training run is a folder: ``fit`` writes it through ``start_run`` and
``save_run`` (after every epoch), and picks it up again with ``resume_run``.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from .cnn import CNN, CNNConfig
from .config import ViTConfig
from .errors import VitTutorialError
from .model import ViT
from .utils import atomic_write

FORMAT = "vit_tutorial/1"


# What a checkpoint's "kind" names: the model class and its config class.
KINDS = {"vit": (ViT, ViTConfig), "cnn": (CNN, CNNConfig)}


def cpu_state(model: torch.nn.Module) -> dict:
    """The model's state dict, detached and on the CPU, as checkpoints store it."""
    return {k: v.detach().cpu() for k, v in model.state_dict().items()}


def save_checkpoint(path: str | Path, model: ViT | CNN, **state) -> None:
    """Write the model's weights and config, plus any extra ``state`` (optimizer, history, ...)."""
    kind = "cnn" if isinstance(model, CNN) else "vit"
    payload = {"format": FORMAT, "kind": kind, "config": json.dumps(model.config.to_dict()),
               "model": cpu_state(model), **state}
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


def config_from_payload(payload: dict, path: str | Path = "checkpoint") -> ViTConfig | CNNConfig:
    """The model's config a checkpoint holds (a field added since it was saved takes its default)."""
    kind = payload.get("kind", "vit")  # checkpoints from before the CNN baseline hold ViTs
    if kind not in KINDS:
        raise VitTutorialError(f"{path} holds a model of unknown kind {kind!r}")
    try:
        return KINDS[kind][1].from_dict(json.loads(payload["config"]))
    except (ValueError, TypeError) as e:
        raise VitTutorialError(f"{path} has an invalid model config: {e}") from None


def model_from_payload(payload: dict, path: str | Path = "checkpoint") -> ViT | CNN:
    config = config_from_payload(payload, path)
    model_class = KINDS[payload.get("kind", "vit")][0]
    try:
        model = model_class(config)
        model.load_state_dict(payload["model"])
    except (RuntimeError, KeyError, TypeError, ValueError) as e:
        first = str(e).strip().splitlines()
        raise VitTutorialError(f"{path}: the weights do not fit the saved config "
                               f"({first[0] if first else type(e).__name__})") from None
    return model.eval()


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> ViT:
    """A ready model (in eval mode) from a checkpoint written by ``fit`` or ``save_checkpoint``."""
    return model_from_payload(read_checkpoint(path), path).to(device)


def checkpoint_dataset(payload: dict) -> dict | None:
    """The data a checkpoint's model was trained on: {"name", "image_shape" [C, H, W], "classes"}, or None.

    ``fit`` records it. For older checkpoints (and data without a name) it
    is inferred from the class names when these are exactly one dataset's
    (the digits 0-9 are MNIST's), with the image shape of the saved config;
    otherwise None.
    """
    record = payload.get("dataset")
    if isinstance(record, dict) and isinstance(record.get("name"), str) and record["name"]:
        return record
    from .data import CLASSES

    classes = record.get("classes") if isinstance(record, dict) else None
    classes = classes or payload.get("classes")
    if not isinstance(classes, (list, tuple)):
        return None
    names = [name for name, known in CLASSES.items() if list(classes) == known and name != "mnist-sample"]
    if len(names) != 1:
        return None
    try:
        config = json.loads(payload["config"])
        shape = [config["in_channels"], config["image_size"], config["image_size"]]
    except (KeyError, TypeError, ValueError):
        shape = None
    return {"name": names[0], "image_shape": shape, "classes": list(classes)}


def check_dataset(payload: dict, dataset_name: str, path: str | Path = "checkpoint") -> None:
    """Refuse to use a checkpoint on another dataset than its own (nothing to check when it is unknown).

    The MNIST sample and the full MNIST count as one: the same kind of digits.
    """
    from .data import same_images

    record = checkpoint_dataset(payload)
    if record is not None and not same_images(record["name"], dataset_name):
        raise VitTutorialError(f"{path} was trained on {record['name']}, not {dataset_name}")


# --- A training run on disk: what fit writes after every epoch, and reads back to resume -----------


def dataset_record(data) -> dict:
    """What a checkpoint records of the ``ImageDataset`` it was trained on: name, image shape (C, H, W), classes."""
    return {"name": data.name, "image_shape": list(data.image_shape), "classes": list(data.classes)}


def check_run_folder(out_dir: str | Path, resume: bool = False, overwrite: bool = False) -> None:
    """Refuse to train into a folder that holds a checkpoint, unless told to resume it or to train over it."""
    if (Path(out_dir) / "checkpoint.pt").exists() and not (resume or overwrite):
        raise VitTutorialError(f"{out_dir} already holds a checkpoint.pt: add --resume to continue (or score) that "
                               "run, --overwrite to train anew over it, or choose another --out")


def start_run(out_dir: str | Path, model: ViT | CNN, snapshot: bool = False) -> None:
    """Write ``out_dir/config.json`` (the model's config, readable without torch) and, with ``snapshot``,
    the untrained weights as ``out_dir/snapshots/epoch_000.pt``."""
    out = Path(out_dir)
    atomic_write(out / "config.json", lambda f: f.write(json.dumps(model.config.to_dict(), indent=2).encode()))
    if snapshot:
        save_checkpoint(out / "snapshots" / "epoch_000.pt", model, epoch=0)


def save_run(out_dir: str | Path, model: ViT | CNN, epoch: int, *, optimizer, scheduler, generator: torch.Generator,
             history: dict, settings: dict, data, snapshot_epochs=(), average=None) -> None:
    """Save a run after ``epoch``: ``checkpoint.pt`` holds all that ``resume_run`` needs (weights, optimizer,
    schedule, both random generators, ``history`` as a dict, the training ``settings``), ``history.json`` the
    history alone; an epoch in ``snapshot_epochs`` also keeps its weights under ``snapshots/``.

    With a weight ``average`` (``fit(ema=...)``) the checkpoint's model and the snapshots are the average;
    the trained ``model``'s weights are kept beside it, as ``train_weights``, with the average's step count,
    so that ``resume_run`` goes on from both."""
    out = Path(out_dir)
    record = dataset_record(data)
    extra = {}
    if average is not None:
        extra = dict(train_weights=cpu_state(model), average_steps=average.steps)
        model = average.model
    save_checkpoint(out / "checkpoint.pt", model, epoch=epoch, optimizer=optimizer.state_dict(),
                    scheduler=scheduler.state_dict(), generator=generator.get_state(),
                    torch_rng=torch.get_rng_state(), history=history, train_settings=json.dumps(settings),
                    classes=list(data.classes), dataset=record, **extra)
    atomic_write(out / "history.json", lambda f: f.write(json.dumps(history, indent=1).encode()))
    if epoch in snapshot_epochs:
        save_checkpoint(out / "snapshots" / f"epoch_{epoch:03d}.pt", model, epoch=epoch,
                        classes=list(data.classes), dataset=record)


def resume_run(out_dir: str | Path, model: ViT | CNN, optimizer, scheduler, generator: torch.Generator,
               settings: dict, average=None) -> tuple[int, dict] | None:
    """Load an interrupted run from ``out_dir/checkpoint.pt`` into ``model``, ``optimizer``, ``scheduler``,
    ``generator`` and torch's global generator; return (its last finished epoch, its history as a dict).

    None when there is no checkpoint yet. Refuses a checkpoint written with
    other ``settings`` or for a model of another configuration.
    """
    path = Path(out_dir) / "checkpoint.pt"
    if not path.exists():
        return None
    state = read_checkpoint(path)
    saved_settings = json.loads(state.get("train_settings", "{}"))
    changed = sorted(k for k in set(settings) | set(saved_settings) if settings.get(k) != saved_settings.get(k))
    if changed:
        raise VitTutorialError(f"{path} was written with other settings ({', '.join(changed)}); "
                               f"resume with the same settings or choose another --out")
    saved = model_from_payload(state, path)
    if type(saved) is not type(model) or saved.config != model.config:
        raise VitTutorialError(f"{path} holds a model of another configuration")
    if average is not None:  # the checkpoint's model is the average; the training weights are kept beside it
        if "train_weights" not in state:
            raise VitTutorialError(f"{path} holds no training weights beside its average; start the run afresh")
        average.model.load_state_dict(saved.state_dict())
        average.steps = int(state["average_steps"])
        model.load_state_dict(state["train_weights"])
    else:
        model.load_state_dict(saved.state_dict())  # copies into the model's own tensors, on its device
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    generator.set_state(state["generator"])
    torch.set_rng_state(state["torch_rng"])  # dropout draws from the global generator
    return int(state["epoch"]), state["history"]

"""Where the book keeps things, and the one trained MNIST model the later notebooks share."""

from __future__ import annotations

from pathlib import Path

from .checkpoint import model_from_payload, read_checkpoint
from .config import preset
from .data import Splits, load_dataset
from .model import ViT
from .training import QUICK_TRAIN_SIZE, History, fit, recipe
from .utils import quick_mode


def project_root(start: str | Path | None = None) -> Path:
    """The repository root (the folder with pyproject.toml), found from ``start`` or the working directory."""
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "pyproject.toml").is_file() and (folder / "vit_tutorial").is_dir():
            return folder
    return here


ROOT = project_root(Path(__file__).parent)
DATA = ROOT / "data"
RUNS = ROOT / "runs"
# The book's figures; quick runs (tests, CI) write theirs aside so they never replace the real ones.
IMAGES = RUNS / "images-quick" if quick_mode() else ROOT / "images"
IMAGES.mkdir(parents=True, exist_ok=True)


def snapshot_epochs(epochs: int) -> list:
    """Epochs at which the book keeps a copy of the weights: 0, 1, 2, 5, 10, 20, ... and the last."""
    marks = {0, 1, 2, epochs}
    k = 5
    while k < epochs:
        marks.add(k)
        k *= 2
    return sorted(m for m in marks if m <= epochs)


def run_dir(dataset: str = "mnist", quick: bool | None = None) -> Path:
    """runs/<dataset> for the full book, runs/<dataset>-quick for quick mode."""
    quick = quick_mode() if quick is None else quick
    return RUNS / (f"{dataset}-quick" if quick else dataset)


def training_set(splits: Splits, quick: bool | None = None, seed: int = 0):
    """The training images the book uses: all of them, or 1,000 in quick mode."""
    quick = quick_mode() if quick is None else quick
    return splits.train.sample(QUICK_TRAIN_SIZE, seed) if quick else splits.train


def train_or_load(dataset: str = "mnist", quick: bool | None = None, retrain: bool = False,
                  progress: bool = True, seed: int = 0, splits: Splits | None = None):
    """The book's model for ``dataset``: loaded from its run folder if a finished run is there,
    else trained with the dataset's preset and recipe (and saved there).

    Returns ``(model, history, splits)``.
    """
    quick = quick_mode() if quick is None else quick
    splits = splits or load_dataset(dataset, DATA)
    out = run_dir(dataset, quick)
    kwargs = recipe(dataset, quick=quick, full=splits.full)
    ckpt = out / "checkpoint.pt"
    if ckpt.exists() and not retrain:
        payload = read_checkpoint(ckpt)
        if int(payload.get("epoch", -1)) == kwargs["epochs"]:
            return model_from_payload(payload, ckpt), History.from_dict(payload["history"]), splits
    model = ViT(preset(dataset))
    history = fit(model, training_set(splits, quick, seed), splits.val, **kwargs, seed=seed, out_dir=out,
                  resume=not retrain, snapshot_epochs=snapshot_epochs(kwargs["epochs"]), progress=progress)
    return model.cpu(), history, splits

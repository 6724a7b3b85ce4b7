"""vit_tutorial: a Vision Transformer built piece by piece, trained on small images, and opened up.

The finished code of the book: the notebooks, the command line
(``python -m vit_tutorial``) and the tests all use these pieces.
"""

from .attention import Attention
from .checkpoint import load_checkpoint, save_checkpoint
from .config import PRESETS, ViTConfig, preset
from .data import ImageDataset, Splits, load_dataset
from .encoder import MLP, Block
from .errors import VitTutorialError
from .evaluation import Evaluation, evaluate, predict_proba
from .model import ViT, from_torchvision
from .patches import PatchEmbed, patchify
from .training import History, fit
from .utils import default_device, quick_mode, set_seed

__version__ = "0.1.0"

__all__ = [
    "Attention", "Block", "Evaluation", "History", "ImageDataset", "MLP", "PRESETS", "PatchEmbed",
    "Splits", "ViT", "ViTConfig", "VitTutorialError", "default_device", "evaluate", "fit",
    "from_torchvision", "load_checkpoint", "load_dataset", "patchify", "predict_proba", "preset",
    "quick_mode", "save_checkpoint", "set_seed",
]

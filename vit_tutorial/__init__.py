"""vit_tutorial: a Vision Transformer built piece by piece, trained on small images, and opened up.

The finished code of the book: the notebooks, the command line
(``python -m vit_tutorial``) and the tests all use these pieces.
"""

from .attention import Attention
from .checkpoint import load_checkpoint, save_checkpoint
from .cnn import CNN, CNNConfig
from .config import ViTConfig, build_model, preset
from .data import ImageDataset, Splits, load_dataset
from .encoder import MLP, Block
from .errors import VitTutorialError
from .evaluation import Evaluation, evaluate, mcnemar, predict_proba, wilson_interval
from .model import ViT, from_torchvision
from .patches import ConvStem, PatchEmbed, patchify
from .prepare import prepare_image
from .registry import PRESETS, list_models
from .training import History, fit
from .utils import default_device, quick_mode, set_seed

__version__ = "0.1.0"

__all__ = [
    "Attention", "Block", "CNN", "CNNConfig", "ConvStem", "Evaluation", "History", "ImageDataset", "MLP",
    "PRESETS", "PatchEmbed", "Splits", "ViT", "ViTConfig", "VitTutorialError", "build_model",
    "default_device", "evaluate", "fit", "from_torchvision", "list_models", "load_checkpoint", "load_dataset",
    "mcnemar", "patchify", "predict_proba", "prepare_image", "preset", "quick_mode", "save_checkpoint", "set_seed",
    "wilson_interval",
]

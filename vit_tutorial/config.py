"""Model configuration: one small dataclass and a few named presets."""

from __future__ import annotations

import math
from dataclasses import dataclass

from .errors import VitTutorialError
from .utils import ConfigDict


@dataclass
class ViTConfig(ConfigDict):
    """Everything needed to build a :class:`~vit_tutorial.model.ViT`.

    The defaults are the MNIST model of this book.
    """

    image_size: int = 28  # side of the (square) input image, pixels
    patch_size: int = 7  # side P of one square patch; image_size must be a multiple
    in_channels: int = 1  # C: 1 for grey digits, 3 for colour images
    num_classes: int = 10
    embed_dim: int = 64  # D: width of every token
    depth: int = 4  # number of encoder blocks
    num_heads: int = 4  # h: attention heads; embed_dim must be a multiple
    mlp_ratio: float = 2.0  # hidden width of the MLP = mlp_ratio * embed_dim
    # "patch": a P x P patch embedding (a Conv2d with kernel = stride = P), as in the paper's ViT;
    # "conv": the paper's hybrid, a small CNN whose feature map is cut into 1x1 patches. Its
    # stages are 3x3 convolutions with these output channels and strides; patch_size must then
    # equal the product of the strides (the pixels one token stands for).
    # "shifted": shifted patch tokens (Lee et al., 2021): each P x P patch together with the same
    # patch of four copies of the image moved half a patch diagonally, then one linear layer.
    stem: str = "patch"
    stem_channels: tuple[int, ...] = (32, 64)
    stem_strides: tuple[int, ...] = (2, 2)
    pos_embed: str = "learned"  # "learned" (trained, as in the paper) or "sincos" (fixed 2-D)
    # Locality self-attention (Lee et al., 2021): a learned scale per head, no token attends to itself.
    lsa: bool = False
    pool: str = "cls"  # "cls": head reads the class token; "mean": mean of the patch tokens
    dropout: float = 0.0  # dropout after embeddings, in the MLP and after attention
    qkv_bias: bool = True
    layer_norm_eps: float = 1e-6  # as in the reference ViT code
    # Input normalisation, stored in the model so that it takes images in [0, 1].
    mean: tuple[float, ...] = (0.1307,)
    std: tuple[float, ...] = (0.3081,)

    def __post_init__(self) -> None:
        self.mean = tuple(float(m) for m in self.mean)
        self.std = tuple(float(s) for s in self.std)
        self.stem_channels = tuple(self.stem_channels)
        self.stem_strides = tuple(self.stem_strides)
        problems = []
        for name in ("image_size", "patch_size", "in_channels", "num_classes", "embed_dim", "depth", "num_heads"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < (0 if name == "depth" else 1):
                problems.append(f"{name} must be a positive integer, not {value!r}")
        if not self.mlp_ratio > 0:
            problems.append(f"mlp_ratio must be positive, not {self.mlp_ratio!r}")
        if not 0 <= self.dropout < 1:
            problems.append(f"dropout must be in [0, 1), not {self.dropout!r}")
        if problems:
            raise VitTutorialError("invalid ViTConfig: " + "; ".join(problems))
        if self.image_size % self.patch_size:
            problems.append(f"image_size {self.image_size} is not a multiple of patch_size {self.patch_size}")
        if self.embed_dim % self.num_heads:
            problems.append(f"embed_dim {self.embed_dim} is not a multiple of num_heads {self.num_heads}")
        if self.stem not in ("patch", "conv", "shifted"):
            problems.append(f"stem must be 'patch', 'conv' or 'shifted', not {self.stem!r}")
        if self.stem == "shifted" and self.patch_size < 2:
            problems.append("stem='shifted' needs a patch_size of at least 2 (it moves the image half a patch)")
        if not isinstance(self.lsa, bool):
            problems.append(f"lsa must be True or False, not {self.lsa!r}")
        if self.stem == "conv":
            if len(self.stem_channels) != len(self.stem_strides) or not all(
                    isinstance(v, int) and v >= 1 for v in (*self.stem_channels, *self.stem_strides)):
                problems.append("stem_channels and stem_strides need one positive integer per stage")
            elif self.patch_size != math.prod(self.stem_strides):
                problems.append(f"with stem='conv', patch_size must be the product of stem_strides "
                                f"({math.prod(self.stem_strides)}), not {self.patch_size}")
        if self.pos_embed not in ("learned", "sincos"):
            problems.append(f"pos_embed must be 'learned' or 'sincos', not {self.pos_embed!r}")
        if self.pos_embed == "sincos" and self.embed_dim % 4:
            problems.append(f"sincos position embeddings need embed_dim divisible by 4, got {self.embed_dim}")
        if self.pool not in ("cls", "mean"):
            problems.append(f"pool must be 'cls' or 'mean', not {self.pool!r}")
        if len(self.mean) != self.in_channels or len(self.std) != self.in_channels:
            problems.append(f"mean and std need one value per channel ({self.in_channels})")
        if any(s <= 0 for s in self.std):
            problems.append("std values must be positive")
        if problems:
            raise VitTutorialError("invalid ViTConfig: " + "; ".join(problems))

    @property
    def grid_size(self) -> int:
        """Patches along one side of the image."""
        return self.image_size // self.patch_size

    @property
    def num_patches(self) -> int:
        """N, the number of patch tokens (the class token not counted)."""
        return self.grid_size**2

    @property
    def mlp_dim(self) -> int:
        return int(round(self.embed_dim * self.mlp_ratio))



# Mean and standard deviation of the training images, per channel.
MNIST_MEAN, MNIST_STD = (0.1307,), (0.3081,)
FASHION_MEAN, FASHION_STD = (0.2860,), (0.3530,)
CIFAR10_MEAN, CIFAR10_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)

PRESETS: dict[str, ViTConfig] = {
    # Small enough for unit tests and smoke runs: a forward pass is a few milliseconds.
    "tiny": ViTConfig(embed_dim=32, depth=2, num_heads=2, mlp_ratio=2.0),
    # The book's MNIST model: 16 patches of 7x7.
    "mnist": ViTConfig(
        image_size=28, patch_size=7, in_channels=1, num_classes=10,
        embed_dim=64, depth=4, num_heads=4, mlp_ratio=2.0,
        mean=MNIST_MEAN, std=MNIST_STD,
    ),
    # Clothes need finer patches and a wider model than digits. The plain ViT of notebooks 10 and 11;
    # the book's fashion-mnist preset (below) is this model with locality built in.
    "fashion-mnist-plain": ViTConfig(
        image_size=28, patch_size=4, in_channels=1, num_classes=10,
        embed_dim=128, depth=6, num_heads=8, mlp_ratio=2.0,
        mean=FASHION_MEAN, std=FASHION_STD,
    ),
    "cifar10": ViTConfig(
        image_size=32, patch_size=4, in_channels=3, num_classes=10,
        embed_dim=192, depth=6, num_heads=6, mlp_ratio=2.0,
        mean=CIFAR10_MEAN, std=CIFAR10_STD,
    ),
    # The hybrids (section 3.1 of the paper): a convolutional stem, then an encoder on its
    # 7 x 7 feature map. For MNIST the stem is the CNN baseline's five convolutions (a stride-2
    # convolution where the CNN max-pools) and the encoder is the MNIST model's, two blocks deep.
    # Chosen by cross-validation on the 4,500 non-test digits (benchmarks/cv_recipes.py, 3 folds,
    # two splits): 98.93 and 98.89 %, against 98.11 and 98.29 % for the earlier stem of two
    # stride-2 stages under four blocks (53 digits against 16, p = 1e-5; 43 against 16, p = 6e-4;
    # benchmarks/results/cv-recipes-mnist-hybrid-trunk-zen4-cpu-2core-2026-12-03.txt).
    "mnist-hybrid": ViTConfig(
        image_size=28, patch_size=4, in_channels=1, num_classes=10,
        embed_dim=64, depth=2, num_heads=4, mlp_ratio=2.0,
        stem="conv", stem_channels=(32, 32, 64, 64, 128), stem_strides=(1, 2, 1, 2, 1),
        mean=MNIST_MEAN, std=MNIST_STD,
    ),
    # For clothes: one more stage at full resolution, and the fashion-mnist-plain encoder.
    "fashion-mnist-hybrid": ViTConfig(
        image_size=28, patch_size=4, in_channels=1, num_classes=10,
        embed_dim=128, depth=6, num_heads=8, mlp_ratio=2.0,
        stem="conv", stem_channels=(32, 64, 128), stem_strides=(1, 2, 2),
        mean=FASHION_MEAN, std=FASHION_STD,
    ),
}


def _cnn_presets() -> dict:
    from .cnn import CNNConfig

    # The convolutional baselines: five 3x3 convolutions, no more parameters than the hybrids.
    return {
        "mnist-cnn": CNNConfig(mean=MNIST_MEAN, std=MNIST_STD),
        "fashion-mnist-cnn": CNNConfig(mean=FASHION_MEAN, std=FASHION_STD),
    }


CNN_PRESETS: dict = _cnn_presets()


def preset(name: str, **changes):
    """A copy of a named preset (a ``ViTConfig``, or a ``CNNConfig`` for ``*-cnn``), with some fields changed."""
    if name in PRESETS:
        return PRESETS[name].replace(**changes)
    if name in CNN_PRESETS:
        return CNN_PRESETS[name].replace(**changes)
    raise VitTutorialError(f"unknown preset {name!r}; choose one of {', '.join([*PRESETS, *CNN_PRESETS])}")


def build_model(config):
    """The model a configuration describes: a ``ViT`` for a ``ViTConfig``, a ``CNN`` for a ``CNNConfig``."""
    from .cnn import CNN, CNNConfig
    from .model import ViT

    if isinstance(config, str):
        config = preset(config)
    return CNN(config) if isinstance(config, CNNConfig) else ViT(config)


# The training recipe for each dataset or preset: keyword arguments of fit. A preset's own
# recipe (e.g. "mnist-hybrid") wins over its dataset's.
RECIPES: dict[str, dict] = {
    "mnist": dict(epochs=15, batch_size=64, lr=2e-3, weight_decay=0.05, warmup_epochs=2,
                  label_smoothing=0.1, augment="digits"),
    "fashion-mnist": dict(epochs=30, batch_size=128, lr=1e-3, weight_decay=0.05, warmup_epochs=2,
                          label_smoothing=0.1, augment="clothes"),
    "cifar10": dict(epochs=50, batch_size=128, lr=1e-3, weight_decay=0.05, warmup_epochs=3,
                    label_smoothing=0.1, augment="photos"),
}
# The hybrids, the CNN baselines and the plain ViT train with their dataset's recipe: the comparison changes the
# model only.
for _dataset, _kinds in (("mnist", ("hybrid", "cnn")), ("fashion-mnist", ("hybrid", "cnn", "plain"))):
    for _kind in _kinds:
        RECIPES[f"{_dataset}-{_kind}"] = dict(RECIPES[_dataset])
# The book's pure ViT for clothes: the plain one with locality built in, still without a convolution (Lee et al.,
# 2021, "Vision Transformer for Small-Size Datasets", arXiv 2112.13492): shifted patch tokens and locality
# self-attention; 813,530 parameters. On the validation images (30 epochs, seed 0): 91.76 % alone, 92.46 % taught
# by the CNN (below), against 89.62 % and 90.66 % for the plain one
# (benchmarks/results/fashion-spt-lsa-cpu-2core-2026-11-28.txt). Two seeds scored once on the test images
# (2026-12-07): 91.97 and 92.28 %; seed 0 ships as checkpoints/fashion-mnist.pt
# (benchmarks/results/accuracy-fashion-mnist-spt-lsa-seeds-zen4-cpu-2core-2026-12-07.txt). Until 2026-12-07 the
# name fashion-mnist meant the plain ViT, and this model was fashion-mnist-spt-lsa (the same model and recipe,
# kept under that name too, so that the commands in benchmarks/results/ still run).
PRESETS["fashion-mnist"] = PRESETS["fashion-mnist-plain"].replace(stem="shifted", lsa=True)
PRESETS["fashion-mnist-spt-lsa"] = PRESETS["fashion-mnist"].replace()
RECIPES["fashion-mnist-spt-lsa"] = dict(RECIPES["fashion-mnist"])
# The plain ViT once more, taught by the CNN baseline: the fashion-mnist-plain model and recipe, plus soft
# distillation (Hinton et al., 2015; as in DeiT, Touvron et al., 2021, arXiv 2012.12877): half of its
# loss is the KL divergence from the CNN's probabilities (temperature 2) on the same augmented batch.
# Chosen on the validation images among hard, soft, soft with weight 0.9 and soft with batch 64
# (89.80, 90.66, 90.50, 90.16 %; benchmarks/results/fashion-distillation-cpu-2core-2026-11-28.txt).
# Named fashion-mnist-distilled until 2026-12-07; it ships as its test row in checkpoints/results/models/.
PRESETS["fashion-mnist-plain-distilled"] = PRESETS["fashion-mnist-plain"].replace()
RECIPES["fashion-mnist-plain-distilled"] = dict(RECIPES["fashion-mnist"], teacher="fashion-mnist-cnn",
                                                distill="soft", distill_weight=0.5, distill_temperature=2.0)
# The fashion-mnist ViT taught by the CNN in the same way: the book's best ViT without convolutions, shipped as
# checkpoints/fashion-mnist-spt-lsa-distilled.pt.
PRESETS["fashion-mnist-spt-lsa-distilled"] = PRESETS["fashion-mnist"].replace()
RECIPES["fashion-mnist-spt-lsa-distilled"] = dict(RECIPES["fashion-mnist-plain-distilled"])
# The hybrid with locality self-attention, taught by the CNN as above: the fashion-mnist-hybrid model with lsa=True
# (912,410 parameters) and the teacher of fashion-mnist-plain-distilled. On the validation images (30 epochs, seed 0):
# 94.38 %, against 93.38 % for the shipped hybrid (p = 1e-4) and 93.64 % for the CNN (p = 0.004); on the test
# images, scored once, 93.69 % (benchmarks/results/fashion-hybrid-lsa-distilled-cpu-2core-2026-12-02.txt).
# Seed 1 of the same recipe, tested whatever it scored: 94.30 % validation, 93.52 % test
# (benchmarks/results/accuracy-fashion-mnist-hybrid-lsa-distilled-seed1-zen4-cpu-2core-2026-12-06.txt).
PRESETS["fashion-mnist-hybrid-lsa-distilled"] = PRESETS["fashion-mnist-hybrid"].replace(lsa=True)
RECIPES["fashion-mnist-hybrid-lsa-distilled"] = dict(RECIPES["fashion-mnist-plain-distilled"])
# On the 5,000-digit offline MNIST sample an epoch is 14 times shorter than on the
# full set, so it trains for more epochs, chosen by cross-validation on the 4,500
# non-test digits (benchmarks/cv_epochs.py, 3 folds; benchmarks/results/cv-epochs-*).
# The mnist preset: 80 epochs 96.6 %, 120 epochs 97.5 %, 160 epochs 98.0 % (p = 0.03
# against 120), 200 epochs 98.0 % (a tie with 160, p = 0.9). The mnist-hybrid preset (the
# CNN-trunk stem since 2026-12-03): 60 epochs 99.00 / 98.73 % against 80 epochs 98.93 / 98.89 %
# on two splits into 3 folds, and 99.22 against 99.20 % on 9 folds of 4,000 digits (p = 1), a
# tie for a quarter less training, so 60 (since 2026-12-06; benchmarks/results/cv*-hybrid-60-*);
# the CNN, not cross-validated, trains as long as the hybrid.
SAMPLE_EPOCHS = {"mnist": 160, "mnist-hybrid": 60, "mnist-cnn": 60}
# Quick mode (VIT_TUTORIAL_QUICK=1, as in CI): this many epochs on this many training images.
QUICK_EPOCHS, QUICK_TRAIN_SIZE = 2, 1000


def recipe(dataset: str, quick: bool = False, full: bool = True, preset: str | None = None, **changes) -> dict:
    """fit's keyword arguments for ``dataset`` (or for ``preset``, where it has its own), with ``changes``.

    ``full=False`` (the data is the offline sample, ``Splits.full``) trains for
    more epochs; quick mode for fewer.
    """
    name = preset if preset in RECIPES else dataset
    if name not in RECIPES:
        raise VitTutorialError(f"no training recipe for {dataset!r}; choose one of "
                               f"{', '.join(k for k in RECIPES if k in ('mnist', 'fashion-mnist', 'cifar10'))}")
    r = dict(RECIPES[name])
    if not full and name in SAMPLE_EPOCHS:
        r["epochs"] = SAMPLE_EPOCHS[name]
    if quick:
        r["epochs"] = QUICK_EPOCHS
        r["warmup_epochs"] = min(r["warmup_epochs"], 0.5)
    r.update(changes)
    return r

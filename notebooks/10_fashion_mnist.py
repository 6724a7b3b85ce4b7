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
# # 10. A harder dataset: Fashion-MNIST
#
# MNIST is easy: thin white strokes, centred and scaled the same way, and
# even a small model gets most digits right. Fashion-MNIST (Xiao, Rasul and
# Vollgraf, 2017, [arXiv 1708.07747](https://arxiv.org/abs/1708.07747)) keeps
# MNIST's format (70,000 grey 28 × 28 images, ten classes, 60,000 for
# training and 10,000 for testing) but the images are photos of clothes from
# an online shop: shirts, pullovers, coats, sandals, bags. Classes differ in
# texture, collars and sleeves, and some pairs (shirt and T-shirt, pullover
# and coat) are hard even for people.
#
# This notebook trains the same `ViT` class with the same `fit` on it, and
# shows
#
# 1. the clothes, and what changes in the recipe, and why;
# 2. the training curves;
# 3. the confusion matrix with the class names, and the hardest classes as
#    images;
# 4. the test accuracy, once, and a table that puts MNIST and Fashion-MNIST
#    side by side;
# 5. how to run the same on CIFAR-10, colour photos, with a network.

# %%
# %matplotlib inline
import pandas as pd
import torch

from vit_tutorial import ViT, default_device, evaluate, load_dataset, preset, quick_mode, set_seed
from vit_tutorial.augment import get_augment
from vit_tutorial.book import DATA, IMAGES, train_or_load, training_set
from vit_tutorial.plots import plot_confusion, plot_history, plot_images, plot_misclassified, plot_per_class_accuracy
from vit_tutorial.training import choose_amp, recipe

set_seed(0)
device = default_device()
QUICK = quick_mode()  # VIT_TUTORIAL_QUICK=1: 1,000 training images and 2 epochs, as in CI

# %% [markdown]
# ## The data
#
# `load_dataset("fashion-mnist")` looks for the files under `data/`, then in
# Debian's `dataset-fashion-mnist` package
# (`/usr/share/datasets/fashion-mnist/`), then asks torchvision to download
# them. As for MNIST, 5,000 of the official training images are set aside
# for validation with a seeded generator, and the 10,000 test images are kept
# for the end.

# %%
# NBVAL_IGNORE_OUTPUT
splits = load_dataset("fashion-mnist", DATA)
train = training_set(splits)
print(splits.source)
print(f"training on {len(train):,} images, validating on {len(splits.val):,}, "
      f"test set of {len(splits.test):,} kept apart")

# %%
assert train.images.shape[1:] == (1, 28, 28) and len(splits.val.classes) == 10
print("classes:", ", ".join(splits.val.classes))

# %%
x, y = splits.val.batch(torch.arange(40))
fig = plot_images(x, [splits.val.classes[int(v)] for v in y], ncols=10, size=1.25,
                  suptitle="Fashion-MNIST validation images")
fig.savefig(IMAGES / "fashion_examples.png", dpi=120, bbox_inches="tight")
fig

# %% [markdown]
# ## What changes in the recipe, and why
#
# **Finer patches.** With 7 × 7 patches an image is 16 tokens, each a
# quarter of a sleeve or half a collar. Digits survive that; clothes are told
# apart by smaller details (a collar, a zip, a strap, the texture of knitting).
# The `"fashion-mnist"` preset cuts 4 × 4 patches: 49 tokens.
#
# **A wider and deeper model.** Width 128 instead of 64, six blocks of eight
# heads instead of four of four: about 0.8 million parameters instead of 0.14.
# Together with three times as many tokens, a training step costs about
# twenty times what an MNIST step costs.
#
# **Augmentation that suits clothes.** A mirrored shirt is still a shirt,
# so mirror images are in, with shifts of up to 5 % of the side (1.4
# pixels). The photos are all taken upright and centred the same way, and
# the digits' rotations and zooms did not help here: on the validation set,
# after 30 epochs, this mild augmentation gave 90.4 % and the digits-like
# mix (rotations up to 5°, zooms, shifts of 10 %, mirrors) 88.4 %. Without
# any augmentation (at a learning rate of 2e-3) the model learned the
# training images by heart (99.7 % right) and reached 88.6 %. Those runs
# were made on a GPU to choose the recipe, one seed each; they are in
# `benchmarks/results/fashion-recipe-exploration-h200.txt`.
#
# **bfloat16.** On CPUs with AMX, `fit` runs models of width 128 and more in
# bfloat16 autocast, which measured 1.6 to 1.9 times faster for this width
# (benchmarks/results/); the MNIST model of width 64 stays in float32, where
# bfloat16 measured no faster.

# %%
models = {name: ViT(preset(name)) for name in ("mnist", "fashion-mnist")}
for name, m in models.items():
    c = m.config
    print(f"{name:14s} patch {c.patch_size}, {c.num_patches} tokens + class token, width {c.embed_dim}, "
          f"depth {c.depth}, {c.num_heads} heads: {m.num_parameters():,} parameters")
print("recipe:", recipe("fashion-mnist"))

# %%
# NBVAL_IGNORE_OUTPUT
# The precision fit picks depends on the CPU (bfloat16 where it computes it natively), so it is not compared.
print("training precision on this machine:", choose_amp(models["fashion-mnist"], device) or "float32")

# %%
config = preset("fashion-mnist")
assert config.num_patches == 49 and models["fashion-mnist"].num_parameters() < 1_000_000
print("49 patch tokens; under a million parameters")

# %%
augment = get_augment("clothes")
g = torch.Generator().manual_seed(0)
garment = x[:1].expand(15, -1, -1, -1)  # one image, 15 times: (15, 1, 28, 28)
fig = plot_images(torch.cat([x[:1], augment(garment, generator=g)]), ["original"] + [""] * 15, ncols=8,
                  suptitle="One garment as stored, then as training sees it (mirrored, shifted)")
fig

# %% [markdown]
# ## Training
#
# `train_or_load` trains the preset with the dataset's recipe, 30 epochs
# over the 55,000 training images, and keeps a checkpoint after every epoch
# in `runs/fashion-mnist/` (an interrupted run resumes). On the project's
# 2-core CPU that took 65 minutes (62 of them in training steps, about 450
# images per second; the epochs took 99 to 156 s on this shared machine).
#
# The committed outputs come from the run that
# `python benchmarks/accuracy.py --dataset fashion-mnist --out runs/fashion-mnist`
# made: the same preset, recipe and data as `train_or_load`, which then
# finds the finished checkpoint and loads it. On an NVIDIA H200 the same
# 30 epochs took 4 minutes (241 s, measured with the first augmentation,
# before it was changed).

# %%
# NBVAL_IGNORE_OUTPUT
model, history, _ = train_or_load("fashion-mnist", splits=splits)
print(f"{model.num_parameters():,} parameters, {len(history)} epochs, "
      f"{sum(history.seconds) / 60:.1f} minutes of training, "
      f"{sum(history.images_per_second) / len(history):.0f} images per second on average")

# %%
assert not model.training and model.config == preset("fashion-mnist")
assert len(history) == recipe("fashion-mnist", quick=QUICK)["epochs"]
print("the fashion-mnist preset, trained for the recipe's epochs")

# %%
# NBVAL_IGNORE_OUTPUT
fig = plot_history(history, title="ViT on Fashion-MNIST")
fig.savefig(IMAGES / "fashion_history.png", dpi=120, bbox_inches="tight")
fig

# %% [markdown]
# Validation accuracy rises from 75.5 % after the first epoch to 88.9 %
# after 20 and 89.7 % after 30, nearly flat over the last five. Training
# accuracy (on augmented images) ends at 90.6 %, next to the validation
# figure: the model is not learning the training images by heart. It is
# short of capacity or of time, not of data.
#
# ## What the model confuses
#
# The confusion matrix on the validation set, with the class names.

# %%
# NBVAL_IGNORE_OUTPUT
val = splits.val.sample(1000, seed=0) if QUICK else splits.val  # quick mode: a sample, to save time
ev_val = evaluate(model, val, device=device)
print(f"validation accuracy {ev_val.accuracy:.2%} on {len(val):,} images")
fig = plot_confusion(ev_val, title=f"Fashion-MNIST validation set: accuracy {ev_val.accuracy:.2%}")
fig.savefig(IMAGES / "fashion_cm_val.png", dpi=120, bbox_inches="tight")
fig

# %%
# NBVAL_IGNORE_OUTPUT
fig = plot_per_class_accuracy(ev_val, title="Fashion-MNIST: validation accuracy per class")
fig

# %% [markdown]
# The two classes the model gets wrong most often, and the pair of classes
# it mixes up most: the largest number off the diagonal of the matrix.

# %%
# NBVAL_IGNORE_OUTPUT
classes = ev_val.classes
order = ev_val.per_class_accuracy.argsort()
for k in order[:3].tolist():
    print(f"{classes[k]:12s} {ev_val.per_class_accuracy[k]:.1%} right")
off = ev_val.confusion.clone().fill_diagonal_(0)
a, b = divmod(int(off.argmax()), off.shape[1])
print(f"most frequent mistake: {classes[a]} taken for {classes[b]} ({int(off[a, b])} times); "
      f"the other way round {int(off[b, a])} times")

# %% [markdown]
# Below, validation images of those two classes: the first row right, the
# second row taken for the other class. Often the "wrong" ones are hard to
# tell apart by eye too.

# %%
# NBVAL_IGNORE_OUTPUT
rows_images, titles = [], []
for true, other in ((a, b), (b, a)):
    right = ((ev_val.labels == true) & (ev_val.predictions == true)).nonzero().flatten()[:8]
    wrong = ((ev_val.labels == true) & (ev_val.predictions == other)).nonzero().flatten()[:8]
    for idx, tag in ((right, "right"), (wrong, f"as {classes[other]}")):
        rows_images.append(val.batch(idx)[0])
        titles += [f"{classes[true]}, {tag}"] * len(idx)
images = torch.cat(rows_images)
fig = plot_images(images, titles, ncols=8, size=1.5,
                  suptitle=f"The hardest pair: {classes[a]} and {classes[b]}")
fig.savefig(IMAGES / "fashion_hardest.png", dpi=120, bbox_inches="tight")
fig

# %%
# NBVAL_IGNORE_OUTPUT
fig = plot_misclassified(val, ev_val, n=16)
fig

# %% [markdown]
# In the full run the weakest classes are all tops: shirts (70.7 % right),
# coats (82.3 %) and pullovers (85.7 %). The most frequent mistake is a
# shirt taken for a T-shirt (69 times; 44 times the other way round). At
# 28 × 28 pixels a shirt and a T-shirt differ by a collar and buttons a
# pixel or two wide.
#
# ## The test set, once, and MNIST beside Fashion-MNIST
#
# As with MNIST in notebook 07, the test set is used once, at the end, for
# the number we report. The table puts the two book models side by side (the
# MNIST one from notebook 06). Training time is the time `fit` spent in
# training steps, on this machine.

# %%
# NBVAL_IGNORE_OUTPUT
test_set = splits.test.sample(1000, seed=0) if QUICK else splits.test
ev_test = evaluate(model, test_set, device=device)
mnist_model, mnist_history, mnist_splits = train_or_load("mnist")
rows = []
for name, m, h, sp in (("MNIST", mnist_model, mnist_history, mnist_splits),
                       ("Fashion-MNIST", model, history, splits)):
    test = ev_test if m is model else evaluate(m, sp.test, device=device)  # MNIST's test set: 500 images here
    rows.append({"dataset": name, "training images": len(training_set(sp)), "patch": m.config.patch_size,
                 "width": m.config.embed_dim, "depth": m.config.depth, "parameters": m.num_parameters(),
                 "epochs": len(h), "training minutes": sum(h.seconds) / 60,
                 "validation": h.val_acc[-1], "test": test.accuracy, "test images": len(test.labels)})
print(f"Fashion-MNIST test accuracy: {ev_test.accuracy:.2%} on {len(test_set):,} images")
pd.DataFrame(rows).style.format({"training minutes": "{:.1f}", "validation": "{:.2%}", "test": "{:.2%}",
                                 "parameters": "{:,}", "training images": "{:,}", "test images": "{:,}"}
                                ).hide(axis="index")

# %%
assert ev_test.confusion.sum() == len(test_set) and len(rows) == 2
print("each model scored once on its own test set")

# %% [markdown]
# Fashion-MNIST: 89.73 % on the 10,000 test images, next to 89.70 % on
# validation. That is below the 92.5 % this project set as its target for
# 30 epochs and under a million parameters; the README says what we tried
# (every recipe variant ended between 87.8 and 90.4 % on validation). Beside
# MNIST, the Fashion-MNIST model has six times the parameters and took
# nineteen times the training time, for nine points less accuracy: clothes
# are the harder problem.
#
# ## CIFAR-10, with a network
#
# CIFAR-10 (60,000 colour photos of 32 × 32 pixels in ten classes: planes,
# cars, birds, cats, ...) is much harder again for a Transformer trained from
# scratch: a small ViT without pre-training stays far below a small CNN
# there, which is the paper's point about data and inductive bias. The
# package supports it for readers with a network: torchvision downloads the
# 170 MB archive (and checks its checksum) into `data/`, and the package
# reads the batches with its own reader. The `"cifar10"` preset takes 3
# channels and 4 × 4 patches of 32 × 32 images (64 tokens):
#
# ```bash
# python -m vit_tutorial train --dataset cifar10 --out runs/cifar10        # 50 epochs; a GPU helps
# python -m vit_tutorial evaluate --dataset cifar10 --checkpoint runs/cifar10/checkpoint.pt
# ```
#
# or, in this notebook, `train_or_load("cifar10")`. We have not trained it
# here: this machine has no network, and no CIFAR-10 accuracy is claimed.

# %%
cifar = preset("cifar10")
print(f"cifar10 preset: {cifar.in_channels} channels, {cifar.image_size} x {cifar.image_size} images, "
      f"{cifar.num_patches} patches, {ViT(cifar).num_parameters():,} parameters; recipe {recipe('cifar10')}")

# %% [markdown]
# ## What comes next
#
# Notebook 11 freezes the model trained here and asks whether a different
# classifier on its class token (logistic regression, a random forest,
# nearest neighbours) does better than the linear head, and whether the class
# token is needed at all.

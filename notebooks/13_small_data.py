# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.7
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 13. Why a ViT needs data, and what closes the gap
#
# The question readers of every ViT tutorial ask sooner or later: *I trained
# a ViT from scratch on my small dataset and a plain CNN beat it. What went
# wrong, and what do I do?* Nothing went wrong. The paper that introduced
# the ViT (Dosovitskiy et al., 2020, arXiv 2010.11929) says so in its
# introduction: trained on ImageNet alone, its models came out "a few
# percentage points below ResNets of comparable size", and "large scale
# training trumps inductive bias". This notebook measures that on our own
# models, small enough for a laptop:
#
# 1. three models of similar size (the first table below counts their parameters), trained with the same recipe: the
#    book's pure **ViT**, a **hybrid** whose tokens come from a small
#    convolutional stem (the paper's section 3.1), and a plain **CNN** (on
#    the digits the ViT trains for 160 epochs and the other two for 60, each
#    as cross-validation chose, notebook 06);
# 2. their test accuracy against the **size of the training set**, from 500
#    digits to 4,000 and from 1,000 clothes to 55,000, with 95 % intervals,
#    three seeds at the small sizes and paired tests;
# 3. what a convolution knows before it has seen an image (locality and
#    translation equivariance), and a measurement of the second: shifted
#    digits;
# 4. the hybrid's attention maps and rollout beside the pure ViT's, on its
#    finer 7 × 7 grid;
# 5. the pure ViT once more, unchanged, but taught by the CNN
#    (distillation, as in DeiT);
# 6. a ViT that keeps its tokens and attention free of convolutions but
#    builds in a little locality (shifted patch tokens and locality
#    self-attention), taught by the same CNN;
# 7. the hybrid with the same attention and the same teacher: the first
#    model in this book that the CNN does not beat on clothes.

# %%
# %matplotlib inline
import math

import pandas as pd
import torch
from torch.testing import assert_close

from vit_tutorial import ViT, build_model, default_device, from_torchvision, load_dataset, mcnemar
from vit_tutorial import patchify, quick_mode, set_seed
from vit_tutorial import registry
from vit_tutorial.book import DATA, IMAGES, load, model_row, results_root
from vit_tutorial.evaluation import batched, count_summary
from vit_tutorial.inspect import attention_rollout, cls_attention
from vit_tutorial.plots import plot_accuracy_vs_data, plot_attention_grid, plot_histograms
from vit_tutorial.runner import run
from vit_tutorial.scaling import (EQUAL_SEEN, MODELS, POINTS, QUICK_POINTS, compare, label, point, point_correct,
                                  specs, summarise)

set_seed(0)
device = default_device()
QUICK = quick_mode()  # VIT_TUTORIAL_QUICK=1: a few hundred images, two epochs, one seed, as in CI

# %% [markdown]
# ## Three models, one recipe
#
# The three MNIST models have between 140,000 and 220,000 parameters (the
# table below) and are trained by the same `fit` with the same recipe:
# the same optimiser, schedule and augmentation. Only the way pixels become
# features differs.
#
# - The **ViT** cuts the 28 × 28 image into 16 patches of 7 × 7 and projects
#   each one linearly (notebook 01). From the first block on, every token
#   can attend to every other one.
# - The **CNN** is five 3 × 3 convolutions (with BatchNorm and ReLU, and a
#   2 × 2 max-pool after the second and the fourth) and a linear layer on
#   the average of the last map: no attention at all.
# - The **hybrid** replaces the ViT's projection with the CNN's five
#   convolutions (a convolution of stride 2 stands where the CNN
#   max-pools), which turn the image into a 7 × 7 map of 128 channels;
#   each of its 49 positions becomes a token through a 1 × 1 convolution.
#   The encoder behind it is the ViT's, two blocks deep instead of four.
#   Where the CNN averages its last map, the hybrid lets the 49 positions
#   attend to each other. (This stem was chosen by cross-validation, over
#   a smaller stem of two stride-2 convolutions; see the end of the
#   notebook.)

# %%
names = MODELS["mnist-sample"]
models = {name: build_model(name) for name in names}
table = []
for name, m in models.items():
    c = m.config
    tokens = f"{c.num_patches} ({c.grid_size} x {c.grid_size})" if isinstance(m, ViT) else "-"
    table.append({"model": label(name), "id": name, "tokens": tokens, "parameters": m.num_parameters()})
pd.DataFrame(table).set_index("model")

# %%
x = torch.rand(2, 1, 28, 28)
hybrid = models["mnist-sample/hybrid"]
feature_map = hybrid.patch_embed.stages(x)  # (B, 1, 28, 28) -> (B, 128, 7, 7): five stages, two of stride 2
tokens = hybrid.patch_embed(x)  # (B, 128, 7, 7) -> 1 x 1 patches -> (B, 49, D)
assert feature_map.shape == (2, 128, 7, 7) and tokens.shape == (2, 49, 64)
assert models["mnist-sample/vit"].patch_embed(x).shape == (2, 16, 64)
params = {name: m.num_parameters() for name, m in models.items()}
assert params["mnist-sample/cnn"] <= params["mnist-sample/hybrid"]  # the baseline: no more parameters than the hybrid
assert max(params.values()) < 1.6 * min(params.values())  # and all three are of one size
print("hybrid stem: image", tuple(x.shape[1:]), "-> feature map", tuple(feature_map.shape[1:]),
      "-> tokens", tuple(tokens.shape[1:]))

# %% [markdown]
# The stem is the one torchvision builds with `conv_stem_configs` (after
# Xiao et al., 2021, "Early convolutions help transformers see better",
# arXiv 2106.14881). As in notebooks 01-05, we check that ours computes the
# same: a torchvision `VisionTransformer` with the same five-stage stem, its weights
# copied into our `ViT` by `from_torchvision`, must give the same logits.
# (torchvision asks for the `patch_size` the stem's strides amount to: 2 × 2
# = 4 pixels per token.)

# %%
from torchvision.models.vision_transformer import ConvStemConfig, VisionTransformer

torch.manual_seed(0)
stem = [ConvStemConfig(c, 3, s) for c, s in zip(hybrid.config.stem_channels, hybrid.config.stem_strides)]
tv = VisionTransformer(image_size=28, patch_size=4, num_layers=2, num_heads=4, hidden_dim=64, mlp_dim=128,
                       num_classes=10, conv_stem_configs=stem)
tv.train()
tv(torch.rand(16, 3, 28, 28))  # one batch in training mode, so that BatchNorm's running statistics are not trivial
tv.eval()
ours = from_torchvision(tv).eval()
assert ours.config.stem == "conv" and ours.config.grid_size == 7
x3 = torch.rand(4, 3, 28, 28)
with torch.no_grad():
    assert_close(ours(x3), tv(x3), rtol=1e-4, atol=1e-5)
print("our hybrid and torchvision's conv-stem ViT agree")

# %% [markdown]
# ## Accuracy against the size of the training set
#
# Each point below is one model trained on a class-balanced subset of the
# training split (500 digits are 50 of each class) and scored **once** on the
# test split: the 500 digits of the offline sample kept apart (MNIST), or
# the 10,000 official test images (Fashion-MNIST). Nothing was chosen on
# these scores.
#
# **The budget.** Every point uses its model's recipe unchanged (notebook
# 06 for digits: 160 epochs on the offline sample for the ViT, 60 for the
# hybrid and the CNN; notebook 10 for clothes: 30 epochs for all three), so
# a smaller training set also means fewer steps. That is what a reader with
# a small dataset does. A second series on digits gives every model and
# every size the same number of images seen instead (160,000: more epochs
# for fewer digits), so that only the data changes and not the amount of
# training.
#
# **Seeds.** At the small sizes, where the models are far apart and every
# run is cheap, each point is trained three times (seeds 0, 1 and 2; a seed
# draws both the subset and the initial weights). The largest points are
# the book's shipped models, one seed each: 4,000 digits (notebooks 06-07
# and the README) and 55,000 clothes (notebook 10). The tables below give,
# for three seeds, the 95 % interval of their mean (Student's t over the
# seeds: it counts the noise of training, and with three seeds it is wide);
# for one seed, the Wilson interval of its test images, which counts only
# the noise of the test set.
#
# **Time.** Training every point from scratch takes about half an hour on
# two CPU cores. Each point is one run of the package's runner and ships as
# its row (which test images it got right, among other things), and the cell
# below reads the rows back; a short run comes out a little differently on
# another CPU or thread count, and the text describes these rows.
# `VIT_TUTORIAL_RETRAIN=1` trains them again (`lab/small_data.py` runs the
# same list from the command line).

# %%
# NBVAL_IGNORE_OUTPUT
splits = {dataset: load_dataset(dataset, DATA, verbose=False) for dataset in MODELS}
# Each point's row: read back from the shipped rows, or trained now (quick mode: scored on at most 1,000 images).
rows = [point(run(spec, cache=results_root(), splits=splits[spec.dataset]))
        for spec in specs(QUICK_POINTS if QUICK else POINTS, QUICK)]
# The whole training split: the book's shipped models (in quick mode, trained here on 1,000 images).
rows += [point(model_row(name, splits[dataset])) for dataset in MODELS for name in MODELS[dataset]]
print(f"{len(rows)} points: {sum(r['dataset'] == 'mnist-sample' for r in rows)} on digits, "
      f"{sum(r['dataset'] == 'fashion-mnist' for r in rows)} on clothes")

# %%
for r in rows:
    assert 0 <= r["test_low"] <= r["test_acc"] <= r["test_high"] <= 1 and len(r["correct"]) == r["test_images"]
    assert sum(c == "1" for c in r["correct"]) == r["test_correct"]
    if r["epochs"] >= 10:  # a fully trained point (not quick mode): far above chance, 10 %
        assert r["test_acc"] > 0.5, r
summary = summarise(rows)
assert len(summary) == len({(r["model"], r["train_size"], r["epochs"]) for r in rows})

# %%
# NBVAL_IGNORE_OUTPUT
def show(dataset):
    """Mean test accuracy (%) per model and size, each seed's, and the 95 % interval of the mean."""
    out = []
    for s in summary:
        if s["model"] not in MODELS[dataset]:
            continue
        seeds = " / ".join(f"{100 * a:.1f}" for a in s["accs"])
        out.append({"model": label(s["model"]), "training images": s["train_size"], "epochs": s["epochs"],
                    "mean %": round(100 * s["mean"], 1), "each seed %": seeds,
                    "95 % interval": f"{100 * s['low']:.1f}-{100 * s['high']:.1f}", "interval over": s["interval"]})
    return pd.DataFrame(out).sort_values(["training images", "epochs", "model"]).set_index(
        ["training images", "epochs", "model"])


show("mnist-sample")

# %%
# NBVAL_IGNORE_OUTPUT
show("fashion-mnist")

# %%
# NBVAL_IGNORE_OUTPUT
from matplotlib.figure import Figure

# Each model's recipe epochs: on the digits of the sample 160 for the ViT, 60 for the hybrid and the
# CNN (notebook 06); 30 for clothes (2 in quick mode).
RECIPE_EPOCHS = {name: registry.recipe(name, quick=QUICK)["epochs"]
                 for d in MODELS for name in MODELS[d]}
SERIES = {  # which rows make each series: the recipe unchanged, or the same images seen at every size
    "recipe": lambda r: r["epochs"] == RECIPE_EPOCHS[r["model"]],
    "equal budget": lambda r: r["dataset"] == "mnist-sample" and r["images_seen"] == EQUAL_SEEN,
}
vit_epochs, other_epochs = RECIPE_EPOCHS["mnist-sample/vit"], RECIPE_EPOCHS["mnist-sample/cnn"]
panels = [
    (f"MNIST sample: the recipe, {vit_epochs} epochs (ViT), {other_epochs} (hybrid, CNN)\n(fewer images, fewer steps)",
     [r for r in rows if r["dataset"] == "mnist-sample" and SERIES["recipe"](r)]),
    (f"MNIST sample: {EQUAL_SEEN:,} images seen at every size\n(fewer images, more epochs)",
     [r for r in rows if SERIES["equal budget"](r)]),
    (f"Fashion-MNIST: the recipe, {RECIPE_EPOCHS['fashion-mnist/vit']} epochs\n(10,000 test images)",
     [r for r in rows if r["dataset"] == "fashion-mnist" and SERIES["recipe"](r)]),
]
fig = Figure(figsize=(16, 4.6), layout="constrained")
for ax, (title, chosen) in zip(fig.subplots(1, 3), panels):
    if chosen:
        plot_accuracy_vs_data(chosen, title=title, ax=ax)
fig.suptitle("Test accuracy against the number of training images (dots: seeds, bars: 95 % intervals)")
fig.savefig(IMAGES / "accuracy_vs_data.png", dpi=120, bbox_inches="tight")
fig

# %% [markdown]
# **Under the recipe** (left), the pure ViT is far behind at 500 digits:
# the hybrid gets 97.4 % of the test digits right and the CNN 97.3 % (mean
# of three seeds), the pure ViT 91.2 % (90.8 to 91.4 % from one seed to the
# next), although its recipe gives it more than twice the epochs (160
# against 60, each chosen by cross-validation on 4,500 digits). The hybrid,
# whose stem is the CNN's five convolutions, stays with the CNN at every
# size: 97.8 against 98.3 % at 1,000 digits, 98.8 against 98.8 % at 2,000,
# and 99.0 against 99.4 % at 4,000 (the shipped models; the ViT 98.8 %).
# (With the 80 epochs they trained until 2026-12-06, both had 97.7 % at 500
# digits: files `mnist-hybrid-n500-seed*-e80.json` and
# `mnist-cnn-n500-seed*-e80.json` in `results/`.)
# The ViT's gap closes as the data grows. On clothes (right), with the shipped
# Fashion-MNIST hybrid and its smaller stem of three convolutions, the
# order is CNN, hybrid, ViT at every size and the gaps shrink the same way:
# the CNN is 9.7 points ahead of the ViT at 1,000 images, 6.0 at 5,000 and
# 4.2 at 55,000; the hybrid is 3.7 points behind the CNN at 1,000 images
# and half a point at 55,000. There the seeds matter more than the test
# set: 10,000 test images pin each accuracy down to about ± 0.8 points,
# but the hybrid's three seeds at 1,000 images land 3 points apart (76.2
# to 79.1 %).
#
# **But the recipe also changes the training.** Sixty epochs of 500 digits
# are 30,000 images seen, a quarter of the steps that 2,000 digits get
# under the same recipe. The
# middle panel gives every size the same 160,000 images (320 epochs of 500
# digits, 160 of 1,000, 80 of 2,000, 40 of 4,000). Now the pure ViT gets
# 95.2 % from 500 digits, against 96.2 % from 4,000: within the 95 %
# intervals of 500 test digits (about ± 2 points at 95 %), so on this
# budget more digits bought it little that we can measure. Much of its
# weakness at 500 digits under the recipe looks like **too few steps**
# rather than too few digits: 160 epochs give it 91.2 % there, 320 give it
# 95.2 %, and 80 epochs gave it 71.8 %. That rests on one seed at each
# budget and on no paired test, and the 4,000-digit point of this series is
# itself short of steps (40 epochs), so read it as a lead, not a result.
# The CNN, on the same budget, is ahead of it at every size (98.2 % at 500
# digits, 99.4 % at 4,000), and so is the hybrid (98.4 % at 500, 99.2 % at
# 4,000).
#
# So there are two gaps between the ViT and the CNN, and a reader with a
# small dataset meets both:
#
# - **the ViT learns more slowly per step**: a CNN trained for 60 epochs on
#   500 digits is already at 97.3 %; the ViT needs more than five times as
#   many steps (320 epochs) to reach 95 %;
# - **at the same number of steps the CNN still generalises better**: it is
#   3 to 4 points ahead of the ViT at every size of the middle panel (the
#   paired tests below give p < 0.002 at each).
#
# The hybrid closes both on digits: with the CNN's convolutions in front of
# its encoder it learns as fast per step as the CNN and ends within a point
# of it, at every size. Within 4,000 digits, more data does not close the
# ViT's second gap on this budget; under the recipe, where more data also
# brings more steps, the gaps do close, to 0.6 points between CNN and ViT at
# 4,000 digits. On clothes the curves are still apart at 55,000 images,
# where the CNN, with a sixth of the hybrid's parameters, is still half a
# point ahead. The paper's curves cross at tens of millions of images (see
# below); ours stop long before that.

# %% [markdown]
# ### Are the differences real?
#
# Two models scored on the same test images are compared image by image
# with McNemar's test (notebook 07): only the images that one gets right
# and the other wrong carry information. Each cell below reads "images right
# for the first model only : for the second only, p-value". At the sizes
# with three seeds the test is run seed by seed, on models that saw the same
# training images.

# %%
# NBVAL_IGNORE_OUTPUT
pairs = []
for dataset in MODELS:
    vit, hyb, cnn = MODELS[dataset]
    for series, member in SERIES.items():
        chosen = [r for r in rows if r["dataset"] == dataset and member(r)]
        for size in sorted({r["train_size"] for r in chosen}):
            group = [r for r in chosen if r["train_size"] == size]
            of = {r["model"]: r["epochs"] for r in group}
            epochs = "/".join(str(of.get(m, "-")) for m in (vit, hyb, cnn))
            for seed in sorted(set.intersection(*({r["seed"] for r in group if r["model"] == m}
                                                  for m in (vit, hyb, cnn)))):  # seeds all three ran
                line = {"dataset": dataset, "series": series, "training images": size,
                        "epochs (ViT/hybrid/CNN)": epochs, "seed": seed}
                for a, b in ((hyb, vit), (cnn, hyb), (cnn, vit)):
                    for t in compare([r for r in group if r["seed"] == seed], a, b, size):
                        line[f"{label(a)} vs {label(b)}"] = f"{t['a_only']}:{t['b_only']}, p = {t['p_value']:.1g}"
                pairs.append(line)
pairs = pd.DataFrame(pairs).set_index(["dataset", "series", "training images", "epochs (ViT/hybrid/CNN)", "seed"])
assert pairs.notna().all().all()  # every group has all three models
pairs

# %% [markdown]
# Under the recipe, the CNN is ahead of the pure ViT at 500, 1,000 and
# 2,000 digits on every seed (p < 0.03). So is the hybrid at 500 digits
# (p ≤ 2e-5 on each seed) and at 2,000 (11 digits against 2, p = 0.02),
# but at 1,000 on one seed of three only (22 against 1; on the other two 18
# against 8, p = 0.08, and 17 against 10, p = 0.2). The CNN and the hybrid
# are never told apart on digits: between 2 and 9 digits for either side at
# every size and seed, p ≥ 0.3. At 4,000 digits, the shipped models, no gap
# is established at all: the CNN against the ViT 5 digits against 2
# (p = 0.5), against the hybrid 4 against 2 (p = 0.7), the hybrid against
# the ViT 5 against 4 (p = 1). On clothes,
# at 1,000 and 5,000 images, every seed puts the three models in the same
# order (p < 1e-7 each): on 1,000 clothes the hybrid is right on 1,004 to
# 1,316 test images where the ViT is wrong, and the ViT on about 500 where
# the hybrid is wrong.
#
# At the equal budget of 160,000 images seen, the hybrid is ahead of the
# ViT at every size (21 digits against 5 at 500, p = 0.002; 18 against 3
# at 4,000, p = 0.0015), and so is the CNN (p ≤ 0.002 at each); the CNN and
# the hybrid tie everywhere (at most 4 digits against 5, p ≥ 0.4). Where a
# p-value is above 0.05, the table says only that 500 digits cannot tell
# the two models apart, not that they are equal.

# %% [markdown]
# ## What a convolution knows before training
#
# A layer's **inductive bias** is what it assumes about its input before it
# has seen any. A 3 × 3 convolution assumes two things about images.
#
# - **Locality**: a feature depends on nearby pixels only. Each output reads
#   a 3 × 3 neighbourhood; only by stacking layers does a unit see further.
# - **Translation equivariance**: the same filter slides over every
#   position, so a pattern moved by a few pixels produces the same features,
#   moved by the same few pixels. A stroke learned at the top of one digit
#   is recognised at the bottom of the next without being learned twice.
#
# The ViT assumes much less. Its patch projection is local only within a
# patch and is applied to a fixed grid of patches, not at every pixel: a
# stroke moved by three pixels lands in a different part of a patch, or in
# another patch, and becomes a different vector. Attention is global from the
# first block: every token may read every other one, and which ones are
# near must be learned, through the position embeddings (notebook 09). The
# paper makes the same point in its section 3.1: in a ViT only the MLPs
# are local and translation-equivariant, while self-attention is global.
#
# Whatever a model does not assume, it has to learn from examples. With
# 500 digits there are not enough examples to learn it, and the model that
# assumes it wins. With enough data the assumption matters less, and can
# even get in the way: the paper found ViT behind ResNets when pre-trained
# on ImageNet (1.3 million images), level with them on ImageNet-21k (14
# million), and ahead on JFT-300M (300 million; section 4.2, and Figure 3
# in section 4.3). On random subsets of JFT-300M of 9, 30, 90 and 300
# million images, ViT overfitted more than ResNets of comparable cost on the
# smaller subsets and overtook them on the larger ones (Figure 4).
#
# The hybrid sits between: its stem is local and slides, the encoder behind
# it is global. The paper's hybrids (section 4.4) were slightly ahead of the
# pure ViT at small budgets, and the difference vanished for larger models.
#
# A measurement of the second assumption: shift the validation digits by a
# few pixels, a shift the training augmentation covers (up to 10 % of the
# side, 2.8 pixels, notebook 06), and count how often each of the book's
# three trained MNIST models (4,000 digits) changes its answer.

# %%
# NBVAL_IGNORE_OUTPUT
mnist = splits["mnist-sample"]
trained = {name: load(name, mnist, progress=False)[0].eval() for name in MODELS["mnist-sample"]}
val_x, val_y = mnist.val.batch(torch.arange(len(mnist.val)))


def shift(images, dx, dy):
    """Move images by (dx, dy) pixels (right, down), filling with black."""
    out = torch.zeros_like(images)
    H, W = images.shape[-2:]
    out[..., max(dy, 0):H + min(dy, 0), max(dx, 0):W + min(dx, 0)] = \
        images[..., max(-dy, 0):H + min(-dy, 0), max(-dx, 0):W + min(-dx, 0)]
    return out


moves = [(0, 0), (1, 0), (2, 0), (3, 0), (0, 3), (3, 3)]
with torch.no_grad():
    base = {n: m(val_x).argmax(1) for n, m in trained.items()}
    shifted = []
    for dx, dy in moves:
        xs = shift(val_x, dx, dy)
        for n, m in trained.items():
            pred = m(xs).argmax(1)
            shifted.append({"model": label(n), "shift (right, down) pixels": f"{dx}, {dy}",
                            "accuracy %": round(100 * (pred == val_y).float().mean().item(), 1),
                            "answers changed %": round(100 * (pred != base[n]).float().mean().item(), 1)})
shifts = pd.DataFrame(shifted)
shifts.pivot(index="shift (right, down) pixels", columns="model", values=["accuracy %", "answers changed %"])

# %%
assert_close(shift(shift(val_x, 2, 1), -2, -1)[..., :-1, :-2], val_x[..., :-1, :-2])  # a shift and its inverse
assert (shifts["answers changed %"][shifts["shift (right, down) pixels"] == "0, 0"] == 0).all()

# %% [markdown]
# The CNN hardly notices: shifted by 3 pixels right and 3 down, it changes
# its answer on 3 validation digits in 500 and keeps 99.6 % right (99.4 %
# unshifted). The ViT changes 22 answers (4.4 %) and drops from 98.4 % to
# 95.6 %, although its training augmentation shifted digits by up to 2.8
# pixels in each direction: its patch grid does not slide with the digit, so a 3-pixel
# shift cuts every stroke differently into patches, and it had to learn to
# ignore that from 4,000 examples. The hybrid, whose tokens come from
# sliding convolutions, changes 3 answers (0.6 %) and keeps 98.6 % right
# (98.6 % unshifted); over the five shifts it changes 1 to 4 answers, the
# CNN 1 to 3. What the table measures is invariance of the answer, not
# equivariance of the features: how often a shifted digit gets another
# answer. Both the hybrid's stem and the CNN slide their convolutions over
# the image and pool with a total stride of 4 pixels, so neither is exactly
# invariant to a 3-pixel shift; the difference is that the ViT's patch
# embedding does not slide at all. The hybrid ends much closer to the CNN
# than to the ViT (500 digits cannot tell the hybrid and the CNN apart).

# %% [markdown]
# ## Where the hybrid looks
#
# The hybrid keeps everything downstream of the tokens, so the tools of
# notebook 08 work on it unchanged: the class token's attention in the last
# block, and attention rollout through all its blocks. Its grid is 7 × 7 instead
# of 4 × 4, so its maps are finer. Below, eight validation digits; the first
# two rows are the pure ViT, the last two the hybrid. Each map is stretched
# to its own range, to show where it looks.

# %%
def maps_of(model, images):
    """(last-layer class-token attention, rollout) as (M, G, G) maps, heads averaged."""
    with torch.no_grad():
        _, att = model(images, return_attention=True)
    G = model.config.grid_size
    return cls_attention(att[-1].mean(1, keepdim=True), G)[:, 0], cls_attention(attention_rollout(att), G)


def upsample(maps, size=28):
    """(M, G, G) -> (M, size, size), each cell repeated: grids of different sizes in one figure."""
    return torch.nn.functional.interpolate(maps[:, None], size=(size, size), mode="nearest")[:, 0]


demo_x, demo_y = mnist.val.batch(torch.arange(0, 400, 50))
rows_of_maps = []
for name in ("mnist-sample/vit", "mnist-sample/hybrid"):
    last, roll = maps_of(trained[name], demo_x)
    assert_close(roll.flatten(1).sum(1) <= 1 + 1e-5, torch.ones(len(demo_x), dtype=torch.bool))
    rows_of_maps += [upsample(last), upsample(roll)]
grid_maps = torch.stack(rows_of_maps)  # (4, K, 28, 28)
assert grid_maps.shape == (4, len(demo_x), 28, 28)
fig = plot_attention_grid(demo_x[None], grid_maps, scale="each", show_input=False,  # one image per column
                          row_labels=["ViT 4x4\nlast block", "ViT 4x4\nrollout", "hybrid 7x7\nlast block",
                                      "hybrid 7x7\nrollout"],
                          title="The class token's attention: pure ViT (16 patches) against hybrid (49 tokens)")
fig.savefig(IMAGES / "hybrid_attention.png", dpi=120, bbox_inches="tight")
fig

# %% [markdown]
# In these eight digits the hybrid's last block puts most of its weight on
# one to three tokens, usually on or beside a stroke (for the 1 it spreads
# thinly over the background instead, brightest in the empty top-right
# corner), and its rollout is finer than the
# ViT's coarse map but looks at only a few places of the digit: by the time
# the tokens reach the encoder, five convolutions have already gathered
# each one's neighbourhood, so a few of them can carry the digit. As in notebook 08, a
# picture is an anecdote; a number over the whole
# validation split needs a baseline. The **ink share** is the part of the
# rollout map that falls on tokens whose pixels hold ink (mean grey level
# above 0.1), and the **position prior** is the dataset-average rollout map,
# the same for every digit. A model reads *this* digit as far as its own
# map beats the prior on it.

# %%
# NBVAL_IGNORE_OUTPUT
shares = {}
for name in ("mnist-sample/vit", "mnist-sample/hybrid"):
    m = trained[name]
    roll = batched(m, val_x, lambda model, x: maps_of(model, x)[1], batch_size=250)  # (M, G, G) rollout maps
    P = m.config.patch_size
    inked = patchify(val_x, P).mean(-1) > 0.1  # (M, N): which tokens' pixels hold ink
    w = roll.flatten(1) / roll.flatten(1).sum(1, keepdim=True)  # (M, G, G) -> (M, N), each row sums to 1
    own, prior = (w * inked).sum(1), (w.mean(0) * inked).sum(1)
    gain = own - prior
    half = 1.96 * gain.std() / math.sqrt(len(gain))
    shares[label(name)] = gain
    print(f"{label(name):6s} {m.config.grid_size}x{m.config.grid_size}: inked tokens {inked.float().mean():.1%}; "
          f"ink share {own.mean():.1%}, position prior {prior.mean():.1%}, own minus prior {gain.mean():+.1%} "
          f"(95 % interval {gain.mean() - half:+.1%} to {gain.mean() + half:+.1%})")
fig = plot_histograms(shares, xlabel="ink share of the digit's own rollout minus that of the position prior",
                      title=f"How much more each model reads from the digit than a position prior "
                            f"({len(val_x)} validation digits)")
fig.savefig(IMAGES / "hybrid_ink_share.png", dpi=120, bbox_inches="tight")
fig

# %% [markdown]
# The hybrid's own map is ahead of its position prior: 4.1 points of its
# rollout weight more on the inked tokens (95 % interval 3.5 to 4.8
# points), against 0.8 points for the ViT (the number notebook 08 found).
# The same hybrid trained for 80 epochs instead of 60, which the book
# shipped until 2026-12-06, reached 2.7 points (2.2 to 3.2): from one
# training run to the next this measure moves by more than its interval,
# so read it as a size, not to the decimal.
# (The hybrid with the smaller stem of two stride-2 convolutions that the
# book shipped before, whose tokens had seen less of the image, reached 7.7
# points here; our guess, not measured further: a stem that does more of
# the reading leaves the attention less to follow.) The finer grid matters for this measure: with 16
# patches of 7 × 7, the middle patches hold ink in most digits, so a prior
# that favours them already puts 49.6 % of its weight on ink; with 49
# tokens of 4 × 4 pixels, the inked ones differ more from digit to digit
# (the prior gets 46.2 %), and a map has to follow the digit to land on
# them.
# One caution: a hybrid token sees more than its 4 × 4 square (each 3 × 3
# convolution widens its view), so "the tokens with ink" is an
# approximation, the same for the map and for the prior.

# %% [markdown]
# ## A CNN as teacher
#
# The hybrid puts the convolution's assumptions into the architecture. DeiT
# (Touvron et al., 2021, "Training data-efficient image transformers &
# distillation through attention", arXiv 2012.12877) puts them into the
# training instead. DeiT adds a second learned token, a *distillation
# token*, whose output is trained to match the teacher while the class
# token's output matches the label; the book keeps the model unchanged and
# puts both terms on the class token's output. The pure ViT stays exactly
# as it is, and learns from
# the labels and from the answers of a trained CNN on the same augmented
# images. With the student's logits $z$, the teacher's $t$, the label $y$
# and the softmax $\sigma$, the **soft** version of the loss is
#
# $$\mathcal{L} = (1 - \lambda)\, \mathrm{CE}(z, y) + \lambda\, T^2\,
# \mathrm{KL}\big(\sigma(t / T) \,\|\, \sigma(z / T)\big),$$
#
# and the **hard** version replaces the second term by the cross-entropy
# with the teacher's top class. The teacher here is the book's
# `fashion-mnist/cnn` (93.6 % on the validation images), which the student
# never copies: it only sees the CNN's answers, which carry what the CNN
# assumed about images (a T-shirt moved by one pixel is still a T-shirt)
# and which classes it finds alike (shirts, T-shirts, pullovers and coats).
# The student's model, recipe and budget are those of the plain ViT of
# notebook 10; only the loss changes (`fit(..., teacher=cnn)`, the model
# `fashion-mnist/vit+kd`).
#
# The recipe was chosen on the 5,000 validation images only, one run each
# (30 epochs, seed 0; `lab/logs/fashion-distillation-cpu-2core-2026-11-28.txt`):
# hard distillation 89.80 %, soft 90.66 %, soft with the teacher's share
# $\lambda$ raised from 0.5 to 0.9 90.50 %, soft with batch 64 90.16 %,
# against 89.62 % for the same ViT without a teacher. Only the soft one
# with $\lambda = 0.5$, $T = 2$ is ahead of it image by image (156 against
# 104 validation images, p = 0.002), so that is the recipe. Unlike DeiT on
# ImageNet, where the hard version won, here the teacher's probabilities
# taught more than its top class. The teacher costs a forward pass of the
# CNN per batch: on one core of the 2-core AMD EPYC, 3,151 s of training
# against 2,657 s for the ViT alone (with batch 64, the closest run in
# the same setting), about a fifth more. Below, the shipped models, scored
# once on the 10,000 test images. The taught ViT ships as its row (its
# accuracy and which test images it got right), as some models below do:
# its weights would take more room in `checkpoints/` than its result is worth.

# %%
# NBVAL_IGNORE_OUTPUT
fashion = splits["fashion-mnist"]
taught = point(model_row("fashion-mnist/vit+kd", fashion))
whole = {r["model"]: r for r in rows if r["dataset"] == "fashion-mnist" and r["train_size"] == taught["train_size"]}
assert set(whole) == set(MODELS["fashion-mnist"])  # the shipped ViT, hybrid and CNN, on the same test images
assert taught["config"] == whole["fashion-mnist/vit"]["config"]  # the plain ViT, unchanged


def paired_table(focus: dict, focus_name: str, models) -> pd.DataFrame:
    """Each (name, point): its test accuracy, and McNemar's test against ``focus`` on the same test images."""
    table = []
    for name, r in models:
        line = {"model": name, "parameters": r["parameters"],
                "test accuracy (95 % interval)": count_summary(r["test_correct"], r["test_images"], short=True)}
        if r is not focus:
            t = mcnemar(point_correct(focus), point_correct(r))
            line[f"{focus_name} only : this model only"] = f"{t['a_only']}:{t['b_only']}, p = {t['p_value']:.1g}"
        table.append(line)
    return pd.DataFrame(table).set_index("model")


paired_table(taught, "taught ViT", (("ViT", whole["fashion-mnist/vit"]), ("ViT taught by the CNN", taught),
                                    ("hybrid", whole["fashion-mnist/hybrid"]),
                                    ("CNN (the teacher)", whole["fashion-mnist/cnn"])))

# %%
if taught["epochs"] >= 10:  # the shipped models (not quick mode)
    assert taught["parameters"] == whole["fashion-mnist/vit"]["parameters"]
    assert taught["test_acc"] > whole["fashion-mnist/vit"]["test_acc"]

# %% [markdown]
# The taught ViT is right on 290 test images where the ViT of notebook 10
# is wrong, and wrong on 214 where it is right (p = 0.0008): the same
# architecture, parameters and number of steps gain 0.8 points (89.39 to
# 90.15 %) from the CNN's answers alone. That is a real gain but a small
# one: the hybrid, which has the convolution inside, stays 2.9 points
# ahead, and the teacher itself 3.4 points. On 55,000 clothes and 30
# epochs, the assumptions a CNN makes help a ViT most when they are part
# of the model, and a little when they are only in its targets.

# %% [markdown]
# ## Locality without a convolution
#
# The hybrid gives the ViT a convolution; the teacher gives it a CNN's
# answers. A third way changes the ViT itself, a little, and keeps it free
# of convolutions: Lee et al. (2021, "Vision Transformer for Small-Size
# Datasets", arXiv 2112.13492) add two pieces aimed at exactly our
# problem.
#
# - **Shifted patch tokens (SPT).** Before the image is cut, four copies of
#   it are moved by half a patch, one in each diagonal direction, and
#   stacked with it as extra channels. A 4 × 4 patch then holds
#   $5 \times 16 = 80$ values: its own pixels and those up to 2 pixels
#   around it. A layer norm and one linear layer turn the 80 values into
#   the token, one matrix shared by all patches as before. A token now
#   sees the edges of its neighbours, which a plain patch token never does.
# - **Locality self-attention (LSA).** Two changes to the attention of
#   notebook 04: the scale $1/\sqrt{d}$ becomes a number each head learns
#   (it starts at $1/\sqrt{d}$), and the diagonal of $QK^\top$ is set to
#   $-\infty$ before the softmax, so no token attends to itself. Without
#   its own, usually largest, score, the softmax spreads less weight
#   evenly and a head can sharpen onto a few other tokens.
#
# In `ViTConfig` these are `stem="shifted"` and `lsa=True`, 8,400 more
# parameters (813,530 in all). The plain ViT with both is the book's
# `fashion-mnist/vit-spt-lsa`, the one `python -m vit_tutorial train --dataset
# fashion-mnist` trains; the plain one is `fashion-mnist/vit`. The test
# suite proves the pieces against PyTorch's: LSA equals
# `nn.MultiheadAttention` with a diagonal mask and rescaled query rows, and
# SPT equals padding, cropping, `patchify`, `F.layer_norm` and `F.linear`.
# Below, what a shifted token sees:

# %%
spt_model = build_model("fashion-mnist/vit-spt-lsa")
plain_model = build_model("fashion-mnist/vit")
print(f"plain patch token: {plain_model.patch_embed.proj.weight[0].numel()} values per patch; "
      f"shifted: {spt_model.patch_embed.proj.in_features}; parameters {plain_model.num_parameters():,} "
      f"-> {spt_model.num_parameters():,}")
picture = torch.rand(1, 1, 28, 28, generator=torch.Generator().manual_seed(0))
nudged = picture.clone()
nudged[..., 4, 4] += 0.5  # one pixel of the second patch, just outside the first one (rows and columns 0-3)
with torch.no_grad():
    for name, m in (("plain", plain_model), ("shifted", spt_model)):
        moved = (m.embed(nudged) - m.embed(picture))[0, 1]  # the first patch's token, before the encoder
        print(f"{name:8s}: the first patch's token {'changed' if moved.norm() > 0 else 'did not change'}")
        assert (moved.norm() > 0) == (name == "shifted")

# %% [markdown]
# Both pieces were tried together, on the validation images only (30
# epochs, seed 0, one core each;
# `lab/logs/fashion-spt-lsa-cpu-2core-2026-11-28.txt`), with the
# recipe of the pure ViT: 91.76 % alone, against 89.62 % for the plain ViT
# (232 against 125 images, p = 2e-8), and **92.46 %** when the CNN also
# teaches it as in the section above (ahead of SPT and LSA alone, 118
# against 83 images, p = 0.016). The taught one is the model
# `fashion-mnist/vit-spt-lsa+kd`, shipped; a second seed (other initial
# weights and batches) gave 92.42 %, so the result is not one lucky run.
# The untaught one, `fashion-mnist/vit-spt-lsa`, was trained again later with
# two seeds, each scored once on the test images whatever it gave
# (2026-12-07, both cores of a Zen 4 EPYC, 50 and 52 minutes;
# `lab/logs/accuracy-fashion-mnist-spt-lsa-seeds-zen4-cpu-2core-2026-12-07.txt`):
# 92.24 and 92.22 % on validation. Seed 0, the better of the two on
# validation, ships as `checkpoints/fashion-mnist/vit-spt-lsa.pt`; in half precision it
# answers as the float32 weights do on all 15,000 validation and test
# images. Both models, on the test images:

# %%
# NBVAL_IGNORE_OUTPUT
untaught_local = point(model_row("fashion-mnist/vit-spt-lsa", fashion))
local_point = point(model_row("fashion-mnist/vit-spt-lsa+kd", fashion))
assert local_point["config"]["stem"] == "shifted" and local_point["config"]["lsa"]
assert untaught_local["config"] == local_point["config"]  # the same model, trained without the teacher
paired_table(local_point, "SPT + LSA ViT", (("ViT", whole["fashion-mnist/vit"]), ("ViT taught by the CNN", taught),
                                            ("ViT + SPT + LSA", untaught_local),
                                            ("ViT + SPT + LSA, taught", local_point),
                                            ("hybrid", whole["fashion-mnist/hybrid"]),
                                            ("CNN (the teacher)", whole["fashion-mnist/cnn"])))

# %%
if local_point["epochs"] >= 10:  # the shipped models (not quick mode)
    assert local_point["test_acc"] > taught["test_acc"] > whole["fashion-mnist/vit"]["test_acc"]
    assert mcnemar(point_correct(untaught_local), point_correct(whole["fashion-mnist/vit"]))["p_value"] < 1e-6
    assert untaught_local["test_acc"] > taught["test_acc"]  # locality in the model beats the teacher alone
    assert local_point["test_acc"] < whole["fashion-mnist/hybrid"]["test_acc"]

# %% [markdown]
# On the 10,000 test images the ViT with shifted tokens and locality
# attention reaches 91.97 % without a teacher (95 % interval
# 91.4-92.5 %), 2.6 points above the plain ViT with the same recipe and
# about the same parameters (479 against 221 images, p = 9e-23), and 1.8
# points above the plain ViT taught by the CNN. Its second seed scored
# 92.28 %, level with it (206 against 237 images, p = 0.15). Taught by
# the CNN as well it reaches 92.40 %: ahead of the untaught seed 0 (210
# against 167, p = 0.03), level with seed 1 (203 against 191, p = 0.58).
# So the pieces built into the model do most of the work, and the teacher
# adds a few tenths at most. The taught one is still
# behind the shipped hybrid (93.07 %; 219 against 286 images, p = 0.003)
# and the CNN (93.55 %; p = 2e-7): the assumptions a convolution makes
# were still cheaper to build in than to imitate or to teach.
# Which of the two pieces does the work? Each alone, with the same teacher
# and recipe, on the validation images only (one seed each;
# `lab/logs/fashion-spt-vs-lsa-distilled-zen4-cpu-2core-2026-12-06.txt`):
# shifted patch tokens alone 92.66 %, level with both pieces (94 against
# 84 images, p = 0.5); locality self-attention alone 90.20 %, level with
# the plain taught ViT's 90.66 % (103 against 126, p = 0.15). On clothes
# the gain is the shifted tokens': each token sees the edges of its
# neighbours, as a convolution's window reaches across a patch border.
# LSA's sharper attention adds nothing these 5,000 images can see.
# What they cost: the taught run took 3,567 s of
# training on one core, against 3,151 s for the plain taught ViT in the
# same setting, about an eighth more (80 instead of 16 inputs per patch,
# one mask per attention).

# %% [markdown]
# ## The hybrid, taught
#
# What helped the pure ViT can be given to the hybrid as well: locality
# self-attention in its encoder (its tokens are already local, from the
# stem) and the CNN as its teacher, with the soft loss above. That is the
# model `fashion-mnist/hybrid-lsa+kd`: the hybrid's stem, encoder
# and recipe, 48 more parameters (one scale per head), 912,410 in all.
#
# One run, chosen on the validation images only (30 epochs, seed 0;
# `lab/logs/fashion-hybrid-lsa-distilled-cpu-2core-2026-12-02.txt`):
# **94.38 %**, against 93.38 % for the shipped hybrid (107 against 57
# images, p = 0.0001) and 93.64 % for the CNN (98 against 61, p = 0.004).
# It ran on another CPU than the shipped models (a Zen 3 AMD EPYC without
# bfloat16, so in float32), in 12,912 s of training on one core. Which of
# the two changes does the work was measured later, on a second seed and
# on the validation images only
# (`lab/logs/fashion-hybrid-distilled-no-lsa-seed1-zen4-cpu-2core-2026-12-06.txt`):
# the hybrid taught without LSA scored 94.02 %, level with the taught LSA
# hybrid of the same seed (94.30 %; 61 against 75 images, p = 0.27). It
# also scored above the shipped untaught hybrid (101 against 69, p = 0.02),
# but that compares a run of seed 1 with one of seed 0, so the paired test
# counts only the noise of the images, not that of training. The evidence
# points to the teacher rather than LSA doing the work, as LSA alone did
# nothing for the pure ViT above; it does not establish it.
#
# Its weights are not shipped, to keep `checkpoints/` small. The book ships
# its row instead (its accuracy, and which test images it got right) in
# `results/`; with
# `VIT_TUTORIAL_RETRAIN=1` the cell below trains the model. Its test
# accuracy, scored once:

# %%
# NBVAL_IGNORE_OUTPUT
best = point(model_row("fashion-mnist/hybrid-lsa+kd", fashion))
assert build_model("fashion-mnist/hybrid-lsa+kd").config.lsa
paired_table(best, "taught hybrid", (("hybrid", whole["fashion-mnist/hybrid"]),
                                     ("hybrid + LSA, taught by the CNN", best),
                                     ("ViT + SPT + LSA, taught", local_point),
                                     ("CNN (the teacher)", whole["fashion-mnist/cnn"])))

# %%
if best["epochs"] >= 10:  # the book's run (not quick mode)
    assert best["test_acc"] > whole["fashion-mnist/hybrid"]["test_acc"]
    assert mcnemar(point_correct(best), point_correct(whole["fashion-mnist/hybrid"]))["p_value"] < 0.01
    assert mcnemar(point_correct(best), point_correct(whole["fashion-mnist/cnn"]))["p_value"] > 0.05  # a tie

# %% [markdown]
# On the 10,000 test images the taught hybrid reaches 93.69 % (95 %
# interval 93.2-94.1 %): 0.6 points above the shipped hybrid (205 against
# 143 images, p = 0.001), and level with its own teacher, the CNN at
# 93.55 % (198 against 184 images, p = 0.5: a tie). Every other ViT in
# this notebook is behind the CNN on clothes; this one is not, and it is
# not ahead of it either. The validation images had it ahead of the CNN
# by 0.7 points; the test images, touched once, do not confirm that, which
# is why the choice and the claim are made on different images. A second
# seed of the same recipe, tested whatever it scored, tells the same
# story: 94.30 % on validation, 93.52 % on test, a tie with this seed
# (155 images against 138, p = 0.35) and with the CNN (185 against 188,
# p = 0.92)
# (`lab/logs/accuracy-fashion-mnist-hybrid-lsa-distilled-seed1-*`).
# It still misses 94 %. Nor did the stem that lifted the digits' hybrid get there:
# with the CNN's whole trunk of five convolutions as its stem, two
# encoder blocks of width 128 (428,730 parameters), LSA and the same
# teacher, the clothes hybrid reached 94.18 % on the validation images,
# not ahead of this one's 94.38 %, so its test images were not scored
# (`lab/logs/fashion-hybrid-trunk-lsa-distilled-*`). Six
# blocks instead of two under that stem (958,682 parameters, twice the
# time) gave 94.24 %: on the same images a tie with two blocks (68
# right for the deeper one only, 65 for the other, p = 0.86;
# `lab/logs/fashion-hybrid-trunk-depth6-*`). A better teacher
# did not get there either. A wider, deeper CNN (six convolutions of 48,
# 96 and 192 channels, 646,522 parameters) reached 94.52 % on the
# validation images, ahead of the shipped CNN (104 images against 60,
# p = 0.0007). Taught by it, the two-block student scored 93.74 %, not
# above the 94.18 % it reached with the shipped CNN as teacher (59 images
# against 81, p = 0.08) and below its new teacher (p = 0.004). A better
# classifier is not always a better teacher
# (`lab/logs/fashion-stronger-teacher-*`; one seed, test
# images not scored).

# %% [markdown]
# ### And on the digits?
#
# The same teacher was tried on the digit sample, under a rule written
# before the runs (the website's decision record on teaching the digit
# models): a taught ViT or hybrid would replace its untaught one only if,
# cross-validated on 9 folds of 4,000 digits with each fold's teacher
# trained on that fold's digits alone, it were ahead by at least 0.4 points
# and by McNemar's test after Holm's correction. The rows of those folds:

# %%
from vit_tutorial.evaluation import difference_summary, holm, mcnemar_summary, p_text, paired_difference
from vit_tutorial.report import pooled
from vit_tutorial.results import RESULTS

taught_digits = {}
for arch in ("vit", "hybrid"):
    untaught_cv, _ = pooled(f"mnist-sample/{arch}", {}, 9, 0, RESULTS)
    taught_cv, _ = pooled(f"mnist-sample/{arch}+kd", {}, 9, 0, RESULTS)
    taught_digits[arch] = (paired_difference(taught_cv, untaught_cv), mcnemar(taught_cv, untaught_cv))
adjusted_p = holm([test["p_value"] for _, test in taught_digits.values()])  # two comparisons: one family
for (arch, (gain, test)), adjusted in zip(taught_digits.items(), adjusted_p):
    print(f"{label('mnist-sample/' + arch)} taught minus untaught, on {gain['images']:,} digits: "
          f"{difference_summary(gain)}; {mcnemar_summary(test, 'taught', 'untaught')}, Holm {p_text(adjusted)}")
assert all(gain["difference"] < 0.004 for gain, _ in taught_digits.values())  # neither reaches the rule's 0.4

# %% [markdown]
# Neither gain reaches the rule's 0.4 points, so on the digits the book keeps
# its untaught models. What a teacher gives is its answers on the images it
# is shown: the CNN's assumptions, borrowed, not built into the student. On
# clothes that lifted the pure ViT; on digits the hybrid already has the
# CNN's convolutions, and the ViT learns from the CNN's answers nothing
# measurable that it does not learn from the labels in its 160 epochs.

# %% [markdown]
# ## What to do with a small dataset
#
# From these measurements, in the order we would try them:
#
# 1. **Train longer before you blame the architecture.** Watch the training
#    accuracy (notebook 06), and choose the number of epochs on more than a
#    few hundred validation images (notebook 06 cross-validates it): a ViT
#    on a few hundred images needs many more steps than a CNN. At 500
#    digits, 80 epochs gave it about 72 %, 160 gave 91 % and 320 gave 95 %.
# 2. **Give it a convolutional stem.** The hybrid changes only how pixels
#    become tokens. On clothes it was ahead of the pure ViT at every size,
#    by 3.7 points on all 55,000; on digits, with the CNN's five
#    convolutions as its stem, it was ahead of the ViT at every size at
#    the same number of images seen, and never told apart from the CNN. It
#    costs more per image (its tokens are 49 instead of 16 on digits). With
#    locality self-attention and the CNN as teacher it drew level with the
#    CNN on clothes too (93.7 against 93.55 %).
# 3. **Augment.** Shifts, small rotations and zooms for digits, mirrors and
#    shifts for clothes (notebooks 06, 10 and 12): each teaches a little of
#    what a convolution assumes.
# 4. **Let a CNN teach it.** Keep the pure ViT and add the CNN's
#    probabilities to its loss (soft distillation): on all 55,000 clothes
#    it gained 0.8 points on the test images (p = 0.0008), far less than
#    the convolutional stem's 3.7. It is no sure win: on the 4,000 digits,
#    cross-validated (`lab/cv.py`, a teacher trained on
#    each fold's own digits), the taught hybrid scored 98.29 % against
#    98.40 % for the hybrid alone (p = 0.6, a tie), while the CNN itself
#    scored 99.22 %. That hybrid had a smaller stem, two convolutions of
#    stride 2; nothing else we cross-validated on it closed the gap (a stem
#    twice or four times as wide, two encoder blocks instead of four, the
#    mean of the tokens instead of the class token, dropout, or the wide
#    stem taught by the CNN: all between 98.1 and 98.5 %). What did was
#    more convolution: the CNN's whole trunk of five convolutions as the
#    stem, under two encoder blocks, reached 98.93 and 98.89 % on two
#    different splits of the digits into folds, ahead of the small stem on
#    both (p = 9e-6 and 6e-4), and is the book's `mnist-sample/hybrid` since. The
#    CNN's 99.18 and 99.33 % on the same folds are still a little higher
#    (p = 0.14 and 0.004) (the README's tables,
#    `lab/logs/cv-recipes-mnist-hybrid-*`). With a third more
#    digits, 4,000 per fold as the command line trains on (9 folds), the
#    hybrid scored 99.20 % and a CNN of 40 epochs 99.24 %: a tie (14
#    digits against 16, p = 0.86), while the pure ViT scored 98.24 %
#    (`lab/logs/cv9-mnist-cli-size-*`). Trained for 60 epochs
#    instead of 80, as the book does since, the hybrid scored 99.22 % on
#    the same folds (16 digits against 15, p = 1;
#    `lab/logs/cv9-mnist-hybrid-60-epochs-*`).
# 5. **Build a little locality into the ViT.** Shifted patch tokens and
#    locality self-attention (Lee et al., 2021) add 1 % to the parameters
#    and about an eighth to the training time; they took the pure ViT from
#    89.4 to 92.0 and 92.3 % on the clothes (two seeds) without a teacher,
#    and to 92.4 % with the CNN as teacher, the best model here without a
#    convolution. On the validation images the shifted
#    tokens alone did as well (92.66 against 92.46 %); the locality
#    attention alone did nothing (90.20 against 90.66 % without it).
# 6. **Pre-train, then fine-tune.** This is the paper's own answer: its
#    ViTs draw level with ResNets of comparable cost after pre-training on
#    ImageNet-21k (14 million images) and pull ahead after JFT-300M (300
#    million), then fine-tuning on the small task. We have not measured it here (no
#    network, no large dataset).
# 7. **Or use a CNN.** On every dataset and size in this notebook, the CNN
#    was as accurate as the best transformer or more. It is not the cheapest
#    model everywhere: on digits it has about as many parameters as the ViT
#    but does several times as many multiply-adds per image, so its steps
#    cost more; on clothes it is by far the smallest. The ViT's
#    strengths, global attention from the first layer and scaling with data,
#    pay off at sizes far beyond these.
#
# Training recipes that make a ViT competitive on ImageNet-1k alone, without
# extra data, exist (for example DeiT: Touvron et al., 2021, arXiv
# 2012.12877, with strong augmentation, regularisation and distillation from
# a CNN teacher); we tried its distillation above, and trying its strong
# augmentation and longer schedules on these small sets is a good next
# project.
#
# This is the last notebook of the book. From here: train the hybrid on
# Fashion-MNIST with `python -m vit_tutorial train --model fashion-mnist/hybrid
# --out runs/hybrid`, open its attention with notebook 08's
# tools, or run the grid search of notebook 12 on the hybrid.

# %% [markdown]
# ## Exercises
#
# 1. How many optimiser steps does each point of the middle panel take, at
#    the recipe's batch of 64? Check that they all see 160,000 images.
# 2. A patch embedding is translation-equivariant only for shifts by whole
#    patches. Shift a digit right by exactly one patch (7 pixels): the
#    patch tokens (before positions are added) should be the old tokens
#    moved one column, except the first column. Check it, and check that a
#    shift by 3 pixels does not move them that way.
# 3. McNemar's p-value by hand: for 18 digits right for one model only and
#    16 for the other, compute the two-sided binomial tail with
#    `math.comb` and compare it with `mcnemar`.
# 4. A stem with strides (1, 2, 2) on 28 × 28 images: which `patch_size`
#    must the config declare, and how many tokens does the encoder see?

# %% [markdown]
# **Solution 1.**

# %%
for size, epochs in ((500, 320), (1000, 160), (2000, 80), (4000, 40)):
    steps = math.ceil(size / 64) * epochs
    assert size * epochs == EQUAL_SEEN
    print(f"{size:5d} digits x {epochs:3d} epochs = {size * epochs:,} images, {steps:,} steps")

# %% [markdown]
# **Solution 2.**

# %%
embed = build_model("mnist-sample/vit").patch_embed
digit = mnist.val.batch(torch.arange(1))[0]
with torch.no_grad():
    before = embed(digit).view(1, 4, 4, -1)  # (B, N, D) -> (B, rows, columns, D)
    after = embed(shift(digit, 7, 0)).view(1, 4, 4, -1)
    off_grid = embed(shift(digit, 3, 0)).view(1, 4, 4, -1)
assert_close(after[:, :, 1:], before[:, :, :-1])  # one patch to the right: the same tokens, one column on
assert not torch.allclose(off_grid[:, :, 1:], before[:, :, :-1], atol=1e-3)
print("a shift by one whole patch moves the tokens; a shift by 3 pixels changes them")

# %% [markdown]
# **Solution 3.**

# %%
a_only, b_only = 18, 16
n, k = a_only + b_only, min(a_only, b_only)
p_by_hand = min(1.0, 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2**n)
fake_a = torch.tensor([True] * a_only + [False] * b_only)
assert math.isclose(mcnemar(fake_a, ~fake_a)["p_value"], p_by_hand)
print(f"p = {p_by_hand:.2f}")

# %% [markdown]
# **Solution 4.**

# %%
from vit_tutorial import ViTConfig

config = ViTConfig(stem="conv", stem_channels=(32, 64, 128), stem_strides=(1, 2, 2), patch_size=4)
assert config.patch_size == 1 * 2 * 2 and config.num_patches == (28 // 4) ** 2 == 49
print(f"patch_size {config.patch_size}: a {config.grid_size} x {config.grid_size} grid, {config.num_patches} tokens")

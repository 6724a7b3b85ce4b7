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
# # 08 · Attention maps: where the model looks
#
# Notebook 07 measured *how well* the trained MNIST model classifies digits.
# This notebook asks *how*: every attention layer is a table of weights that
# says which tokens each token reads from, and those tables can be drawn.
# We will
#
# 1. capture the attention weights of every layer for a few test digits, and
#    check that looking at them changes nothing;
# 2. draw the class token's attention over the digit, for every layer and
#    every head;
# 3. combine the layers into one map with **attention rollout**
#    (Abnar & Zuidema, 2020);
# 4. compare the maps of digits the model gets right with those it gets wrong;
# 5. measure how far each head looks, the paper's *mean attention distance*
#    (its Figure 7, right);
# 6. watch the maps take shape over training, as a grid and as an animation;
# 7. run the same code on torchvision's ViT-B/16 with ImageNet weights, when
#    those weights can be had.
#
# Every tool is written out by hand first and then checked against the
# package's version in `vit_tutorial.inspect`, which the rest of the notebook
# (and notebook 09) uses.

# %%
# The package's plot helpers return matplotlib Figures; this lets Jupyter draw them.
# %matplotlib inline
import math

import torch
from torch.testing import assert_close

from vit_tutorial import default_device, evaluate, load_checkpoint, patchify, quick_mode, set_seed
from vit_tutorial.book import IMAGES, run_dir, train_or_load
from vit_tutorial.inspect import (attention_rollout, cls_attention, mean_attention_distance, patch_distances,
                                  pretrained_vit_b_16)
from vit_tutorial.plots import plot_attention_distance, plot_attention_grid, plot_histograms, save_gif

set_seed(0)
device = default_device()
QUICK = quick_mode()  # VIT_TUTORIAL_QUICK=1: the small model trained in seconds, as in CI

# %% [markdown]
# ## The trained model
#
# `train_or_load` gives back the model that notebook 06 trained (and trains
# it, if this notebook runs first). In quick mode it is a model trained for
# two epochs on 1,000 digits: its maps are rougher, and every number printed
# below differs from a full run, but all the code and every check is the same.

# %%
# NBVAL_IGNORE_OUTPUT
model, history, splits = train_or_load("mnist")
model = model.to(device).eval()
print(f"{run_dir('mnist')}: trained for {len(history)} epochs, "
      f"validation accuracy {history.val_acc[-1]:.1%}")

# %% [markdown]
# The shape letters of the book: each 28 × 28 digit is cut into a G × G grid
# of P × P patches, N = G² of them, and the encoder has L layers of h heads.
# With the class token in front, every attention matrix is (N+1) × (N+1).

# %%
cfg = model.config
P, G, N = cfg.patch_size, cfg.grid_size, cfg.num_patches
L, h = cfg.depth, cfg.num_heads
assert (P, G, N, L, h) == (7, 4, 16, 4, 4)
print(f"P = {P}, grid {G} x {G}, N = {N} patches, L = {L} layers, h = {h} heads")

# %% [markdown]
# We look at a handful of test digits: for each of six classes, the first
# digit of that class in the test set. The test set only supplies examples
# here; nothing is tuned on it.

# %%
classes_to_show = [0, 2, 3, 4, 7, 9]
picks = torch.stack([(splits.test.labels == c).nonzero()[0, 0] for c in classes_to_show])
x, y = splits.test.batch(picks)
B = len(x)
assert x.shape == (B, 1, 28, 28) and y.tolist() == classes_to_show

# %% [markdown]
# ## Capturing the attention
#
# The package's attention has two paths that give the same numbers: PyTorch's
# fused `scaled_dot_product_attention`, which is fast but never forms the
# weight matrix, and the explicit `softmax(Q Kᵀ / √d)`, which the model uses
# when it is asked for the weights. So `model(x, return_attention=True)`
# returns the logits and one (B, h, N+1, N+1) tensor per layer. Asking must not
# change the answer: the logits of the two paths agree, and every row of
# weights sums to 1.

# %%
with torch.no_grad():
    plain_logits = model(x.to(device))
    logits, attentions = model(x.to(device), return_attention=True)
attentions = [a.cpu() for a in attentions]
assert_close(logits, plain_logits)
assert len(attentions) == L
for a in attentions:
    assert a.shape == (B, h, N + 1, N + 1)
    assert_close(a.sum(dim=-1), torch.ones(B, h, N + 1))
print(f"{L} attention tensors of shape (B, h, N+1, N+1) = {tuple(attentions[0].shape)}; logits unchanged")

# %% [markdown]
# ## The class token's attention
#
# The head classifies from the class token alone, so the most telling row of
# each matrix is row 0: how much the class token reads from each patch. Its
# entries in columns 1 to N belong to the patches in reading order, so patch
# i sits at row i // G and column i % G of the grid. Written out as a loop:

# %%
by_hand = torch.zeros(B, L, h, G, G)
for layer in range(L):
    for i in range(N):
        row, col = divmod(i, G)
        by_hand[:, layer, :, row, col] = attentions[layer][:, :, 0, 1 + i]

cls_maps = torch.stack([cls_attention(a, G) for a in attentions], dim=1)  # L x (B, h, G, G) -> (B, L, h, G, G)
assert cls_maps.shape == (B, L, h, G, G)
assert_close(cls_maps, by_hand)

# %% [markdown]
# What is left of row 0 goes to the class token itself. How much that is,
# layer by layer (averaged over heads and digits), says how much each layer
# reads from the image at all:

# %%
# NBVAL_IGNORE_OUTPUT
for layer, a in enumerate(attentions, start=1):
    print(f"layer {layer}: class token keeps {a[:, :, 0, 0].mean():.0%} for itself, "
          f"sends {a[:, :, 0, 1:].sum(-1).mean():.0%} to the patches")

# %% [markdown]
# Now the picture. For the first digit, each row below is a layer and each
# column a head; the colour over each 7 × 7 patch is the weight the class
# token gives it. All 16 maps share one colour scale, so bright means the
# same weight everywhere.

# %%
# NBVAL_IGNORE_OUTPUT
fig = plot_attention_grid(x[0], cls_maps[0], row_labels=[f"layer {i}" for i in range(1, L + 1)],
                          col_labels=[f"head {i}" for i in range(1, h + 1)],
                          title=f"Class-token attention of every head, digit {y[0].item()}")
fig.savefig(IMAGES / "attention_heads.png", dpi=120, bbox_inches="tight")
fig

# %% [markdown]
# Heads of the same layer often look at different places: that is what
# several heads are for. To see all six digits at once, we average the heads
# of each layer. One row per digit, one column per layer:

# %%
# NBVAL_IGNORE_OUTPUT
fig = plot_attention_grid(x, cls_maps.mean(dim=2), row_labels=[f"digit {v}" for v in y.tolist()],
                          col_labels=[f"layer {i}" for i in range(1, L + 1)],
                          title="Class-token attention, heads averaged")
fig.savefig(IMAGES / "attention_layers.png", dpi=120, bbox_inches="tight")
fig

# %% [markdown]
# ## Attention rollout
#
# One layer's map tells only part of the story. After layer 1, a "patch"
# token already holds a mixture of many patches, so a weight on it in layer
# 4 is a weight on that whole mixture. **Attention rollout**
# (Abnar & Zuidema, 2020, *Quantifying Attention Flow in Transformers*)
# follows the mixing back to the input:
#
# 1. average the heads of each layer into one matrix A;
# 2. account for the skip connection around attention, which passes every
#    token on unchanged, by using 0.5 · A + 0.5 · I, rows renormalised to
#    sum to 1;
# 3. multiply the layers: the joint attention after layer l is
#    Â_l · joint_{l-1}, so the last layer stands on the left.
#
# Row 0 of the result says how much of the class token's final state comes
# from each input patch. By hand:

# %%
I = torch.eye(N + 1)
joint = I
for a in attentions:
    a_hat = 0.5 * a.mean(dim=1) + 0.5 * I  # (B, h, N+1, N+1) -> (B, N+1, N+1), plus the skip connection
    a_hat = a_hat / a_hat.sum(dim=-1, keepdim=True)
    joint = a_hat @ joint  # the new layer on the left

rollout = attention_rollout(attentions)
assert rollout.shape == (B, N + 1, N + 1)
assert_close(rollout, joint)
assert_close(rollout.sum(dim=-1), torch.ones(B, N + 1))

# %% [markdown]
# The package's `attention_rollout` also offers the variants of the original
# code: the heads can be fused by their maximum or minimum instead of their
# mean, and the weakest weights can be discarded (never those on the class
# token). Below, the last layer alone next to three rollouts. Rollout maps
# are flat: at every layer each token keeps at least half of its weight on
# itself, so the differences sit on top of a large common floor. Each map is therefore
# stretched from its own lowest to its highest weight: the colours show
# *where* the model looks, not how strongly.

# %%
# NBVAL_IGNORE_OUTPUT
maps = torch.stack([
    cls_maps[:, -1].mean(dim=1),
    cls_attention(rollout, G),
    cls_attention(attention_rollout(attentions, head_fusion="max"), G),
    cls_attention(attention_rollout(attentions, discard_ratio=0.5), G),
], dim=1)  # (B, 4 maps, G, G)
fig = plot_attention_grid(x, maps, row_labels=[f"digit {v}" for v in y.tolist()], scale="each",
                          col_labels=["last layer", "rollout", "rollout, max", "rollout,\ndiscard 50%"],
                          title="Attention rollout")
fig.savefig(IMAGES / "rollout.png", dpi=120, bbox_inches="tight")
fig

# %% [markdown]
# ## Right and wrong
#
# Does the model look elsewhere when it is wrong? We run it over the whole
# test set, take its most confident mistakes, and put each beside a digit of
# the same class that it got right (the one it was surest of). Top row:
# right; bottom row: wrong, titled *true → predicted (probability)*.

# %%
# NBVAL_IGNORE_OUTPUT
ev = evaluate(model, splits.test, device=device)
wrong = ev.misclassified[:6]
right = []
for i in wrong.tolist():
    label = ev.labels[i]
    ok = ((ev.labels == label) & (ev.predictions == label)).nonzero().flatten()
    right.append(ok[ev.probabilities[ok, label].argmax()].item() if len(ok) else i)
print(f"test accuracy {ev.accuracy:.1%}: {len(ev.misclassified)} of {len(ev.labels)} digits wrong")

# %%
def rollout_maps(model, images, batch_size=256):
    """The class token's rollout map (M, G, G) for images (M, C, H, W)."""
    out = []
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            _, att = model(images[start:start + batch_size].to(device), return_attention=True)
            out.append(cls_attention(attention_rollout([a.cpu() for a in att]), model.config.grid_size))
    return torch.cat(out)


# %%
# NBVAL_IGNORE_OUTPUT
if len(wrong):
    pair_idx = torch.tensor([right, wrong.tolist()])  # (2, K): row 0 right, row 1 wrong
    pair_images = splits.test.batch(pair_idx.flatten())[0].view(2, -1, 1, 28, 28)
    pair_maps = rollout_maps(model, pair_images.flatten(0, 1)).view(2, -1, G, G)
    titles = [[f"{ev.labels[i]} → {ev.predictions[i]} ({ev.probabilities[i, ev.predictions[i]]:.0%})"
               for i in row] for row in pair_idx.tolist()]
    fig = plot_attention_grid(pair_images, pair_maps, row_labels=["right", "wrong"], titles=titles,
                              scale="each", show_input=False, title="Rollout on digits the model gets right and wrong")
    fig.savefig(IMAGES / "attention_correct_vs_wrong.png", dpi=120, bbox_inches="tight")
else:
    fig = None
    print("The model got every test digit right: there are no mistakes to compare.")
fig

# %% [markdown]
# A few pictures are anecdotes. For a number over the whole test set we ask:
# how much of the class token's rollout weight lands on the digit itself?
# Call a patch *inked* when its mean grey level is above 0.1; on these digits
# about four patches in ten are. The **ink share** of a digit is the part of
# the rollout map (divided by its sum) that falls on its inked patches.

# %%
test_images = splits.test.batch(torch.arange(len(splits.test)))[0]
all_maps = rollout_maps(model, test_images)
assert all_maps.shape == (len(splits.test), G, G)
inked = patchify(test_images, P).mean(dim=-1) > 0.1  # (M, N, P*P) -> (M, N): which patches hold ink
weights = all_maps.flatten(1) / all_maps.flatten(1).sum(dim=1, keepdim=True)  # (M, G, G) -> (M, N)
ink_share = (weights * inked).sum(dim=1)
assert ink_share.shape == (len(splits.test),) and ((ink_share >= 0) & (ink_share <= 1 + 1e-6)).all()

# %%
# NBVAL_IGNORE_OUTPUT
correct = ev.predictions == ev.labels
print(f"inked patches: {inked.float().mean():.0%} of all patches")
groups = {"right": ink_share[correct], "wrong": ink_share[~correct]}
groups = {k: v for k, v in groups.items() if len(v)}
for k, v in groups.items():
    print(f"{k:5s}: {len(v):3d} digits, ink share {v.mean():.1%} on average")
fig = plot_histograms(groups, xlabel="share of the rollout weight on inked patches",
                      title="How much the class token reads from the digit")
fig.savefig(IMAGES / "attention_ink_share.png", dpi=120, bbox_inches="tight")
fig

# %% [markdown]
# In the full run, the rollout puts about half its weight on the four in ten
# patches that hold ink: the model reads mostly from the digit, though the
# residual floor keeps every patch in play. The digits it gets wrong show a
# slightly lower share on average, but the difference is small next to the
# spread within each group, and there are only a handful of mistakes: read
# it as a hint, not a finding.
#
# ## How far does each head look?
#
# The paper's Figure 7 (right) summarises every head by one number, its
# **mean attention distance**: for every query patch, the distance in pixels
# to every key patch, weighted by the attention between them, averaged over
# queries and images. It is the transformer's counterpart of a CNN's
# receptive field. We leave out the class token's row and column, and since
# a patch may give much of its weight to the class token, we renormalise
# each query's weights over the patch keys first. Distances run between
# patch centres, so two neighbours are P = 7 pixels apart.
#
# By hand, with plain Python loops, for the first layer and two digits:

# %%
a = attentions[0][:2]
by_hand = [0.0] * h
for b in range(2):
    for head in range(h):
        for q in range(N):
            w = a[b, head, 1 + q, 1:].tolist()  # weights of query patch q on the N patch keys
            total = sum(w)
            for k in range(N):
                distance = P * math.dist(divmod(q, G), divmod(k, G))  # (row, col) of each patch
                by_hand[head] += w[k] / total * distance / (N * 2)  # mean over queries and digits
assert_close(mean_attention_distance(a, P, G), torch.tensor(by_hand))

# %% [markdown]
# A head that spread its weight evenly over all patches would score the mean
# distance between two patches of the grid, about 14 pixels here. That is the
# reference line of the figure; a head below it prefers nearby patches.

# %%
uniform = torch.full((1, 1, N + 1, N + 1), 1.0 / (N + 1))
reference = mean_attention_distance(uniform, P, G).item()
assert_close(reference, patch_distances(P, G).mean().item())  # the mean over all pairs of patches
print(f"uniform attention on a {G} x {G} grid of {P}-pixel patches: {reference:.2f} pixels")

# %% [markdown]
# Now every head of every layer, measured on the whole test set, for the
# trained model and for the same model before training (the snapshot that
# `fit` saved at epoch 0).

# %%
snapshots = sorted((run_dir("mnist") / "snapshots").glob("epoch_*.pt"))
assert snapshots and snapshots[0].name == "epoch_000.pt"


def attention_distances(model, images, batch_size=250):
    """Mean attention distance (L, h) of every head of ``model``, averaged over ``images``."""
    total = 0
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            batch = images[start:start + batch_size]
            _, att = model(batch.to(device), return_attention=True)
            total = total + torch.stack([mean_attention_distance(a.cpu(), P, G) for a in att]) * len(batch)
    return total / len(images)


untrained = load_checkpoint(snapshots[0], device)
distances = {"trained": attention_distances(model, test_images),
             "before training": attention_distances(untrained, test_images)}
assert distances["trained"].shape == (L, h)

# %%
# NBVAL_IGNORE_OUTPUT
fig = plot_attention_distance(distances, reference=reference, from_zero=False,
                              title="Mean attention distance of every head (cf. the paper's Figure 7, right)")
fig.savefig(IMAGES / "mean_attention_distance.png", dpi=120, bbox_inches="tight")
fig

# %% [markdown]
# Mind the vertical axis: it spans only a couple of pixels. Before training,
# every head sits on the uniform line, because random queries and keys give
# nearly flat attention. After training the heads spread out around it, most
# a little below (they favour nearby patches), a few above, but every head
# still looks across the whole digit. That is no surprise: on a 4 × 4 grid
# every patch is at most three steps from any other, and a stroke of a digit
# crosses several patches, so there is little room and little reason to stay
# local. The paper, with 196 patches of ImageNet photos, found the contrast
# that gives its figure its shape: in the lowest layers some heads attend
# locally, like a convolution, while others already look across the whole
# image, and deeper layers look far. The last section of this notebook
# draws the same figure for a pretrained ViT-B/16, when its weights are
# available.
#
# ## The maps during training
#
# `fit` kept a copy of the weights at a few epochs (0, 1, 2, 5, 10, ... and
# the last; just 0, 1 and 2 in quick mode). Loading each snapshot and drawing
# the rollout for the same four digits shows the attention take shape.

# %%
# NBVAL_IGNORE_OUTPUT
epochs, frames = [], []
for path in snapshots:
    snap = load_checkpoint(path, device)
    epochs.append(int(path.stem.split("_")[1]))
    frames.append(rollout_maps(snap, x[:4]))
training_maps = torch.stack(frames)  # (epochs, 4 digits, G, G)
print("snapshots at epochs", epochs)


def accuracy_at(epoch):
    return "untrained" if epoch == 0 else f"val. acc. {history.val_acc[epoch - 1]:.0%}"


fig = plot_attention_grid(x[:4].unsqueeze(0), training_maps, scale="each", show_input=False,
                          row_labels=[f"epoch {e}\n{accuracy_at(e)}" for e in epochs],
                          col_labels=[f"digit {v}" for v in y[:4].tolist()],
                          title="Rollout over training")
fig.savefig(IMAGES / "attention_training.png", dpi=120, bbox_inches="tight")
fig

# %%
assert training_maps.shape == (len(snapshots), 4, G, G)

# %% [markdown]
# Before training the rollout is almost perfectly flat; stretched to the full
# colour range, its tiny differences look like noise. Within the first
# epochs the maps move onto the strokes of the digit, and from then on they
# sharpen and settle while the accuracy climbs.
#
# The same frames as an animation, written to `images/attention_training.gif`:
#
# ![attention over training](../images/attention_training.gif)

# %%
gif_frames = [
    plot_attention_grid(x[:4].unsqueeze(0), training_maps[i:i + 1], scale="each", size=1.6, show_input=False,
                        col_labels=[f"digit {v}" for v in y[:4].tolist()], cbar_label="relative weight",
                        title=f"Attention rollout, epoch {e} ({accuracy_at(e)})")
    for i, e in enumerate(epochs)
]
save_gif(gif_frames, IMAGES / "attention_training.gif", duration_ms=900)
assert (IMAGES / "attention_training.gif").stat().st_size > 0

# %% [markdown]
# ## The same code on a large pretrained ViT
#
# Nothing above depends on MNIST. `from_torchvision` turns any torchvision
# `VisionTransformer` into the book's `ViT`, so the same functions can look
# inside ViT-B/16 (12 layers of 12 heads over 14 × 14 patches of 16 pixels)
# trained on ImageNet. Its weights come from your own torch cache, or are
# downloaded when a network is up; otherwise this part is skipped.

# %%
# NBVAL_IGNORE_OUTPUT
vit_b16, message = pretrained_vit_b_16()
print(message)

# %% [markdown]
# We feed it the photograph of Grace Hopper that ships with matplotlib and
# draw the rollout of its class token, then the mean attention distance of
# all 144 heads: the paper's Figure 7 (right), from one image.

# %%
# NBVAL_IGNORE_OUTPUT
if vit_b16 is not None:
    from IPython.display import display
    from matplotlib import cbook
    from PIL import Image
    from torchvision.models import ViT_B_16_Weights
    from torchvision.transforms import functional as TF

    with Image.open(cbook.get_sample_data("grace_hopper.jpg")) as im:
        photo = TF.center_crop(TF.resize(TF.to_tensor(im.convert("RGB")), 224, antialias=True), 224)[None]
    bcfg = vit_b16.config
    with torch.no_grad():
        b_logits, b_att = vit_b16(photo, return_attention=True)
    categories = ViT_B_16_Weights.IMAGENET1K_V1.meta["categories"]
    top = b_logits.softmax(-1)[0].topk(3)
    print("top classes:", ", ".join(f"{categories[i]} ({p:.0%})" for p, i in zip(top.values, top.indices)))
    b_maps = torch.stack([cls_attention(b_att[-1], bcfg.grid_size).mean(1),
                          cls_attention(attention_rollout(b_att), bcfg.grid_size)], dim=1)
    fig = plot_attention_grid(photo, b_maps, col_labels=["last layer", "rollout"], scale="each",
                              mode="bilinear", size=2.2, title="ViT-B/16 (ImageNet)")
    fig.savefig(IMAGES / "attention_vit_b_16.png", dpi=120, bbox_inches="tight")
    display(fig)
    b_dist = {"ViT-B/16, one photo": torch.stack([mean_attention_distance(a, bcfg.patch_size, bcfg.grid_size)
                                                  for a in b_att])}
    b_ref = patch_distances(bcfg.patch_size, bcfg.grid_size).mean().item()
    fig = plot_attention_distance(b_dist, reference=b_ref, title="ViT-B/16: mean attention distance")
    fig.savefig(IMAGES / "mean_attention_distance_vit_b_16.png", dpi=120, bbox_inches="tight")
    display(fig)

# %% [markdown]
# ## What comes next
#
# The attention maps show *where* the class token reads. They rest on two
# things the model learned before any attention happens: the patch
# embedding, which turns each 7 × 7 patch into a vector, and the position
# embeddings, which tell the model where each patch was. Notebook 09 opens
# those up, and draws the rest of the paper's Figure 7.

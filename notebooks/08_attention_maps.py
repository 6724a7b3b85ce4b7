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
# # 8. Attention maps: where the model looks
#
# Notebook 07 measured *how well* the trained MNIST model classifies digits.
# This notebook asks *how*: every attention layer is a table of weights that
# says which tokens each token reads from, and those tables can be drawn.
# We will
#
# 1. capture the attention weights of every layer for a few validation
#    digits, and check that looking at them changes nothing;
# 2. draw the class token's attention over the digit, for every layer and
#    every head;
# 3. combine the layers into one map with **attention rollout**
#    (Abnar & Zuidema, 2020), and measure how much of it lands on the digit
#    against what a map that ignores the image would get;
# 4. compare the maps of digits the model gets right with those it gets wrong;
# 5. measure how far each head looks, the paper's *mean attention distance*
#    (its Figure 7, right), and how spread out its weights are, their
#    *entropy*;
# 6. watch the maps take shape over training, as a grid and as an animation;
# 7. run the same code on torchvision's ViT-B/16 with ImageNet weights, when
#    those weights can be had.
#
# Every tool is written out by hand first and then checked against the
# package's version in `vit_tutorial.inspect`, which the rest of the notebook
# (and notebook 09) uses. All images come from the validation split; the test
# set is kept for the one accuracy that notebook 07 reports.

# %%
# The package's plot helpers return matplotlib Figures; this lets Jupyter draw them.
# %matplotlib inline
import math
from pathlib import Path

import torch
from torch.testing import assert_close

from vit_tutorial import default_device, evaluate, patchify, quick_mode, set_seed
from vit_tutorial.book import IMAGES, LOADED_FROM, digits, load, snapshots as kept_snapshots
from vit_tutorial.utils import shown_path
from vit_tutorial.inspect import (attention_rollout, cls_attention, discard_weakest, fuse_heads,
                                  mean_attention_distance, patch_distances)
from vit_tutorial.model import pretrained_vit_b_16
from vit_tutorial.plots import plot_attention_distance, plot_attention_grid, plot_histograms, save_gif

set_seed(0)
device = default_device()
QUICK = quick_mode()  # VIT_TUTORIAL_QUICK=1: the small model trained in seconds, as in CI

# %% [markdown]
# ## The trained model
#
# `load` gives back the model that notebook 06 trained (and trains
# it, if this notebook runs first). In quick mode it is a model trained for
# two epochs on 1,000 digits: its maps are rougher, and every number printed
# below differs from a full run, but all the code and every check is the same.
# The numbers quoted in the text are those of the full run.

# %%
# NBVAL_IGNORE_OUTPUT
splits = digits()
MODEL = f"{splits.dataset}/vit"
model, history = load(MODEL, splits)
model = model.to(device).eval()
print(f"{shown_path(LOADED_FROM[MODEL])}: trained for {len(history)} epochs, "
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
# We look at a handful of validation digits: for each of six classes, the
# first digit of that class in the validation split.

# %%
classes_to_show = [0, 2, 3, 4, 7, 9]
picks = torch.stack([(splits.val.labels == c).nonzero()[0, 0] for c in classes_to_show])
x, y = splits.val.batch(picks)
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
# layer by layer (averaged over heads and the six digits), says how much each
# layer reads from the image at all:

# %%
# NBVAL_IGNORE_OUTPUT
for layer, a in enumerate(attentions, start=1):
    print(f"layer {layer}: class token keeps {a[:, :, 0, 0].mean():.0%} for itself, "
          f"sends {a[:, :, 0, 1:].sum(-1).mean():.0%} to the patches")

# %% [markdown]
# In the full run the class token keeps 13 % for itself in layer 1 and
# between 2 % and 6 % in the later layers: it reads most of its input from
# the patches (87 % in layer 1), and almost all of it after layer 1.
#
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
# Do the heads of one layer look at the same place? One way to count: for
# each layer and digit, the number of different patches that the four heads
# weight most. It is 1 when all four heads agree on their favourite patch and
# 4 when each picks its own; four picks at random among 16 patches would
# give 16 · (1 − (15/16)⁴) ≈ 3.6 different ones on average.

# %%
# NBVAL_IGNORE_OUTPUT
favourite = cls_maps.flatten(-2).argmax(dim=-1)  # (B, L, h, G, G) -> (B, L, h): each head's top patch
distinct = torch.tensor([[len(set(favourite[b, layer].tolist())) for layer in range(L)] for b in range(B)])
assert distinct.shape == (B, L) and ((distinct >= 1) & (distinct <= h)).all()
chance = N * (1 - (1 - 1 / N) ** h)
for layer in range(L):
    print(f"layer {layer + 1}: the {h} heads' favourite patches are {distinct[:, layer].float().mean():.1f} "
          f"different ones on average over {B} digits (at random: {chance:.1f})")

# %% [markdown]
# In the full run the four heads of a layer pick 3.0 to 3.7 different
# favourites, near the 3.6 of four random picks: the heads of one layer
# mostly look at different places, which is what several heads are for.
# Six digits are few; the entropy further down, measured over 500 digits,
# says more about each head.
#
# To see all six digits at once, we average the heads of each layer. One row
# per digit, one column per layer:

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
# The package's `attention_rollout` also offers the variants of a widely
# used implementation, [jacobgil/vit-explain](https://github.com/jacobgil/vit-explain)
# (its `vit_rollout.py`): the heads can be fused by their maximum or minimum
# instead of their mean, and the weakest weights of each layer's fused
# matrix can be discarded before the skip connection is added. There, only
# the class token's weight on itself is protected from being discarded;
# here the whole class-token column is, so no row can lose all its weight.
#
# With the mean of the heads, every row of A sums to 1, so the diagonal of
# 0.5 · A + 0.5 · I is at least 0.5: each token keeps at least half of its
# weight on itself at every layer, and rollout maps sit on a large common
# floor. The bound needs only that each row of A sums to at most 1, so it
# also holds after discarding (which can zero a token's own entry of A, but
# only lowers the row's sum) and for the minimum of the heads; not for the
# maximum: the maxima of the heads sum to more than 1 per row, and after
# renormalising, a token can keep much less. The
# smallest weight a token keeps on itself in one layer's matrix, over the six
# digits:

# %%
def layer_matrix(attention, head_fusion="mean", discard_ratio=0.0):
    """One layer's rollout step (B, N+1, N+1): fused heads, weakest weights dropped, plus the skip connection."""
    a = fuse_heads(attention, head_fusion)
    if discard_ratio:
        a = discard_weakest(a, discard_ratio)
    a = 0.5 * a + 0.5 * torch.eye(a.shape[-1])
    return a / a.sum(dim=-1, keepdim=True)


variants = {"mean": {}, "max": {"head_fusion": "max"}, "mean, discard 50%": {"discard_ratio": 0.5}}
self_weight = {name: min(layer_matrix(a, **kw).diagonal(dim1=-2, dim2=-1).min().item() for a in attentions)
               for name, kw in variants.items()}
assert self_weight["mean"] >= 0.5 - 1e-6 and self_weight["mean, discard 50%"] >= 0.5 - 1e-6

# %%
# NBVAL_IGNORE_OUTPUT
for name, w in self_weight.items():
    print(f"heads fused by {name:18s}: every token keeps at least {w:.1%} of its weight on itself")

# %% [markdown]
# In the full run every token keeps at least 50.4 % of its weight on itself
# with the mean, 53.1 % when half the weights are discarded, but only 24.9 %
# with the maximum. Below, the last layer alone next to three rollouts.
# Because of the floor, each map is stretched from its own lowest to its
# highest weight: the colours show *where* the model looks, not how strongly.

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
# validation split and take its most confident mistakes, at most one per true
# class so that no digit appears twice, and put each beside the digit of the
# same class that it got right with the most confidence. Top row: right;
# bottom row: wrong, titled *true → predicted (probability)*.

# %%
# NBVAL_IGNORE_OUTPUT
ev = evaluate(model, splits.val, device=device)
wrong, seen = [], set()
for i in ev.misclassified.tolist():  # most confident mistakes first
    if ev.labels[i].item() not in seen:
        seen.add(ev.labels[i].item())
        wrong.append(i)
wrong = wrong[:6]
right = []
for i in wrong:
    label = ev.labels[i]
    ok = ((ev.labels == label) & (ev.predictions == label)).nonzero().flatten()
    right.append(ok[ev.probabilities[ok, label].argmax()].item() if len(ok) else i)
assert len(set(wrong)) == len(wrong) and len(set(right)) == len(right)  # no digit twice in a row (at most six)
print(ev.summary("validation accuracy") + f": {len(ev.misclassified)} digits wrong, "
      f"from {len(seen)} classes")

# %%
assert ev.accuracy > 0.15 and ev.interval[0] > 0.10  # well above chance (10 %), even in quick mode
assert len(wrong) == len(right) <= 6 and all(ev.predictions[i] != ev.labels[i] for i in wrong)

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
    pair_idx = torch.tensor([right, wrong])  # (2, K): row 0 right, row 1 wrong
    pair_images = splits.val.batch(pair_idx.flatten())[0].view(2, -1, 1, 28, 28)
    pair_maps = rollout_maps(model, pair_images.flatten(0, 1)).view(2, -1, G, G)
    titles = [[f"{ev.labels[i]} → {ev.predictions[i]} ({ev.probabilities[i, ev.predictions[i]]:.0%})"
               for i in row] for row in pair_idx.tolist()]
    fig = plot_attention_grid(pair_images, pair_maps, row_labels=["right", "wrong"], titles=titles,
                              scale="each", show_input=False, title="Rollout on digits the model gets right and wrong")
    fig.savefig(IMAGES / "attention_correct_vs_wrong.png", dpi=120, bbox_inches="tight")
else:
    fig = None
    print("The model got every validation digit right: there are no mistakes to compare.")
fig

# %% [markdown]
# A few pictures are anecdotes. For a number over the whole validation split
# we ask: how much of the class token's rollout weight lands on the digit
# itself? Call a patch *inked* when its mean grey level is above 0.1. The
# **ink share** of a digit is the part of its rollout map (divided by the
# map's sum) that falls on its inked patches.
#
# A share means little without a baseline. Spreading the weight evenly would
# give each digit the fraction of its patches that are inked. A stronger
# baseline is a **position prior**: the rollout map averaged over the whole
# validation split, the same map for every digit. It already favours the
# middle of the image, where most digits have their ink, without looking at
# any one digit. Applied to each digit's inked patches, it says how much of
# the ink share comes from knowing where digits usually are. The model reads
# *this* digit only as far as its own map beats the prior.

# %%
val_images = splits.val.batch(torch.arange(len(splits.val)))[0]
all_maps = rollout_maps(model, val_images)
assert all_maps.shape == (len(splits.val), G, G)
inked = patchify(val_images, P).mean(dim=-1) > 0.1  # (M, N, P*P) -> (M, N): which patches hold ink
weights = all_maps.flatten(1) / all_maps.flatten(1).sum(dim=1, keepdim=True)  # (M, G, G) -> (M, N)
ink_share = (weights * inked).sum(dim=1)
prior = weights.mean(dim=0)  # (N,): the dataset-average rollout map, one for every digit
prior_share = (prior * inked).sum(dim=1)
even_share = inked.float().mean(dim=1)  # the same weight on every patch
assert_close(prior.sum(), torch.tensor(1.0))
for share in (ink_share, prior_share, even_share):
    assert share.shape == (len(splits.val),) and ((share >= 0) & (share <= 1 + 1e-6)).all()

# %% [markdown]
# The model's share and the prior's are measured on the same digits, so we
# compare them digit by digit: the mean of the differences, with a 95 %
# interval (± 1.96 standard errors), and how many digits the model's own map
# wins.

# %%
# NBVAL_IGNORE_OUTPUT
gain = ink_share - prior_share
half = 1.96 * gain.std() / math.sqrt(len(gain))
print(f"{len(gain)} validation digits; inked patches: {inked.float().mean():.1%} of all patches")
print(f"ink share, weight spread evenly:      {even_share.mean():.1%}")
print(f"ink share, position prior:            {prior_share.mean():.1%}")
print(f"ink share, each digit's own rollout:  {ink_share.mean():.1%}")
print(f"own map minus prior: {gain.mean():+.1%} "
      f"(95 % interval {gain.mean() - half:+.1%} to {gain.mean() + half:+.1%}); "
      f"the own map is ahead on {(gain > 0).float().mean():.0%} of digits")
print("position prior, % of the weight on each patch:")
print((100 * prior.view(G, G)).round().int())
fig = plot_histograms({"own map minus position prior": gain},
                      xlabel="ink share of the digit's own rollout minus that of the position prior",
                      title=f"How much more the class token reads from the digit than a position prior\n"
                            f"({len(gain)} validation digits; 0 = no better than the prior)")
fig.savefig(IMAGES / "attention_ink_share.png", dpi=120, bbox_inches="tight")
fig

# %% [markdown]
# Half of the rollout weight, 50.5 %, lands on the 39.4 % of patches that
# hold ink. But the position prior, which never looks at the digit, already
# puts 49.6 % there: it gives each of the four middle patches 8 or 9 % of its
# weight and each corner 4 %, and the middle is where digits have their ink.
# Each digit's own map beats the prior by only 0.8 points (95 % interval 0.6
# to 1.1), and on just 63 % of the digits: the histogram is centred a little
# to the right of zero, with many digits on either side. So the class token
# does read from this digit's strokes, but barely beyond where digits
# usually are: almost all of its ink share comes from the position, and the
# floor of rollout keeps every patch in play.
#
# Do the digits the model gets wrong have a different share? The mistakes
# are few, so we give the counts and a 95 % interval for the difference of
# the two means, from 10,000 bootstrap resamples of each group.

# %%
# NBVAL_IGNORE_OUTPUT
correct = ev.predictions == ev.labels
generator = torch.Generator().manual_seed(0)


def bootstrap_interval(a, b, n=10_000):
    """95 % interval of mean(a) - mean(b), resampling each group with replacement."""
    ia = torch.randint(len(a), (n, len(a)), generator=generator)
    ib = torch.randint(len(b), (n, len(b)), generator=generator)
    diffs = a[ia].mean(dim=1) - b[ib].mean(dim=1)
    return diffs.quantile(0.025).item(), diffs.quantile(0.975).item()


for name, values, sign in [("ink share", ink_share, ""), ("own map minus prior", gain, "+")]:
    ok, bad = values[correct], values[~correct]
    print(f"{name}: right {ok.mean():{sign}.1%} ({len(ok)} digits), wrong "
          + (f"{bad.mean():{sign}.1%} ({len(bad)} digits)" if len(bad) else "(no digits)"))
    if len(ok) and len(bad) > 1:
        lo, hi = bootstrap_interval(bad, ok)
        print(f"  wrong minus right: {bad.mean() - ok.mean():+.1%} (95 % interval {lo:+.1%} to {hi:+.1%})")

# %% [markdown]
# The 8 digits the model gets wrong have an ink share of 53.7 %, the 492 it
# gets right 50.4 %: a difference of +3.3 points, but its 95 % interval runs
# from −3.5 to +11.3, a tie. Against the prior, the mistakes come out 1.3
# points higher (interval −0.1 to +2.6), and that interval includes zero,
# rests on 8 digits (a bootstrap from so few is, if anything, too narrow)
# and was found after looking at two measures: not established. Nothing here
# says that the model looks elsewhere when it is wrong.
#
# ## How far does each head look?
#
# The paper's Figure 7 (right) summarises every head by one number, its
# **mean attention distance**: for every query patch, the distance in pixels
# to every key patch, weighted by the attention between them, averaged over
# queries and images. It is the transformer's counterpart of a CNN's
# receptive field. We leave out the class token's row and column, and since
# a patch may give part of its weight to the class token, we renormalise
# each query's weights over the patch keys first (how large that part is, we
# measure below). Distances run between patch centres, so two neighbours
# are P = 7 pixels apart.
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
# A distance says *where* a head's weight goes on average, not how spread
# out it is: a head that splits its weight evenly between a near and a far
# patch scores the same as one that spreads it over everything at medium
# range. The **entropy** of a row of weights p, −Σ p log p in nats, measures
# the spread: it is 0 when all the weight is on one token and log(N+1), its
# largest value, when it is spread evenly over all N+1 = 17 tokens. Its
# exponential is the *effective number of tokens* a row reads from. A small
# helper, checked on the two extremes:

# %%
def attention_entropy(attention):
    """Mean entropy in nats (h,) of the rows of one layer's attention (B, h, N+1, N+1)."""
    logs = attention.clamp_min(1e-12).log()  # 0 · log 0 counts as 0
    return -(attention * logs).sum(dim=-1).mean(dim=(0, 2))  # (B, h, N+1, N+1) -> (B, h, N+1) -> (h,)


max_entropy = math.log(N + 1)
assert_close(attention_entropy(uniform), torch.tensor([max_entropy]))
assert_close(attention_entropy(torch.eye(N + 1)[None, None]), torch.tensor([0.0]))
print(f"uniform attention over N+1 = {N + 1} tokens: log({N + 1}) = {max_entropy:.3f} nats")

# %% [markdown]
# Now every head of every layer, measured on the whole validation split, for
# the trained model and for the same model before training (the snapshot
# that `fit` saved at epoch 0): its mean attention distance, its entropy,
# and the weight its patch queries give to the class token.

# %%
snapshots = kept_snapshots(MODEL)  # [(epoch, model), ...]: the weights fit kept during training
assert snapshots and snapshots[0][0] == 0


def head_statistics(model, images, batch_size=250):
    """(L, h) tensors, averaged over ``images``: mean attention distance (pixels), entropy (nats)
    and the weight patch queries give to the class token."""
    total = {"distance": 0, "entropy": 0, "to class token": 0}
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            batch = images[start:start + batch_size]
            _, att = model(batch.to(device), return_attention=True)
            att = [a.cpu() for a in att]
            total["distance"] += torch.stack([mean_attention_distance(a, P, G) for a in att]) * len(batch)
            total["entropy"] += torch.stack([attention_entropy(a) for a in att]) * len(batch)
            total["to class token"] += torch.stack([a[:, :, 1:, 0].mean(dim=(0, 2)) for a in att]) * len(batch)
    return {name: t / len(images) for name, t in total.items()}


untrained = snapshots[0][1].to(device)
stats = {"trained": head_statistics(model, val_images), "before training": head_statistics(untrained, val_images)}
distances = {name: s["distance"] for name, s in stats.items()}
assert all(t.shape == (L, h) for s in stats.values() for t in s.values())
assert all(((s["entropy"] >= 0) & (s["entropy"] <= max_entropy + 1e-4)).all() for s in stats.values())

# %%
# NBVAL_IGNORE_OUTPUT
fig = plot_attention_distance(distances, reference=reference, from_zero=False,
                              title="Mean attention distance of every head (cf. the paper's Figure 7, right)")
fig.savefig(IMAGES / "mean_attention_distance.png", dpi=120, bbox_inches="tight")
fig

# %%
# NBVAL_IGNORE_OUTPUT
for name, s in stats.items():
    print(f"{name:15s}: distances from {s['distance'].min():.2f} to {s['distance'].max():.2f} px "
          f"(uniform attention: {reference:.2f} px)")
below = stats["trained"]["distance"] < reference
print(f"trained: {below.sum()} of {L * h} heads below the uniform line, {(~below).sum()} on or above it")

# %%
farthest = patch_distances(P, G).max().item()  # opposite corners
assert all(((s["distance"] >= 0) & (s["distance"] <= farthest)).all() for s in stats.values())
assert (stats["before training"]["distance"] - reference).abs().max() < 0.1  # random weights: nearly uniform

# %% [markdown]
# Mind the vertical axis: it spans only about three pixels. Before training,
# every head sits on the uniform line (14.05 to 14.06 px), because random
# queries and keys give nearly flat attention. After training, 13 of the 16
# heads sit below the line, the lowest at 11.60 px, and the other 3 on or
# just above it (up to 14.57 px): most heads favour nearby patches a little,
# but every head still reaches more than one and a half patches (10.5 px) on
# average. That is no surprise: on a 4 × 4 grid no patch is more than three
# rows and three columns from any other, and a stroke of a digit crosses
# several patches, so there is little room and little reason to stay local.
# The paper, with 196 patches of ImageNet photos, found the contrast that
# gives its figure its shape: in the lowest layers some heads attend
# locally, like a convolution, while others already look across the whole
# image, and deeper layers look far. The last section of this notebook
# draws the same figure for a pretrained ViT-B/16, when its weights are
# available.

# %% [markdown]
# The entropy of every trained head, and its exponential, the effective
# number of tokens it reads from:

# %%
# NBVAL_IGNORE_OUTPUT
print(f"entropy in nats (uniform: {max_entropy:.3f}); effective number of tokens, exp(entropy), in brackets")
print(f"{'':9s}" + "".join(f"{f'head {i}':>15s}" for i in range(1, h + 1)))
for layer in range(L):
    e = stats["trained"]["entropy"][layer]
    print(f"layer {layer + 1:<3d}" + "".join(f"{v:9.2f} ({math.exp(v):4.1f})" for v in e.tolist()))
for name, s in stats.items():
    e = s["entropy"]
    print(f"{name:15s}: {e.min():.3f} to {e.max():.3f} nats, "
          f"{math.exp(e.min()):.1f} to {math.exp(e.max()):.1f} effective tokens of {N + 1}")
d, e = stats["trained"]["distance"].flatten(), stats["trained"]["entropy"].flatten()
print(f"trained heads: correlation of distance and entropy {torch.corrcoef(torch.stack([d, e]))[0, 1]:+.2f}")

# %%
assert (max_entropy - stats["before training"]["entropy"]).max() < 0.01  # untrained: as spread as uniform

# %% [markdown]
# Before training every head has the entropy of uniform attention, 2.833
# nats: it reads from all 17 tokens alike. After training every head is more
# focused, from 1.89 nats (6.6 effective tokens of 17) to 2.57 nats (13.1).
# The focused heads sit early: in layers 1 and 2 all heads but one read from
# 6.6 to 10.0 effective tokens (the most focused is head 3 of layer 2; the
# exception, head 4 of layer 1, spreads over 13.1), while all eight heads of
# layers 3 and 4 spread over 10.4 to 12.2. Across the 16 heads, entropy and
# distance go closely together in this model (correlation +0.82): the heads
# that favour nearby patches tend to be the focused ones, as layer 2 shows in
# both measures. They are still two different things, as the example above
# shows, and 16 heads are few to generalise from.
#
# Last, the weight that was renormalised away above: how much each patch
# query gives to the class token. Uniform attention would give it 1/(N+1).

# %%
# NBVAL_IGNORE_OUTPUT
print(f"uniform attention: {1 / (N + 1):.1%} of each patch query's weight on the class token")
for name, s in stats.items():
    c = s["to class token"]
    print(f"{name:15s}: {c.mean():.1%} on average over heads, layers and digits "
          f"(heads from {c.min():.1%} to {c.max():.1%})")

# %%
assert all(((s["to class token"] >= 0) & (s["to class token"] <= 1)).all() for s in stats.values())
assert (stats["before training"]["to class token"] - 1 / (N + 1)).abs().max() < 0.005

# %% [markdown]
# Patch queries give the class token 5.1 % of their weight on average, a
# little less than the 5.9 % of uniform attention and of the untrained
# model, and no head gives it more than 7.2 %. So the renormalisation in the
# distance measure changes little here: the patches read mostly from each
# other.
#
# ## The maps during training
#
# `fit` kept a copy of the weights at a few epochs (0, 1, 2, 5, 10, ... and
# the last; just 0, 1 and 2 in quick mode); the shipped copy leaves out
# epochs 1 and 40, to keep `checkpoints/` small. Loading each snapshot and drawing
# the rollout for the same four digits shows the attention take shape. All
# the panels share one colour scale, from 0 to the largest weight in any of
# them, so a brighter patch means more weight at every epoch.

# %%
# NBVAL_IGNORE_OUTPUT
epochs, frames, over_training = [], [], []
for epoch, snap in snapshots:
    snap = snap.to(device)
    epochs.append(epoch)
    frames.append(rollout_maps(snap, x[:4]))
    maps_e = rollout_maps(snap, val_images).flatten(1)  # (M, N): every validation digit, for the numbers below
    w_e = maps_e / maps_e.sum(dim=1, keepdim=True)
    over_training.append({"contrast": (maps_e.amax(dim=1) / maps_e.amin(dim=1)).mean().item(),
                          "own": (w_e * inked).sum(dim=1).mean().item(),
                          "prior": (w_e.mean(dim=0) * inked).sum(dim=1).mean().item()})
training_maps = torch.stack(frames)  # (epochs, 4 digits, G, G)
print("snapshots at epochs", epochs)


def accuracy_at(epoch):
    return "untrained" if epoch == 0 else f"val. acc. {history.val_acc[epoch - 1]:.0%}"


fig = plot_attention_grid(x[:4].unsqueeze(0), training_maps, scale="shared", show_input=False,
                          row_labels=[f"epoch {e}\n{accuracy_at(e)}" for e in epochs],
                          col_labels=[f"digit {v}" for v in y[:4].tolist()],
                          cbar_label="rollout weight (one scale for all epochs)",
                          title="Rollout over training")
fig.savefig(IMAGES / "attention_training.png", dpi=120, bbox_inches="tight")
fig

# %%
assert training_maps.shape == (len(snapshots), 4, G, G)
assert len(over_training) == len(snapshots) and all(s["contrast"] >= 1 for s in over_training)
assert all(0 <= s["own"] <= 1 and 0 <= s["prior"] <= 1 for s in over_training)
assert over_training[0]["contrast"] < 1.1  # before training the rollout maps are nearly flat

# %% [markdown]
# The same sharpening in numbers, over all validation digits: the
# **contrast** of a map, its largest patch weight divided by its smallest
# (1 for a flat map), and the ink share of the maps against the position
# prior of the same epoch.

# %%
# NBVAL_IGNORE_OUTPUT
print(f"{'epoch':>5s} {'accuracy':>15s} {'contrast':>9s} {'ink share':>10s} {'prior':>7s} {'own - prior':>12s}")
for e, s in zip(epochs, over_training):
    print(f"{e:5d} {accuracy_at(e):>15s} {s['contrast']:9.2f} {s['own']:10.1%} {s['prior']:7.1%} "
          f"{s['own'] - s['prior']:+12.1%}")

# %% [markdown]
# Before training and after two epochs the maps stay nearly flat (contrast
# 1.01 and 1.28) while the accuracy climbs to 29 %. Between epochs 2 and 5
# they sharpen: the contrast reaches 2.34, and the ink share jumps from
# 42.8 % to 49.1 %. Most of that jump is the prior's, which rises with it:
# the margin of the digit's own map over the prior is 2.3 points at epoch 5,
# the largest in the table, but small. The maps first learn where digits
# usually are, and only a little where this digit is. The contrast keeps rising to 3.76 at epoch
# 20, is 3.61 at epoch 80, then eases to 2.96 at epoch 160. From epoch 10
# on the margin over the prior stays small, between 0.2 and 1.1 points,
# while the accuracy goes on from 78 % to 98 %. The maps take their shape
# early; the later gains in accuracy come without sharper maps.
#
# The same frames as an animation, written to `images/attention_training.gif`.
# Here each frame is stretched to its own range, to show *where* the maps
# point at each epoch; how strongly they point is what the grid above shows.
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
print(message.replace(str(Path(torch.hub.get_dir()) / "checkpoints"), "torch's checkpoint cache"))

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
    b_rollout = attention_rollout(b_att)
    assert_close(b_rollout.sum(dim=-1), torch.ones(1, bcfg.num_patches + 1))
    b_maps = torch.stack([cls_attention(b_att[-1], bcfg.grid_size).mean(1),
                          cls_attention(b_rollout, bcfg.grid_size)], dim=1)
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

# %% [markdown]
# ## Exercises
#
# 1. Prove that every row of a rollout sums to 1, whatever the attention,
#    and check it on random attention weights for all three head fusions
#    and with half the weights discarded.
# 2. What does rollout give for *uniform* attention, every weight 1/(N+1)?
#    Find the class token's map in closed form for L layers and check it.
# 3. Work out by hand the mean attention distance of uniform attention on
#    the 4 × 4 grid of 7-pixel patches, by counting how many pairs of
#    patches lie at each offset, and check it against the reference line
#    above.
# 4. `discard_weakest` never drops the class token's column. Check that on
#    a matrix in which the class token gets the *smallest* weights, at a
#    discard ratio of 0.9, and count how many weights are dropped.

# %% [markdown]
# **Solution 1.** Each layer's step matrix has rows summing to 1 after the
# renormalisation: it is *row-stochastic*, Â𝟙 = 𝟙 for the vector of ones
# 𝟙. A product of such matrices is one too, since ÂB𝟙 = Â𝟙 = 𝟙. Fusing the
# heads by their maximum or minimum, or discarding weights, changes the
# row sums only before the renormalisation, so the argument holds for
# every variant.

# %%
generator = torch.Generator().manual_seed(0)
random_attention = [torch.randn(2, h, N + 1, N + 1, generator=generator).mul(3).softmax(dim=-1) for _ in range(L)]
for kw in ({}, {"head_fusion": "max"}, {"head_fusion": "min"}, {"discard_ratio": 0.5}):
    assert_close(attention_rollout(random_attention, **kw).sum(dim=-1), torch.ones(2, N + 1))
print("rows of every rollout variant sum to 1 on random attention")

# %% [markdown]
# **Solution 2.** Write U for the uniform matrix, every entry 1/(N+1). Its
# rows sum to 1 and U² = U. One step is Â = ½U + ½I (its rows already sum
# to 1), and since U and I commute, Âᴸ = 2⁻ᴸ I + (1 − 2⁻ᴸ) U. The class
# token's map is flat: every patch gets (1 − 2⁻ᴸ)/(N+1), and the class
# token keeps the rest for itself.

# %%
uniform_layers = [torch.full((1, h, N + 1, N + 1), 1 / (N + 1)) for _ in range(L)]
flat = cls_attention(attention_rollout(uniform_layers), G)
assert_close(flat, torch.full((1, G, G), (1 - 2**-L) / (N + 1)))
print(f"L = {L}: every patch gets (1 - 2^-{L}) / {N + 1} = {flat[0, 0, 0]:.4f} of the class token's rollout")

# %% [markdown]
# **Solution 3.** Under uniform attention every query spreads its weight
# evenly over the N patch keys (after the class token's column is left
# out), so the score is the mean distance over all N² ordered pairs of
# patches, a query with itself included. On a G × G grid, (G − |Δr|)(G − |Δc|)
# ordered pairs are Δr rows and Δc columns apart, at P√(Δr² + Δc²) pixels.

# %%
total = sum((G - abs(dr)) * (G - abs(dc)) * P * math.hypot(dr, dc)
            for dr in range(-(G - 1), G) for dc in range(-(G - 1), G))
assert sum((G - abs(dr)) * (G - abs(dc)) for dr in range(-(G - 1), G) for dc in range(-(G - 1), G)) == N * N
assert math.isclose(total / N**2, reference, rel_tol=1e-5)
print(f"mean distance between two patches of the {G} x {G} grid: {total / N**2:.2f} pixels")

# %% [markdown]
# **Solution 4.** The weights on patch keys are N(N+1) = 272 per matrix;
# a ratio of 0.9 drops the weakest ⌊0.9 · 272⌋ = 244 of them, and the
# class token's column is never among the candidates, however small.

# %%
scores = torch.rand(1, N + 1, N + 1, generator=generator) + 1  # every patch key between 1 and 2
scores[:, :, 0] = 0.01  # the class token's column: the smallest weights of all
a = scores / scores.sum(dim=-1, keepdim=True)
kept = discard_weakest(a, 0.9)
dropped = int((kept[:, :, 1:] == 0).sum())
assert torch.equal(kept[:, :, 0], a[:, :, 0]) and dropped == int(0.9 * N * (N + 1))
print(f"{dropped} of {N * (N + 1)} patch weights dropped; the class token's column kept whole")

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
# # 9. What the model learned before attention: positions and patch filters
#
# Notebook 08 drew where the trained model's attention goes. Attention works
# on tokens that two learned pieces made: the **patch embedding**, one
# P × P filter per channel of the token, and the **position embeddings**, one
# vector per patch position that tells the model where the patch was. The
# paper's Figure 7 looks at both, and this notebook draws them for the MNIST
# model:
#
# 1. the learned position embeddings as a grid of similarity images (Figure 7,
#    centre), beside the fixed sine-cosine table of notebook 03 and beside the
#    same model before training;
# 2. the same comparison as one curve: similarity against distance;
# 3. what the positions learned where MNIST digits are nearly always blank;
# 4. how the learned embeddings change over training;
# 5. the patch-embedding filters and their principal components (Figure 7,
#    left);
# 6. the same pictures for torchvision's ViT-B/16 with ImageNet weights, when
#    those weights can be had.

# %%
# The package's plot helpers return matplotlib Figures; this lets Jupyter draw them.
# %matplotlib inline
from pathlib import Path

import torch
from torch.testing import assert_close

from vit_tutorial import default_device, patchify, quick_mode, set_seed
from vit_tutorial.book import IMAGES, LOADED_FROM, digits, load, snapshots as kept_snapshots
from vit_tutorial.utils import shown_path
from vit_tutorial.embeddings import sincos_2d
from vit_tutorial.inspect import patch_filter_components, position_similarity
from vit_tutorial.model import pretrained_vit_b_16
from vit_tutorial.plots import (plot_explained_variance, plot_filters, plot_position_similarity,
                                plot_similarity_by_distance)

set_seed(0)
device = default_device()
QUICK = quick_mode()  # VIT_TUTORIAL_QUICK=1: the small model trained in seconds, as in CI

# %% [markdown]
# ## The trained model, and the same model untrained
#
# As in notebook 08, `load` gives back the model of notebook 06. The
# snapshot `fit` saved at epoch 0 is the same model before its first step:
# the baseline for everything below. In quick mode the model has trained for
# only two epochs, so its pictures are close to the untrained ones; the full
# run shows the structure. The numbers quoted in the text are those of the
# full run.

# %%
# NBVAL_IGNORE_OUTPUT
splits = digits()
MODEL = f"{splits.dataset}/vit"
model, history = load(MODEL, splits)
model = model.cpu().eval()  # nothing below runs the model: its weights are all we read
snapshots = kept_snapshots(MODEL)  # [(epoch, model), ...]: the weights fit kept during training
untrained = snapshots[0][1]
print(f"{shown_path(LOADED_FROM[MODEL])}: trained for {len(history)} epochs, validation accuracy "
      f"{history.val_acc[-1]:.1%}; snapshots at epochs {[epoch for epoch, _ in snapshots]}")

# %%
cfg = model.config
P, G, N, D, C = cfg.patch_size, cfg.grid_size, cfg.num_patches, cfg.embed_dim, cfg.in_channels
assert snapshots[0][0] == 0
assert model.pos_embed.shape == (1, N + 1, D) == (1, 17, 64)
assert model.patch_embed.proj.weight.shape == (D, C, P, P) == (64, 1, 7, 7)

# %% [markdown]
# ## Position embeddings as similarity images
#
# The model adds position vector i to the token of patch i. What did it learn
# to put there? A vector of 64 numbers is hard to read, but how *alike* two
# positions' vectors are is easy: the cosine similarity, their dot product
# divided by both lengths, is 1 for vectors pointing the same way and 0 for
# perpendicular ones. Computing it for every pair of patch positions, and
# drawing the similarities of one position to all others as a small G × G
# image, gives the paper's Figure 7 (centre).
#
# By hand, pair by pair (the class token has no position, so its row 0 is
# left out):

# %%
pos = model.pos_embed[0, 1:].detach().cpu()  # (N+1, D) -> (N, D): the patches only
by_hand = torch.zeros(G, G, G, G)
for i in range(N):
    for j in range(N):
        cos = pos[i] @ pos[j] / (pos[i].norm() * pos[j].norm())
        by_hand[i // G, i % G, j // G, j % G] = cos  # patch i sits at row i // G, column i % G

learned = position_similarity(model.pos_embed, G)
assert learned.shape == (G, G, G, G)
assert_close(learned, by_hand)
assert_close(learned.reshape(N, N).diagonal(), torch.ones(N))  # every position is itself
assert_close(learned.reshape(N, N), learned.reshape(N, N).T)  # and similarity is symmetric

# %% [markdown]
# Three tables side by side: the learned one after training, the fixed 2-D
# sine-cosine table that notebook 03 built (it is never trained; a model with
# `pos_embed="sincos"` uses it), and the learned table before training, which
# is small random numbers. In each panel, the small image at row r, column c
# shows how similar position (r, c) is to every position. Each panel has its
# own colour scale.

# %%
# NBVAL_IGNORE_OUTPUT
similarities = {
    "learned (trained)": learned,
    "sine-cosine (fixed)": position_similarity(sincos_2d(G, D), G),
    "learned, before training": position_similarity(untrained.pos_embed, G),
}
fig = plot_position_similarity(similarities, title="Position-embedding similarity (cf. the paper's Figure 7, centre)")
fig.savefig(IMAGES / "pos_embed_similarity.png", dpi=120, bbox_inches="tight")
fig

# %%
for sim in similarities.values():  # cosines: in [-1, 1], and 1 for every position with itself
    assert sim.abs().max() <= 1 + 1e-6 and torch.allclose(sim.reshape(N, N).diagonal(), torch.ones(N))

# %% [markdown]
# How far from 0 do the similarities of two different positions stray? For
# random directions in D = 64 dimensions the cosine scatters around 0 with a
# standard deviation of about 1/√D = 0.125; that is the baseline for what
# chance alone puts into a table.

# %%
# NBVAL_IGNORE_OUTPUT
off_diagonal = ~torch.eye(N, dtype=torch.bool)
print(f"random directions in D = {D} dimensions: cosine spread (std) about {D ** -0.5:.3f}")
for name, sim in similarities.items():
    v = sim.reshape(N, N)[off_diagonal]
    print(f"{name:26s}: {len(v) // 2} pairs, mean {v.mean():+.3f}, std {v.std():.3f}, "
          f"from {v.min():+.3f} to {v.max():+.3f}")

# %%
assert similarities["learned, before training"].reshape(N, N)[off_diagonal].std() < 2 * D ** -0.5  # chance

# %% [markdown]
# Before training the similarities of the 120 pairs of different positions
# scatter around 0 (mean 0.000, standard deviation 0.143, close to the 0.125
# of random directions), from −0.32 to +0.35: chance, nothing more. The
# sine-cosine table has the grid built in: every position is quite similar
# to every other (0.77 to 0.98, mind its colour scale), and less so the
# further apart they are. Nobody told the learned table that patches lie on
# a grid: the model saw 16 tokens with 16 position vectors and had to find
# out from the digits alone which positions should look alike. After
# training its similarities spread about twice as wide (standard deviation
# 0.294 against 0.143, from −0.76 to +0.57).
#
# To put numbers on what it found, we average the similarity over the pairs
# of different positions that share a row, that share a column, and that
# share neither:

# %%
rows = torch.arange(N) // G  # the row and column of every patch, in reading order
cols = torch.arange(N) % G
pair_kinds = {
    "same row": (rows[:, None] == rows[None]) & off_diagonal,
    "same column": (cols[:, None] == cols[None]) & off_diagonal,
    "neither": (rows[:, None] != rows[None]) & (cols[:, None] != cols[None]),
}
assert [int(m.sum()) for m in pair_kinds.values()] == [N * (G - 1), N * (G - 1), N * (N - 2 * G + 1)]


def similarity_by_kind(sim):
    """Mean similarity of the pairs of each kind, for one (G, G, G, G) table."""
    flat = sim.reshape(N, N)
    return {kind: flat[mask].mean().item() for kind, mask in pair_kinds.items()}


# %%
# NBVAL_IGNORE_OUTPUT
print(f"{'pairs':26s}" + "".join(f"{int(m.sum()) // 2:13d}" for m in pair_kinds.values()))
print(f"{'':26s}" + "".join(f"{kind:>13s}" for kind in pair_kinds))
for name, sim in similarities.items():
    print(f"{name:26s}" + "".join(f"{v:+13.3f}" for v in similarity_by_kind(sim).values()))

# %%
assert all(abs(v) < 0.1 for v in similarity_by_kind(similarities["learned, before training"]).values())

# %% [markdown]
# In the full run, the 24 pairs of positions in the same row came out more
# alike (+0.261) than the 72 pairs that share neither row nor column
# (−0.139), while the 24 pairs in the same column sit at +0.041, close to
# zero: not clearly more alike than chance. Before training all three
# averages are within 0.03 of zero. So the model did learn something about
# the layout of the grid, but far less than the paper's ImageNet model,
# whose table (Figure 7, centre) shows clean rows, columns and
# neighbourhoods. With 16 positions
# and a few thousand digits there is little to learn and little data to
# learn it from, and nothing asks a learned table to be smooth, only useful.
# (In quick mode the model has barely trained, and its table is still close to
# the random one.)
#
# ## Similarity against distance
#
# One curve per table: the mean similarity of two positions against their
# distance on the grid (1 for neighbours, √2 for diagonal neighbours, up to
# 3√2 for opposite corners). Each point averages all the pairs at that
# distance, and the bins are of very different sizes: from 24 pairs of
# neighbours down to the 2 pairs of opposite corners.

# %%
cells = torch.stack([rows, cols], dim=1).double()  # (N, 2): the (row, column) of every patch
grid_distance = torch.cdist(cells, cells).round(decimals=4)  # (N, N), in grid steps
upper = torch.triu(torch.ones(N, N, dtype=torch.bool), diagonal=1)  # each pair of different positions once
steps = grid_distance[upper].unique()
bins = {step: (grid_distance == step) & upper for step in steps.tolist()}
assert sum(int(m.sum()) for m in bins.values()) == N * (N - 1) // 2
print("distance (grid steps):", "  ".join(f"{step:5.2f}" for step in bins))
print("pairs of positions:   ", "  ".join(f"{int(m.sum()):5d}" for m in bins.values()))

# %%
# NBVAL_IGNORE_OUTPUT
print(f"{'mean similarity':26s}" + "".join(f"{step:7.2f}" for step in bins))
for name, sim in similarities.items():
    flat = sim.reshape(N, N)
    print(f"{name:26s}" + "".join(f"{flat[m].mean():+7.3f}" for m in bins.values()))
fig = plot_similarity_by_distance(similarities, title="Similarity against distance: only the fixed table "
                                  "falls off steadily")
fig.savefig(IMAGES / "pos_embed_distance.png", dpi=120, bbox_inches="tight")
fig

# %% [markdown]
# The sine-cosine table falls off with distance, from 0.979 for neighbours
# to 0.767 for opposite corners. Before training, the learned table sits
# within 0.06 of zero at every distance. The trained one has no steady
# trend: its neighbours are alike (+0.239, 24 pairs), but so are positions
# three steps apart in a line (+0.167, 8 pairs) and, highest of all, the
# opposite corners (+0.284, only 2 pairs), while diagonal neighbours
# (−0.119, 18 pairs) and the pairs at √5 and 2√2 steps (−0.244 and −0.252)
# come out below zero. Near positions do not get steadily more similar
# embeddings in the learned table; only the fixed one falls off steadily,
# as the figure's title says.

# %% [markdown]
# That the fixed table falls off with distance is built into it. A check
# that does not depend on training: along the top row, the sine-cosine
# similarity of the first position to the others goes down step by step.

# %%
sincos_sim = similarities["sine-cosine (fixed)"]
assert (sincos_sim[0, 0, 0, :-1] > sincos_sim[0, 0, 0, 1:]).all()
print("sine-cosine similarity along the top row:", [round(v, 3) for v in sincos_sim[0, 0, 0].tolist()])

# %% [markdown]
# ## Positions that are nearly always blank
#
# MNIST digits are centred, so the patches at the edges of the image are
# blank in most digits. A blank patch gives the same token whatever the
# digit, plus its position vector. One might guess that the loss then says
# little about how such a position should differ from another blank one, so
# that blank positions end up alike, or stay close to where they started.
# To check, we count how often each patch holds ink
# in the training digits (the ones the model learned from), with the same
# rule as notebook 08: mean grey level above 0.1.

# %%
# NBVAL_IGNORE_OUTPUT
train_images = splits.train.batch(torch.arange(len(splits.train)))[0]
ink = (patchify(train_images, P).mean(dim=-1) > 0.1).float().mean(dim=0)  # (M, N, P*P) -> (M, N) -> (N,)
assert ink.shape == (N,) and ((ink >= 0) & (ink <= 1)).all()
print(f"share of the {len(train_images)} training digits with ink in each patch (%):")
print((100 * ink.view(G, G)).round().int())

# %% [markdown]
# The five most alike pairs of different positions, before and after
# training, and the two pairs of opposite corners; positions are written
# (row, column), counted from 1 as in the figures:

# %%
# NBVAL_IGNORE_OUTPUT
def where(i):
    return f"({i // G + 1},{i % G + 1})"


corner_pairs = [(0, N - 1), (G - 1, N - G)]  # top left with bottom right, top right with bottom left
pair_list = upper.nonzero()  # (N(N-1)/2, 2)
for name in ["learned (trained)", "learned, before training"]:
    flat = similarities[name].reshape(N, N)
    top = flat[upper].topk(5)
    print(f"{name}:")
    print("  most alike:      " + ", ".join(f"{where(i)}-{where(j)} {v:+.2f}"
                                            for v, (i, j) in zip(top.values.tolist(), pair_list[top.indices].tolist())))
    print("  opposite corners: " + ", ".join(f"{where(i)}-{where(j)} {flat[i, j]:+.2f}" for i, j in corner_pairs))

# %% [markdown]
# The two pairs of opposite corners, whose patches hold ink in at most 3 %
# of the training digits, went two ways. Top left and bottom right came out
# alike, +0.47 from −0.00 before training: far outside the spread of chance
# (0.125), above every pair before training (at most +0.35), and not far
# below the five most alike pairs after it. Top right and bottom left stayed
# where they started, +0.10 from +0.12, inside the spread of chance. The
# most alike pairs after training (+0.51 to +0.57) are four neighbours
# (three sharing a row, one a column) and the two ends of the bottom row,
# three steps apart; before training the top five were scattered at random
# (+0.27 to +0.35). Two pairs of corners cannot say whether blankness pulls
# positions together.
#
# The bump of the learned curve at three steps comes from 8 pairs: the two
# ends of each row and of each column.

# %%
# NBVAL_IGNORE_OUTPUT
print(f"{'pair':13s}{'ink %':>10s}{'trained':>9s}{'before':>8s}")
for i, j in bins[3.0].nonzero().tolist():
    print(f"{where(i)}-{where(j)}{100 * ink[i]:5.0f}{100 * ink[j]:5.0f}"
          f"{learned.reshape(N, N)[i, j]:+9.2f}{similarities['learned, before training'].reshape(N, N)[i, j]:+8.2f}")

# %% [markdown]
# Six of them join patches at the edges of the image that hold ink in at
# most 23 % of the digits. Five of those came out alike (+0.17 to +0.52,
# the weakest hardly outside the spread of chance), although they started
# anywhere from −0.21 to +0.13; the two ends of the second row did not
# (+0.03). Nor did the top and bottom of the two middle columns, which hold
# ink more often (−0.26 and +0.03). Counting the opposite corners above, all
# six pairs of the four corners (ink in at most 3 %) are positive after
# training, +0.10 to +0.52 (mean +0.29, against +0.01 before training, from
# the printed values), while the average pair of the trained table sits at
# −0.023. That leans towards blank positions ending up alike, but six pairs
# of four positions in one trained model, picked out partly because they
# make a bump, are too few to make a rule of.

# %%
# NBVAL_IGNORE_OUTPUT
length = model.pos_embed[0, 1:].detach().norm(dim=-1)  # (N,): how long each position vector is
length_before = untrained.pos_embed[0, 1:].detach().norm(dim=-1)
print("length of each position vector, trained:")
for r in range(G):
    print("  " + "  ".join(f"{v:.2f}" for v in length.view(G, G)[r].tolist()))
print(f"before training: {length_before.min():.2f} to {length_before.max():.2f}")
print(f"correlation of a position's trained length with how often it holds ink, over the {N} positions: "
      f"{torch.corrcoef(torch.stack([length, ink]))[0, 1]:+.2f}")

# %% [markdown]
# Blankness shows more clearly in the lengths. Before training every
# position vector has about the same length (0.14 to 0.18). After training,
# the positions whose patch holds ink most often grew the most: the four
# centre patches, which hold ink in 86 to 97 % of digits, are the four
# longest (3.47 to 3.78), while the four corners (ink in at most 3 %) are
# among the five shortest (1.96 to 2.29). Across the 16 positions the
# length follows the ink frequency with a correlation of +0.78. That fits
# the idea above: a position that is nearly always blank gets little signal
# from the loss, so its vector moved least, though even the shortest (1.96)
# grew more than ten times longer than any position started.

# %% [markdown]
# ## Over training
#
# The snapshots show when the structure appears. One panel per saved epoch,
# all on the same colour scale from -1 to 1, then the pair averages and the
# mean length of the position vectors at each epoch:

# %%
# NBVAL_IGNORE_OUTPUT
over_training, lengths = {}, {}
for epoch, snap in snapshots:
    pos_embed = snap.pos_embed.detach()
    over_training[f"epoch {epoch}"] = position_similarity(pos_embed, G)
    lengths[f"epoch {epoch}"] = pos_embed[0, 1:].norm(dim=-1).mean().item()
fig = plot_position_similarity(over_training, size=2.4, shared_scale=True, ncols=4,
                               title="Learned position embeddings over training")
fig.savefig(IMAGES / "pos_embed_training.png", dpi=120, bbox_inches="tight")
fig

# %%
# NBVAL_IGNORE_OUTPUT
print(f"{'':10s}" + "".join(f"{kind:>13s}" for kind in pair_kinds) + f"{'length':>10s}")
for name, sim in over_training.items():
    print(f"{name:10s}" + "".join(f"{v:+13.3f}" for v in similarity_by_kind(sim).values())
          + f"{lengths[name]:10.2f}")

# %% [markdown]
# The pair averages change in three stages. After two epochs all three
# kinds of pairs came out alike (+0.222, +0.159 and +0.102): the position
# vectors, still short (0.27), moved in a shared direction. By epoch 5 the
# columns were the more alike kind (+0.107 against +0.018 for rows). From
# epoch 10 on the row pattern grew steadily (+0.113 to +0.261 at epoch 160),
# the column pattern stayed small (between +0.024 and +0.049) and pairs that
# share neither drifted apart (−0.082 to −0.139), while the vectors grew
# from 0.16 to 2.82, about 18 times longer. Most of that happened in the
# first 80 epochs: the last 80 moved the row average from +0.253 to +0.261
# and the mean length from 2.70 to 2.82. The learned positions are not a
# map of the grid that training sharpens; they are whatever code the rest
# of the network found useful, and that code changed along the way.

# %%
# NBVAL_IGNORE_OUTPUT
fig = plot_similarity_by_distance(over_training, title="Similarity against distance, over training")
fig.savefig(IMAGES / "pos_embed_training_distance.png", dpi=120, bbox_inches="tight")
fig

# %%
assert len(over_training) == len(snapshots) and all(s.shape == (G, G, G, G) for s in over_training.values())

# %% [markdown]
# ## The patch-embedding filters
#
# The patch embedding is a `Conv2d` with kernel and stride P: each of its D
# output channels is one P × P filter, and a token's channel d is the dot
# product of the patch with filter d (notebook 01 proved that). Drawn as
# images, red is a positive weight and blue a negative one:

# %%
# NBVAL_IGNORE_OUTPUT
weight = model.patch_embed.proj.weight.detach().cpu()  # (D, C, P, P)
fig = plot_filters(weight, ncols=16, title=f"The {D} patch-embedding filters ({P} x {P})")
fig.savefig(IMAGES / "patch_filters.png", dpi=120, bbox_inches="tight")
fig

# %% [markdown]
# Sixty-four filters are many to look at, and they overlap: several can pick
# up nearly the same pattern. The paper summarises them by their **principal
# components**: the directions, in the space of P × P images, along which the
# filters differ most. Treat each filter as a point with P²C = 49
# coordinates, subtract the mean filter, and find the eigenvectors of the
# 49 × 49 covariance matrix; each eigenvalue, divided by their sum, is the
# share of the variation its component explains. By hand:

# %%
X = weight.double().flatten(1)  # (D, C, P, P) -> (D, C*P*P)
Xc = X - X.mean(dim=0)
cov = Xc.T @ Xc / (D - 1)  # (C*P*P, C*P*P)
eigenvalues, eigenvectors = torch.linalg.eigh(cov)  # ascending order
eigenvalues, eigenvectors = eigenvalues.flip(0), eigenvectors.flip(1)  # largest first
share = eigenvalues / eigenvalues.sum()

k = 16
components, explained = patch_filter_components(weight, k)
assert components.shape == (k, C, P, P)
assert_close(explained, share[:k].float())
assert (explained[:-1] >= explained[1:]).all() and explained.sum() <= 1 + 1e-6  # largest first, shares of 1
# an eigenvector's sign is arbitrary, so compare directions: |cosine| = 1
cosines = (components.flatten(1).double() * eigenvectors[:, :k].T).sum(dim=1)
assert_close(cosines.abs(), torch.ones(k, dtype=torch.float64))

# %% [markdown]
# The package uses a singular value decomposition of the centred filters
# instead of the covariance matrix: the same components, with better
# numerical accuracy. It also fixes each component's sign (largest entry
# positive) so that the pictures do not flip between runs. The first 16
# components, each titled with the share of the variation it explains:

# %%
# NBVAL_IGNORE_OUTPUT
fig = plot_filters(components, titles=[f"PC {i + 1}: {e:.0%}" for i, e in enumerate(explained.tolist())],
                   ncols=8, cbar_label="component value", size=1.1,
                   title="Principal components of the patch-embedding filters (cf. the paper's Figure 7, left)")
fig.savefig(IMAGES / "patch_filters_pca.png", dpi=120, bbox_inches="tight")
fig

# %% [markdown]
# How concentrated the variation is tells whether the filters learned a few
# shared patterns. Before training the filters are independent random
# numbers with no preferred direction, the baseline:

# %%
# NBVAL_IGNORE_OUTPUT
variance = {"trained": patch_filter_components(weight)[1],
            "before training": patch_filter_components(untrained.patch_embed.proj.weight)[1]}
fig = plot_explained_variance(variance, title="Variance of the patch-embedding filters, by principal component")
fig.savefig(IMAGES / "patch_filters_variance.png", dpi=120, bbox_inches="tight")
fig

# %%
assert all(v.shape == (C * P * P,) for v in variance.values())
assert all(abs(v.sum().item() - 1) < 1e-5 for v in variance.values())

# %%
# NBVAL_IGNORE_OUTPUT
for name, v in variance.items():
    running = v.cumsum(dim=0)
    print(f"{name:15s}: first component {v[0]:.1%}, first 10 together {running[9]:.1%}; "
          f"{int((running < 0.9).sum()) + 1} of {len(v)} components needed for 90 %")

# %% [markdown]
# In the full run, the first few components are broad patterns: the first
# two are upright bands, one left and one right of the middle, each against
# the other side of the patch; further on come bands along an edge (the
# left edge in PC 5, the bottom and top edges in PC 7 and 8). Patterns like
# these tell where a stroke crosses a patch and in which direction it
# runs. They resemble the low-frequency basis the paper found for ImageNet,
# and what the first layer of a CNN learns. The trained filters vary
# mostly within a few directions: the first component
# explains 17.2 % of the variation (6.4 % before training), the first ten
# together 87.1 % (50.4 %), and 11 of the 49 components reach 90 %, where
# the random filters need 29. From the twelfth component on, each explains
# 2 % or less and the patterns look more and more like noise.
#
# ## The same code on a large pretrained ViT
#
# With the ImageNet weights of torchvision's ViT-B/16 (from your torch cache,
# or downloaded when a network is up) the same two functions draw the
# paper's Figure 7 itself: 196 positions on a 14 × 14 grid, and RGB filters
# of 16 × 16 pixels. Without the weights, this part is skipped.

# %%
# NBVAL_IGNORE_OUTPUT
vit_b16, message = pretrained_vit_b_16()
print(message.replace(str(Path(torch.hub.get_dir()) / "checkpoints"), "torch's checkpoint cache"))

# %%
# NBVAL_IGNORE_OUTPUT
if vit_b16 is not None:
    from IPython.display import display

    bcfg = vit_b16.config
    b_similarity = position_similarity(vit_b16.pos_embed, bcfg.grid_size)
    assert b_similarity.abs().max() <= 1 + 1e-6
    fig = plot_position_similarity({"ViT-B/16": b_similarity},
                                   size=6, title="Position-embedding similarity of ViT-B/16, trained on ImageNet")
    fig.savefig(IMAGES / "pos_embed_vit_b_16.png", dpi=120, bbox_inches="tight")
    display(fig)
    b_components, b_explained = patch_filter_components(vit_b16.patch_embed.proj.weight, 28)
    assert (b_explained[:-1] >= b_explained[1:]).all() and b_explained.sum() <= 1 + 1e-6
    fig = plot_filters(b_components, ncols=7, size=1.1, title="ViT-B/16: first 28 principal components of "
                       "the RGB patch filters (each stretched to full range)")
    fig.savefig(IMAGES / "patch_filters_vit_b_16.png", dpi=120, bbox_inches="tight")
    display(fig)

# %% [markdown]
# ## What comes next
#
# Four notebooks built a Vision Transformer, trained it on digits and opened
# it up. Digits are an easy case: thin white strokes on black, centred and
# scaled the same way. Notebook 10 trains the same architecture, with finer
# patches and a wider model, on a harder dataset, Fashion-MNIST, and uses
# the tools of notebooks 07 to 09 to see what changes.

# %% [markdown]
# ## Exercises
#
# 1. Show that the cosine similarity of two sine-cosine position embeddings
#    depends only on their offset on the grid: check two pairs with the
#    same offset, then every pair. Does the sign of the offset matter?
# 2. Count by hand how many pairs of different positions of the 4 × 4
#    grid lie at each distance, and check the counts of the bins above
#    (24 neighbours down to 2 pairs of opposite corners).
# 3. The shares of variance that `patch_filter_components` returns add up
#    to 100 %. How many components have any variance at all when only the
#    first 10 filters are decomposed, and why?
# 4. Rotate the whole position table by a random orthogonal matrix Q
#    (every vector e becomes eQ). What happens to the similarity images, and
#    what does that say about reading single channels of a learned table?

# %% [markdown]
# **Solution 1.** Each channel pair of frequency ω holds sin(ωr) and
# cos(ωr), and sin(ωr)sin(ωr') + cos(ωr)cos(ωr') = cos(ω(r − r')). So the dot
# product of two embeddings is a sum of cosines of the row offset and of
# the column offset, and every vector has the same length √(D/2). The
# cosine is even, so the sign of each offset does not matter either: the
# similarity depends on |Δrow| and |Δcolumn| alone.

# %%
table = sincos_2d(G, D, cls_token=False)  # (N, D)
assert_close(table.norm(dim=1), torch.full((N,), (D / 2) ** 0.5))
sincos_flat = position_similarity(table, G).reshape(N, N)
assert_close(sincos_flat[0 * G + 0, 1 * G + 2], sincos_flat[2 * G + 1, 3 * G + 3])  # both: 1 down, 2 right
by_offset = {}
for i in range(N):
    for j in range(N):
        offset = (abs(i // G - j // G), abs(i % G - j % G))
        by_offset.setdefault(offset, []).append(sincos_flat[i, j].item())
assert all(max(v) - min(v) < 1e-5 for v in by_offset.values())
print(f"{len(by_offset)} different (|row offset|, |column offset|); within each, one similarity for all pairs")

# %% [markdown]
# **Solution 2.** Take one step of Δr ≥ 0 rows and Δc ≥ 0 columns. There
# are (G − Δr)(G − Δc) places to start it, and when both steps are nonzero
# the step can also go down and to the left, which doubles the count. The
# bins at the same distance, such as (1, 2) and (2, 1) at √5, add up.

# %%
import math

by_hand_bins = {}
for dr in range(G):
    for dc in range(G):
        if dr or dc:
            count = (G - dr) * (G - dc) * (2 if dr and dc else 1)
            step = round(math.hypot(dr, dc), 4)
            by_hand_bins[step] = by_hand_bins.get(step, 0) + count
assert by_hand_bins == {round(step, 4): int(m.sum()) for step, m in bins.items()}
assert sum(by_hand_bins.values()) == N * (N - 1) // 2
print("pairs per distance:", ", ".join(f"{step:.2f}: {n}" for step, n in sorted(by_hand_bins.items())))

# %% [markdown]
# **Solution 3.** Ten filters, centred on their mean, add up to zero, so
# they span at most 9 directions. The decomposition returns 10 components
# (no more than there are filters); 9 of them share all the variance and
# the tenth has none.

# %%
few = patch_filter_components(weight[:10])[1]
assert abs(few.sum().item() - 1) < 1e-5 and (few[:9] > 1e-6).all() and (few[9:] < 1e-6).all()
print(f"10 filters: {len(few)} components, {int((few > 1e-6).sum())} with variance, together {few[:9].sum():.1%}")

# %% [markdown]
# **Solution 4.** Nothing happens to them: a rotation keeps every length
# and every angle, so every cosine similarity stays the same. The
# similarity images show how the positions relate to each other, not
# which channels carry them; the model could store the same code in any
# rotated set of channels (turning the weights that read them with it), so
# a single channel of a learned table means little on its own.

# %%
Q, _ = torch.linalg.qr(torch.randn(D, D, dtype=torch.float64, generator=torch.Generator().manual_seed(0)))
assert_close(Q.T @ Q, torch.eye(D, dtype=torch.float64))
rotated = model.pos_embed[0].detach().double() @ Q  # (N+1, D) @ (D, D)
assert_close(position_similarity(rotated, G), learned)
assert not torch.allclose(rotated.float(), model.pos_embed[0].detach(), atol=1e-3)
print("the rotated table has other numbers in every channel, and the same similarity images")

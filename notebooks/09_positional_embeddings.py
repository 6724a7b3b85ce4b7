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
# # 09 · What the model learned before attention: positions and patch filters
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
# 3. how the learned embeddings change over training;
# 4. the patch-embedding filters and their principal components (Figure 7,
#    left);
# 5. the same pictures for torchvision's ViT-B/16 with ImageNet weights, when
#    those weights can be had.

# %%
# The package's plot helpers return matplotlib Figures; this lets Jupyter draw them.
# %matplotlib inline
import torch
from torch.testing import assert_close

from vit_tutorial import default_device, load_checkpoint, quick_mode, set_seed
from vit_tutorial.book import IMAGES, run_dir, train_or_load
from vit_tutorial.embeddings import sincos_2d
from vit_tutorial.inspect import patch_filter_components, position_similarity, pretrained_vit_b_16
from vit_tutorial.plots import (plot_explained_variance, plot_filters, plot_position_similarity,
                                plot_similarity_by_distance)

set_seed(0)
device = default_device()
QUICK = quick_mode()  # VIT_TUTORIAL_QUICK=1: the small model trained in seconds, as in CI

# %% [markdown]
# ## The trained model, and the same model untrained
#
# As in notebook 08, `train_or_load` gives back the model of notebook 06. The
# snapshot `fit` saved at epoch 0 is the same model before its first step:
# the baseline for everything below. In quick mode the model has trained for
# only two epochs, so its pictures are close to the untrained ones; the full
# run shows the structure.

# %%
# NBVAL_IGNORE_OUTPUT
model, history, splits = train_or_load("mnist")
model = model.cpu().eval()  # nothing below runs the model: its weights are all we read
snapshots = sorted((run_dir("mnist") / "snapshots").glob("epoch_*.pt"))
untrained = load_checkpoint(snapshots[0])
print(f"{run_dir('mnist')}: trained for {len(history)} epochs, validation accuracy {history.val_acc[-1]:.1%}; "
      f"snapshots at epochs {[int(p.stem.split('_')[1]) for p in snapshots]}")

# %%
cfg = model.config
P, G, N, D, C = cfg.patch_size, cfg.grid_size, cfg.num_patches, cfg.embed_dim, cfg.in_channels
assert snapshots[0].name == "epoch_000.pt"
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

# %% [markdown]
# Before training, each position resembles only itself: random vectors in 64
# dimensions are nearly perpendicular. The sine-cosine table has the grid
# built in: every position is quite similar to every other (mind its colour
# scale), and less so the further apart they are. Nobody told the learned
# table that patches lie on a grid: the model saw 16 tokens with 16 position
# vectors and had to find out from the digits alone which positions should
# look alike.
#
# To put numbers on what it found, we average the similarity over the pairs
# of different positions that share a row, that share a column, and that
# share neither:

# %%
rows = torch.arange(N) // G  # the row and column of every patch, in reading order
cols = torch.arange(N) % G
off_diagonal = ~torch.eye(N, dtype=torch.bool)
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
print(f"{'':26s}" + "".join(f"{kind:>13s}" for kind in pair_kinds))
for name, sim in similarities.items():
    print(f"{name:26s}" + "".join(f"{v:+13.3f}" for v in similarity_by_kind(sim).values()))

# %% [markdown]
# In our full run, two positions in the same row came out more alike than two
# that share neither row nor column, while sharing a column made little
# difference. So the model did learn something about the layout of the
# grid, but far less than the paper's ImageNet model, whose table (Figure 7,
# centre) shows clean rows, columns and neighbourhoods. With 16 positions
# and a few thousand digits there is little to learn and little data to
# learn it from, and nothing asks a learned table to be smooth, only useful.
# (In quick mode the model has barely trained, and its table is still close to
# the random one.)
#
# ## Similarity against distance
#
# One curve per table: the mean similarity of two positions against their
# distance on the grid (1 for neighbours, √2 for diagonal neighbours, up to
# 3√2 for opposite corners). The sine-cosine table falls off smoothly; the
# learned one does not fall off at all, which is the same finding as above
# seen another way.

# %%
# NBVAL_IGNORE_OUTPUT
fig = plot_similarity_by_distance(similarities)
fig.savefig(IMAGES / "pos_embed_distance.png", dpi=120, bbox_inches="tight")
fig

# %% [markdown]
# That the fixed table falls off with distance is built into it. A check
# that does not depend on training: along the top row, the sine-cosine
# similarity of the first position to the others goes down step by step.

# %%
sincos_sim = similarities["sine-cosine (fixed)"]
assert (sincos_sim[0, 0, 0, :-1] > sincos_sim[0, 0, 0, 1:]).all()
print("sine-cosine similarity along the top row:", [round(v, 3) for v in sincos_sim[0, 0, 0].tolist()])

# %% [markdown]
# ## Over training
#
# The snapshots show when the structure appears. One panel per saved epoch,
# all on the same colour scale from -1 to 1, then the pair averages and the
# mean length of the position vectors at each epoch:

# %%
# NBVAL_IGNORE_OUTPUT
over_training, lengths = {}, {}
for path in snapshots:
    epoch = int(path.stem.split("_")[1])
    pos_embed = load_checkpoint(path).pos_embed.detach()
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
# In our full run the table was at its most grid-like after two epochs, with
# rows, columns and neighbours all a little alike. Then the vectors grew
# several times longer, and the structure changed: the column pattern
# faded, pairs that share neither row nor column drifted apart, and the row
# pattern weakened, then came back. The learned positions are not
# a map of the grid that training sharpens; they are whatever code the rest
# of the network found useful, and that code kept changing.

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
# numbers, so every direction explains about the same share:

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

# %% [markdown]
# In the full run, the first few components are broad, smooth patterns:
# bright on one side of the patch and dark on the other, or a band along an
# edge. Patterns like these tell where a stroke crosses a patch and in which
# direction it runs. They resemble the low-frequency basis the paper found
# for ImageNet, and what the first layer of a CNN learns. From about the
# tenth component on, the patterns look like noise and explain little: the
# trained filters vary mostly within some ten directions, while the random
# ones spread evenly over all 49.
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
print(message)

# %%
# NBVAL_IGNORE_OUTPUT
if vit_b16 is not None:
    from IPython.display import display

    bcfg = vit_b16.config
    fig = plot_position_similarity({"ViT-B/16": position_similarity(vit_b16.pos_embed, bcfg.grid_size)},
                                   size=6, title="Position-embedding similarity of ViT-B/16, trained on ImageNet")
    fig.savefig(IMAGES / "pos_embed_vit_b_16.png", dpi=120, bbox_inches="tight")
    display(fig)
    b_components, b_explained = patch_filter_components(vit_b16.patch_embed.proj.weight, 28)
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

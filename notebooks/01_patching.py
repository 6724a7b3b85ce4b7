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
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 1. Cutting an image into patches
#
# A Transformer reads a sequence of vectors; an image is a grid of pixels. The first
# thing a Vision Transformer (Dosovitskiy et al., 2020, [arXiv 2010.11929](https://arxiv.org/abs/2010.11929))
# does is turn the one into the other: it cuts the image into square patches, lays
# each patch out as one long row of numbers, and maps every row through the same
# linear layer to a vector of width $D$. Those vectors are the tokens the rest of the
# model works on.
#
# In this notebook we cut an MNIST digit into 16 patches and look at them, write the
# cutting out by hand in two ways, embed the patches with a linear layer, and prove
# that the package's `PatchEmbed`, which uses a `Conv2d`, computes exactly the same
# numbers.

# %% [markdown]
# ## The shape letters of the book
#
# Every notebook names tensor dimensions with the same letters. The last column gives
# their values in the book's MNIST model.
#
# | letter | meaning | MNIST model |
# | --- | --- | --- |
# | B | batch: images processed together | any |
# | C | channels of the image | 1 (grey) |
# | H, W | height and width of the image, pixels | 28, 28 |
# | P | side of one square patch, pixels | 7 |
# | N | number of patches, $N = HW / P^2$ | 16 |
# | D | embedding width: the length of every token | 64 |
# | h | attention heads | 4 |
# | d | width of one head, $d = D / h$ | 16 |
#
# A comment such as `# (B, C, H, W) -> (B, N, D)` next to a line says what that line
# does to the shape.

# %%
# The package's plot helpers return matplotlib Figures; this lets Jupyter draw them.
# %matplotlib inline
import torch
from einops import rearrange
from torch import nn

from vit_tutorial import PatchEmbed, default_device, load_dataset, patchify, quick_mode, set_seed
from vit_tutorial.book import DATA, IMAGES
from vit_tutorial.plots import plot_patches

set_seed(0)
device = default_device()
QUICK = quick_mode()  # nothing here trains, so quick and full mode run the same cells

# %% [markdown]
# ## A few digits
#
# The data module gives MNIST as train, validation and test splits. Without a network
# it falls back to a sample of 5,000 real MNIST digits and says so. We take eight
# validation digits, chosen by a seeded generator: the test split is kept for
# measuring the trained model in notebook 07.

# %%
# NBVAL_IGNORE_OUTPUT
splits = load_dataset("mnist", DATA)

# %%
images, labels = splits.val.examples(8, seed=0)  # (B, C, H, W), values in [0, 1]
images = images.to(device)

B, C, H, W = images.shape
P = 7
N = (H // P) * (W // P)
assert (B, C, H, W) == (8, 1, 28, 28)
assert H % P == 0 and W % P == 0, "the patches must tile the image exactly"
assert N == 16

# %% [markdown]
# ## The digit as 16 patches
#
# With $P = 7$ a 28 x 28 digit falls into a 4 x 4 grid of patches. We number them in
# reading order, left to right and then top to bottom; that number is the patch's
# place in the sequence. MNIST digits sit in the middle of the frame, so the corner
# patches hold little or nothing, and the stroke runs through the others.

# %%
fig = plot_patches(images[0], P)
fig.savefig(IMAGES / "patches.png", dpi=120, bbox_inches="tight")
fig

# %% [markdown]
# ## Flattening by hand, two ways
#
# One patch holds $C \cdot P \cdot P = 49$ numbers. To feed it to a linear layer we lay
# them out as one vector. Any fixed order would do, but we take the order channel,
# then row, then column, because that is how a `Conv2d` stores its kernel. That choice
# pays off at the end of this notebook.
#
# The first way is the most literal: walk over the grid, slice out each patch and
# flatten it.

# %%
def patches_by_loops(x: torch.Tensor, P: int) -> torch.Tensor:
    """(B, C, H, W) -> (B, N, C*P*P): the patches in reading order, each flattened channel, row, column."""
    B, C, H, W = x.shape
    rows = []
    for r in range(H // P):  # patch row, top to bottom
        for c in range(W // P):  # patch column, left to right
            patch = x[:, :, r * P:(r + 1) * P, c * P:(c + 1) * P]  # (B, C, P, P)
            rows.append(patch.reshape(B, C * P * P))  # (B, C, P, P) -> (B, C*P*P)
    return torch.stack(rows, dim=1)  # N tensors of (B, C*P*P) -> (B, N, C*P*P)


patches = patches_by_loops(images, P)
assert patches.shape == (B, N, C * P * P)

# %% [markdown]
# The second way says the same thing as one einops pattern. Read it as: the height is
# made of `gh` patch rows of `p1` pixels, the width of `gw` patch columns of `p2`
# pixels; gather the patch coordinates into the sequence axis and the pixel
# coordinates into the feature axis.

# %%
patches_einops = rearrange(images, "b c (gh p1) (gw p2) -> b (gh gw) (c p1 p2)", p1=P, p2=P)
assert patches_einops.shape == (B, N, C * P * P)

# %% [markdown]
# The package's `patchify` does the same with `reshape` and `permute`. Cutting and
# flattening only move numbers around, so all three must agree exactly, not just
# approximately.

# %%
torch.testing.assert_close(patches_einops, patches, rtol=0, atol=0)
torch.testing.assert_close(patchify(images, P), patches, rtol=0, atol=0)
print("loops == einops == vit_tutorial.patchify: OK")

# %% [markdown]
# ## From patches to tokens: one shared linear layer
#
# Each flattened patch $x_p^n$ is multiplied by the same matrix $E$ of shape
# $(P^2 C) \times D$; in the paper's equation 1 these products are the rows
# $x_p^1 E, \dots, x_p^N E$. Sharing $E$ means a stroke is embedded the same way
# wherever in the image it appears. `nn.Linear` acts on the last axis, so it treats
# the $N$ patches of all $B$ images alike.

# %%
D = 64
embed = nn.Linear(C * P * P, D).to(device)
tokens = embed(patches)  # (B, N, C*P*P) -> (B, N, D)
assert tokens.shape == (B, N, D)
print(f"parameters of the patch embedding: {sum(p.numel() for p in embed.parameters()):,} "
      f"= ({C * P * P} inputs + 1 bias) x {D} outputs")

# %% [markdown]
# ## The same thing as a convolution
#
# A `Conv2d` with kernel size $P$ and stride $P$ places its $P \times P$ window on the
# image at steps of $P$ pixels. The windows do not overlap and leave no gap, so the
# window positions are exactly the patches. At each position, output channel $k$ is
#
# $$\mathrm{out}_k(r, c) = b_k + \sum_{\text{ch}, i, j} w_{k,\text{ch},i,j}\; x_{\text{ch},\,rP+i,\,cP+j},$$
#
# the dot product of the flattened patch $(r, c)$ with the flattened kernel $k$, plus a
# bias. That is one output of a linear layer whose weight row $k$ is kernel $k$
# flattened in the order channel, row, column. The convolution gives a $(B, D, H/P, W/P)$
# grid; flattening the grid in reading order gives the $(B, N, D)$ tokens.
#
# The package's `PatchEmbed` is that convolution. We copy its kernel into our linear
# layer and compare.

# %%
patch_embed = PatchEmbed(image_size=H, patch_size=P, in_channels=C, embed_dim=D).to(device)
with torch.no_grad():
    embed.weight.copy_(patch_embed.proj.weight.reshape(D, C * P * P))  # (D, C, P, P) -> (D, C*P*P)
    embed.bias.copy_(patch_embed.proj.bias)

# %% [markdown]
# The proofs in this book compare in double precision (float64). The convolution and
# the matrix product add the same 49 products in a different order, so in float32
# they may differ in the last bits, and on a GPU a convolution may round its inputs
# to TensorFloat-32, which differs much more. In float64 two correct computations
# agree to about $10^{-15}$, and `assert_close`'s default tolerances leave no room for
# a real mistake such as a swapped axis.

# %%
x64 = images.double()
with torch.no_grad():
    by_conv = patch_embed.double()(x64)  # (B, C, H, W) -> (B, N, D)
    by_linear = embed.double()(patches_by_loops(x64, P))  # (B, N, C*P*P) -> (B, N, D)
assert by_conv.shape == by_linear.shape == (B, N, D)
torch.testing.assert_close(by_conv, by_linear)
print("PatchEmbed (Conv2d, kernel = stride = P) == flatten + linear: OK")

# %% [markdown]
# The check can fail. Flatten each patch column by column instead of row by row and
# the copied weights meet the wrong pixels: the tokens no longer match.

# %%
column_order = rearrange(x64, "b c (gh p1) (gw p2) -> b (gh gw) (c p2 p1)", p1=P, p2=P)
with torch.no_grad():
    wrong = embed(column_order)
assert not torch.allclose(wrong, by_conv)
print("flattening column by column instead: differs, as it should")

# %% [markdown]
# The two forms compute the same tokens, so the package keeps the convolution: one
# call, and no copy of the patches in memory.
#
# ## What comes next
#
# Every digit is now a sequence of $N = 16$ tokens of width $D = 64$. Notebook
# `02_cls_token` puts one more token in front of them, the class token, whose output
# is what the classifier finally reads.

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

from vit_tutorial import (PatchEmbed, VitTutorialError, default_device, load_dataset, patchify, preset, quick_mode,
                          set_seed)
from vit_tutorial.book import DATA, IMAGES
from vit_tutorial.plots import plot_architecture, plot_patches

set_seed(0)
device = default_device()
QUICK = quick_mode()  # nothing here trains, so quick and full mode run the same cells

# %% [markdown]
# ## The whole model at a glance
#
# Before we build the first piece, here is the whole model the book builds, drawn from
# the configuration of the MNIST model. Read it from top to bottom: each box is one
# step, and the label on each arrow is the shape of the tensor that flows to the next
# step, first in the letters above and then in numbers. The letter K is the number of
# classes, 10 digits; L is the number of encoder blocks.
#
# This notebook builds the two boxes below the image: the patches and their linear
# projection. Notebooks 02 and 03 add the class token and the position embeddings,
# notebook 04 the attention inside each encoder block, and notebook 05 the rest of
# the block, the final LayerNorm and the head.

# %%
fig = plot_architecture(preset("mnist/vit"))
fig.savefig(IMAGES / "architecture.png", dpi=120, bbox_inches="tight")
fig

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
# ## Why patches and not pixels
#
# Why not make every pixel a token? Attention, the step that mixes the tokens
# (notebook 04), compares every token with every other one: each of its heads, in each
# block, computes a weight for every pair of tokens, $T^2$ of them for $T$ tokens. Its
# cost and the memory for its weights grow with the square of the number of tokens. One
# token per pixel gives $T = HW = 784$ tokens; one per 7 x 7 patch gives $T = N = 16$.
# We count the pairs,
# and the memory that one head's weight matrix for one image takes in float32 (4 bytes
# a number).

# %%
pixel_tokens = H * W
pairs_pixels, pairs_patches = pixel_tokens**2, N**2
ratio = pairs_pixels // pairs_patches
assert (pixel_tokens, pairs_pixels, pairs_patches) == (784, 614_656, 256)
assert ratio == P**4 == 2_401  # N shrinks by P^2, so the pairs shrink by P^4
print(f"tokens: {pixel_tokens} pixels or {N} patches")
print(f"pairs of tokens, T^2: {pairs_pixels:,} against {pairs_patches:,}, {ratio:,} times fewer with patches")
print(f"one head's weights for one image, float32: {4 * pairs_pixels / 1e6:.1f} MB against "
      f"{4 * pairs_patches / 1e3:.1f} kB")

imagenet_pixels, imagenet_patches = 224 * 224, (224 // 16) ** 2  # the paper's ImageNet images, P = 16
assert (imagenet_pixels, imagenet_patches) == (50_176, 196)
print(f"a 224 x 224 image: {imagenet_pixels:,} pixel tokens or {imagenet_patches} tokens of 16 x 16 pixels")

# %% [markdown]
# With patches of $P \times P$ pixels the sequence is $P^2$ times shorter, and attention
# has $P^4$ times fewer weights to compute. The price is paid in the first step: each token now stands for
# 49 pixels, and whatever the model needs to know about the inside of a patch has to
# survive the linear projection below. On ImageNet's 224 x 224 images the paper's
# 16 x 16 patches turn 50,176 pixels into 196 tokens, counted in the last line above:
# hence its title, *An Image is Worth 16x16 Words*.

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

# %% [markdown]
# ## Exercises
#
# 1. With patches of $P = 4$ instead of 7, how many patches $N$ does a 28 x 28 digit
#    give, and how many parameters does a patch embedding of width $D = 64$ hold?
#    Work both out with the formulas of this notebook, then check them against a
#    `PatchEmbed`.
# 2. A CIFAR-10 image has 32 x 32 pixels in $C = 3$ colours. With $P = 4$, how many
#    numbers does one flattened patch hold, and which pixel (channel, row, column) of
#    the image is number 37 of patch 9? Check with `patchify`.
# 3. Shift a digit $P$ pixels to the right, filling the gap with zeros. Which tokens of
#    the shifted digit equal tokens of the original? What changes if the shift is one
#    pixel?
# 4. Why does the book insist that $P$ divides the image side? Give a bare
#    `nn.Conv2d` with kernel and stride 5 (what `PatchEmbed` is inside) a 28 x 28
#    digit: how many patches come out, and which pixels does it never read?

# %% [markdown]
# **Solution 1.** $N = (28/4)^2 = 49$ patches of $P^2 C = 16$ numbers each. The
# embedding is a $16 \times 64$ matrix plus 64 biases: $(16 + 1) \cdot 64 = 1{,}088$
# parameters, fewer than with $P = 7$, while the sequence grows from 16 to 49 tokens.

# %%
P4 = 4
N4 = (28 // P4) ** 2
params4 = (P4 * P4 * 1 + 1) * D  # (P^2 C inputs + 1 bias) x D outputs
pe4 = PatchEmbed(image_size=28, patch_size=P4, in_channels=1, embed_dim=D)
assert pe4.num_patches == N4 == 49
assert sum(p.numel() for p in pe4.parameters()) == params4 == 1_088
assert pe4(images.cpu()).shape == (B, N4, D)
print(f"P = {P4}: N = {N4} patches, {params4:,} parameters in the patch embedding")

# %% [markdown]
# **Solution 2.** One patch holds $C P^2 = 3 \cdot 16 = 48$ numbers, in the order
# channel, row, column: number 37 is channel $37 // 16 = 2$, and of the remaining
# $37 - 32 = 5$, row $5 // 4 = 1$ and column $5 \bmod 4 = 1$ inside the patch. The grid
# has $32 / 4 = 8$ patches a side, so patch 9 is in patch row 1, patch column 1, and
# its top-left pixel is at (4, 4). Number 37 of patch 9 is the pixel in channel 2, row
# $4 + 1 = 5$, column $4 + 1 = 5$.

# %%
colour = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
flat = patchify(colour, 4)  # (1, 3, 32, 32) -> (1, 64, 48)
assert flat.shape == (1, 64, 48)
ch, rest = divmod(37, 4 * 4)
i, j = divmod(rest, 4)
r, c = divmod(9, 32 // 4)
assert (ch, 4 * r + i, 4 * c + j) == (2, 5, 5)
assert flat[0, 9, 37] == colour[0, 2, 5, 5]
print("number 37 of patch 9 is the pixel (channel 2, row 5, column 5): OK")

# %% [markdown]
# **Solution 3.** A shift by exactly $P$ pixels moves every patch whole into the next
# patch column. The patch embedding is the same linear map for every patch, so the
# tokens move with them: the token at grid column $c + 1$ of the shifted digit is the
# token at column $c$ of the original. The new first column holds blank patches, whose
# token is the bias alone, and the original last column has left the image. A shift by
# one pixel cuts every inked patch differently: the tokens no longer move with the
# digit. The embedding
# treats the image as a grid of patches; a shift that does not follow the grid is,
# for it, a different image.

# %%
G1 = H // P
with torch.no_grad():
    original = patch_embed.float()(images).reshape(B, G1, G1, D)  # (B, N, D) -> (B, rows, columns, D)
    for shift in (P, 1):
        moved = torch.zeros_like(images)
        moved[..., shift:] = images[..., :-shift]  # shift right, fill with zeros
        tokens_moved = patch_embed(moved).reshape(B, G1, G1, D)
        same = torch.allclose(tokens_moved[:, :, 1:], original[:, :, :-1], atol=1e-5)
        print(f"shift by {shift} pixel(s): tokens moved one column along the grid: {same}")
        assert same == (shift == P)
        if shift == P:  # the new first column is blank: its tokens are the bias alone
            torch.testing.assert_close(tokens_moved[:, :, 0], patch_embed.proj.bias.expand(B, G1, D))

# %% [markdown]
# **Solution 4.** A `Conv2d` with kernel and stride 5 fits $\lfloor 28 / 5 \rfloor = 5$
# windows along each side, so $N = 25$, and the last $28 - 25 = 3$ rows and columns are
# never read: changing them leaves every token as it was. Nothing warns about it,
# which is why `PatchEmbed`, `patchify` and the model's configuration refuse such a
# patch size.

# %%
pe5 = torch.nn.Conv2d(1, D, kernel_size=5, stride=5)  # (B, 1, 28, 28) -> (B, D, 5, 5)
changed = images.cpu().clone()
changed[..., 25:, :] = 1.0  # paint the last 3 rows
changed[..., :, 25:] = 1.0  # and the last 3 columns
with torch.no_grad():
    assert pe5(images.cpu()).flatten(2).shape == (B, D, 25)  # 25 patches
    torch.testing.assert_close(pe5(changed), pe5(images.cpu()), rtol=0, atol=0)
for refuse in (lambda: PatchEmbed(image_size=28, patch_size=5), lambda: patchify(images, 5),
               lambda: preset("mnist/vit", patch_size=5)):
    try:
        refuse()
    except VitTutorialError as err:
        print(f"refused: {err}")
    else:
        raise AssertionError("a patch size of 5 for 28 pixels should be refused")

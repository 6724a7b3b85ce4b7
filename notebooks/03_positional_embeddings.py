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
# # 3. Position embeddings
#
# Cutting an image into a sequence of patches throws away where each patch was.
# Attention, the operation at the heart of the encoder, does not get it back: it
# treats its tokens as a set. The Vision Transformer therefore adds to every token a
# vector that says which position it came from, the term $E_\text{pos}$ of equation 1.
#
# In this notebook we first prove the blindness: a ViT without position embeddings
# gives the same answer for a digit and for the same digit with its patches shuffled,
# and we check why a 6 turned upside down is not such a shuffle. Then we build the
# paper's learned position embeddings and complete equation 1, and derive the fixed
# 2-D sine-cosine table that is the common alternative. The figure at the end shows
# how similar the sine-cosine vectors of any two positions are.

# %%
# The package's plot helpers return matplotlib Figures; this lets Jupyter draw them.
# %matplotlib inline
import copy
import math
from collections import defaultdict

import matplotlib.pyplot as plt
import torch
from einops import rearrange
from torch import nn

from vit_tutorial import ViT, default_device, load_dataset, preset, quick_mode, set_seed
from vit_tutorial.book import DATA, IMAGES
from vit_tutorial.embeddings import sincos_2d
from vit_tutorial.plots import plot_images

set_seed(0)
device = default_device()
QUICK = quick_mode()  # nothing here trains, so quick and full mode run the same cells

# %%
# NBVAL_IGNORE_OUTPUT
splits = load_dataset("mnist", DATA)

# %%
images, _ = splits.val.examples(8, seed=0)  # (B, C, H, W), values in [0, 1]
images = images.to(device)

model = ViT(preset("mnist/vit")).to(device).eval()
cfg = model.config
B = images.shape[0]
P, G, N, D = cfg.patch_size, cfg.grid_size, cfg.num_patches, cfg.embed_dim  # G: patches along one side
assert (B, P, G, N, D) == (8, 7, 4, 16, 64)

# %% [markdown]
# ## Shuffling the patches
#
# To shuffle a digit's patches we cut it into its $N$ patches, reorder them with a
# permutation, and put them back on the grid. Position $n$ of the shuffled image then
# holds patch `perm[n]` of the original.

# %%
def shuffle_patches(x: torch.Tensor, perm: torch.Tensor, P: int) -> torch.Tensor:
    """(B, C, H, W) -> (B, C, H, W) with the P x P patches moved: new patch n is old patch perm[n]."""
    gh = x.shape[-2] // P
    patches = rearrange(x, "b c (gh p1) (gw p2) -> b (gh gw) c p1 p2", p1=P, p2=P)
    return rearrange(patches[:, perm], "b (gh gw) c p1 p2 -> b c (gh p1) (gw p2)", gh=gh)


perm = torch.randperm(N, generator=torch.Generator().manual_seed(1)).to(device)
shuffled = shuffle_patches(images, perm, P)
assert shuffled.shape == images.shape
assert not torch.equal(shuffled, images)

plot_images(torch.stack([images[0], shuffled[0]]), titles=["a digit", "its patches shuffled"],
            ncols=2, size=2.2, suptitle="Two different images, or the same bag of patches?")

# %% [markdown]
# ## Without positions the two are the same
#
# Take the model and set its position embeddings to zero: that is a ViT without
# positions. Run both versions of the digits through it and compare.
#
# Every step of the encoder treats tokens either one at a time (LayerNorm, the MLP)
# or through attention, where each token takes a weighted sum over all tokens with
# weights computed from the token contents alone. None of these steps knows which
# token came first. So if the input tokens are reordered, the output tokens are
# reordered the same way and are otherwise unchanged. The class token is not moved,
# so its output, the only thing the head reads, does not change at all: the logits
# are identical. As in the earlier notebooks, the proofs run in float64.

# %%
blind = copy.deepcopy(model).double()
with torch.no_grad():
    blind.pos_embed.zero_()
    out = blind.forward_features(images.double())  # (B, N+1, D)
    out_shuffled = blind.forward_features(shuffled.double())  # (B, N+1, D)
    logits, logits_shuffled = blind.forward_head(out), blind.forward_head(out_shuffled)

torch.testing.assert_close(out_shuffled[:, 1:], out[:, 1:][:, perm])  # patch tokens: reordered like the input
torch.testing.assert_close(out_shuffled[:, 0], out[:, 0])  # class token: unchanged
torch.testing.assert_close(logits_shuffled, logits)
print("no positions: shuffled patches give shuffled patch outputs and the same logits: OK")

# %% [markdown]
# To a ViT without position embeddings an image is a bag of patches. It could still
# learn something from which patches are present, but any two images made of the same
# patches in another order, like the digit and its shuffle above, look the same to it.
#
# ## A 6 is not a 9 in another order
#
# A tempting example of two digits "made of the same pieces" is a 6 and a 9, but it is
# wrong. Turning a 6 by 180 degrees moves each patch to the opposite place in the grid,
# patch $n$ to patch $N - 1 - n$, and turns the patch itself upside down too. The turned
# digit is made of turned patches: different vectors, not the same ones reordered. We
# check it on the first 6 of the validation split.

# %%
def rotate_180(x: torch.Tensor) -> torch.Tensor:
    """Turn images (..., H, W) by 180 degrees."""
    return torch.rot90(x, 2, dims=(-2, -1))


six_index = int((splits.val.labels == 6).nonzero()[0])
six, _ = splits.val.batch(torch.tensor([six_index]))  # (1, C, H, W)
six = six.to(device)
turned = rotate_180(six)

pieces = rearrange(six, "b c (gh p1) (gw p2) -> b (gh gw) c p1 p2", p1=P, p2=P)[0]  # (N, C, P, P)
pieces_turned = rearrange(turned, "b c (gh p1) (gw p2) -> b (gh gw) c p1 p2", p1=P, p2=P)[0]
inked = pieces.flatten(1).abs().sum(1) > 0  # patches with some ink: blank ones are equal everywhere
inked_turned = pieces_turned.flatten(1).abs().sum(1) > 0
# is each inked patch of the turned digit one of the 6's patches, as a vector?
found = [any(torch.equal(a, b) for b in pieces) for a in pieces_turned[inked_turned]]
print(f"inked patches of the turned 6 that are also patches of the 6: {sum(found)} of {len(found)}")
assert not any(found)

# only when every patch is turned back as well do we get the 6's own patches, in reverse order
torch.testing.assert_close(rotate_180(pieces_turned), pieces.flip(0), rtol=0, atol=0)
print("the turned 6 with each patch turned back == the 6's patches, in reverse order: OK")

# %% [markdown]
# The figure shows the three images: the 6, the 6 turned by 180 degrees, and the
# turned 6 with every patch turned back in its place. Only the third is a reordering
# of the 6's patches.

# %%
turned_back = rearrange(rotate_180(pieces_turned), "(gh gw) c p1 p2 -> c (gh p1) (gw p2)", gh=G)
torch.testing.assert_close(turned_back[None], shuffle_patches(six, torch.arange(N - 1, -1, -1), P))
plot_images(torch.stack([six[0], turned[0], turned_back]),
            titles=["a 6", "turned by 180 degrees", "each patch turned back"],
            ncols=3, size=2.2, suptitle="Turning a digit turns its patches too")

# %% [markdown]
# To the blind model the third image is the 6 itself, since it is a shuffle of it; the
# turned 6 is a different input, and its logits differ from the 6's. A model without
# positions cannot tell a digit from its shuffles, but a turned digit is not one of them.

# %%
with torch.no_grad():
    logits_six = blind(six.double())
    logits_turned = blind(turned.double())
    logits_back = blind(turned_back[None].double())
torch.testing.assert_close(logits_back, logits_six)
assert not torch.allclose(logits_turned, logits_six)
print("no positions: the patches turned back give the 6's logits, the turned 6 does not: OK")

# %% [markdown]
# ## Learned position embeddings
#
# The paper's answer is a table of $N + 1$ learned vectors of width $D$, one for each
# place in the sequence (the class token's place included), added to the tokens:
#
# $$z_0 = [x_\text{class};\, x_p^1 E;\, \dots;\, x_p^N E] + E_\text{pos},$$
#
# with $E_\text{pos}$ of shape $(N + 1) \times D$.
#
# The table starts as small random numbers and is trained with everything else. It
# is a plain 1-D table: nothing in it says that patch 5 is next to patch 6 or below
# patch 1; training has to find that out. The paper tried 2-D-aware and relative
# variants and found little difference between them, but a large gap between having
# position embeddings and not having them.

# %%
pos_embed = nn.Parameter(torch.empty(1, N + 1, D, device=device))
nn.init.trunc_normal_(pos_embed, std=0.02)
print(f"learned position embeddings: {pos_embed.numel():,} parameters = ({N} + 1) x {D}")

# %% [markdown]
# Adding it completes equation 1. The table has one row per position and the same
# table serves every image, so it broadcasts over the batch. We rebuild $z_0$ from the
# model's own weights and check it against the package's `ViT.embed`.

# %%
model64 = copy.deepcopy(model).double()
x64 = images.double()
with torch.no_grad():
    cls = model64.cls_token.expand(B, -1, -1)  # (1, 1, D) -> (B, 1, D)
    patch_tokens = model64.patch_embed((x64 - model64.mean) / model64.std)  # (B, C, H, W) -> (B, N, D)
    z0 = torch.cat([cls, patch_tokens], dim=1) + model64.pos_embed  # (B, N+1, D) + (1, N+1, D)
    assert z0.shape == (B, N + 1, D)
    torch.testing.assert_close(z0, model64.embed(x64))
print("equation 1, [class token; patch tokens] + E_pos == ViT.embed: OK")

# %% [markdown]
# With the positions in place, the shuffled digit is a different input: patch
# `perm[n]` now arrives with the position vector of place $n$, and the logits change.
# The model is untrained, so its answers are still meaningless, but they are no
# longer forced to be equal.

# %%
with torch.no_grad():
    logits = model64(x64)
    logits_shuffled = model64(shuffled.double())
assert not torch.allclose(logits, logits_shuffled)
print("with positions: shuffling the patches changes the logits: OK")

# %% [markdown]
# ## Fixed 2-D sine-cosine position embeddings
#
# Instead of learning the table, one can write it down. Later ViT work (MoCo v3, MAE,
# and "Better plain ViT baselines for ImageNet-1k") uses a fixed 2-D sine-cosine
# table: it costs no parameters, and it builds the grid into the embedding from the
# start. The recipe:
#
# - Split the $D$ channels in two halves: the first half encodes the patch's row $r$,
#   the second half its column $c$.
# - Within each half, use $D/4$ frequencies $\omega_j = 10000^{-j/(D/4)}$ for
#   $j = 0, \dots, D/4 - 1$, from one radian per patch down to almost nothing.
# - Each half holds $\sin(\omega_j\, t)$ for all $j$, then $\cos(\omega_j\, t)$ for all
#   $j$, with $t = r$ in the first half and $t = c$ in the second.
# - The class token has no position; its row is zero.
#
# We write it entry by entry with plain loops, patch $n$ sitting in row
# $r = \lfloor n / G \rfloor$ and column $c = n \bmod G$ of the $G \times G$ grid.

# %%
def sincos_by_loops(G: int, D: int) -> torch.Tensor:
    """The fixed 2-D sine-cosine table for a G x G grid of patches, (N, D), one entry at a time."""
    q = D // 4  # frequencies per axis
    table = torch.zeros(G * G, D, dtype=torch.float64)
    for n in range(G * G):
        r, c = divmod(n, G)  # reading order: patch n is in row r, column c
        for j in range(q):
            w = 10000 ** (-j / q)
            table[n, j] = math.sin(r * w)
            table[n, q + j] = math.cos(r * w)
            table[n, 2 * q + j] = math.sin(c * w)
            table[n, 3 * q + j] = math.cos(c * w)
    return table


ours = sincos_by_loops(G, D)
assert ours.shape == (N, D)

# %% [markdown]
# The package builds the same table with tensor operations in
# `vit_tutorial.embeddings.sincos_2d` (row 0 for the class token, then the $N$
# patches), and a model with `pos_embed="sincos"` stores it as a buffer, not a
# parameter, so no optimiser ever changes it.

# %%
package_table = sincos_2d(G, D)  # (N+1, D)
assert package_table.shape == (N + 1, D)
torch.testing.assert_close(package_table[1:], ours.float())
torch.testing.assert_close(package_table[0], torch.zeros(D), rtol=0, atol=0)

fixed = ViT(preset("mnist/vit", pos_embed="sincos"))
torch.testing.assert_close(fixed.pos_embed[0], package_table, rtol=0, atol=0)
assert model.num_parameters() - fixed.num_parameters() == (N + 1) * D
print(f"sine-cosine by loops == vit_tutorial.embeddings.sincos_2d: OK "
      f"(and {(N + 1) * D:,} fewer trainable parameters)")

# %% [markdown]
# ## Why sines and cosines
#
# For one frequency, the pair $(\sin \omega t, \cos \omega t)$ is a point on a circle
# that turns by $\omega$ radians per step. The dot product of the pairs of two
# positions $t$ and $t'$ is $\sin\omega t \sin\omega t' + \cos\omega t \cos\omega t' = \cos(\omega (t - t'))$,
# which depends only on the offset $t - t'$. Summed over all frequencies and both
# axes, the dot product of two patches' embeddings depends only on how far apart they
# are along the rows and along the columns, not on where they are. Every row of the
# table has the same length, $\sqrt{D/2}$, so the same holds for the cosine similarity.
#
# We check both claims over all $N^2$ pairs of patches.

# %%
dots = ours @ ours.T  # (N, D) @ (D, N) -> (N, N)
torch.testing.assert_close(ours.norm(dim=1), torch.full((N,), math.sqrt(D / 2), dtype=torch.float64))

by_offset = defaultdict(list)
for a in range(N):
    for b in range(N):
        (ra, ca), (rb, cb) = divmod(a, G), divmod(b, G)
        by_offset[(ra - rb, ca - cb)].append(dots[a, b])
for values in by_offset.values():
    values = torch.stack(values)
    torch.testing.assert_close(values, values[0].expand_as(values))
print(f"all {N * N} dot products depend only on the offset between the patches "
      f"({len(by_offset)} offsets): OK")

# %% [markdown]
# ## A picture of the table
#
# The figure draws one small image per patch position, arranged like the patches
# themselves. The small image at row $r$, column $c$ shows the cosine similarity of
# that position's embedding with the embedding of every position; the red cross marks
# the position itself, where the similarity is 1. All panels share one colour scale.

# %%
unit = ours / ours.norm(dim=1, keepdim=True)
similarity = (unit @ unit.T).reshape(G, G, G, G)  # (N, N) -> (row, col, other row, other col)

fig, axes = plt.subplots(G, G, figsize=(7, 6.3), layout="constrained", sharex=True, sharey=True)
for r in range(G):
    for c in range(G):
        ax = axes[r, c]
        im = ax.imshow(similarity[r, c].numpy(), vmin=float(similarity.min()), vmax=1.0, cmap="viridis")
        ax.plot(c, r, "x", color="red", ms=6)
        ax.set_xticks([])
        ax.set_yticks([])
        if r == G - 1:
            ax.set_xlabel(f"column {c}", fontsize=9)
        if c == 0:
            ax.set_ylabel(f"row {r}", fontsize=9)
fig.colorbar(im, ax=axes, shrink=0.8, label="cosine similarity")
fig.supxlabel("panel: one patch position; inside a panel: every position, on the same grid")
fig.suptitle(f"Fixed 2-D sine-cosine position embeddings: {G} x {G} patches, D = {D}")
fig.savefig(IMAGES / "sincos_similarity.png", dpi=120, bbox_inches="tight")
plt.show()
plt.close(fig)

# %% [markdown]
# Each panel is brightest at its own position and fades with distance, row and column
# independently, so positions in the same row or column stay close. The similarity
# never drops very low: on a grid of only 4 x 4 patches, most of the slow frequencies
# barely turn, and they make every pair of positions look alike. The fast frequencies
# are the ones that tell neighbours apart.
#
# The learned table of the paper has no such structure at the start. Notebook 09 draws
# the same picture for the learned embeddings of the trained MNIST model, to see how
# much of it training discovers.
#
# ## What comes next
#
# The input of the encoder, $z_0$, is now complete. Notebook `04_attention` builds the
# operation that mixes the tokens, multi-head self-attention, by hand for one digit,
# and proves it equal to PyTorch's versions and the package's.

# %% [markdown]
# ## Exercises
#
# All of these can be answered without training anything.
#
# 1. How many parameters does the learned table of the Fashion-MNIST model
#    (the plain ViT of notebook 10, `preset("fashion-mnist/vit")`: 28 x 28 images,
#    $P = 4$, $D = 128$) hold? Check it.
# 2. For every patch position, which other position has the most similar sine-cosine
#    embedding? Predict it, then check on the $4 \times 4$ table.
# 3. A model trained on 28 x 28 digits is given 49 x 49 images, a $7 \times 7$ grid of
#    patches. The learned table has only $N + 1 = 17$ rows. What about the sine-cosine
#    table: does the $4 \times 4$ table reappear inside the $7 \times 7$ one?
# 4. The figure above never drops very low. How many of the $D/4 = 16$ frequencies of
#    one axis turn by less than 0.1 radian (under 6 degrees) from one side of the
#    $4 \times 4$ grid to the other? Count them from the formula and from the table.

# %% [markdown]
# **Solution 1.** $N = (28 / 4)^2 = 49$ patches, so the table has $(49 + 1) \cdot 128
# = 6{,}400$ parameters.

# %%
fashion = preset("fashion-mnist/vit")
fashion_rows = (fashion.image_size // fashion.patch_size) ** 2 + 1
assert ViT(fashion).pos_embed.numel() == fashion_rows * fashion.embed_dim == 6_400
print(f"Fashion-MNIST model: {fashion_rows} x {fashion.embed_dim} = {fashion_rows * fashion.embed_dim:,} "
      f"position parameters")

# %% [markdown]
# **Solution 2.** A direct neighbour, one step along a row or a column. The similarity
# depends only on the offset $(\Delta r, \Delta c)$, as a sum of $\cos(\omega_j \Delta r)$
# and $\cos(\omega_j \Delta c)$ over the frequencies, and every one of these cosines is
# largest for the smallest non-zero step, since even the fastest frequency turns by
# only one radian per step.

# %%
cosine = (ours @ ours.T) / (D / 2)  # every row has length sqrt(D/2): (N, N) cosine similarities
cosine.fill_diagonal_(-math.inf)  # leave each position's similarity with itself out
nearest = cosine.argmax(dim=1)
for n in range(N):
    (r, c), (r2, c2) = divmod(n, G), divmod(int(nearest[n]), G)
    assert abs(r - r2) + abs(c - c2) == 1, (n, int(nearest[n]))
print(f"for all {N} positions the most similar other position is a direct neighbour: OK")

# %% [markdown]
# **Solution 3.** Yes. A row of the sine-cosine table depends only on the row and
# column of its patch, not on the size of the grid, so the $7 \times 7$ table holds the
# $4 \times 4$ one in its top-left corner, and the positions a model was trained on
# keep their embeddings. A learned table has no rows for the new positions at all;
# the usual fix is to interpolate it as an image.

# %%
small = sincos_2d(4, D)[1:].reshape(4, 4, D)  # (N, D) -> (row, column, D)
large = sincos_2d(7, D)[1:].reshape(7, 7, D)
torch.testing.assert_close(large[:4, :4], small, rtol=0, atol=0)
print("the 4 x 4 sine-cosine table is the top-left corner of the 7 x 7 one: OK")

# %% [markdown]
# **Solution 4.** Frequency $j$ turns by $\omega_j (G - 1) = 3 \cdot 10000^{-j/16}$
# radians across the grid. In the table, the channel $\sin(\omega_j r)$ of a slow
# frequency spans $\sin(3 \omega_j) \approx 3 \omega_j$ over the grid; the fast ones
# span far more than 0.1. Both counts agree: most of the frequencies hardly turn, and
# in their channels every position looks alike, which keeps all similarities high.

# %%
q = D // 4
slow_by_formula = sum(3 * 10000 ** (-j / q) < 0.1 for j in range(q))
row_sines = ours[:, :q]  # sin(omega_j * r) for the q frequencies: (N, q)
span = row_sines.max(dim=0).values - row_sines.min(dim=0).values  # (q,)
slow_in_table = int((span < 0.1).sum())
assert slow_by_formula == slow_in_table
print(f"{slow_in_table} of {q} frequencies turn by less than 0.1 radian across the {G} x {G} grid")

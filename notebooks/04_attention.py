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
# # 4. Multi-head self-attention
#
# Attention is the one place in the Vision Transformer where tokens exchange
# information. Every token asks a question (its query), every token offers a
# description of itself (its key) and something to pass on (its value). A token's
# output is the average of all values, weighted by how well its query matches each
# key. Multi-head attention runs several of these side by side on slices of the
# token, so that different heads can look for different things.
#
# In this notebook we compute queries, keys and values by hand for the patches of one
# digit, form the attention weights step by step and draw them as a heat map. Then we
# show that multi-head attention is nothing but a reshape, and prove our version
# equal to PyTorch's `scaled_dot_product_attention`, to `nn.MultiheadAttention`, and
# to the package's `Attention`, on both of its paths.

# %%
import math

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from vit_tutorial import Attention, PatchEmbed, default_device, load_dataset, quick_mode, set_seed
from vit_tutorial.book import DATA, IMAGES
from vit_tutorial.config import MNIST_MEAN, MNIST_STD

torch.set_grad_enabled(False)  # no cell here needs gradients
set_seed(0)
device = default_device()
QUICK = quick_mode()  # nothing here trains, so quick and full mode run the same cells

# %%
# NBVAL_IGNORE_OUTPUT
splits = load_dataset("mnist", DATA)

# %% [markdown]
# ## The tokens of one digit
#
# We embed the same eight validation digits as before with a patch embedding and keep the
# first digit for the walk-through. To keep the pictures small we use only its 16
# patch tokens, without the class token and the positions. The weights of the patch embedding and of
# everything else in this notebook are random: the model is untrained, so the
# attention pattern we will see says nothing about digits yet. What matters here is
# how the numbers are computed. Notebook 08 shows the attention of the trained model.
#
# Inside the encoder, attention always sees the tokens after a LayerNorm (notebook 05),
# so we apply one here too. Everything is in float64, like the proofs of the earlier
# notebooks, so that the comparisons at the end are exact up to rounding.

# %%
images, _ = splits.val.examples(8, seed=0)  # (B, C, H, W), values in [0, 1]
images = ((images - MNIST_MEAN[0]) / MNIST_STD[0]).to(device, torch.float64)

D, h = 64, 4
d = D // h
patch_embed = PatchEmbed(image_size=28, patch_size=7, in_channels=1, embed_dim=D).to(device, torch.float64)
norm = nn.LayerNorm(D, eps=1e-6).to(device, torch.float64)
tokens = norm(patch_embed(images))  # (B, C, H, W) -> (B, N, D)
x = tokens[:1]  # the first digit: (1, N, D)

B, N, _ = x.shape
assert (B, N, D, h, d) == (1, 16, 64, 4, 16)

# %% [markdown]
# ## Queries, keys and values
#
# Three linear layers map every token to a query, a key and a value, each of width
# $D$. Like the patch embedding, they are shared by all tokens.
#
# $$Q = x W_Q + b_Q, \qquad K = x W_K + b_K, \qquad V = x W_V + b_V.$$

# %%
q_proj, k_proj, v_proj = (nn.Linear(D, D).to(device, torch.float64) for _ in range(3))
Q, K, V = q_proj(x), k_proj(x), v_proj(x)  # each (B, N, D) -> (B, N, D)
assert Q.shape == K.shape == V.shape == (B, N, D)

# %% [markdown]
# ## Splitting into heads is a reshape
#
# With $h = 4$ heads, head $i$ works on channels $i d$ to $(i+1) d - 1$ of the queries,
# keys and values, with $d = D / h = 16$. Nothing is computed to split them: a reshape
# cuts the last axis into $(h, d)$, and a transpose moves the head axis in front of
# the token axis so that each head's $(N, d)$ matrix is one slice. The einops pattern
# says the same in one line.

# %%
def split_heads(t: torch.Tensor, h: int) -> torch.Tensor:
    """(B, N, D) -> (B, h, N, d)."""
    B, N, D = t.shape
    return t.reshape(B, N, h, D // h).transpose(1, 2)  # (B, N, D) -> (B, N, h, d) -> (B, h, N, d)


Qh, Kh, Vh = split_heads(Q, h), split_heads(K, h), split_heads(V, h)
assert Qh.shape == (B, h, N, d)
torch.testing.assert_close(Qh, rearrange(Q, "b n (h d) -> b h n d", h=h), rtol=0, atol=0)
torch.testing.assert_close(Qh[:, 2], Q[:, :, 2 * d:3 * d], rtol=0, atol=0)  # head 2 is a slice of channels
print("split into heads: reshape + transpose == einops == slicing the channels: OK")

# %% [markdown]
# ## Scores: how well each query matches each key
#
# For every head, the score of query $i$ against key $j$ is their dot product,
# divided by $\sqrt{d}$:
#
# $$S = \frac{Q K^\top}{\sqrt{d}} \in \mathbb{R}^{N \times N}.$$
#
# Why divide? If the entries of a query and a key are roughly independent with
# variance 1, their dot product is a sum of $d$ such products and has variance $d$.
# Large scores would push the softmax below to put almost all weight on one key and
# leave almost no gradient for the others. Dividing by $\sqrt{d}$ brings the variance
# back to about 1, whatever the head width. A quick look with random vectors:

# %%
a, b = torch.randn(2, 10_000, d, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
raw = (a * b).sum(-1)  # 10,000 dot products of width d
print(f"variance of q.k: {raw.var():.1f} (d = {d}); after dividing by sqrt(d): {(raw / math.sqrt(d)).var():.2f}")

# %%
scores = Qh @ Kh.transpose(-2, -1) / math.sqrt(d)  # (B, h, N, d) @ (B, h, d, N) -> (B, h, N, N)
assert scores.shape == (B, h, N, N)

# %% [markdown]
# ## Softmax: from scores to weights
#
# A softmax along each row turns query $i$'s scores into weights that are positive
# and sum to 1 over the keys:
#
# $$A_{ij} = \frac{\exp S_{ij}}{\sum_k \exp S_{ik}}.$$

# %%
weights = scores.softmax(dim=-1)  # normalise over the keys: the last axis
assert weights.shape == (B, h, N, N)
assert (weights > 0).all()
torch.testing.assert_close(weights.sum(dim=-1), torch.ones(B, h, N, dtype=weights.dtype, device=device))
print("attention weights are positive and every row sums to 1: OK")

# %% [markdown]
# ## The weighted sum
#
# Each query's output is the sum of all value vectors, each weighted by that query's
# weight for it: $O = A V$. In the matrix form this is one product per head. Written
# out with loops for head 0, it reads exactly like the sentence before it.

# %%
out_heads = weights @ Vh  # (B, h, N, N) @ (B, h, N, d) -> (B, h, N, d)
assert out_heads.shape == (B, h, N, d)

by_loops = torch.zeros(N, d, dtype=torch.float64, device=device)
for i in range(N):  # query
    for j in range(N):  # key
        by_loops[i] += weights[0, 0, i, j] * Vh[0, 0, j]
torch.testing.assert_close(out_heads[0, 0], by_loops)
print("A @ V == the sum over keys, written as loops (head 0): OK")

# %% [markdown]
# ## What one head looks at
#
# Here are head 0's weights for the digit: one row per query patch, one column per key
# patch. With random weights the pattern is noise around the uniform value
# $1/N = 0.0625$. One thing can be read off anyway: patches that are completely blank
# (usually the corners) have identical tokens, hence identical queries and keys, so
# their rows are identical and so are their columns.

# %%
digit = images[0, 0] * MNIST_STD[0] + MNIST_MEAN[0]  # undo the normalisation for display
head0 = weights[0, 0].cpu().float()

fig, (ax_img, ax_map) = plt.subplots(1, 2, figsize=(10, 4.4), width_ratios=[1, 1.25], layout="constrained")
ax_img.imshow(digit.cpu(), cmap="gray", vmin=0, vmax=1)
for k in range(1, 4):
    ax_img.axhline(7 * k - 0.5, color="tab:red", lw=1)
    ax_img.axvline(7 * k - 0.5, color="tab:red", lw=1)
for n in range(N):
    r, c = divmod(n, 4)
    ax_img.text(7 * c + 1, 7 * r + 1, str(n), color="yellow", fontsize=9, va="top",
                bbox=dict(facecolor="black", alpha=0.6, pad=1, linewidth=0))
ax_img.set(title="the digit, patches numbered", xlabel="pixel column", ylabel="pixel row")

im = ax_map.imshow(head0, cmap="viridis")
ax_map.set_xticks(range(N))
ax_map.set_yticks(range(N))
ax_map.set(xlabel="key patch", ylabel="query patch", title="head 0 of 4: attention weights (random weights)")
fig.colorbar(im, ax=ax_map, label="attention weight")
fig.savefig(IMAGES / "attention_head.png", dpi=120, bbox_inches="tight")
plt.show()
plt.close(fig)

# %% [markdown]
# ## Merging the heads and the output projection
#
# The heads' outputs are put back side by side, undoing the split: $(B, h, N, d)$ to
# $(B, N, h, d)$ to $(B, N, D)$. A last linear layer, the output projection $W_O$,
# mixes the heads' channels:
#
# $$\mathrm{MSA}(x) = [\,\mathrm{head}_1; \dots; \mathrm{head}_h\,]\, W_O + b_O.$$

# %%
out_proj = nn.Linear(D, D).to(device, torch.float64)
merged = out_heads.transpose(1, 2).reshape(B, N, D)  # (B, h, N, d) -> (B, N, h, d) -> (B, N, D)
torch.testing.assert_close(merged, rearrange(out_heads, "b h n d -> b n (h d)"), rtol=0, atol=0)
out = out_proj(merged)  # (B, N, D) -> (B, N, D)
assert out.shape == (B, N, D)

# %% [markdown]
# ## All of it in one function
#
# Collecting the steps gives multi-head self-attention for a whole batch. We check it
# on the digit against the step-by-step result above, and use it on all eight digits
# from here on.

# %%
def self_attention(x: torch.Tensor, q_proj, k_proj, v_proj, out_proj, h: int):
    """Multi-head self-attention by hand: (B, N, D) -> output (B, N, D) and weights (B, h, N, N)."""
    B, N, D = x.shape
    q = rearrange(q_proj(x), "b n (h d) -> b h n d", h=h)
    k = rearrange(k_proj(x), "b n (h d) -> b h n d", h=h)
    v = rearrange(v_proj(x), "b n (h d) -> b h n d", h=h)
    weights = (q @ k.transpose(-2, -1) / math.sqrt(D // h)).softmax(dim=-1)  # (B, h, N, N)
    heads = weights @ v  # (B, h, N, d)
    return out_proj(rearrange(heads, "b h n d -> b n (h d)")), weights


one_out, one_weights = self_attention(x, q_proj, k_proj, v_proj, out_proj, h)
torch.testing.assert_close(one_out, out)
torch.testing.assert_close(one_weights, weights)

ours, ours_weights = self_attention(tokens, q_proj, k_proj, v_proj, out_proj, h)
assert ours.shape == (8, N, D) and ours_weights.shape == (8, h, N, N)
print("self_attention(...) == the steps above: OK")

# %% [markdown]
# ## Multi-head is h small attentions side by side
#
# The reshapes hide a simple fact: each head is an ordinary single-head attention on
# its own $d$ channels of $Q$, $K$ and $V$, and the heads never see each other's
# channels until the output projection. Computing them one at a time on slices and
# concatenating gives the same result.

# %%
Qb, Kb, Vb = q_proj(tokens), k_proj(tokens), v_proj(tokens)  # (B, N, D)
heads = []
for i in range(h):
    part = slice(i * d, (i + 1) * d)  # head i's channels
    w = (Qb[..., part] @ Kb[..., part].transpose(-2, -1) / math.sqrt(d)).softmax(dim=-1)  # (B, N, N)
    heads.append(w @ Vb[..., part])  # (B, N, d)
one_by_one = out_proj(torch.cat(heads, dim=-1))  # h times (B, N, d) -> (B, N, D) -> (B, N, D)
torch.testing.assert_close(one_by_one, ours)
print("h single-head attentions on slices, concatenated == multi-head by reshape: OK")

# %% [markdown]
# ## Proof 1: PyTorch's scaled_dot_product_attention
#
# `F.scaled_dot_product_attention` computes $\mathrm{softmax}(Q K^\top / \sqrt{d})\, V$
# for tensors already split into heads, $(B, h, N, d)$, in one call; on a GPU it can
# use fused kernels that never store the $N \times N$ weights. It must agree with our
# weighted sum before the heads are merged.

# %%
q, k, v = (rearrange(f(tokens), "b n (h d) -> b h n d", h=h) for f in (q_proj, k_proj, v_proj))
fused = F.scaled_dot_product_attention(q, k, v)  # (B, h, N, d)
torch.testing.assert_close(fused, ours_weights @ v)
print("our attention == F.scaled_dot_product_attention: OK")

# %% [markdown]
# ## Proof 2: nn.MultiheadAttention
#
# PyTorch's module keeps the three input projections in one matrix, `in_proj_weight`,
# with the rows of $W_Q$, then $W_K$, then $W_V$ stacked, and their biases likewise in
# `in_proj_bias`; the output projection is `out_proj`. We copy our weights in and ask
# for the weights of every head, not their average.

# %%
mha = nn.MultiheadAttention(D, h, batch_first=True).to(device, torch.float64).eval()
mha.in_proj_weight.copy_(torch.cat([q_proj.weight, k_proj.weight, v_proj.weight]))  # (3D, D)
mha.in_proj_bias.copy_(torch.cat([q_proj.bias, k_proj.bias, v_proj.bias]))  # (3D,)
mha.out_proj.load_state_dict(out_proj.state_dict())

theirs, theirs_weights = mha(tokens, tokens, tokens, need_weights=True, average_attn_weights=False)
torch.testing.assert_close(theirs, ours)
torch.testing.assert_close(theirs_weights, ours_weights)
print("our attention == nn.MultiheadAttention (output and every head's weights): OK")

# %% [markdown]
# ## Proof 3: the package's Attention
#
# The package's `Attention` uses the same layout as `nn.MultiheadAttention`: one
# linear layer `qkv` of width $3D$ whose rows are $[\,W_Q \,|\, W_K \,|\, W_V\,]$, and
# an output projection `proj`. So the weights copy straight across. It has two paths
# that must agree: the explicit math, taken when the caller asks for the weights
# (`return_attention=True`), and the fused `scaled_dot_product_attention` otherwise.
# Left to itself, the module takes the fused path on a GPU and the explicit one on
# the CPU, where for heads as small as ours the fused kernel measured no faster in
# float32 and four to five times slower in bfloat16 (`benchmarks/results/`). Setting
# `fused = True` forces the fused path, which is what we test here.

# %%
attn = Attention(D, h).to(device, torch.float64).eval()
attn.qkv.weight.copy_(mha.in_proj_weight)
attn.qkv.bias.copy_(mha.in_proj_bias)
attn.proj.load_state_dict(mha.out_proj.state_dict())

explicit, explicit_weights = attn(tokens, return_attention=True)
torch.testing.assert_close(explicit, ours)
torch.testing.assert_close(explicit_weights, ours_weights)

attn.fused = True
torch.testing.assert_close(attn(tokens), ours)
print("our attention == vit_tutorial.Attention, explicit path (with weights) and fused path: OK")

# %% [markdown]
# From here on the book uses the package's `Attention`.
#
# ## What comes next
#
# Attention mixes the tokens, but it is only half of an encoder block. Notebook
# `05_encoder` adds the LayerNorms, the residual connections and the MLP, proves the
# block equal to PyTorch's `nn.TransformerEncoderLayer`, and stacks blocks into the
# whole Vision Transformer.

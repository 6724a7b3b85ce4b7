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
# # 4. Multi-head self-attention
#
# Attention is the one place in the Vision Transformer where tokens exchange
# information. Every token asks a question (its query), every token offers a
# description of itself (its key) and something to pass on (its value). A token's
# output is the average of all values, weighted by how well its query matches each
# key. Multi-head attention runs several of these side by side. Every head reads the
# whole token, through projections of its own, and makes from it a query, a key and a
# value of a smaller width; so different heads can look for different things.
#
# We start with a toy example of four tokens whose queries and keys we set by hand, so
# that the weights mean something we can predict. Then we compute queries, keys and
# values for the patches of one digit, form the attention weights step by step and
# draw them as a heat map. Then we show that multi-head attention is nothing but a
# reshape, and prove our version
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

# %% [markdown]
# ## A toy example: four tokens, set by hand
#
# Take four tokens, and give each a query, a key and a value of width $d = 4$. We
# choose the keys to be the four unit vectors, $k_j = e_j$, so that the dot product of
# a query with key $j$ is simply the query's entry $j$; then the queries say directly
# which keys they look for:
#
# - token 0's query points strongly at key 1;
# - token 1's query is zero: it prefers no key;
# - token 2's query points equally at keys 0 and 3;
# - token 3's query points weakly at key 3.
#
# The values are single numbers, 0, 10, 20 and 30, so that we can follow where each
# output comes from.

# %%
d_toy = 4
K_toy = torch.eye(d_toy, dtype=torch.float64)  # key j is the unit vector e_j: (4 tokens, d)
Q_toy = torch.tensor([[0.0, 8.0, 0.0, 0.0],  # token 0: looks for key 1
                      [0.0, 0.0, 0.0, 0.0],  # token 1: looks for nothing
                      [6.0, 0.0, 0.0, 6.0],  # token 2: looks for keys 0 and 3
                      [0.0, 0.0, 0.0, 2.0]], dtype=torch.float64)  # token 3: leans towards key 3
V_toy = torch.tensor([[0.0], [10.0], [20.0], [30.0]], dtype=torch.float64)  # (4 tokens, 1)

# %% [markdown]
# **Step 1, scores.** The score of query $i$ against key $j$ is their dot product,
# divided by $\sqrt{d}$ (we come back to why below). With our keys, row $i$ of the
# scores is query $i$ divided by $\sqrt{4} = 2$.

# %%
scores_toy = Q_toy @ K_toy.T / math.sqrt(d_toy)  # (4, d) @ (d, 4) -> (4 queries, 4 keys)
torch.testing.assert_close(scores_toy, Q_toy / 2)
print(scores_toy.numpy())

# %% [markdown]
# **Step 2, softmax.** Scores can be any real numbers; weights should be positive and
# sum to 1, so that the output is an average. The softmax does that for each query's
# row of scores $s_1, \dots, s_N$:
#
# $$\mathrm{softmax}(s)_j = \frac{\exp s_j}{\sum_k \exp s_k}.$$
#
# The exponential makes every weight positive and stretches differences: a score
# larger by 1 gets $e \approx 2.7$ times the weight. Adding the same number to all
# scores of a row changes nothing, since it multiplies the numerator and the
# denominator alike; implementations subtract the row's largest score first, so that
# `exp` never overflows. We write it out and compare with PyTorch's.

# %%
def softmax_by_hand(s: torch.Tensor) -> torch.Tensor:
    """Softmax over the last axis: exp, then divide by the row's sum."""
    e = torch.exp(s - s.max(dim=-1, keepdim=True).values)  # the same weights, no overflow
    return e / e.sum(dim=-1, keepdim=True)


weights_toy = softmax_by_hand(scores_toy)
torch.testing.assert_close(weights_toy, scores_toy.softmax(dim=-1))
print(weights_toy.numpy().round(3))

# %% [markdown]
# The weights say what we built into the queries. Token 0 puts
# $e^4 / (e^4 + 3) \approx 0.95$ of its weight on token 1. Token 1, with no preference,
# spreads its weight evenly, $1/4$ on each. Token 2 splits almost all of it between
# tokens 0 and 3. Token 3 leans only mildly towards itself, because its score for
# key 3 is only 1 above the others: it puts $e / (e + 3) \approx 0.48$ there.

# %%
torch.testing.assert_close(weights_toy[0, 1], torch.tensor(math.exp(4) / (math.exp(4) + 3), dtype=torch.float64))
assert weights_toy[0, 1] > 0.9
torch.testing.assert_close(weights_toy[1], torch.full((4,), 0.25, dtype=torch.float64))
assert weights_toy[2, 0] == weights_toy[2, 3] and weights_toy[2, 0] + weights_toy[2, 3] > 0.9
torch.testing.assert_close(weights_toy[3, 3], torch.tensor(math.e / (math.e + 3), dtype=torch.float64))
torch.testing.assert_close(weights_toy.sum(dim=-1), torch.ones(4, dtype=torch.float64))

# %% [markdown]
# **Step 3, the weighted sum.** Each token's output is the average of the values under
# its weights, $O = A V$. Token 0 gets nearly token 1's value, 10, and token 1 the plain
# mean, 15. Token 2 gets 15 as well, for another reason: it averages the values of
# tokens 0 and 3, 0 and 30, and splits the little weight left evenly between 10 and 20.
# Token 3's output is pulled from 15 towards 30.

# %%
out_toy = weights_toy @ V_toy  # (4 queries, 4 keys) @ (4 keys, 1) -> (4, 1)
print(out_toy.squeeze(1).numpy().round(2))
assert abs(out_toy[0, 0] - 10) < 1
torch.testing.assert_close(out_toy[1, 0], V_toy.mean())
torch.testing.assert_close(out_toy[2, 0], V_toy.mean())
assert 15 < out_toy[3, 0] < 30

# %% [markdown]
# That is all of attention. In a real model nobody sets the queries and keys by hand:
# three learned linear layers make them from the tokens, and training decides what
# each token looks for.

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
# $D$. Each of them reads all $D$ numbers of the token. Like the patch embedding, they
# are shared by all tokens.
#
# $$Q = x W_Q + b_Q, \qquad K = x W_K + b_K, \qquad V = x W_V + b_V.$$
#
# Here $x$ is a row of $D$ numbers and $W_Q$ is $D \times D$, so $x W_Q$ reads
# "row times matrix", as in the paper. `nn.Linear` stores its weight the other
# way round, as (out, in), and computes $x W^\top + b$: its `weight` is our
# $W_Q^\top$.

# %%
q_proj, k_proj, v_proj = (nn.Linear(D, D).to(device, torch.float64) for _ in range(3))
Q, K, V = q_proj(x), k_proj(x), v_proj(x)  # each (B, N, D) -> (B, N, D)
assert Q.shape == K.shape == V.shape == (B, N, D)

# %% [markdown]
# ## Splitting into heads is a reshape
#
# With $h = 4$ heads, head $i$ works on channels $i d$ to $(i+1) d - 1$ of the queries,
# keys and values, with $d = D / h = 16$. These are slices of $Q$, $K$ and $V$, not of the
# token: each channel of $Q$ is computed from all $D$ numbers of the token, so head $i$'s
# queries are the token times its own $D \times d$ block of $W_Q$, and likewise for
# keys and values. Nothing is computed to split them: a reshape
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
# Head 2's queries are the token times rows $2d$ to $3d - 1$ of `q_proj.weight`, a
# $d \times D$ block: every head reads the whole token. Changing one number of the
# token that lies outside channels $2d$ to $3d - 1$ still changes head 2's queries.

# %%
W_Q2, b_Q2 = q_proj.weight[2 * d:3 * d], q_proj.bias[2 * d:3 * d]  # head 2's block: (d, D) and (d,)
assert W_Q2.shape == (d, D)
torch.testing.assert_close(Qh[:, 2], x @ W_Q2.T + b_Q2)  # (B, N, D) @ (D, d) -> (B, N, d)
x_changed = x.clone()
x_changed[..., 0] += 1.0  # channel 0 of every token, far from head 2's channels 32 to 47
assert not torch.allclose(split_heads(q_proj(x_changed), h)[:, 2], Qh[:, 2])
print("head 2's queries come from all D channels of the token: OK")

# %% [markdown]
# ## Scores: how well each query matches each key
#
# For every head, the score of query $i$ against key $j$ is their dot product,
# divided by $\sqrt{d}$:
#
# $$S = \frac{Q K^\top}{\sqrt{d}} \in \mathbb{R}^{N \times N}.$$
#
# Why divide? Assume that the $d$ components of a query and of a key have mean zero
# and variance 1, and are all independent of each other. Then each product
# $q_m k_m$ has mean zero and variance 1, and their sum, the dot product, has mean zero
# and variance $d$: its typical size grows like $\sqrt{d}$. Large scores would push the
# softmax of the toy example to put almost all weight on one key and leave almost no
# gradient for the others. Dividing by $\sqrt{d}$ brings the variance back to 1,
# whatever the head width. In a real model nothing guarantees the assumption: how
# large the queries and keys are depends on the learned weights. What the division
# removes is the growth with $d$, so that wide and narrow heads start out alike. A
# quick look with random vectors that do meet the assumption:

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
# As in the toy example, a softmax along each row turns query $i$'s scores into weights
# that are positive and sum to 1 over the keys:
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
# its own $d$ channels of $Q$, $K$ and $V$ (each computed from the whole token), and
# the heads never see each other's channels until the output projection. Computing
# them one at a time on slices of $Q$, $K$ and $V$ and concatenating gives the same
# result.

# %%
Qb, Kb, Vb = q_proj(tokens), k_proj(tokens), v_proj(tokens)  # (B, N, D)
heads = []
for i in range(h):
    part = slice(i * d, (i + 1) * d)  # head i's channels
    w = (Qb[..., part] @ Kb[..., part].transpose(-2, -1) / math.sqrt(d)).softmax(dim=-1)  # (B, N, N)
    heads.append(w @ Vb[..., part])  # (B, N, d)
one_by_one = out_proj(torch.cat(heads, dim=-1))  # h times (B, N, d) -> (B, N, D) -> (B, N, D)
torch.testing.assert_close(one_by_one, ours)
print("h single-head attentions on slices of Q, K, V, concatenated == multi-head by reshape: OK")

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
# float32 and four to five times slower in bfloat16 (`benchmarks/throughput.py --ablation`). Setting
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

# %% [markdown]
# ## Exercises
#
# 1. Remove the division by $\sqrt{d}$. With queries and keys whose components have
#    mean zero and variance 1, how spread out are the softmax weights of a query over
#    $N = 16$ keys at $d = 64$, with and without the division? Measure the spread by
#    the entropy $-\sum_j A_{ij} \ln A_{ij}$, which is $\ln 16 \approx 2.77$ for uniform
#    weights and 0 when all weight is on one key.
# 2. In the toy example, how large must entry 1 of token 0's query be for token 0 to
#    put 99 % of its weight on token 1? Work it out, then check.
# 3. How many parameters does multi-head attention with $D = 64$ hold, and how does the
#    number depend on the number of heads $h$?
# 4. Show that the bias $b_K$ of the key projection has no effect at all on the output
#    of attention, while the bias $b_Q$ of the query projection does.

# %% [markdown]
# **Solution 1.** Without the division the scores have standard deviation
# $\sqrt{64} = 8$, and the softmax puts nearly all weight on the key with the largest
# score: the entropy is far below the uniform $\ln 16$. With the division the scores
# have standard deviation 1 and the weights stay spread out. At $d = 4$ the difference
# is much smaller, since there $\sqrt{d}$ is only 2.

# %%
def mean_entropy(d: int, scaled: bool, queries: int = 2_000, keys: int = 16) -> float:
    """Mean entropy of softmax(q.k [/ sqrt(d)]) over `keys` keys, q and k with independent N(0, 1) components."""
    g = torch.Generator().manual_seed(d)
    q = torch.randn(queries, 1, d, generator=g, dtype=torch.float64)
    k = torch.randn(queries, keys, d, generator=g, dtype=torch.float64)  # fresh keys for every query
    s = (q * k).sum(-1) / (math.sqrt(d) if scaled else 1.0)  # (queries, keys)
    a = s.softmax(dim=-1)
    return float(-(a * a.clamp_min(1e-300).log()).sum(-1).mean())


print(f"uniform weights over 16 keys: entropy {math.log(16):.2f}")
for d_try in (4, 64):
    with_division, without = mean_entropy(d_try, True), mean_entropy(d_try, False)
    print(f"d = {d_try:>2}: entropy {with_division:.2f} with the division by sqrt(d), {without:.2f} without")
assert mean_entropy(64, True) > 0.75 * math.log(16)  # spread out
assert mean_entropy(64, False) < 0.25 * math.log(16)  # nearly all weight on one key
assert mean_entropy(64, True) - mean_entropy(64, False) > mean_entropy(4, True) - mean_entropy(4, False)

# %% [markdown]
# **Solution 2.** With query entry $x$ the score for key 1 is $x / 2$ and the three
# others are 0, so the weight on token 1 is $e^{x/2} / (e^{x/2} + 3)$. Setting it to 0.99
# gives $e^{x/2} = 3 \cdot 99$, so $x = 2 \ln 297 \approx 11.4$. Already at $x = 8$ the
# weight was 0.95: the exponential makes a query decisive quickly.

# %%
x_99 = 2 * math.log(3 * 99)
q_99 = Q_toy.clone()
q_99[0, 1] = x_99
w_99 = softmax_by_hand(q_99 @ K_toy.T / math.sqrt(d_toy))
torch.testing.assert_close(w_99[0, 1], torch.tensor(0.99, dtype=torch.float64))
print(f"x = 2 ln 297 = {x_99:.2f} gives token 1 a weight of {float(w_99[0, 1]):.3f}")

# %% [markdown]
# **Solution 3.** Four $D \times D$ matrices ($W_Q$, $W_K$, $W_V$, $W_O$) and four biases
# of $D$: $4D^2 + 4D = 16{,}640$ parameters, whatever $h$. Splitting into heads cuts the
# projected $Q$, $K$ and $V$ into slices; it adds and removes no weight, since every
# head's block of $W_Q$ still reads the whole token.

# %%
expected = 4 * D * D + 4 * D
for heads in (1, 2, 4, 8, 16):
    assert sum(p.numel() for p in Attention(D, heads).parameters()) == expected
print(f"Attention(D = {D}, h) holds {expected:,} parameters for h = 1, 2, 4, 8 and 16")

# %% [markdown]
# **Solution 4.** With $k_j + b_K$ in place of $k_j$, query $i$'s score for key $j$
# gains $q_i \cdot b_K / \sqrt{d}$, the same number for every key $j$. The softmax does
# not change when the same number is added to all scores of a row (the toy example),
# so the weights and the output stay as they were. $b_Q$ adds $b_Q \cdot k_j / \sqrt{d}$,
# which differs from key to key, and changes the weights.

# %%
g = torch.Generator().manual_seed(2)
for name, proj in (("key", k_proj), ("query", q_proj)):
    saved = proj.bias.clone()
    proj.bias.add_(torch.randn(D, generator=g, dtype=torch.float64).to(device))
    changed_out, _ = self_attention(tokens, q_proj, k_proj, v_proj, out_proj, h)
    proj.bias.copy_(saved)
    same = torch.allclose(changed_out, ours)
    print(f"a new {name} bias: output unchanged: {same}")
    assert same == (name == "key")

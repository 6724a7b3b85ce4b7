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
# # 2. The class token
#
# The encoder hands back one vector for every token it is given, but a classifier
# needs one vector for the whole image. The Vision Transformer solves this with an
# extra token: a learned vector, the class token, placed in front of the patch
# tokens. It belongs to no patch. After the encoder, the classification head reads
# that token's output and nothing else.
#
# In this notebook we prepend the class token by hand and prove that this is the
# package's first step of equation 1. Then we check three things about it: it is the
# same for every image on the way in, its output depends on every patch on the way
# out, and training reaches it like any other weight.

# %%
import copy

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from vit_tutorial import ViT, default_device, load_dataset, preset, quick_mode, set_seed
from vit_tutorial.book import DATA

set_seed(0)
device = default_device()
QUICK = quick_mode()  # nothing here trains, so quick and full mode run the same cells

# %%
# NBVAL_IGNORE_OUTPUT
splits = load_dataset("mnist", DATA)

# %% [markdown]
# The same eight validation digits as in notebook 01, and the book's MNIST model with fresh,
# untrained weights. The model normalises its input itself (with the mean and
# standard deviation of the MNIST pixels), so it takes images in $[0, 1]$.

# %%
images, labels = splits.val.examples(8, seed=0)  # (B, C, H, W), values in [0, 1]
images, labels = images.to(device), labels.to(device)

model = ViT(preset("mnist/vit")).to(device).eval()
B = images.shape[0]
P, N, D = model.config.patch_size, model.config.num_patches, model.config.embed_dim
assert (B, P, N, D) == (8, 7, 16, 64)

with torch.no_grad():
    patch_tokens = model.patch_embed((images - model.mean) / model.std)  # (B, C, H, W) -> (B, N, D)
assert patch_tokens.shape == (B, N, D)

# %% [markdown]
# ## One more token, in front
#
# The class token is a single parameter of shape $(1, 1, D)$. In this package it
# starts as small random numbers, like the other weights; the paper's code and
# torchvision start it at zeros instead (training moves it away from zero
# either way). To put
# it in front of every image's sequence we `expand` it over the batch, which makes a
# view of the same memory rather than $B$ copies, and concatenate along the token
# axis. The sequence grows from $N = 16$ to $N + 1 = 17$ tokens.

# %%
cls_token = nn.Parameter(torch.empty(1, 1, D, device=device))
nn.init.trunc_normal_(cls_token, std=0.02)

cls = cls_token.expand(B, -1, -1)  # (1, 1, D) -> (B, 1, D), no copy
z0 = torch.cat([cls, patch_tokens], dim=1)  # (B, 1, D) and (B, N, D) -> (B, N+1, D)
assert z0.shape == (B, N + 1, D)

# %% [markdown]
# Token 0 is now the class token and tokens 1 to 16 are the patches in reading
# order. On the way in, token 0 is the same vector for every image: it carries
# nothing about the digit yet.

# %%
torch.testing.assert_close(z0[:, 0], cls_token[0].expand(B, -1), rtol=0, atol=0)
torch.testing.assert_close(z0[:, 1:], patch_tokens, rtol=0, atol=0)
print("token 0 is the class token, the same for every image; tokens 1..N are the patches: OK")

# %% [markdown]
# Why in front? Index 0 is the one place in the sequence that does not move when the
# number of patches changes, so the head finds the class token in the same spot for
# any image size or patch size.
#
# ## Equation 1, first part
#
# The paper writes the input of the encoder as
#
# $$z_0 = [x_\text{class};\, x_p^1 E;\, x_p^2 E;\, \dots;\, x_p^N E] + E_\text{pos},$$
#
# the class token followed by the $N$ embedded patches, plus a table of position
# embeddings $E_\text{pos}$. Positions are the subject of notebook 03; to compare only
# what we built here, we set them to zero in a copy of the model and check our
# sequence against the package's `ViT.embed`. As in notebook 01, the proof runs in
# float64.

# %%
model64 = copy.deepcopy(model).double()
x64 = images.double()
with torch.no_grad():
    model64.pos_embed.zero_()
    ours = torch.cat([model64.cls_token.expand(B, -1, -1),  # (B, 1, D)
                      model64.patch_embed((x64 - model64.mean) / model64.std)], dim=1)  # (B, N, D)
    theirs = model64.embed(x64)  # (B, N+1, D)
assert ours.shape == theirs.shape == (B, N + 1, D)
torch.testing.assert_close(ours, theirs)
print("[class token; patch tokens] == ViT.embed with zero positions: OK")

# %% [markdown]
# ## On the way out, it has gathered from every patch
#
# Inside the encoder, attention (notebook 04) lets every token take in information
# from every other token. The class token enters the same for every image, so
# whatever sets one image's class token apart from another's after the last block
# was collected from the patches, and from all of them, not just from one region.
#
# We can check the "all of them" with a gradient. Take one digit, project the class
# token's final output onto a fixed random direction, and ask how that number changes
# when the pixels of each patch change. A non-zero gradient in every patch means the
# output depends on every patch. This holds already for the untrained model: the
# wiring alone connects the class token to the whole image.

# %%
x = images[:1].clone().requires_grad_(True)  # (1, C, H, W)
cls_out = model.forward_features(x)[0, 0]  # (1, N+1, D) -> (D,), the class token after the encoder
probe = torch.randn(D, generator=torch.Generator().manual_seed(1)).to(device)
(cls_out @ probe).backward()

grad_patches = rearrange(x.grad.abs(), "b c (gh p1) (gw p2) -> b (gh gw) (c p1 p2)", p1=P, p2=P)
per_patch = grad_patches.sum(dim=-1)[0]  # (1, N, C*P*P) -> (N,)
assert per_patch.shape == (N,)
assert (per_patch > 0).all()
print(f"the class token's output depends on all {N} patches: OK")

# %% [markdown]
# ## What the head reads
#
# After the last block a final LayerNorm is applied, and the head, one linear layer,
# turns the class token's vector into 10 logits, one per digit. That is equation 4 of
# the paper, $y = \mathrm{LN}(z_L^0)$, followed by the linear head; the other 16
# output tokens are computed and then left unused. The model's `forward` is exactly
# this.

# %%
with torch.no_grad():
    features = model.forward_features(images)  # (B, N+1, D), after the final LayerNorm
    logits = model.head(features[:, 0])  # (B, D) -> (B, 10)
assert features.shape == (B, N + 1, D) and logits.shape == (B, 10)
torch.testing.assert_close(logits, model(images))
print("ViT.forward == head(class token after the encoder): OK")

# %% [markdown]
# ## Training reaches it
#
# The class token is a parameter, so the loss has a gradient with respect to it and
# the optimiser updates it like any weight. Training shapes the starting vector that
# every image's sequence begins with.

# %%
model.zero_grad()
F.cross_entropy(model(images), labels).backward()
assert model.cls_token.grad.shape == (1, 1, D)
assert model.cls_token.grad.abs().sum() > 0
print(f"the loss has a gradient for the class token ({model.cls_token.numel()} parameters): OK")

# %% [markdown]
# ## Class token or mean pooling
#
# The usual alternative drops the reading of token 0 and averages the $N$ patch
# outputs instead (the package's `pool="mean"`); the paper's appendix reports that
# both work about equally well once the learning rate is tuned for each, and
# notebook `11_other_heads` trains both on MNIST and compares them.
#
# ## What comes next
#
# The encoder now gets $N + 1$ tokens and the head knows where to read. But nothing
# yet tells the model where in the image each patch came from. Notebook
# `03_positional_embeddings` shows that without that information the model cannot
# tell a digit from its patches shuffled, and adds the position embeddings
# $E_\text{pos}$ of equation 1.

# %% [markdown]
# ## Exercises
#
# 1. `expand` puts the class token in front of all $B = 8$ sequences without copying
#    it. How many numbers do the expanded tokens `cls` really occupy, and where is the
#    copy made in the end? Check both on the tensors of this notebook.
# 2. Put the class token last instead of first, in the model whose position embeddings
#    are zero. Does its output after the encoder change?
# 3. With `pool="mean"` the head reads the mean of the $N$ patch outputs. Check that
#    this is what such a model computes. Its class token is still in the sequence:
#    does the loss still reach it?

# %% [markdown]
# **Solution 1.** `cls` is a view of the parameter's $D = 64$ numbers: it starts at
# the same address and its step along the batch axis is 0, so all 8 rows read the
# same memory. The copy is made by `torch.cat`, whose result owns
# $B (N + 1) D$ numbers of its own.

# %%
assert cls.data_ptr() == cls_token.data_ptr() and cls.stride(0) == 0
assert cls.untyped_storage().nbytes() == D * cls.element_size()  # D numbers, not B * D
assert z0.untyped_storage().nbytes() == B * (N + 1) * D * z0.element_size()
assert z0.data_ptr() != cls_token.data_ptr()
print(f"cls: {B} rows over {D} stored numbers; z0: {B * (N + 1) * D:,} numbers of its own")

# %% [markdown]
# **Solution 2.** No. Without position embeddings nothing in the encoder knows where
# a token sits (notebook 03 proves this for the patches): LayerNorm and the MLP act on
# each token alone, and attention weighs all tokens by their content. The class token
# computes the same output at the end of the sequence as at its start. Only the head
# has to know where to read it; index 0 is simply the convention.

# %%
def encode(model: ViT, z: torch.Tensor) -> torch.Tensor:
    """The encoder and the final LayerNorm on a ready sequence: (B, T, D) -> (B, T, D)."""
    for blk in model.blocks:
        z = blk(z)
    return model.norm(z)


with torch.no_grad():
    tokens64 = model64.patch_embed((x64 - model64.mean) / model64.std)  # (B, N, D)
    cls64 = model64.cls_token.expand(B, -1, -1)  # (B, 1, D)
    first = encode(model64, torch.cat([cls64, tokens64], dim=1))[:, 0]  # class token in front
    last = encode(model64, torch.cat([tokens64, cls64], dim=1))[:, -1]  # class token at the end
torch.testing.assert_close(last, first)
print("without positions, the class token's output does not depend on its place: OK")

# %% [markdown]
# **Solution 3.** The head of a mean-pooling model reads the average of tokens 1 to
# $N$ after the final LayerNorm. The class token is still token 0 of the sequence.
# The head never reads it, but the patch tokens attend to it in every block, so the
# loss still has a gradient for it: it has become one more learned input that every
# image shares, without a job of its own.

# %%
mean_model = ViT(preset("mnist/vit", pool="mean")).to(device).eval()
features = mean_model.forward_features(images)  # (B, N+1, D)
logits = mean_model.head(features[:, 1:].mean(dim=1))  # mean over the N patch tokens: (B, D) -> (B, 10)
torch.testing.assert_close(logits, mean_model(images))
F.cross_entropy(logits, labels).backward()
assert mean_model.cls_token.grad.abs().sum() > 0
print("pool='mean': head(mean of the patch outputs), and the class token still gets a gradient: OK")

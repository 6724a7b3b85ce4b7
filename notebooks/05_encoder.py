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
# # 5. The encoder block and the whole model
#
# Attention lets the tokens exchange information. An encoder block wraps it with the
# pieces that make a deep stack of such layers trainable: a LayerNorm before each
# sub-layer, a residual connection around it, and a small MLP that works on every
# token on its own. The Vision Transformer is then just the embeddings of notebooks
# 01 to 03, a stack of these blocks, a final LayerNorm and a linear head.
#
# In this notebook we write the block from the paper's equations 2 and 3 and prove
# it equal to PyTorch's `nn.TransformerEncoderLayer` and to the package's `Block`.
# Then we assemble the whole model from equations 1 to 4, count its parameters part
# by part, and prove that the package's `ViT` computes the same logits as
# torchvision's `VisionTransformer` when the weights are copied across.

# %%
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.vision_transformer import VisionTransformer

from vit_tutorial import (Attention, Block, ViT, default_device, from_torchvision, load_dataset, preset,
                          quick_mode, set_seed)
from vit_tutorial.book import DATA

torch.set_grad_enabled(False)  # no cell here needs gradients
set_seed(0)
device = default_device()
QUICK = quick_mode()  # nothing here trains, so quick and full mode run the same cells

# %%
# NBVAL_IGNORE_OUTPUT
splits = load_dataset("mnist", DATA)

# %% [markdown]
# The same eight validation digits, turned into the encoder's input $z_0$ by the embeddings of
# the book's MNIST model: $N + 1 = 17$ tokens of width $D = 64$ per digit. As in the
# earlier notebooks everything runs in float64, so the proofs compare like with like.

# %%
images, _ = splits.val.examples(8, seed=0)  # (B, C, H, W), values in [0, 1]
images = images.to(device, torch.float64)

model = ViT(preset("mnist/vit")).to(device, torch.float64).eval()
cfg = model.config
D, h, M = cfg.embed_dim, cfg.num_heads, cfg.mlp_dim  # M: hidden width of the MLP
z0 = model.embed(images)  # equation 1: (B, C, H, W) -> (B, N+1, D)
B, T, _ = z0.shape  # T = N + 1 tokens
assert (B, T, D, h, M) == (8, 17, 64, 4, 128)

# %% [markdown]
# ## LayerNorm and GELU, the two new operations
#
# LayerNorm works on each token separately: it subtracts the mean of the token's $D$
# values, divides by their standard deviation, then scales and shifts every channel by
# learned $\gamma$ and $\beta$. Unlike batch normalisation it never looks across the
# batch or across tokens, so a token's result does not depend on its neighbours.
#
# $$\mathrm{LN}(z) = \gamma \odot \frac{z - \mu(z)}{\sqrt{\sigma^2(z) + \varepsilon}} + \beta$$
#
# The MLP's non-linearity is GELU, $\mathrm{GELU}(u) = u\,\Phi(u)$, where $\Phi$ is
# the standard normal distribution function: a smooth cousin of ReLU. Both are short
# enough to check by hand. The layer below gets random $\gamma$ and $\beta$, since the
# default ones (all 1, all 0) would hide a mistake in how they are applied.

# %%
ln = nn.LayerNorm(D, eps=1e-6).to(device, torch.float64)
ln.weight.normal_(1.0, 0.2)
ln.bias.normal_(0.0, 0.2)
mu = z0.mean(dim=-1, keepdim=True)  # (B, T, 1): one mean per token
var = z0.var(dim=-1, correction=0, keepdim=True)  # (B, T, 1)
torch.testing.assert_close(ln.weight * (z0 - mu) / torch.sqrt(var + 1e-6) + ln.bias, ln(z0))

u = torch.linspace(-4, 4, 101, dtype=torch.float64)
torch.testing.assert_close(u * 0.5 * (1 + torch.erf(u / 2**0.5)), F.gelu(u))
print("LayerNorm and GELU by hand == nn.LayerNorm and F.gelu: OK")

# %% [markdown]
# ## The block: equations 2 and 3
#
# $$z'_\ell = \mathrm{MSA}(\mathrm{LN}(z_{\ell-1})) + z_{\ell-1} \qquad (2)$$
#
# $$z_\ell = \mathrm{MLP}(\mathrm{LN}(z'_\ell)) + z'_\ell \qquad (3)$$
#
# Each sub-layer reads a normalised copy of the tokens and adds what it computes back
# onto them. The MLP is two linear layers, $D \to M \to D$ with $M = 128$, and a GELU
# between them; it treats each token on its own. Attention is the package's
# `Attention` from notebook 04.

# %%
class PreNormBlock(nn.Module):
    """One encoder block written from equations 2 and 3. (B, T, D) -> (B, T, D)."""

    def __init__(self, D: int, h: int, M: int, eps: float = 1e-6):
        super().__init__()
        self.ln1 = nn.LayerNorm(D, eps=eps)
        self.msa = Attention(D, h)
        self.ln2 = nn.LayerNorm(D, eps=eps)
        self.fc1 = nn.Linear(D, M)
        self.fc2 = nn.Linear(M, D)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        z = self.msa(self.ln1(z)) + z  # equation 2
        return self.fc2(F.gelu(self.fc1(self.ln2(z)))) + z  # equation 3


ours = PreNormBlock(D, h, M).to(device, torch.float64).eval()
for p in ours.parameters():  # random values everywhere, LayerNorms included, so every copy below is tested
    p.normal_(0.0, 0.2)
z1 = ours(z0)
assert z1.shape == (B, T, D)

# %% [markdown]
# Where the LayerNorm sits matters. The original Transformer normalised after the
# residual sum, $\mathrm{LN}(z + \mathrm{MSA}(z))$: "post-norm". The ViT, like most
# Transformers since, normalises inside the branch, before the sub-layer: "pre-norm".
# Then the path from a block's input to its output is a plain sum, and across the
# whole stack $z_L$ is $z_0$ plus the outputs of all branches. Gradients flow back
# along that sum undisturbed, which makes deep pre-norm stacks easier to train.
#
# One consequence is easy to check: a block whose branches output zero passes its
# input through unchanged.

# %%
silent = PreNormBlock(D, h, M).to(device, torch.float64).eval()
for layer in (silent.msa.proj, silent.fc2):  # the last layer of each branch
    layer.weight.zero_()
    layer.bias.zero_()
torch.testing.assert_close(silent(z0), z0, rtol=0, atol=0)
print("a block with silent branches is the identity: OK")

# %% [markdown]
# ## Proof 1: nn.TransformerEncoderLayer
#
# PyTorch's encoder layer becomes the ViT block with `norm_first=True` (pre-norm),
# `activation="gelu"`, `batch_first=True`, no dropout and the ViT's LayerNorm epsilon.
# Its attention is an `nn.MultiheadAttention`, whose weights copy across as in
# notebook 04; its MLP layers are `linear1` and `linear2`. In evaluation mode without
# gradients PyTorch runs the whole layer as one native operation, its "fast path"
# (several kernels inside, called at once), so the proof covers that path too.

# %%
torch_layer = nn.TransformerEncoderLayer(
    d_model=D, nhead=h, dim_feedforward=M, dropout=0.0, activation="gelu",
    batch_first=True, norm_first=True, layer_norm_eps=1e-6,
).to(device, torch.float64).eval()
torch_layer.norm1.load_state_dict(ours.ln1.state_dict())
torch_layer.self_attn.in_proj_weight.copy_(ours.msa.qkv.weight)  # rows [W_Q | W_K | W_V]
torch_layer.self_attn.in_proj_bias.copy_(ours.msa.qkv.bias)
torch_layer.self_attn.out_proj.load_state_dict(ours.msa.proj.state_dict())
torch_layer.norm2.load_state_dict(ours.ln2.state_dict())
torch_layer.linear1.load_state_dict(ours.fc1.state_dict())
torch_layer.linear2.load_state_dict(ours.fc2.state_dict())

torch.testing.assert_close(torch_layer(z0), z1)
print("equations 2-3 == nn.TransformerEncoderLayer(norm_first=True, activation='gelu'): OK")

# %% [markdown]
# ## Proof 2: the package's Block
#
# The package names the same parts `norm1`, `attn`, `norm2` and `mlp.fc1`, `mlp.fc2`.

# %%
block = Block(D, h, M, eps=1e-6).to(device, torch.float64).eval()
block.norm1.load_state_dict(ours.ln1.state_dict())
block.attn.load_state_dict(ours.msa.state_dict())
block.norm2.load_state_dict(ours.ln2.state_dict())
block.mlp.fc1.load_state_dict(ours.fc1.state_dict())
block.mlp.fc2.load_state_dict(ours.fc2.state_dict())

torch.testing.assert_close(block(z0), z1)
print("equations 2-3 == vit_tutorial.Block: OK")

# %% [markdown]
# ## The whole Vision Transformer: equations 1 to 4
#
# $$z_0 = [x_\text{class};\, x_p^1 E;\, \dots;\, x_p^N E] + E_\text{pos} \qquad (1)$$
#
# $$z'_\ell = \mathrm{MSA}(\mathrm{LN}(z_{\ell-1})) + z_{\ell-1}, \qquad \ell = 1, \dots, L \qquad (2)$$
#
# $$z_\ell = \mathrm{MLP}(\mathrm{LN}(z'_\ell)) + z'_\ell, \qquad \ell = 1, \dots, L \qquad (3)$$
#
# $$y = \mathrm{LN}(z_L^0) \qquad (4)$$
#
# followed by the linear head on $y$. The function below runs the equations line by
# line with the parts of the package's model; the book's MNIST model has $L = 4$
# blocks. It applies the final LayerNorm to the class token alone, as equation 4
# says, while the package normalises all tokens and then picks the class token.
# LayerNorm treats tokens separately, so the two must agree.

# %%
def vit_by_equations(model: ViT, images: torch.Tensor) -> torch.Tensor:
    """Images (B, C, H, W) in [0, 1] -> logits (B, classes), one equation per line."""
    x = (images - model.mean) / model.std
    cls = model.cls_token.expand(x.shape[0], -1, -1)  # (1, 1, D) -> (B, 1, D)
    z = torch.cat([cls, model.patch_embed(x)], dim=1) + model.pos_embed  # (1): (B, N+1, D)
    for blk in model.blocks:
        z = blk.attn(blk.norm1(z)) + z  # (2)
        z = blk.mlp(blk.norm2(z)) + z  # (3)
    y = model.norm(z[:, 0])  # (4): (B, D)
    return model.head(y)  # (B, D) -> (B, classes)


logits = vit_by_equations(model, images)
assert logits.shape == (B, cfg.num_classes)
torch.testing.assert_close(logits, model(images))
print("equations 1-4 + head == vit_tutorial.ViT: OK")

# %% [markdown]
# ## Where the parameters are
#
# The table counts the parameters of the book's MNIST model, `ViT(preset("mnist/vit"))`,
# part by part.

# %%
def count(*parts) -> int:
    return sum(p.numel() for part in parts for p in (part.parameters() if isinstance(part, nn.Module) else [part]))


rows = [("patch embedding", count(model.patch_embed)),
        ("class token", count(model.cls_token)),
        ("position embeddings", count(model.pos_embed))]
rows += [(f"block {i + 1}", count(blk)) for i, blk in enumerate(model.blocks)]
rows += [("final LayerNorm", count(model.norm)), ("head", count(model.head))]
total = sum(n for _, n in rows)
assert total == model.num_parameters() == count(model)

print(f"{'part':<22}{'parameters':>12}{'share':>9}")
for name, n in rows:
    print(f"{name:<22}{n:>12,}{n / total:>9.1%}")
print(f"{'total':<22}{total:>12,}{1:>9.1%}")
in_blocks = count(*model.blocks) / total
print(f"the {len(model.blocks)} blocks together: {in_blocks:.1%}")

# %% [markdown]
# Almost all of it, 96.3 %, is in the four blocks. Inside one block:

# %%
blk = model.blocks[0]
inside = [("LayerNorm 1", count(blk.norm1), "2D"),
          ("attention: qkv", count(blk.attn.qkv), "3D^2 + 3D"),
          ("attention: output projection", count(blk.attn.proj), "D^2 + D"),
          ("LayerNorm 2", count(blk.norm2), "2D"),
          ("MLP: fc1", count(blk.mlp.fc1), "DM + M"),
          ("MLP: fc2", count(blk.mlp.fc2), "MD + D")]
print(f"{'part of a block':<30}{'parameters':>12}   formula")
for name, n, formula in inside:
    print(f"{name:<30}{n:>12,}   {formula}")
per_block = sum(n for _, n, _ in inside)
assert per_block == count(blk) == 4 * D * D + 2 * D * M + 9 * D + M
print(f"{'one block':<30}{per_block:>12,}   4D^2 + 2DM + 9D + M, with D = {D}, M = {M}")

# %% [markdown]
# With $M = 2D$ a block holds $8D^2 + 11D$ parameters, so doubling the width
# roughly quadruples the model, while adding a block adds one more such term.
# The paper's MLP is four times as wide as the tokens ($M = 4D$); the book's is
# twice as wide, which keeps these small models small and trains faster on a
# CPU (the grid search of notebook 12 varies the width, not this ratio). The
# embeddings are cheap: the patch embedding is one $(P^2 C) \times D$ matrix, however
# large the image.
#
# ## Proof 3: torchvision's VisionTransformer
#
# torchvision ships the same architecture. Built with our sizes, its parameter count
# must match ours. It expects three-channel images, so we give it a one-channel patch
# embedding for grey digits.
#
# torchvision initialises its head with zeros and its class token with zeros. A model
# whose head is zero outputs zero logits whatever its other weights, so a comparison
# of logits would pass even if everything before the head were wrong. We therefore
# fill every parameter with random values first. The package's `from_torchvision`
# then copies all weights into a `ViT`; given the MNIST mean and standard deviation,
# the copy takes images in $[0, 1]$ while torchvision's model takes normalised ones.

# %%
tv = VisionTransformer(image_size=28, patch_size=7, num_layers=cfg.depth, num_heads=h,
                       hidden_dim=D, mlp_dim=M, num_classes=cfg.num_classes)
tv.conv_proj = nn.Conv2d(1, D, kernel_size=7, stride=7)  # one input channel instead of three
tv = tv.to(device, torch.float64).eval()
for p in tv.parameters():
    p.normal_(0.0, 0.2)
assert count(tv) == model.num_parameters()

copied = from_torchvision(tv, mean=cfg.mean, std=cfg.std).to(device, torch.float64).eval()
theirs = tv((images - copied.mean) / copied.std)  # (B, classes)
ours_logits = copied(images)  # (B, classes)
assert ours_logits.shape == theirs.shape == (B, cfg.num_classes)
assert theirs.abs().min() > 0  # a real test: no logit is zero
torch.testing.assert_close(ours_logits, theirs)
print(f"vit_tutorial.ViT == torchvision VisionTransformer with copied weights "
      f"({count(tv):,} parameters each): OK")

# %% [markdown]
# Our model, PyTorch's building blocks and torchvision's ViT compute the same
# function. The book's own model is the package's `ViT(preset("mnist/vit"))`: 139,018
# parameters, 16 patches of 7 x 7, four blocks of four heads.
#
# ## What comes next
#
# Every piece is built and proven, but the weights are still random. Notebook
# `06_training_mnist` trains the model on MNIST.

# %% [markdown]
# ## Exercises
#
# 1. Count the parameters of one block of the Fashion-MNIST model
#    (`preset("fashion-mnist/vit")`: $D = 128$, $h = 8$, $M = 256$) by the formula of this
#    notebook, and check against the package's `Block`.
# 2. Predict the parameter count of the whole Fashion-MNIST model, part by part, and
#    check it against `ViT(preset("fashion-mnist/vit"))`.
# 3. Multiply a token by 3 before a LayerNorm with $\gamma = 1$, $\beta = 0$. What
#    changes in its output? What does that mean for a branch that reads
#    $\mathrm{LN}(z_{\ell-1})$ while the residual sum $z_\ell$ grows from block to block?
# 4. Write the post-norm block of the original Transformer,
#    $z' = \mathrm{LN}(z + \mathrm{MSA}(z))$, then $\mathrm{LN}(z' + \mathrm{MLP}(z'))$,
#    with the weights of `ours`, and check it against `nn.TransformerEncoderLayer`
#    with `norm_first=False`. Is a post-norm block with silent branches still the
#    identity?

# %% [markdown]
# **Solution 1.** $4D^2 + 2DM + 9D + M = 4 \cdot 128^2 + 2 \cdot 128 \cdot 256 + 9 \cdot 128
# + 256 = 132{,}480$. The number of heads does not appear: the heads share the same
# four projections.

# %%
fashion = preset("fashion-mnist/vit")
Df, hf, Mf = fashion.embed_dim, fashion.num_heads, fashion.mlp_dim
per_block_f = 4 * Df * Df + 2 * Df * Mf + 9 * Df + Mf
assert (Df, hf, Mf) == (128, 8, 256) and per_block_f == 132_480
assert count(Block(Df, hf, Mf)) == per_block_f
print(f"one Fashion-MNIST block: {per_block_f:,} parameters")

# %% [markdown]
# **Solution 2.** With $P = 4$ there are $N = 49$ patches of $P^2 C = 16$ numbers. The
# patch embedding holds $(16 + 1) \cdot 128$, the class token 128, the position table
# $(49 + 1) \cdot 128$, the six blocks $6 \cdot 132{,}480$, the final LayerNorm
# $2 \cdot 128$ and the head $(128 + 1) \cdot 10$.

# %%
Nf, Pf = fashion.num_patches, fashion.patch_size
parts = {"patch embedding": (Pf * Pf * fashion.in_channels + 1) * Df, "class token": Df,
         "position embeddings": (Nf + 1) * Df, "blocks": fashion.depth * per_block_f,
         "final LayerNorm": 2 * Df, "head": (Df + 1) * fashion.num_classes}
predicted = sum(parts.values())
assert ViT(fashion).num_parameters() == predicted
print(f"Fashion-MNIST model: {predicted:,} parameters, {parts['blocks'] / predicted:.1%} of them in the blocks")

# %% [markdown]
# **Solution 3.** Nothing, apart from the small $\varepsilon$: LayerNorm subtracts the
# mean and divides by the standard deviation, and both scale with the token (adding the
# same number to all channels changes nothing either, since the mean absorbs it). A
# branch sees its input at the same scale however large the residual sum has grown;
# only its output, added to the sum, weighs less and less against it.
#
# The $\varepsilon$ under the square root is the exception, and here it is visible: the
# tokens of the untrained model are small, some with a variance under $10^{-3}$, so
# $10^{-6}$ is not negligible next to it, and scaling such a token by 3 changes its
# normalised values in the third or fourth decimal.

# %%
plain = nn.LayerNorm(D, eps=0.0).to(device, torch.float64)  # gamma = 1, beta = 0, and no epsilon
torch.testing.assert_close(plain(3 * z0), plain(z0))
torch.testing.assert_close(plain(z0 + 5), plain(z0))  # adding one number to all channels: no change either
print("without epsilon: LayerNorm(3 z) == LayerNorm(z + 5) == LayerNorm(z): OK")

with_eps = nn.LayerNorm(D, eps=1e-6).to(device, torch.float64)
gap = float((with_eps(3 * z0) - with_eps(z0)).abs().max())
smallest_var = float(z0.var(dim=-1, correction=0).min())
assert 0 < gap < 0.01
print(f"with epsilon = 1e-6: largest change {gap:.1e}; the smallest variance of a token of z0 is {smallest_var:.1e}")

# %% [markdown]
# **Solution 4.** The post-norm block normalises after each residual sum, so even with
# silent branches its output is $\mathrm{LN}(\mathrm{LN}(z))$: every token comes out
# with mean 0 and standard deviation 1, scaled by $\gamma$ and shifted by $\beta$, not
# as it went in. In a post-norm stack there is no plain path from input to output.

# %%
def post_norm(block: PreNormBlock, z: torch.Tensor) -> torch.Tensor:
    """The original Transformer's order: normalise after each residual sum. (B, T, D) -> (B, T, D)."""
    z = block.ln1(z + block.msa(z))
    return block.ln2(z + block.fc2(F.gelu(block.fc1(z))))


post_layer = nn.TransformerEncoderLayer(
    d_model=D, nhead=h, dim_feedforward=M, dropout=0.0, activation="gelu",
    batch_first=True, norm_first=False, layer_norm_eps=1e-6,
).to(device, torch.float64).eval()
post_layer.load_state_dict(torch_layer.state_dict())  # the same weights as `ours`
torch.testing.assert_close(post_layer(z0), post_norm(ours, z0))
assert not torch.allclose(post_norm(ours, z0), z1)  # post-norm and pre-norm differ
assert not torch.allclose(post_norm(silent, z0), z0)  # silent branches: not the identity
print("post-norm by hand == nn.TransformerEncoderLayer(norm_first=False); "
      "with silent branches it is not the identity: OK")

"""Multi-head self-attention: softmax(Q K^T / sqrt(d)) V, h heads side by side."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .errors import VitTutorialError


class Attention(nn.Module):
    """Multi-head self-attention over a sequence of tokens.

    Two paths give the same numbers: the explicit math, which forms the
    weight matrix and so is used whenever the caller asks for the weights,
    and PyTorch's fused ``scaled_dot_product_attention``, which never forms
    it and is used otherwise on GPUs (see ``use_fused``).

    (B, N, D) -> (B, N, D), and optionally the weights (B, h, N, N).
    """

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True, dropout: float = 0.0, lsa: bool = False):
        super().__init__()
        if dim % num_heads:
            raise VitTutorialError(f"dim {dim} is not a multiple of num_heads {num_heads}")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim**-0.5
        # One matrix for queries, keys and values; its rows are laid out as
        # [q | k | v], each split into h heads of d, as in nn.MultiheadAttention.
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.dropout = dropout
        self.proj_drop = nn.Dropout(dropout)
        # Locality self-attention (LSA; Lee et al., 2021, arXiv 2112.13492, section 3.2): each head
        # learns its own scale in place of the fixed 1/sqrt(d), and no token attends to itself, so
        # the softmax has to put its weight on the other tokens and can grow sharper.
        self.lsa = lsa
        if lsa:
            self.head_scale = nn.Parameter(torch.full((num_heads,), self.scale))
        # None: choose per call (see use_fused); True / False force one path.
        self.fused: bool | None = None

    def use_fused(self, x: torch.Tensor) -> bool:
        """Whether to call the fused kernel for this input: on GPUs, not on the CPU.

        For the small heads of this book (d = 16) PyTorch's fused CPU kernel
        was never faster than the explicit math, and under bfloat16 autocast
        it was several times slower (``benchmarks/throughput.py --ablation``
        measures it).
        """
        if self.fused is not None:
            return self.fused
        return x.device.type != "cpu"

    def forward(self, x: torch.Tensor, return_attention: bool = False):
        B, N, D = x.shape
        h, d = self.num_heads, self.head_dim
        qkv = self.qkv(x).reshape(B, N, 3, h, d).permute(2, 0, 3, 1, 4)  # (B, N, 3D) -> (3, B, h, N, d)
        q, k, v = qkv.unbind(0)
        drop = self.dropout if self.training else 0.0
        if self.lsa:
            q = q * self.head_scale.view(1, h, 1, 1).to(q.dtype)
            others = ~torch.eye(N, dtype=torch.bool, device=x.device)  # True where a token may attend
        if return_attention or not self.use_fused(x):
            attn = (q if self.lsa else q * self.scale) @ k.transpose(-2, -1)  # (B, h, N, N)
            if self.lsa:
                attn = attn.masked_fill(~others, float("-inf"))
            attn = attn.softmax(dim=-1)
            out = F.dropout(attn, drop) @ v  # (B, h, N, d)
        else:
            attn = None
            if self.lsa:
                out = F.scaled_dot_product_attention(q, k, v, attn_mask=others, dropout_p=drop, scale=1.0)
            else:
                out = F.scaled_dot_product_attention(q, k, v, dropout_p=drop)
        out = out.transpose(1, 2).reshape(B, N, D)  # (B, h, N, d) -> (B, N, D)
        out = self.proj_drop(self.proj(out))
        return (out, attn) if return_attention else out


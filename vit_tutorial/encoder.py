"""The pre-norm Transformer encoder block (the paper's equations 2 and 3)."""

from __future__ import annotations

import torch
from torch import nn

from .attention import Attention


class MLP(nn.Module):
    """Linear -> GELU -> Linear, applied to every token on its own. (B, N, D) -> (B, N, D)."""

    def __init__(self, dim: int, hidden_dim: int, dropout: float = 0.0):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_dim, dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


class Block(nn.Module):
    """x + MSA(LN(x)), then x + MLP(LN(x)). (B, N, D) -> (B, N, D)."""

    def __init__(self, dim: int, num_heads: int, mlp_dim: int, qkv_bias: bool = True,
                 dropout: float = 0.0, eps: float = 1e-6, lsa: bool = False):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.attn = Attention(dim, num_heads, qkv_bias=qkv_bias, dropout=dropout, lsa=lsa)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.mlp = MLP(dim, mlp_dim, dropout=dropout)

    def forward(self, x: torch.Tensor, return_attention: bool = False):
        if return_attention:
            y, attn = self.attn(self.norm1(x), return_attention=True)
        else:
            y, attn = self.attn(self.norm1(x)), None
        x = x + y
        x = x + self.mlp(self.norm2(x))
        return (x, attn) if return_attention else x

"""The torch modules behind the standard blocks of `standard.py`.

This file imports torch at module level, so only the blocks' `build` rules import it (lazily):
importing `archc.library` stays torch-free. Every module takes a batched tensor (b, *shape) and
returns (b, *out_shape), and keeps every `__init__` argument under its own name, as torch.nn
does, so export can rebuild it in a standalone model.py. The only FLOPs torch's flop counter
sees here come from `nn.Linear` and `scaled_dot_product_attention`: positions, rotations and
pooling are pointwise.

>>> import torch
>>> Sinusoidal(10000.0)(torch.zeros(1, 3, 2))[0, 1]  # position 1: sin 1, cos 1
tensor([0.8415, 0.5403])
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ACTIVATION_MODULES", "activate", "MoveAxis", "PosEmbedding", "Sinusoidal", "Zero",
           "PoolPositions", "Attention", "Mlp"]

ACTIVATION_MODULES: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}
"""The module class of each pointwise activation, by block name."""


def activate(h: torch.Tensor, act: nn.Module, gated: bool) -> torch.Tensor:
    """`act` on an up projection h (…, hidden), or for a gated (swiglu) one h (…, 2·hidden)
    split into a value and a gate: act(value) ⊙ gate."""
    if gated:
        value, gate = h.chunk(2, dim=-1)
        return act(value) * gate
    return act(h)


class MoveAxis(nn.Module):
    """Apply `inner` with axis `source` moved to `destination`, then move it back: a feature-last
    norm over channels-first data (`MoveAxis(nn.LayerNorm(c), 1, -1)`), or a channels-first
    batchnorm over a (b, t, d) sequence (`MoveAxis(nn.BatchNorm1d(d), -1, 1)`)."""

    def __init__(self, inner: nn.Module, source: int, destination: int) -> None:
        super().__init__()
        self.inner, self.source, self.destination = inner, source, destination

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.inner(x.movedim(self.source, self.destination))
        return y.movedim(self.destination, self.source)


class PosEmbedding(nn.Module):
    """Add a learned vector per position: (b, t, d) + table[:t]; t ≤ max_len."""

    def __init__(self, max_len: int, d: int) -> None:
        super().__init__()
        self.max_len, self.d = max_len, d
        self.table = nn.Parameter(torch.randn(max_len, d) * 0.02)  # BERT/GPT-2 scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (b, t, d)
        return x + self.table[: x.shape[1]]


def _angles(t: int, width: int, base: float, like: torch.Tensor) -> torch.Tensor:
    """(t, ⌈width/2⌉) angles p · base^(-2i/width): position p times frequency i. Broadcast
    products, not a matmul, so the flop counter sees no FLOPs (they are pointwise)."""
    pos = torch.arange(t, device=like.device, dtype=like.dtype)
    freq = base ** (-torch.arange(0, width, 2, device=like.device, dtype=like.dtype) / width)
    return pos[:, None] * freq[None, :]


class Sinusoidal(nn.Module):
    """Add fixed codes: feature 2i is sin(p·ωᵢ), feature 2i+1 is cos(p·ωᵢ), ωᵢ = base^(-2i/d)
    (Vaswani et al. §3.5, interleaved). Computed per call: no state, no length limit."""

    def __init__(self, base: float) -> None:
        super().__init__()
        self.base = base

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (b, t, d)
        t, d = x.shape[1], x.shape[2]
        angles = _angles(t, d, self.base, x)
        codes = torch.stack((angles.sin(), angles.cos()), dim=-1).flatten(-2)[:, :d]
        return x + codes


class Zero(nn.Module):
    """Zeros shaped like the input (NAS-Bench-201's 'none'). `zeros_like`, not `x * 0`: the
    path is cut (no gradient flows back, and an inf or nan input cannot leak through)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(x)


class PoolPositions(nn.Module):
    """Pool every position away, keeping the features: (b, t, d) → (b, d) for a sequence,
    (b, c, …) → (b, c) for channels-first data, (b, d) unchanged. `how` is mean, max, or the
    first or last position (in raster order for images)."""

    def __init__(self, how: str, features_last: bool) -> None:
        super().__init__()
        self.how, self.features_last = how, features_last

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:
            return x  # (b, d): nothing to pool
        x = x.transpose(1, 2) if self.features_last else x.flatten(2)  # (b, c, positions)
        if self.how == "mean":
            return x.mean(-1)
        if self.how == "max":
            return x.amax(-1)
        return x[..., 0] if self.how == "first" else x[..., -1]


def _rotate(x: torch.Tensor, base: float) -> torch.Tensor:
    """Rotary position embedding (Su et al., arXiv 2104.09864) of (b, h, t, dh), the
    rotate-half form: feature i pairs with i + dh/2 and turns by angle p·base^(-2i/dh)."""
    t, dh = x.shape[-2], x.shape[-1]
    angles = _angles(t, dh, base, x)  # (t, dh/2)
    cos, sin = angles.cos().repeat(1, 2), angles.sin().repeat(1, 2)  # (t, dh)
    first, second = x.chunk(2, dim=-1)
    return x * cos + torch.cat((-second, first), dim=-1) * sin


class Attention(nn.Module):
    """Multi-head self-attention: one fused q/k/v projection, optional per-head RMS norm of q and
    k (a learned scale per head feature, shared by the heads), optional rotary positions,
    `scaled_dot_product_attention`, and an output projection."""

    def __init__(self, d: int, heads: int, causal: bool, dropout: float, bias: bool,
                 qk_norm: bool, rope: bool) -> None:
        super().__init__()
        self.d, self.heads, self.causal, self.dropout = d, heads, causal, dropout
        self.bias, self.qk_norm, self.rope = bias, qk_norm, rope
        self.qkv = nn.Linear(d, 3 * d, bias=bias)
        self.q_norm = nn.RMSNorm(d // heads, eps=1e-6) if qk_norm else nn.Identity()
        self.k_norm = nn.RMSNorm(d // heads, eps=1e-6) if qk_norm else nn.Identity()
        self.out = nn.Linear(d, d, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        qkv = self.qkv(x).view(b, t, 3, self.heads, d // self.heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # each (b, h, t, dh)
        q, k = self.q_norm(q), self.k_norm(k)
        if self.rope:
            q, k = _rotate(q, 10000.0), _rotate(k, 10000.0)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=self.causal,
                                           dropout_p=self.dropout if self.training else 0.0)
        return self.out(y.transpose(1, 2).reshape(b, t, d))  # (b, t, d)


class Mlp(nn.Module):
    """Linear up to `hidden`, activation, dropout, linear back. For `swiglu` the up projection
    is doubled and split into a value and a gate: silu(x W₁) ⊙ x W₃ (one matmul, same count)."""

    def __init__(self, d: int, hidden: int, activation: str, dropout: float, bias: bool) -> None:
        super().__init__()
        self.d, self.hidden, self.activation, self.dropout, self.bias = (
            d, hidden, activation, dropout, bias)
        self.gated = activation == "swiglu"
        self.up = nn.Linear(d, 2 * hidden if self.gated else hidden, bias=bias)
        self.act = ACTIVATION_MODULES["silu" if self.gated else activation]()
        self.drop = nn.Dropout(dropout)
        self.down = nn.Linear(hidden, d, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(self.drop(activate(self.up(x), self.act, self.gated)))


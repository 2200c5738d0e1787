"""The torch modules behind the hypercomplex blocks of `phm.py`.

A PHM weight is W = Σᵢ Aᵢ ⊗ Fᵢ: `a` holds the n algebra matrices (n, n, n) and `f` the n
blocks (n, out/n, in/n, *kernel). Both Kronecker layouts put A's indices outside:
W[α·out/n + p, β·in/n + q, …] = Σᵢ a[i, α, β] · f[i, p, q, …]. One `einsum` builds it, in
that (α, p, β, q, …) order, so a reshape (no transposition of the big tensor) makes it the
dense (out, in, …) weight; the layer then runs torch's own matmul or convolution, so its
compute is the dense layer's plus one weight construction per forward (not per example).

In eval mode without autograd (inference) the built weight is kept and reused until a
parameter changes: the key is each parameter's identity and in-place version counter, which
optimizer steps, `load_state_dict` and `.copy_` all bump; `train()` drops it. Under
`torch.compile`/`torch.export` nothing is cached (no Python-side state in a traced program).

Initialisation follows the reference code (research/blocks.md §10.3): Xavier-uniform on the
3-D `a` and on `f` with torch's fan rules for >2-D tensors, bias uniform in ±1/√in.

>>> import torch
>>> layer = PhmLinear(8, 4, n=2, bias=False)
>>> layer(torch.ones(3, 8)).shape, sum(p.numel() for p in layer.parameters())  # 2³ + 4·8/2
(torch.Size([3, 4]), 24)
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["kron_weight", "PhmLinear", "PhmConv"]

_AXES = "uvwxyz"
"""einsum letters for the kernel axes (at most 3-D kernels)."""


def kron_weight(a: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """Σᵢ kron(a[i], f[i]) over the first two axes of f, in one einsum: (n, n, n) and
    (n, o, c, *k) give (n·o, n·c, *k)."""
    n, o, c, *kernel = f.shape
    k = _AXES[:len(kernel)]
    w = torch.einsum(f"iab,ipq{k}->apbq{k}", a, f)  # (n, o, n, c, *k)
    return w.reshape(n * o, n * c, *kernel)


class _Phm(nn.Module):
    """The shared part: parameters a, f (and a bias), the weight with its inference cache."""

    a: nn.Parameter
    f: nn.Parameter

    def _init_phm(self, n: int, out: int, cin: int, kernel: tuple[int, ...], bias: bool) -> None:
        self.a = nn.Parameter(torch.empty(n, n, n))
        self.f = nn.Parameter(torch.empty(n, out // n, cin // n, *kernel))
        self.b = nn.Parameter(torch.empty(out)) if bias else None
        self._cached: tuple[tuple[int, ...], torch.Tensor] | None = None
        nn.init.xavier_uniform_(self.a)
        nn.init.xavier_uniform_(self.f)
        if self.b is not None:
            bound = 1 / math.sqrt(cin)
            nn.init.uniform_(self.b, -bound, bound)

    def weight(self) -> torch.Tensor:
        """The dense weight Σᵢ Aᵢ ⊗ Fᵢ, reused in inference while the parameters are unchanged."""
        reusable = not (self.training or torch.is_grad_enabled()
                        or torch.compiler.is_compiling())
        if not reusable:
            return kron_weight(self.a, self.f)
        key = (id(self.a), self.a._version, id(self.f), self.f._version,
               int(torch.is_inference_mode_enabled()))
        if self._cached is None or self._cached[0] != key:
            self._cached = (key, kron_weight(self.a, self.f))
        return self._cached[1]

    def train(self, mode: bool = True) -> _Phm:
        self._cached = None
        return super().train(mode)


class PhmLinear(_Phm):
    """A PHM dense layer (…, d) → (…, out); n divides d and out."""

    def __init__(self, d: int, out: int, n: int, bias: bool) -> None:
        super().__init__()
        self.d, self.out, self.n, self.bias = d, out, n, bias
        self._init_phm(n, out, d, (), bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight(), self.b)


class PhmConv(_Phm):
    """A PHC convolution over `nd` spatial axes (1 or 2), (b, cin, …) → (b, out, …), padding
    `pads = (before, after)` on each axis (unequal pads are applied explicitly first)."""

    def __init__(self, nd: int, cin: int, out: int, n: int, k: int, stride: int,
                 pads: tuple[int, int], bias: bool) -> None:
        super().__init__()
        self.nd, self.cin, self.out, self.n, self.k = nd, cin, out, n, k
        self.stride, self.pads, self.bias = stride, pads, bias
        self._init_phm(n, out, cin, (k,) * nd, bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        conv = F.conv1d if self.nd == 1 else F.conv2d
        before, after = self.pads
        if before != after:
            x = F.pad(x, (before, after) * self.nd)
            before = 0
        return conv(x, self.weight(), self.b, self.stride, before)

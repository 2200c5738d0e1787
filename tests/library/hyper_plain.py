"""Plain, obviously-correct hyper-connection sites: the references the fast modules are tested
against (tests/library/test_hyper_connections_differential.py) and timed against
(benchmarks/hyper_site.py).

Everything here follows the papers' equations literally, one token and one stream at a time:
Python loops over tokens, streams and matrix entries, the RMSNorm before the projection (not
after it), Sinkhorn-Knopp in the exponential domain with autograd through every iteration, H_res
of mHC-lite as an explicit sum over `itertools.permutations`, KromHC's with `torch.kron`, sHC's
Cayley rotations with an explicit inverse and the Helmert basis filled entry by entry. A
`PlainConnection` shares its parameters with a fast `Connection` (`from_fast`), so outputs and
gradients can be compared directly. Orientation as in the fast modules: H_res[i, j] takes input
stream j to output stream i.
"""

from __future__ import annotations

import itertools
import math

import torch
from torch import Tensor, nn

from archc.library.hyper_connections_modules import RMS_EPS, Collapse, Connection


class PlainConnection(nn.Module):
    """The site of `fast`, computed literally; its parameters ARE `fast`'s parameters."""

    def __init__(self, fast: Connection) -> None:
        super().__init__()
        self.fast = fast  # registers the shared parameters under fast.*

    @classmethod
    def from_fast(cls, fast: Connection) -> PlainConnection:
        return cls(fast)

    def forward(self, h: Tensor, post: Tensor | None = None, y: Tensor | None = None
                ) -> tuple[Tensor, Tensor, Tensor]:  # (..., n, d)
        if post is not None and y is not None:  # handed the previous site's depth connection
            h = plain_depth_connection(h, post, y)
        lead, (n, d) = h.shape[:-2], h.shape[-2:]
        tokens = h.reshape(-1, n, d)
        xs, mixeds, posts = [], [], []
        for token in tokens:  # one token at a time
            pre, res, post = self.matrices(token)
            xs.append(sum(pre[j] * token[j] for j in range(n)))
            mixeds.append(torch.stack([sum(res[i][j] * token[j] for j in range(n))
                                       for i in range(n)]))
            posts.append(torch.stack(post))
        x, mixed = torch.stack(xs).reshape(*lead, d), torch.stack(mixeds).reshape(*lead, n, d)
        post_out = torch.stack(posts).reshape(*lead, n)
        if self.fast.mix == "hc" and not self.fast.dynamic:
            post_out = self.fast.post  # static: the parameter itself, as the fast module returns
        return x, mixed, post_out

    def matrices(self, token: Tensor) -> tuple[list[Tensor], list[list[Tensor]], list[Tensor]]:
        """H_pre (n scalars), H_res (n × n scalars, rows = output), H_post (n scalars)."""
        f, n = self.fast, self.fast.streams
        if f.mix == "hc":
            return self._hc(token)
        flat = torch.cat([token[j] for j in range(n)])  # vec(h), stream-major
        normed = flat / torch.sqrt((flat * flat).mean() + RMS_EPS)
        scale = f.scales[f.group]
        logits = [scale[c] * (normed * f.proj[:, c]).sum() + f.bias[c]
                  for c in range(f.proj.shape[1])]
        post_scale = float(f.post_scale) if f.mix == "mhc" else 2.0
        pre = [torch.sigmoid(logits[j]) for j in range(n)]
        post = [post_scale * torch.sigmoid(logits[n + j]) for j in range(n)]
        coefficients = torch.stack(logits[2 * n:]) if len(logits) > 2 * n else flat[:0]
        if f.mix == "mhc":
            res = _sinkhorn(coefficients, n, int(f.iters))
        else:
            res = {"mhc_lite": _permutation_sum, "kromhc": _kron,
                   "shc": self._spectral}[f.mix](coefficients, n)
        return pre, [[res[i, j] for j in range(n)] for i in range(n)], post

    def _hc(self, token: Tensor) -> tuple[list[Tensor], list[list[Tensor]], list[Tensor]]:
        """HC Eqs. 10-13: stream j adds s·tanh(norm(h_j)·W) to H_pre[j], H_post[j], H_res[:, j]."""
        f, n = self.fast, self.fast.streams
        pre = [f.pre[j] for j in range(n)]
        post = [f.post[j] for j in range(n)]
        res = [[f.res[i, j] for j in range(n)] for i in range(n)]
        if not f.dynamic:
            return pre, res, post
        squash = torch.tanh if f.tanh else (lambda v: v)
        for j in range(n):
            v = token[j]
            normed = (v - v.mean()) / torch.sqrt(((v - v.mean()) ** 2).mean() + 1e-5)
            dyn = [squash((normed * f.proj[:, c]).sum()) for c in range(n + 2)]
            pre[j] = pre[j] + f.scales[0] * dyn[0]
            post[j] = post[j] + f.scales[1] * dyn[1]
            for i in range(n):
                res[i][j] = res[i][j] + f.scales[0] * dyn[2 + i]
        return pre, res, post

    def _spectral(self, logits: Tensor, n: int) -> Tensor:
        """sHC: J + U_z U diag(σ) Vᵀ U_zᵀ with explicit Cayley inverses and Helmert basis."""
        if n == 1:
            return torch.ones(1, 1, dtype=logits.dtype)
        m, k = n - 1, (n - 1) * (n - 2) // 2
        helmert = torch.zeros(n, m, dtype=logits.dtype)
        for i in range(1, n):
            for row in range(i):
                helmert[row, i - 1] = 1 / math.sqrt(i * (i + 1))
            helmert[i, i - 1] = -i / math.sqrt(i * (i + 1))
        rotations = []
        for which in range(2):
            skew = torch.zeros(m, m, dtype=logits.dtype)
            entries = iter(self.fast.gammas[which] * torch.tanh(logits[which * k:(which + 1) * k]))
            for a in range(m):
                for b in range(a + 1, m):
                    value = next(entries)
                    skew = skew + value * (_unit(m, a, b, logits) - _unit(m, b, a, logits))
            eye = torch.eye(m, dtype=logits.dtype)
            rotations.append(torch.linalg.inv(eye + skew) @ (eye - skew))
        sigma = torch.diag(torch.tanh(logits[2 * k:]))
        core = rotations[0] @ sigma @ rotations[1].T
        return torch.full((n, n), 1 / n, dtype=logits.dtype) + helmert @ core @ helmert.T


def plain_depth_connection(mixed: Tensor, post: Tensor, y: Tensor) -> Tensor:
    """mixed_i + post_i·y, stream by stream."""
    n = mixed.shape[-2]
    post = post.expand(*mixed.shape[:-2], n)
    return torch.stack([mixed[..., i, :] + post[..., i, None] * y for i in range(n)], -2)


def plain_collapse(collapse: Collapse, h: Tensor) -> Tensor:
    """`collapse` computed stream by stream (its own parameters)."""
    n = h.shape[-2]
    if collapse.how == "sum":
        return sum(h[..., i, :] for i in range(n))  # type: ignore[return-value]
    flat = torch.cat([h[..., i, :] for i in range(n)], -1)
    normed = flat / torch.sqrt((flat * flat).mean(-1, keepdim=True) + RMS_EPS)
    gates = torch.sigmoid(collapse.scale * (normed @ collapse.proj) + collapse.bias)
    return sum(gates[..., i, None] * h[..., i, :] for i in range(n))  # type: ignore[return-value]


def _sinkhorn(logits: Tensor, n: int, iters: int) -> Tensor:
    """mHC Eq. 9: M = exp(logits) (row-major n × n), then `iters` × (columns, then rows)."""
    m = torch.exp(logits.reshape(n, n))
    for _ in range(iters):
        m = m / m.sum(0, keepdim=True)  # every column sums to 1
        m = m / m.sum(1, keepdim=True)  # every row sums to 1
    return m


def _permutation_sum(logits: Tensor, n: int) -> Tensor:
    """Σ_k softmax(logits)_k P_k over itertools.permutations, P_k[i, σ_k(i)] = 1."""
    weights = torch.softmax(logits, 0)
    total = torch.zeros(n, n, dtype=logits.dtype)
    for k, perm in enumerate(itertools.permutations(range(n))):
        p = torch.zeros(n, n, dtype=logits.dtype)
        for i in range(n):
            p[i, perm[i]] = 1.0
        total = total + weights[k] * p
    return total


def _kron(logits: Tensor, n: int) -> Tensor:
    """U₁ ⊗ U₂ ⊗ … with U_k = [[p, 1-p], [1-p, p]], (p, 1-p) = softmax of the k-th pair."""
    total = torch.ones(1, 1, dtype=logits.dtype)
    for k in range(len(logits) // 2):
        p, q = torch.softmax(logits[2 * k:2 * k + 2], 0)
        total = torch.kron(total, torch.stack([torch.stack([p, q]), torch.stack([q, p])]))
    return total


def _unit(m: int, a: int, b: int, like: Tensor) -> Tensor:
    unit = torch.zeros(m, m, dtype=like.dtype)
    unit[a, b] = 1.0
    return unit

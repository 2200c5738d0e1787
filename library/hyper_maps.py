"""The constrained residual maps H_res of mHC-lite, KromHC and sHC, batched over tokens.

Each function takes per-token coefficients (..., r) and returns H_res (..., n, n) with rows =
output stream and columns = input stream (the orientation of `hyper_connections_modules`). No
Python loop runs over streams or tokens: permutations are one matmul with a constant buffer, and
so is the Kronecker product (its 2^K factor choices, weights from K - 1 outer products); the
Cayley map is a closed form up to four streams and one batched solve beyond
(benchmarks/hyper_maps.py times each against the formulation it replaced).

>>> import torch
>>> permutation_matrices(3).shape
torch.Size([6, 3, 3])
>>> kron_factors(torch.tensor([0.0, -8.0, 0.0, 0.0])).shape  # two 2×2 factors: n = 4
torch.Size([4, 4])
"""

from __future__ import annotations

import itertools

import torch
from torch import Tensor

__all__ = ["permutation_matrices", "birkhoff", "kron_factors", "helmert", "spectral_sphere"]


def permutation_matrices(n: int) -> Tensor:
    """All n! permutation matrices (n!, n, n), P_k[i, σ_k(i)] = 1, in `itertools.permutations`
    order (k = 0 is the identity), as the mHC-lite reference orders its coefficients."""
    perms = torch.tensor(list(itertools.permutations(range(n))), dtype=torch.long)
    return torch.eye(n)[perms]


def birkhoff(logits: Tensor, perms: Tensor) -> Tensor:
    """mHC-lite: Σ_k softmax(logits)_k P_k, one (..., n!) × (n!, n²) matmul; exactly doubly
    stochastic (a convex mix of permutations, Birkhoff-von Neumann)."""
    n = perms.shape[-1]
    weights = torch.softmax(logits, -1)
    return (weights @ perms.reshape(-1, n * n)).unflatten(-1, (n, n))


def kron_factors(logits: Tensor) -> Tensor:
    """KromHC: H_res = U₁ ⊗ … ⊗ U_K from logits (..., 2K), a pair [identity, swap] per factor;
    U_k = [[p, 1-p], [1-p, p]] with (p, 1-p) = softmax(pair). Factor 1 is the outermost (stream
    index Σ_k j_k 2^(K-k)). K = 0 (one stream) gives [[1]].

    Each factor is p·I + (1-p)·S (S the 2×2 swap), and the Kronecker product is multilinear, so
    H_res = Σ_s w_s·B_s over the 2^K choices s of I or S per factor, with w_s the product of the
    chosen weights and B_s the Kronecker product of the chosen matrices: K - 1 outer products of
    weight pairs and one (..., 2^K) × (2^K, n²) matmul with a constant, as `birkhoff` does (less
    than half the time of K batched Kronecker products of (..., 2, 2) factors, backward
    included). Exact: the same sum, in another order."""
    pairs = logits.unflatten(-1, (-1, 2))  # (..., K, 2)
    count = pairs.shape[-2]
    if count == 0:
        return logits.new_ones(*logits.shape[:-1], 1, 1)
    weights = torch.softmax(pairs, -1)
    coefficients = weights[..., 0, :]  # (..., 2^k) after k factors, factor 1 outermost
    for k in range(1, count):
        coefficients = (coefficients[..., :, None] * weights[..., k, None, :]).flatten(-2)
    n = 2 ** count
    return (coefficients @ _kron_basis(count, logits)).unflatten(-1, (n, n))


def _kron_basis(count: int, like: Tensor) -> Tensor:
    """(n, n²), n = 2^K: row s is vec(B_s). Entry (i, j) of a Kronecker product of K 2×2 factors
    reads, in factor k, the pair of bits k of i and j, and I or the swap takes it where those
    bits are equal or differ: so B_s[i, j] = 1 exactly when i XOR j = s."""
    index = torch.arange(2 ** count, device=like.device)
    choice = index[:, None] ^ index[None, :]  # (n, n): s at (i, j)
    return (choice == index[:, None, None]).flatten(-2).to(like.dtype)


def helmert(n: int, like: Tensor) -> Tensor:
    """The Helmert orthonormal basis (n, n-1) of the vectors orthogonal to 1, in `like`'s dtype
    and device (built afresh, so float64 runs get float64 values): column i (1-based) holds
    1/√(i(i+1)) in rows 1..i and -i/√(i(i+1)) in row i+1."""
    i = torch.arange(1, n, dtype=like.dtype, device=like.device)  # (n-1,)
    row = torch.arange(n, dtype=like.dtype, device=like.device)[:, None]  # (n, 1)
    scale = torch.rsqrt(i * (i + 1))
    return torch.where(row < i, scale, torch.where(row == i, -i * scale, 0.0))


def spectral_sphere(logits: Tensor, gammas: Tensor, n: int) -> Tensor:
    """sHC: H_res = J + U_z·U·diag(σ)·Vᵀ·U_zᵀ from logits (..., (n-1)²) ordered [U (k) | V (k)
    | Σ (n-1)], k = (n-1)(n-2)/2: skew-symmetric A = γ·tanh(·) in the strict upper triangle,
    Cayley rotations U = (I + A)⁻¹(I - A) (orthogonal, I + A always invertible), σ = tanh(·).
    Rows and columns sum to 1 and the spectral norm is max(1, |σ|) = 1; entries may be negative.
    `gammas` (2,) bound the skew entries of U and V."""
    basis = helmert(n, logits)  # (n, n-1)
    m = n - 1
    if m == 0:
        return logits.new_ones(*logits.shape[:-1], 1, 1)
    k = m * (m - 1) // 2
    rot_u = _cayley(gammas[0] * torch.tanh(logits[..., :k]), m)
    rot_v = _cayley(gammas[1] * torch.tanh(logits[..., k:2 * k]), m)
    values = torch.tanh(logits[..., 2 * k:])  # (..., n-1) in (-1, 1)
    core = (rot_u * values[..., None, :]) @ rot_v.transpose(-1, -2)  # (..., n-1, n-1)
    # U_z·core·U_zᵀ = vec⁻¹((U_z ⊗ U_z)·vec core): one (..., m²) × (m², n²) matmul
    return (core.flatten(-2) @ torch.kron(basis, basis).T).unflatten(-1, (n, n)) + 1 / n


def _cayley(upper: Tensor, m: int) -> Tensor:
    """(I + A)⁻¹(I - A) for the skew-symmetric A with strict upper triangle `upper` (..., k).

    For m ≤ 3 (up to four streams) in closed form: such an A satisfies A³ = -θ²·A with
    θ² = Σ upper² (A is the cross-product matrix of a 3-vector, or a 2×2 rotation generator),
    so (I + A)⁻¹ = I - (A - A²)/(1 + θ²) and the Cayley map is I - 2·(A - A²)/(1 + θ²) — one
    small matmul where a batched solve and its backward cost several times more. Larger m take
    the solve."""
    rows, cols = torch.triu_indices(m, m, 1, device=upper.device)
    skew = upper.new_zeros(*upper.shape[:-1], m, m)
    skew[..., rows, cols] = upper
    skew = skew - skew.transpose(-1, -2)
    eye = torch.eye(m, dtype=upper.dtype, device=upper.device)
    if m <= 3:
        scale = 2 / (1 + upper.square().sum(-1))  # (...,)
        return eye - scale[..., None, None] * (skew - skew @ skew)
    return torch.linalg.solve(eye + skew, eye - skew)

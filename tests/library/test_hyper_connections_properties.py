"""Properties of the hyper-connection mixes: what each paper promises of H_res, HC at init is a
pre-norm residual network, one stream works, and the Sinkhorn Function's gradient is exact."""

from __future__ import annotations

import itertools

import pytest
import torch

from archc.library.hyper_connections_modules import (
    Collapse,
    Connection,
    depth_connection,
    expand_streams,
)
from archc.library.hyper_maps import _cayley, kron_factors, permutation_matrices
from archc.library.hyper_sinkhorn import column_error_bound, sinkhorn

D = 8


def residual_matrix(site: Connection, h: torch.Tensor) -> torch.Tensor:
    """H_res (..., n, n) of a manifold-mix `site` at streams `h`."""
    return site.matrices(h)[1]


def random_site(mix: str, n: int, scale: float, seed: int = 0, **hp: object) -> Connection:
    site = Connection(mix, n, D, **hp).double()
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in site.parameters():
            p.add_(scale * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    return site


def streams(n: int, seed: int = 1, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    return torch.randn(4, 5, n, D, generator=torch.Generator().manual_seed(seed)).to(dtype)


@pytest.mark.parametrize(("mix", "n"), [("mhc_lite", 2), ("mhc_lite", 3), ("mhc_lite", 4),
                                        ("kromhc", 2), ("kromhc", 4), ("kromhc", 8)])
def test_birkhoff_mixes_are_exactly_doubly_stochastic(mix: str, n: int) -> None:
    site = random_site(mix, n, scale=2.0).float()
    res = residual_matrix(site, streams(n, dtype=torch.float32))
    assert (res > -1e-6).all()
    for axis in (-1, -2):
        torch.testing.assert_close(res.sum(axis), torch.ones_like(res.sum(axis)),
                                   rtol=0, atol=1e-6)


def test_kromhc_is_the_kronecker_product_of_its_factors() -> None:
    site = random_site("kromhc", 4, scale=2.0)
    h = streams(4)
    flat = h.flatten(-2)
    logits = site.bias + flat @ site.proj * torch.rsqrt(flat.pow(2).mean(-1, keepdim=True) + 1e-6
                                                         ) * site.scales[site.group]
    pairs = torch.softmax(logits[..., 8:].unflatten(-1, (2, 2)), -1)
    factor = [torch.stack((torch.stack((p[..., 0], p[..., 1]), -1),
                           torch.stack((p[..., 1], p[..., 0]), -1)), -2) for p in pairs.unbind(-2)]
    expected = torch.stack([torch.kron(a, b) for a, b in zip(factor[0].reshape(-1, 2, 2),
                                                             factor[1].reshape(-1, 2, 2),
                                                             strict=True)])
    torch.testing.assert_close(residual_matrix(site, h).reshape(-1, 4, 4), expected,
                               rtol=1e-10, atol=1e-10)


def test_permutations_are_distinct_and_identity_first() -> None:
    perms = permutation_matrices(4)
    assert torch.equal(perms[0], torch.eye(4))
    assert len({tuple(p.flatten().tolist()) for p in perms}) == 24
    for p, order in zip(perms, itertools.permutations(range(4)), strict=True):
        assert all(p[i, order[i]] == 1 for i in range(4))



@pytest.mark.parametrize("count", [1, 2, 3])
def test_kron_factors_equal_the_chained_kronecker_product(count: int) -> None:
    """The factor-choice mix against torch.kron of the factors, outermost first, n = 2, 4, 8."""
    logits = 3 * torch.randn(6, 2 * count, dtype=torch.float64,
                             generator=torch.Generator().manual_seed(count))
    pairs = torch.softmax(logits.unflatten(-1, (count, 2)), -1)  # (6, K, 2): keep, swap
    for token, got in zip(pairs, kron_factors(logits), strict=True):
        expected = torch.ones(1, 1, dtype=torch.float64)
        for keep, swap in token:
            expected = torch.kron(expected, torch.stack((torch.stack((keep, swap)),
                                                         torch.stack((swap, keep)))))
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-14)


@pytest.mark.parametrize("m", [1, 2, 3, 4, 5])
def test_cayley_rotation_is_the_solve_and_orthogonal(m: int) -> None:
    """m ≤ 3 takes the closed form I - 2(A - A²)/(1 + θ²), larger m the solve: both are
    (I + A)⁻¹(I - A) (checked against an explicit inverse) and orthogonal, entries up to ±5."""
    k = m * (m - 1) // 2
    upper = 5 * torch.randn(50, k, dtype=torch.float64, generator=torch.Generator().manual_seed(m))
    rows, cols = torch.triu_indices(m, m, 1)
    skew = torch.zeros(50, m, m, dtype=torch.float64)
    skew[:, rows, cols] = upper
    skew = skew - skew.transpose(-1, -2)
    eye = torch.eye(m, dtype=torch.float64)
    rotation = _cayley(upper, m)
    torch.testing.assert_close(rotation, torch.linalg.inv(eye + skew) @ (eye - skew),
                               rtol=0, atol=1e-12)
    torch.testing.assert_close(rotation @ rotation.transpose(-1, -2), eye.expand(50, m, m),
                               rtol=0, atol=1e-12)


@pytest.mark.parametrize("n", [2, 3, 4, 5])
def test_shc_is_on_the_spectral_sphere(n: int) -> None:
    site = random_site("shc", n, scale=1.5, seed=n).float()
    res = residual_matrix(site, streams(n, dtype=torch.float32))
    norms = torch.linalg.matrix_norm(res, ord=2)
    torch.testing.assert_close(norms, torch.ones_like(norms), rtol=0, atol=1e-5)
    for axis in (-1, -2):
        torch.testing.assert_close(res.sum(axis), torch.ones_like(res.sum(axis)),
                                   rtol=0, atol=1e-5)
    if n > 2:
        assert (res < 0).any(), "sHC allows negative entries; random parameters should show some"


@pytest.mark.parametrize("spread", [0.1, 1.0, 3.0, 10.0])
@pytest.mark.parametrize("iters", [1, 3, 20])
def test_sinkhorn_within_the_documented_bound(spread: float, iters: int) -> None:
    logits = spread * torch.randn(500, 4, 4, dtype=torch.float64,
                                  generator=torch.Generator().manual_seed(iters))
    res = sinkhorn(logits, iters)
    rows, columns = res.sum(-1), res.sum(-2)
    torch.testing.assert_close(rows, torch.ones_like(rows), rtol=0, atol=1e-12)
    column_error = (columns - 1).abs().amax(-1)
    assert (column_error <= column_error_bound(logits, iters) + 1e-12).all()


def test_sinkhorn_converges_at_small_logits_in_twenty_iterations() -> None:
    """The practical regime of mHC (logits ≈ ±1 about a dominant diagonal) is tight."""
    logits = torch.randn(500, 4, 4, dtype=torch.float64,
                         generator=torch.Generator().manual_seed(0)) * 0.5
    assert ((sinkhorn(logits, 20).sum(-2) - 1).abs().max() < 1e-6)


def test_sinkhorn_stays_finite_and_exact_for_extreme_logits() -> None:
    """Rows or columns hundreds of nats below the rest: float32 exp underflows there, so only
    steps that subtract a stabiliser stay finite. The iterates after the first two need none
    (hyper_sinkhorn._iterates); the result equals float64 logsumexp iterations."""
    gen = torch.Generator().manual_seed(3)
    logits = torch.randn(64, 4, 4, generator=gen)
    logits[:16, 1] -= 300.0  # a row far below the others
    logits[16:32, :, 2] -= 300.0  # a column
    logits[32:48] *= 80.0  # a spread of hundreds of nats
    for iters in (1, 2, 20):
        ours = sinkhorn(logits, iters)
        log = logits.double()
        for _ in range(iters):
            log = log - torch.logsumexp(log, -2, keepdim=True)
            log = log - torch.logsumexp(log, -1, keepdim=True)
        assert torch.isfinite(ours).all()
        torch.testing.assert_close(ours.double(), log.exp(), rtol=0, atol=1e-5)


def test_sinkhorn_gradcheck_and_equals_autograd_through_the_loop() -> None:
    gen = torch.Generator().manual_seed(5)
    logits = torch.randn(2, 3, 3, dtype=torch.float64, generator=gen, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: sinkhorn(x, 6), (logits,))
    weights = torch.randn(2, 3, 3, dtype=torch.float64, generator=gen)
    ours = torch.autograd.grad((sinkhorn(logits, 20) * weights).sum(), logits)[0]
    log = logits
    for _ in range(20):  # the same iterations, differentiated by autograd step by step
        log = log - torch.logsumexp(log, -2, keepdim=True)
        log = log - torch.logsumexp(log, -1, keepdim=True)
    reference = torch.autograd.grad((log.exp() * weights).sum(), logits)[0]
    torch.testing.assert_close(ours, reference, rtol=1e-12, atol=1e-12)


def _toy_layer(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """A pre-norm sub-layer: tanh(RMSNorm(x)·W)."""
    return torch.tanh(x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) @ weight)


@pytest.mark.parametrize("dynamic", [False, True])
@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_hc_at_init_is_exactly_a_pre_norm_residual_network(n: int, dynamic: bool) -> None:
    """Every stream equals x + layer(x) bit for bit at every depth; the sum collapse is n·x."""
    gen = torch.Generator().manual_seed(n)
    weights = [torch.randn(D, D, dtype=torch.float64, generator=gen) for _ in range(5)]
    x = torch.randn(3, 7, D, dtype=torch.float64, generator=gen)
    h = expand_streams(x, n)
    for k, weight in enumerate(weights):
        site = Connection("hc", n, D, layer=k, dynamic=dynamic).double()
        layer_input, mixed, post = site(h)
        h = depth_connection(mixed, post, _toy_layer(layer_input, weight))
        x = x + _toy_layer(x, weight)
        assert all(torch.equal(h[..., i, :], x) for i in range(n))
    torch.testing.assert_close(Collapse(n, D, "sum")(h), n * x, rtol=1e-15, atol=0)


@pytest.mark.parametrize("mix", ["mhc", "mhc_lite", "kromhc", "shc"])
def test_manifold_mixes_start_near_the_identity_residual(mix: str) -> None:
    site = Connection(mix, 4, D).double()
    h = expand_streams(torch.randn(2, 3, D, dtype=torch.float64), 4)
    x, _, post = site(h)
    # H_pre = 1/n each, H_post = 1, up to the float32 rounding of the initial biases
    torch.testing.assert_close(x, h[..., 0, :], rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(post, torch.ones_like(post), rtol=1e-6, atol=1e-6)
    res = residual_matrix(site, streams(4))
    assert (torch.diagonal(res, dim1=-2, dim2=-1) > 0.99).all()


@pytest.mark.parametrize(("mix", "hp"), [("hc", {}), ("hc", {"dynamic": True}), ("mhc", {}),
                                         ("mhc_lite", {}), ("kromhc", {}), ("shc", {})])
def test_one_stream(mix: str, hp: dict) -> None:
    """n = 1 runs for every mix: H_res ≡ 1 for the manifold mixes; a fresh static hc is exactly
    a residual connection."""
    site = random_site(mix, 1, scale=1.0, **hp)
    h = streams(1)
    x, mixed, post = site(h)
    assert x.shape == (4, 5, D) and mixed.shape == h.shape and post.shape[-1] == 1
    if mix != "hc":
        assert torch.equal(residual_matrix(site, h), torch.ones(4, 5, 1, 1, dtype=h.dtype))
        torch.testing.assert_close(mixed, h, rtol=1e-15, atol=0)
    y = torch.randn(4, 5, D, dtype=torch.float64)
    layer_input, mixed, post = Connection("hc", 1, D).double()(h)
    assert torch.equal(layer_input, h[..., 0, :])
    assert torch.equal(depth_connection(mixed, post, y)[..., 0, :], h[..., 0, :] + y)


def test_rebuilds_from_its_attributes() -> None:
    """The exporter's contract: Connection(mix, streams, dim, **hp) from the stored attributes
    has the same parameters and, with the weights loaded, the same outputs."""
    site = random_site("shc", 3, scale=0.5, gamma=0.5)
    hp = {name: getattr(site, name) for name in ("alpha", "gamma")}
    again = Connection(site.mix, site.streams, site.dim, layer=site.layer, **hp).double()
    again.load_state_dict(site.state_dict())
    h = streams(3)
    for a, b in zip(site(h), again(h), strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize(("args", "message"), [
    (("kromhc", 3), "power of two"),
    (("mhc_lite", 7), "streams ≤ 6"),
    (("hcc", 2), "unknown hyper-connection mix"),
])
def test_unusable_sites_are_clear_errors(args: tuple, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Connection(*args, dim=4)


def test_unknown_hyperparameters_and_collapses_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="mhc has no hyperparameter gamma"):
        Connection("mhc", 2, 4, gamma=1.0)
    with pytest.raises(ValueError, match="unknown collapse 'mean'"):
        Collapse(2, 4, "mean")


def test_head_collapse_starts_as_the_mean() -> None:
    h = torch.randn(2, 3, 4, D, dtype=torch.float64)
    torch.testing.assert_close(Collapse(4, D, "head").double()(h), h.mean(-2))


def test_depth_connection_promotes_like_the_formula() -> None:
    """A pruned layer's output may be integer zeros; the result is mixed's float type."""
    mixed, post = torch.randn(2, 3, 4, D), torch.rand(4)
    out = depth_connection(mixed, post, torch.zeros(2, 3, D, dtype=torch.long))
    assert out.dtype == torch.float32 and torch.equal(out, mixed)

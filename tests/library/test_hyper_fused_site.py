"""The fused training path of a per-token site (`hyper_fused_site`) against the same maths as
separate ops differentiated by autograd (`Connection.matrices` + `width`): values, the streams'
gradient and every parameter's, in float64 and float32."""

from __future__ import annotations

import pytest
import torch

from archc.library.hyper_connections_modules import Connection, depth_connection
from archc.library.hyper_fused import width

SITES = [("hc", {"dynamic": True}), ("hc", {"dynamic": True, "tanh": False}),
         ("mhc", {"iters": 4}), ("mhc_lite", {}), ("kromhc", {}), ("shc", {})]
TOLERANCES = {torch.float64: 1e-10, torch.float32: 5e-5}
"""float32: both paths' gradients differ from the float64 truth by up to 2e-5 of their largest
value here (measured; the loss squares outputs of size ~5), each in its own order of rounding,
so they may differ from each other by that much. float64 checks the maths to 1e-10."""


def _randomised(mix: str, hp: dict, n: int, dtype: torch.dtype) -> Connection:
    """A site with every parameter moved off its init, so no gradient is trivially zero."""
    site = Connection(mix, n, 6, **hp).to(dtype)
    gen = torch.Generator().manual_seed(n)
    with torch.no_grad():
        for p in site.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=gen, dtype=dtype))
    return site


def _outputs_and_grads(site: Connection, h: torch.Tensor, y: torch.Tensor, fused: bool
                       ) -> list[torch.Tensor]:
    if fused:
        x, mixed, post = site(h)
    else:
        pre, res, post = site.matrices(h)
        x, mixed = width(h, pre, res)
    out = depth_connection(mixed, post, torch.tanh(x) * y)  # x feeds a layer, post the depth
    leaves = [h, *site.parameters()]
    grads = torch.autograd.grad((out * out).sum(), leaves, allow_unused=True)
    return [x, mixed, post, *(torch.zeros_like(p) if g is None else g
                              for p, g in zip(leaves, grads, strict=True))]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("n", [1, 2, 4])
@pytest.mark.parametrize(("mix", "hp"), SITES)
def test_fused_site_equals_separate_ops(mix: str, hp: dict, n: int, dtype: torch.dtype) -> None:
    if mix == "kromhc" and n & (n - 1):
        pytest.skip("kromhc needs a power of two")
    site = _randomised(mix, hp, n, dtype)
    gen = torch.Generator().manual_seed(7)
    h = torch.randn(2, 3, n, 6, generator=gen, dtype=dtype).mul_(2).add_(0.5).requires_grad_()
    y = torch.randn(2, 3, 6, generator=gen, dtype=dtype)
    fused = _outputs_and_grads(site, h, y, fused=True)
    separate = _outputs_and_grads(site, h, y, fused=False)
    tol = TOLERANCES[dtype]
    for a, b in zip(fused, separate, strict=True):
        torch.testing.assert_close(a, b, rtol=tol, atol=tol)


@pytest.mark.parametrize(("mix", "hp"), SITES)
def test_without_gradients_the_separate_ops_give_the_fused_values(mix: str, hp: dict) -> None:
    """Inference and export run the separate ops; training runs the fused Function."""
    site = _randomised(mix, hp, 4, torch.float64)
    h = torch.randn(2, 3, 4, 6, dtype=torch.float64)
    with torch.no_grad():
        separate = site(h)
    fused = site(h.clone().requires_grad_())
    assert fused[0].grad_fn is not None and separate[0].grad_fn is None
    torch.testing.assert_close(separate, fused, rtol=1e-12, atol=1e-12)


def test_frozen_parameters_get_no_gradient_and_the_rest_do() -> None:
    site = _randomised("shc", {}, 4, torch.float64)
    site.bias.requires_grad_(False)
    h = torch.randn(2, 4, 6, dtype=torch.float64, requires_grad=True)
    x, mixed, post = site(h)
    (x.sum() + mixed.square().sum() + post.sum()).backward()
    assert site.bias.grad is None
    assert all(p.grad is not None for p in (site.proj, site.scales, site.gammas, h))


@pytest.mark.parametrize(("mix", "hp"), SITES)
def test_strided_streams_give_the_contiguous_result(mix: str, hp: dict) -> None:
    site = _randomised(mix, hp, 4, torch.float64)
    base = torch.randn(2, 4, 6, 3, dtype=torch.float64)
    strided = base.permute(0, 3, 1, 2).requires_grad_()  # (2, 3, 4, 6), not contiguous
    packed = strided.detach().contiguous().requires_grad_()
    results = []
    for h in (strided, packed):
        x, mixed, post = site(h)
        (x.square().sum() + mixed.sum() + post.sum()).backward()
        results.append((x, mixed, post, h.grad))
    torch.testing.assert_close(results[0], results[1], rtol=1e-12, atol=1e-12)

"""Fast hyper-connection sites vs the plain references of `hyper_plain.py`: outputs and gradients
(inputs and every parameter) agree within 1e-10 in float64 and 1e-5 in float32, at random
(non-init) parameters; `torch.autograd.gradcheck` passes in float64 for every mix."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from torch.func import functional_call

from archc.library.hyper_connections_modules import (
    Collapse,
    Connection,
    depth_connection,
    expand_streams,
)

sys.path.insert(0, str(Path(__file__).parent))
from hyper_plain import (
    PlainConnection,
    plain_collapse,
    plain_depth_connection,
)

SITES = [
    ("hc", {}, (1, 2, 4)),
    ("hc", {"dynamic": True}, (1, 3, 4)),
    ("hc", {"dynamic": True, "tanh": False}, (2,)),
    ("mhc", {"iters": 20}, (1, 2, 4)),
    ("mhc", {"iters": 3, "post_scale": 1.0}, (3,)),
    ("mhc_lite", {}, (1, 3, 4)),
    ("kromhc", {}, (1, 2, 4)),
    ("shc", {"gamma": 0.7}, (1, 2, 3, 4)),
]
CASES = [(mix, hp, n) for mix, hp, ns in SITES for n in ns]
IDS = [f"{mix}{'-' + '-'.join(f'{k}={v}' for k, v in hp.items()) if hp else ''}-n{n}"
       for mix, hp, n in CASES]
D = 5
TOLERANCE = {torch.float64: 1e-10, torch.float32: 1e-5}


def randomised(mix: str, hp: dict, n: int, dtype: torch.dtype, seed: int = 0,
               dim: int = D) -> Connection:
    """A site with every parameter moved away from its initial value (seeded)."""
    site = Connection(mix, n, dim, layer=1, **hp)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in site.parameters():
            p.add_(0.4 * torch.randn(p.shape, generator=gen))
    return site.to(dtype)


def _run(site: torch.nn.Module, depth: object, h: torch.Tensor, y: torch.Tensor,
         seed: int = 1) -> torch.Tensor:
    """A scalar loss through the width and depth connections, weighted at random."""
    x, mixed, post = site(h)
    out = depth(mixed, post, y)  # type: ignore[operator]
    gen = torch.Generator().manual_seed(seed)
    wx = torch.randn(x.shape, generator=gen, dtype=h.dtype)
    wo = torch.randn(out.shape, generator=gen, dtype=h.dtype)
    return (x * wx).sum() + (out * wo).sum()


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize(("mix", "hp", "n"), CASES, ids=IDS)
def test_fast_site_equals_plain_site(mix: str, hp: dict, n: int, dtype: torch.dtype) -> None:
    site = randomised(mix, hp, n, dtype)
    plain = PlainConnection.from_fast(site)
    gen = torch.Generator().manual_seed(2)
    h = torch.randn(2, 3, n, D, generator=gen).to(dtype).requires_grad_()
    y = torch.randn(2, 3, D, generator=gen).to(dtype).requires_grad_()
    tol = TOLERANCE[dtype]
    for fast_out, plain_out in zip(site(h), plain(h), strict=True):
        torch.testing.assert_close(fast_out, plain_out, rtol=tol, atol=tol)
    wrt = [h, y, *site.parameters()]
    fast_grads = torch.autograd.grad(_run(site, depth_connection, h, y), wrt, allow_unused=True)
    plain_grads = torch.autograd.grad(_run(plain, plain_depth_connection, h, y), wrt,
                                      allow_unused=True)
    for a, b in zip(fast_grads, plain_grads, strict=True):
        if a is None or b is None:  # unused here: n = 1 res logits, sHC's γ without rotations
            assert n <= 2 and (a is None or not a.any()) and (b is None or not b.any())
            continue
        torch.testing.assert_close(a, b, rtol=tol, atol=tol)


@pytest.mark.parametrize(("mix", "hp", "n"), CASES, ids=IDS)
def test_gradcheck_float64(mix: str, hp: dict, n: int) -> None:
    """In fast mode: numerical and analytic Jacobians compared along random directions
    (the full Jacobian is checked for the Sinkhorn Function alone, in the properties tests)."""
    site = randomised(mix, hp, n, torch.float64, seed=3, dim=2)
    names = [name for name, _ in site.named_parameters()]
    h = torch.randn(1, 2, n, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    params = [p.detach().clone().requires_grad_() for p in site.parameters()]

    def f(h: torch.Tensor, *ps: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return functional_call(site, dict(zip(names, ps, strict=True)), (h,))

    assert torch.autograd.gradcheck(f, (h.requires_grad_(), *params), fast_mode=True)


@pytest.mark.parametrize("how", ["sum", "head"])
@pytest.mark.parametrize("n", [1, 3])
def test_collapse_equals_plain_and_gradchecks(how: str, n: int) -> None:
    collapse = Collapse(n, D, how).double()
    with torch.no_grad():
        for p in collapse.parameters():
            p.add_(0.4 * torch.randn_like(p))
    h = torch.randn(2, 3, n, D, dtype=torch.float64, requires_grad=True)
    torch.testing.assert_close(collapse(h), plain_collapse(collapse, h), rtol=1e-10, atol=1e-10)
    assert torch.autograd.gradcheck(collapse, (h,))


def test_expand_streams_copies_and_sums_gradients() -> None:
    x = torch.randn(2, 3, D, dtype=torch.float64, requires_grad=True)
    h = expand_streams(x, 4)
    assert h.shape == (2, 3, 4, D) and h.is_contiguous()
    assert all(torch.equal(h[..., i, :], x) for i in range(4))
    h.sum().backward()
    assert torch.equal(x.grad, torch.full_like(x, 4.0))

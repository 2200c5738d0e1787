"""A site's depth connection fused with the next site's width connection
(`hyper_fused.depth_width`, library/hyper_native_depth_width.c) against the two connections it
replaces: values and every gradient, shared and per-token weights, both dtypes, widths across
the kernel's column chunks; gradcheck in float64; and `Connection(mixed, post, y)`, the call
the compiler's fusion makes, against `Connection(depth_connection(mixed, post, y))`."""

from __future__ import annotations

import pytest
import torch

from archc.library import hyper_native
from archc.library.hyper_connections_modules import Connection, depth_connection
from archc.library.hyper_fused import depth, depth_width, width

TOLERANCE = {torch.float64: 1e-12, torch.float32: 1e-5}


def _native() -> None:
    if not hyper_native.usable(torch.zeros(())):
        pytest.skip(f"native kernels not built: {hyper_native.status()}")


def _operands(lead: tuple[int, ...], n: int, d: int, per_token_post: bool,
              per_token_site: bool, dtype: torch.dtype, seed: int) -> tuple[torch.Tensor, ...]:
    gen = torch.Generator().manual_seed(seed)

    def leaf(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=gen, dtype=dtype).requires_grad_()

    site = lead if per_token_site else ()
    return (leaf(*lead, n, d), leaf(*(lead if per_token_post else ()), n), leaf(*lead, d),
            leaf(*site, n), leaf(*site, n, n))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize(("per_token_post", "per_token_site"),
                         [(False, False), (True, False), (False, True), (True, True)])
@pytest.mark.parametrize(("lead", "n", "d"), [((1,), 1, 1), ((2, 3), 4, 16), ((5,), 3, 300),
                                              ((2,), 2, 513), ((3,), 6, 37), ((2,), 9, 16)])
def test_equals_the_two_connections(lead: tuple[int, ...], n: int, d: int, per_token_post: bool,
                                    per_token_site: bool, dtype: torch.dtype) -> None:
    """d = 300 and 513 cross the forward's chunks of 256 columns (a partial last chunk); d = 37,
    300 and 513 leave columns past the backward's last whole vector, and n = 6 and 9 a partial
    last group of its streams (hyper_native_mixing.c)."""
    _native()
    operands = _operands(lead, n, d, per_token_post, per_token_site, dtype, seed=n * 1000 + d)
    gen = torch.Generator().manual_seed(d)
    grads = (torch.randn(*lead, d, generator=gen, dtype=dtype),
             torch.randn(*lead, n, d, generator=gen, dtype=dtype))
    fused = depth_width(*operands)
    mixed, post, y, pre, res = operands
    split = width(depth(mixed, post, y), pre, res)
    got = (*fused, *torch.autograd.grad(fused, operands, grads))
    want = (*split, *torch.autograd.grad(split, operands, grads))
    tol = TOLERANCE[dtype] * max(1.0, d / 16)  # the per-token sums run over d columns
    for a, b in zip(got, want, strict=True):
        assert a.shape == b.shape
        torch.testing.assert_close(a, b, rtol=tol, atol=tol)


@pytest.mark.parametrize("per_token", [False, True])
def test_gradcheck(per_token: bool) -> None:
    _native()
    operands = _operands((2, 3), 3, 5, per_token, per_token, torch.float64, seed=7)
    assert torch.autograd.gradcheck(depth_width, operands)


def test_the_kernel_runs_while_training_only() -> None:
    """Without gradients (inference, which must equal the exported model.py exactly) the two
    connections run on torch's path; while training the fused kernel runs."""
    _native()
    ran: list[str] = []
    kept = hyper_native.call

    def watched(name: str, *args: object) -> int:
        ran.append(name)
        return kept(name, *args)  # type: ignore[arg-type]

    operands = _operands((4,), 2, 8, False, False, torch.float32, seed=1)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(hyper_native, "call", watched)
        with torch.no_grad():
            depth_width(*operands)
        assert ran == []
        x, mixed = depth_width(*operands)
        (x.sum() + mixed.sum()).backward()
    assert ran == ["depth_width_forward", "depth_width_backward"]


_FUSED = ["depth_width_forward", "depth_width_backward"]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("d", [16, 33])
@pytest.mark.parametrize("shared_post", [True, False])
@pytest.mark.parametrize("mix", [{"mix": "hc"}, {"mix": "hc", "dynamic": True},
                                 {"mix": "mhc"}, {"mix": "mhc_lite"}, {"mix": "kromhc"},
                                 {"mix": "shc"}])
def test_a_site_handed_its_predecessors_depth_connection(mix: dict[str, object],
                                                         shared_post: bool, d: int,
                                                         dtype: torch.dtype) -> None:
    """`site(mixed, post, y)` = `site(depth_connection(mixed, post, y))`, outputs and gradients,
    for static hc (`depth_width`, whose kernels run both ways) and the per-token mixes (whose
    forward is one pass, `hyper_site_native.site_forward`, and backward the site's)."""
    _native()
    torch.manual_seed(0)
    site = Connection(str(mix["mix"]), 4, d,
                      **{k: v for k, v in mix.items() if k != "mix"}).to(dtype)
    with torch.no_grad():
        for param in site.parameters():
            param.add_(0.3 * torch.randn_like(param))
    mixed = torch.randn(2, 5, 4, d, dtype=dtype, requires_grad=True)
    post = torch.randn(*(() if shared_post else (2, 5)), 4, dtype=dtype, requires_grad=True)
    y = torch.randn(2, 5, d, dtype=dtype, requires_grad=True)
    leaves = (mixed, post, y, *site.parameters())

    def outputs_and_grads(*args: torch.Tensor) -> list[torch.Tensor]:
        x, out, post_out = site(*args)
        loss = (x.tanh() * x).sum() + (out * out.roll(1, -1)).sum() + post_out.square().sum()
        return [x, out, post_out, *torch.autograd.grad(loss, leaves)]

    ran: list[str] = []
    kept = hyper_native.call
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(hyper_native, "call", lambda name, *args: (ran.append(name),
                                                                 kept(name, *args))[1])
        fused = outputs_and_grads(mixed, post, y)
    split = outputs_and_grads(depth_connection(mixed, post, y))
    static = site.mix == "hc" and not site.dynamic
    whole = "dynamic_site_forward" if site.mix == "hc" else "manifold_site_forward"
    fused_kernels = [name for name in ran if name in (*_FUSED, whole)]
    assert fused_kernels == (_FUSED if static else [whole])  # a per-token forward: one pass
    tol = TOLERANCE[dtype] * 10
    for a, b in zip(fused, split, strict=True):
        torch.testing.assert_close(a, b, rtol=tol, atol=tol)


def test_a_pruned_layers_integer_zeros_are_promoted_first() -> None:
    site = Connection("hc", 2, 4)
    mixed, post = torch.randn(3, 2, 4), torch.ones(2)
    zeros = torch.zeros(3, 4, dtype=torch.long)
    x, out, _ = site(mixed, post, zeros)
    x_split, out_split, _ = site(depth_connection(mixed, post, zeros))
    assert torch.equal(x, x_split) and torch.equal(out, out_split)

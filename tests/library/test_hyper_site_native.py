"""The per-token maps in C (library/hyper_native_maps.c via hyper_site_native.py) against the
maps' torch graph: values and every gradient for every per-token mix, both dtypes, one to
eight streams and extreme logits; the one-pass site backward (hyper_native_site.c) against the
three kernels it fuses; the projection's C passes against torch ops; determinism; which path
runs when."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import torch

from archc.library import hyper_fused_site, hyper_native, hyper_site_native
from archc.library.hyper_connections_modules import Connection, depth_connection
from archc.library.hyper_fused import mix_streams

TOLERANCE = {torch.float64: 1e-12, torch.float32: 2e-5}
CASES = [("hc", {"dynamic": True}, n) for n in (1, 2, 3, 4)] + [
    ("hc", {"dynamic": True, "tanh": False}, 3),
    *[("mhc", {"iters": 7}, n) for n in (1, 2, 4)],
    *[("mhc_lite", {}, n) for n in (1, 2, 3, 4)],
    *[("kromhc", {}, n) for n in (1, 2, 4, 8)],
    *[("shc", {}, n) for n in (1, 2, 3, 4)],
]


@pytest.fixture(autouse=True)
def _built() -> Iterator[None]:
    if not hyper_native.usable(torch.zeros(())):
        pytest.skip(f"native kernels not built: {hyper_native.status()}")
    yield


def _site(mix: str, hp: dict, n: int, dtype: torch.dtype, spread: float = 0.5) -> Connection:
    torch.manual_seed(n)
    site = Connection(mix, n, 8, **hp).to(dtype)
    with torch.no_grad():
        for p in site.parameters():
            p.add_(spread * torch.randn_like(p))
    return site


def _train(site: Connection, h: torch.Tensor, grad: torch.Tensor) -> list[torch.Tensor | None]:
    """The depth connection's output and the gradients of h and every parameter."""
    h = h.clone().requires_grad_()
    for p in site.parameters():
        p.grad = None
    x, mixed, post = site(h)
    out = depth_connection(mixed, post, torch.tanh(x))
    out.backward(grad)
    return [out.detach(), h.grad, *(p.grad for p in site.parameters())]


def _graph(site: Connection, h: torch.Tensor, grad: torch.Tensor) -> list[torch.Tensor | None]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(hyper_site_native, "supports", lambda site: False)
        return _train(site, h, grad)


def _assert_same(ours: list[torch.Tensor | None], theirs: list[torch.Tensor | None],
                 tolerance: float) -> None:
    for a, b in zip(ours, theirs, strict=True):
        assert (a is None) == (b is None)
        if a is not None and b is not None and b.numel() == 0:  # one-stream sHC's rest
            assert a.shape == b.shape
        elif a is not None and b is not None:
            scale = b.abs().max().clamp_min(1.0)
            assert (a - b).abs().max() <= tolerance * scale


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize(("mix", "hp", "n"), CASES)
def test_c_maps_equal_the_torch_graph(mix: str, hp: dict, n: int, dtype: torch.dtype) -> None:
    site = _site(mix, hp, n, dtype)
    gen = torch.Generator().manual_seed(7)
    h = torch.randn(3, 5, n, 8, generator=gen).to(dtype)
    grad = torch.randn(3, 5, n, 8, generator=gen).to(dtype)
    _assert_same(_train(site, h, grad), _graph(site, h, grad), TOLERANCE[dtype])


@pytest.mark.parametrize(("mix", "hp", "n"), [("kromhc", {}, 4), ("mhc_lite", {}, 3),
                                              ("shc", {}, 4), ("mhc", {"iters": 5}, 4),
                                              ("hc", {"dynamic": True}, 4)])
def test_extreme_logits_stay_finite_and_equal(mix: str, hp: dict, n: int) -> None:
    """Logits tens of nats apart: KromHC and softmax weights round to 0 (the C backward forms
    the other factors' products directly, never by division), tanh and σ saturate."""
    site = _site(mix, hp, n, torch.float64, spread=40.0)
    gen = torch.Generator().manual_seed(3)
    h = 3 * torch.randn(2, 6, n, 8, generator=gen, dtype=torch.float64)
    grad = torch.randn(2, 6, n, 8, generator=gen, dtype=torch.float64)
    ours = _train(site, h, grad)
    assert all(torch.isfinite(t).all() for t in ours if t is not None)
    _assert_same(ours, _graph(site, h, grad), 1e-10)


def test_training_takes_the_c_maps_and_inference_does_not(monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    called: list[str] = []
    call = hyper_native.call

    def spy(name: str, *args: object) -> int:
        called.append(name)
        return call(name, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(hyper_native, "call", spy)
    site = _site("shc", {}, 4, torch.float32)
    h = torch.randn(2, 3, 4, 8, requires_grad=True)
    x, mixed, post = site(h)
    depth_connection(mixed, post, x).sum().backward()
    assert called == ["manifold_site_forward", "site_backward"]
    called.clear()
    with torch.no_grad():
        site(h)
    assert called == []
    mhc = _site("mhc", {}, 4, torch.float32)  # Sinkhorn's steps inside the one pass too
    x, mixed, post = mhc(h)
    depth_connection(mixed, post, x).sum().backward()
    assert called == ["manifold_site_forward", "site_backward"]


def _unfused(site: Connection, h: torch.Tensor, grad: torch.Tensor
             ) -> list[torch.Tensor | None]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(hyper_site_native, "fuses", lambda site: False)
        return _train(site, h, grad)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize(("mix", "n", "d", "tokens"), [
    ("kromhc", 4, 64, 300), ("kromhc", 2, 37, 17), ("shc", 4, 40, 129), ("shc", 3, 8, 5),
    ("mhc_lite", 3, 64, 300), ("mhc_lite", 4, 21, 33), ("hc", 4, 64, 300), ("hc", 3, 21, 17),
    ("mhc", 4, 64, 300), ("mhc", 3, 21, 17), ("mhc", 2, 8, 129)])
def test_the_one_pass_site_backward_equals_the_three_kernels(mix: str, n: int, d: int,
                                                              tokens: int,
                                                              dtype: torch.dtype) -> None:
    """Whole and partial passes of 16 tokens (mhc: 32) and blocks of 128, widths with and
    without a tail past the last whole vector: the same numbers, bit for bit, as the mixing's,
    the maps' (mhc: and Sinkhorn's) and the projection's kernels in turn — within rounding for
    mhc_lite, whose ∂q torch forms as a matmul on the three-kernel path, and dynamic hc, whose
    ∂W sums other blocks of rows."""
    torch.manual_seed(n + d)
    site = Connection(mix, n, d, **({"dynamic": True} if mix == "hc" else {})).to(dtype)
    with torch.no_grad():
        for p in site.parameters():
            p.add_(0.5 * torch.randn_like(p))
    gen = torch.Generator().manual_seed(tokens)
    h = torch.randn(1, tokens, n, d, generator=gen).to(dtype)
    grad = torch.randn(1, tokens, n, d, generator=gen).to(dtype)
    assert hyper_site_native.fuses(site)
    ours, theirs = _train(site, h, grad), _unfused(site, h, grad)
    if mix in ("mhc_lite", "hc"):
        _assert_same(ours, theirs, TOLERANCE[dtype])
    else:
        assert all(a is not None and b is not None and torch.equal(a, b)
                   for a, b in zip(ours, theirs, strict=True))


def test_shc_beyond_four_streams_keeps_the_torch_graph(monkeypatch: pytest.MonkeyPatch) -> None:
    """Five streams need a 4×4 solve for the Cayley map: the torch graph runs, and trains."""
    call = hyper_native.call

    def maps_refused(name: str, *args: object) -> int:
        assert not name.startswith("manifold"), "C maps ran"
        return call(name, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(hyper_native, "call", maps_refused)
    site = _site("shc", {}, 5, torch.float32)
    assert not hyper_site_native.supports(site)
    h = torch.randn(2, 3, 5, 8, requires_grad=True)
    x, mixed, post = site(h)
    depth_connection(mixed, post, x).sum().backward()
    assert h.grad is not None and site.gammas.grad is not None


@pytest.mark.parametrize("mix", ["mhc_lite", "hc", "mhc"])
def test_gradients_do_not_depend_on_the_thread_count(mix: str) -> None:
    """The parameter gradients are summed over fixed blocks of tokens, so 1 and 2 threads give
    the same numbers bit for bit (300 tokens: several blocks, a partial last one)."""
    hp = {"dynamic": True} if mix == "hc" else {}
    site = _site(mix, hp, 4, torch.float32)
    gen = torch.Generator().manual_seed(1)
    h, grad = torch.randn(3, 100, 4, 8, generator=gen), torch.randn(3, 100, 4, 8, generator=gen)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        two = _train(site, h, grad)
        torch.set_num_threads(1)
        one = _train(site, h, grad)
    finally:
        torch.set_num_threads(threads)
    for a, b in zip(one, two, strict=True):
        assert a is not None and b is not None and torch.equal(a, b)


@pytest.mark.parametrize("padded", [False, True])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize(("rows", "width", "c"), [(300, 1024, 24), (37, 21, 5), (8, 16, 1),
                                                  (129, 40, 7)])
def test_projection_backward_pass_equals_its_torch_ops(rows: int, width: int, c: int,
                                                       dtype: torch.dtype, padded: bool) -> None:
    """∂h += scaled·Wᵀ + coef ⊙ h and ∂W = hᵀ·scaled in one C pass (hyper_native_projection.c)
    against addmm_, addcmul_ and a matmul: whole vectors, a tail past them (21, 40 columns),
    partial groups and blocks of rows; Wᵀ and the accumulator with rows `width` apart and
    `row_stride` apart (the padding columns of the accumulator never leak into ∂W's)."""
    gen = torch.Generator().manual_seed(rows + width + c)
    h, grad_h = (torch.randn(rows, width, generator=gen, dtype=dtype) for _ in range(2))
    scaled = torch.randn(rows, c, generator=gen, dtype=dtype)
    coef = torch.randn(rows, 1, generator=gen, dtype=dtype)
    weight = torch.randn(width, c, generator=gen, dtype=dtype)
    want_h = grad_h.clone().addmm_(scaled, weight.T).addcmul_(coef, h)
    want_w = h.T @ scaled
    block = 128
    wt = hyper_native.padded_rows(weight.T) if padded else weight.T.contiguous()
    stride = wt.shape[1]
    partial = h.new_full((-(-rows // block), c, stride), float("nan"))
    hyper_native.call("projection_backward", rows, width, stride, c, h, scaled, coef, wt,
                      grad_h, block, partial)
    tolerance = TOLERANCE[dtype]
    torch.testing.assert_close(grad_h, want_h, rtol=tolerance, atol=tolerance * width ** 0.5)
    torch.testing.assert_close(partial.sum(0)[:, :width].T, want_w, rtol=tolerance,
                               atol=tolerance * rows ** 0.5)


@pytest.mark.parametrize(("width", "dtype", "stride"),
                         [(1024, torch.float32, 1040), (256, torch.float32, 272),
                          (1024, torch.float64, 1032), (21, torch.float32, 48),
                          (40, torch.float64, 40), (1, torch.float64, 8)])
def test_row_stride_is_an_odd_number_of_cache_lines(width: int, dtype: torch.dtype,
                                                    stride: int) -> None:
    """The padded row stride: the width rounded up to whole 64-byte lines, then to an odd
    count of them (1,024 floats are 64 lines: one more), so consecutive rows fall in distinct
    cache sets; and padded_rows copies the matrix into it with zero columns past the width."""
    assert hyper_native.row_stride(width, dtype) == stride
    matrix = torch.randn(3, width, dtype=dtype)
    padded = hyper_native.padded_rows(matrix)
    assert padded.shape == (3, stride) and padded.is_contiguous()
    assert torch.equal(padded[:, :width], matrix) and not padded[:, width:].any()


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize(("width", "c"), [(1024, 32), (256, 7), (21, 40), (1, 1), (40, 17)])
def test_padded_transpose_is_padded_rows_of_the_transpose(width: int, c: int,
                                                          dtype: torch.dtype) -> None:
    """Wᵀ for the backward in one C pass: padded_rows(W.T), bit for bit, zeros in the padding
    (the buffer it writes starts as garbage, so the zeros are its own); whole tiles of 16 and
    tails both ways."""
    weights = torch.randn(width, c, dtype=dtype)
    got = hyper_native.padded_transpose(weights)
    want = hyper_native.padded_rows(weights.T)
    assert got.shape == want.shape and torch.equal(got, want)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize(("blocks", "c", "width"), [(16, 32, 1024), (64, 7, 256), (1, 5, 21),
                                                    (3, 40, 33)])
def test_summed_transpose_adds_the_blocks_in_order(blocks: int, c: int, width: int,
                                                   dtype: torch.dtype) -> None:
    """∂W from its partial sums (blocks, c, stride) in one C pass: the blocks added one by one
    in their order (so a plain loop of adds gives the same bits), transposed to (width, c);
    the padding columns, NaN here, never read."""
    stride = hyper_native.row_stride(width, dtype)
    partial = torch.full((blocks, c, stride), float("nan"), dtype=dtype)
    partial[..., :width] = torch.randn(blocks, c, width, dtype=dtype)
    want = partial[0, :, :width].clone()
    for block in partial[1:]:
        want += block[:, :width]
    got = hyper_native.summed_transpose(partial, width)
    assert got.shape == (width, c) and got.is_contiguous()
    assert torch.equal(got, want.T)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize(("mix", "n"), [("mhc_lite", 4), ("shc", 4), ("kromhc", 8), ("mhc", 1)])
def test_the_maps_sums_add_blocks_in_order_and_scales_by_group(mix: str, n: int,
                                                                dtype: torch.dtype) -> None:
    """The maps' parameter gradients from their blocks' sums (blocks, 2c + 2), as
    `site_backward` forms them in C: ∂bias the blocks' first c columns, each scale the sum of
    its logits' terms (the `group` buffer: sHC's five scales, the others' three), ∂γ the last
    two; the blocks added one by one in their order, so a loop of adds gives the same bits."""
    site = _site(mix, {}, n, dtype)
    c = site.proj.shape[1]
    partial = torch.randn(7, 2 * c + 2, dtype=dtype)
    total = partial[0].clone()
    for row in partial[1:]:
        total += row
    scales = torch.zeros(site.scales.shape, dtype=dtype)
    for column, group in enumerate(site.group.tolist()):
        scales[group] += total[c + column]
    got = hyper_site_native._manifold_grads(site, partial, c)
    assert torch.equal(got[0], total[:c]) and torch.equal(got[1], scales)
    if mix == "shc":
        assert torch.equal(got[2], total[2 * c:])


@pytest.mark.parametrize(("kernel", "said"), [("site_backward", "backward"),
                                              ("manifold_site_forward", "forward")])
def test_a_failed_scratch_allocation_is_a_memory_error(kernel: str, said: str,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """The site's kernels allocate their own scratch (the forward: its tiles of streams formed
    from a handed depth connection) and say so when they cannot: the Python side raises
    MemoryError rather than reading numbers that were never written."""
    site = _site("mhc_lite", {}, 4, torch.float32)
    mixed = torch.randn(2, 3, 4, 8, requires_grad=True)
    post, y = torch.randn(4, requires_grad=True), torch.randn(2, 3, 8, requires_grad=True)
    call = hyper_native.call
    monkeypatch.setattr(hyper_native, "call", lambda name, *args: (
        1 if name == kernel else call(name, *args)))  # type: ignore[arg-type]
    with pytest.raises(MemoryError, match=said):
        x, mixed, post = site(mixed, post, y)
        depth_connection(mixed, post, x).sum().backward()


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("c", [1, 5, 7, 12, 20, 24, 32, 33, 45, 56])
def test_packed_columns_pad_to_half_vectors(c: int, dtype: torch.dtype) -> None:
    """W for the forward: zero columns up to a multiple of half a 64-byte vector; W itself,
    uncopied, where its columns are already such a multiple."""
    weights = torch.randn(9, c, dtype=dtype)
    packed = hyper_native.packed_columns(weights)
    half = 32 // weights.element_size()
    assert packed.shape[0] == 9 and packed.shape[1] % half == 0 and packed.is_contiguous()
    assert c <= packed.shape[1] < c + half
    assert torch.equal(packed[:, :c], weights) and not packed[:, c:].any()
    assert (packed.data_ptr() == weights.data_ptr()) == (c % half == 0)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize(("rows", "width", "c"), [
    (300, 1024, 24), (37, 21, 5), (8, 16, 1), (13, 40, 7), (5, 3, 2), (256, 1024, 32),
    (19, 33, 12), (7, 256, 7), (25, 17, 20), (12, 64, 33), (11, 9, 45), (6, 31, 56)])
def test_projection_forward_pass_equals_its_torch_ops(rows: int, width: int, c: int,
                                                      dtype: torch.dtype) -> None:
    """h·W and Σh² per row in one C pass (hyper_native_projection.c) against a matmul and a
    norm: whole tiles of 6 rows and partial ones; every panel shape in both dtypes (c up to
    56: one to five half vectors, six split as three and three, seven as five and two, the
    last panel's columns past c dropped); odd widths (the one-vector panels sum k even and
    k odd apart) and a tail past the last whole vector."""
    gen = torch.Generator().manual_seed(rows + width + c)
    h = torch.randn(rows, width, generator=gen, dtype=dtype)
    weight = torch.randn(width, c, generator=gen, dtype=dtype)
    out, square = h.new_empty(rows, c), h.new_empty(rows, 1)
    packed = hyper_native.packed_columns(weight)
    hyper_native.call("projection_forward", rows, width, c, h, packed.shape[1], packed, out,
                      square)
    tolerance = TOLERANCE[dtype]
    torch.testing.assert_close(out, h @ weight, rtol=tolerance, atol=tolerance * width ** 0.5)
    torch.testing.assert_close(square, h.square().sum(-1, keepdim=True), rtol=tolerance,
                               atol=tolerance)


def _handed(site: Connection, streams: tuple[torch.Tensor, ...], grads: list[torch.Tensor],
            fused: bool) -> list[torch.Tensor | None]:
    """The site's outputs and the gradients of (mixed, post, y) and every parameter, the site
    handed its predecessor's depth connection (`fused`) or given depth_connection's output."""
    mixed, post, y = (t.clone().requires_grad_() for t in streams)
    for p in site.parameters():
        p.grad = None
    outs = site(mixed, post, y) if fused else site(depth_connection(mixed, post, y))
    torch.autograd.backward(outs, grads)
    return [*(o.detach() for o in outs), mixed.grad, post.grad, y.grad,
            *(p.grad for p in site.parameters())]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize(("mix", "hp", "n", "d", "tokens", "shared_post"), [
    ("kromhc", {}, 4, 64, 300, False), ("shc", {}, 3, 21, 17, False),
    ("mhc_lite", {}, 4, 40, 129, True), ("mhc", {"iters": 7}, 4, 64, 300, False),
    ("mhc", {"iters": 7}, 2, 21, 5, True), ("hc", {"dynamic": True}, 4, 64, 300, False),
    ("hc", {"dynamic": True}, 3, 21, 17, True), ("shc", {}, 5, 16, 20, False)])
def test_a_site_handed_its_predecessors_depth_equals_the_two_calls(
        mix: str, hp: dict, n: int, d: int, tokens: int, shared_post: bool,
        dtype: torch.dtype) -> None:
    """`conn(mixed, post, y)` forms the streams in its one forward pass (sHC past four streams:
    in the projection's C pass and again in the mixing's), never storing them, and the depth's
    backward in the site's backward pass (sHC past four streams: after the three kernels, from
    streams formed for them): bit for bit `conn(depth_connection(mixed, post, y))`, values and
    every gradient, for per-token and shared (static hc's) H_post, tails of passes and
    vectors."""
    site = Connection(mix, n, d, **hp).to(dtype)
    torch.manual_seed(d)
    with torch.no_grad():
        for p in site.parameters():
            p.add_(0.5 * torch.randn_like(p))
    gen = torch.Generator().manual_seed(tokens)
    post_shape = (n,) if shared_post else (1, tokens, n)
    streams = (torch.randn(1, tokens, n, d, generator=gen).to(dtype),
               torch.randn(post_shape, generator=gen).to(dtype),
               torch.randn(1, tokens, d, generator=gen).to(dtype))
    outs = site(depth_connection(*streams))
    grads = [torch.randn(o.shape, generator=gen).to(dtype) for o in outs]
    calls: list[str] = []
    kernel = hyper_native._kernel
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(hyper_native, "_kernel",
                      lambda name, like: calls.append(name) or kernel(name, like))
        ours = _handed(site, streams, grads, fused=True)
    if hyper_site_native.forwards_whole(site):  # the forward in one pass
        assert calls[0] in ("dynamic_site_forward", "manifold_site_forward")
        assert "depth_width_forward" not in calls
    else:  # the projection's pass and the mixing's
        forward = calls[:calls.index("depth_width_forward") + 1]
        assert forward[0] == "depth_projection_forward" and "depth_forward" not in forward
    assert ("depth_forward" in calls) == (not hyper_site_native.fuses(site))
    theirs = _handed(site, streams, grads, fused=False)
    assert all(a is not None and b is not None and torch.equal(a, b)
               for a, b in zip(ours, theirs, strict=True))


@pytest.mark.parametrize(("mix", "hp"), [("kromhc", {}), ("mhc", {"iters": 5}),
                                         ("hc", {"dynamic": True}), ("mhc_lite", {})])
def test_a_handed_depth_passes_gradcheck(mix: str, hp: dict) -> None:
    """The fused depth path's gradients of mixed, post and y against finite differences."""
    site = _site(mix, hp, 4, torch.float64)
    gen = torch.Generator().manual_seed(3)
    streams = [torch.randn(shape, generator=gen, dtype=torch.float64, requires_grad=True)
               for shape in ((2, 3, 4, 8), (2, 3, 4), (2, 3, 8))]
    assert torch.autograd.gradcheck(lambda *args: site(*args), streams)


def test_a_handed_depth_of_other_dtypes_takes_depth_connection() -> None:
    """Operands of mixed dtypes are promoted by depth_connection first, as before."""
    site = _site("kromhc", {}, 4, torch.float64)
    mixed = torch.randn(1, 5, 4, 8, dtype=torch.float64, requires_grad=True)
    post, y = torch.randn(1, 5, 4), torch.randn(1, 5, 8, dtype=torch.float64)
    x, _, _ = site(mixed, post, y)
    assert x.dtype == torch.float64
    want, _, _ = site(depth_connection(mixed, post, y))
    assert torch.equal(x, want)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_the_c_tanh_is_within_two_roundings_of_torchs(dtype: torch.dtype) -> None:
    """hyper_native_math.c's tanh, over both of its branches, their seam at 0.625, the
    saturation and the sign: float32 within 2 ulp of the exact value (torch's own is within
    1), float64 (libm) torch's within 1e-15."""
    x = torch.cat((torch.linspace(-12, 12, 200_001), torch.tensor([0.0, -0.0, 0.625, -0.625,
                   1e-30, -1e-8, 40.0, -100.0, float("inf"), float("-inf")]))).to(dtype)
    out = _c_tanh(x)
    exact = torch.tanh(x.double())
    if dtype == torch.float64:
        assert (out - exact).abs().max() <= 1e-15
        return
    ulp = (torch.nextafter(exact.float(), torch.tensor(float("inf"))) - exact.float()).abs()
    assert ((out.double() - exact).abs() <= 2 * ulp.double().clamp_min(1e-45)).all()
    assert torch.equal(torch.signbit(out), torch.signbit(x))  # tanh(-0) = -0
    assert torch.isnan(_c_tanh(torch.tensor([float("nan")] * 3))).all()


def _c_tanh(x: torch.Tensor) -> torch.Tensor:
    out = torch.empty_like(x)
    hyper_native.call("tanh_values", x.numel(), x, out)
    return out


def _states(mix: str, state: tuple) -> list[torch.Tensor]:
    """What the backward reads of the maps' state: t (dynamic hc); gates, rest (not mhc) and
    mhc's Sinkhorn logits."""
    if mix == "hc":
        return [state[0]]
    gates, rest, _, _, _, log = state
    return [gates] + ([log] if mix == "mhc" else [rest])


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize(("mix", "hp", "n", "d", "tokens", "handed"), [
    ("hc", {"dynamic": True}, 4, 64, 301, False), ("hc", {"dynamic": True}, 4, 64, 301, True),
    ("hc", {"dynamic": True}, 3, 21, 17, True), ("hc", {"dynamic": True}, 1, 16, 5, False),
    ("mhc", {"iters": 7}, 4, 64, 301, True), ("mhc", {"iters": 3}, 2, 21, 17, False),
    ("mhc_lite", {}, 4, 40, 129, True), ("mhc_lite", {}, 3, 21, 5, False),
    ("kromhc", {}, 4, 64, 301, True), ("kromhc", {}, 8, 16, 13, False),
    ("shc", {}, 4, 64, 301, True), ("shc", {}, 3, 21, 17, False), ("shc", {}, 1, 8, 7, True)])
def test_a_sites_one_pass_forward_equals_its_separate_kernels(
        mix: str, hp: dict, n: int, d: int, tokens: int, handed: bool,
        dtype: torch.dtype) -> None:
    """`site_forward` (hyper_native_site_forward.c): the projection, its norm, the maps and the
    mixing of every block of tokens in one pass equal the projection's C pass, the torch norm
    and transcendental functions, the maps' kernels and the stream mixing in turn (up to the
    rounding of tanh, σ and exp in float32), for tail blocks, widths no vector divides, and
    streams formed from a handed depth connection; 1 and 2 threads give the same bits."""
    site = Connection(mix, n, d, **hp).to(dtype)
    torch.manual_seed(n + d)
    with torch.no_grad():
        for p in site.parameters():
            p.add_(0.5 * torch.randn_like(p))
    gen = torch.Generator().manual_seed(tokens)
    flat = torch.randn(tokens, n, d, generator=gen).to(dtype)
    depth = ((torch.randn(tokens, n, generator=gen).to(dtype),
              torch.randn(tokens, d, generator=gen).to(dtype)) if handed else None)
    params = tuple(p.detach() for p in site._map_params())
    kind = "layer" if mix == "hc" else "rms"
    eps, proj = hyper_fused_site.PROJECTIONS[kind], site.proj.detach()
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = hyper_site_native.site_forward(site, flat, proj, params, eps, depth)
        torch.set_num_threads(2)
        two = hyper_site_native.site_forward(site, flat, proj, params, eps, depth)
    finally:
        torch.set_num_threads(threads)
    ours = [*two[0][:2], *two[1], *_states(mix, two[2]), two[3], two[4]]
    assert all(torch.equal(a, b) for a, b in zip(
        [*one[0][:2], *one[1], *_states(mix, one[2]), one[3], one[4]], ours, strict=True))
    streams = flat if depth is None else flat + depth[0][..., None] * depth[1][:, None]
    projected, inv, _ = hyper_fused_site._project(kind, streams, proj)
    pre, res, post, state = hyper_site_native.forward(site, projected, params)
    x, mixed, _, _ = mix_streams(streams, pre, res, native=True)
    theirs = [projected, inv, pre, res.view(tokens, n, n), post, *_states(mix, state),
              x.view(tokens, d), mixed]
    _assert_same(ours, theirs, TOLERANCE[dtype] / 10)


def test_the_python_side_sizes_the_kernels_blocks_as_the_c_side_defines_them() -> None:
    """hyper_site_native allocates each thread's tile (a block's streams) by the C kernels'
    block sizes: a mismatch would let a kernel write past its tile."""
    defines = {}
    for name in ("hyper_native_site.c", "hyper_native_site_forward.c"):
        text = (hyper_native.SOURCES[0].parent / name).read_text()
        defines.update({f"{name}:{k}": int(v)
                        for k, v in re.findall(r"#define (\w+) (\d+)", text)})
    assert defines["hyper_native_site.c:PASS"] == hyper_site_native._BLOCK
    assert defines["hyper_native_site.c:BLOCK"] == hyper_site_native._ROWS
    assert defines["hyper_native_site_forward.c:TOKENS"] == hyper_site_native._FORWARD_TOKENS


def test_the_sinkhorn_kernels_bound_their_stack_arrays_as_python_checks() -> None:
    """hyper_native.sinkhorn_fits keeps calls whose recomputed steps would overflow the C
    backward's stack arrays off the kernels: both C files must bound them alike."""
    for name in ("hyper_native.c", "hyper_native_sinkhorn.c"):
        text = (hyper_native.SOURCES[0].parent / name).read_text()
        assert int(re.findall(r"#define STEPS (\d+)", text)[0]) == hyper_native.SINKHORN_STEPS

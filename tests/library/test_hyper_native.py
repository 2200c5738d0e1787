"""The native kernels (library/hyper_native.c) against torch's path: the stream mixing (values
and every gradient, shared and per-token weights, both dtypes, odd widths) and Sinkhorn; their
build, its fall-backs, and the exported model.py, which carries no native code."""

from __future__ import annotations

import importlib.util
import os
import shlex
import shutil
import sys
import sysconfig
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from archc.compiler.export import export
from archc.library import hyper_native, hyper_site_native
from archc.library.hyper_connections import site_flops
from archc.library.hyper_connections_modules import Connection, depth_connection
from archc.library.hyper_fused import mix_streams, mix_streams_backward
from archc.library.hyper_sinkhorn import Sinkhorn

sys.path.insert(0, str(Path(__file__).parents[1] / "compiler"))
from test_hyper_export import compiled, tokens

TOLERANCE = {torch.float64: 1e-12, torch.float32: 1e-5}


def _compiler_present() -> bool:
    command = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
    return shutil.which(shlex.split(command)[0]) is not None


@pytest.fixture
def fresh_build(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[pytest.MonkeyPatch]:
    """A build into an empty cache, with the process's own build restored afterwards."""
    monkeypatch.setenv("ARCHC_CACHE", str(tmp_path))
    monkeypatch.delenv(hyper_native.ENV, raising=False)  # also in a run with ARCHC_NATIVE=0
    hyper_native._library.cache_clear()
    yield monkeypatch
    monkeypatch.undo()
    hyper_native._library.cache_clear()


def test_builds_where_a_c_compiler_is_installed() -> None:
    if not _compiler_present():
        pytest.skip("no C compiler: the bmm path runs (what this test would check is absent)")
    if os.environ.get(hyper_native.ENV, "").strip() == "0":
        pytest.skip(f"{hyper_native.ENV}=0: this run checks torch's path")
    assert hyper_native.status() == "ready"


def _weights(batch: int, n: int, shared: bool, dtype: torch.dtype, seed: int
             ) -> tuple[torch.Tensor, ...]:
    gen = torch.Generator().manual_seed(seed)
    count = 1 if shared else batch
    return tuple(torch.randn(*shape, generator=gen, dtype=dtype)
                 for shape in ((count, n), (count, n, n), (count, n)))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("shared", [True, False])
@pytest.mark.parametrize(("batch", "n", "d"), [(1, 1, 1), (5, 2, 7), (6, 4, 64), (3, 3, 33),
                                               (4, 6, 40), (2, 9, 19)])
def test_kernels_equal_the_bmm_path(batch: int, n: int, d: int, shared: bool,
                                    dtype: torch.dtype) -> None:
    if not hyper_native.usable(torch.zeros((), dtype=dtype)):
        pytest.skip(f"native kernels not built: {hyper_native.status()}")
    gen = torch.Generator().manual_seed(batch * 100 + n * 10 + d)
    h, grad_mixed, grad_out = (torch.randn(batch, n, d, generator=gen, dtype=dtype)
                               for _ in range(3))
    grad_x, y = (torch.randn(batch, 1, d, generator=gen, dtype=dtype) for _ in range(2))
    pre, res, post = _weights(batch, n, shared, dtype, seed=d)
    tol = TOLERANCE[dtype]

    def close(got: tuple[torch.Tensor, ...], want: tuple[torch.Tensor, ...]) -> None:
        for a, b in zip(got, want, strict=True):
            torch.testing.assert_close(a, b, rtol=tol, atol=tol)

    close(mix_streams(h, pre, res, native=True)[:2], mix_streams(h, pre, res)[:2])
    close(mix_streams_backward(h, pre, res, grad_x, grad_mixed, native=True),
          mix_streams_backward(h, pre, res, grad_x, grad_mixed))
    close((hyper_native.depth_forward(h, post, y.view(batch, d)),),
          (torch.addcmul(h, post[..., None], y),))
    close(hyper_native.depth_backward(grad_out, post, y.view(batch, d)),
          (torch.bmm(post[:, None].expand(batch, 1, n), grad_out).view(batch, d),
           torch.bmm(grad_out, y.view(batch, d, 1))[..., 0]))


@pytest.mark.parametrize("mix", ["hc", "mhc"])
def test_training_gradients_equal_the_bmm_path_and_do_not_depend_on_threads(mix: str) -> None:
    """A site and its depth connection trained through the native kernels, at 1 and 2 threads
    (the same numbers, bit for bit: tokens are split, never a sum), against the bmm path."""
    if not hyper_native.usable(torch.zeros(())):
        pytest.skip(f"native kernels not built: {hyper_native.status()}")
    torch.manual_seed(0)
    site = Connection(mix, 4, 16)
    with torch.no_grad():
        for p in site.parameters():
            p.add_(0.3 * torch.randn_like(p))
    h = torch.randn(2, 9, 4, 16, requires_grad=True)
    y = torch.randn(2, 9, 16, requires_grad=True)

    def gradients() -> list[torch.Tensor]:
        leaves = [h, y, *site.parameters()]
        for leaf in leaves:
            leaf.grad = None
        x, mixed, post = site(h)
        (depth_connection(mixed, post, y * x.tanh()) ** 2).sum().backward()
        return [leaf.grad.clone() for leaf in leaves if leaf.grad is not None]

    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = gradients()
        torch.set_num_threads(2)
        two = gradients()
    finally:
        torch.set_num_threads(threads)
    for a, b in zip(one, two, strict=True):
        assert torch.equal(a, b)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(hyper_native, "usable", lambda *tensors: False)
        plain = gradients()
    for a, b in zip(one, plain, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_switched_off_by_the_environment(fresh_build: pytest.MonkeyPatch) -> None:
    fresh_build.setenv("ARCHC_NATIVE", "0")
    assert hyper_native.status() == "turned off by ARCHC_NATIVE=0"
    assert not hyper_native.usable(torch.zeros(()))


def test_tensors_off_the_cpu_never_build_the_library(monkeypatch: pytest.MonkeyPatch) -> None:
    """A GPU-only run (here the meta device) answers no before compiling anything."""
    def build() -> None:
        raise AssertionError("built the C library for tensors it cannot take")
    monkeypatch.setattr(hyper_native, "_library", build)
    assert not hyper_native.usable(torch.zeros((), device="meta"))
    assert not hyper_native.usable(torch.zeros(()), torch.zeros((), device="meta"))


def test_a_failing_compiler_leaves_the_bmm_path(fresh_build: pytest.MonkeyPatch) -> None:
    fresh_build.setenv("CC", "false")  # a compiler that always fails
    assert hyper_native.status().startswith("not built: ")
    site = Connection("hc", 2, 4)
    h = torch.randn(3, 2, 4, requires_grad=True)
    x, mixed, post = site(h)
    depth_connection(mixed, post, x).sum().backward()  # trains all the same
    assert h.grad is not None and torch.isfinite(h.grad).all()


def test_a_missing_compiler_leaves_the_bmm_path(fresh_build: pytest.MonkeyPatch) -> None:
    fresh_build.setenv("CC", "no-such-compiler-archc")
    assert hyper_native.status().startswith("not built: ")


def test_not_under_a_dispatch_mode_or_without_gradients() -> None:
    """The flop counter sees the bmm path while training; inference never takes the kernels
    (so it equals an exported model.py exactly)."""
    site = Connection("hc", 4, 8)
    h = torch.randn(2, 4, 8, requires_grad=True)
    with FlopCounterMode(display=False) as counter:
        site(h)
    assert counter.get_total_flops() == site_flops("hc", {}, 4, 8, tokens=2)  # both bmms

    def refuse(*args: object) -> None:
        pytest.fail("a native kernel ran without gradients")

    with pytest.MonkeyPatch.context() as patch, torch.no_grad():
        for name in ("width_forward", "depth_forward"):
            patch.setattr(hyper_native, name, refuse)
        _, mixed, post = site(h)
        depth_connection(mixed, post, torch.randn(2, 8))


@pytest.mark.parametrize("name", ["mhc_lite", "hc"])
def test_exported_model_carries_no_native_code_and_trains_alike(name: str,
                                                                 tmp_path: Path) -> None:
    """Also static hc, whose sites take their predecessors' depth connections (one native
    pass each way here, the two plain connections in model.py)."""
    built = compiled(name)
    built.module.train()
    export(built.module, name, built.point, tmp_path)
    source = (tmp_path / "model.py").read_text()
    assert "class NoNativeKernels" in source and "ctypes" not in source
    spec = importlib.util.spec_from_file_location(f"exported_{name}", tmp_path / "model.py")
    model = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(model)  # type: ignore[union-attr]
    theirs = getattr(model, built.module.__class__.__name__).from_pretrained().train()
    inputs = tokens(2)
    built.module(*inputs).square().mean().backward()
    theirs(*inputs).square().mean().backward()
    ours = dict(built.module.named_parameters())
    for name, param in theirs.named_parameters():
        torch.testing.assert_close(param.grad, ours[name].grad, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize(("n", "batch", "iters"), [(1, 3, 1), (2, 1, 2), (4, 300, 20),
                                                   (5, 37, 3), (8, 21, 40)])
@pytest.mark.parametrize("spread", [1.0, 300.0])
def test_sinkhorn_kernel_equals_the_torch_steps(n: int, batch: int, iters: int, spread: float,
                                                dtype: torch.dtype) -> None:
    """Values and gradients of the C steps against the torch ones, also for logits hundreds
    of nats apart (where only stabilised first steps stay finite). Batches past a whole
    vector of tokens take the padded last vector; n = 8 at 40 iterations takes the
    backward's block-by-block loops in float32, whose vector of tokens' steps would not fit
    (hyper_native_sinkhorn.c)."""
    if not hyper_native.usable(torch.zeros((), dtype=dtype)):
        pytest.skip(f"native kernels not built: {hyper_native.status()}")
    gen = torch.Generator().manual_seed(n * 1000 + batch)
    logits = (spread * torch.randn(batch, n, n, generator=gen, dtype=dtype)).requires_grad_()
    grad = torch.randn(batch, n, n, generator=gen, dtype=dtype)
    results = []
    for native in (True, False):
        logits.grad = None
        out = Sinkhorn.apply(logits, iters, native)
        out.backward(grad)
        results.append((out.detach(), logits.grad.clone()))
    (out, grad_native), (want, grad_torch) = results
    tol = TOLERANCE[dtype]
    assert torch.isfinite(out).all() and torch.isfinite(grad_native).all()
    torch.testing.assert_close(out, want, rtol=tol, atol=tol)
    torch.testing.assert_close(grad_native, grad_torch, rtol=tol, atol=tol)


def test_sinkhorn_beyond_the_kernels_local_arrays_runs_on_torch() -> None:
    """2·iters·n² past `SINKHORN_STEPS` (the C backward's recomputed steps would not fit its
    stack arrays): torch's steps run, with the same values and gradients."""
    n = 4
    iters = hyper_native.SINKHORN_STEPS // (2 * n * n) + 1
    assert not hyper_native.sinkhorn_fits(n, iters) and hyper_native.sinkhorn_fits(n, iters - 1)
    logits = torch.randn(3, n, n, dtype=torch.float64, requires_grad=True)
    ran: list[str] = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(hyper_native, "sinkhorn_forward", lambda *args: ran.append("forward"))
        out = Sinkhorn.apply(logits, iters, True)
    assert ran == []
    want = Sinkhorn.apply(logits, iters, False)
    torch.testing.assert_close(out, want, rtol=0, atol=0)
    site = Connection("mhc", n, 8, iters=iters)
    assert not hyper_site_native.supports(site)

"""Native kernels for the stream mixing of hyper-connection sites, built on first use.

Why, for the stream mixing: inside a network a site's streams (b, t, n, d) do not fit in
cache, so every pass over them runs at memory speed. torch's bmm path (`hyper_fused`) makes
one pass per matrix product: H_pre·h and H_res·h forward, three products for the width
backward, two for the depth backward. `hyper_native.c` makes one pass per connection and
direction, each token's n·d numbers staying in L1 while all its products are formed, over
torch's OpenMP threads.
For mHC's Sinkhorn: its 2·iters steps are 80 small torch ops at 20 iterations, each a pass over
(n, n, B) numbers; the kernel does every step for a block of tokens in one call, vectorised
along the tokens, and its backward recomputes the steps instead of reading them back.
Measured (benchmarks/RESULTS.md, `python benchmarks/hyper_native.py`): the site around an MLP
and the 12-layer transformer of issue 5, torch's path against these kernels in one process.

Build: the C compiler (`$CC`, else Python's configured CC, else `cc`) with
`-O3 -march=native -fopenmp -shared -fPIC`, once per source, compiler and CPU, into
`$ARCHC_CACHE/native` (default `~/.cache/archc/native`); written under a temporary name and
renamed, so concurrent workers race safely. Anything that goes wrong — no compiler, no OpenMP,
a second OpenMP runtime in the process (the kernels must share torch's threads, so they link
libgomp.so.1, the runtime torch's CPU wheels load) — leaves the bmm path in use, with the
reason in `status()`; it is never an error. `ARCHC_NATIVE=0` keeps the bmm path.

Contract of every kernel: contiguous float32 or float64 CPU tensors of one dtype, streams
(B, n, d), weights (P, n) or (P, n, n) with P = 1 (shared by every token) or B; per-token
weight gradients come back per token, (B, n) and (B, n, n). Callers take this path only while
autograd records (training, `recording(...)`): without gradients the bmm path runs, so
inference equals an exported model.py, which carries no native code, bit for bit.
`usable(...)` says whether a call may take this path: not while torch.compile or torch.export
traces (fake tensors have no data) or a dispatch mode watches the ops (torch's
FlopCounterMode counts the bmm path), not for other dtypes or devices.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import shlex
import subprocess
import sysconfig
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor, nn

__all__ = ["recording", "usable", "status", "width_forward", "depth_width_forward",
           "width_backward", "depth_forward",
           "depth_backward", "sinkhorn_forward", "sinkhorn_backward", "sinkhorn_fits",
           "SINKHORN_STEPS", "call", "token_stride", "row_stride", "padded_rows",
           "padded_transpose", "summed_transpose", "packed_columns",
           "SOURCES", "ENV", "NoNativeKernels", "EXPORT_STAND_IN"]

SOURCES = tuple(Path(__file__).with_name(name)
                for name in ("hyper_native.c", "hyper_native_mixing.c", "hyper_native_sinkhorn.c",
                             "hyper_native_depth_width.c", "hyper_native_maps.c",
                             "hyper_native_projection.c", "hyper_native_site.c",
                             "hyper_native_site_forward.c", "hyper_native_math.c",
                             "hyper_native_transpose.c"))
"""Compiled together into one library: the stream mixing and Sinkhorn, a depth connection
fused with the next width connection (`hyper_fused.depth_width`), the per-token maps of the
dynamic mixes (called by `hyper_site_native`), their projection, forward and backward
(called by `hyper_fused_site`), a per-token site's whole backward in one pass
(`hyper_site_native.site_backward`), its whole forward in one pass
(`hyper_site_native.site_forward`), the vectorised tanh, sigmoid and exp that takes, and the
transposes of the projection's weight and of its gradient's partial sums."""
ENV = "ARCHC_NATIVE"
"""Set to 0 to keep torch's bmm path."""

_FLAGS = ("-O3", "-march=native", "-fopenmp", "-shared", "-fPIC")
_SUFFIX = {torch.float32: "f32", torch.float64: "f64"}
_L, _P = ctypes.c_long, ctypes.c_void_p
_PLAIN = (Tensor, nn.Parameter)  # not FakeTensor, functorch wrappers or other subclasses


def status() -> str:
    """'ready', or why the bmm path is in use."""
    return _library()[1]


def recording(*tensors: Tensor) -> bool:
    """Whether autograd records a call on these tensors: callers take the kernels only then,
    and decide it before their Function's forward (which runs without gradients)."""
    return torch.is_grad_enabled() and any(t.requires_grad for t in tensors)


def usable(*tensors: Tensor) -> bool:
    """Whether these tensors may go through the native kernels (see the module docstring)."""
    if torch.compiler.is_compiling():
        return False
    if torch._C._len_torch_dispatch_stack():  # a mode watching the ops (flop counter, fake…)
        return False
    dtype = tensors[0].dtype
    return dtype in _SUFFIX and all(
        type(t) in _PLAIN and t.dtype == dtype and t.device.type == "cpu" for t in tensors
    ) and _library()[0] is not None  # last: a GPU-only run never builds the library


def width_forward(flat: Tensor, pre: Tensor, res: Tensor) -> tuple[Tensor, Tensor]:
    """x = H_pre·h (B, 1, d) and mixed = H_res·h (B, n, d); pre (P, n), res (P, n, n)."""
    batch, n, d = flat.shape
    x, mixed = flat.new_empty(batch, 1, d), torch.empty_like(flat)
    _kernel("width_forward", flat)(_L(batch), _L(n), _L(d), _ptr(flat), _ptr(pre),
                                   _stride(pre, batch), _ptr(res), _stride(res, batch),
                                   _ptr(x), _ptr(mixed), _threads())
    return x, mixed


def depth_width_forward(mixed: Tensor, post: Tensor, y: Tensor, pre: Tensor, res: Tensor
                        ) -> tuple[Tensor, Tensor]:
    """x = H_pre·h (B, d) and mixed' = H_res·h (B, n, d) of streams h = mixed + H_post ⊗ y,
    formed chunk by chunk and never stored (hyper_native_depth_width.c); mixed (B, n, d),
    y (B, d), post and pre (P, n), res (P, n, n)."""
    batch, n, d = mixed.shape
    x, mixed_out = mixed.new_empty(batch, d), torch.empty_like(mixed)
    call("depth_width_forward", batch, n, d, mixed, post, token_stride(post, batch), y, pre,
         token_stride(pre, batch), res, token_stride(res, batch), x, mixed_out)
    return x, mixed_out


def width_backward(flat: Tensor, pre: Tensor, res: Tensor, grad_x: Tensor, grad_mixed: Tensor
                   ) -> tuple[Tensor, Tensor, Tensor]:
    """h's gradient (B, n, d) and the per-token gradients of H_pre (B, n) and H_res (B, n, n)."""
    batch, n, d = flat.shape
    grad_h = torch.empty_like(flat)
    grad_pre, grad_res = flat.new_empty(batch, n), flat.new_empty(batch, n, n)
    _kernel("width_backward", flat)(_L(batch), _L(n), _L(d), _ptr(flat), _ptr(pre),
                                    _stride(pre, batch), _ptr(res), _stride(res, batch),
                                    _ptr(grad_x), _ptr(grad_mixed), _ptr(grad_h),
                                    _ptr(grad_pre), _ptr(grad_res), _threads())
    return grad_h, grad_pre, grad_res


def depth_forward(mixed: Tensor, post: Tensor, y: Tensor) -> Tensor:
    """mixed + H_post ⊗ y (B, n, d); post (P, n), y (B, d)."""
    batch, n, d = mixed.shape
    out = torch.empty_like(mixed)
    _kernel("depth_forward", mixed)(_L(batch), _L(n), _L(d), _ptr(mixed), _ptr(post),
                                    _stride(post, batch), _ptr(y), _ptr(out), _threads())
    return out


def depth_backward(grad: Tensor, post: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    """y's gradient H_postᵀ·∂out (B, d) and H_post's per token ∂out·y (B, n)."""
    batch, n, d = grad.shape
    grad_y, grad_post = grad.new_empty(batch, d), grad.new_empty(batch, n)
    _kernel("depth_backward", grad)(_L(batch), _L(n), _L(d), _ptr(grad), _ptr(post),
                                    _stride(post, batch), _ptr(y), _ptr(grad_y),
                                    _ptr(grad_post), _threads())
    return grad_y, grad_post


SINKHORN_STEPS = 65536
"""The most numbers one token's recomputed Sinkhorn steps (2·iters·n²) may take in the kernels'
local arrays (hyper_native.c's STEPS); `sinkhorn_fits` says whether a call is within it."""


def sinkhorn_fits(n: int, iters: int) -> bool:
    """Whether the Sinkhorn kernels take n × n matrices at `iters` iterations (their backward
    keeps a block's recomputed steps on the thread's stack: at most `SINKHORN_STEPS`)."""
    return 2 * iters * n * n <= SINKHORN_STEPS


def sinkhorn_forward(log: Tensor, iters: int) -> Tensor:
    """Sinkhorn's softmax after its last step (n, n, B), from logits in `hyper_sinkhorn`'s
    (n, n, B) layout, computed as its `_iterates` computes them."""
    n, batch = log.shape[1], log.shape[2]
    assert sinkhorn_fits(n, iters), "callers check sinkhorn_fits() first"
    out = torch.empty_like(log)
    _kernel("sinkhorn_forward", log)(_L(batch), _L(n), _L(iters), _ptr(log), _ptr(out),
                                     _threads())
    return out


def sinkhorn_backward(log: Tensor, iters: int, grad: Tensor) -> Tensor:
    """The logits' gradient (n, n, B) from the output's `grad` (n, n, B), the steps recomputed
    from the logits `log` (n, n, B)."""
    n, batch = grad.shape[1], grad.shape[2]
    assert sinkhorn_fits(n, iters), "callers check sinkhorn_fits() first"
    out = torch.empty_like(grad)
    _kernel("sinkhorn_backward", grad)(_L(batch), _L(n), _L(iters), _ptr(log), _ptr(grad),
                                       _ptr(out), _threads())
    return out


def call(name: str, *args: Tensor | int | float) -> int:
    """Run kernel `name` in the dtype of its first tensor argument: tensors pass as pointers
    (contiguous), ints as C longs, floats as that dtype's C scalar; the thread count is
    appended (the kernels' last parameter). Returns what the kernel returns as a C int: the
    kernels that allocate their own scratch return nonzero where it failed; for the others
    (void) the number means nothing."""
    like = next(arg for arg in args if isinstance(arg, Tensor))
    scalar = ctypes.c_float if like.dtype == torch.float32 else ctypes.c_double
    said: int = _kernel(name, like)(*(_ptr(arg) if isinstance(arg, Tensor) else
                                      _L(arg) if isinstance(arg, int) else scalar(arg)
                                      for arg in args), _threads())
    return said


class NoNativeKernels:
    """`hyper_native` as an exported model.py carries it (compiler/export_sources.py): never
    usable, so the copied Functions take torch's path."""

    @staticmethod
    def recording(*tensors: Tensor) -> bool:
        return False

    @staticmethod
    def usable(*tensors: Tensor) -> bool:
        return False


EXPORT_STAND_IN = NoNativeKernels


def _ptr(t: Tensor) -> ctypes.c_void_p:
    assert t.is_contiguous(), "the kernels read contiguous tensors"
    return _P(t.data_ptr())


def _stride(weights: Tensor, batch: int) -> ctypes.c_long:
    return _L(token_stride(weights, batch))


def token_stride(weights: Tensor, batch: int) -> int:
    """Numbers between two tokens' weights (P, …): 0 for one shared copy, else a token's count."""
    assert weights.shape[0] in (1, batch), "weights are shared or one set per token"
    return weights[0].numel() if weights.shape[0] > 1 else 0


def row_stride(width: int, dtype: torch.dtype) -> int:
    """The row stride (numbers) of a matrix whose rows a kernel walks down side by side at one
    column (the projection's backward: Wᵀ and its gradient's accumulator, c rows each): the
    width rounded up to an odd number of 64-byte cache lines. Why: rows a power-of-two number
    of lines apart (a width of 1,024 floats is 64 lines) all fall in one set of an 8-way
    cache and evict each other; an odd number of lines spreads any 64 consecutive rows over
    distinct sets."""
    per_line = 64 // torch.empty((), dtype=dtype).element_size()
    lines = -(-width // per_line)
    return (lines | 1) * per_line


def padded_rows(matrix: Tensor) -> Tensor:
    """`matrix` (rows, width) copied into a contiguous (rows, `row_stride`) buffer, the columns
    past the width zero."""
    return _zero_padded(matrix, row_stride(matrix.shape[1], matrix.dtype))


def padded_transpose(weights: Tensor) -> Tensor:
    """`padded_rows(weights.T)` for contiguous weights (width, c), in one C pass
    (hyper_native_transpose.c): torch's zeroed buffer and strided copy take four times as long."""
    width, c = weights.shape
    out = weights.new_empty(c, row_stride(width, weights.dtype))
    call("padded_transpose", width, c, out.shape[1], weights, out)
    return out


def summed_transpose(partial: Tensor, width: int) -> Tensor:
    """`partial.sum(0)[:, :width].T`, contiguous (width, c), of the projection backward's
    partial sums of ∂W (blocks, c, stride), in one C pass (hyper_native_transpose.c); the
    blocks are added in their order, the same numbers for any thread count."""
    blocks, c, stride = partial.shape
    out = partial.new_empty(width, c)
    call("summed_transpose", blocks, c, width, stride, partial, out)
    return out


def packed_columns(weights: Tensor) -> Tensor:
    """`weights` (width, c) as the projection's forward takes them (hyper_native_projection.c's
    rows_products): contiguous (width, cp), the columns past c zero, cp a multiple of half a
    64-byte vector. Why: the kernel broadcasts each number of h against whole vectors of a
    row of W, a GEMM microkernel's layout, with no lane left to mask at the end."""
    half = 32 // weights.element_size()
    columns = -(-weights.shape[1] // half) * half
    if columns == weights.shape[1] and weights.is_contiguous():
        return weights  # already the layout (mhc's and mhc_lite's c at four streams): no copy
    return _zero_padded(weights, columns)


def _zero_padded(matrix: Tensor, columns: int) -> Tensor:
    """`matrix` copied into a contiguous (rows, `columns`) buffer, zero past its own columns."""
    out = matrix.new_zeros(matrix.shape[0], columns)
    out[:, :matrix.shape[1]] = matrix
    return out


def _threads() -> ctypes.c_int:
    return ctypes.c_int(torch.get_num_threads())


def _kernel(name: str, like: Tensor) -> Callable[..., int]:
    library = _library()[0]
    assert library is not None, "callers check usable() first"
    kernel: Callable[..., int] = getattr(library, f"{name}_{_SUFFIX[like.dtype]}")
    return kernel


@functools.cache
def _library() -> tuple[ctypes.CDLL | None, str]:
    """The loaded kernels and 'ready', or None and why not; built at most once a process."""
    if os.environ.get(ENV, "1").strip() == "0":
        return None, f"turned off by {ENV}=0"
    compiler = _compiler()
    try:
        path = _build(compiler)
        library = ctypes.CDLL(str(path))
    except subprocess.CalledProcessError as error:
        said = (error.stderr or b"").decode(errors="replace").strip().splitlines()
        return None, f"not built: {shlex.join(compiler)} exited {error.returncode}" + (
            f": {said[-1]}" if said else "")
    except (OSError, subprocess.SubprocessError) as error:
        return None, f"not built: {error}"
    runtimes = _openmp_runtimes()
    if len(runtimes) > 1:
        return None, f"two OpenMP runtimes in the process ({', '.join(sorted(runtimes))})"
    return library, "ready"


def _compiler() -> list[str]:
    """`$CC`, else Python's configured CC, else `cc`, as an argument list."""
    return shlex.split(os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc")


def _build(compiler: list[str]) -> Path:
    """The shared library for these sources, compiler and CPU, compiled unless cached."""
    sources = [path.read_bytes() for path in SOURCES]
    key = hashlib.sha256(b"\0".join([*sources, " ".join(compiler + list(_FLAGS)).encode(),
                                     _cpu_identity().encode()])).hexdigest()[:16]
    root = Path(os.environ.get("ARCHC_CACHE") or Path.home() / ".cache" / "archc") / "native"
    target = root / f"hyper_native-{key}.so"
    if target.exists():
        return target
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root) as scratch:
        built = Path(scratch) / target.name
        subprocess.run([*compiler, *_FLAGS, "-o", str(built), *map(str, SOURCES)], check=True,
                       capture_output=True, timeout=120)
        os.replace(built, target)  # atomic: another process may have won the race, same file
    return target


def _cpu_identity() -> str:
    """What -march=native depends on: the machine, and on Linux the CPU's model and flags."""
    try:
        info = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        info = []
    wanted = [line for line in info if line.startswith(("model name", "flags"))][:2]
    return "\n".join([platform.machine(), platform.processor(), *wanted])


def _openmp_runtimes() -> set[str]:
    """The distinct OpenMP runtime files mapped into this process (Linux; else none known)."""
    try:
        maps = Path("/proc/self/maps").read_text().splitlines()
    except OSError:
        return set()
    names = ("libgomp", "libiomp", "libomp")
    return {line.split()[-1] for line in maps
            if any(name in line.rsplit("/", 1)[-1] for name in names)}

"""PHM layers against the dense layer of the same shape: forward + backward time, side by side.

Run:  python benchmarks/phm_speed.py [--repeats 15] [--threads 2]

Two shapes (issue 6): a 3×3 convolution 64 → 64 on an 8×64×32×32 input, and a linear layer
1024 → 1024 over 2,048 tokens; n = 4 (1/4 of the parameters). Each step is forward, then
backward of a fixed random projection, with the input requiring its gradient as inside a
network. Three variants per shape, timed interleaved (one of each per repeat) in one process:

- dense: torch's layer;
- phm: archc's layer (the weight built by one einsum per forward);
- kron loop: the same weight built as Σᵢ torch.kron(Aᵢ, Fᵢ) in a Python loop, the way a
  straightforward implementation writes it (for context; written here, not copied).

The table gives medians and ratios to dense. Targets: conv ≤ 1.05×, linear ≤ 1.10×.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from bench_args import positive
from torch import nn

from archc.library.phm_modules import PhmConv, PhmLinear

N = 4


def kron_loop(a: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """Σᵢ kron(a[i], f[i]) on the channel axes, one kernel cell's worth at a time via kron's
    broadcasting over trailing axes of size 1."""
    kernel = f.shape[3:]
    return sum((torch.kron(a[i].reshape(N, N, *(1,) * len(kernel)), f[i])
                for i in range(N)), torch.zeros(()))


def _cases() -> dict[str, tuple[torch.Tensor, dict[str, Callable[[torch.Tensor], torch.Tensor]],
                                nn.Module]]:
    """Per shape: the input and the three layers (as functions of the input)."""
    gen = torch.Generator().manual_seed(0)
    conv = nn.Conv2d(64, 64, 3, padding=1)
    phc = PhmConv(2, 64, 64, N, 3, 1, (1, 1), True)
    linear = nn.Linear(1024, 1024)
    phm = PhmLinear(1024, 1024, N, True)
    return {
        "conv2d 64→64, k = 3, input 8×64×32×32": (
            torch.randn(8, 64, 32, 32, generator=gen),
            {"dense": conv, "phm": phc,
             "kron loop": lambda x: F.conv2d(x, kron_loop(phc.a, phc.f), phc.b, 1, 1)}, phc),
        "linear 1024→1024, 2,048 tokens": (
            torch.randn(2048, 1024, generator=gen),
            {"dense": linear, "phm": phm,
             "kron loop": lambda x: F.linear(x, kron_loop(phm.a, phm.f), phm.b)}, phm),
    }


def _step(layer: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
          grad: torch.Tensor) -> float:
    x = x.detach().requires_grad_()
    start = time.perf_counter()
    layer(x).backward(grad)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=positive, default=15)
    parser.add_argument("--threads", type=positive, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, "
          f"{args.threads} threads, {args.repeats} interleaved repeats (medians)\n")
    print("| shape | variant | parameters | ms (median) | × dense |")
    print("|---|---|---|---|---|")
    for shape, (x, layers, phm) in _cases().items():
        grad = torch.randn_like(layers["dense"](x))
        times: dict[str, list[float]] = {name: [] for name in layers}
        for layer in layers.values():  # warm up once each
            _step(layer, x, grad)
        for _ in range(args.repeats):
            for name, layer in layers.items():
                times[name].append(_step(layer, x, grad))
        dense = statistics.median(times["dense"])
        for name, spent in times.items():
            module = layers[name] if isinstance(layers[name], nn.Module) else phm
            params = sum(p.numel() for p in module.parameters())
            ms = statistics.median(spent)
            print(f"| {shape} | {name} | {params:,} | {1e3 * ms:.1f} | {ms / dense:.2f} |")


if __name__ == "__main__":
    main()

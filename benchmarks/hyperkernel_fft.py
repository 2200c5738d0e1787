"""A global hyper-kernel applied by FFT against the same product done directly, 1-D.

Run:  python benchmarks/hyperkernel_fft.py [--length 4096] [--batch 4] [--channels 8] [--runs 5]
                                             [--threads 2]

A global hyper-kernel is as long as its input, so a direct correlation costs O(N²) per channel
(here a grouped conv1d with one group per example and channel, torch's fastest direct form);
`fft_conv` zero-pads to 2N and multiplies spectra, O(N log N). Both compute the same `same`-padded
linear correlation (checked below). Forward alone, then forward + backward (gradients to both
the input and the kernel, as in training), each timed interleaved with its rival in one
process on 2 threads (`--threads`); the table gives medians over `--runs` repeats and the
ratio direct / FFT.
Target (issue 6): ≥ 5× at N = 4,096.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable

import torch
from bench_args import positive

from archc.library.hyper_kernels_modules import direct_conv, fft_conv

Conv = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _forward(conv: Conv, z: torch.Tensor, w: torch.Tensor) -> None:
    with torch.no_grad():
        conv(z, w)


def _forward_backward(conv: Conv, z: torch.Tensor, w: torch.Tensor) -> None:
    z, w = z.detach().requires_grad_(), w.detach().requires_grad_()
    conv(z, w).square().sum().backward()


def _seconds(run: Callable[[Conv, torch.Tensor, torch.Tensor], None], conv: Conv,
             z: torch.Tensor, w: torch.Tensor) -> float:
    start = time.perf_counter()
    run(conv, z, w)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--length", type=positive, default=4096)
    parser.add_argument("--batch", type=positive, default=4)
    parser.add_argument("--channels", type=positive, default=8)
    parser.add_argument("--runs", type=positive, default=5)
    parser.add_argument("--threads", type=positive, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(0)
    shape = (args.batch, args.channels, args.length)
    z, w = torch.randn(*shape, generator=gen), torch.randn(*shape, generator=gen) / args.length
    error = (fft_conv(z, w) - direct_conv(z, w)).abs().max().item()
    print(f"N = {args.length}, batch {args.batch} × {args.channels} channels; torch "
          f"{torch.__version__}, {platform.processor() or platform.machine()}, {args.threads} "
          f"thread(s); "
          f"max |fft - direct| = {error:.1e}\n")
    print("| pass | direct (ms) | FFT (ms) | direct / FFT |")
    print("|---|---|---|---|")
    for name, run in (("forward", _forward), ("forward + backward", _forward_backward)):
        for conv in (direct_conv, fft_conv):  # warm-up
            run(conv, z, w)
        times: dict[str, list[float]] = {"direct": [], "fft": []}
        for _ in range(args.runs):  # interleaved: both sides see the same machine load
            times["direct"].append(_seconds(run, direct_conv, z, w))
            times["fft"].append(_seconds(run, fft_conv, z, w))
        ratios = [d / f for d, f in zip(times["direct"], times["fft"], strict=True)]
        direct, fft = (statistics.median(times[k]) * 1e3 for k in ("direct", "fft"))
        print(f"| {name} | {direct:.1f} | {fft:.2f} | {statistics.median(ratios):.0f}× |")


if __name__ == "__main__":
    main()

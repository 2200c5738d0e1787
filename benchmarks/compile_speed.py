"""Spec → GraphModule for a 24-layer Transformer, against torch.fx.symbolic_trace of the same
network written by hand; and the cost model's time on it.

Run:  python benchmarks/compile_speed.py [--runs 10]

Both sides build the same modules with the same parameter count (checked), so weight
initialisation — most of the time — is the same work; what differs is how the graph is made:
archc decodes the point and emits fx nodes with the Graph API, the hand-written side traces
Python code. The two are timed interleaved in one process; the table gives medians and the ratio.
Targets (issue 3): ratio ≤ 1.0; cost model under 20 ms.
"""

from __future__ import annotations

import argparse
import math
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import fx, nn

import archc
from archc.compiler.cost import cost
from archc.compiler.decode import decode
from archc.compiler.identity import prune
from archc.compiler.lower import lower

sys.path.insert(0, str(Path(__file__).resolve().parent))  # also when a test imports this file
from bench_args import positive

SPEC = Path(__file__).parent / "specs" / "transformer24.arch"
VOCAB, T, D, HEADS, LAYERS = 256, 64, 256, 8, 24


class Block(nn.Module):
    """One pre-norm layer, as a researcher would write it."""

    def __init__(self) -> None:
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(D), nn.LayerNorm(D)
        self.qkv, self.proj = nn.Linear(D, 3 * D), nn.Linear(D, D)
        self.up, self.down = nn.Linear(D, 4 * D), nn.Linear(4 * D, D)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(b, t, 3, HEADS, d // HEADS).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.proj(y.transpose(1, 2).reshape(b, t, d))
        return x + self.down(F.gelu(self.up(self.norm2(x))))


class Hand(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(VOCAB, D)
        self.blocks = nn.ModuleList(Block() for _ in range(LAYERS))
        self.norm, self.head = nn.LayerNorm(D), nn.Linear(D, VOCAB, bias=False)
        position = torch.arange(T)[:, None] * torch.exp(
            torch.arange(0, D, 2) * (-math.log(10000.0) / D))
        self.register_buffer("codes", torch.stack((position.sin(), position.cos()), -1)
                             .flatten(1), persistent=False)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.embed(tokens) + self.codes
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x))


def by_hand() -> fx.GraphModule:
    return fx.symbolic_trace(Hand())


def by_archc(space: archc.Space) -> fx.GraphModule:
    return lower(decode(space, {}, {"vocab": VOCAB}, {"t": T}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=positive, default=10)
    args = parser.parse_args()
    torch.manual_seed(0)
    space = archc.load(SPEC)
    arch = prune(decode(space, {}, {"vocab": VOCAB}, {"t": T}))
    assert sum(p.numel() for p in by_archc(space).parameters()) == \
        sum(p.numel() for p in by_hand().parameters()) == cost(arch).params
    times: dict[str, list[float]] = {"archc decode + lower": [], "hand-written + symbolic_trace":
                                      [], "archc cost model": [], "archc load (parse + check)": []}
    for _ in range(args.runs):
        for name, run in (("archc decode + lower", lambda: by_archc(space)),
                          ("hand-written + symbolic_trace", by_hand),
                          ("archc cost model", lambda: cost(arch)),
                          ("archc load (parse + check)", lambda: archc.load(SPEC))):
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    med = {name: statistics.median(xs) for name, xs in times.items()}
    print(f"{LAYERS} layers, d = {D}, {cost(arch).params:,} parameters; {args.runs} runs each; "
          f"{platform.machine()}, Python {platform.python_version()}, torch {torch.__version__}")
    print("| step | median (ms) | min (ms) |\n|---|---|---|")
    for name, xs in times.items():
        print(f"| {name} | {1000 * med[name]:.1f} | {1000 * min(xs):.1f} |")
    ratio = med["archc decode + lower"] / med["hand-written + symbolic_trace"]
    print(f"\nratio archc / hand-written + trace: {ratio:.2f} (target ≤ 1.0)")


if __name__ == "__main__":
    main()

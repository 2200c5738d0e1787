"""A 12-layer hyper-connected Transformer compiled by archc, against the same Transformer with
plain residuals; and the fused sites against the plain per-token ones inside it.

Run:  python benchmarks/hyper_transformer.py [--repeats 5] [--plain-repeats 3] [--threads 2]
      [--out FILE]

The network: tokens → embedding (vocab 256, d 256) → 12 × (pre-norm attention, 4 heads, causal;
pre-norm MLP, ratio 4) → layernorm → lm_head, compiled from a spec; the hyper variants put the
12 layers in `hyper(streams = 4, mix = …)` (24 sites, collapse by sum). Each step is forward +
backward of a fixed upstream gradient, batch 8 × 256 tokens, two CPU threads (`--threads`: on
an oversubscribed machine one thread avoids OpenMP's spinning, which can cost 10×).

Table 1 (issue 5's target: ≤ 1.15×): every variant's time over the plain-residual network's in
the same round, the variants interleaved round by round; the median over rounds.

Table 2 (target: ≥ 1.5× for mhc and mhc_lite): the same compiled network with its Connection
modules swapped for `PlainConnection.from_fast` (tests/library/hyper_plain.py: the papers'
equations one token and one stream at a time, sharing the fast modules' parameters) and its
depth connections for the plain stream-by-stream one. The plain sites loop in Python over
tokens, so this table runs on a small batch (1 × 16 tokens) that they finish in seconds; the
ratio is plain time over fused time, median over rounds.
"""

from __future__ import annotations

import argparse
import copy
import datetime
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import fx, nn

import archc

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "library"))
from bench_args import positive  # noqa: E402
from hyper_plain import PlainConnection, plain_depth_connection  # noqa: E402

MIXES = {"hc (static)": "hc", "hc (dynamic)": "hc(dynamic = true)", "mhc": "mhc",
         "mhc_lite": "mhc_lite", "kromhc": "kromhc", "shc": "shc"}
LAYERS = """repeat 12 {
            residual { layernorm; attention(heads = 4, causal = true) }
            residual { layernorm; mlp(ratio = 4) }
        }"""


def network(mix: str | None, tokens: int) -> fx.GraphModule:
    """The compiled network: plain residuals (mix None) or hyper(streams = 4, mix = mix)."""
    body = LAYERS if mix is None else f"hyper(streams = 4, mix = {mix}) {{\n{LAYERS}\n}}"
    text = (f"space transformer {{\n input tokens: int[{tokens}]\n"
            f" embedding(vocab = 256, dim = 256)\n {body}\n layernorm\n lm_head(256)\n}}\n")
    return archc.compile(archc.loads(text, name="transformer.arch"), {}).module


def plain_sites(gm: fx.GraphModule) -> fx.GraphModule:
    """`gm` with every Connection replaced by its PlainConnection (same parameters) and the
    depth connections by the plain stream-by-stream function."""
    for name, module in list(gm.named_children()):
        if type(module).__name__ == "Connection":
            setattr(gm, name, PlainConnection.from_fast(module))
    for node in gm.graph.nodes:
        if node.op == "call_function" and getattr(node.target, "__name__", "") == \
                "depth_connection":
            node.target = plain_depth_connection
    gm.recompile()
    return gm


def training_step(gm: nn.Module, batch: int, tokens: int,
                  device: torch.device | None = None) -> Callable[[], None]:
    """One forward + backward of a fixed batch and upstream gradient (made on the CPU from a
    fixed seed, then moved to `device`), untimed: benchmarks/hyper_gpu.py times it on a GPU."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (batch, tokens), generator=generator).to(device)
    grad = torch.randn(batch, tokens, 256, generator=generator).to(device)

    def step() -> None:
        gm.zero_grad(set_to_none=True)
        gm(x).backward(grad)
    return step


def step_timer(gm: fx.GraphModule, batch: int, tokens: int) -> Callable[[], float]:
    """A function timing one forward + backward (seconds, wall clock)."""
    step = training_step(gm, batch, tokens)

    def run() -> float:
        start = time.perf_counter()
        step()
        return time.perf_counter() - start
    return run


def rounds(timers: dict[str, Callable[[], float]], repeats: int) -> dict[str, list[float]]:
    """Each timer once per round (after one warm-up round), interleaved."""
    for run in timers.values():
        run()
    times: dict[str, list[float]] = {name: [] for name in timers}
    for _ in range(repeats):
        for name, run in timers.items():
            times[name].append(run())
    return times


def overhead_table(repeats: int) -> list[str]:
    timers = {"plain residual": step_timer(network(None, 256), 8, 256)}
    timers |= {name: step_timer(network(mix, 256), 8, 256) for name, mix in MIXES.items()}
    times = rounds(timers, repeats)
    base = times["plain residual"]
    lines = ["| network | median step (s) | × plain residual (median of rounds) | ≤ 1.15× |",
             "|---|---|---|---|"]
    for name, own in times.items():
        ratio = statistics.median(t / b for t, b in zip(own, base, strict=True))
        ok = "" if name == "plain residual" else ("yes" if ratio <= 1.15 else "no")
        lines.append(f"| {name} | {statistics.median(own):.3f} | {ratio:.3f} | {ok} |")
    return lines


def fused_table(repeats: int) -> list[str]:
    lines = ["| mix | fused step (s) | plain step (s) | plain / fused | target |",
             "|---|---|---|---|---|"]
    for name, mix in MIXES.items():
        fused = network(mix, 16)
        plain = plain_sites(copy.deepcopy(fused))  # the same weights
        times = rounds({"fused": step_timer(fused, 1, 16), "plain": step_timer(plain, 1, 16)},
                       repeats)
        ratio = statistics.median(p / f for p, f in zip(times["plain"], times["fused"],
                                                        strict=True))
        target = ("≥ 1.5×: " + ("yes" if ratio >= 1.5 else "no")) if mix in ("mhc", "mhc_lite") \
            else ""
        lines.append(f"| {name} | {statistics.median(times['fused']):.4f} | "
                     f"{statistics.median(times['plain']):.4f} | {ratio:.1f} | {target} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=positive, default=5, help="rounds for table 1")
    parser.add_argument("--plain-repeats", type=positive, default=3, help="rounds for table 2")
    parser.add_argument("--out", type=Path, help="append the tables to this markdown file")
    parser.add_argument("--threads", type=positive, default=2, help="torch intra-op threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    started = time.perf_counter()
    first = overhead_table(args.repeats)
    second = fused_table(args.plain_repeats)
    text = "\n".join([
        "## Hyper-connected transformer (issue 5)", "",
        f"`python benchmarks/hyper_transformer.py --repeats {args.repeats} --plain-repeats "
        f"{args.plain_repeats} --threads {args.threads}` on "
        f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, "
        f"torch {torch.__version__}, "
        f"{datetime.date.today().isoformat()}; single times are noisy: compare the ratios "
        "(variants interleaved, medians of per-round "
        f"ratios). Whole run: {time.perf_counter() - started:.0f} s.", "",
        "12 layers, d 256, 4 heads, MLP ratio 4, batch 8 × 256 tokens, forward + backward; "
        "hyper variants: 4 streams, 24 sites, sum collapse.", "", *first, "",
        "Fused sites against the plain per-token reference inside the same network "
        "(batch 1 × 16 tokens: the plain sites loop over tokens in Python).", "", *second, ""])
    print(text)
    if args.out:
        with args.out.open("a", encoding="utf-8") as out:
            out.write(text + "\n")


if __name__ == "__main__":
    main()

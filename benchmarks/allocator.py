"""Training steps with glibc's default malloc against malloc told to keep freed memory.

Run:  python benchmarks/allocator.py [--rounds 2] [--steps 20] [--threads 2]

Why it was measured: with glibc's default thresholds a block above the mmap threshold (128 KiB,
raised adaptively up to 32 MiB) is a fresh mmap, unmapped on free, and the heap's top goes back
to the system once more than twice the threshold is free; the next step then page-faults that
memory in again. benchmarks/hyper_site.py's x + mlp(x) takes about 7,000 faults per step that
way, and 30% less time with both thresholds at 1 GiB (`mallopt`), the "kept" setting here. Does
training gain? Each workload is a compiled network trained by archc's own trainer (`Task.fit`:
AdamW, gradient clipping, a cosine schedule, the loss), first a few steps to warm up, then 5
and 5 + `--steps` optimizer steps timed by the trainer: the difference is `--steps` steps
without the epoch's validation pass. The setting is process-wide, so each run is its own child
process; the two settings alternate for `--rounds` rounds and the table gives medians, with the
minor page faults per step of the longer run (its validation pass included) and the child's
peak resident memory. (The answer, in
benchmarks/RESULTS.md: no step got faster and peak memory grew, so archc leaves malloc alone.)
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import json
import platform
import resource
import statistics
import subprocess
import sys
import time

from bench_args import positive

LAYERS = """repeat 6 {{
            residual {{ layernorm; attention(heads = 4, causal = true) }}
            residual {{ layernorm; mlp(ratio = 4) }}
        }}"""
TRANSFORMER = """space lm {{
    input tokens: int[t]
    embedding(vocab = task.vocab, dim = 256)
    {body}
    layernorm
    lm_head(task.vocab)
}}
train {{ batch = 16 }}"""
DIGITS = """space cnn {
    input image: float[1, 8, 8]
    conv2d(64, k = 3)
    batchnorm
    relu
    repeat 2 { residual { conv_bn_relu(k = 3); conv_bn_relu(k = 3) } }
    classifier(task.classes)
}
train { batch = 64 }"""
WORKLOADS = {
    "charlm, 6-layer transformer, plain residuals": ("charlm", None),
    "charlm, the same in hyper(streams = 4, mix = hc)": ("charlm", "hc"),
    "charlm, the same in hyper(streams = 4, mix = mhc)": ("charlm", "mhc"),
    "digits, 5-conv residual CNN, width 64": ("digits", None),
}
"""Name → (task, mix): transformers d 256 × 128 tokens, batch 16; the CNN batch 64."""


def spec_text(task: str, mix: str | None) -> str:
    if task == "digits":
        return DIGITS
    body = LAYERS.format() if mix is None else (
        f"hyper(streams = 4, mix = {mix}) {{\n{LAYERS.format()}\n}}")
    return TRANSFORMER.format(body=body)


def keep_freed_memory() -> bool:
    """Both glibc thresholds at 1 GiB: blocks below it come from the heap, and it is never
    trimmed; whether glibc took both."""
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    trim, mmap = -1, -3  # M_TRIM_THRESHOLD, M_MMAP_THRESHOLD of <malloc.h>
    return bool(libc.mallopt(trim, ctypes.c_int(1 << 30))
                and libc.mallopt(mmap, ctypes.c_int(1 << 30)))


def child(name: str, steps: int, threads: int, kept: bool) -> None:
    """One run: warm up, train `steps` steps, print JSON of what it measured."""
    if kept and not keep_freed_memory():
        raise SystemExit("glibc refused the thresholds")
    import torch

    import archc
    from archc.search.tasks import get_task
    from archc.search.trainer import compile_seeded, train_settings

    torch.set_num_threads(threads)
    task_name, mix = WORKLOADS[name]
    task = get_task(task_name)
    space = archc.loads(spec_text(task_name, mix), name="bench.arch")
    settings = train_settings(space, {})
    compiled = compile_seeded(space, {}, task, seed=0)
    task.fit(compiled, settings, seed=0, budget_steps=3)  # warm: the heap reaches its size
    spent: dict[int, tuple[float, int]] = {}
    for count in (5, 5 + steps):  # the difference leaves out the epoch's one validation pass
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        result = task.fit(compiled, settings, seed=1, budget_steps=count)
        assert result.ok and result.steps == count, result
        spent[count] = (result.seconds,
                        resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults)
    (short, _), (long, long_faults) = spent[5], spent[5 + steps]
    print(json.dumps({"step_s": (long - short) / steps,
                      "faults": long_faults / (5 + steps),  # the validation pass included
                      "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def run_child(name: str, steps: int, threads: int, system: bool) -> dict[str, float]:
    command = [sys.executable, __file__, "--child", name, "--steps", str(steps), "--threads",
               str(threads), *(() if system else ("--kept",))]
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    measured: dict[str, float] = json.loads(out.splitlines()[-1])
    return measured


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=positive, default=2)
    parser.add_argument("--steps", type=positive, default=20)
    parser.add_argument("--threads", type=positive, default=2)
    parser.add_argument("--child", choices=tuple(WORKLOADS), help=argparse.SUPPRESS)
    parser.add_argument("--kept", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if platform.libc_ver()[0] != "glibc":
        parser.error("this compares glibc malloc settings; this Python does not run on glibc")
    if args.child:
        child(args.child, args.steps, args.threads, args.kept)
        return
    start = time.perf_counter()
    rows = []
    for name in WORKLOADS:
        runs: dict[bool, list[dict[str, float]]] = {True: [], False: []}
        for _ in range(args.rounds):
            for system in (True, False):
                runs[system].append(run_child(name, args.steps, args.threads, system))

        def median(system: bool, key: str, runs: dict = runs) -> float:
            return statistics.median(run[key] for run in runs[system])
        rows.append(f"| {name} | {1e3 * median(True, 'step_s'):.1f} | "
                    f"{1e3 * median(False, 'step_s'):.1f} | "
                    f"{median(True, 'step_s') / median(False, 'step_s'):.2f} | "
                    f"{median(True, 'faults'):,.0f} | {median(False, 'faults'):,.0f} | "
                    f"{median(True, 'peak_mb'):,.0f} | {median(False, 'peak_mb'):,.0f} |")
    print(f"`python benchmarks/allocator.py --rounds {args.rounds} --steps {args.steps} "
          f"--threads {args.threads}`: {platform.machine()}, glibc "
          f"{platform.libc_ver()[1]}, {args.threads} threads, "
          f"{time.strftime('%Y-%m-%d')}; medians of {args.rounds} child processes each, "
          f"whole run {time.perf_counter() - start:.0f} s.\n")
    print("| workload | step ms, system malloc | step ms, kept | system / kept "
          "| faults per step, system | kept | peak MB, system | kept |")
    print("|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()

"""How long `archc check` takes on a 300-line spec, wall clock, interpreter start-up included.

Run:  python benchmarks/check_speed.py [--runs 20]

Each command runs `--runs` times in a fresh process, interleaved so machine noise hits them
alike; the table gives the median and the ratio to a bare `python -c pass`, which is the floor
any command pays. The target (issue 2) is a median under 0.3 s for `archc check`.
"""

from __future__ import annotations

import argparse
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench_args import positive

SPEC = Path(__file__).parent / "specs" / "large_300.arch"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=positive, default=20)
    args = parser.parse_args()
    archc = shutil.which("archc") or sys.exit("archc is not installed (pip install -e .)")
    commands = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "archc.load (API)": [sys.executable, "-c", f"import archc; archc.load({str(SPEC)!r})"],
        "archc check --json": [archc, "check", "--json", str(SPEC)],
        "archc check": [archc, "check", str(SPEC)],
    }
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(args.runs):
        for name, cmd in commands.items():
            start = time.perf_counter()
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
            times[name].append(time.perf_counter() - start)
    lines = sum(1 for _ in SPEC.open())
    floor = statistics.median(times["python -c pass"])
    print(f"spec: {SPEC.name} ({lines} lines); {args.runs} runs each; "
          f"{platform.processor() or platform.machine()}, Python {platform.python_version()}")
    print("| command | median (s) | min (s) | × python -c pass |\n|---|---|---|---|")
    for name, xs in times.items():
        med = statistics.median(xs)
        print(f"| `{name}` | {med:.3f} | {min(xs):.3f} | {med / floor:.1f} |")


if __name__ == "__main__":
    main()

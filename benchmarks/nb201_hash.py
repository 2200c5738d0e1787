"""How many distinct networks NAS-Bench-201's 15,625 cells build, by archc's structural hash,
against the benchmark's own 6,466 `UniqueString` classes — and why the two differ.

Run:  python benchmarks/nb201_hash.py [--workers 2] [--limit N] [--exact]

Every point of examples/nb201.arch is decoded (task.classes = 10) and hashed. Each point maps to
its row of ../shared/benchmarks/nb201/nb201_200epoch.csv by its `ArchitectureString`. The
differences are explained as a chain of partitions: NB201's string (re-implemented here from
`CellStructure.to_unique_str(consider_zero=True)`, and checked to reproduce the table), then the
string with one of its blind spots fixed at a time, then weight sharing, which a string of
op names cannot see. The last partition must be the hash's; `unexplained` counts what is not.
`--exact` also checks that every hash class is one isomorphism class (no WL collision).
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from multiprocessing import Pool
from pathlib import Path

import networkx as nx

import archc
from archc.compiler.arch import Arch
from archc.compiler.decode import decode
from archc.compiler.identity import hashed_graph, prune, structural_hash
from archc.library.base import implementation

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "examples" / "nb201.arch"
TABLES = Path(os.environ.get("ARCHC_NB201", ROOT.parent / "shared" / "benchmarks" / "nb201"))
"""The NAS-Bench-201 tables: $ARCHC_NB201, else ../shared/benchmarks/nb201 beside the checkout."""
TABLE = TABLES / "nb201_200epoch.csv"
KEYS = ("nb_cell.n1.op", "nb_cell.n2.op", "nb_cell.n2.op#2",  # (1←0); (2←0), (2←1)
        "nb_cell.return.op", "nb_cell.return.op#2", "nb_cell.return.op#3")  # (3←0, 1, 2)
OPS = {"none": "none", "skip": "skip_connect", "conv1": "nor_conv_1x1",
       "conv3": "nor_conv_3x3", "pool": "avg_pool_3x3"}
CELL = ((0,), (0, 1), (0, 1, 2))
"""Each cell node's inputs, in the benchmark's edge order."""


def arch_string(point: dict[str, str]) -> str:
    """`|nor_conv_3x3~0|+|…~0|…~1|+|…~0|…~1|…~2|`: the benchmark's key of a point."""
    ops = iter(OPS[point[k]] for k in KEYS)
    return "+".join("|" + "|".join(f"{next(ops)}~{i}" for i in ins) + "|" for ins in CELL)


def point_of(text: str) -> dict[str, str]:
    label = {v: k for k, v in OPS.items()}
    return dict(zip(KEYS, (label[op] for op in re.findall(r"(\w+)~\d", text)), strict=True))


def cell_string(ops: Sequence[str], zero_sums: bool = False, flatten: bool = False,
                conv_of_zero: bool = False) -> str:
    """NB201's UniqueString of a cell; each flag fixes one of its blind spots:

    zero_sums     `#` (zero) terms leave a sum and an all-zero sum is zero, so skip/pool/none
                  of it is zero too (NB201 keeps `#+#` as a term and only knows node 1 as zero)
    flatten       skip of a sum adds its terms (NB201 adds the joined string as one term, so
                  `a+c` + `b` sorts differently from `b+c` + `a`)
    conv_of_zero  a conv of zero is batchnorm's learned shift β, not zero (NB201 drops it)
    """
    nodes: list[tuple[str, ...]] = [("0",)]
    edges = iter(ops)
    for inputs in CELL:
        terms: list[str] = []
        for i in inputs:
            op, value = next(edges), nodes[i]
            zero = value == () if zero_sums else value == ("#",)
            if op == "none" or (zero and not (conv_of_zero and op.startswith("nor_conv"))):
                terms += [] if zero_sums else ["#"]
            elif op == "skip_connect":
                terms += value if flatten else ["+".join(value)]
            else:
                terms.append(f"({'+'.join(value) or '#'})@{op}")
        nodes.append(tuple(sorted(terms)))
    return "+".join(nodes[-1]) or "#"


STEPS: tuple[tuple[str, Callable[[Sequence[str]], str]], ...] = (
    ("UniqueString", cell_string),
    ("+ zero sums", lambda o: cell_string(o, zero_sums=True)),
    ("+ flattened skips", lambda o: cell_string(o, zero_sums=True, flatten=True)),
    ("+ conv of zero", lambda o: cell_string(o, True, True, conv_of_zero=True)),
)


@dataclass
class Result:
    counts: dict[str, int] = field(default_factory=dict)
    joins: dict[str, tuple[int, int, str]] = field(default_factory=dict)
    direct: tuple[int, int] = (0, 0)
    unexplained: int = 0
    collisions: tuple[int, int] | None = None  # (pairs compared, pairs not isomorphic)
    seconds: dict[str, float] = field(default_factory=dict)


def _hash(point: dict[str, str]) -> tuple[str, float, float]:
    start = time.perf_counter()
    arch = decode(_space(), point, task={"classes": 10})
    middle = time.perf_counter()
    digest = structural_hash(arch)
    return digest, middle - start, time.perf_counter() - middle


def _space(cache: dict[str, archc.Space] = {}) -> archc.Space:  # noqa: B006 (per process)
    if "nb201" not in cache:
        cache["nb201"] = archc.load(SPEC)
    return cache["nb201"]


def live_params(arch: Arch) -> int:
    """Parameters of the pruned network (dead modules do not count)."""
    pruned, total = prune(arch), 0
    for node, data in pruned.graph.nodes(data=True):
        args = pruned.args(node)
        if data["kind"] == "block" and args:
            total += implementation(data["name"]).params(data["h"], pruned.type_of(args[0]))
    return total


def _differences(a: dict[str, str], b: dict[str, str]) -> tuple[int, int]:
    """(classes of `a` that `b` joins to another, extra classes `b` splits `a` into); so
    |b| = |a| - joined + split."""
    in_b, in_a = defaultdict(set), defaultdict(set)
    for key in a:
        in_b[b[key]].add(a[key])
        in_a[a[key]].add(b[key])
    return sum(len(s) - 1 for s in in_b.values()), sum(len(s) - 1 for s in in_a.values())


def run(workers: int = 2, limit: int | None = None, exact: bool = False) -> Result:
    """Hash every point (or the first `limit`) and explain each difference from NB201."""
    with TABLE.open() as rows:
        table = {r["ArchitectureString"]: r["UniqueString"] for r in csv.DictReader(rows)}
    points = [dict(p) for p in _space().enumerate()][:limit]
    start = time.perf_counter()
    with Pool(workers) as pool:
        done = pool.map(_hash, points, chunksize=100)
    result = Result(seconds={"wall": time.perf_counter() - start,
                             "decode": sum(d[1] for d in done), "hash": sum(d[2] for d in done)})
    keys = [arch_string(p) for p in points]
    hashes = dict(zip(keys, (d[0] for d in done), strict=True))
    ops = {k: [OPS[p[key]] for key in KEYS] for k, p in zip(keys, points, strict=True)}
    mismatch = sum(cell_string(ops[k]) != table[k] for k in keys)
    assert mismatch == 0, f"cell_string differs from the table's UniqueString on {mismatch}"
    result.direct = _differences({k: table[k] for k in keys}, hashes)
    before: dict[str, str] | None = None
    for name, step in STEPS:
        now = {k: step(ops[k]) for k in keys}
        result.counts[name] = len(set(now.values()))
        if before is not None:
            result.joins[name] = (*_differences(before, now), _example(before, now))
        before = now
    result.counts["archc hash"] = len(set(hashes.values()))
    assert before is not None
    result.joins["archc hash"] = (*_differences(before, hashes), _example(before, hashes))
    result.unexplained = _differences(before, hashes)[0] + _sharing_unexplained(before, hashes)
    if exact:
        classes: dict[str, list[str]] = defaultdict(list)
        for key, digest in hashes.items():
            classes[digest].append(key)
        groups = [keys for keys in classes.values() if len(keys) > 1]
        with Pool(workers) as pool:
            bad = sum(pool.map(_not_isomorphic, groups, chunksize=20))
        result.collisions = (sum(len(g) - 1 for g in groups), bad)
    return result


def _not_isomorphic(keys: list[str]) -> int:
    """How many of these points' hashed graphs are not isomorphic to the first one's."""
    graphs = [hashed_graph(decode(_space(), point_of(k), task={"classes": 10})) for k in keys]

    def same(a: dict, b: dict) -> bool:
        return bool(a["label"] == b["label"])

    return sum(not nx.is_isomorphic(graphs[0], g, node_match=same, edge_match=same)
               for g in graphs[1:])


def _sharing_unexplained(strings: dict[str, str], hashes: dict[str, str]) -> int:
    """Hash splits of one fixed-string class whose networks have equal live parameter counts:
    weight sharing must show there (one conv used twice has fewer weights than two)."""
    per_class: dict[str, dict[str, str]] = defaultdict(dict)
    for key in strings:
        per_class[strings[key]].setdefault(hashes[key], key)
    bad = 0
    for reps in (r for r in per_class.values() if len(r) > 1):
        counts = [live_params(decode(_space(), point_of(k), task={"classes": 10}))
                  for k in reps.values()]
        bad += len(counts) - len(set(counts))
    return bad


def _example(a: dict[str, str], b: dict[str, str]) -> str:
    """Two points `b` joins (`=`) and two it splits (`≠`), unlike `a`: architecture strings."""
    found = []
    for first, second, sign in ((b, a, "="), (a, b, "≠")):
        groups: dict[str, dict[str, str]] = defaultdict(dict)
        for key in first:
            groups[first[key]].setdefault(second[key], key)
        pair = next((list(g.values())[:2] for g in groups.values() if len(g) > 1), None)
        if pair:
            found.append(f"{pair[0]} {sign} {pair[1]}")
    return "; ".join(found) or "-"


def report(result: Result, points: int) -> Iterable[str]:
    s = result.seconds
    yield f"points: {points}   distinct archc hashes: {result.counts['archc hash']}   " \
          f"distinct UniqueStrings: {result.counts['UniqueString']}"
    yield f"time: {s['wall']:.1f} s wall; per point {1e3 * s['decode'] / points:.2f} ms " \
          f"decode + {1e3 * s['hash'] / points:.2f} ms prune and hash (one core)"
    joined, split = result.direct
    yield f"one hash, several UniqueStrings: {joined} strings joined to another; one " \
          f"UniqueString, several hashes: {split} extra hashes"
    yield "chain: classes, classes the step joins and splits, and an example of each:"
    for name, count in result.counts.items():
        joined, split, example = result.joins.get(name, (0, 0, ""))
        yield f"  {name:18} {count:5}  joined {joined:4}  split {split:4}  {example}"
    yield f"unexplained differences: {result.unexplained}"
    if result.collisions:
        pairs, bad = result.collisions
        yield f"exact check: {pairs} points compared with their hash class's first, " \
              f"{bad} not isomorphic to it"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--limit", type=int, default=None, help="only the first N points")
    parser.add_argument("--exact", action="store_true", help="check each hash class with "
                        "nx.is_isomorphic (adds about a minute)")
    args = parser.parse_args()
    result = run(args.workers, args.limit, args.exact)
    for line in report(result, args.limit or 15625):
        print(line)


if __name__ == "__main__":
    main()

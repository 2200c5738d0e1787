"""Every example spec loads, samples valid points that round-trip through JSON, and has the size
its structure says. The sizes of nb201 and hc_lm are checked against counts made here, by hand,
from the examples' own structure — never with archc's size code."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

import archc
from archc.dsl.point import Point

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _is_library(path: Path) -> bool:
    """A library file holds only defs (for `import`); it has no `space` to load."""
    return not any(line.startswith("space ") for line in path.read_text().splitlines())


SPECS = sorted(p for p in EXAMPLES.glob("*.arch") if not _is_library(p))
LIBRARIES = sorted(p for p in EXAMPLES.glob("*.arch") if _is_library(p))
SEEDS = range(5)


def _load(name: str) -> archc.Space:
    return archc.load(EXAMPLES / name)


def test_the_examples_are_there():
    names = {p.name for p in SPECS}
    assert {"hc_lm.arch", "nb201.arch", "digits_cnn.arch", "mnist1d.arch", "hyperloop.arch",
            "terminator_digits.arch", "terminator_mnist1d.arch",
            "widenet.arch", "phm_cnn.arch"} <= names


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.name)
def test_example_loads(path: Path):
    space = archc.load(path)
    assert space.size >= space.architecture().size >= 1
    assert space.decisions()


@pytest.mark.parametrize("path", LIBRARIES, ids=lambda p: p.name)
def test_library_file_is_imported_by_an_example(path: Path):
    importers = [s for s in SPECS if f'import "{path.name}"' in s.read_text()]
    assert importers, f"{path.name} holds defs but no example imports it"


def test_readme_lists_every_example():
    readme = (EXAMPLES / "README.md").read_text()
    for path in (*SPECS, *LIBRARIES):
        assert f"`{path.name}`" in readme


@pytest.mark.parametrize("uniform", ["decision", "arch"])
@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.name)
def test_samples_validate_and_round_trip(path: Path, uniform: str):
    space = archc.load(path)
    for seed in SEEDS:
        point = space.sample(seed=seed, uniform=uniform)
        assert space.validate(point) == point
        again = Point.from_json(point.to_json())
        assert again == point
        assert space.validate(again) == point
        assert space.sample(seed=seed, uniform=uniform) == point  # seeded: reproducible


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.name)
def test_neighbours_are_points_of_the_space(path: Path):
    space = archc.load(path)
    point = space.sample(seed=1)
    neighbours = space.neighbours(point, seed=1)
    assert neighbours and point not in neighbours
    for other in neighbours[:20]:
        space.validate(other)


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.name)
def test_next_decision_walks_to_a_complete_point(path: Path):
    space = archc.load(path)
    partial: dict = {}
    while (site := space.next_decision(partial)) is not None:
        partial[site.path] = site.domain.values()[-1] if site.domain.discrete else \
            site.domain.low
    space.trace(partial)  # complete: every active decision has a value


# ── NAS-Bench-201 ────────────────────────────────────────────────────────────────────────────

NB201_OPS = ["none", "skip", "conv1", "conv3", "pool"]
NB201_EDGES = [  # the benchmark's edge order: (1←0), (2←0), (2←1), (3←0), (3←1), (3←2)
    "nb_cell.n1.op", "nb_cell.n2.op", "nb_cell.n2.op#2",
    "nb_cell.return.op", "nb_cell.return.op#2", "nb_cell.return.op#3",
]


def test_nb201_is_the_benchmark():
    space = _load("nb201.arch")
    assert space.size == 15_625 == len(NB201_OPS) ** len(NB201_EDGES)
    decisions = space.decisions()
    assert [path for path, _ in decisions] == NB201_EDGES
    for _, node in decisions:
        assert [key for key, _ in node.options] == NB201_OPS


def test_nb201_enumerates_every_cell_once():
    points = list(_load("nb201.arch").enumerate())
    cells = {tuple(p[e] for e in NB201_EDGES) for p in points}
    assert len(points) == len(cells) == 15_625
    assert cells == set(itertools.product(NB201_OPS, repeat=6))


# ── hc_lm: an independent count ──────────────────────────────────────────────────────────────

def hc_lm_architectures():
    """Every architecture of examples/hc_lm.arch, written out from the spec by hand: one tuple
    (d, heads, streams, mix, layers) per point of `space.architecture()`."""
    widths, heads, streams = (128, 192, 256), (2, 4, 8), (2, 4)
    mixes = [("hc", dynamic) for dynamic in (False, True)]
    mixes += [("mhc", iters) for iters in range(5, 21)]
    mixes += [("mhc_lite",), ("kromhc",), ("shc",)]
    layer = [("mlp", ratio) for ratio in (2, 4)]
    layer += [("moe", experts, top_k) for experts in (4, 8) for top_k in (1, 2)]
    for d, h, s, mix in itertools.product(widths, heads, streams, mixes):
        for n in range(2, 5):
            for layers in itertools.product(layer, repeat=n):
                yield d, h, s, mix, layers


def _hc_lm_tuple(p: Point) -> tuple:
    mix = p["hyper.mix"]
    detail = {"hc": ("hyper.mix.hc.dynamic",), "mhc": ("hyper.mix.mhc.iters",)}.get(mix, ())
    layers = []
    for i in range(p["layers"]):
        kind = p[f"layers[{i}].one_of"]
        fields = ("mlp.ratio",) if kind == "mlp" else ("moe.experts", "moe.top_k")
        layers.append((kind, *(p[f"layers[{i}].{f}"] for f in fields)))
    return (p["d"], p["heads"], p["hyper.streams"], (mix, *(p[k] for k in detail)),
            tuple(layers))


def test_hc_lm_size_matches_a_count_by_hand():
    space = _load("hc_lm.arch")
    count = sum(1 for _ in hc_lm_architectures())
    assert 50_000 <= count <= 600_000  # small enough to enumerate
    assert space.architecture().size == count
    assert space.size == count * 2  # train.batch is choice(32, 64); train.lr counts once


def test_hc_lm_samples_are_architectures_of_the_count():
    known = set(hc_lm_architectures())
    space = _load("hc_lm.arch").architecture()
    for seed in SEEDS:
        for uniform in ("decision", "arch"):
            assert _hc_lm_tuple(space.sample(seed=seed, uniform=uniform)) in known


@pytest.mark.slow
def test_hc_lm_enumeration_matches_the_count_by_hand():
    space = _load("hc_lm.arch").architecture()
    seen = {_hc_lm_tuple(p) for p in space.enumerate(constrained=False)}
    expected = set(hc_lm_architectures())
    assert len(seen) == len(expected) == space.size
    assert seen == expected


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.name)
def test_search_block_makes_a_plan(path: Path, tmp_path: Path):
    """`archc search EXAMPLE` starts: its searcher fits its objectives, their metrics exist on
    its task, and the task loads (checked before any study is made)."""
    from archc.search.plan import make_plan

    plan = make_plan(archc.load(path), storage=f"sqlite:///{tmp_path / 'archc.db'}")
    assert plan.metric_names and plan.task.name

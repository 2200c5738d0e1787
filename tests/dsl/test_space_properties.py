"""Properties of spaces over randomly generated small specs (hypothesis).

`specs()` writes the TEXT of a valid spec from the language's constructs — choice, int, bool and
float decisions, `one_of` as a value and as a statement, `optional`, `repeat` with a fixed or a
variable count, `let` ties with an occasional `require`, and defs — so the properties run
through the parser and checker exactly as a user's file does.
"""

from __future__ import annotations

import collections
import random
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from scipy.stats import chisquare

import archc
from archc.dsl.point import Point
from archc.errors import PointError

# ── a grammar of small valid specs ───────────────────────────────────────────────────────────

LEAVES = [
    "linear(choice(4, 8))", "linear(int(2..4))", "linear(8, bias = bool)", "relu", "identity",
    "mlp(ratio = choice(2, 4))", 'activation(fn = choice("relu", "gelu", "tanh"))',
    "dropout(p = choice(0.0, 0.1))", "layernorm(affine = bool)",
    "hyper(streams = choice(1, 2), mix = one_of(hc(dynamic = bool), mhc(iters = int(1..3)))) "
    "{ mlp }",
    "moe(experts = choice(2, 4), expert = one_of(mlp(ratio = choice(1, 2)), identity))",
]
FLOAT_LEAVES = ["dropout(p = float(0.0..0.5))", "mlp(ratio = float(1.0..4.0))"]


@dataclass
class _Names:
    """Fresh names for lets and labels within one generated spec."""

    lets: list[str] = field(default_factory=list)
    count: int = 0

    def fresh(self, stem: str) -> str:
        self.count += 1
        return f"{stem}{self.count}"


@st.composite
def statement(draw: st.DrawFn, names: _Names, depth: int, floats: bool) -> str:
    kinds = ["leaf", "leaf", "tie", "let"] + (
        ["one_of", "optional", "repeat", "group", "def"] if depth < 2 else [])
    kind = draw(st.sampled_from(kinds))
    if kind == "leaf":
        return draw(st.sampled_from(LEAVES + (FLOAT_LEAVES if floats else [])))
    if kind == "let":  # a tie: one decision, used by two layers
        name = names.fresh("w")
        names.lets.append(name)
        domain, value = draw(st.sampled_from([("choice(4, 8, 16)", 8), ("int(1..3)", 2)]))
        require = draw(st.sampled_from(["", f"\nrequire {name} != {value}"]))
        return f"let {name} = {domain}{require}\nlinear({name})\nlinear({name})"
    if kind == "tie" and names.lets:
        return f"linear({draw(st.sampled_from(names.lets))})"
    if kind == "tie":
        return "relu"
    inner = draw(nested(names, depth + 1, floats))
    if kind == "one_of":
        other = draw(nested(names, depth + 1, floats))
        label = draw(st.sampled_from(["", names.fresh("pick") + " "]))
        return f"one_of {label}{{\n{{ {inner} }}\n{{ {other} }}\n}}"
    if kind == "optional":
        return f"optional {draw(st.sampled_from(['', names.fresh('maybe') + ' ']))}{{ {inner} }}"
    if kind == "repeat":
        count = draw(st.sampled_from(["2", "int(0..2)", "choice(1, 3)", "int(1..2)"]))
        share = draw(st.sampled_from(["", "", " share = arch"]))
        return f"repeat {names.fresh('r')} in {count}{share} {{ {inner} }}"
    if kind == "group":
        return f"{{ {inner} }}"
    return f"residual {{ {inner} }}"


@st.composite
def block(draw: st.DrawFn, names: _Names, depth: int, floats: bool) -> str:
    """One to three statements, separated by `;` or newlines."""
    parts = draw(st.lists(statement(names, depth, floats), min_size=1, max_size=3))
    return "\n".join(parts)


@st.composite
def nested(draw: st.DrawFn, names: _Names, depth: int, floats: bool) -> str:
    """A block in its own scope: its `let`s are not visible after it."""
    outer = list(names.lets)
    text = draw(block(names, depth, floats))
    names.lets[:] = outer
    return text


DEFS = ("def unit(w = choice(4, 8)) { linear(w); relu }\n"
        'def act = activation(fn = choice("relu", "silu"))\n')


@st.composite
def specs(draw: st.DrawFn, floats: bool = True) -> str:
    """The text of a small valid spec (`floats=False`: no continuous decisions)."""
    names = _Names()
    body = draw(block(names, 0, floats))
    uses = draw(st.lists(st.sampled_from(["unit", "unit(16)", "unit(choice(2, 3))", "act"]),
                         max_size=2))
    train = draw(st.sampled_from(["", "train { batch = choice(16, 32) }\n"] + (
        ["train { lr = float(1e-4..1e-2, log) }\n"] if floats else [])))
    lines = "\n".join([body, *uses])
    return f"{DEFS}\nspace s {{\ninput x: float[8, 16]\n{lines}\n}}\n{train}"


def load(text: str) -> archc.Space:
    return archc.loads(text)


PROPERTY = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
seeds = st.integers(min_value=0, max_value=2**32 - 1)

# ── properties ───────────────────────────────────────────────────────────────────────────────


@PROPERTY
@given(specs(), seeds, st.sampled_from(["decision", "arch"]))
def test_sampled_points_validate(text: str, seed: int, uniform: str) -> None:
    space = load(text)
    point = space.sample(seed=seed, uniform=uniform)
    assert space.validate(point) == point
    assert space.sample(seed=seed, uniform=uniform) == point  # seeded: reproducible


@PROPERTY
@given(specs(), seeds)
def test_points_round_trip_through_json(text: str, seed: int) -> None:
    point = load(text).sample(seed=seed)
    again = Point.from_json(point.to_json())
    assert again == point
    assert [type(v) for v in again.values()] == [type(v) for v in point.values()]
    assert hash(again) == hash(point)


@PROPERTY
@given(specs(floats=False))
def test_size_counts_the_enumerated_points(text: str) -> None:
    space = load(text)
    assume(space.size <= 3_000)
    points = list(space.enumerate(constrained=False))
    assert space.size == len(points) == len(set(points))
    allowed = list(space.enumerate())  # those that satisfy every `require`
    assert set(allowed) <= set(points) and allowed
    for point in allowed[:: max(1, len(allowed) // 20)]:
        assert space.validate(point) == point


@PROPERTY
@given(specs(), seeds)
def test_neighbours_validate_and_differ(text: str, seed: int) -> None:
    space = load(text)
    point = space.sample(seed=seed)
    for near in space.neighbours(point, seed=seed):
        assert space.validate(near) == near
        assert near != point


@PROPERTY
@given(specs(), seeds)
def test_next_decision_replays_a_sampled_point(text: str, seed: int) -> None:
    space = load(text)
    point = space.sample(seed=seed, uniform="arch")
    partial: dict = {}
    while (site := space.next_decision(partial)) is not None:
        assert site.path in point and site.path not in partial
        partial[site.path] = point[site.path]
    assert list(partial) == list(point)  # the walk's order is the point's order
    assert Point(partial) == point


@PROPERTY
@given(specs(), seeds)
def test_validate_rejects_missing_extra_and_foreign_values(text: str, seed: int) -> None:
    space = load(text)
    point = space.sample(seed=seed)
    assume(len(point) > 0)
    path = random.Random(seed).choice(list(point))
    missing = {k: v for k, v in point.items() if k != path}
    with pytest.raises(PointError, match="missing decision"):
        space.validate(missing)
    with pytest.raises(PointError, match="not a decision of this space"):
        space.validate({**point, "no.such.decision": 1})
    with pytest.raises(PointError, match="is not in"):
        space.validate({**point, path: "⊥ not a value"})


@PROPERTY
@given(specs(floats=False), seeds)
def test_validate_rejects_inactive_values(text: str, seed: int) -> None:
    space = load(text)
    rng = random.Random(seed)
    points = [space.sample(rng) for _ in range(30)]
    seen = {path: value for p in points for path, value in p.items()}
    inactive = [(p, path) for p in points for path in seen if path not in p]
    assume(inactive)
    point, path = rng.choice(inactive)
    with pytest.raises(PointError, match="not active"):
        space.validate({**point, path: seen[path]})


# ── uniformity ───────────────────────────────────────────────────────────────────────────────

UNEQUAL = """
space s {
    input x: float[8, 16]
    one_of {
        linear(choice(4, 8, 16, 32, 64, 128))
        relu
        mlp(ratio = choice(2, 4))
    }
    optional { dropout(p = choice(0.1, 0.2, 0.3)) }
}
"""
"""Branches of 6, 1 and 2 points times an optional of 1 + 3: 36 architectures, unequally
reached by uniform-per-decision sampling (relu is 1/3 of the draws but 1/9 of the points)."""


def _frequencies(space: archc.Space, uniform: str, draws: int) -> list[int]:
    rng = random.Random(20240601)
    counts = collections.Counter(space.sample(rng, uniform=uniform) for _ in range(draws))
    points = list(space.enumerate())
    assert set(counts) <= set(points)
    return [counts[p] for p in points]


def test_uniform_over_architectures_passes_chi_square() -> None:
    space = load(UNEQUAL)
    assert space.size == 36
    observed = _frequencies(space, "arch", 7_200)
    assert chisquare(observed).pvalue > 0.001


def test_uniform_per_decision_is_not_uniform_over_architectures() -> None:
    space = load(UNEQUAL)
    observed = _frequencies(space, "decision", 7_200)
    assert chisquare(observed).pvalue < 1e-6


def test_group_alternatives_in_a_repeat_are_keyed_apart() -> None:
    """Found by these properties: inside a repeat, both `{ … }` alternatives were keyed by the
    repeat's path prefix (`r[*]`), so enumeration never advanced past them."""
    space = load("space s {\n input x: float[8]\n repeat r in int(1..2) {\n"
                 " one_of {\n { relu }\n { identity }\n }\n }\n}\n")
    points = list(space.enumerate())
    assert len(points) == space.size == 6
    assert {p["r[0].one_of"] for p in points} == {"alt1", "alt2"}

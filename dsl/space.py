"""The Space: a checked spec as a tree of decisions, and everything searchers ask of it.

A Space answers: its exact size (a big integer, counting conditional branches and variable
repeats), enumeration of small spaces, seeded sampling (uniform per decision, or uniform over
whole architectures by weighting each branch by the size of its subtree), validation of a point,
the next undecided decision of a partial point (the sequential view MCTS walks), and the
neighbours of a point. `require` constraints hold for every point it hands out.

>>> from archc import loads
>>> space = loads("space s {\\n input x: float[4]\\n"
...               "repeat n in int(1..2) { linear(choice(8, 16)) }\\n}")
>>> space.size                     # n = 1: 2 points; n = 2: 2 * 2 points
6
>>> dict(space.sample(seed=0))
{'n': 2, 'n[0].linear.out': 16, 'n[1].linear.out': 8}
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import cast

from archc.dsl import ir
from archc.dsl.domain import FloatRange, Scalar
from archc.dsl.point import Point
from archc.dsl.sampling import Sizes, choose_uniform_arch, failing_requires
from archc.dsl.walk import Site, Trace, site_domain, walk
from archc.errors import Diagnostic, PointError, SpaceError, Span, did_you_mean

__all__ = ["Space", "count_text"]

MAX_TRIES = 10_000
"""Samples drawn before concluding that no point satisfies the constraints."""


class _Undecided(Exception):
    def __init__(self, site: Site) -> None:
        self.site = site


@dataclass(frozen=True, eq=False)
class Space:
    """A checked search space: the network's steps (`body`), the training hyperparameters
    (`train`, `let`s at `train.<field>`), and the `search { }` defaults."""

    name: str
    body: ir.Seq
    train: ir.Seq = field(default_factory=lambda: ir.Seq(()))
    search: Mapping[str, object] = field(default_factory=dict)
    span: Span | None = field(default=None, repr=False)

    @cached_property
    def root(self) -> ir.Seq:
        return ir.Seq((*self.body.steps, *self.train.steps))

    @cached_property
    def sizes(self) -> Sizes:
        return Sizes()

    # ── size and structure ───────────────────────────────────────────────────────────────────

    @property
    def size(self) -> int:
        """Number of points (a float decision counts once: sizes are up to continuous ones);
        `require` constraints are not applied."""
        return self.sizes.of(self.root)

    @property
    def log10_size(self) -> float:
        return _log10(self.size)

    def architecture(self) -> Space:
        """This space without its `train { }` decisions: its size counts architectures."""
        return Space(self.name, self.body, ir.Seq(()), self.search, self.span)

    def decisions(self) -> list[tuple[str, ir.Node]]:
        """Every decision site of the spec (active or not) as (path template, node)."""
        out: list[tuple[str, ir.Node]] = []
        _collect_sites(self.root, out)
        return out

    @cached_property
    def continuous(self) -> tuple[str, ...]:
        """Path templates of the float (continuous) decisions."""
        return tuple(p for p, n in self.decisions()
                     if isinstance(n, ir.Decide) and not n.domain.discrete)

    @cached_property
    def requires(self) -> tuple[ir.Require, ...]:
        out: list[tuple[str, ir.Node]] = []
        _collect_sites(self.root, out, want=ir.Require)
        return tuple(n for _, n in out if isinstance(n, ir.Require))

    def summary(self) -> dict[str, object]:
        """The space as plain data (what `archc check --json` prints): exact sizes, every
        decision site with its domain, the constraints and the search defaults."""
        return {
            "space": self.name,
            "size": self.size,
            "log10_size": self.log10_size,
            "architectures": self.architecture().size,
            "decisions": [{"path": path, "kind": type(node).__name__.lower(),
                           "domain": site_domain(node).describe()}
                          for path, node in self.decisions()],
            "continuous": list(self.continuous),
            "requires": [{"text": r.text, "deferred": r.deferred} for r in self.requires],
            "search": dict(self.search),
        }

    # ── sampling ─────────────────────────────────────────────────────────────────────────────

    def sample(self, rng: random.Random | None = None, *, seed: int | None = None,
               uniform: str = "decision", task: Mapping[str, Scalar] | None = None) -> Point:
        """A random point satisfying every `require` (rejection sampling).

        `uniform="decision"` picks each decision uniformly; `uniform="arch"` weighs each branch,
        optional body and repeat count by the number of points beneath it, so that every
        architecture (point) is equally likely."""
        return self.complete({}, rng, seed=seed, uniform=uniform, task=task)

    def complete(self, partial: Mapping[str, Scalar], rng: random.Random | None = None, *,
                 seed: int | None = None, uniform: str = "decision",
                 task: Mapping[str, Scalar] | None = None) -> Point:
        """Keep the valid, active decisions of `partial` and sample the rest."""
        rng = rng or random.Random(seed)
        failures: dict[int, int] = {}
        for _ in range(MAX_TRIES):
            trace = self.draw(rng, uniform, partial)
            failed = failing_requires(trace, task)
            if not failed:
                return Point(trace.values)
            for req in failed:
                failures[id(req)] = failures.get(id(req), 0) + 1
        raise self.unsatisfied_error(failures, MAX_TRIES, exhaustive=False)

    def draw(self, rng: random.Random, uniform: str = "decision",
             partial: Mapping[str, Scalar] | None = None) -> Trace:
        """One unconstrained walk: valid, active decisions of `partial` are kept, the others
        drawn (see `sample` for `uniform`)."""
        if uniform not in ("decision", "arch"):
            raise SpaceError(f"unknown sampling mode '{uniform}'", hint="use decision or arch")
        partial = partial or {}

        def decide(site: Site) -> Scalar:
            given = partial.get(site.path)
            if given is not None and site.domain.contains(given):
                return given
            if uniform == "arch":
                return choose_uniform_arch(site, self.sizes, rng)
            return site.domain.sample(rng)

        return walk(self.root, decide)

    def unsatisfied_error(self, failures: dict[int, int], tried: int, exhaustive: bool
                     ) -> SpaceError:
        """The error for constraints that held for none of `tried` points, naming the
        `require` that failed most often. Only an exhaustive check may say "no point"."""
        (worst,) = sorted(self.requires, key=lambda r: -failures.get(id(r), 0))[:1]
        if exhaustive:
            message = f"no point satisfies `require {worst.text}` (checked all {tried:,} points)"
            hint = "relax the constraint or widen the domains it uses"
        else:
            message = (f"no sampled point satisfies `require {worst.text}`: none of {tried:,} "
                       f"random points did, among {count_text(self.size)}")
            hint = ("archc samples by rejection, so a constraint this rare cannot be searched; "
                    "relax it, or derive one decision from the other with `let`")
        return SpaceError(Diagnostic(message, worst.span, hint))

    # ── points ───────────────────────────────────────────────────────────────────────────────

    def trace(self, point: Mapping[str, Scalar]) -> Trace:
        """Walk `point`'s decisions; raises PointError listing every problem with it."""
        problems: list[Diagnostic] = []

        def decide(site: Site) -> Scalar:
            if site.path not in point:
                problems.append(Diagnostic(f"missing decision '{site.path}' "
                                           f"({site.domain.describe()})", site.node.span))
                return _any_value(site)
            value = point[site.path]
            if not site.domain.contains(value):
                problems.append(Diagnostic(
                    f"'{site.path}' = {value!r} is not in {site.domain.describe()}",
                    site.node.span))
                return _any_value(site)
            return value

        trace = walk(self.root, decide)
        for extra in sorted(set(point) - set(trace.values)):
            problems.append(self._extra(extra, trace))
        if problems:
            raise PointError(problems)
        return trace

    def validate(self, point: Mapping[str, Scalar], task: Mapping[str, Scalar] | None = None
                 ) -> Point:
        """The point as a `Point` if it belongs to this space; PointError says why not."""
        return Point(self.validated_trace(point, task).values)

    def validated_trace(self, point: Mapping[str, Scalar],
                        task: Mapping[str, Scalar] | None = None) -> Trace:
        """`trace`, also checking every `require` (what `validate` and the decoder need from one
        walk)."""
        trace = self.trace(point)
        failed = failing_requires(trace, task)
        if failed:
            raise PointError([Diagnostic(f"the point violates `require {r.text}`", r.span)
                              for r in failed])
        return trace

    def _extra(self, path: str, trace: Trace) -> Diagnostic:
        templates = {p for p, _ in self.decisions()}
        generic = _template_of(path)
        if generic in templates:
            return Diagnostic(f"'{path}' is not active in this point (its branch, optional "
                              "body or repeat copy is not chosen)")
        hint = did_you_mean(path, list(trace.values) + sorted(templates))
        return Diagnostic(f"'{path}' is not a decision of this space", hint=hint)

    def next_decision(self, partial: Mapping[str, Scalar]) -> Site | None:
        """The first active decision that `partial` leaves open (None when it is complete):
        the sequential view of the space. `site.domain.values()` are its options."""

        def decide(site: Site) -> Scalar:
            value = partial.get(site.path)
            if value is None or not site.domain.contains(value):
                raise _Undecided(site)
            return value

        try:
            walk(self.root, decide)
        except _Undecided as stop:
            return stop.site
        return None

    def satisfies(self, point: Mapping[str, Scalar], task: Mapping[str, Scalar] | None = None
                  ) -> bool:
        return not failing_requires(self.trace(point), task)

    # ── enumeration and neighbourhoods ───────────────────────────────────────────────────────

    def enumerate(self, *, constrained: bool = True, limit: int = 1_000_000) -> Iterator[Point]:
        """Every point, in canonical order (only those satisfying `require`s when
        `constrained`). Refuses spaces larger than `limit` or with continuous decisions."""
        if self.continuous:
            raise SpaceError(f"cannot enumerate: '{self.continuous[0]}' is continuous")
        if self.size > limit:
            raise SpaceError(f"cannot enumerate {count_text(self.size)} points (limit {limit:,})")
        partial: dict[str, Scalar] = {}
        while True:  # an odometer over the canonical walk: one walk per point
            trace = walk(self.root, _given_or_first(partial))
            if not constrained or not failing_requires(trace, None):
                yield Point(trace.values)
            for i in range(len(trace.sites) - 1, -1, -1):
                site = trace.sites[i]
                values = site.domain.values()
                at = values.index(trace.values[site.path])
                if at + 1 < len(values):
                    # decisions before site i do not depend on it: keep them, advance it
                    partial = {s.path: trace.values[s.path] for s in trace.sites[:i]}
                    partial[site.path] = values[at + 1]
                    break
            else:
                return

    def neighbours(self, point: Mapping[str, Scalar], rng: random.Random | None = None,
                   *, seed: int | None = None) -> list[Point]:
        """Points that differ from `point` in one decision, with whatever that change activates
        (a new branch, more repeat copies) sampled and whatever it deactivates dropped."""
        rng = rng or random.Random(seed)
        trace = self.trace(point)
        out: dict[Point, None] = {}
        for path, value in self.edits(trace, rng):
            try:
                out[self.complete({**trace.values, path: value}, rng)] = None
            except SpaceError:
                continue
        base = Point(trace.values)
        return [p for p in out if p != base]

    def edits(self, trace: Trace, rng: random.Random) -> Iterator[tuple[str, Scalar]]:
        """The one-decision changes `neighbours` makes to a traced point, as (path, new value)
        in walk order: every other value of a small discrete decision, a few random ones of a
        large or continuous one (drawn when the walk reaches that decision, so `neighbours`
        draws from `rng` in the same order as ever). Completing each edit is the costly part;
        a caller that wants only some neighbours completes only those."""
        for site in trace.sites:
            for value in _alternatives(site, trace.values[site.path], rng):
                yield site.path, value

    def mutate(self, point: Mapping[str, Scalar], rng: random.Random | None = None, *,
               seed: int | None = None) -> Point:
        """One random neighbour (the point itself when it has none)."""
        rng = rng or random.Random(seed)
        trace = self.trace(point)
        for _ in range(100):
            site = rng.choice(trace.sites) if trace.sites else None
            if site is None:
                break
            values = _alternatives(site, trace.values[site.path], rng)
            if not values:
                continue
            try:
                return self.complete({**trace.values, site.path: rng.choice(values)}, rng)
            except SpaceError:
                continue
        return Point(trace.values)


NEIGHBOURS_PER_DECISION = 16
"""A decision with more values than this offers this many random alternatives, not all."""


def _alternatives(site: Site, current: Scalar, rng: random.Random) -> list[Scalar]:
    domain = site.domain
    if domain.discrete and domain.size <= NEIGHBOURS_PER_DECISION + 1:
        return [v for v in domain.values() if v != current or type(v) is not type(current)]
    draws = {domain.sample(rng) for _ in range(NEIGHBOURS_PER_DECISION if domain.discrete else 2)}
    return sorted(draws - {current}, key=repr)


def _given_or_first(partial: Mapping[str, Scalar]) -> Callable[[Site], Scalar]:
    """A decider taking `partial`'s value where it has one, else the first option."""
    return lambda site: partial.get(site.path, _first(site))


def _first(site: Site) -> Scalar:
    return site.domain.values()[0]


def _any_value(site: Site) -> Scalar:
    """A stand-in so validation can go on past a bad value and report the rest."""
    if site.domain.discrete:
        return site.domain.values()[0]
    return cast(FloatRange, site.domain).low


def _template_of(path: str) -> str:
    import re
    return re.sub(r"\[\d+\]", "[*]", path)


def _collect_sites(node: ir.Node | None, out: list, want: type | None = None) -> None:
    """Depth-first over the whole tree, active or not: decision sites (or nodes of `want`)."""
    if node is None:
        return
    is_site = isinstance(node, ir.SITES) or (isinstance(node, ir.Repeat) and isinstance(
        node.count, ir.Decide))
    if (want is None and is_site) or (want is not None and isinstance(node, want)):
        out.append((getattr(node, "path", ""), node))
    for child in _children(node):
        _collect_sites(child, out, want)


def _children(node: ir.Node) -> list[ir.Node]:
    match node:
        case ir.Seq():
            return list(node.steps)
        case ir.Switch() | ir.Choose():
            return [v for _, v in node.options]
        case ir.Maybe() | ir.Repeat() | ir.Inline() | ir.DefBlock():
            return [node.body]
        case ir.Block():
            return [v for _, v in node.args] + ([node.body] if node.body else [])
        case ir.Op():
            return list(node.args)
        case ir.Let():
            return [node.value]
        case ir.Apply():
            return [node.block]
        case ir.Bind() | ir.Return():
            return [node.flow]
        case ir.Applied():
            return [node.block, *node.inputs]
        case ir.Merge():
            return list(node.items)
    return []


def _log10(n: int) -> float:
    """log10 of a size; exact enough for any size (math.log10 takes big integers whole)."""
    return math.log10(n) if n > 0 else float("-inf")


def count_text(n: int) -> str:
    """A count for messages: `15,625`, or `≈10^4312` where digits would be too many to print
    (Python refuses to turn integers of over 4,300 digits into text)."""
    return f"{n:,}" if n < 10**18 else f"≈10^{int(_log10(n))}"


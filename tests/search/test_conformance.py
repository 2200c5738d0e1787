"""Every searcher keeps the contract of `BaseSearcher`, on every test space.

The restore guarantee tested here (base.py): the k-th ask depends only on (space, seed, k, the
tells before it), so `restore(history)` followed by asks equals the original searcher going on,
and equals a searcher that was told a foreign history live.
"""

from __future__ import annotations

import math
import subprocess
import sys
import textwrap
from collections.abc import Callable
from functools import partial
from pathlib import Path

import pytest

from archc.dsl.point import Point
from archc.errors import PointError
from archc.search import SEARCHERS, SMBO, BaseSearcher, RandomSearch, score_of

from .objectives import noisy_result
from .spaces import SPECS, space

FACTORIES: dict[str, Callable[..., BaseSearcher]] = {
    **SEARCHERS,  # random_arch among them
    "smbo-ridge": partial(SMBO, surrogate="ridge"),  # SEARCHERS' smbo is the GP
}
NAMES = sorted(FACTORIES)


def run(searcher: BaseSearcher, steps: int, start: int = 0) -> list[Point]:
    """Ask and tell `steps` times (failures included); the points asked."""
    asked = []
    for step in range(start, start + steps):
        point = searcher.ask()
        asked.append(point)
        searcher.tell(point, noisy_result(point, step))
    return asked


@pytest.fixture(params=sorted(SPECS))
def spec(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.mark.parametrize("name", NAMES)
def test_proposals_validate(name: str, spec: str) -> None:
    sp = space(spec)
    for point in run(FACTORIES[name](sp, seed=3), 40):
        assert sp.validate(point) == point


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_sequence(name: str, spec: str) -> None:
    sp = space(spec)
    first = run(FACTORIES[name](sp, seed=7), 30)
    assert run(FACTORIES[name](sp, seed=7), 30) == first
    if spec != "tiny":
        assert run(FACTORIES[name](sp, seed=8), 30) != first


@pytest.mark.parametrize("name", NAMES)
def test_failures_are_accepted_and_worst(name: str, spec: str) -> None:
    searcher = FACTORIES[name](space(spec), seed=0)
    for result in (None, math.nan, 0.5, None):
        searcher.tell(searcher.ask(), result)
    assert [score for _, score in searcher.history].count(-math.inf) == 3
    assert searcher.best is not None and searcher.best[1] == 0.5
    assert score_of(None) == score_of(math.nan) == -math.inf


@pytest.mark.parametrize("name", NAMES)
def test_restore_continues_as_if_never_stopped(name: str, spec: str) -> None:
    sp = space(spec)
    whole = run(FACTORIES[name](sp, seed=5), 35)
    first = FACTORIES[name](sp, seed=5)
    run(first, 20)
    stored = [(Point.from_json(p.to_json()), r) for p, r in first.history]  # as a study keeps
    resumed = FACTORIES[name](sp, seed=5)
    run(resumed, 3)  # whatever it did before is forgotten
    resumed.restore(stored)
    assert run(resumed, 15, start=20) == whole[20:]


@pytest.mark.parametrize("name", NAMES)
def test_restore_from_a_foreign_history_equals_telling_it_live(name: str, spec: str) -> None:
    sp = space(spec)
    donor = RandomSearch(sp, seed=11)
    run(donor, 15)
    live = FACTORIES[name](sp, seed=2)
    for point, result in donor.history:
        live.ask()
        live.tell(point, result)
    restored = FACTORIES[name](sp, seed=2)
    restored.restore(donor.history)
    assert run(restored, 10, start=15) == run(live, 10, start=15)


@pytest.mark.parametrize("name", NAMES)
def test_batches_of_asks_before_tells(name: str) -> None:
    sp = space("deep")
    searcher = FACTORIES[name](sp, seed=1)
    for batch in range(6):
        points = [searcher.ask() for _ in range(4)]
        for i, point in enumerate(points):
            sp.validate(point)
            searcher.tell(point, noisy_result(point, 4 * batch + i))
    assert len(searcher.history) == searcher.asked == 24


@pytest.mark.parametrize("name", NAMES)
def test_a_tiny_space_does_not_get_stuck(name: str) -> None:
    sp = space("tiny")
    asked = run(FACTORIES[name](sp, seed=0), 30)
    assert set(asked) == set(sp.enumerate())


@pytest.mark.parametrize("name", NAMES)
def test_telling_a_point_outside_the_space_raises(name: str) -> None:
    searcher = FACTORIES[name](space("tiny"), seed=0)
    with pytest.raises(PointError):
        searcher.tell({"linear.out": 12}, 1.0)


def test_the_registry_holds_the_searchers_the_language_names() -> None:
    """`search { searcher = … }` and --searcher accept exactly the searchers a plan builds."""
    from archc.dsl import fields
    from archc.search.plan import MULTI_SEARCHERS  # here: plan imports torch (the tasks)
    assert set(SEARCHERS).isdisjoint(MULTI_SEARCHERS)
    assert set(SEARCHERS) | set(MULTI_SEARCHERS) == set(fields.SEARCHERS)


def test_searching_does_not_import_torch() -> None:
    here = Path(__file__).resolve().parent
    code = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(here.parent.parent)!r})
        from tests.search.test_conformance import run
        from tests.search.spaces import SPECS, space
        from tests.search.test_conformance import FACTORIES
        for spec in SPECS:
            for cls in FACTORIES.values():
                run(cls(space(spec), seed=0), 15)
        print(sorted(m for m in sys.modules if m.split(".")[0] == "torch"))
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"

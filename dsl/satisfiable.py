"""The last check pass: some point must satisfy every `require`.

Small spaces are decided exactly by enumeration; larger ones by a bounded sampling search
(uniform per decision and uniform over architectures, alternately), whose message says so.
"""

from __future__ import annotations

import random
import time

from archc.dsl.sampling import failing_requires
from archc.dsl.space import Space
from archc.dsl.walk import Trace
from archc.errors import CheckError

__all__ = ["check_satisfiable", "ENUMERATE_UP_TO", "SAMPLES"]

ENUMERATE_UP_TO = 20_000
SAMPLES = 4_000
SECONDS = 2.0
"""The sampling search stops after SAMPLES points or SECONDS (but tries at least 100)."""


def check_satisfiable(space: Space) -> None:
    """Raise CheckError at the `require` that no point satisfies."""
    if not any(not r.deferred for r in space.requires):
        return
    failures: dict[int, int] = {}

    def holds(trace: Trace) -> bool:
        failed = failing_requires(trace, None)
        for req in failed:
            failures[id(req)] = failures.get(id(req), 0) + 1
        return not failed

    if not space.continuous and space.size <= ENUMERATE_UP_TO:
        if any(holds(space.trace(p)) for p in space.enumerate(constrained=False)):
            return
        error = space.unsatisfied_error(failures, space.size, exhaustive=True)
        raise CheckError(error.diagnostics)
    rng = random.Random(0)
    modes = ("decision", "arch")
    deadline = time.monotonic() + SECONDS
    tried = 0
    while tried < SAMPLES and (tried < 100 or time.monotonic() < deadline):
        if holds(space.draw(rng, modes[tried % 2])):
            return
        tried += 1
    raise CheckError(space.unsatisfied_error(failures, tried, exhaustive=False).diagnostics)

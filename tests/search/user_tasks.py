"""User tasks for tests/search/test_tasks_user.py (imported as `user_tasks:…` from this folder),
and the worked example of docs/tasks.md: a task is a function that returns a `Task`."""

from __future__ import annotations

import torch

from archc.search.tasks import Task


def parity(data: str | None = None) -> Task:
    """Is the number of ones in 8 random bits odd? 256/64/64 examples, fixed by seed 0.
    `data`, when given, is a number of training examples (a user task decides what its data
    path means)."""
    generator = torch.Generator().manual_seed(0)
    n_train = int(data) if data is not None else 256
    bits = torch.randint(0, 2, (n_train + 128, 8), generator=generator)
    x, y = bits.float(), bits.sum(1) % 2  # (b, 8) floats, (b,) int64 labels
    return Task("parity", {"classes": 2, "features": 8}, {},
                train=(x[:n_train], y[:n_train]), val=(x[n_train:n_train + 64],
                                                       y[n_train:n_train + 64]),
                test=(x[n_train + 64:], y[n_train + 64:]))


def not_a_task() -> dict[str, int]:
    return {"classes": 2}


def needs_arguments(size: int) -> Task:
    return parity(str(size))

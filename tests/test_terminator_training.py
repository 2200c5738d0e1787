"""The hyper-kernel examples learn: a short seeded run of each example's first sampled point
(Terminator blocks and a HyperZ·Z·W operator, with MIP) makes the validation loss fall well
below the untrained network's, with the Terminators' slow loss in every training step."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import archc
from archc.library.hyper_kernels_modules import Terminator
from archc.search.tasks import get_task
from archc.search.trainer import evaluate, train, train_settings

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.mark.parametrize(("example", "task_name", "epochs"), [
    ("terminator_digits.arch", "digits", 2), ("terminator_mnist1d.arch", "mnist1d", 2)])
def test_a_short_seeded_run_makes_the_loss_fall(example: str, task_name: str,
                                                epochs: int) -> None:
    space, task = archc.load(EXAMPLES / example), get_task(task_name)
    point = space.sample(seed=0)
    torch.manual_seed(0)  # the weights are made at compile time
    compiled = archc.compile(space, point, task.constants)
    terminators = [m for m in compiled.module.modules() if isinstance(m, Terminator)]
    assert terminators, "the point exercises the Terminator block"
    before = evaluate(compiled.module, task, "val")["loss"]
    result = train(compiled, task, train_settings(space, point), seed=0, budget_epochs=epochs,
                   threads=2)
    assert result.ok, result.reason
    after = result.metrics["val_loss"]
    assert after < 0.8 * before, (before, result.history)
    assert result.metrics["val_accuracy"] > 0.2  # chance is 0.1
    assert all(m.aux_loss() is not None for m in terminators)  # the slow loss was trained

"""The trainer: learns digits quickly, is reproducible, and turns failures into results."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import pytest
import torch
from torch import nn

import archc
from archc.errors import ArchError
from archc.search.tasks import get_task
from archc.search.trainer import evaluate, train, train_settings

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "digits_cnn.arch"
POINT = {"width": 32, "blocks": 1, "blocks[0].one_of": "conv_bn_relu",
         "blocks[0].conv_bn_relu.k": 3, "blocks[0].pool": True, "optional": False,
         "train.optimizer": "adamw", "train.lr": 3e-3, "train.batch": 32,
         "train.weight_decay": 1e-4}


def _compiled(point: dict = POINT, seed: int = 0):  # type: ignore[no-untyped-def]
    torch.manual_seed(seed)  # the weights are made at compile time
    return archc.compile(archc.load(EXAMPLE), point, get_task("digits").constants)


def _settings(**changes: object) -> dict:
    return {**train_settings(archc.load(EXAMPLE), POINT), **changes}


def test_settings_read_constants_decisions_and_defaults() -> None:
    settings = _settings()
    assert settings["epochs"] == 20 and settings["lr"] == 3e-3 and settings["batch"] == 32
    assert settings["schedule"] == "cosine" and settings["grad_clip"] == 1.0


def test_digits_cnn_learns_in_three_epochs() -> None:
    task, seen = get_task("digits"), []
    start = time.perf_counter()
    result = train(_compiled(), task, _settings(), seed=0, budget_epochs=3, threads=2,
                   report=lambda epoch, metrics: seen.append(epoch))
    assert time.perf_counter() - start < 60  # ~1 s alone on 2 cores; slack for a busy CI box
    assert result.ok and result.epochs == 3 and seen == [1, 2, 3]
    assert result.metrics["val_accuracy"] > 0.8
    assert evaluate(_compiled(), task)["accuracy"] < 0.5  # untrained: near chance


def test_same_seed_same_metrics() -> None:
    task = get_task("digits")
    runs = [train(_compiled(), task, _settings(), seed=1, budget_epochs=2) for _ in range(2)]
    assert runs[0].history == runs[1].history


def test_huge_lr_fails_with_nan() -> None:
    result = train(_compiled(), get_task("digits"), _settings(lr=1e6, grad_clip=0.0,
                   optimizer="sgd"), seed=0, budget_epochs=3)
    assert result.status == "failed" and "NaN" in (result.reason or "")


class _Inf(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(x.flatten(1)) * float("inf")

    def __init__(self) -> None:
        super().__init__()
        self.head = nn.Linear(64, 10)


class _Broken(_Inf):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("mat1 and mat2 shapes cannot be multiplied")


def test_inf_output_and_model_errors_become_failed_results() -> None:
    task = get_task("digits")
    inf = train(_Inf(), task, _settings(), seed=0, budget_epochs=1)
    assert inf.status == "failed" and "NaN" in (inf.reason or "") and inf.steps == 0
    broken = train(_Broken(), task, _settings(), seed=0, budget_epochs=1)
    assert broken.status == "failed" and "shapes cannot be multiplied" in (broken.reason or "")


def test_aux_loss_is_added() -> None:
    model = _Inf()
    model.forward = lambda x: model.head(x.flatten(1))  # type: ignore[method-assign]
    model.aux_loss = lambda: torch.tensor(float("nan"))  # type: ignore[attr-defined]
    result = train(model, get_task("digits"), _settings(), seed=0, budget_epochs=1)
    assert result.status == "failed" and "NaN" in (result.reason or "")


def test_report_exceptions_propagate_and_time_budget_finishes() -> None:
    class Prune(Exception):
        pass

    def report(epoch: int, metrics: dict) -> None:
        raise Prune

    with pytest.raises(Prune):
        train(_compiled(), get_task("digits"), _settings(), seed=0, report=report)
    result = train(_compiled(), get_task("digits"), _settings(), seed=0, budget_seconds=0.0)
    assert result.ok and result.epochs == 1 and "time budget" in (result.reason or "")


def test_steps_setting_and_step_budget_stop_early() -> None:
    result = train(_compiled(), get_task("digits"), _settings(steps=5), seed=0)
    assert result.ok and result.steps == 5 and result.epochs == 1
    budget = train(_compiled(), get_task("digits"), _settings(), seed=0, budget_steps=7)
    assert budget.ok and budget.steps == 7 and budget.epochs == 1


def test_unknown_optimizer_schedule_and_loss_are_user_errors() -> None:
    with pytest.raises(ArchError, match="unknown optimizer 'rmsprop'"):
        train(_compiled(), get_task("digits"), _settings(optimizer="rmsprop"), seed=0)
    with pytest.raises(ArchError, match="unknown schedule 'exp'"):
        train(_compiled(), get_task("digits"), _settings(schedule="exp"), seed=0)
    odd = dataclasses.replace(get_task("digits"), loss="regression")
    with pytest.raises(ArchError, match="loss 'regression'"):
        train(_compiled(), odd, _settings(), seed=0)


class _OutOfMemory(_Inf):
    error: Exception = torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise self.error


@pytest.mark.parametrize("error", [torch.OutOfMemoryError("CUDA out of memory. Tried to "
                                                          "allocate 2.00 GiB"),
                                   MemoryError()])
def test_out_of_memory_is_a_failed_result_named_as_such(error: Exception) -> None:
    model = _OutOfMemory()
    model.error = error
    result = train(model, get_task("digits"), _settings(), seed=0, budget_epochs=1)
    assert result.status == "failed" and (result.reason or "").startswith("out of memory")


def test_threads_apply_during_the_run_and_are_restored() -> None:
    before, seen = torch.get_num_threads(), []
    train(_compiled(), get_task("digits"), _settings(), seed=0, budget_steps=2, threads=1,
          report=lambda epoch, metrics: seen.append(torch.get_num_threads()))
    assert seen == [1] and torch.get_num_threads() == before

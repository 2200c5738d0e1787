"""Optimizers, schedules and dropout: Lion's update rule, every optimizer learns digits, the
schedules' learning-rate curves, and the `dropout` setting's reach."""

from __future__ import annotations

import math
from itertools import pairwise
from pathlib import Path

import pytest
import torch
from torch import nn

import archc
from archc.search.optimizers import ONECYCLE_END, ONECYCLE_START, SCHEDULES, Lion, lr_factor
from archc.search.tasks import get_task
from archc.search.trainer import apply_dropout, train, train_settings

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "digits_cnn.arch"
POINT = {"width": 16, "blocks": 1, "blocks[0].one_of": "conv_bn_relu",
         "blocks[0].conv_bn_relu.k": 3, "blocks[0].pool": True, "optional": False,
         "train.optimizer": "adamw", "train.lr": 3e-3, "train.batch": 32,
         "train.weight_decay": 1e-4}
LR = {"adamw": 3e-3, "adam": 3e-3, "sgd": 0.05, "lion": 3e-3}


def test_lion_moves_every_coordinate_by_lr_in_the_sign_of_the_interpolation() -> None:
    p = nn.Parameter(torch.tensor([1.0, -2.0, 0.5]))
    opt = Lion([p], lr=0.1, betas=(0.9, 0.99), weight_decay=0.0)
    opt.state[p]["momentum"] = torch.tensor([1.0, 1.0, -1.0])
    p.grad = torch.tensor([-20.0, 3.0, 5.0])
    opt.step()
    # c = 0.9·m + 0.1·g = (-1.1, 1.2, -0.4): signs (-, +, -), so p moves by (+0.1, -0.1, +0.1)
    assert torch.allclose(p.detach(), torch.tensor([1.1, -2.1, 0.6]), atol=1e-6)
    assert torch.allclose(opt.state[p]["momentum"], torch.tensor([0.79, 1.02, -0.94]),
                          atol=1e-6)
    decayed = nn.Parameter(torch.tensor([2.0]))
    Lion([decayed], lr=0.1, weight_decay=0.5).step()  # no gradient: untouched
    assert float(decayed.detach()) == 2.0
    decayed.grad = torch.tensor([1.0])
    Lion([decayed], lr=0.1, weight_decay=0.5).step()  # 2·(1 − 0.05) − 0.1
    assert math.isclose(float(decayed.detach()), 1.8, abs_tol=1e-6)


@pytest.mark.parametrize("optimizer", ["adamw", "adam", "sgd", "lion"])
def test_each_optimizer_lowers_the_loss_on_digits(optimizer: str) -> None:
    spec = archc.load(EXAMPLE)
    settings = {**train_settings(spec, POINT), "optimizer": optimizer, "lr": LR[optimizer]}
    torch.manual_seed(0)
    model = archc.compile(spec, POINT, get_task("digits").constants)
    result = train(model, get_task("digits"), settings, seed=0, budget_epochs=2, threads=2)
    assert result.ok, result.reason
    first, last = result.history[0], result.history[-1]
    assert last["train_loss"] < first["train_loss"] and last["val_accuracy"] > 0.5


def test_schedule_curves() -> None:
    total = 100
    curves = {name: [lr_factor(name, total, 0)(s) for s in range(total)] for name in SCHEDULES}
    assert curves["constant"] == [1.0] * total
    for name in ("cosine", "linear"):
        assert curves[name][0] == 1.0 and curves[name][-1] < 0.02
        assert all(a >= b for a, b in pairwise(curves[name]))
    assert math.isclose(curves["cosine"][50], 0.5, abs_tol=0.02)
    assert set(curves["step"][:50]) == {1.0} and set(curves["step"][50:75]) == {0.1}
    assert all(math.isclose(v, 0.01) for v in curves["step"][75:])
    one = curves["onecycle"]
    peak = one.index(max(one))
    assert math.isclose(one[0], ONECYCLE_START) and peak == 30 and one[peak] == 1.0
    assert math.isclose(one[-1], ONECYCLE_END, rel_tol=1e-6)
    assert all(a <= b for a, b in pairwise(one[:peak + 1]))
    assert all(a >= b for a, b in pairwise(one[peak:]))
    warm = [lr_factor("cosine", total, 10)(s) for s in range(total)]
    assert warm[:10] == [(s + 1) / 10 for s in range(10)] and warm[10] == 1.0
    assert lr_factor("onecycle", total, 20)(20) == 1.0  # warmup sets one-cycle's ramp


def test_the_run_follows_the_schedule() -> None:
    spec = archc.load(EXAMPLE)
    settings = {**train_settings(spec, POINT), "schedule": "step", "lr": 0.01}
    torch.manual_seed(0)
    model = archc.compile(spec, POINT, get_task("digits").constants)
    seen: list[float] = []
    original = torch.optim.AdamW.step

    def spy(self: torch.optim.Optimizer, *args: object, **kwargs: object) -> object:
        seen.append(self.param_groups[0]["lr"])
        return original(self, *args, **kwargs)  # type: ignore[arg-type]

    torch.optim.AdamW.step = spy  # type: ignore[method-assign,assignment]
    try:
        train(model, get_task("digits"), settings, seed=0, budget_steps=40)
    finally:
        torch.optim.AdamW.step = original  # type: ignore[method-assign]
    expected = [0.01 * lr_factor("step", 40, 0)(s) for s in range(40)]
    assert seen == pytest.approx(expected, rel=1e-9)


class _Sites(nn.Module):
    """An unset dropout module, a set one, and an attention-like block's own rate."""

    def __init__(self) -> None:
        super().__init__()
        self.unset, self.kept = nn.Dropout(0.0), nn.Dropout(0.3)
        self.attention = nn.Module()
        self.attention.dropout = 0.0  # type: ignore[assignment]
        self.flagged = nn.Module()
        self.flagged.dropout = False  # type: ignore[assignment]
        self.head = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.kept(self.unset(x.flatten(1))))


def test_dropout_setting_fills_the_unset_sites_only() -> None:
    model = _Sites()
    assert apply_dropout(model, 0.0) == 0 and model.unset.p == 0.0
    assert apply_dropout(model, 0.2) == 2
    assert model.unset.p == 0.2 and model.kept.p == 0.3
    assert model.attention.dropout == 0.2 and model.flagged.dropout is False
    trained = _Sites()
    settings = {**train_settings(archc.load(EXAMPLE), POINT), "dropout": 0.5}
    assert train(trained, get_task("digits"), settings, seed=0, budget_steps=2).ok
    assert trained.unset.p == 0.5 and trained.kept.p == 0.3

"""The optimizers and learning-rate schedules that `train { }` names (TRAIN_FIELDS).

AdamW, Adam and SGD are torch's; Lion is written here (torch has none). A schedule is a
function step → multiplier of the peak learning rate `lr`, wrapped in a `LambdaLR`, so every
schedule composes with every optimizer and a test can read its curve without training.

>>> round(lr_factor("step", total=100, warmup=0)(80), 3)
0.01
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import torch

from archc.dsl.fields import TRAIN_FIELDS
from archc.errors import ArchError

__all__ = ["Lion", "make_optimizer", "lr_factor", "SCHEDULES", "OPTIMIZERS"]

OPTIMIZERS = TRAIN_FIELDS["optimizer"].options
"""The optimizer names `train { optimizer = … }` accepts."""
SCHEDULES = TRAIN_FIELDS["schedule"].options
"""The schedule names `train { schedule = … }` accepts."""

ONECYCLE_START, ONECYCLE_END = 1 / 25, 1 / 25e4
"""One-cycle's first and last multipliers (torch's OneCycleLR defaults: div 25, final div 1e4)."""
ONECYCLE_RAMP = 0.3
"""One-cycle's ramp-up, as a fraction of all steps, when `warmup` is 0."""
STEP_AT, STEP_GAMMA = (0.5, 0.75), 0.1
"""Step decay: the rate is multiplied by 0.1 at half and at three quarters of the decay."""


class Lion(torch.optim.Optimizer):
    """Lion (Chen et al., Symbolic Discovery of Optimization Algorithms, NeurIPS 2023,
    arXiv 2302.06675): the update is the sign of an interpolation between the momentum and the
    gradient, so every coordinate moves by exactly `lr`; the momentum is then refreshed with a
    slower β2. Weight decay is decoupled, as in AdamW. The paper suggests an lr 3–10× smaller
    than AdamW's and a weight decay as much larger.

        c = β1·m + (1 − β1)·g;   p ← p·(1 − lr·wd) − lr·sign(c);   m ← β2·m + (1 − β2)·g
    """

    def __init__(self, params: Iterable[torch.nn.Parameter], lr: float = 1e-4,
                 betas: tuple[float, float] = (0.9, 0.99), weight_decay: float = 0.0) -> None:
        if lr <= 0 or not all(0 <= b <= 1 for b in betas) or weight_decay < 0:
            raise ValueError(f"bad Lion settings: lr={lr}, betas={betas}, wd={weight_decay}")
        super().__init__(params, {"lr": lr, "betas": betas, "weight_decay": weight_decay})

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                momentum = self.state[p].setdefault("momentum", torch.zeros_like(p))
                p.mul_(1 - group["lr"] * group["weight_decay"])
                p.add_(momentum.lerp(p.grad, 1 - beta1).sign_(), alpha=-group["lr"])
                momentum.lerp_(p.grad, 1 - beta2)
        return loss


def make_optimizer(params: Iterable[torch.nn.Parameter], s: Mapping[str, Any]
                   ) -> torch.optim.Optimizer:
    """The optimizer named by the settings; `momentum` is SGD's momentum and the β1 of Adam,
    AdamW and Lion."""
    lr, wd, momentum = float(s["lr"]), float(s["weight_decay"]), float(s["momentum"])
    match s["optimizer"]:
        case "adamw":
            return torch.optim.AdamW(params, lr=lr, weight_decay=wd, betas=(momentum, 0.999))
        case "adam":
            return torch.optim.Adam(params, lr=lr, weight_decay=wd, betas=(momentum, 0.999))
        case "sgd":
            return torch.optim.SGD(params, lr=lr, weight_decay=wd, momentum=momentum)
        case "lion":
            return Lion(params, lr=lr, weight_decay=wd, betas=(momentum, 0.99))
    raise ArchError(f"unknown optimizer '{s['optimizer']}'",
                    hint=f"use one of {', '.join(OPTIMIZERS)}")


def lr_factor(schedule: str, total: int, warmup: int) -> Callable[[int], float]:
    """The learning-rate multiplier at each step (0-based) of `total`.

    cosine, linear, constant, step: linear warm-up over `warmup` steps to 1, then the decay
    over the remaining steps (cosine and linear reach 0 at the last step; step multiplies by
    0.1 at 50% and 75% of it). onecycle (Smith & Topin 2019): a cosine ramp from 1/25 to 1 over
    `warmup` steps (30% of all when 0), then a cosine descent to 1/25e4 at the last step.
    """
    if schedule not in SCHEDULES:
        raise ArchError(f"unknown schedule '{schedule}'",
                        hint=f"use one of {', '.join(SCHEDULES)}")
    if schedule == "onecycle":
        return _onecycle(total, warmup or round(ONECYCLE_RAMP * total))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        match schedule:
            case "cosine":
                return 0.5 * (1.0 + math.cos(math.pi * progress))
            case "linear":
                return 1.0 - progress
            case "step":
                return float(STEP_GAMMA ** sum(progress >= at for at in STEP_AT))
        return 1.0
    return factor


def _onecycle(total: int, ramp: int) -> Callable[[int], float]:
    def between(start: float, end: float, fraction: float) -> float:
        return end + (start - end) * 0.5 * (1.0 + math.cos(math.pi * min(1.0, fraction)))

    def factor(step: int) -> float:
        if step < ramp:
            return between(ONECYCLE_START, 1.0, step / ramp)
        return between(1.0, ONECYCLE_END, (step - ramp) / max(1, total - 1 - ramp))
    return factor

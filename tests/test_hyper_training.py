"""A small point of each hyper-connected example (examples/hc_lm.arch, examples/hyperloop.arch)
learns: 150 steps of next-character prediction on docs/language.md, with a fixed seed, bring
the loss below 70% of its initial value. One thread: a few seconds per model, and no OpenMP
spinning on a machine that other jobs share."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import archc

ROOT = Path(__file__).resolve().parents[1]
TEXT = (ROOT / "docs" / "language.md").read_text(encoding="utf-8")
CHARS = sorted(set(TEXT))
LENGTH, BATCH, STEPS = 16, 8, 150

POINTS = {
    "hc_lm": {"d": 128, "heads": 4, "hyper.streams": 2, "hyper.mix": "mhc",
              "hyper.mix.mhc.iters": 5, "layers": 2, "layers[0].one_of": "mlp",
              "layers[0].mlp.ratio": 2, "layers[1].one_of": "mlp", "layers[1].mlp.ratio": 2,
              "train.lr": 3e-3, "train.batch": 32},
    "hyperloop": {"d": 128, "heads": 4, "one_of": "hyperloop", "hyperloop.middle": "dense",
                  "hyperloop.loops": 2, "hyperloop.streams": 2, "hyperloop.mix": "kromhc",
                  "hyperloop.share_mix": False, "train.lr": 3e-3},
}


def batches(generator: torch.Generator) -> torch.Tensor:
    """(BATCH, LENGTH + 1) windows of the text at random offsets, as character ids."""
    ids = torch.tensor([CHARS.index(c) for c in TEXT])
    starts = torch.randint(0, len(ids) - LENGTH - 1, (BATCH,), generator=generator)
    return torch.stack([ids[s:s + LENGTH + 1] for s in starts.tolist()])


@pytest.fixture
def one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("example", list(POINTS))
def test_a_small_point_learns_the_text(example: str, one_thread: None) -> None:
    torch.manual_seed(0)
    space = archc.load(ROOT / "examples" / f"{example}.arch")
    built = archc.compile(space, POINTS[example], {"vocab": len(CHARS)}, {"t": LENGTH})
    model = built.module.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(0)
    losses = []
    for _ in range(STEPS):
        window = batches(generator)
        logits = model(window[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, len(CHARS)), window[:, 1:].reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    start, end = losses[0], sum(losses[-10:]) / 10  # the initial loss; the last steps' mean
    assert end < 0.7 * start, (start, end)

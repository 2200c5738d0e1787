"""The built-in tasks: fixed, disjoint splits of the right shapes; a clear error on a typo."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

from archc.errors import ArchError
from archc.search import tasks
from archc.search.tasks import get_task
from archc.search.tasks_base import stratified


def test_digits_shapes_and_range() -> None:
    task = get_task("digits")
    sizes = [len(task.split(s)[1]) for s in ("train", "val", "test")]
    assert sum(sizes) == 1797 and sizes[0] > 1000
    x, y = task.train
    assert x.shape[1:] == (1, 8, 8) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert float(x.min()) == 0.0 and float(x.max()) == 1.0
    assert task.constants["classes"] == 10 and task.loss == "classification"


def test_digits_split_is_deterministic_disjoint_and_stratified() -> None:
    first = tasks._digits()
    again = tasks._digits()
    for name in ("train", "val", "test"):
        assert torch.equal(first.split(name)[0], again.split(name)[0])
    rows = [{tuple(r.flatten().tolist()) for r in first.split(s)[0]} for s in
            ("train", "val", "test")]
    # digits holds a few identical images, so a handful of equal rows across splits is fine.
    assert len(rows[1] & rows[2]) <= 2 and len(rows[0] & rows[2]) <= 5
    counts = torch.bincount(first.val[1], minlength=10)
    assert int(counts.min()) >= 34 and int(counts.max()) <= 38


def test_split_indices_are_disjoint_and_cover() -> None:
    labels = tasks.np.repeat(tasks.np.arange(10), 17)
    parts = stratified(labels, (0.6, 0.2, 0.2), seed=0)
    joined = tasks.np.concatenate(parts)
    assert sorted(joined.tolist()) == list(range(len(labels)))


def test_unknown_task_suggests_the_closest_name() -> None:
    with pytest.raises(ArchError) as caught:
        get_task("digts")
    text = caught.value.render()
    assert "unknown task 'digts'" in text and "did you mean 'digits'?" in text
    assert "mnist1d" in text


def test_tasks_are_cached_per_process() -> None:
    assert get_task("digits") is get_task("digits")


@pytest.mark.skipif(importlib.util.find_spec("mnist1d") is None,
                    reason="the mnist1d package is not installed (pip install mnist1d)")
def test_mnist1d_shapes_and_rng_untouched() -> None:
    state = tasks.np.random.get_state()[1].copy()
    task = tasks._mnist1d()
    assert (tasks.np.random.get_state()[1] == state).all()
    assert [len(task.split(s)[1]) for s in ("train", "val", "test")] == [3200, 800, 1000]
    assert task.train[0].shape[1:] == (1, 40) and task.test[0].shape[1:] == (1, 40)
    assert set(task.val[1].tolist()) == set(range(10))
    assert torch.equal(task.train[0], tasks._mnist1d().train[0])


def test_fit_trains_and_adds_test_metrics_on_request() -> None:
    import archc
    from archc.search.trainer import train_settings

    spec = archc.load(Path(__file__).resolve().parents[2] / "examples" / "digits_cnn.arch")
    point = {"width": 16, "blocks": 1, "blocks[0].one_of": "conv_bn_relu",
             "blocks[0].conv_bn_relu.k": 3, "blocks[0].pool": True, "optional": False,
             "train.optimizer": "adamw", "train.lr": 3e-3, "train.batch": 64,
             "train.weight_decay": 1e-4}
    task = get_task("digits")
    assert dict(task.metrics) == {"val_accuracy": "maximize", "val_loss": "minimize",
                                  "train_loss": "minimize"}
    torch.manual_seed(0)
    compiled = archc.compile(spec, point, task.constants)
    result = task.fit(compiled, train_settings(spec, point), seed=0, budget_epochs=1,
                      test=True)
    assert result.ok and {"val_accuracy", "test_accuracy", "test_loss"} <= set(result.metrics)
    assert 0.0 <= result.metrics["test_accuracy"] <= 1.0
    plain = task.fit(compiled, train_settings(spec, point), seed=0, budget_epochs=1)
    assert "test_accuracy" not in plain.metrics

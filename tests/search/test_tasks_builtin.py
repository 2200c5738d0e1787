"""charlm, listops and the nb201 tasks: fixed disjoint splits of the right shapes, the
constants a spec reads, deterministic generation, and a tiny model trained with each loss."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

import archc
from archc.dsl.fields import TRAIN_FIELDS
from archc.errors import ArchError
from archc.search import tasks_listops, tasks_text
from archc.search.tasks import get_task
from archc.search.tasks_nb201 import NB201_TASKS

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
DEFAULTS = {name: field.default for name, field in TRAIN_FIELDS.items()}
TEXT = "the quick brown fox jumps over the lazy dog. " * 60  # 2,700 characters


def _tiny(task_name: str, data: str | None = None):  # type: ignore[no-untyped-def]
    """The example spec's smallest point, compiled for the task."""
    space, task = archc.load(EXAMPLES / f"{task_name}.arch"), get_task(task_name, data)
    point = dict(space.sample(seed=0)) | {"d": 64, "heads": 2, "layers": 1,
                                          "layers[0].mlp.ratio": 2}
    point = {k: v for k, v in point.items() if not k.startswith("layers[1")}
    torch.manual_seed(0)
    return archc.compile(space, point, task.constants, task.dims)


def test_charlm_splits_are_contiguous_windows_of_next_characters(tmp_path: Path) -> None:
    path = tmp_path / "corpus.txt"
    path.write_text(TEXT)
    task = get_task("charlm", str(path))
    vocab = sorted(set(TEXT))
    assert task.constants == {"vocab": len(vocab), "length": tasks_text.LENGTH}
    assert task.dims == {"t": tasks_text.LENGTH} and task.loss == "lm"
    x, y = task.train
    assert x.shape[1:] == (128,) and x.dtype == torch.int64 and y.shape == x.shape
    assert torch.equal(x[:, 1:], y[:, :-1]) and torch.equal(x[1:, 0], y[:-1, -1])
    assert "".join(vocab[i] for i in x[0].tolist()) == TEXT[:128]
    # train, val, test follow each other along the text: 90/5/5, never overlapping
    sizes = [task.split(s)[0].numel() for s in ("train", "val", "test")]
    assert sizes[0] <= 0.9 * len(TEXT) and sizes[1] <= 0.05 * len(TEXT) + 1 and sizes[2] > 0
    start_val = round(0.9 * len(TEXT))
    assert "".join(vocab[i] for i in task.val[0][0].tolist()) == TEXT[start_val:start_val + 128]
    assert dict(task.metrics) == {"val_loss": "minimize", "val_bpc": "minimize",
                                  "val_accuracy": "maximize", "train_loss": "minimize"}


def test_charlm_default_corpus_and_environment(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    corpus = tasks_text.default_corpus()
    assert len(corpus) > 100_000 and corpus == tasks_text.default_corpus()
    task = tasks_text.charlm()
    assert task.constants["vocab"] == len(set(corpus))
    assert sum(len(task.split(s)[1]) for s in ("train", "val", "test")) * 128 <= len(corpus)
    (tmp_path / "env.txt").write_text(TEXT)
    monkeypatch.setenv("ARCHC_CHARLM_TEXT", str(tmp_path / "env.txt"))
    assert tasks_text.charlm().constants["vocab"] == len(set(TEXT))
    with pytest.raises(ArchError, match="too short"):
        get_task("charlm", str(_write(tmp_path / "short.txt", "abc" * 100)))
    with pytest.raises(ArchError, match="cannot read the charlm text"):
        get_task("charlm", str(tmp_path / "missing.txt"))


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_charlm_example_learns_with_the_lm_loss(tmp_path: Path) -> None:
    data = str(_write(tmp_path / "corpus.txt", TEXT))
    task, compiled = get_task("charlm", data), _tiny("charlm", data)
    settings = {**DEFAULTS, "lr": 3e-3, "batch": 8}
    result = task.fit(compiled, settings, seed=0, budget_epochs=2, threads=2, test=True)
    assert result.ok, result.reason
    first, last = result.history
    assert last["val_loss"] < first["val_loss"] < np.log(task.constants["vocab"]) + 0.5
    assert abs(last["val_bpc"] - last["val_loss"] / np.log(2)) < 1e-9
    assert {"test_loss", "test_bpc", "test_accuracy"} <= set(result.metrics)


def test_listops_values_and_tokens() -> None:
    expr = (11, [2, 9, (12, [4, 7]), 0])  # [MAX 2 9 [MIN 4 7 ] 0 ]
    assert tasks_listops.value(expr) == 9
    assert tasks_listops.tokens(expr) == [11, 3, 10, 12, 5, 8, 15, 1, 15]
    assert tasks_listops.value((13, [1, 8, 3, 5])) == 5  # upper median of 1 3 5 8
    assert tasks_listops.value((14, [7, (13, [1, 2, 3]), 6])) == 5  # (7 + 2 + 6) mod 10


def test_listops_generation_is_deterministic_distinct_and_padded() -> None:
    x, y = tasks_listops.generate(64, seed=3)
    again, _ = tasks_listops.generate(64, seed=3)
    assert np.array_equal(x, again) and len({tuple(r) for r in x}) == 64
    assert x.shape == (64, tasks_listops.LENGTH) and set(np.unique(y)) <= set(range(10))
    lengths = (x != tasks_listops.PAD).sum(1)
    assert lengths.min() >= tasks_listops.MIN_TOKENS
    for row, length in zip(x, lengths, strict=True):  # content first, then only padding
        assert (row[:length] != 0).all() and (row[length:] == 0).all()
        operators = ((row >= 11) & (row <= 14)).sum()
        assert operators == (row == tasks_listops.CLOSE).sum() and row[0] in (11, 12, 13, 14)


def test_listops_task_splits() -> None:
    task = get_task("listops")
    assert task.constants == {"classes": 10, "vocab": 16, "length": 256}
    assert task.dims == {"t": 256} and task.loss == "classification"
    assert [len(task.split(s)[1]) for s in ("train", "val", "test")] == list(tasks_listops.SIZES)
    rows = [{tuple(r.tolist()) for r in task.split(s)[0]} for s in ("train", "val", "test")]
    assert not (rows[0] & rows[1]) and not (rows[0] & rows[2]) and not (rows[1] & rows[2])
    assert len(set(task.val[1].tolist())) == 10


def test_listops_example_trains() -> None:
    full = get_task("listops")
    task = dataclasses.replace(full, train=(full.train[0][:64], full.train[1][:64]),
                               val=(full.val[0][:32], full.val[1][:32]))
    result = task.fit(_tiny("listops"), {**DEFAULTS, "batch": 32}, seed=0, budget_epochs=1,
                      threads=2)
    assert result.ok and 0 <= result.metrics["val_accuracy"] <= 1


def _tables_or_skip() -> None:
    from archc.search.nb201 import tables_path

    try:
        tables_path()
    except ArchError:
        pytest.skip("the NAS-Bench-201 tables are not here ($ARCHC_NB201)")


def test_nb201_names_and_constants() -> None:
    assert set(NB201_TASKS) == {"nb201", "nb201_oracle", "nb201_cifar100",
                                "nb201_cifar100_oracle", "nb201_imagenet16",
                                "nb201_imagenet16_oracle"}
    _tables_or_skip()
    for name, classes in (("nb201", 10), ("nb201_cifar100", 100), ("nb201_imagenet16", 120)):
        constants = get_task(name).constants
        assert constants == {"classes": classes, "channels": 3, "height": 32, "width": 32}
    with pytest.raises(ArchError, match="did you mean 'nb201_oracle'"):
        get_task("nb201_orcle")


def test_nb201_fit_looks_the_point_up() -> None:
    _tables_or_skip()
    from archc.search.nb201 import Nb201Tables

    point = archc.load(EXAMPLES / "nb201.arch").sample(seed=4)
    tables = Nb201Tables.load()
    cell = tables.cell(point)
    seen: list[int] = []
    proxy = get_task("nb201").fit(SimpleNamespace(point=point), DEFAULTS, seed=0,
                                  report=lambda epoch, metrics: seen.append(epoch))
    assert proxy.ok and seen == [1] and proxy.steps == 0
    assert proxy.metrics == {"val_accuracy": tables.lookup(cell)["val_accuracy"]}
    oracle = get_task("nb201_cifar100_oracle").fit(point, DEFAULTS, seed=1, test=True)
    expected = tables.lookup(cell, "cifar100", "oracle")
    assert oracle.metrics == expected
    assert oracle.metrics["val_accuracy"] == oracle.metrics["test_accuracy"]
    with pytest.raises(ArchError, match=r"not a point of examples/nb201\.arch"):
        get_task("nb201").fit({"width": 3}, DEFAULTS, seed=0)


def test_tasks_without_data_refuse_a_data_path() -> None:
    with pytest.raises(ArchError, match="reads no data path"):
        get_task("digits", "somewhere")
    with pytest.raises(ArchError, match="reads no data path"):
        get_task("listops", "somewhere")

"""User tasks as `module:function`: found from the working directory, called with the data
path, trained like a built-in; every mistake is an ArchError with a hint."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from archc.dsl.fields import TRAIN_FIELDS
from archc.errors import ArchError
from archc.search.tasks import Task, get_task

HERE = Path(__file__).resolve().parent


@pytest.fixture(autouse=True)
def _in_this_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(HERE)  # the working directory is importable, as from the CLI


def test_a_user_task_is_built_with_its_data_and_trains() -> None:
    task = get_task("user_tasks:parity")
    assert isinstance(task, Task) and task.name == "parity" and len(task.train[1]) == 256
    assert get_task("user_tasks:parity") is task  # cached like a built-in
    assert len(get_task("user_tasks:parity", "96").train[1]) == 96
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 2))
    settings = {name: field.default for name, field in TRAIN_FIELDS.items()}
    result = task.fit(model, settings, seed=0, budget_epochs=2, test=True)
    assert result.ok and set(result.metrics) >= {"val_accuracy", "test_accuracy"}


@pytest.mark.parametrize(("name", "message", "hint"), [
    ("no_such_module:make", "cannot import module 'no_such_module'", "importable"),
    ("user_tasks:parit", "has no function 'parit'", "did you mean 'parity'"),
    ("user_tasks:not_a_task", "returned dict, not a Task", "docs/tasks.md"),
    ("user_tasks:", "not of the form module:function", "mytasks:make_task"),
    ("a:b:c", "not of the form module:function", "mytasks:make_task"),
])
def test_user_task_mistakes_are_arch_errors(name: str, message: str, hint: str) -> None:
    with pytest.raises(ArchError) as caught:
        get_task(name)
    text = caught.value.render()
    assert message in text and hint in text


def test_a_function_that_cannot_take_the_call_is_reported() -> None:
    with pytest.raises(ArchError, match="cannot be called") as caught:
        get_task("user_tasks:needs_arguments")
    assert "data=" in caught.value.render()


def test_a_module_that_fails_its_own_import_keeps_its_traceback(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch
                                                                ) -> None:
    (tmp_path / "broken_tasks.py").write_text("import no_such_dependency_here\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ModuleNotFoundError, match="no_such_dependency_here"):
        get_task("broken_tasks:make")


def test_the_worked_example_of_docs_tasks_md_runs(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    import archc

    doc = (HERE.parents[1] / "docs" / "tasks.md").read_text()
    module = doc.split("```python\n")[1].split("```")[0]
    spec = doc.split("```\nspace ")[1].split("```")[0]
    (tmp_path / "mytasks.py").write_text(module)
    monkeypatch.chdir(tmp_path)
    task = get_task("mytasks:parity")
    space = archc.loads("space " + spec)
    point = space.sample(seed=0)
    torch.manual_seed(0)
    compiled = archc.compile(space, point, task.constants, task.dims)
    settings = {name: field.default for name, field in TRAIN_FIELDS.items()}
    assert task.fit(compiled, settings, seed=0, budget_epochs=1).ok

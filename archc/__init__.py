"""archc: a declarative architecture-search language and compiler.

The public API mirrors the CLI: `load` / `loads` check a spec into a `Space` (`archc check`);
`Space.sample`, `Space.enumerate`, `Space.validate` work on its points (`archc sample`);
`compile` turns a point into a torch.fx GraphModule with its cost (`archc compile`);
`archc.search(spec, …)` runs a search and returns its optuna study (`archc search`);
`format_spec` prints canonical source (`archc fmt`).

Package map:
  archc.errors    Span, Diagnostic and the ArchError family (the user's errors)
  archc.dsl       the .arch language: grammar, parser, checker, Space IR, Point, printer
  archc.library   the block library (signatures now; implementations follow)
  archc.compiler  points to torch models (decode, lowering, export)
  archc.search    searchers, studies, tasks and the trainer
  archc.cli       the `archc` command
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from archc.errors import ArchError, CheckError, Diagnostic, ParseError, PointError, SpaceError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from archc.compiler.pipeline import Compiled
    from archc.dsl.point import Point
    from archc.dsl.signature import Registry
    from archc.dsl.space import Space

__all__ = ["load", "loads", "compile", "format_spec", "default_registry", "ArchError",
           "CheckError",
           "Diagnostic", "ParseError", "PointError", "SpaceError", "Point", "Space"]
__version__ = "0.1.0"


def default_registry() -> Registry:
    """The standard block library's signatures (importing it does not import torch)."""
    from archc.library import REGISTRY
    return REGISTRY


def load(path: str | Path, registry: Registry | None = None) -> Space:
    """Parse and check the spec at `path`; raises an ArchError subclass on bad input."""
    from archc.dsl.check import check
    from archc.dsl.parser import parse_file
    path = Path(path)
    return check(parse_file(path), registry or default_registry(), base=path.parent)


def loads(text: str, registry: Registry | None = None, name: str = "<string>",
          base: str | Path = ".") -> Space:
    """Parse and check spec text (imports resolve relative to `base`)."""
    from archc.dsl.check import check
    from archc.dsl.parser import parse
    return check(parse(text, name), registry or default_registry(), base=Path(base))


def compile(space: Space, point: Mapping[str, object], task: Mapping[str, object] | None = None,
            dims: Mapping[str, int] | None = None) -> Compiled:
    """A point as a torch.fx GraphModule, with its Arch and cost (`archc compile`)."""
    from archc.compiler.pipeline import compile_point
    return compile_point(space, point, task, dims)


def format_spec(text: str, name: str = "<string>") -> str:
    """Canonical source for spec text (`archc fmt`)."""
    from archc.dsl.parser import parse
    from archc.dsl.printer import format_module
    return format_module(parse(text, name))


def __getattr__(name: str) -> object:
    if name == "Point":
        from archc.dsl.point import Point
        return Point
    if name == "Space":
        from archc.dsl.space import Space
        return Space
    if name == "search":  # the subpackage, callable as `archc.search(spec, …)`; loaded lazily
        import importlib
        return importlib.import_module("archc.search")
    raise AttributeError(name)

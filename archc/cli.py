"""The `archc` command: parse flags, call one library function, render the result.

User errors (ArchError) print as diagnostics on stderr and exit with status 1; anything else is a
bug in archc and keeps its traceback. Heavy imports happen inside the commands that need them,
so `archc check` starts fast.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Annotated, Any

import typer

from archc.errors import ArchError

app = typer.Typer(
    name="archc",
    help="A declarative architecture-search language and compiler.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

Spec = Annotated[Path, typer.Argument(help="A .arch spec file.", show_default=False)]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON for machines.")]


def user_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Print an ArchError's diagnostics and exit 1; let every other exception through."""

    @wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except ArchError as err:
            print(err.render(), file=sys.stderr)
            raise typer.Exit(1) from None

    return run


def _console() -> Any:
    from rich.console import Console
    return Console()


@app.command()
@user_errors
def check(spec: Spec, as_json: AsJson = False) -> None:
    """Check a spec and print its space: a tree with per-branch sizes, and the totals."""
    import archc
    space = archc.load(spec)
    if as_json:
        print(json.dumps(space.summary(), indent=2))
        return
    from archc.render import space_summary, space_tree
    console = _console()
    console.print(space_tree(space), soft_wrap=True)
    console.print(space_summary(space))


@app.command()
@user_errors
def sample(
    spec: Spec,
    seed: Annotated[int, typer.Option(help="Seed of the random generator.")] = 0,
    n: Annotated[int, typer.Option("-n", help="How many points.", min=1)] = 1,
    uniform: Annotated[str, typer.Option(
        help="decision: each decision uniformly; arch: every architecture equally likely.")
    ] = "decision",
    as_json: AsJson = False,
) -> None:
    """Sample points of a spec's space (each satisfies every `require`)."""
    import random

    import archc
    if uniform not in ("decision", "arch"):
        raise archc.ArchError(f"--uniform must be 'decision' or 'arch', not '{uniform}'")
    space = archc.load(spec)
    rng = random.Random(seed)
    points = [space.sample(rng, uniform=uniform) for _ in range(n)]
    if as_json:
        for point in points:
            print(point.to_json())
        return
    from archc.render import points_table
    _console().print(points_table(points, space))


@app.command()
@user_errors
def fmt(
    spec: Spec,
    write: Annotated[bool, typer.Option("--write", "-w", help="Rewrite the file.")] = False,
    check_only: Annotated[bool, typer.Option(
        "--check", help="Exit 1 if the file is not canonically formatted.")] = False,
) -> None:
    """Print a spec in canonical form (comments kept)."""
    import archc
    from archc.dsl.parser import parse_file
    from archc.dsl.printer import format_module
    text = format_module(parse_file(spec))
    if check_only:
        if spec.read_text(encoding="utf-8") != text:
            raise archc.ArchError(f"{spec} is not formatted", hint=f"run `archc fmt -w {spec}`")
        return
    if write:
        spec.write_text(text, encoding="utf-8")
        return
    sys.stdout.write(text)


def _pairs(items: list[str], flag: str) -> dict[str, int]:
    """`--const classes=10` → {"classes": 10}; a malformed item is a user error naming the flag."""
    out: dict[str, int] = {}
    for item in items:
        name, _, value = item.partition("=")
        if not name or not value.lstrip("-").isdigit():
            raise ArchError(f"{flag} takes NAME=INTEGER, not '{item}'",
                            hint=f"e.g. {flag} classes=10")
        out[name.strip()] = int(value)
    return out


@app.command("compile")
@user_errors
def compile_(
    spec: Spec,
    point: Annotated[Path | None, typer.Option(
        "--point", help="A point as JSON (default: one sampled with --seed).")] = None,
    seed: Annotated[int, typer.Option(help="Seed for the sampled point.")] = 0,
    const: Annotated[list[str] | None, typer.Option(
        "--const", help="A task constant, e.g. --const classes=10 (repeatable).")] = None,
    dim: Annotated[list[str] | None, typer.Option(
        "--dim", help="A symbolic input size, e.g. --dim t=128 (repeatable).")] = None,
    code: Annotated[bool, typer.Option("--code", help="Print the generated code.")] = False,
    out: Annotated[Path | None, typer.Option(
        "-o", "--out", help="Export to this folder: model.py + weights, or a .pt2 program.")
    ] = None,
    format: Annotated[str, typer.Option(
        "--format", help="py: model.py (imports only torch) + weights.safetensors; "
        "pt2: a torch.export program.")] = "py",
) -> None:
    """Compile one point of a spec to a torch.fx model: a table of its blocks (path, output
    shape, parameters, FLOPs) with totals, its code, or an export to a folder."""
    import archc
    from archc.dsl.point import Point
    space = archc.load(spec)
    task = _pairs(const or [], "--const")
    if point is None:
        chosen = space.sample(seed=seed, uniform="arch", task=task)
    else:
        try:
            chosen = Point.from_json(point.read_text(encoding="utf-8"))
        except OSError as err:
            raise ArchError(f"cannot read {point}: {err.strerror}") from None
    if format not in ("py", "pt2"):
        raise ArchError(f"--format must be py or pt2, not '{format}'")
    built = archc.compile(space, chosen, task, _pairs(dim or [], "--dim"))
    if out is not None:
        from archc.compiler.export import export
        written = export(built.module, space.name, built.point, out, format=format)
        for path in written:
            print(path)
        return
    if code:
        sys.stdout.write(built.module.code.strip("\n") + "\n")
        return
    from archc.render import compiled_table
    _console().print(compiled_table(built))


@app.command()
@user_errors
def blocks(
    name: Annotated[str | None, typer.Argument(help="Show one block in full.")] = None,
) -> None:
    """List the block library: names, hyperparameters with domains and defaults, docs."""
    import archc
    from archc.errors import did_you_mean
    registry = archc.default_registry()
    from archc.render_blocks import block_detail, block_table
    console = _console()
    if name is None:
        console.print(block_table(registry))
        return
    if name not in registry:
        raise archc.ArchError(f"unknown block '{name}'",
                              hint=did_you_mean(name, registry) or "`archc blocks` lists them")
    console.print(block_detail(registry[name]))


def _register() -> None:
    """The search and study commands live in their own modules (cli_search, cli_study)."""
    from archc.cli_search import search
    from archc.cli_study import evaluate, export, show
    for command in (search, show, evaluate, export):
        app.command()(user_errors(command))


_register()


def main() -> None:
    """Entry point of the `archc` console script."""
    if hasattr(sys, "set_int_max_str_digits"):
        sys.set_int_max_str_digits(0)  # `archc check --json` prints exact sizes of any length
    app()


if __name__ == "__main__":
    main()

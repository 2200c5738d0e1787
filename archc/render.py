"""Rich renderings of spaces and points for the CLI, and their plain-JSON forms.

Nothing here decides anything: it shows what the dsl computed (sizes come from `Space.sizes`).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from rich.markup import escape
from rich.table import Table
from rich.text import Text

from archc.dsl import ir
from archc.dsl.domain import Domain
from archc.dsl.point import Point
from archc.dsl.space import Space, count_text

if TYPE_CHECKING:
    from archc.compiler.pipeline import Compiled

__all__ = ["space_tree", "space_summary", "points_table", "fmt_size"]


def fmt_size(n: int) -> str:
    """`15,625` for small sizes, `7.6e8 (761,871,096)` for larger, `≈10^123` for huge."""
    if n < 10**6:
        return f"{n:,}"
    if n < 10**15:
        return f"{n:.2e} ({n:,})"
    return count_text(n)


class Tree:
    """A labelled tree drawn with guide lines. rich's own Tree re-measures and wraps every
    label; a spec's tree has hundreds of short labels, and drawing them as plain lines keeps
    `archc check` fast (benchmarks/RESULTS.md)."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.children: list[Tree] = []

    def add(self, label: str) -> Tree:
        child = Tree(label)
        self.children.append(child)
        return child

    def __rich__(self) -> Text:
        lines = [Text.from_markup(self.label)]
        self._draw(lines, "")
        return Text("\n").join(lines)

    def _draw(self, lines: list[Text], indent: str) -> None:
        for i, child in enumerate(self.children):
            last = i == len(self.children) - 1
            guide = Text(indent + ("└── " if last else "├── "), style="dim")
            lines.append(guide + Text.from_markup(child.label))
            child._draw(lines, indent + ("    " if last else "│   "))


def space_tree(space: Space) -> Tree:
    """The space as a tree: blocks, decisions with their domains, branches with their sizes."""
    root = Tree(f"[bold]space {escape(space.name)}[/]  [dim]{fmt_size(space.size)} points[/]")
    builder = _TreeBuilder(space)
    builder.seq(space.body, root)
    if space.train.steps:
        builder.seq(space.train, root.add("[bold]train[/]"))
    return root


class _TreeBuilder:
    def __init__(self, space: Space) -> None:
        self.sizes = space.sizes

    def seq(self, seq: ir.Seq | None, tree: Tree) -> None:
        for step in seq.steps if seq else ():
            self.step(step, tree)

    def step(self, step: ir.Node, tree: Tree) -> None:
        match step:
            case ir.InputDecl():
                dims = "" if step.dims is None else f"[{', '.join(_dim(d) for d in step.dims)}]"
                tree.add(escape(f"input {step.name}: {step.dtype}{dims}"))
            case ir.Let():
                self.value(f"let {_last(step.path)}", step.value, tree)
            case ir.Apply():
                self.value(_last(step.path), step.block, tree)
            case ir.Inline():
                self.seq(step.body, tree.add(f"{step.name or 'group'}"))
            case ir.Bind():
                node = tree.add(f"{step.name or '·'} = …") if self.sizes.of(step) > 1 or \
                    step.name else tree
                self.flow(step.flow, node)
            case ir.Return():
                self.flow(step.flow, tree.add("return"))
            case ir.Choose():
                node = tree.add(_site(step.path, f"one of {len(step.options)}",
                                      self.sizes.of(step)))
                for key, body in step.options:
                    self.seq(body, node.add(f"[cyan]{key}[/] [dim]({self.sizes.of(body):,})[/]"))
            case ir.Maybe():
                node = tree.add(_site(step.path, "optional", self.sizes.of(step)))
                self.seq(step.body, node)
            case ir.Repeat():
                count = step.count.domain.describe() if isinstance(step.count, ir.Decide) \
                    else f"×{getattr(step.count, 'value', '?')}"
                share = f", share = {step.share}" if step.share != "none" else ""
                node = tree.add(_site(step.path, f"{count}{share}", self.sizes.of(step)))
                self.seq(step.body, node)
            case ir.Require():
                tree.add(f"[yellow]require[/] {escape(step.text)}" +
                         (" [dim](after lowering)[/]" if step.deferred else ""))

    def value(self, label: str, value: ir.Value, tree: Tree) -> None:
        match value:
            case ir.Decide():
                tree.add(_site(value.path, _domain(value.domain), value.domain.size))
            case ir.Switch():
                node = tree.add(_site(value.path, f"one_of ({len(value.options)})",
                                      self.sizes.of(value)))
                for key, option in value.options:
                    self.value(f"[cyan]{key}[/]", option, node)
            case ir.Block():
                fixed = [f"{k} = {_short(v)}" for k, v in value.args if self.sizes.of(v) == 1
                         and not isinstance(v, ir.Block)]
                node = tree.add(f"{label}: [green]{value.name}[/]"
                                + escape(f"({', '.join(fixed)})" if fixed else ""))
                for key, arg in value.args:
                    if self.sizes.of(arg) > 1 or isinstance(arg, ir.Block):
                        self.value(key, arg, node)
                self.seq(value.body, node)
            case ir.DefBlock():
                self.seq(value.body, tree.add(f"{label}: [green]{value.name}[/]"))
            case ir.Op() if self.sizes.of(value) > 1:
                node = tree.add(f"{label} = …")
                for arg in value.args:
                    self.value(label, arg, node)
            case ir.Ref():
                tree.add(f"{escape(label)}: uses [magenta]{escape(value.path)}[/] (tied)")
            case _:
                if label.startswith("let"):
                    tree.add(f"{label} = {escape(_short(value))}")

    def flow(self, flow: ir.Flow, tree: Tree) -> None:
        match flow:
            case ir.Applied():
                self.value(_last(flow.path), flow.block, tree)
            case ir.Merge():
                for item in flow.items:
                    self.flow(item, tree)


def _site(path: str, what: str, size: int) -> str:
    return f"[magenta]{escape(path)}[/] {escape(what)} [dim]({size:,})[/]"


def _domain(domain: Domain) -> str:
    return domain.describe()


def _last(path: str) -> str:
    return path.rsplit(".", 1)[-1] if path else "·"


def _dim(d: ir.Value | str) -> str:
    return d if isinstance(d, str) else _short(d)


def _short(v: ir.Value) -> str:
    match v:
        case ir.Const(value=bool() as b):
            return "true" if b else "false"
        case ir.Const(value=str() as s):
            return f'"{s}"'
        case ir.Const():
            return str(v.value)
        case ir.Ref():
            return v.path
        case ir.TaskConst():
            return f"task.{v.name}"
        case ir.Op():
            return f"({f' {v.op} '.join(_short(a) for a in v.args)})"
        case ir.Block():
            return v.name
    return "…"


def space_summary(space: Space) -> Table:
    table = Table.grid(padding=(0, 2))
    arch = space.architecture().size
    rows = [
        ("decisions", f"{len(space.decisions())}"),
        ("points", fmt_size(space.size)),
        ("architectures", fmt_size(arch)),
        ("log10 size", f"{space.log10_size:.2f}"),
    ]
    if space.continuous:
        rows.append(("continuous", ", ".join(space.continuous)))
    if space.requires:
        rows.append(("constraints", f"{len(space.requires)} (sizes count points before them)"))
    for k, v in rows:
        table.add_row(f"[bold]{k}[/]", v)
    return table


def points_table(points: list[Point], space: Space) -> Table:
    """One row per decision (in the space's canonical order), one column per point."""
    table = Table(show_header=True, header_style="bold")
    table.add_column("decision")
    for i in range(len(points)):
        table.add_column(f"#{i}")
    rank = {template: i for i, (template, _) in enumerate(space.decisions())}
    paths = sorted({p for point in points for p in point}, key=lambda p: _walk_order(p, rank))
    for path in paths:
        table.add_row(path, *(_cell(point.get(path)) for point in points))
    return table


def _walk_order(path: str, rank: dict[str, int]) -> list[int]:
    """Sort key giving the canonical walk order: a repeat's copies one after another, each
    with its decisions in spec order (`layers[0].…` before `layers[1].…`)."""
    parts = re.split(r"\[(\d+)\]", path)  # "a[3].b[1].c" -> ["a", "3", ".b", "1", ".c"]
    key: list[int] = []
    prefix = ""
    for name, index in zip(parts[0::2], parts[1::2], strict=False):
        prefix += name
        key += [rank.get(prefix, len(rank)), int(index)]
        prefix += "[*]"
    return [*key, rank.get(prefix + parts[-1], len(rank))]


def _cell(value: object) -> str:
    if value is None:
        return "[dim]—[/]"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value).lower() if isinstance(value, bool) else str(value)


def compiled_table(built: Compiled) -> Table:
    """`archc compile`: one row per block instance (shared modules count their parameters
    once), then the totals of the cost model."""
    from archc.compiler.cost import counts
    arch = built.arch
    table = Table(show_header=True, header_style="bold", title=f"{arch.name}: one point")
    for column in ("block", "path", "output", "params", "FLOPs"):
        table.add_column(column, justify="right" if column in ("params", "FLOPs") else "left")
    seen: set[str] = set()
    for node, data in arch.graph.nodes(data=True):
        if data["kind"] not in ("block", "hc_width", "collapse") or not arch.args(node):
            continue
        own, work = counts(data, arch.type_of(arch.args(node)[0]))
        key = data.get("share") or f"#{node}"
        params = "shared" if key in seen else f"{own:,}"
        seen.add(key)
        table.add_row(_row_name(data), escape(data["path"]), escape(str(data["type"])), params,
                      f"{work:,}")
    total = built.cost
    table.add_section()
    table.add_row("[bold]total[/]", "", f"{total.activation_bytes:,} B activations",
                  f"[bold]{total.params:,}[/]", f"[bold]{total.flops:,}[/]")
    return table


def _row_name(data: dict[str, Any]) -> str:
    """A block's name; a hyper-connection site or collapse says which mix or how."""
    if data["kind"] == "hc_width":
        return f"connection ({data['h'].mix.name})"
    if data["kind"] == "collapse":
        return f"collapse ({data['h'].how})"
    return str(data["name"])

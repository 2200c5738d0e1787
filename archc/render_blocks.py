"""Rich renderings of the block library for `archc blocks`."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text

from archc.dsl.signature import Hyper, Registry, Signature

__all__ = ["block_table", "block_detail"]


def _default(h: Hyper) -> str:
    if h.required:
        return "required"
    if isinstance(h.default, bool):
        return "true" if h.default else "false"
    return f'"{h.default}"' if isinstance(h.default, str) and h.type == "str" else str(h.default)


def _signature_line(sig: Signature) -> str:
    params = ", ".join(h.name if h.required else f"{h.name} = {_default(h)}" for h in sig.params)
    return f"{sig.name}({params})" + (" { … }" if sig.body else "")


def block_table(registry: Registry) -> Table:
    """One row per block, grouped by kind, sorted by name."""
    table = Table(show_header=True, header_style="bold", expand=False)
    table.add_column("block")
    table.add_column("kind")
    table.add_column("signature")
    table.add_column("doc", overflow="fold", max_width=60)
    for sig in sorted(registry.values(), key=lambda s: (s.kind != "layer", s.name)):
        table.add_row(sig.name, sig.kind, _signature_line(sig), sig.doc.split(". ")[0])
    return table


def block_detail(sig: Signature) -> Group:
    """One block: its signature, doc, citation, and a table of its hyperparameters."""
    params = Table(show_header=True, header_style="bold")
    for column in ("hyperparameter", "type", "domain", "default", "doc"):
        params.add_column(column)
    for h in sig.params:
        params.add_row(h.name, h.type, h.describe(), _default(h), h.doc)
    parts: list[Text | Table] = [Text(_signature_line(sig), style="bold green"), Text(sig.doc)]
    if sig.cite:
        parts.append(Text(f"cite: {sig.cite}", style="dim"))
    if sig.params:
        parts.append(params)
    return Group(*parts)

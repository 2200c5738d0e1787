"""The Arch nodes of hyper-connections, and their rules: what decode checks, what cost counts,
what lowering builds.

`hyper(streams = n, mix = m) { body }` and `hyperloop(…)` decode into five node kinds, all with
`h` (their resolved hyperparameters) like blocks, so identity labels them by what they compute:

| kind       | inputs         | computes                                 | lowered as             |
|------------|----------------|------------------------------------------|------------------------|
| `expand`   | x (…, d)       | n copies of x: the streams (…, s, d)     | `expand_streams(x, n)` |
| `hc_width` | streams        | a site's width connection: the tuple     | `call_module`          |
|            |                | (layer input, H_res·streams, H_post)     | (a Connection)         |
| `hc_item`  | an `hc_width`  | item 0, 1 or 2 of that tuple             | `operator.getitem`     |
| `hc_depth` | mixed, post, y | mixed + H_postᵀ·y: the streams after it  | `depth_connection`     |
| `collapse` | streams        | one tensor (…, d) again (sum, or a head) | `call_module` Collapse |

A node holding streams has `streams = n` in its data and the *per-stream* type as `type`, so
every shape rule of the body reads the width as usual; the activation bytes are n times the
type's. The weights live in `hc_width` (one Connection per site, its parameters counted by the
library's formula `site_params`) and in `collapse` (`collapse_params`); the three functions
have none. A site's layer nodes sit between its `hc_item` 0 and its `hc_depth`, so passes,
pruning and hashing see every layer as before.

>>> problem(4, "kromhc", TensorType((8, 16), "seq")) is None
True
>>> problem(4, "mhc", TensorType((16, 8, 8), "chw")).split(":")[0]
'hyper-connections widen a stream of vectors'
"""

from __future__ import annotations

from typing import Any

from archc.library import hyper_connections as formulas
from archc.library.tensor import Hyperparams, TensorType

__all__ = ["KINDS", "problem", "params", "flops", "build", "function", "is_pure", "node_h"]

KINDS = ("expand", "hc_width", "hc_item", "hc_depth", "collapse")
"""The node kinds this file describes (see the table above)."""

def problem(streams: int, mix: str, x: TensorType) -> str | None:
    """What is wrong with hyper-connecting `x` on `streams` streams with `mix`, or None."""
    if x.layout not in ("seq", "flat") or x.dtype != "float":
        return (f"hyper-connections widen a stream of vectors: they take float (t, d) or (d,), "
                f"got {x}")
    try:
        formulas.check_site(mix, streams)
    except ValueError as err:
        return str(err)
    return None


def params(data: dict[str, Any], x: TensorType) -> int:
    """Exact parameter count of a node of one of `KINDS` given input type `x`."""
    h = data["h"]
    if data["kind"] == "hc_width":
        return int(formulas.site_params(h.mix.name, dict(h.mix.h), h.streams, x.last))
    if data["kind"] == "collapse":
        return int(formulas.collapse_params(h.how, h.streams, x.last))
    return 0


def flops(data: dict[str, Any], x: TensorType) -> int:
    """FLOPs per example as torch's flop counter counts them: a site's matmuls, its depth
    connection included (one baddbmm, counted in `site_flops`), and the head collapse; the
    expansion and the getitems count 0."""
    h = data["h"]
    if data["kind"] == "hc_width":
        return int(formulas.site_flops(h.mix.name, dict(h.mix.h), h.streams, x.last,
                                       x.positions))
    if data["kind"] == "collapse":
        return int(formulas.collapse_flops(h.how, h.streams, x.last, x.positions))
    return 0


def build(data: dict[str, Any], x: TensorType) -> Any:
    """The module of an `hc_width` or `collapse` node."""
    from archc.library.hyper_connections_modules import Collapse, Connection
    h = data["h"]
    if data["kind"] == "hc_width":
        return Connection(h.mix.name, h.streams, x.last, layer=h.layer, **dict(h.mix.h))
    return Collapse(h.streams, x.last, h.how)


def function(kind: str) -> Any:
    """The plain function an `expand` or `hc_depth` node calls."""
    from archc.library.hyper_connections_modules import depth_connection, expand_streams
    return {"expand": expand_streams, "hc_depth": depth_connection}[kind]


def is_pure(kind: str) -> bool:
    """No weights, no randomness: equal nodes on equal inputs compute the same."""
    return kind in ("expand", "hc_item", "hc_depth")


def node_h(**values: Any) -> Hyperparams:
    return Hyperparams(values)

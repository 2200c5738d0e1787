"""The Arch: one concrete network as a graph of block instances, before any weight exists.

Nodes are numbered in the order `decode` creates them (a topological order). Each node's data:

| key     | meaning                                                                    |
|---------|----------------------------------------------------------------------------|
| `kind`  | `input`, `block`, `add`, `concat`, or a hyper-connection kind (below)      |
| `name`  | the input's name, or the block's name (`linear`, `conv_bn_relu`)           |
| `h`     | the block's resolved `Hyperparams` (blocks and hyper-connection nodes)     |
| `type`  | the output `TensorType` (per stream, for a node holding streams)           |
| `streams` | n, on nodes whose output holds n hyper-connected streams                 |
| `path`  | the decision path of the statement that made it (`layers[2].mlp`)          |
| `span`  | where in the spec it was written                                           |
| `share` | nodes with the same key share one module (`loop`, `share = weights`)       |

Edges run from inputs to users, with `index` giving the argument position.

`hyper { }` and `hyperloop` add five kinds (compiler/hyper.py has the table): `expand` (x to n
streams), per site `hc_width` (the site's Connection module; a tuple output), three `hc_item`
(layer input, mixed streams, H_post), the layer's nodes on the first, and `hc_depth` (the
streams after the site); then `collapse`. So a site's layer is ordinary nodes between its
`hc_item` 0 and its `hc_depth`, which cost, identity, passes and lowering see as usual.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from archc.library.tensor import TensorType

__all__ = ["Arch"]


@dataclass
class Arch:
    """A decoded network: `graph`, its input and output nodes, and the space's name."""

    name: str
    graph: nx.MultiDiGraph = field(default_factory=nx.MultiDiGraph)  # `a + a` keeps both
    inputs: list[int] = field(default_factory=list)
    output: int = -1

    def add(self, kind: str, name: str, type: TensorType, args: tuple[int, ...] = (),
            **data: Any) -> int:
        node = self.graph.number_of_nodes()
        self.graph.add_node(node, kind=kind, name=name, type=type, **data)
        for index, arg in enumerate(args):
            self.graph.add_edge(arg, node, index=index)
        return node

    def args(self, node: int) -> list[int]:
        """The node's inputs, in argument order."""
        preds = self.graph.in_edges(node, data="index")
        return [src for src, _, _ in sorted(preds, key=lambda e: e[2])]

    def type_of(self, node: int) -> TensorType:
        return self.graph.nodes[node]["type"]

    def blocks(self) -> Iterator[tuple[int, dict[str, Any]]]:
        """Block nodes in creation (topological) order, with their data."""
        for node, data in self.graph.nodes(data=True):
            if data["kind"] == "block":
                yield node, data

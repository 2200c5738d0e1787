"""Structural identity: one hash per network, so that two points building the same one are
trained once.

`structural_hash(arch)` first `prune`s what cannot change the output, then hashes the graph
that is left with Weisfeiler–Lehman (WL). Pruning rewrites, each exact for every weight:

- a `zero` block is zero whatever it is given, so its input edge goes; a block in
  `ZERO_PRESERVING` given zero gives zero;
- a sum drops its zero terms and is flattened into the sums that use it (addition is
  associative and commutative); a sum of one term is that term, of none is zero;
- `identity` (and a concat of one tensor) is its input;
- parameter-free, deterministic nodes computing the same thing from the same inputs are one
  node (a pool of x written twice is one pool); every zero of one type is one node;
- nodes that do not reach the output go (the inputs stay: they are the signature).

The hash then labels each node with what it computes — block name, canonical hyperparameters
(sorted; a block given as a hyperparameter nested), output type; an input by its position —
and each edge with the argument positions it fills where order matters (concat) or with its
multiplicity in a sum, where it does not (`a + a` is not `a`). Modules shared by `loop` or
`share = weights` are tied by an extra node, so tied and untied weights differ.

Why WL and not exact isomorphism: a hash must be a canonical *form*, comparable without the
other graph. Exact canonical labelling (nauty, bliss) is a C dependency with no polynomial
bound; pairwise `nx.is_isomorphic` would compare each point with every earlier one. WL runs in
O(rounds · edges), never splits isomorphic graphs, and with rich labels rarely joins others:
on all of NAS-Bench-201, every hash class is one isomorphism class (benchmarks/nb201_hash.py
--exact). It runs as many rounds as the graph's longest path, so the output's label sees every
node. Known limits:

- 1-WL cannot separate graphs in which every node sees the same labels at every depth: six
  linears a_i of x, c_i = linear(a_i + a_j), summed, wired as one ring (j = i + 1 mod 6) or as
  two (tests/compiler/test_identity.py keeps this as an expected failure). Symmetric wiring of
  identical blocks is needed, rare in search spaces but possible in wiring searches.
- Pruning is syntactic: a block outside `ZERO_PRESERVING` keeps a zero input
  (`conv_bn_relu(0)` is batchnorm's learned shift β, not zero); aliases such as
  `conv_bn_relu(out = 0)` against the explicit channel count are not identified; a `def` given
  as a hyperparameter is labelled by its source, not by the decisions inside it.
- Hashes are stable for one networkx version (its WL changed in 3.5).

>>> import archc
>>> from archc.compiler.decode import decode
>>> def h(body): return structural_hash(decode(archc.loads(f"space s {{ {body} }}"), {}))
>>> plain = h("input x: float[8]; linear(8)")
>>> plain == h("input x: float[8]; a = linear(8)(x); return a + zero(x)")
True
>>> plain == h("input x: float[8]; a = linear(8)(x); return a + x")
False
"""

from __future__ import annotations

import hashlib
import warnings
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

import networkx as nx

from archc.compiler import hyper
from archc.compiler.arch import Arch
from archc.compiler.decode import BlockSpec
from archc.library.base import implementation
from archc.library.tensor import Hyperparams, TensorType

__all__ = ["structural_hash", "prune", "hashed_graph", "ZERO_PRESERVING"]

ZERO_PRESERVING = frozenset({"identity", "avg_pool", "max_pool", "global_avg_pool", "flatten",
                             "dropout", "relu", "gelu", "silu", "tanh"})
"""Blocks f with f(0) = 0 whatever their weights and hyperparameters; any other block keeps its
zero input. The rule goes by name only, as the fx pass `prune_zero_edges` does (fx nodes carry
no hyperparameters), so the cost of `prune(arch)` is the cost of the lowered module: a linear
without bias also maps 0 to 0 but is not listed."""

_RANDOM = frozenset({"dropout"})
"""Parameter-free blocks that are not functions of their input: never merged."""


def structural_hash(arch: Arch) -> str:
    """A hex digest equal for two Archs that build the same network (see the module docs)."""
    graph = hashed_graph(arch)
    rounds = max(1, nx.dag_longest_path_length(graph))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # networkx notes its 3.5 change each call
        return nx.weisfeiler_lehman_graph_hash(graph, edge_attr="label", node_attr="label",
                                               iterations=rounds)


def prune(arch: Arch) -> Arch:
    """The Arch computing the same function of the same live weights, without dead parts.

    Its graph is a MultiDiGraph (`a + a` keeps both terms); a zero whose input was dead has
    none. It is for identity and analysis: lowering prunes the fx graph itself (passes.py)."""
    pruner = _Pruner(arch)
    for node, data in arch.graph.nodes(data=True):
        pruner.sums[node] = pruner.visit(node, data)
    return _live(pruner.new, pruner.value(arch.output))


class _Pruner:
    """One walk in creation (topological) order: each old node's value as a sum of new nodes,
    `()` being zero."""

    def __init__(self, arch: Arch) -> None:
        self.old = arch
        self.new = Arch(arch.name, nx.MultiDiGraph())
        self.sums: dict[int, tuple[int, ...]] = {}
        self.made: dict[tuple[str, tuple[int, ...]], int] = {}

    def visit(self, node: int, data: dict[str, Any]) -> tuple[int, ...]:
        kind, args = data["kind"], self.old.args(node)
        if kind == "add":
            return tuple(sorted(term for arg in args for term in self.sums[arg]))
        if kind == "block" and len(args) == 1:
            name, given = data["name"], self.sums[args[0]]
            if name == "identity":
                return given
            if name == "zero" or (not given and name in ZERO_PRESERVING):
                return ()
        if kind == "concat" and len(args) == 1:
            return (self.value(args[0]),)
        return (self.make(data, tuple(self.value(arg) for arg in args)),)

    def value(self, node: int) -> int:
        """A new node computing old `node`: its one term, the zero of its type, or their sum."""
        terms, data = self.sums[node], self.old.graph.nodes[node]
        if len(terms) == 1:
            return terms[0]
        if not terms:
            zero = {"kind": "block", "name": "zero", "h": Hyperparams({})}
            return self.make({**data, **zero}, ())
        return self.make({**data, "kind": "add", "name": "add"}, terms)

    def make(self, data: dict[str, Any], args: tuple[int, ...]) -> int:
        """Add a node, or reuse an equal one when it has no weights and no randomness."""
        key = (_label(data), args)
        if key in self.made:
            return self.made[key]
        pure = _is_pure(data, self.new.type_of(args[0]) if args else data["type"])
        kept = ("path", "span", "h", "streams") + (() if pure else ("share",))
        extra = {k: data[k] for k in kept if k in data}
        new = self.new.add(data["kind"], data["name"], data["type"], args, **extra)
        if data["kind"] == "input":
            self.new.inputs.append(new)
        elif pure:
            self.made[key] = new
        return new


def _live(arch: Arch, output: int) -> Arch:
    """The part of `arch` that reaches `output` (and every input), renumbered in order."""
    keep = nx.ancestors(arch.graph, output) | {output, *arch.inputs}
    out, ids = Arch(arch.name, nx.MultiDiGraph()), dict[int, int]()
    for node in sorted(keep):
        data = dict(arch.graph.nodes[node])
        kind, name, type = data.pop("kind"), data.pop("name"), data.pop("type")
        args = tuple(ids[arg] for arg in arch.args(node))
        ids[node] = out.add(kind, name, type, args, **data)
        if kind == "input":
            out.inputs.append(ids[node])
    out.output = ids[output]
    return out


def hashed_graph(arch: Arch) -> nx.DiGraph:
    """The graph `structural_hash` hashes: `prune(arch)` as a simple DiGraph with a `label`
    digest on each node and edge (argument positions, or multiplicity in a sum) and one node
    per group of tied modules. Exact checks compare these with `nx.is_isomorphic`."""
    arch, graph = prune(arch), nx.DiGraph()
    for node, data in arch.graph.nodes(data=True):
        position = arch.inputs.index(node) if data["kind"] == "input" else None
        output = " => output" if node == arch.output else ""
        graph.add_node(node, text=_label(data, position) + output)
        uses = defaultdict(list)
        for index, arg in enumerate(arch.args(node)):
            uses[arg].append(index)
        for arg, indices in uses.items():
            text = f"x{len(indices)}" if data["kind"] == "add" else repr(indices)
            graph.add_edge(arg, node, label=_digest(text, 4))
    tied = defaultdict(list)
    for node, key in arch.graph.nodes(data="share"):
        if key:
            tied[key].append(node)
    for members in (m for m in tied.values() if len(m) > 1):
        graph.add_node(("tie", members[0]), text="shared weights")
        graph.add_edges_from(((("tie", members[0]), m) for m in members),
                             label=_digest("tie", 4))
    # The degrees make the concatenation networkx hashes unambiguous: with edge labels it does
    # not mark which neighbours are successors and which predecessors.
    for node, data in graph.nodes(data=True):
        data["label"] = _digest(f"{data['text']} | {graph.in_degree(node)} "
                                f"{graph.out_degree(node)}", 8)
    return graph


def _label(data: Mapping[str, Any], position: int | None = None) -> str:
    """What a node computes: `conv_bn_relu(k=3, out=0, stride=1) -> float[16, 32, 32] (chw)`."""
    if data["kind"] == "input":
        return f"input {position}: {data['type']}"
    if "h" not in data:  # sums and concats
        return f"{data['kind']} -> {data['type']}"
    return f"{data['name']}({_canonical(data['h'])}) -> {data['type']}"


def _canonical(value: object) -> str:
    """Hyperparameters as text: keys sorted, blocks nested, scalars by repr (True is not 1)."""
    if isinstance(value, BlockSpec):
        return f"{value.name}({_canonical(value.h)})"
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={_canonical(value[k])}" for k in sorted(value))
    if isinstance(value, tuple | list):
        return "[" + ", ".join(_canonical(v) for v in value) + "]"
    return repr(value)


def _is_pure(data: Mapping[str, Any], x: TensorType) -> bool:
    """No weights and no randomness: two such nodes on the same inputs compute the same."""
    if data["kind"] in ("add", "concat") or hyper.is_pure(data["kind"]):
        return True
    if data["kind"] != "block" or data["name"] in _RANDOM:
        return False
    impl = implementation(data["name"])
    return data["name"] == "zero" or (impl is not None and impl.params(data["h"], x) == 0)


def _digest(text: str, size: int) -> str:
    return hashlib.blake2b(text.encode(), digest_size=size).hexdigest()


"""decode(space, point) → Arch: the one way from a point to a concrete network.

The decoder walks the space's steps with the point's values — the same canonical order as the
dsl's walk — and adds a node per block instance, merge and input. Shapes are inferred as it
goes, from each block's `shape` rule, so a mismatch is reported before any weight exists, at the
spec line that caused it and with both tensor types.

Task constants (`task.classes`) and symbolic input sizes (`t` in `int[t]`) come from `task`
and `dims`; a missing one is a located user error.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from archc.compiler.arch import Arch
from archc.compiler.decode_hyper import HyperDecoding, Streams
from archc.dsl import ir
from archc.dsl.space import Space
from archc.dsl.walk import Trace, Unknown, concrete, evaluate
from archc.errors import CheckError, Span
from archc.library.base import implementation
from archc.library.tensor import Hyperparams, ShapeError, TensorType

__all__ = ["decode", "BlockSpec"]


@dataclass(frozen=True)
class BlockSpec:
    """A block given as a hyperparameter (`expert = mlp(ratio = 2)`), resolved."""

    name: str
    h: Hyperparams


def decode(space: Space, point: Mapping[str, Any], task: Mapping[str, Any] | None = None,
           dims: Mapping[str, int] | None = None) -> Arch:
    """Build the Arch of `point` (validated first: PointError says what is wrong with it)."""
    trace = space.validated_trace(point, task)
    decoder = _Decoder(space, trace, dict(task or {}), dict(dims or {}))
    env = _Env()
    decoder.seq(space.body, env, ())
    decoder.arch.output = env.returned if env.returned is not None else env.current
    return decoder.arch


@dataclass
class _Env:
    """The tensors in scope: the current one (sequential style) and the named ones (DAGs)."""

    current: int = -1
    flows: dict[str, int] = field(default_factory=dict)
    returned: int | None = None


@dataclass
class _Copy:
    """Where nodes being made belong: copy suffixes for module names, a sharing key, and
    whether norms share it too (in a `loop`; not under `share = weights`, as in WideNet)."""

    suffix: str = ""
    share: str | None = None
    norms: bool = False


class _Decoder(HyperDecoding):
    def __init__(self, space: Space, trace: Trace, task: dict[str, Any], dims: dict[str, int]
                 ) -> None:
        self.arch = Arch(space.name)
        self.values = trace.scope()
        self.task = task
        self.dims = dims
        self.lets: dict[str, tuple[ir.Value, tuple[int, ...]]] = {}
        self.copy = _Copy()
        self.site: Streams | None = None  # the hyper scope whose sites are being decoded

    def new_copy(self, suffix: str, share: str | None, norms: bool) -> _Copy:
        return _Copy(suffix, share, norms)

    def new_env(self, x: int) -> _Env:
        return _Env(current=x)

    # ── steps ────────────────────────────────────────────────────────────────────────────────

    def seq(self, seq: ir.Seq | None, env: _Env, ix: tuple[int, ...]) -> None:
        for step in seq.steps if seq else ():
            self.step(step, env, ix)

    def step(self, step: ir.Step, env: _Env, ix: tuple[int, ...]) -> None:
        match step:
            case ir.InputDecl():
                node = self.arch.add("input", step.name, self.input_type(step),
                                     path=step.name, span=step.span)
                self.arch.inputs.append(node)
                env.flows[step.name] = env.current = node
            case ir.Let():
                self.lets[concrete(step.path, ix)] = (step.value, ix)
            case ir.Apply():
                env.current = self.apply(step.block, env.current, concrete(step.path, ix),
                                         ix, step.span)
            case ir.Bind() | ir.Return() if self.site is not None:
                raise CheckError("named tensors cannot be hyper-connected: inside hyper { }, "
                                 "write layers and residual blocks in sequence", step.span,
                                 "wire the DAG inside a def and use the def as one layer")
            case ir.Bind():
                node = self.flow(step.flow, env, ix)
                if step.name:
                    env.flows[step.name] = node
                env.current = node
            case ir.Return():
                env.returned = env.current = self.flow(step.flow, env, ix)
            case ir.Choose():
                key = self.values[concrete(step.path, ix)]
                self.seq(dict(step.options)[str(key)], env, ix)
            case ir.Maybe():
                if self.values[concrete(step.path, ix)]:
                    self.seq(step.body, env, ix)
            case ir.Repeat():
                self.repeat(step, env, ix)
            case ir.Inline():
                self.seq(step.body, env, ix)

    def repeat(self, step: ir.Repeat, env: _Env, ix: tuple[int, ...]) -> None:
        count = int(evaluate(step.count, self.values, ix, self.task))
        outer = self.copy
        for i in range(count):
            if step.share == "none":
                self.seq(step.body, env, (*ix, i))
                continue
            share = concrete(step.path, ix) if step.share == "weights" else outer.share
            self.copy = _Copy(f"{outer.suffix}@{i}", share, outer.norms)
            self.seq(step.body, env, ix)
        self.copy = outer

    # ── blocks ───────────────────────────────────────────────────────────────────────────────

    def apply(self, value: ir.Value, x: int, path: str, ix: tuple[int, ...],
              span: Span | None) -> int:
        """Apply a block value (a block, a def, a chosen one_of option, a `let`) to node x."""
        value, ix = self.resolve(value, ix)
        if isinstance(value, ir.DefBlock) and self.site is not None and _wires(value):
            return self.site_apply(value, x, path, ix, span)  # a DAG cell: one layer
        if isinstance(value, ir.DefBlock):
            env = _Env(current=x, flows={value.inputs[0]: x} if value.inputs else {})
            self.seq(value.body, env, ix)
            return env.returned if env.returned is not None else env.current
        assert isinstance(value, ir.Block)
        if self.site is not None and value.name != "loop":
            return self.site_apply(value, x, path, ix, span)
        if value.name == "hyper":
            return self.hyper(value, x, path, ix, span)
        if value.name == "hyperloop":
            return self.hyperloop(value, x, path, ix, span)
        if value.name == "residual":
            env = _Env(current=x)
            self.seq(value.body, env, ix)
            return self.merge("add", (x, env.current), path, value.span or span)
        if value.name == "loop":
            return self.loop(value, x, path, ix, span)
        h = self.hyperparams(value, ix)
        impl = implementation(value.name)
        if impl is None:
            raise CheckError(f"'{value.name}' cannot be compiled yet: the library declares it "
                             "but does not implement it", value.span or span,
                             "`archc blocks` lists the library; implementations land by family")
        x_type = self.arch.type_of(x)
        try:
            out = impl.shape(h, x_type)
        except ShapeError as err:
            raise CheckError(str(err), value.span or span) from None
        share = f"{self.copy.share}/{path}" if self.copy.share and (
            self.copy.norms or not _is_norm(value.name)) else None
        return self.arch.add("block", value.name, out, (x,), h=h, path=path + self.copy.suffix,
                             span=value.span or span, share=share)

    def loop(self, value: ir.Block, x: int, path: str, ix: tuple[int, ...],
             span: Span | None) -> int:
        """`loop(times = r) { body }`: the body r times, one set of weights (norms included:
        it is one layer applied again, as in the Universal Transformer)."""
        times = int(evaluate(dict(value.args)["times"], self.values, ix, self.task))
        outer = self.copy
        for i in range(times):
            self.copy = _Copy(f"{outer.suffix}@{i}", outer.share or path, True)
            env = _Env(current=x)
            self.seq(value.body, env, ix)
            if self.arch.type_of(env.current) != self.arch.type_of(x):
                self.copy = outer
                raise CheckError(f"a loop body must keep its input's type: it takes "
                                 f"{self.arch.type_of(x)} and gives "
                                 f"{self.arch.type_of(env.current)}", value.span or span)
            x = env.current
        self.copy = outer
        return x

    def resolve(self, value: ir.Value, ix: tuple[int, ...]) -> tuple[ir.Value, tuple[int, ...]]:
        """Follow `let` references and chosen one_of options down to a Block or DefBlock."""
        while True:
            if isinstance(value, ir.Ref):
                value, ix = self.lets[concrete(value.path, ix)]
            elif isinstance(value, ir.Switch):
                value = dict(value.options)[str(self.values[concrete(value.path, ix)])]
            else:
                return value, ix

    def hyperparams(self, block: ir.Block, ix: tuple[int, ...]) -> Hyperparams:
        out: dict[str, Any] = {}
        for name, arg in block.args:
            value, vix = self.resolve(arg, ix)
            if isinstance(value, ir.Block):
                out[name] = BlockSpec(value.name, self.hyperparams(value, vix))
            elif isinstance(value, ir.DefBlock):
                out[name] = value
            else:
                out[name] = self.scalar(value, vix, arg.span or block.span)
        return Hyperparams(out)

    def scalar(self, value: ir.Value, ix: tuple[int, ...], span: Span | None) -> Any:
        try:
            return evaluate(value, self.values, ix, self.task)
        except Unknown as missing:
            raise CheckError(f"task.{missing} is not known here", span,
                             f"give it: `--const {missing}=…` on the command line, or "
                             f"task={{'{missing}': …}} from Python") from None
        except (ArithmeticError, ValueError, TypeError) as err:
            raise CheckError(f"this value cannot be computed: {err}", span) from None

    # ── tensors ──────────────────────────────────────────────────────────────────────────────

    def input_type(self, step: ir.InputDecl) -> TensorType:
        sizes = []
        for dim in step.dims or ():
            if isinstance(dim, str):
                if dim not in self.dims and dim not in self.task:
                    raise CheckError(f"the size '{dim}' of input '{step.name}' is not known",
                                     step.span, f"give it: `--dim {dim}=…` on the command line, "
                                     f"or dims={{'{dim}': …}} from Python")
                sizes.append(int(self.dims.get(dim, self.task.get(dim))))  # type: ignore[arg-type]
            else:
                sizes.append(int(self.scalar(dim, (), step.span)))
        layout = {1: "tokens" if step.dtype in ("int", "long") else "flat", 2: "cl",
                  3: "chw"}.get(len(sizes))
        if layout is None:
            raise CheckError(f"input '{step.name}' has {len(sizes)} axes; archc takes 1 to 3 "
                             "(features, channels × length, or channels × height × width)",
                             step.span)
        return TensorType(tuple(sizes), layout, "int" if layout == "tokens" else "float")

    def flow(self, flow: ir.Flow, env: _Env, ix: tuple[int, ...]) -> int:
        match flow:
            case ir.FlowRef():
                return env.flows[flow.name]
            case ir.Merge():
                items = tuple(self.flow(item, env, ix) for item in flow.items)
                return self.merge(flow.kind, items, "", flow.span)
            case ir.Applied():
                inputs = [self.flow(item, env, ix) for item in flow.inputs]
                return self.applied(flow, inputs, ix)
        raise TypeError(f"not a flow: {type(flow).__name__}")

    def applied(self, flow: ir.Applied, inputs: list[int], ix: tuple[int, ...]) -> int:
        value, vix = self.resolve(flow.block, ix)
        if isinstance(value, ir.DefBlock) and len(value.inputs) > 1:
            env = _Env(current=inputs[-1], flows=dict(zip(value.inputs, inputs, strict=True)))
            self.seq(value.body, env, vix)
            return env.returned if env.returned is not None else env.current
        return self.apply(value, inputs[0], concrete(flow.path, ix), vix, flow.span)

    def merge(self, kind: str, items: tuple[int, ...], path: str, span: Span | None) -> int:
        types = [self.arch.type_of(i) for i in items]
        first = types[0]
        if kind == "add":
            for other in types[1:]:
                if other != first:
                    raise CheckError(f"cannot add {first} and {other}: a sum needs tensors of "
                                     "one type", span)
            out = first
        else:
            axis = first.feature_axis
            for other in types[1:]:
                same = [s for a, s in enumerate(other.shape) if a != axis] == \
                    [s for a, s in enumerate(first.shape) if a != axis]
                if other.layout != first.layout or len(other.shape) != len(first.shape) \
                        or not same:
                    raise CheckError(f"cannot concatenate {first} and {other}: only the "
                                     "feature axis may differ", span)
            out = first.with_channels(sum(t.channels for t in types))
        return self.arch.add(kind, kind, out, items, path=path + self.copy.suffix, span=span)


def _wires(value: ir.DefBlock) -> bool:
    """A def that names tensors (a DAG cell) is one layer in a hyper body, not a sequence."""
    return bool(value.inputs) or any(isinstance(step, ir.Bind | ir.Return)
                                     for step in value.body.steps)


def _is_norm(name: str) -> bool:
    """Norms stay per copy under `share = weights`, as in WideNet."""
    return name in ("layernorm", "rmsnorm", "batchnorm")


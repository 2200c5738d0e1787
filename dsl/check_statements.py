"""Checking statements, def calls and tensor flows; part of the checker (see check.py).

Decision paths are made here, by these rules (docs/language.md lists them for users):
a block or def *statement* adds its name (`mlp`, then `mlp#2`); an argument adds the parameter
name (`mlp.ratio`); a block *value* (an argument, a `let`) adds nothing of its own; `one_of(…)`
options add their label or block name (`hyper.mix.mhc.iters`); `let x`, a binding `x = …` and
`repeat x` add `x`, and each unshared repeat copy adds `[i]` (`layers[3].mlp.ratio`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from archc.dsl import ast, ir
from archc.dsl.check_values import ANY, METRIC_NAMES, Values, head_name
from archc.dsl.domain import Choice, IntRange
from archc.dsl.scope import At, Binding, Naming, Scope, join
from archc.dsl.signature import Hyper
from archc.errors import Span, did_you_mean

if TYPE_CHECKING:
    from archc.dsl.check import DefInfo

__all__ = ["Statements"]

_SHARES = ("weights", "arch")
MAX_REPEAT = 1000
"""The most copies a `repeat` may make: more would not train, and sizes would explode."""
_DTYPES = ("float", "int", "long", "bool")


class Statements(Values):
    """Statement checking; mixed into the checker."""

    def_stack: list[str]

    def body(self, body: ast.Body, scope: Scope, top: bool = False) -> ir.Seq:
        steps: list[ir.Step] = []
        returned: Span | None = None
        for stmt in body.stmts:
            if returned is not None:
                self.error("a statement after `return` never runs", stmt.span,
                           "remove it, or move it before the `return`",
                           notes=(("the return", returned),))
                break
            if isinstance(stmt, ast.Input) and not top:
                self.error("`input` belongs at the top of a space", stmt.span)
                continue
            step = self.statement(stmt, scope)
            if isinstance(stmt, ast.Return):
                returned = stmt.span
            if step is not None:
                steps.append(step)
        return ir.Seq(tuple(steps), span=body.span)

    def statement(self, s: ast.Stmt, scope: Scope) -> ir.Step | None:
        match s:
            case ast.Input():
                return self.input(s, scope)
            case ast.Let():
                return self.let(s, scope)
            case ast.Require():
                return self.require(s, scope)
            case ast.Bind():
                return self.bind(s, scope)
            case ast.Return():
                return ir.Return(self.flow(s.value, scope, At(join(scope.prefix, "return")),
                                           Naming()), span=s.span)
            case ast.Flow():
                return self.flow_step(s, scope)
            case ast.OneOfBlock():
                return self.one_of_block(s, scope)
            case ast.Optional():
                path = join(scope.prefix, scope.naming.take(s.label or "optional"))
                return ir.Maybe(path, self.body(s.body, scope.child()), span=s.span)
            case ast.Repeat():
                return self.repeat(s, scope)
            case ast.Group():
                return ir.Inline("", scope.prefix, self.body(s.body, scope.child()), span=s.span)
        self.error("this statement cannot stand here", s.span)
        return None

    def define(self, scope: Scope, name: str, binding: Binding, span: Span | None) -> None:
        if name in scope.names:
            self.error(f"'{name}' is already defined in this scope", span,
                       notes=(("first defined here", scope.names[name].span),))
            return
        scope.names[name] = binding

    def input(self, s: ast.Input, scope: Scope) -> ir.Step:
        if s.dtype not in _DTYPES:
            self.error(f"unknown input type '{s.dtype}'", s.span,
                       did_you_mean(s.dtype, _DTYPES) or f"types: {', '.join(_DTYPES)}")
        dims: list[ir.Value | str] = []
        for d in s.dims or ():
            if isinstance(d, ast.Name) and scope.lookup(d.id) is None:
                dims.append(d.id)  # a symbolic size, like `t` in int[t]
                continue
            value, vtype = self.value(d, scope, At("<dim>"))
            if vtype == "any":
                pass  # already reported
            elif vtype != "int" or _sites(value) or _has_ref(value):
                self.error("an input size is a number, a name or a task constant", d.span,
                           "the input's shape is the task's, not a decision")
            elif isinstance(value, ir.Const) and isinstance(value.value, int) and value.value < 1:
                self.error(f"an input size must be >= 1, not {value.value}", d.span)
            dims.append(value)
        self.define(scope, s.name, Binding("flow", None, "flow", s.span), s.span)
        scope.flows = True
        return ir.InputDecl(s.name, s.dtype, None if s.dims is None else tuple(dims), span=s.span)

    def let(self, s: ast.Let, scope: Scope) -> ir.Step:
        path = join(scope.prefix, s.name)
        value, vtype = self.value(s.value, scope, At(path))
        if isinstance(value, ir.Const) or (not _sites(value) and not vtype.startswith("block")):
            bound: ir.Value = value  # no decision inside: uses may copy it
        else:
            bound = ir.Ref(path, span=s.span)
        self.define(scope, s.name, Binding("value", bound, vtype, s.span), s.span)
        return ir.Let(path, value, span=s.span)

    def require(self, s: ast.Require, scope: Scope) -> ir.Step:
        metrics = [n for n in _names(s.cond) if n in METRIC_NAMES and scope.lookup(n) is None]
        inner = scope.child()
        for m in metrics:  # compiled properties, known after lowering
            inner.names[m] = Binding("value", ir.Ref(f"${m}"), "float", s.span)
        at = At("<require>")
        cond, ctype = self.value(s.cond, inner, at)
        if at.count:
            self.error("a `require` cannot declare decisions", s.span,
                       "declare the domain with `let` first, then constrain the name")
        elif ctype not in ("bool", "any"):
            self.error(f"`require` needs a condition, not {ctype}", s.span,
                       "e.g. `require d % heads == 0`")
        text = _source_text(s.cond.span)
        return ir.Require(cond, text, bool(metrics), span=s.span)

    def bind(self, s: ast.Bind, scope: Scope) -> ir.Step:
        path = join(scope.prefix, s.name)
        flow = self.flow(s.value, scope, At(path), Naming())
        self.define(scope, s.name, Binding("flow", None, "flow", s.span), s.span)
        scope.flows = True
        return ir.Bind(s.name, flow, span=s.span)

    # ── sequential steps ─────────────────────────────────────────────────────────────────────

    def flow_step(self, s: ast.Flow, scope: Scope) -> ir.Step | None:
        """`block(args) [{ body }]` applied to the current tensor."""
        head = s.value.func if isinstance(s.value, ast.Call) else s.value
        args = s.value.args if isinstance(s.value, ast.Call) else ()
        if not scope.flows:
            self.error("no tensor to apply this to: declare an `input` first", s.span,
                       "a space's first statement is its input, e.g. `input x: float[8]`")
            return None
        if isinstance(s.value, ast.OneOf) and s.body is None:  # `one_of(a = relu, b = gelu)`
            path = join(scope.prefix, scope.naming.take("one_of"))
            value, vtype = self.value(s.value, scope, At(path))
            return self.apply_value(path, value, vtype, s.span)
        if isinstance(head, ast.Call) or not isinstance(head, ast.Name):
            flow = self.flow(s.value, scope, At(scope.prefix), scope.naming)
            return ir.Bind("", flow, span=s.span)
        name = head.id
        bound = scope.lookup(name)
        if bound is not None:
            return self.apply_bound(name, bound, s, scope)
        if name in self.defs:
            path = join(scope.prefix, scope.naming.take(name))
            if s.body is not None:
                self.error(f"def '{name}' takes no `{{ }}` body", s.body.span)
            value, vtype = self.call_def(self.defs[name], args, scope, path, s.span,
                                         as_value=False)
            if isinstance(value, ir.Seq):
                return ir.Inline(name, path, value, span=s.span)
            return self.apply_value(path, value, vtype, s.span)
        sig = self.registry.get(name)
        if sig is None:
            self.unknown(name, head.span, scope, "block")
            return None
        path = join(scope.prefix, scope.naming.take(name))
        if sig.body and s.body is None:
            self.error(f"'{name}' wraps a body", s.span,
                       f"write `{name}{'(…)' if sig.params else ''} {{ … }}`")
        elif not sig.body and s.body is not None:
            self.error(f"'{name}' takes no `{{ }}` body", s.body.span,
                       "write the steps after it, or wrap them in `residual { … }`")
        body = self.body(s.body, scope.child()) if s.body is not None and sig.body else None
        value, vtype = self.block(sig, args, scope, At(path), s.span, body)
        return self.apply_value(path, value, vtype, s.span)

    def apply_bound(self, name: str, bound: Binding, s: ast.Flow, scope: Scope) -> ir.Step | None:
        if bound.kind == "flow":
            self.error(f"'{name}' is a tensor; a statement applies a block", s.span,
                       f"to continue from '{name}', bind: `y = block({name})`")
            return None
        if isinstance(s.value, ast.Call) or s.body is not None:
            self.error(f"'{name}' is a value and cannot be called", s.span)
            return None
        path = join(scope.prefix, scope.naming.take(name))
        assert bound.value is not None  # flows were handled above
        return self.apply_value(path, bound.value, bound.type, s.span)

    def apply_value(self, path: str, value: ir.Value, vtype: str, span: Span | None
                    ) -> ir.Step | None:
        if vtype == "any":
            return None
        if vtype != "block:layer":
            what = vtype.replace("block:", "") + " block" if vtype.startswith("block") else vtype
            name = f"'{value.name}' is a {what}: it" if isinstance(value, ir.Block) \
                else f"a {what}"
            self.error(f"{name} cannot be applied to a tensor", span,
                       "mix blocks go in `hyper(mix = …)`" if "mix" in vtype else None)
            return None
        return ir.Apply(path, value, span=span)

    def one_of_block(self, s: ast.OneOfBlock, scope: Scope) -> ir.Step | None:
        path = join(scope.prefix, scope.naming.take(s.label or "one_of"))
        if not s.alternatives.stmts:
            self.error("empty one_of: nothing to choose", s.span)
            return None
        options: list[tuple[str, ir.Seq]] = []
        keys = Naming()  # unique keys, even if a def is called `alt1`
        for i, alt in enumerate(s.alternatives.stmts):
            if not isinstance(alt, ast.Flow | ast.Group | ast.Repeat | ast.Optional |
                              ast.OneOfBlock):
                self.error("a one_of alternative is a step, like `mlp(…)` or `{ … }`", alt.span)
                continue
            step = self.statement(alt, scope.child())
            if step is None:
                continue
            # a block or def is keyed by its name; a group `{ … }` (an Inline without a name,
            # whose path is only the scope's prefix) and other steps by their position
            named = isinstance(step, ir.Apply) or (isinstance(step, ir.Inline) and step.name)
            made = step.path if isinstance(step, ir.Apply | ir.Inline) else ""
            key = made.rsplit(".", 1)[-1] if named else f"alt{i + 1}"
            options.append((keys.take(key), ir.Seq((step,), span=alt.span)))
        return ir.Choose(path, tuple(options), span=s.span) if options else None

    def repeat(self, s: ast.Repeat, scope: Scope) -> ir.Step | None:
        path = join(scope.prefix, s.name if s.name else scope.naming.take("repeat"))
        count, ctype = self.value(s.count, scope, At(path))
        counts = _counts(count)
        if counts is not None and not (counts[0] >= 0 and counts[1] <= MAX_REPEAT):
            self.error(f"a repeat count is a whole number from 0 to {MAX_REPEAT}", s.count.span,
                       "e.g. `repeat 4 { … }` or `repeat n in int(2..8) { … }`")
        elif counts is None and ctype != "any":
            self.error("a repeat count is a constant or a domain like `int(2..8)`",
                       s.count.span, "a count tied to another decision is not supported: the "
                       "space's size could not be counted exactly")
        share = s.share or "none"
        if s.share is not None and s.share not in _SHARES:
            self.error(f"unknown share '{s.share}'", s.span,
                       did_you_mean(s.share, _SHARES) or "share = weights | arch")
        if s.name:
            self.define(scope, s.name, Binding("value", ir.Ref(path) if isinstance(
                count, ir.Decide) else count, "int", s.span), s.span)
        prefix = path if share != "none" else f"{path}[*]"
        body = self.body(s.body, scope.child(prefix, Naming()))
        return ir.Repeat(path, count, body, share, span=s.span)

    # ── def calls ────────────────────────────────────────────────────────────────────────────

    def call_def(self, info: DefInfo, args: tuple[ast.Arg, ...], scope: Scope, path: str,
                 span: Span | None, as_value: bool) -> tuple:
        """Expand a def at a call site. Returns (Seq, "seq") for a body def in statement
        position, else a value: the def's expression, or a DefBlock for bodies and cells."""
        node: ast.Def = info.node
        if node.name in self.def_stack:
            chain = " → ".join((*self.def_stack[self.def_stack.index(node.name):], node.name))
            return self.error(f"cyclic def: {chain}", span,
                              "a def cannot use itself, directly or through others")
        names = [p.name for p in node.params]
        given = self.match_args(node.name, names, args, span)
        inner = Scope(path, Naming(), Scope("", Naming()))  # lexical: defs see only globals
        for param in node.params:
            arg = given.get(param.name)
            if arg is not None:
                value, vtype = self.value(arg.value, scope, At(join(path, param.name)))
            elif param.default is not None:
                value, vtype = self.value(param.default, inner, At(join(path, param.name)))
            else:
                self.error(f"'{node.name}' needs '{param.name}'", span,
                           f"write `{node.name}({param.name} = …)`")
                value, vtype = ANY
            inner.names[param.name] = Binding("param", value, vtype, param.span)
        self.def_stack.append(node.name)
        try:
            return self.def_value(node, inner, path, as_value)
        finally:
            self.def_stack.pop()

    def def_value(self, node: ast.Def, inner: Scope, path: str, as_value: bool) -> tuple:
        if isinstance(node.value, ast.Expr):
            return self.value(node.value, inner, At(path))
        for flow_input in node.inputs or ():
            inner.names[flow_input.name] = Binding("flow", None, "flow", flow_input.span)
        inner.flows = True
        body = self.body(node.value, inner)
        if node.inputs is None and not as_value:
            return body, "seq"
        inputs = tuple(p.name for p in node.inputs or ())
        return ir.DefBlock(node.name, inputs, body, span=node.span), "block:layer"

    # ── tensor flows ─────────────────────────────────────────────────────────────────────────

    def flow(self, e: ast.Expr, scope: Scope, at: At, naming: Naming) -> ir.Flow:
        """An expression whose value is a tensor: a name, `a + b`, `concat(…)`, `f(…)(x)`."""
        match e:
            case ast.Name():
                bound = scope.lookup(e.id)
                if bound is not None and bound.kind == "flow":
                    return ir.FlowRef(e.id, span=e.span)
                tensors = [n for n in scope.visible()
                           if getattr(scope.lookup(n), "kind", "") == "flow"]
                self.error(f"'{e.id}' is not a tensor" if bound else f"unknown tensor '{e.id}'",
                           e.span, did_you_mean(e.id, tensors)
                           if bound is None else "tensors are inputs or bound with `name = …`")
            case ast.Binary(op="+"):
                items = (self.flow(e.left, scope, at, naming), self.flow(e.right, scope, at,
                                                                         naming))
                flat = tuple(x for i in items for x in (i.items if isinstance(i, ir.Merge) and
                                                        i.kind == "add" else (i,)))
                return ir.Merge("add", flat, span=e.span)
            case ast.Call(func=ast.Name(id="concat")):
                if len(e.args) < 2 or any(a.name for a in e.args):
                    self.error("concat takes two or more tensors", e.span)
                return ir.Merge("concat", tuple(self.flow(a.value, scope, at, naming)
                                                for a in e.args), span=e.span)
            case ast.Call():
                return self.applied(e, scope, at, naming)
            case _:
                self.error("a tensor is expected here", e.span,
                           "tensors are inputs, bindings, `a + b`, `concat(a, b)` or `f(…)(x)`")
        return ir.FlowRef("<error>", span=e.span)

    def applied(self, e: ast.Call, scope: Scope, at: At, naming: Naming) -> ir.Flow:
        base = head_name(e.func)
        if base is None:
            self.error("a tensor is expected here", e.span)
            return ir.FlowRef("<error>", span=e.span)
        path = join(at.path, naming.take(base))
        value, vtype = self.value(e.func, scope, At(path))
        inputs = tuple(self.flow(a.value, scope, at, naming) for a in e.args)
        if vtype not in ("block:layer", "any"):
            self.error(f"'{base}' is not a block that can be applied to tensors", e.func.span)
        wanted = len(value.inputs) if isinstance(value, ir.DefBlock) and value.inputs else 1
        if vtype != "any" and len(inputs) != wanted:
            self.error(f"'{base}' takes {wanted} tensor{'s' if wanted > 1 else ''}, "
                       f"got {len(inputs)}", e.span)
        return ir.Applied(value, inputs, path, span=e.span)

    # ── train / search fields ────────────────────────────────────────────────────────────────

    def fits_field(self, hyper: Hyper, value: ir.Value, vtype: str, span: Span | None) -> None:
        from archc.dsl.signature import Signature
        self.fits(Signature("train"), hyper, value, vtype, span)

    def search_value(self, name: str, e: ast.Expr) -> object:
        match e:
            case ast.Number() | ast.String() | ast.Bool():
                return e.value
            case ast.Quantity():
                return {"seconds": e.value} if e.unit == "s" else {e.unit: int(e.value)}
            case ast.Name():
                return e.id
            case ast.Call(func=ast.Name(id=("maximize" | "minimize") as sense)):
                if len(e.args) == 1 and isinstance(e.args[0].value, ast.Name):
                    return {sense: e.args[0].value.id}
                self.error(f"`{sense}` takes one metric name", e.span,
                           f"e.g. `{sense}(val_loss)`")
                return None
            case ast.Call(func=ast.Name(id=other)) if name == "objective":
                self.error(f"an objective is `maximize(metric)` or `minimize(metric)`, not "
                           f"`{other}(…)`", e.span,
                           did_you_mean(other, ("maximize", "minimize")))
                return None
        self.error(f"search field '{name}' takes a constant", e.span,
                   "decisions belong in the space or in `train { }`")
        return None


def _sites(value: ir.Node) -> bool:
    """Whether a value declares any decision (so uses must refer to it, not copy it)."""
    if isinstance(value, ir.Decide | ir.Switch):
        return True
    if isinstance(value, ir.Op):
        return any(_sites(a) for a in value.args)
    if isinstance(value, ir.Block):
        return any(_sites(v) for _, v in value.args) or value.body is not None
    return isinstance(value, ir.DefBlock)


def _counts(count: ir.Value) -> tuple[float, float] | None:
    """The least and greatest count of a constant or domain count, or None for another value;
    a count that is not a whole number reads as -1."""
    if isinstance(count, ir.Decide):
        d = count.domain
        if isinstance(d, IntRange):
            return d.low, d.high
        counts = [v for v in d.values() if isinstance(v, int) and not isinstance(v, bool)]
        whole = isinstance(d, Choice) and d.type == "int" and len(counts) == d.size
        return (min(counts), max(counts)) if whole else (-1, -1)
    value = count.value if isinstance(count, ir.Const) else None
    if isinstance(value, int) and not isinstance(value, bool):
        return value, value
    if isinstance(count, ir.Const):
        return -1, -1
    return None


def _has_ref(value: ir.Node) -> bool:
    """Whether a value reads a decision (through a `let` or a repeat's count)."""
    if isinstance(value, ir.Ref):
        return True
    return isinstance(value, ir.Op) and any(_has_ref(a) for a in value.args)


def _names(e: ast.Expr) -> set[str]:
    match e:
        case ast.Name():
            return {e.id}
        case ast.Binary():
            return _names(e.left) | _names(e.right)
        case ast.Unary():
            return _names(e.operand)
    return set()


def _source_text(span: Span | None) -> str:
    if span is None:
        return ""
    if span.line == span.end_line:
        return span.source.line(span.line)[span.column - 1:span.end_column - 1]
    return span.source.line(span.line)[span.column - 1:]


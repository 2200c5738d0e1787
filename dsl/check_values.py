"""Checking expressions: names, domains, block calls, `one_of`, arithmetic and tensor flows.

Part of the checker (check.py holds statements, defs and the module). Every method returns an IR
value and its type, and reports problems through `self.error` so one pass collects them all;
after an error it returns a placeholder of type `any`, which nothing downstream complains about.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, cast

from archc.dsl import ast, ir
from archc.dsl.domain import Choice, Flag, FloatRange, IntRange, Scalar, scalar_type
from archc.dsl.fields import TASK_CONSTANTS
from archc.dsl.parser import MAX_INT
from archc.dsl.scope import At, Naming, Scope, join
from archc.dsl.signature import Hyper, Registry, Signature
from archc.dsl.walk import Unknown, evaluate
from archc.errors import Diagnostic, Span, did_you_mean

if TYPE_CHECKING:
    from archc.dsl.check import DefInfo

__all__ = ["Values", "ANY", "BUILTINS", "METRIC_NAMES"]

ANY: tuple[ir.Value, str] = (ir.Const(0), "any")
BUILTINS = ("choice", "int", "float", "bool", "one_of", "concat", "task")
METRIC_NAMES = ("params", "flops", "latency", "memory")
_ARITH = {"+", "-", "*", "/", "//", "%", "**"}
_COMPARE = {"==", "!=", "<", "<=", ">", ">="}


def _numeric(t: str) -> bool:
    return t in ("int", "float", "any")


class Values:
    """Expression checking; mixed into the checker, which provides the attributes below."""

    registry: Registry
    defs: dict[str, DefInfo]
    diagnostics: list[Diagnostic]
    call_def: Callable[..., tuple[ir.Value, str]]  # Statements.call_def

    def error(self, message: str, span: Span | None, hint: str | None = None,
              notes: tuple = ()) -> tuple[ir.Value, str]:
        self.diagnostics.append(Diagnostic(message, span, hint, notes))
        return ANY

    # ── values ───────────────────────────────────────────────────────────────────────────────

    def value(self, e: ast.Expr, scope: Scope, at: At) -> tuple[ir.Value, str]:
        """Check an expression that must denote a value (a number, a string, a block, …)."""
        match e:
            case ast.Number() | ast.String() | ast.Bool():
                return ir.Const(e.value, span=e.span), scalar_type(e.value)
            case ast.Quantity():
                return self.error("a quantity like `60s` belongs in a `search { }` field", e.span)
            case ast.Name():
                return self.name(e, scope, at)
            case ast.Attr():
                return self.attr(e)
            case ast.Call():
                return self.call(e, scope, at)
            case ast.OneOf():
                return self.one_of(e.args, scope, at, e.span)
            case ast.Binary():
                return self.binary(e, scope, at)
            case ast.Unary():
                return self.unary(e, scope, at)
        return self.error("this is not a value", e.span)

    def name(self, e: ast.Name, scope: Scope, at: At) -> tuple[ir.Value, str]:
        bound = scope.lookup(e.id)
        if bound is not None:
            if bound.kind == "flow":
                return self.error(f"'{e.id}' is a tensor; a value is expected here", e.span,
                                  "tensors are combined with `+`, `concat(…)` or applied blocks")
            assert bound.value is not None  # only flow bindings have no value
            return bound.value, bound.type
        if e.id == "bool":
            return ir.Decide(at.take(), Flag(), span=e.span), "bool"
        if e.id in ("choice", "int", "float", "concat"):
            return self.error(f"'{e.id}' needs arguments", e.span,
                              {"choice": "write `choice(a, b, …)`", "int": "write `int(2..8)`",
                               "float": "write `float(0.1..1.0)`"}.get(e.id))
        if e.id == "task":
            return self.error("`task` needs a field", e.span,
                              f"write e.g. `task.classes` ({', '.join(TASK_CONSTANTS)})")
        if e.id in self.defs:
            return self.call_def(self.defs[e.id], (), scope, at.path, e.span, as_value=True)
        if e.id in self.registry:
            return self.block(self.registry[e.id], (), scope, at, e.span)
        return self.unknown(e.id, e.span, scope)

    def unknown(self, name: str, span: Span | None, scope: Scope, word: str = "block or name"
                ) -> tuple[ir.Value, str]:
        known = scope.visible() | set(self.defs) | set(self.registry) | set(BUILTINS)
        hint = did_you_mean(name, known)
        if hint is None:
            hint = "`archc blocks` lists the library's blocks"
        return self.error(f"unknown {word} '{name}'", span, hint)

    def attr(self, e: ast.Attr) -> tuple[ir.Value, str]:
        if isinstance(e.obj, ast.Name) and e.obj.id == "task":
            if e.name not in TASK_CONSTANTS:
                return self.error(f"unknown task constant 'task.{e.name}'", e.span,
                                  did_you_mean(e.name, TASK_CONSTANTS)
                                  or f"known: {', '.join(TASK_CONSTANTS)}")
            return ir.TaskConst(e.name, span=e.span), "int"
        return self.error("only `task.<name>` has fields", e.span)

    def binary(self, e: ast.Binary, scope: Scope, at: At) -> tuple[ir.Value, str]:
        left, lt = self.value(e.left, scope, at)
        right, rt = self.value(e.right, scope, at)
        if "any" in (lt, rt):
            return ANY
        if e.op in ("and", "or"):
            if lt != "bool" or rt != "bool":
                return self.error(f"`{e.op}` needs two conditions, got {_kind(lt)} and "
                                  f"{_kind(rt)}", e.span)
            return self.fold(ir.Op(e.op, (left, right), span=e.span), "bool")
        if e.op in _COMPARE:
            if (lt == "str") != (rt == "str") or lt.startswith("block") or rt.startswith("block"):
                return self.error(f"cannot compare {_kind(lt)} with {_kind(rt)}", e.span)
            return self.fold(ir.Op(e.op, (left, right), span=e.span), "bool")
        if not (_numeric(lt) and _numeric(rt)):
            hint = ("to merge tensors, name them (`a = …`) and write `a + b`"
                    if lt.startswith("block") or rt.startswith("block") else None)
            return self.error(f"`{e.op}` needs numbers, got {_kind(lt)} and {_kind(rt)}",
                              e.span, hint)
        result = "float" if "float" in (lt, rt) or e.op == "/" else "int"
        return self.fold(ir.Op(e.op, (left, right), span=e.span), result)

    def unary(self, e: ast.Unary, scope: Scope, at: At) -> tuple[ir.Value, str]:
        operand, t = self.value(e.operand, scope, at)
        if t == "any":
            return ANY
        if e.op == "not":
            if t != "bool":
                return self.error(f"`not` needs a condition, got {_kind(t)}", e.span)
            return self.fold(ir.Op("not", (operand,), span=e.span), "bool")
        if not _numeric(t):
            return self.error(f"`-` needs a number, got {_kind(t)}", e.span)
        return self.fold(ir.Op("neg", (operand,), span=e.span), t)

    def fold(self, op: ir.Op, vtype: str) -> tuple[ir.Value, str]:
        """Constant-fold an operation whose arguments are all constants; a result must be a
        64-bit integer or a finite real (`2 ** 10 ** 9` is refused before it is computed)."""
        if not all(isinstance(a, ir.Const) for a in op.args):
            return op, vtype
        base, power = (cast(ir.Const, a).value for a in op.args) if op.op == "**" else (0, 0)
        try:
            if isinstance(base, int) and isinstance(power, int) and abs(base) > 1 \
                    and power > 64:
                raise OverflowError  # more than 64 bits, and maybe a long time to compute
            value = evaluate(op, {})
            if not _finite(value):
                raise OverflowError
        except ZeroDivisionError:
            return self.error("division by zero", op.span)
        except (ArithmeticError, ValueError, Unknown):
            return self.error("this arithmetic has no value", op.span,
                              "values are 64-bit integers (up to 2**63 - 1) or finite reals")
        return ir.Const(value, span=op.span), vtype

    def constant(self, e: ast.Expr, scope: Scope, what: str) -> object:
        """A value that must be known without any decision: a domain bound, a repeat count."""
        value, _ = self.value(e, scope, At("<constant>"))
        if isinstance(value, ir.Const):
            return value.value
        if _has(value, ir.TaskConst):
            self.error(f"{what} must be a constant; task constants are not known when the "
                       "space is checked", e.span)
        else:
            self.error(f"{what} must be a constant, not a decision", e.span,
                       "domain bounds cannot depend on other decisions")
        return None

    # ── calls ────────────────────────────────────────────────────────────────────────────────

    def call(self, e: ast.Call, scope: Scope, at: At) -> tuple[ir.Value, str]:
        if not isinstance(e.func, ast.Name):
            return self.error("a value is expected here, not a block applied to tensors",
                              e.span, "apply blocks to tensors in a statement or a binding")
        name = e.func.id
        if name == "choice":
            return self.choice(e, scope, at)
        if name == "int":
            return self.int_range(e, scope, at)
        if name == "float":
            return self.float_range(e, scope, at)
        if name in ("bool", "concat", "task"):
            return self.error(f"'{name}' cannot be called here", e.span,
                              "`bool` takes no arguments" if name == "bool" else None)
        bound = scope.lookup(name)
        if bound is not None:
            return self.error(f"'{name}' is a {bound.type} value and cannot be called", e.span)
        if name in self.defs:
            return self.call_def(self.defs[name], e.args, scope, at.path, e.span, as_value=True)
        if name in self.registry:
            return self.block(self.registry[name], e.args, scope, at, e.span)
        return self.unknown(name, e.func.span, scope, "block")

    def block(self, sig: Signature, args: tuple[ast.Arg, ...], scope: Scope, at: At,
              span: Span | None, body: ir.Seq | None = None) -> tuple[ir.Value, str]:
        """A library block with its arguments matched to its hyperparameters and checked."""
        given = self.match_args(sig.name, [p.name for p in sig.params], args, span)
        resolved: list[tuple[str, ir.Value]] = []
        for hyper in sig.params:
            arg = given.get(hyper.name)
            if arg is None:
                if hyper.required:
                    self.error(f"'{sig.name}' needs '{hyper.name}' ({hyper.doc or hyper.type})",
                               span, f"write `{sig.name}({hyper.name} = …)`")
                    continue
                resolved.append((hyper.name, self.default(hyper, span)))
                continue
            if self.unquoted(hyper, arg.value, scope):
                continue
            value, vtype = self.value(arg.value, scope, at.sub(hyper.name))
            self.fits(sig, hyper, value, vtype, arg.value.span)
            resolved.append((hyper.name, value))
        return ir.Block(sig.name, tuple(resolved), body, span=span), f"block:{sig.kind}"

    def default(self, hyper: Hyper, span: Span | None) -> ir.Value:
        """The value of an omitted hyperparameter; a block-typed default names a block, which
        is used with its own defaults."""
        if hyper.type == "block" and isinstance(hyper.default, str) \
                and hyper.default in self.registry:
            return self.block(self.registry[hyper.default], (), Scope("", Naming()), At(""),
                              span)[0]
        return ir.Const(cast(Scalar, hyper.default), span=span)

    def unquoted(self, hyper: Hyper, e: ast.Expr, scope: Scope) -> bool:
        """Report a bare word where a string is expected (`fn = gelu` for `fn = "gelu"`)."""
        if not _unquoted(hyper, e, scope, self):
            return False
        word = cast(ast.Name, e).id
        self.error(f"'{word}' is not a name here: strings are quoted", e.span,
                   f'write "{word}"')
        return True

    def match_args(self, owner: str, names: list[str], args: tuple[ast.Arg, ...],
                   span: Span | None) -> dict[str, ast.Arg]:
        """Positional arguments fill `names` in order, then keywords; reports arity problems."""
        given: dict[str, ast.Arg] = {}
        positional = [a for a in args if a.name is None]
        for arg in args:
            if arg.high is not None:
                self.error("a range `a..b` only stands inside `int(…)` or `float(…)`", arg.span)
        if len(positional) > len(names):
            extra = positional[len(names)]
            self.error(f"'{owner}' takes at most {len(names)} positional argument"
                       f"{'s' if len(names) != 1 else ''} ({', '.join(names)}); got "
                       f"{len(positional)}" if names else f"'{owner}' takes no arguments",
                       extra.span, None if names else f"write `{owner}`")
        for name, arg in zip(names, positional, strict=False):
            given[name] = arg
        for arg in args:
            if arg.name is None:
                continue
            if arg.name not in names:
                self.error(f"'{owner}' has no parameter '{arg.name}'", arg.span,
                           did_you_mean(arg.name, names) or f"its parameters: {', '.join(names)}")
            elif arg.name in given:
                self.error(f"'{arg.name}' is given twice", arg.span, "remove one of them",
                           notes=(("first given here", given[arg.name].span),))
            else:
                given[arg.name] = arg
        return given

    def fits(self, sig: Signature, hyper: Hyper, value: ir.Value, vtype: str,
             span: Span | None) -> None:
        """Report a value whose type or any possible value lies outside the hyperparameter."""
        where = f"'{hyper.name}' of '{sig.name}'"
        if vtype == "any":
            return
        if hyper.type == "block":
            if vtype != f"block:{hyper.kind}":
                self.error(f"{where} takes a {hyper.kind} block, not a {_kind(vtype)}", span)
            return
        ok = {"int": ("int",), "float": ("int", "float"), "bool": ("bool",), "str": ("str",)}
        if vtype not in ok[hyper.type]:
            self.error(f"{where} takes {hyper.type}, not {_kind(vtype)}", span,
                       hyper.doc or None)
            return
        for candidate in _possible(value):
            problem = hyper.problem(candidate)
            if problem:
                self.error(f"{where} {problem}; {_lit(candidate)} is outside its domain",
                           span, hyper.doc or None)
                return

    # ── domains ──────────────────────────────────────────────────────────────────────────────

    def choice(self, e: ast.Call, scope: Scope, at: At) -> tuple[ir.Value, str]:
        if not e.args:
            return self.error("empty choice: `choice()` has nothing to choose", e.span,
                              "list the options, e.g. `choice(64, 128)`")
        if any(a.name is not None for a in e.args):
            return self.error("choice takes plain options; label alternatives with one_of",
                              e.span)
        consts = [self.value(a.value, scope, At("<option>"))[0] for a in e.args]
        if all(isinstance(c, ir.Block | ir.DefBlock) for c in consts):
            return self.one_of(e.args, scope, at, e.span)
        options: list[Scalar] = []
        for arg, c in zip(e.args, consts, strict=True):
            if not isinstance(c, ir.Const):
                return self.error("choice options must be constants (or all blocks)", arg.span)
            if any(o == c.value and type(o) is type(c.value) for o in options):
                return self.error(f"duplicate option {_lit(c.value)} in choice", arg.span,
                                  "remove the repeated option")
            options.append(c.value)
        kinds = {scalar_type(o) for o in options}
        if len(kinds) > 1 and kinds != {"int", "float"}:
            return self.error(f"choice mixes {' and '.join(sorted(kinds))} options", e.span,
                              "a choice's options are all numbers, all strings or all bools")
        domain = Choice(tuple(options))
        return ir.Decide(at.take(), domain, span=e.span), domain.type

    def int_range(self, e: ast.Call, scope: Scope, at: At) -> tuple[ir.Value, str]:
        bounds, extra = self.range_args(e, scope, "int")
        if bounds is None:
            return ANY
        low, high = bounds
        step: Any = 1
        for arg in extra:
            if arg.name in ("step", None):
                step = self.constant(arg.value, scope, "a step")
            else:
                return self.error(f"int range has no option '{arg.name}'", arg.span,
                                  "write `int(a..b, step = k)`")
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (low, high, step)):
            return self.error("int range bounds and step must be integers", e.span)
        if low > high:
            return self.error(f"empty range: {low} > {high}", e.span,
                              f"write the low end first: `int({high}..{low})`")
        if step < 1:
            return self.error("a step must be >= 1", e.span)
        return ir.Decide(at.take(), IntRange(low, high, step), span=e.span), "int"

    def float_range(self, e: ast.Call, scope: Scope, at: At) -> tuple[ir.Value, str]:
        bounds, extra = self.range_args(e, scope, "float")
        if bounds is None:
            return ANY
        low, high = bounds
        log = False
        for arg in extra:
            if isinstance(arg.value, ast.Name) and arg.value.id == "log" and arg.name is None:
                log = True
            elif arg.name == "log" and isinstance(arg.value, ast.Bool):
                log = arg.value.value
            else:
                return self.error("float range takes only `log`", arg.span,
                                  "write `float(1e-4..1e-2, log)`")
        if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in bounds):
            return self.error("float range bounds must be numbers", e.span)
        if low >= high:
            return self.error(f"empty range: {low} >= {high}", e.span)
        if log and low <= 0:
            return self.error("a log range needs a positive lower bound", e.span,
                              "start above 0, e.g. `float(1e-4..0.5, log)`, or drop `log`")
        domain = FloatRange(float(low), float(high), log)
        return ir.Decide(at.take(), domain, span=e.span), "float"

    def range_args(self, e: ast.Call, scope: Scope, kind: str) -> tuple[Any, list[ast.Arg]]:
        if not e.args or e.args[0].high is None:
            self.error(f"{kind} range needs `low..high`", e.span,
                       f"write `{kind}({'2..8' if kind == 'int' else '0.1..1.0'})`")
            return None, []
        first = e.args[0]
        low = self.constant(first.value, scope, "a range bound")
        assert first.high is not None  # a range argument, checked above
        high = self.constant(first.high, scope, "a range bound")
        if low is None or high is None:
            return None, []
        return (low, high), list(e.args[1:])

    def one_of(self, args: tuple[ast.Arg, ...], scope: Scope, at: At,
               span: Span | None) -> tuple[ir.Value, str]:
        """`one_of(a, b, label = c)` over blocks: a Switch whose keys are labels or block names."""
        if not args:
            return self.error("empty one_of: nothing to choose", span,
                              "list the alternatives, e.g. `one_of(mlp, identity)`")
        path = at.take()
        options: list[tuple[str, ir.Value]] = []
        kinds: set[str] = set()
        keys: dict[str, int] = {}
        for arg in args:
            base = arg.name or head_name(arg.value) or "option"
            keys[base] = keys.get(base, 0) + 1
            key = base if keys[base] == 1 else f"{base}#{keys[base]}"
            if arg.name and keys[base] > 1:
                self.error(f"duplicate one_of label '{arg.name}'", arg.span)
            value, vtype = self.value(arg.value, scope, At(join(path, key)))
            if vtype != "any" and not vtype.startswith("block"):
                return self.error("one_of chooses between blocks", arg.value.span,
                                  "for numbers or strings use `choice(…)`")
            kinds.add(vtype)
            options.append((key, value))
        kinds.discard("any")
        if len(kinds) > 1:
            mixed = " and ".join(_kind(k) + "s" for k in sorted(kinds))
            return self.error(f"one_of mixes {mixed}",
                              span, "every option of a one_of must be the same kind of block")
        return ir.Switch(path, tuple(options), span=span), kinds.pop() if kinds else "any"


def _finite(value: object) -> bool:
    """A 64-bit integer, a finite real, a string or a bool (not a complex root of a negative)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return abs(value) <= MAX_INT
    return math.isfinite(value) if isinstance(value, float) else isinstance(value, str | bool)


def _kind(vtype: str) -> str:
    """A type as users read it: `block:mix` is a mix block."""
    return f"{vtype[6:]} block" if vtype.startswith("block:") else vtype


def _unquoted(hyper: Hyper, e: ast.Expr, scope: Scope, values: Values) -> bool:
    """A bare word given to a string hyperparameter that names nothing: a forgotten quote."""
    if hyper.type != "str" or not isinstance(e, ast.Name) or scope.lookup(e.id) is not None:
        return False
    return e.id in hyper.options or (e.id not in values.defs and e.id not in values.registry
                                     and e.id not in BUILTINS)


def head_name(e: ast.Expr) -> str | None:
    """The block or def an expression calls (`op` in `op(c)(x)`): what a one_of option is
    keyed by, and what an applied flow is named after."""
    if isinstance(e, ast.Name):
        return e.id
    if isinstance(e, ast.Call):
        return head_name(e.func)
    return None


def _has(value: ir.Node, kind: type) -> bool:
    if isinstance(value, kind):
        return True
    children = getattr(value, "args", ())
    return any(_has(c[1] if isinstance(c, tuple) else c, kind) for c in children)


def _possible(value: ir.Value) -> Sequence[object]:
    """The values worth checking against a domain: a constant, or a discrete domain's values,
    or a continuous range's ends. Expressions over decisions are checked when decoded."""
    if isinstance(value, ir.Const):
        return (value.value,)
    if isinstance(value, ir.Decide):
        d = value.domain
        if isinstance(d, FloatRange):
            return (d.low, d.high)
        if isinstance(d, IntRange):
            return (d.low, d.high)
        return d.values()
    return ()


def _lit(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return str(value)
    return repr(value) if isinstance(value, str) else str(value)


"""AST → canonical source (`archc fmt`): four-space indents, one statement per line, spaces
around `=` and binary operators, minimal parentheses, comments kept where they stood.

The contract is `parse(format_module(parse(x))) == parse(x)`; a test holds it over every example
and over generated specs.

>>> from archc.dsl.parser import parse
>>> print(format_module(parse("space s{input x:float[4];linear(out=2*(3+4))}")), end="")
space s {
    input x: float[4]
    linear(out = 2 * (3 + 4))
}
"""

from __future__ import annotations

import json

from archc.dsl import ast

__all__ = ["format_module", "format_expr"]

INDENT = "    "

# Binding strength, loosest first, as in the grammar.
_PRECEDENCE = {"or": 1, "and": 2, "not": 3, "==": 4, "!=": 4, "<": 4, "<=": 4, ">": 4, ">=": 4,
               "+": 5, "-": 5, "*": 6, "/": 6, "//": 6, "%": 6, "neg": 7, "**": 8}
_ATOM = 9


def format_module(module: ast.Module) -> str:
    """The whole file, canonically formatted, ending in one newline."""
    printer = _Printer(list(module.comments))
    for i, item in enumerate(module.items):
        if i and not (isinstance(item, ast.Import) and isinstance(module.items[i - 1],
                                                                    ast.Import)):
            printer.out.append("")
        printer.item(item)
    printer.rest(0)
    text = "\n".join(printer.out).strip("\n")
    return text + "\n" if text else ""


def format_expr(e: ast.Expr) -> str:
    return _expr(e)


class _Printer:
    def __init__(self, comments: list[ast.Comment]) -> None:
        self.out: list[str] = []
        self.comments = sorted(comments, key=lambda c: (c.line, c.column))

    def emit(self, depth: int, text: str, node: ast.Node) -> None:
        """A line of `text`, after the comments standing before `node`, with the comment
        that trails it on its first line."""
        line = node.span.line if node.span else None
        if line is not None:
            while self.comments and self.comments[0].line < line:
                self.out.append(INDENT * depth + self.comments.pop(0).text)
            if self.comments and self.comments[0].line == line and "\n" not in text:
                text += "  " + self.comments.pop(0).text
        self.out.append(INDENT * depth + text)

    def rest(self, depth: int, before: int | None = None) -> None:
        """Comments left before line `before` (all of them when None)."""
        while self.comments and (before is None or self.comments[0].line < before):
            self.out.append(INDENT * depth + self.comments.pop(0).text)

    def item(self, item: ast.Node) -> None:
        match item:
            case ast.Import():
                self.emit(0, f"import {_string(item.path)}", item)
            case ast.Def():
                head = f"def {item.name}{_params(item.params, item.inputs is not None)}"
                if item.inputs is not None:
                    head += _params(item.inputs, True)
                if isinstance(item.value, ast.Body):
                    self.block(0, head, item.value, item)
                else:
                    self.emit(0, _fit(f"{head} = ", item.value, 0), item)
            case ast.Space():
                self.block(0, f"space {item.name}", item.body, item)
            case ast.Fields():
                self.emit(0, f"{item.kind} {{", item)
                for f in item.fields:
                    self.emit(1, f"{f.name} = " + ", ".join(_fit("", v, 1) for v in f.values), f)
                self.close(0, item)

    def block(self, depth: int, head: str, body: ast.Body, node: ast.Node) -> None:
        self.emit(depth, f"{head} {{" if head else "{", node)
        for stmt in body.stmts:
            self.stmt(depth + 1, stmt)
        self.close(depth, body)

    def close(self, depth: int, node: ast.Node) -> None:
        end = node.span.end_line if node.span else None
        self.rest(depth + 1, end)
        self.out.append(INDENT * depth + "}")

    def stmt(self, depth: int, s: ast.Stmt) -> None:
        match s:
            case ast.Input():
                dims = "" if s.dims is None else f"[{', '.join(_expr(d) for d in s.dims)}]"
                self.emit(depth, f"input {s.name}: {s.dtype}{dims}", s)
            case ast.Let():
                self.emit(depth, _fit(f"let {s.name} = ", s.value, depth), s)
            case ast.Require():
                self.emit(depth, f"require {_expr(s.cond)}", s)
            case ast.Return():
                self.emit(depth, f"return {_expr(s.value)}", s)
            case ast.Bind():
                self.emit(depth, _fit(f"{s.name} = ", s.value, depth), s)
            case ast.Flow() if s.body is not None:
                self.block(depth, _fit("", s.value, depth), s.body, s)
            case ast.Flow():
                self.emit(depth, _fit("", s.value, depth), s)
            case ast.OneOfBlock():
                self.block(depth, _labelled("one_of", s.label), s.alternatives, s)
            case ast.Optional():
                self.block(depth, _labelled("optional", s.label), s.body, s)
            case ast.Repeat():
                head = "repeat " + (f"{s.name} in " if s.name else "") + _expr(s.count)
                head += f" share = {s.share}" if s.share else ""
                self.block(depth, head, s.body, s)
            case ast.Group():
                self.block(depth, "", s.body, s)


WIDTH = 99


def _fit(prefix: str, e: ast.Expr, depth: int) -> str:
    """`prefix` + the expression, on one line if it fits in WIDTH, else with the arguments of
    its outermost call one per line (newlines inside parentheses are free in the language)."""
    flat = prefix + _expr(e)
    if len(INDENT * depth) + len(flat) <= WIDTH or not isinstance(e, ast.Call | ast.OneOf) \
            or not e.args:
        return flat
    head = "one_of" if isinstance(e, ast.OneOf) else _expr(e.func, _ATOM)
    inner = INDENT * (depth + 1)
    lines = [f"{prefix}{head}("]
    for a in e.args:
        if a.name is not None:
            lines.append(f"{inner}{_fit(f'{a.name} = ', a.value, depth + 1)},")
        elif a.high is None:
            lines.append(f"{inner}{_fit('', a.value, depth + 1)},")
        else:
            lines.append(f"{inner}{_args((a,))},")
    lines.append(INDENT * depth + ")")
    return "\n".join(lines)


def _labelled(keyword: str, label: str | None) -> str:
    return f"{keyword} {label}" if label else keyword


def _params(params: tuple[ast.Param, ...], always: bool) -> str:
    if not params and not always:
        return ""
    return "(" + ", ".join(p.name + (f" = {_expr(p.default)}" if p.default else "")
                           for p in params) + ")"


def _string(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


def _expr(e: ast.Expr, parent: int = 0, right: bool = False) -> str:
    text, strength = _render(e)
    if strength < parent or (right and strength == parent and strength != _PRECEDENCE["**"]):
        return f"({text})"
    return text


def _render(e: ast.Expr) -> tuple[str, int]:
    match e:
        case ast.Name():
            return e.id, _ATOM
        case ast.Number():
            text = e.text or repr(e.value)
            return text, (_PRECEDENCE["neg"] if text.startswith("-") else _ATOM)
        case ast.String():
            return _string(e.value), _ATOM
        case ast.Bool():
            return ("true" if e.value else "false"), _ATOM
        case ast.Quantity():
            return _quantity(e), _ATOM
        case ast.Binary():
            p = _PRECEDENCE[e.op]
            left = _expr(e.left, p + (1 if e.op == "**" or p == 4 else 0))
            right_side = _expr(e.right, p + (1 if p == 4 else 0), right=True)
            return f"{left} {e.op} {right_side}", p
        case ast.Unary(op="not"):
            return f"not {_expr(e.operand, _PRECEDENCE['not'])}", _PRECEDENCE["not"]
        case ast.Unary():
            return f"-{_expr(e.operand, _PRECEDENCE['neg'])}", _PRECEDENCE["neg"]
        case ast.Call():
            return f"{_expr(e.func, _ATOM)}({_args(e.args)})", _ATOM
        case ast.Attr():
            return f"{_expr(e.obj, _ATOM)}.{e.name}", _ATOM
        case ast.OneOf():
            return f"one_of({_args(e.args)})", _ATOM
    raise TypeError(f"cannot print {type(e).__name__}")


def _args(args: tuple[ast.Arg, ...]) -> str:
    out = []
    for a in args:
        if a.high is not None:
            out.append(f"{_expr(a.value, _PRECEDENCE['+'])}..{_expr(a.high, _PRECEDENCE['+'])}")
        elif a.name is not None:
            out.append(f"{a.name} = {_expr(a.value)}")
        else:
            out.append(_expr(a.value))
    return ", ".join(out)


def _quantity(e: ast.Quantity) -> str:
    if e.unit == "s":
        value = e.value
        return f"{int(value)}s" if float(value).is_integer() else f"{value!r}s"
    return f"{int(e.value)} {e.unit}"

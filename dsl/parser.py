"""Text → AST: the LALR parser built from `arch.lark`, its newline post-lexer, and parse errors
that say what is wrong in a user's words ("missing `)`", "stray comma") instead of lark's.

>>> parse("space s {\\n    input x: float[4]\\n    linear(8)\\n}\\n").items[0].name
's'
"""

from __future__ import annotations

import functools
import math
import re
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import cast

import lark
from lark import Token, Transformer, v_args
from lark.exceptions import UnexpectedInput, VisitError
from lark.tree import Meta

from archc.dsl import ast
from archc.dsl.parse_errors import diagnose as _diagnose
from archc.errors import ParseError, Source, Span

__all__ = ["parse", "parse_file", "MAX_INT"]

MAX_INT = 2**63 - 1
"""The largest number a spec may write: a 64-bit integer (larger ones mean nothing to a model)."""

_OPEN = {"LPAR": "RPAR", "LSQB": "RSQB", "LBRACE": "RBRACE"}
_CLOSE = {v: k for k, v in _OPEN.items()}
_GLUE = {"LBRACE", "COMMA", "EQUAL", "_NL"}  # a newline right after these is not a statement end


class _Newlines:
    """Post-lexer: newlines and `;` end statements, except inside ( ) or [ ], directly after
    `{`, `,` or `=`, or when repeated; a `}` implies the newline before it, and so does the end
    of the file. It also remembers which brackets are open, for "unclosed `(`" errors."""

    always_accept = ("_NL", "SEMICOLON")

    def __init__(self) -> None:
        self.open: list[Token] = []
        self.history: deque[Token] = deque(maxlen=3)
        self.comments: list[Token] = []

    def comments_append(self, tok: Token) -> Token:
        self.comments.append(tok)
        return tok

    def process(self, stream: Iterator[Token]) -> Iterator[Token]:
        self.open = []
        self.history.clear()
        self.comments = []
        prev: Token | None = None
        for tok in stream:
            if tok.type in ("_NL", "SEMICOLON"):
                inside = self.open and self.open[-1].type != "LBRACE"
                if inside or prev is None or prev.type in _GLUE:
                    continue
                tok = Token.new_borrow_pos("_NL", tok.value, tok)
            elif tok.type == "RBRACE" and prev is not None and prev.type not in _GLUE:
                yield Token.new_borrow_pos("_NL", "", tok)
            if tok.type in _OPEN:
                self.open.append(tok)
            prev = tok
            self.history.append(tok)
            yield tok
            # pop only now: if the parser rejects a closer, its opener still counts as open
            if tok.type in _CLOSE and self.open and self.open[-1].type == _CLOSE[tok.type]:
                self.open.pop()
        if prev is not None and prev.type != "_NL" and not self.open:
            yield Token("_NL", "", 0, prev.end_line, prev.end_column,
                        prev.end_line, prev.end_column, prev.end_pos)


@functools.cache
def _lark() -> lark.Lark:
    grammar = (Path(__file__).with_name("arch.lark")).read_text()
    grammar += '\nSEMICOLON: ";"\n'
    postlex = _Newlines()
    return lark.Lark(grammar, parser="lalr", lexer="basic", propagate_positions=True,
                     maybe_placeholders=True, postlex=postlex,
                     lexer_callbacks={"COMMENT": postlex.comments_append}, cache=True)


def parse(text: str, name: str = "<string>") -> ast.Module:
    """Parse spec text; raise ParseError (with a span and a hint) if it is not well formed."""
    source = Source(name, text)
    parser = _lark()
    newlines = cast(_Newlines, parser.options.postlex)  # lark types it `PostLex | None`
    try:
        tree = parser.parse(text)
    except UnexpectedInput as err:
        raise ParseError(_diagnose(err, source, newlines)) from None
    try:
        module = _Build(source).transform(tree)
    except VisitError as err:  # a ParseError raised while building a node (a bad literal)
        if isinstance(err.orig_exc, ParseError):
            raise err.orig_exc from None
        raise
    spans = ((_tok_span(source, t), str(t).rstrip()) for t in newlines.comments)
    comments = tuple(ast.Comment(span.line, span.column, text) for span, text in spans)
    return ast.Module(module.items, comments, span=module.span)


def parse_file(path: str | Path) -> ast.Module:
    """Parse the spec at `path` (errors name the path as given)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ParseError(f"cannot read {path}: {getattr(err, 'strerror', None) or err}") from None
    return parse(text, str(path))


# ── AST construction ─────────────────────────────────────────────────────────────────────────


def _span(source: Source, meta: Meta) -> Span | None:
    if meta.empty:
        return None
    return Span(source, meta.line, meta.column, meta.end_line, meta.end_column)


def _tok_span(source: Source, tok: Token) -> Span:
    # lark types a token's position `int | None`; the tokens its lexer makes always have one
    return Span(source, tok.line, tok.column, tok.end_line, tok.end_column)  # type: ignore[arg-type]


_SECONDS = {"ms": 1e-3, "s": 1.0, "min": 60.0, "h": 3600.0}


def _binary(op: str) -> Callable[[_Build, Meta, ast.Expr, ast.Expr], ast.Binary]:
    """The rule that builds `left op right`."""

    def rule(self: _Build, meta: Meta, left: ast.Expr, right: ast.Expr) -> ast.Binary:
        return ast.Binary(op, left, right, span=self._s(meta))

    return rule


@v_args(meta=True, inline=True)
class _Build(Transformer[Token, ast.Module]):
    """Builds AST nodes bottom-up; each node gets the span of its rule (or token)."""

    def __init__(self, source: Source) -> None:
        super().__init__()
        self.src = source

    def _s(self, meta: Meta) -> Span | None:
        return _span(self.src, meta)

    # top level
    def start(self, meta: Meta,
              *items: ast.Import | ast.Def | ast.Space | ast.Fields) -> ast.Module:
        return ast.Module(tuple(items), span=self._s(meta))

    def import_stmt(self, meta: Meta, path: Token) -> ast.Import:
        return ast.Import(_unquote(path, self.src), span=self._s(meta))

    def space(self, meta: Meta, name: Token, body: ast.Body) -> ast.Space:
        return ast.Space(str(name), body, span=self._s(meta))

    def train(self, meta: Meta, fields: tuple[ast.Field, ...]) -> ast.Fields:
        return ast.Fields("train", fields, span=self._s(meta))

    def search(self, meta: Meta, fields: tuple[ast.Field, ...]) -> ast.Fields:
        return ast.Fields("search", fields, span=self._s(meta))

    def fields(self, meta: Meta, *fields: ast.Field) -> tuple[ast.Field, ...]:
        return tuple(fields)

    def field(self, meta: Meta, name: Token, *values: ast.Expr) -> ast.Field:
        return ast.Field(str(name), tuple(values), span=_tok_span(self.src, name))

    def def_expr(self, meta: Meta, name: Token, params: tuple[ast.Param, ...] | None,
                 value: ast.Expr) -> ast.Def:
        return ast.Def(str(name), params or (), None, value, span=self._s(meta))

    def def_body(self, meta: Meta, name: Token, params: tuple[ast.Param, ...] | None,
                 body: ast.Body) -> ast.Def:
        return ast.Def(str(name), params or (), None, body, span=self._s(meta))

    def def_cell(self, meta: Meta, name: Token, params: tuple[ast.Param, ...],
                 inputs: tuple[ast.Param, ...], body: ast.Body) -> ast.Def:
        return ast.Def(str(name), params, inputs, body, span=self._s(meta))

    def params(self, meta: Meta, *params: ast.Param | None) -> tuple[ast.Param, ...]:
        return tuple(p for p in params if p is not None)

    def param(self, meta: Meta, name: Token, default: ast.Expr | None) -> ast.Param:
        return ast.Param(str(name), default, span=_tok_span(self.src, name))

    def body(self, meta: Meta, *stmts: ast.Stmt) -> ast.Body:
        return ast.Body(tuple(stmts), span=self._s(meta))

    # statements
    def input_stmt(self, meta: Meta, name: Token, dtype: Token,
                   *dims: ast.Expr | None) -> ast.Input:
        shape = None if dims == (None,) else tuple(d for d in dims if d is not None)
        return ast.Input(str(name), str(dtype), shape, span=self._s(meta))

    def let_stmt(self, meta: Meta, name: Token, value: ast.Expr) -> ast.Let:
        return ast.Let(str(name), value, span=_tok_span(self.src, name))

    def require_stmt(self, meta: Meta, cond: ast.Expr) -> ast.Require:
        return ast.Require(cond, span=self._s(meta))

    def return_stmt(self, meta: Meta, value: ast.Expr) -> ast.Return:
        return ast.Return(value, span=self._s(meta))

    def bind_stmt(self, meta: Meta, name: Token, value: ast.Expr) -> ast.Bind:
        return ast.Bind(str(name), value, span=_tok_span(self.src, name))

    def flow_stmt(self, meta: Meta, value: ast.Expr, body: ast.Body | None) -> ast.Flow:
        return ast.Flow(value, body, span=value.span)

    def one_of_stmt(self, meta: Meta, label: Token | None, body: ast.Body) -> ast.OneOfBlock:
        return ast.OneOfBlock(_opt(label), body, span=self._s(meta))

    def optional_stmt(self, meta: Meta, label: Token | None, body: ast.Body) -> ast.Optional:
        return ast.Optional(_opt(label), body, span=self._s(meta))

    def repeat_stmt(self, meta: Meta, name: Token | None, count: ast.Expr, share: Token | None,
                    body: ast.Body) -> ast.Repeat:
        return ast.Repeat(_opt(name), count, _opt(share), body, span=self._s(meta))

    def group_stmt(self, meta: Meta, body: ast.Body) -> ast.Group:
        return ast.Group(body, span=self._s(meta))

    # expressions
    or_ = _binary("or")
    and_ = _binary("and")
    add = _binary("+")
    sub = _binary("-")
    mul = _binary("*")
    div = _binary("/")
    floordiv = _binary("//")
    mod = _binary("%")
    pow = _binary("**")

    def compare(self, meta: Meta, left: ast.Expr, op: Token, right: ast.Expr) -> ast.Binary:
        return ast.Binary(str(op), left, right, span=self._s(meta))

    def not_(self, meta: Meta, operand: ast.Expr) -> ast.Unary:
        return ast.Unary("not", operand, span=self._s(meta))

    def neg(self, meta: Meta, operand: ast.Expr) -> ast.Number | ast.Unary:
        if isinstance(operand, ast.Number):  # fold -3 into a literal: fmt prints it back as -3
            return ast.Number(-operand.value, "-" + operand.text, span=self._s(meta))
        return ast.Unary("-", operand, span=self._s(meta))

    def call(self, meta: Meta, func: ast.Expr, args: tuple[ast.Arg, ...] | None) -> ast.Call:
        return ast.Call(func, args or (), span=self._s(meta))

    def attr(self, meta: Meta, obj: ast.Expr, name: Token) -> ast.Attr:
        return ast.Attr(obj, str(name), span=self._s(meta))

    def one_of(self, meta: Meta, args: tuple[ast.Arg, ...] | None) -> ast.OneOf:
        return ast.OneOf(args or (), span=self._s(meta))

    def args(self, meta: Meta, *args: ast.Arg | ast.Expr | None) -> tuple[ast.Arg, ...]:
        return tuple(a if isinstance(a, ast.Arg) else ast.Arg(a, span=a.span)
                     for a in args if a is not None)

    def kwarg(self, meta: Meta, name: Token, value: ast.Expr) -> ast.Arg:
        return ast.Arg(value, str(name), span=_tok_span(self.src, name))

    def range(self, meta: Meta, low: ast.Expr, high: ast.Expr) -> ast.Arg:
        return ast.Arg(low, None, high, span=self._s(meta))

    def name(self, meta: Meta, tok: Token) -> ast.Name:
        return ast.Name(str(tok), span=_tok_span(self.src, tok))

    def number(self, meta: Meta, tok: Token) -> ast.Number:
        text = str(tok)
        span = _tok_span(self.src, tok)
        value = int(text) if text.isdigit() and len(text) < 20 else float(text)
        if not math.isfinite(value) or (text.isdigit() and value > MAX_INT):
            raise ParseError("number too large", span,
                             "integers are at most 2**63 - 1, reals at most about 1e308")
        return ast.Number(int(text) if text.isdigit() else value, text, span=span)

    def quantity(self, meta: Meta, tok: Token) -> ast.Quantity:
        text = str(tok).split("per")[0].replace(" ", "").replace("\t", "")
        number = text.rstrip("abcdefghijklmnopqrstuvwxyz")
        unit = text[len(number):]
        value = float(number)
        if unit in _SECONDS:
            value, unit = value * _SECONDS[unit], "s"
        else:
            unit = unit.rstrip("s") + "s"  # epoch → epochs, step → steps
        return ast.Quantity(value, unit, span=_tok_span(self.src, tok))

    def string(self, meta: Meta, tok: Token) -> ast.String:
        return ast.String(_unquote(tok, self.src), span=_tok_span(self.src, tok))

    def true(self, meta: Meta) -> ast.Bool:
        return ast.Bool(True, span=self._s(meta))

    def false(self, meta: Meta) -> ast.Bool:
        return ast.Bool(False, span=self._s(meta))


def _opt(tok: Token | None) -> str | None:
    return None if tok is None else str(tok)


_ESCAPES = {"n": "\n", "t": "\t", '"': '"', "\\": "\\"}


def _unquote(tok: Token, source: Source) -> str:
    """A string literal's text; its escapes are `\\n`, `\\t`, `\\"` and `\\\\`."""

    def escape(match: re.Match[str]) -> str:
        if match.group(1) in _ESCAPES:
            return _ESCAPES[match.group(1)]
        start = _tok_span(source, tok)
        column = start.column + 1 + match.start()
        raise ParseError(f"unknown escape `{match.group(0)}` in a string",
                         Span(source, start.line, column, start.line, column + 2),
                         'write \\n, \\t, \\" or \\\\ (a backslash)')

    return re.sub(r"\\(.)", escape, str(tok)[1:-1])


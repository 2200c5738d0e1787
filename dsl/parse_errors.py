"""Turn lark's parse failures into diagnostics a newcomer understands.

lark reports "unexpected token X, expected one of {RPAR, COMMA, …}". The common mistakes behind
such failures are few — a missing `)` or `}`, a missing `=`, a stray comma, a misspelt keyword,
`=` written for `==` — so each gets its own message, span and hint; anything else falls back to
"unexpected X; expected Y" with the terminals in words.
"""

from __future__ import annotations

from collections import deque
from typing import Protocol

from lark import Token
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken

from archc.errors import Diagnostic, Source, Span, did_you_mean

__all__ = ["diagnose"]

KEYWORDS = ("space", "def", "import", "train", "search", "input", "let", "require", "return",
            "repeat", "in", "share", "one_of", "optional", "true", "false", "and", "or", "not")
TOP_KEYWORDS = ("space", "def", "import", "train", "search")
STMT_KEYWORDS = ("input", "let", "require", "return", "repeat", "one_of", "optional")
FOREIGN = ("if", "else", "elif", "for", "while", "var", "val", "const", "fn", "function",
           "lambda", "class", "model", "layer", "block", "with", "from", "as")
"""Words other languages use to start a statement; here they read as an unknown keyword."""
_OPERATORS = {"&": "write `and`", "|": "write `or`", "!": "write `not` (or `!=` to compare)",
              "/": "comments start with `#`", ";": "comments start with `#`"}

_WORDS = {
    "RPAR": "`)`", "LPAR": "`(`", "RBRACE": "`}`", "LBRACE": "`{`", "RSQB": "`]`", "LSQB": "`[`",
    "COMMA": "`,`", "EQUAL": "`=`", "COLON": "`:`", "DOT": "`.`", "NAME": "a name",
    "NUMBER": "a number", "STRING": "a string", "QUANTITY": "a quantity like `60s`",
    "_NL": "end of line", "$END": "end of file", "COMPARE": "a comparison",
    "PLUS": "`+`", "MINUS": "`-`", "STAR": "`*`", "SLASH": "`/`", "PERCENT": "`%`",
}
_CLOSER = {"LPAR": ")", "LSQB": "]", "LBRACE": "}"}


class _PostLexer(Protocol):
    open: list[Token]  # the brackets still open
    history: deque[Token]  # the last tokens seen


def diagnose(err: UnexpectedInput, source: Source, lexer: _PostLexer) -> Diagnostic:
    """The one diagnostic that best explains `err`; `lexer` is the post-lexer (open brackets,
    last tokens seen)."""
    if isinstance(err, UnexpectedCharacters):
        return _bad_character(err, source)
    assert isinstance(err, UnexpectedToken)  # UnexpectedEOF does not occur with LALR
    history = [t for t in lexer.history if t is not err.token]
    prev = history[-1] if history else None
    for rule in _RULES:
        found = rule(err, err.token, prev, source, list(lexer.open))
        if found is not None:
            return found
    return _generic(err, source)


def _span_of(tok: Token, source: Source) -> Span:
    line = tok.line or 1
    column = tok.column or 1
    end = tok.end_column if tok.end_column and tok.end_line == line else column + 1
    return Span(source, line, column, line, max(end, column + 1))


def _at_end(source: Source) -> Span:
    lines = source.text.splitlines() or [""]
    return Span(source, len(lines), len(lines[-1]) + 1, len(lines), len(lines[-1]) + 2)


def _show(tok: Token) -> str:
    if tok.type == "$END":
        return "end of file"
    if tok.type == "_NL":
        return "end of line"
    return f"'{tok.value}'"


def _bad_character(err: UnexpectedCharacters, source: Source) -> Diagnostic:
    span = Span(source, err.line, err.column, err.line, err.column + 1)
    char = err.char
    if char == '"':
        return Diagnostic("unterminated string", span,
                          "close the string with `\"` on the same line")
    if char == "'":
        return Diagnostic("strings use double quotes", span, 'write "text", not \'text\'')
    if char == "." and source.line(err.line)[err.column - 1:err.column + 2] == "...":
        return Diagnostic("ranges use two dots", span, "write `int(2..8)`")
    return Diagnostic(f"unexpected character '{char}'", span, _OPERATORS.get(
        char, "remove it; the operators are + - * / // % **, comparisons, and, or, not"))


def _unclosed(err: UnexpectedToken, tok: Token, prev: Token | None, source: Source,
              open_: list[Token]) -> Diagnostic | None:
    """`(`/`[`/`{` never closed: the file ended, or a closer of another kind came first."""
    if not open_:
        return None
    opener = open_[-1]
    closer = _CLOSER[opener.type]
    ends = tok.type == "$END"
    wrong_closer = tok.type in ("RBRACE", "RPAR", "RSQB") and tok.value != closer
    next_line = opener.type != "LBRACE" and (tok.line or 0) > (opener.line or 0) \
        and "COMMA" in err.expected and bool({"RPAR", "RSQB"} & err.expected)
    if not (ends or wrong_closer or next_line):
        return None
    where = f"{opener.line}:{opener.column}"
    return Diagnostic(f"missing `{closer}`: the `{opener.value}` at {where} is never closed",
                      _span_of(opener, source), f"add `{closer}` to close it",
                      notes=() if ends else ((f"found {_show(tok)} here",
                                              _span_of(tok, source)),))


def _unmatched(err: UnexpectedToken, tok: Token, prev: Token | None, source: Source,
               open_: list[Token]) -> Diagnostic | None:
    if tok.type in ("RPAR", "RSQB", "RBRACE") and not any(
            _CLOSER[o.type] == tok.value for o in open_):
        return Diagnostic(f"unmatched `{tok.value}`", _span_of(tok, source),
                          "remove it, or add the opening bracket it closes")
    return None


def _three_dots(err: UnexpectedToken, tok: Token, prev: Token | None, source: Source,
                open_: list[Token]) -> Diagnostic | None:
    """`2...8` lexes as `2`, `..`, `.`: a range written with three dots."""
    line, column = tok.line or 1, tok.column or 1
    if tok.type == "DOT" and source.line(line)[max(column - 3, 0):column] == "...":
        span = Span(source, line, column - 2, line, column + 1)
        return Diagnostic("ranges use two dots", span, "write `int(2..8)`")
    return None


def _slash_comment(err: UnexpectedToken, tok: Token, prev: Token | None, source: Source,
                   open_: list[Token]) -> Diagnostic | None:
    if tok.value == "//" and (prev is None or prev.type in ("_NL", "LBRACE")):
        return Diagnostic("comments start with `#`", _span_of(tok, source), "write `# …`")
    return None


def _missing_value(err: UnexpectedToken, tok: Token, prev: Token | None, source: Source,
                   open_: list[Token]) -> Diagnostic | None:
    """An expression was due (after `=`, an operator, `return`, …) but a line or bracket ended."""
    if "NUMBER" in err.expected and prev is not None and tok.type in (
            "_NL", "$END", "RPAR", "RSQB", "RBRACE"):
        span = _at_end(source) if tok.type == "$END" else _span_of(tok, source)
        return Diagnostic(f"missing a value after {_show(prev)}", span,
                          "write a value here: a number, a name, `choice(…)`, a block, …")
    return None


def _stray_comma(err: UnexpectedToken, tok: Token, prev: Token | None, source: Source,
                 open_: list[Token]) -> Diagnostic | None:
    if tok.type == "COMMA" and (prev is None or prev.type in ("COMMA", "LPAR", "LSQB", "EQUAL")):
        return Diagnostic("stray comma", _span_of(tok, source), "remove the extra `,`")
    if tok.type == "COMMA" and "COMMA" not in err.expected:
        return Diagnostic("stray comma: a comma cannot stand here", _span_of(tok, source),
                          "statements end at a newline or `;`, not a comma")
    return None


def _missing_equals(err: UnexpectedToken, tok: Token, prev: Token | None, source: Source,
                    open_: list[Token]) -> Diagnostic | None:
    in_args = bool(open_) and open_[-1].type != "LBRACE" and "COMMA" in err.expected
    if tok.type == "NAME" and ("_NL" in err.expected or in_args):
        return None  # `layernorm relu`, `def f(a b)`: a line or a comma is missing, not `=`
    if "EQUAL" in err.expected and prev is not None and prev.type == "NAME" \
            and tok.type != "COMMA":
        return Diagnostic(f"missing `=` after '{prev.value}'", _span_of(tok, source),
                          f"write `{prev.value} = …`")
    return None


def _equals_for_compare(err: UnexpectedToken, tok: Token, prev: Token | None, source: Source,
                        open_: list[Token]) -> Diagnostic | None:
    if tok.type == "EQUAL" and "COMPARE" in err.expected:
        return Diagnostic("`=` assigns; a comparison uses `==`", _span_of(tok, source),
                          "write `==` to compare")
    return None


def _unknown_keyword(err: UnexpectedToken, tok: Token, prev: Token | None, source: Source,
                     open_: list[Token]) -> Diagnostic | None:
    """A misspelt keyword reads as a name followed by something a name cannot be followed by."""
    word = tok if tok.type == "NAME" and not open_ else prev
    if word is None or word.type != "NAME":
        return None
    top = not open_ and "SPACE" in err.expected
    choices = TOP_KEYWORDS if top else STMT_KEYWORDS
    hint = did_you_mean(word.value, choices)
    if top:
        return Diagnostic(f"unknown keyword '{word.value}'", _span_of(word, source),
                          hint or f"a file holds {', '.join(choices)} items")
    if hint and word is prev and tok.type in ("NAME", "NUMBER"):
        return Diagnostic(f"unknown keyword '{word.value}'", _span_of(word, source), hint)
    if word is prev and word.value in FOREIGN and tok.type in ("NAME", "NUMBER", "LPAR"):
        return Diagnostic(f"unknown keyword '{word.value}'", _span_of(word, source),
                          f"statements start with {', '.join(STMT_KEYWORDS)}, a binding "
                          "`name = …` or a block")
    return None


def _missing_comma(err: UnexpectedToken, tok: Token, prev: Token | None, source: Source,
                   open_: list[Token]) -> Diagnostic | None:
    if open_ and open_[-1].type in ("LPAR", "LSQB") and "COMMA" in err.expected and tok.type in (
            "NAME", "NUMBER", "STRING", "QUANTITY"):
        hint = (f"write `{prev.value} = {tok.value}` for a keyword argument"
                if prev is not None and prev.type == "NAME" and tok.type != "NAME"
                else "separate arguments with `,`")
        return Diagnostic(f"missing `,` before {_show(tok)}", _span_of(tok, source), hint)
    return None


def _statement_end(err: UnexpectedToken, tok: Token, prev: Token | None, source: Source,
                   open_: list[Token]) -> Diagnostic | None:
    if "_NL" in err.expected and tok.type not in ("_NL", "$END"):
        return Diagnostic(f"unexpected {_show(tok)}: expected the end of the statement",
                          _span_of(tok, source),
                          "put one statement per line, or separate with `;`")
    return None


_RULES = (_unmatched, _unclosed, _three_dots, _slash_comment, _stray_comma, _equals_for_compare,
          _unknown_keyword, _missing_equals, _missing_value, _missing_comma, _statement_end)


def _generic(err: UnexpectedToken, source: Source) -> Diagnostic:
    tok = err.token
    span = _at_end(source) if tok.type == "$END" else _span_of(tok, source)
    expected = sorted({_WORDS.get(e, f"`{e.lower()}`" if e.isupper() and e not in _WORDS
                       else e) for e in err.expected if not e.startswith("__")})
    want = ", ".join(expected[:6]) + (", …" if len(expected) > 6 else "")
    return Diagnostic(f"unexpected {_show(tok)}", span, f"expected {want}" if want else None)

"""PxL text → AST, with errors that name the construct and point at it.

The grammar (``grammar/pxl.lark``) is loaded once, LALR with a basic lexer and an indentation
post-lexer. The transformer builds :mod:`pxl.syntax` nodes, one small method per grammar alias.

>>> parse("import px\\nx = 1 + 2\\n").body[1]
Assign(target=Name(id='x'), value=BinOp(op='+', left=Const(value=1), right=Const(value=2)))
"""

from __future__ import annotations

import functools
import re
import threading
from pathlib import Path
from typing import Any

from lark import Lark, Token, Transformer
from lark.exceptions import (
    UnexpectedCharacters,
    UnexpectedEOF,
    UnexpectedInput,
    UnexpectedToken,
    VisitError,
)
from lark.indenter import DedentError, Indenter

from engine.errors import PxlSyntaxError, Span
from pxl import syntax as S

__all__ = ["parse", "decode_source", "MAX_SOURCE_CHARS", "MAX_NESTING", "MAX_EXPR_DEPTH"]

MAX_SOURCE_CHARS = 1_000_000
MAX_NESTING = 100
#: Deepest expression tree a statement may hold (a+a+…+a with this many terms, say).
MAX_EXPR_DEPTH = 500
GRAMMAR = Path(__file__).with_name("grammar") / "pxl.lark"


class _PxlIndenter(Indenter):
    NL_type = "_NEWLINE"
    OPEN_PAREN_types = ["LPAR", "LSQB", "LBRACE"]
    CLOSE_PAREN_types = ["RPAR", "RSQB", "RBRACE"]
    INDENT_type = "_INDENT"
    DEDENT_type = "_DEDENT"
    tab_len = 8
    # Terminals no rule uses are dropped by lark unless a post-lexer asks to keep them; these name
    # Python constructs PxL lacks, so that the parser's error can say which one it met.
    always_accept = ("_NEWLINE", "RESERVED", "POW", "FLOORDIV", "AUGASSIGN", "BITOP", "WALRUS",
                     "FSTRING")


@functools.cache
def _lark() -> Lark:
    """The parser, built once. The AST is made during parsing (an inline transformer, no tree)
    and spans come from the first and last token of each node, which is several times faster
    than lark's propagate_positions (docs/performance.md)."""
    # lark's cache key covers the grammar text but not the post-lexer: name what it keeps.
    text = GRAMMAR.read_text(encoding="utf-8") + "\n// keep " + " ".join(_PxlIndenter.always_accept)
    return Lark(
        text,
        parser="lalr",
        lexer="basic",
        postlex=_PxlIndenter(),
        keep_all_tokens=True,
        maybe_placeholders=True,
        transformer=_BUILDER,
        cache=True,
    )


_PARSE_LOCK = threading.Lock()


def decode_source(data: bytes, filename: str = "<script>") -> str:
    """Bytes of a script → text; invalid UTF-8 is a syntax error at the first bad byte."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = data[: exc.start]
        line = before.count(b"\n") + 1
        col = len(before[before.rfind(b"\n") + 1:].decode("utf-8")) + 1  # in characters
        raise PxlSyntaxError(
            f"the script is not valid UTF-8 (byte 0x{data[exc.start]:02x})",
            Span(filename, line, col),
            hint="save the file as UTF-8", source=data.decode("utf-8", "replace"),
        ) from None
    return text.removeprefix("\ufeff")


def parse(source: str, filename: str = "<script>") -> S.Module:
    """Parse PxL text into a :class:`pxl.syntax.Module`; raises PxlSyntaxError.

    The AST is immutable, so the last few scripts' trees are kept: a dashboard, ``.watch`` or
    an agent answering the same script again skips parsing (errors are not kept)."""
    if len(source) > _CACHE_MAX_CHARS:
        return _parse(source, filename)
    return _parse_cached(source, filename)


_CACHE_MAX_CHARS = 100_000


def _parse(source: str, filename: str) -> S.Module:
    _check_limits(source, filename)
    text = source if source.endswith("\n") else source + "\n"
    try:
        with _PARSE_LOCK:  # the builder is shared: it names the file in the spans it makes
            _BUILDER.f = filename
            return _lark().parse(text)  # type: ignore[return-value]
    except UnexpectedInput as exc:
        raise _syntax_error(exc, text, filename).with_source(source) from None
    except DedentError:
        line = _dedent_line(text)
        raise PxlSyntaxError(
            "this line's indentation matches no outer block", Span(filename, line, 1),
            hint="indent with the same spaces as the block it belongs to", source=source,
        ) from None
    except PxlSyntaxError as exc:
        raise exc.with_source(source) from None
    except VisitError as exc:
        if isinstance(exc.orig_exc, PxlSyntaxError):
            raise exc.orig_exc.with_source(source) from None
        raise


_parse_cached = functools.lru_cache(maxsize=64)(_parse)


def _check_limits(source: str, filename: str) -> None:
    if len(source) > MAX_SOURCE_CHARS:
        raise PxlSyntaxError(
            f"the script is too large ({len(source):,} characters; at most {MAX_SOURCE_CHARS:,})",
            Span(filename, 1, 1), hint="split it into smaller scripts")
    nul = source.find("\0")
    if nul >= 0:
        raise PxlSyntaxError("the script contains a NUL byte", _span_at(source, nul, filename),
                             hint="is this a binary file?", source=source)
    first = _first_code_offset(source)
    if first >= 0 and source[first] in " \t":
        indent = len(source[first:]) - len(source[first:].lstrip(" \t"))
        raise PxlSyntaxError("unexpected indentation", _span_at(source, first + indent, filename),
                             hint="the first statement starts at column 1", source=source)
    depth = 0
    for m in re.finditer(r"[(\[{]|[)\]}]|#[^\n]*|\"(?:[^\"\\\n]|\\.)*\"|'(?:[^'\\\n]|\\.)*'", source):
        ch = m.group()[0]
        if ch in "([{":
            depth += 1
            if depth > MAX_NESTING:
                raise PxlSyntaxError(
                    f"brackets are nested more than {MAX_NESTING} deep",
                    _span_at(source, m.start(), filename),
                    hint="split the expression into several assignments", source=source)
        elif ch in ")]}":
            depth = max(0, depth - 1)


def _first_code_offset(source: str) -> int:
    for m in re.finditer(r"^[^\n]*$", source, re.M):
        if m.group().strip() and not m.group().lstrip().startswith("#"):
            return m.start()
    return -1


def _span_at(source: str, offset: int, filename: str) -> Span:
    line = source.count("\n", 0, offset) + 1
    col = offset - (source.rfind("\n", 0, offset) + 1) + 1
    return Span(filename, line, col)


def _dedent_line(text: str) -> int:
    indents = [0]
    for i, line in enumerate(text.splitlines(), 1):
        stripped = line.lstrip(" \t")
        if not stripped or stripped.startswith("#"):
            continue
        width = len(line.expandtabs(8)) - len(stripped.expandtabs(8))
        if width > indents[-1]:
            indents.append(width)
        while width < indents[-1]:
            indents.pop()
        if width != indents[-1]:
            return i
    return 1


# ----------------------------------------------------------------------------------------------
# Error messages: the construct, its place and a next step.

_RESERVED_HINTS = {
    "for": ("loops are not part of PxL",
            "a script is a pipeline of DataFrame operations; compute per row with column "
            "expressions such as df.x = df.a * 2"),
    "while": ("loops are not part of PxL",
              "a script is a pipeline of DataFrame operations; compute per row with column "
              "expressions"),
    "if": ("'if' is not part of PxL",
           "for a per-row choice use px.select(condition, value_if_true, value_if_false)"),
    "class": ("classes are not part of PxL", "define functions with 'def'"),
    "lambda": ("'lambda' is not part of PxL", "define a function with 'def'"),
    "in": ("the 'in' operator is not part of PxL", "compare with == and combine with 'or'"),
    "is": ("the 'is' operator is not part of PxL", "compare with == or !="),
    "elif": ("'elif' is not part of PxL",
             "for a per-row choice use px.select(condition, value_if_true, value_if_false)"),
    "else": ("'else' is not part of PxL",
             "for a per-row choice use px.select(condition, value_if_true, value_if_false)"),
    "with": ("'with' is not part of PxL", "read tables with px.DataFrame(table='...')"),
    "try": ("'try' is not part of PxL", "errors cannot be caught: keep rows that are valid with "
                                          "df = df[condition]"),
    "except": ("'except' is not part of PxL", "errors cannot be caught in PxL"),
    "finally": ("'finally' is not part of PxL", "errors cannot be caught in PxL"),
    "raise": ("'raise' is not part of PxL", "drop unwanted rows with df = df[condition]"),
    "del": ("'del' is not part of PxL", "drop columns with df = df.drop('col')"),
    "yield": ("'yield' is not part of PxL", "return a value with 'return'"),
    "global": ("'global' is not part of PxL", "pass values to functions as arguments"),
    "nonlocal": ("'nonlocal' is not part of PxL", "pass values to functions as arguments"),
}
_TOKEN_HINTS = {
    "POW": ("the '**' operator is not part of PxL", "use px.pow(a, b)"),
    "FLOORDIV": ("the '//' operator is not part of PxL", "use px.floor(a / b)"),
    "AUGASSIGN": ("augmented assignment (+= and the like) is not part of PxL",
                  "write it out: x = x + 1"),
    "BITOP": ("bitwise operators are not part of PxL", "combine conditions with 'and', 'or', 'not'"),
    "WALRUS": ("':=' is not part of PxL", "assign with '=' on its own line"),
    "FSTRING": ("f-strings are not part of PxL", "join strings with +"),
    "_INDENT": ("unexpected indentation", "only the body of a 'def' is indented"),
}


def _syntax_error(exc: UnexpectedInput, text: str, filename: str) -> PxlSyntaxError:
    if isinstance(exc, UnexpectedCharacters):
        ch = text[exc.pos_in_stream] if exc.pos_in_stream < len(text) else ""
        span = Span(filename, exc.line, exc.column)
        if ch in "\"'":
            if text[exc.pos_in_stream - 2:exc.pos_in_stream] == ch * 2:  # lexed as '' then '...
                return PxlSyntaxError("unterminated string", Span(filename, exc.line,
                                                                  exc.column - 2),
                                      hint=f"close the string with {ch * 3}")
            return PxlSyntaxError("unterminated string", span,
                                  hint="close the string with the same quote on the same line")
        return PxlSyntaxError(f"unexpected character {ch!r}", span,
                              hint="PxL is a subset of Python: check for a typo")
    if isinstance(exc, UnexpectedEOF):
        return _unclosed(text, len(text), filename) or PxlSyntaxError(
            "unexpected end of script", _end_span(text, filename),
            hint="is a bracket or string left open?")
    assert isinstance(exc, UnexpectedToken)
    return _unexpected_token(exc, text, filename)


def _end_span(text: str, filename: str) -> Span:
    lines = text.rstrip("\n").splitlines() or [""]
    return Span(filename, len(lines), len(lines[-1]) + 1)


def _unexpected_token(exc: UnexpectedToken, text: str, filename: str) -> PxlSyntaxError:
    tok: Token = exc.token
    if tok.type == "$END" or getattr(tok, "line", None) is None:
        return _unclosed(text, len(text), filename) or PxlSyntaxError(
            "unexpected end of script", _end_span(text, filename),
            hint="is a bracket or string left open?")
    end_col = tok.column + len(tok.value) if tok.value and "\n" not in tok.value else None
    span = Span(filename, tok.line, tok.column, tok.line, end_col)
    if tok.type == "RESERVED":
        word = str(tok.value)
        if word == "for" and text.splitlines()[tok.line - 1][: tok.column - 1].strip():
            return PxlSyntaxError("comprehensions are not part of PxL", span,
                                  hint="list the values literally, or compute on columns")
        message, hint = _RESERVED_HINTS.get(
            word, (f"'{word}' is not part of PxL",
                   "PxL has imports, assignments, defs and expressions only"))
        return PxlSyntaxError(message, span, hint=hint)
    if tok.type == "NOT" and re.match(r"not\s+in(?!\w)", text[tok.start_pos:]):
        message, hint = _RESERVED_HINTS["in"]
        return PxlSyntaxError(message.replace("'in'", "'not in'"), span,
                              hint="compare with != and combine with 'and'")
    if exc.expected == {"_INDENT"}:
        return PxlSyntaxError("expected an indented block", span,
                              hint="indent the body of the def, e.g. by 4 spaces")
    if tok.type in _TOKEN_HINTS:
        message, hint = _TOKEN_HINTS[tok.type]
        return PxlSyntaxError(message, span, hint=hint)
    if tok.type == "COMP_OP" and "NAME" not in exc.expected:  # a complete comparison before it
        return PxlSyntaxError("chained comparisons are not part of PxL", span,
                              hint="write (a < b) and (b < c)")
    if tok.type == "_NEWLINE":
        expected = _describe_expected(exc.expected)
        return PxlSyntaxError("unexpected end of line", Span(filename, tok.line, tok.column),
                              hint="the statement is incomplete"
                                   + (f": expected {expected}" if expected else ""))
    if tok.type == "_DEDENT":
        return PxlSyntaxError("unexpected end of block", span, hint="the statement is incomplete")
    unclosed = _unclosed(text, tok.start_pos, filename)
    if unclosed is not None and unclosed.span.line < tok.line:  # type: ignore[union-attr]
        return unclosed
    number = re.search(r"\d[\w.]*$", text[:tok.start_pos])
    if number and re.match(r"[\w.]", text[tok.start_pos]) \
            and not re.search(r"[\w.]$", text[:number.start()]):  # a token glued to a number
        word = number.group() + re.match(r"[\w.]*", text[tok.start_pos:]).group()  # type: ignore[union-attr]
        return PxlSyntaxError(f"invalid number {word!r}", Span(filename, tok.line,
                                                                tok.column - len(number.group())),
                              hint="numbers are decimal (1_000, 2.5, 1e-3) or hex (0xff); "
                                   "durations are strings such as '5m'")
    shown = str(tok.value).split("\n")[0]
    expected = _describe_expected(exc.expected)
    return PxlSyntaxError(f"unexpected {shown!r}", span,
                          hint=f"expected {expected}" if expected else None)


_NAMES = {"RPAR": "')'", "RSQB": "']'", "RBRACE": "'}'", "COMMA": "','", "COLON": "':'",
          "_NEWLINE": "a new line", "NAME": "a name", "EQUAL": "'='", "LPAR": "'('"}


def _describe_expected(expected: set[str]) -> str:
    if "_NEWLINE" in expected and "PLUS" in expected:  # after a complete expression
        return "an operator or the end of the line"
    if "NAME" in expected and "DEC_NUMBER" in expected:
        return "an expression"
    shown = sorted(_NAMES[t] for t in expected if t in _NAMES)
    return " or ".join(shown[:4])


def _unclosed(text: str, upto: int, filename: str) -> PxlSyntaxError | None:
    """The innermost bracket opened before ``upto`` that the script never closes."""
    stack: list[int] = []
    pattern = r"[(\[{]|[)\]}]|#[^\n]*|\"(?:[^\"\\\n]|\\.)*\"|'(?:[^'\\\n]|\\.)*'"
    for m in re.finditer(pattern, text):
        ch = m.group()[0]
        if ch in "([{":
            stack.append(m.start())
        elif ch in ")]}" and stack:
            stack.pop()
    before = [i for i in stack if i < upto]
    if not before:
        return None
    bracket = text[before[-1]]
    return PxlSyntaxError(f"'{bracket}' is never closed", _span_at(text, before[-1], filename),
                          hint=f"close it with '{')]}'['([{'.index(bracket)]}'")


# ----------------------------------------------------------------------------------------------
# Tokens → AST


#: Token types that carry a value; every other token is punctuation or a keyword.
_VALUE_TOKENS = frozenset({"NAME", "DEC_NUMBER", "HEX_NUMBER", "FLOAT_NUMBER", "STRING", "COMP_OP"})


def _tok_span(filename: str, tok: Token) -> Span:
    return Span(filename, tok.line, tok.column, tok.end_line, tok.end_column)


def _start(x: Any) -> tuple[int, int] | None:
    if isinstance(x, Token):
        return x.line, x.column
    if isinstance(x, S.Node):
        return x.span.line, x.span.col
    if isinstance(x, list | tuple):
        for y in x:
            if (pos := _start(y)) is not None:
                return pos
    return None


def _end(x: Any) -> tuple[int, int] | None:
    if isinstance(x, Token):
        return x.end_line, x.end_column
    if isinstance(x, S.Node):
        return x.span.end_line or x.span.line, x.span.end_col or x.span.col
    if isinstance(x, list | tuple):
        for y in reversed(x):
            if (pos := _end(y)) is not None:
                return pos
    return None


def _values(items: list[Any]) -> list[Any]:
    """The children that mean something: nodes, value tokens and empty optionals (None)."""
    return [i for i in items if not isinstance(i, Token) or i.type in _VALUE_TOKENS]


class _Builder(Transformer):
    """Makes AST nodes while lark parses: one small method per grammar alias. Each gets all the
    children of its rule (punctuation included) and takes its span from the first and last."""

    def __init__(self) -> None:
        super().__init__()
        self.f = "<script>"

    def _s(self, items: list[Any]) -> Span:
        start, end = _start(items), _end(items)
        if start is None or end is None:
            return Span(self.f, 1, 1)
        return Span(self.f, start[0], start[1], end[0], end[1])

    # --- statements
    def start(self, items):
        return S.Module(tuple(i for i in items if isinstance(i, S.Stmt)), span=self._s(items))

    def import_stmt(self, items):  # "import" dotted_name ["as" NAME]
        module, alias = items[1], items[3]
        if _dotted(module) != "px":
            raise PxlSyntaxError(f"cannot import {_dotted(module)!r}: only 'px' can be imported",
                                 self._s(items), hint="write 'import px'")
        return S.Import("px", self._name(alias) if alias else None, span=self._s(items))

    def from_import(self, items):
        module, *names = _values(items)
        if _dotted(module) != "px":
            raise PxlSyntaxError(f"cannot import from {_dotted(module)!r}: only 'px' can be "
                                 "imported", self._s(items), hint="write 'from px import NAME'")
        return S.FromImport("px", tuple(n[0] for n in names), span=self._s(items))

    def import_name(self, items):  # NAME ["as" NAME]
        name, alias = items[0], items[2]
        return ((self._name(name), self._name(alias) if alias else None), name)

    def dotted_name(self, items):
        return [i for i in items if isinstance(i, Token) and i.type == "NAME"]

    def assign(self, items):
        target, value = _values(items)
        if not isinstance(target, S.Name | S.Attribute | S.Subscript):
            raise PxlSyntaxError("cannot assign to this expression", target.span,
                                 hint="assign to a name, df.column or df['column']")
        return _shallow(S.Assign(target, value, span=self._s(items)))

    def expr_stmt(self, items):
        return _shallow(S.ExprStmt(items[0], span=self._s(items)))

    def return_stmt(self, items):
        return _shallow(S.Return(_values(items)[0], span=self._s(items)))

    def pass_stmt(self, items):
        return S.Pass(span=self._s(items))

    def funcdef(self, items):  # "def" NAME "(" [params] ")" ["->" expr] ":" suite
        name, params, returns, body = items[1], items[3], items[6], items[-1]
        body = tuple(body)
        doc = None
        if body and isinstance(body[0], S.ExprStmt) and isinstance(body[0].expr, S.Const) \
                and isinstance(body[0].expr.value, str):
            doc, body = body[0].expr.value, body[1:]
        return S.FunctionDef(self._name(name), tuple(params or ()), returns, body, doc,
                             span=self._s(items))

    def params(self, items):
        params = [i for i in _values(items) if i is not None]
        for i, p in enumerate(params):
            if any(q.name == p.name for q in params[:i]):
                raise PxlSyntaxError(f"parameter {p.name!r} appears twice", p.span,
                                     hint="give each parameter its own name")
            if p.default is None and any(q.default is not None for q in params[:i]):
                raise PxlSyntaxError(f"parameter {p.name!r} without a default follows one with "
                                     "a default", p.span, hint="put parameters with defaults last")
        return params

    def param(self, items):  # NAME [":" expr] ["=" expr]
        name, annotation, default = items[0], items[2], items[4]
        return S.Param(self._name(name), annotation, default, span=self._s(items))

    def suite(self, items):
        return [i for i in items if isinstance(i, S.Stmt)]

    # --- expressions
    def atom(self, items):  # a parenthesised expression
        return _values(items)[0]

    def or_(self, items):
        left, right = _values(items)
        return S.BoolOp("or", left, right, span=self._s(items))

    def and_(self, items):
        left, right = _values(items)
        return S.BoolOp("and", left, right, span=self._s(items))

    def not_(self, items):
        return S.Not(_values(items)[0], span=self._s(items))

    def compare(self, items):
        left, op, right = items
        return S.Compare(str(op), left, right, span=self._s(items))

    def _bin(op: str):  # noqa: N805 - a method factory used in the class body
        def method(self, items):
            left, right = _values(items)
            return S.BinOp(op, left, right, span=self._s(items))
        return method

    add, sub, mul, div, mod = _bin("+"), _bin("-"), _bin("*"), _bin("/"), _bin("%")

    def neg(self, items):
        return S.UnaryOp("-", _values(items)[0], span=self._s(items))

    def pos(self, items):
        return S.UnaryOp("+", _values(items)[0], span=self._s(items))

    def call(self, items):
        func, arguments = _values(items)
        args: list[S.Expr] = []
        keywords: list[S.Keyword] = []
        for a in arguments or ():
            if isinstance(a, S.Keyword):
                if any(k.name == a.name for k in keywords):
                    raise PxlSyntaxError(f"keyword argument {a.name!r} given twice", a.span)
                keywords.append(a)
            elif keywords:
                raise PxlSyntaxError("a positional argument follows a keyword argument", a.span,
                                     hint="put positional arguments first")
            else:
                args.append(a)
        return S.Call(func, tuple(args), tuple(keywords), span=self._s(items))

    def arguments(self, items):
        return [i for i in _values(items) if i is not None]

    def kwarg(self, items):
        name, value = _values(items)
        return S.Keyword(self._name(name), value, span=self._s(items))

    def subscript(self, items):
        value, index = _values(items)
        return S.Subscript(value, index, span=self._s(items))

    def getattr(self, items):
        value, name = _values(items)
        return S.Attribute(value, self._name(name), span=self._s(items))

    def name(self, items):
        return S.Name(self._name(items[0]), span=self._s(items))

    def int_(self, items):
        return S.Const(int(str(items[0]).replace("_", ""), 0), span=self._s(items))

    def float_(self, items):
        return S.Const(float(str(items[0]).replace("_", "")), span=self._s(items))

    def string(self, items):
        return S.Const("".join(_unescape(t, self.f) for t in items), span=self._s(items))

    def none(self, items):
        return S.Const(None, span=self._s(items))

    def true(self, items):
        return S.Const(True, span=self._s(items))

    def false(self, items):
        return S.Const(False, span=self._s(items))

    def tuple_(self, items):
        return S.TupleExpr(tuple(i for i in _values(items) if i is not None), span=self._s(items))

    def list_(self, items):
        return S.ListExpr(tuple(i for i in _values(items) if i is not None), span=self._s(items))

    def dict_(self, items):
        return S.DictExpr(tuple(i for i in _values(items) if i is not None), span=self._s(items))

    def pair(self, items):
        key, value = _values(items)
        return (key, value)

    def _name(self, tok: Token) -> str:
        name = str(tok)
        if name.startswith("__"):
            raise PxlSyntaxError(f"names starting with '__' are reserved: {name!r}",
                                 _tok_span(self.f, tok), hint="choose another name")
        return name



def _shallow(stmt: S.Stmt) -> S.Stmt:
    """The statement, if its expressions nest at most MAX_EXPR_DEPTH deep (later stages walk
    them recursively); found without recursion."""
    stack = [(c, 1) for c in S.children(stmt)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_EXPR_DEPTH:
            raise PxlSyntaxError(f"the script is nested too deeply (more than {MAX_EXPR_DEPTH} "
                                 "levels)", Span(stmt.span.file, stmt.span.line, stmt.span.col),
                                 hint="split deep expressions into several assignments")
        stack.extend((c, depth + 1) for c in S.children(node))
    return stmt


def _dotted(tokens: list[Token]) -> str:
    return ".".join(str(t) for t in tokens)


_BUILDER = _Builder()


_ESCAPES = {"\\": "\\", "'": "'", '"': '"', "a": "\a", "b": "\b", "f": "\f", "n": "\n",
            "r": "\r", "t": "\t", "v": "\v", "\n": "", "\r\n": ""}
_ESCAPE_RE = re.compile(r"\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|[0-7]{1,3}|\r\n|.)",
                        re.S)


def _unescape(tok: Token, filename: str) -> str:
    text = str(tok)
    prefix = ""
    while text[0] not in "\"'":
        prefix += text[0].lower()
        text = text[1:]
    if "b" in prefix:
        raise PxlSyntaxError("bytes literals are not part of PxL", _tok_span(filename, tok),
                             hint="use a plain string")
    quote = 3 if text[:3] in ('"""', "'''") else 1
    body = text[quote:-quote]
    if "r" in prefix:
        return body

    def replace(m: re.Match[str]) -> str:
        esc = m.group(1)
        if esc[0] in "xuU" and len(esc) > 1:
            code = int(esc[1:], 16)
            if code > 0x10FFFF:
                raise PxlSyntaxError(f"bad escape \\{esc} in a string", _tok_span(filename, tok))
            return chr(code)
        if esc[0] in "01234567":
            return chr(int(esc, 8))
        return _ESCAPES.get(esc, "\\" + esc)

    return _ESCAPE_RE.sub(replace, body)

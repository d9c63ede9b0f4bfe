"""PxL text → AST, with errors that name the construct and point at it.

The grammar (``grammar/pxl.lark``) is loaded once by Lark (LALR, a basic lexer, an indentation
post-lexer); its parse table drives the parse. The text is cut into tokens here, in one pass,
exactly as lark's lexer and post-lexer would cut it, and fed to lark's LALR parser loop, or to
lark-cython's compiled one when it is installed (the same table, the same results). A builder
makes :mod:`pxl.syntax` nodes as rules are reduced, one small method per grammar alias.

>>> parse("import px\\nx = 1 + 2\\n").body[1]
Assign(target=Name(id='x'), value=BinOp(op='+', left=Const(value=1), right=Const(value=2)))
"""

from __future__ import annotations

import dataclasses
import functools
import operator
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
from lark.lexer import PatternStr
from lark.parsers import lalr_parser_state as _lark_lalr
from lark.parsers.lalr_analysis import IntParseTable, Shift

try:  # lark's LALR parser loop compiled with Cython: optional, the same table and results
    from lark_cython import lark_cython as _cy

    _cy.ParseConf, _cy.ParserState.feed_token, _cy.Token  # noqa: B018 - the parts used here
except (ImportError, AttributeError):  # pragma: no cover - no wheel for this platform
    _cy = None

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


# ----------------------------------------------------------------------------------------------
# Text → tokens → parser. Lark's own lexer and Indenter post-lexer cost as much as the LALR parse
# (per token: a str-subclass Token made in Python, a step in each of two generators), so the
# tokens are made here in one pass and fed straight into a LALR parser state: the same
# terminals, tried in lark's order, and the same indentation tokens, in the order lark would
# hand them over, up to the same error. ``_lark().parse`` (lark's own lexer, post-lexer and
# parser loop) stays the reference the tests compare with.


class _Token:
    """A token for lark's pure-Python parser loop: what lark's Token holds, without being a str
    (cheaper to make; the builder reads ``.value``)."""

    __slots__ = ("type", "value", "start_pos", "line", "column", "end_line", "end_column",
                 "end_pos")

    def __init__(self, type_: str, value: str, start_pos: int, line: int, column: int,
                 end_line: int | None = None, end_column: int | None = None,
                 end_pos: int | None = None) -> None:
        self.type = type_
        self.value = value
        self.start_pos = start_pos
        self.line = line
        self.column = column
        self.end_line = end_line
        self.end_column = end_column
        self.end_pos = end_pos

    @classmethod
    def new_borrow_pos(cls, type_: str, value: str, t: Any) -> _Token:
        return cls(type_, value, t.start_pos, t.line, t.column, t.end_line, t.end_column,
                   t.end_pos)

    def __repr__(self) -> str:
        return f"Token({self.type!r}, {self.value!r})"


#: Every kind of token object the builder may be handed.
_TOKENS: tuple[type, ...] = (Token, _Token) + ((_cy.Token,) if _cy is not None else ())


class _Scanner:
    """The grammar's terminals as one regex, tried in lark's order (priority, longest possible
    match, longest definition, name); words the NAME terminal also matches (keywords) become
    their own terminal after the match, as in lark.

    Built for speed, with the same matches: the spaces before a token are part of its match
    (group 1; no other terminal can start with one), each terminal is followed by an empty group
    whose number names it (``lastindex``), and a terminal whose regex starts with a group or
    alternatives is guarded by a lookahead for its possible first characters, so that the
    regex engine skips it in one test (as it does by itself for one that starts with a
    character or a set)."""

    def __init__(self, lark: Lark) -> None:
        conf = lark.lexer_conf
        flags = conf.g_regex_flags
        terminals = sorted(conf.terminals, key=lambda t: (-t.priority, -t.pattern.max_width,
                                                         -len(t.pattern.value), t.name))
        # the terminals defined by a regex, compiled once (a string's regex has no group)
        compiled = {t.name: re.compile(t.pattern.to_regexp(), flags) for t in terminals
                    if not isinstance(t.pattern, PatternStr)}
        retype: dict[str, dict[str, str]] = {}  # terminal → {word: keyword terminal}
        embedded = set()
        for r in terminals:
            if isinstance(r.pattern, PatternStr):
                continue
            for t in terminals:
                if not isinstance(t.pattern, PatternStr) or t.priority != r.priority:
                    continue
                m = compiled[r.name].match(t.pattern.value)
                if m and m.group(0) == t.pattern.value:
                    retype.setdefault(r.name, {})[t.pattern.value] = t.name
                    if t.pattern.flags <= r.pattern.flags:
                        embedded.add(t.name)
        if set(retype) - {"NAME"}:
            raise RuntimeError(f"keywords of a terminal other than NAME: {retype}")
        self.name_words = retype.get("NAME", {})
        blank = "[\t \x0c]+"  # the %ignore'd spaces
        ignore = set(conf.ignore)
        spaces = [t.name for t in terminals if t.name in ignore and t.pattern.to_regexp() == blank]
        if len(spaces) != 1:
            raise RuntimeError("the grammar should %ignore spaces and tabs: /[\\t \\f]+/")
        kept = [t for t in terminals if t.name not in embedded and t.name not in spaces]
        # (terminal, what the tokenizer does with it) by the number of the group after it
        self.kinds: list[tuple[str, int] | None] = [None, None]
        parts = []
        for t in kept:
            regexp = t.pattern.to_regexp()
            guard = None if isinstance(t.pattern, PatternStr) else _first_chars(regexp, flags)
            parts.append(("" if guard is None else f"(?={guard})") + f"(?:{regexp})()")
            self.kinds += [None] * (compiled[t.name].groups if t.name in compiled else 0)
            role = (_NEWLINE if t.name == _PxlIndenter.NL_type
                    else _SKIP if t.name in ignore
                    else _WORD if t.name == "NAME"  # never holds a new line
                    else _LINES if _may_hold_newline(regexp)  # lines are counted in these
                    else _OPEN_BRACKET if t.name in _PxlIndenter.OPEN_PAREN_types
                    else _CLOSE_BRACKET if t.name in _PxlIndenter.CLOSE_PAREN_types
                    else _PLAIN)
            self.kinds.append((t.name, role))
        self.regex = re.compile("([\t \x0c]*)(?:" + "|".join(parts) + ")", flags)
        assert self.regex.groups + 1 == len(self.kinds)


def _first_chars(regexp: str, flags: int) -> str | None:
    """A character set (regex) holding every character a match of ``regexp`` can start with;
    None when the regex starts with a character or a set already, or when it is not simple
    enough to tell (no guard: slower, not different)."""
    try:
        from re import _constants as C  # noqa: N812
        from re import _parser
    except ImportError:  # pragma: no cover - CPython has them since 3.11
        return None
    if flags & (re.IGNORECASE | re.LOCALE):
        return None
    categories = {C.CATEGORY_DIGIT: r"\d", C.CATEGORY_NOT_DIGIT: r"\D",
                  C.CATEGORY_WORD: r"\w", C.CATEGORY_NOT_WORD: r"\W",
                  C.CATEGORY_SPACE: r"\s", C.CATEGORY_NOT_SPACE: r"\S"}
    found: list[str] = []

    class Unknown(Exception):
        pass

    def sequence(items: Any) -> bool:  # True if it can match the empty string
        return all(item(op, av) for op, av in items)

    def item(op: Any, av: Any) -> bool:
        if op is C.LITERAL:
            found.append(re.escape(chr(av)))
            return False
        if op is C.IN:
            for in_op, in_av in av:
                if in_op is C.LITERAL:
                    found.append(re.escape(chr(in_av)))
                elif in_op is C.RANGE:
                    found.append(re.escape(chr(in_av[0])) + "-" + re.escape(chr(in_av[1])))
                elif in_op is C.CATEGORY and in_av in categories:
                    found.append(categories[in_av])
                else:  # a negated set, say
                    raise Unknown
            return False
        if op is C.BRANCH:
            return any([sequence(branch) for branch in av[1]])  # every branch: a list
        if op is C.SUBPATTERN:
            if av[1] & (re.IGNORECASE | re.LOCALE):
                raise Unknown
            return sequence(av[3])
        if op in (C.MAX_REPEAT, C.MIN_REPEAT, C.POSSESSIVE_REPEAT):
            return sequence(av[2]) or av[0] == 0
        if op is C.ATOMIC_GROUP:
            return sequence(av)
        if op in (C.AT, C.ASSERT, C.ASSERT_NOT):  # match no character
            return True
        raise Unknown

    try:
        parsed = _parser.parse(regexp, flags)
        if parsed.data and parsed.data[0][0] in (C.LITERAL, C.IN):
            return None
        if sequence(parsed.data):
            return None  # could match nothing
    except (Unknown, re.error, TypeError, IndexError, AttributeError):
        return None
    return "[" + "".join(dict.fromkeys(found)) + "]"


def _may_hold_newline(regexp: str) -> bool:
    return "\n" in regexp or "\\n" in regexp or "\\s" in regexp or "[^" in regexp \
        or ("(?s" in regexp and "." in regexp)


# Roles of terminals in the tokenizer.
_PLAIN, _WORD, _OPEN_BRACKET, _CLOSE_BRACKET, _LINES, _SKIP, _NEWLINE = range(7)


def _tokens(text: str, Tok: Any) -> tuple[list[Any], Exception | None]:
    """The tokens lark's lexer and the Indenter post-lexer would hand the parser, in order, and
    the error they would raise after the last of them (None if the text lexes)."""
    scan = _scanner()
    kinds = scan.kinds
    retype_name = scan.name_words
    out: list[Any] = []
    append = out.append
    match = scan.regex.scanner(text).match
    line, line_start, pos = 1, 0, 0
    depth = 0  # brackets open
    indents = [0]
    dropped = None  # the last new line dropped inside brackets
    while (m := match()) is not None:
        kind, role = kinds[m.lastindex]  # type: ignore[misc]
        start = m.end(1)
        pos = m.end()
        value = text[start:pos]
        if role == _PLAIN:
            column = start - line_start + 1
            append(Tok(kind, value, start, line, column, line, column + pos - start, pos))
            continue
        if role == _WORD:
            column = start - line_start + 1
            append(Tok(retype_name.get(value, kind), value, start, line, column, line,
                       column + pos - start, pos))
            continue
        if role == _OPEN_BRACKET or role == _CLOSE_BRACKET:
            depth += 1 if role == _OPEN_BRACKET else -1
            column = start - line_start + 1
            append(Tok(kind, value, start, line, column, line, column + pos - start, pos))
            continue
        # terminals that may span lines: count them
        first_line, column = line, start - line_start + 1
        if "\n" in value:
            line += value.count("\n")
            line_start = start + value.rindex("\n") + 1
        if role == _SKIP:
            continue
        tok = Tok(kind, value, start, first_line, column, line, pos - line_start + 1, pos)
        if role != _NEWLINE:
            append(tok)
            continue
        # The Indenter: new lines inside brackets vanish; otherwise the indentation of the line
        # after the last new line opens one block or closes some.
        if depth > 0:
            dropped = tok
            continue
        append(tok)
        spaces = value[value.rfind("\n") + 1:]
        width = spaces.count(" ") + spaces.count("\t") * _PxlIndenter.tab_len
        if width > indents[-1]:
            indents.append(width)
            append(Tok.new_borrow_pos("_INDENT", spaces, tok))
            continue
        while width < indents[-1]:
            indents.pop()
            append(Tok.new_borrow_pos("_DEDENT", spaces, tok))
        if width != indents[-1]:
            return out, DedentError(f"Unexpected dedent to column {width}. Expected dedent to "
                                    f"{indents[-1]}")
    if pos < len(text):  # no terminal matches here (after any spaces)
        at = pos + len(text[pos:]) - len(text[pos:].lstrip("\t \x0c"))
        return out, UnexpectedCharacters(text, at, line, at - line_start + 1)
    if len(indents) > 1:  # close the blocks still open, at the last token lexed
        last = out[-1] if out else None
        if dropped is not None and (last is None or dropped.start_pos > last.start_pos):
            last = dropped
        for _ in indents[1:]:
            append(Tok.new_borrow_pos("_DEDENT", "", last) if last is not None
                   else Tok("_DEDENT", "", 0, 0, 0, 0, 0, 0))
    return out, None


def _run(text: str, loop: str) -> S.Module:
    """Feed the tokens into a fresh LALR parser state of one of the parser loops: "cython"
    (lark-cython's) or "python" (lark's), the same table and callbacks, which build the AST. The
    third, "lark", is lark's whole pipeline (lexer, post-lexer, parser): the reference."""
    if loop == "lark":
        return _lark().parse(text)  # type: ignore[return-value]
    exact, fast, state_class, Tok = _machine(loop == "cython")
    tokens, error = _tokens(text, Tok)
    try:
        return _feed(fast, state_class, Tok, tokens, error)
    except Exception:
        # The fast table fails at the same token but may be in a later state, which expects
        # other tokens: the error (and its hint) comes from the exact table.
        return _feed(exact, state_class, Tok, tokens, error)


def _feed(conf: Any, state_class: type, Tok: Any, tokens: list[Any],
          error: Exception | None) -> S.Module:
    state = state_class(conf, None)
    feed = state.feed_token
    for tok in tokens:
        feed(tok)
    if error is not None:
        raise error
    end = Tok.new_borrow_pos("$END", "", tokens[-1]) if tokens else Tok("$END", "", 0, 1, 1)
    return feed(end, True)


@functools.cache
def _scanner() -> _Scanner:
    return _Scanner(_lark())


@functools.cache
def _machine(cython: bool) -> tuple[Any, Any, type, type]:
    """(exact parse configuration, fast one, parser-state class, token class) for one loop.

    The exact table is lark's, with each rule replaced by a plain object (the loop looks every
    reduced rule up in the callbacks: lark's rules hash and compare in Python, these by
    identity), and callbacks that do what lark's tree builder does with this grammar and these
    options (keep_all_tokens, maybe_placeholders, an inline transformer) in fewer calls.

    The fast table also skips the states that only pass a value on: a state whose one action,
    whatever the next token, is to reduce a ``?rule`` with one child (``term: factor``, say)
    turns that child into the rule, and the parser then moves on from the state below as if it
    had read the rule. Going there at once gives the same parse with a third fewer reductions.
    On a token the skipped state would refuse, the state it leads to refuses it too (its
    lookaheads are among the skipped state's): the parse fails at the same place."""
    lark = _lark()
    table = lark.parser.parser._parse_table  # type: ignore[attr-defined]
    plain: dict[Any, _Rule] = {}
    states = {}
    for state, actions in table.states.items():
        row = {}
        for symbol, (action, arg) in actions.items():
            if action is not Shift:
                if arg not in plain:
                    plain[arg] = _Rule(arg)
                arg = plain[arg]
            row[symbol] = (action, arg)
        states[state] = row
    callbacks = {r: _callback(r) for r in plain.values()}
    passing = {}  # state → the ?rule it only reduces
    for state, row in states.items():
        rules = {id(arg): arg for action, arg in row.values() if action is not Shift}
        if len(rules) == 1 and all(action is not Shift for action, _ in row.values()):
            (rule,) = rules.values()
            if len(rule.expansion) == 1 and isinstance(callbacks[rule], operator.itemgetter):
                passing[state] = rule
    shortcut = {}
    for state, row in states.items():
        new_row = {}
        for symbol, (action, arg) in row.items():
            seen = set()
            while action is Shift and arg in passing and arg not in seen:
                seen.add(arg)
                action, arg = row[passing[arg].origin.name]
            new_row[symbol] = (action, arg)
        shortcut[state] = new_row
    exact = IntParseTable(states, table.start_states, table.end_states)
    fast = IntParseTable(shortcut, table.start_states, table.end_states)
    if cython:
        if _cy is None:
            raise RuntimeError("lark-cython is not installed")
        return (_cy.ParseConf(exact, callbacks, "start"), _cy.ParseConf(fast, callbacks, "start"),
                _cy.ParserState, _cy.Token)
    return (_lark_lalr.ParseConf(exact, callbacks, "start"),
            _lark_lalr.ParseConf(fast, callbacks, "start"), _lark_lalr.ParserState, _Token)


def _as_is(children: list[Any]) -> list[Any]:
    return children


def _one_or_build(build: Any, children: list[Any]) -> Any:
    return children[0] if len(children) == 1 else build(children)


class _Rule:
    """A grammar rule as the parser loop needs it (hashed by identity)."""

    __slots__ = ("origin", "expansion", "alias", "options")

    def __init__(self, rule: Any) -> None:
        self.origin, self.expansion = rule.origin, rule.expansion
        self.alias, self.options = rule.alias, rule.options


def _callback(rule: _Rule) -> Any:
    """What lark's ParseTreeBuilder would make for ``rule``: children → value. Rules named
    ``_x`` (and lark's generated ``__x_star_n``) are spliced into their parent's children,
    optional parts missing from the text are None, a ``?rule`` with one child is that child."""
    expansion = rule.expansion
    empty = rule.options.empty_indices
    if empty:  # where optional parts were left out: how many Nones before each child
        nones = [len(run) for run in "".join(str(int(b)) for b in empty).split("0")]
    else:
        nones = [0] * (len(expansion) + 1)
    plan = [(i, not sym.is_term and sym.name.startswith("_"), nones[i])
            for i, sym in enumerate(expansion)]
    after = nones[len(expansion)]
    inline = rule.options.expand1 and not rule.alias  # ?rule: one child is passed on as is
    if inline and len(expansion) == 1 and not empty and not plan[0][1]:
        return operator.itemgetter(0)
    name = rule.alias or rule.options.template_source or rule.origin.name
    build = getattr(_BUILDER, name, None)
    if build is None:
        if not rule.origin.name.startswith("_"):  # lark would make a Tree: not in this grammar
            raise RuntimeError(f"the AST builder has no method for rule {name!r}")
        build = _as_is  # a spliced rule: its children, as a list
    if inline:
        build = functools.partial(_one_or_build, build)
    if not empty and not any(splice for _, splice, _ in plan):
        return list if build is _as_is else build  # (a copy of the parser's fresh slice)
    # The common shapes, then any. A spliced first child's list is extended in place (lark does
    # the same): left-recursive repetitions stay linear.
    shape = [(splice, none) for _, splice, none in plan] + [after]
    if shape == [(True, 0), 0]:  # _rule: _other
        return operator.itemgetter(0) if build is _as_is else lambda c: build(c[0])
    if shape == [(True, 0), (True, 0), 0]:  # __rule_plus: __rule_plus _other

        def joined(c: list[Any]) -> Any:
            out = c[0]
            out += c[1]
            return build(out)

        return joined

    def shaped(children: list[Any]) -> Any:
        out: list[Any] | None = None
        for i, splice, none in plan:
            if splice and none == 0 and out is None:
                out = children[i]
                continue
            if out is None:
                out = []
            if none:
                out += [None] * none
            if splice:
                out += children[i]
            else:
                out.append(children[i])
        if out is None:
            out = []
        if after:
            out += [None] * after
        return build(out)

    return shaped


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


def _parse(source: str, filename: str, loop: str | None = None) -> S.Module:
    """Parse without the cache. ``loop`` (see _run) is for the tests; by default lark-cython's
    when it is installed, else lark's: the same trees and errors, the first faster."""
    _check_limits(source, filename)
    text = source if source.endswith("\n") else source + "\n"
    try:
        with _PARSE_LOCK:  # the builder is shared: it names the file in the spans it makes
            _BUILDER.f = filename
            return _run(text, loop or ("cython" if _cy is not None else "python"))
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


def _span_maker() -> Any:
    """Span(file, line, col, end_line, end_col), made about twice as fast: a frozen dataclass's
    __init__ sets each field through object.__setattr__; this sets the slots directly."""
    names = ("file", "line", "col", "end_line", "end_col")
    if tuple(f.name for f in dataclasses.fields(Span)) != names \
            or getattr(Span, "__slots__", None) != names:  # pragma: no cover - Span changed
        return Span
    new = Span.__new__
    set_file, set_line, set_col, set_end_line, set_end_col = (
        getattr(Span, name).__set__ for name in names)

    def span(file: str, line: int, col: int, end_line: int | None, end_col: int | None) -> Span:
        s = new(Span)
        set_file(s, file)
        set_line(s, line)
        set_col(s, col)
        set_end_line(s, end_line)
        set_end_col(s, end_col)
        return s

    return span


_span = _span_maker()


def _tok_span(filename: str, tok: Any) -> Span:
    return _span(filename, tok.line, tok.column, tok.end_line, tok.end_column)


# Spans from the first to the last child of a rule, when their kinds (token or node) are known:
# what _Builder._s finds by looking.
def _toks_span(filename: str, first: Any, last: Any) -> Span:
    return _span(filename, first.line, first.column, last.end_line, last.end_column)


def _nodes_span(filename: str, first: S.Node, last: S.Node) -> Span:
    a, b = first.span, last.span
    return _span(filename, a.line, a.col, b.end_line or b.line, b.end_col or b.col)


def _tok_node_span(filename: str, first: Any, last: S.Node) -> Span:
    b = last.span
    return _span(filename, first.line, first.column, b.end_line or b.line, b.end_col or b.col)


def _node_tok_span(filename: str, first: S.Node, last: Any) -> Span:
    a = first.span
    return _span(filename, a.line, a.col, last.end_line, last.end_column)


def _start(x: Any) -> tuple[int, int] | None:
    if isinstance(x, _TOKENS):
        return x.line, x.column
    if isinstance(x, S.Node):
        return x.span.line, x.span.col
    if isinstance(x, list | tuple):
        for y in x:
            if (pos := _start(y)) is not None:
                return pos
    return None


def _end(x: Any) -> tuple[int, int] | None:
    if isinstance(x, _TOKENS):
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
    return [i for i in items if not isinstance(i, _TOKENS) or i.type in _VALUE_TOKENS]


# The nodes the builder makes most, through S.maker: make(span, *fields), faster.
_Name, _Attribute, _Const, _Call, _Keyword = (
    S.maker(S.Name), S.maker(S.Attribute), S.maker(S.Const), S.maker(S.Call), S.maker(S.Keyword))
_BinOp, _Compare, _BoolOp, _UnaryOp, _Not, _Subscript = (
    S.maker(S.BinOp), S.maker(S.Compare), S.maker(S.BoolOp), S.maker(S.UnaryOp), S.maker(S.Not),
    S.maker(S.Subscript))
_Assign, _ExprStmt, _Return, _Param = (
    S.maker(S.Assign), S.maker(S.ExprStmt), S.maker(S.Return), S.maker(S.Param))


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
        return _span(self.f, start[0], start[1], end[0], end[1])

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
        return [i for i in items if isinstance(i, _TOKENS) and i.type == "NAME"]

    def assign(self, items):  # expr "=" expr
        target, _, value = items
        if not isinstance(target, S.Name | S.Attribute | S.Subscript):
            raise PxlSyntaxError("cannot assign to this expression", target.span,
                                 hint="assign to a name, df.column or df['column']")
        return _shallow(_Assign(_nodes_span(self.f, target, value), target, value))

    def expr_stmt(self, items):
        expr = items[0]
        return _shallow(_ExprStmt(_nodes_span(self.f, expr, expr), expr))

    def return_stmt(self, items):  # "return" [expr]
        keyword, value = items
        span = _tok_node_span(self.f, keyword, value) if value is not None \
            else _tok_span(self.f, keyword)
        return _shallow(_Return(span, value))

    def pass_stmt(self, items):
        return S.Pass(span=_tok_span(self.f, items[0]))

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
        return _Param(self._s(items), self._name(name), annotation, default)

    def suite(self, items):
        return [i for i in items if isinstance(i, S.Stmt)]

    # --- expressions
    def atom(self, items):  # a parenthesised expression
        return _values(items)[0]

    # Binary operators get [left, operator, right]; unary ones [operator, operand].
    def or_(self, items):
        left, _, right = items
        return _BoolOp(_nodes_span(self.f, left, right), "or", left, right)

    def and_(self, items):
        left, _, right = items
        return _BoolOp(_nodes_span(self.f, left, right), "and", left, right)

    def not_(self, items):
        keyword, operand = items
        return _Not(_tok_node_span(self.f, keyword, operand), operand)

    def compare(self, items):
        left, op, right = items
        return _Compare(_nodes_span(self.f, left, right), op.value, left, right)

    def _bin(op: str):  # noqa: N805 - a method factory used in the class body
        def method(self, items):
            left, _, right = items
            return _BinOp(_nodes_span(self.f, left, right), op, left, right)
        return method

    add, sub, mul, div, mod = _bin("+"), _bin("-"), _bin("*"), _bin("/"), _bin("%")

    def neg(self, items):
        sign, operand = items
        return _UnaryOp(_tok_node_span(self.f, sign, operand), "-", operand)

    def pos(self, items):
        sign, operand = items
        return _UnaryOp(_tok_node_span(self.f, sign, operand), "+", operand)

    def call(self, items):  # expr "(" [arguments] ")"
        func, _, arguments, close = items
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
        return _Call(_node_tok_span(self.f, func, close), func, tuple(args), tuple(keywords))

    def arguments(self, items):  # argument ("," argument)* [","]
        return [i for i in items if isinstance(i, S.Node)]

    def kwarg(self, items):  # NAME "=" expr
        name, _, value = items
        return _Keyword(_tok_node_span(self.f, name, value), self._name(name), value)

    def subscript(self, items):  # expr "[" expr "]"
        value, _, index, close = items
        return _Subscript(_node_tok_span(self.f, value, close), value, index)

    def getattr(self, items):  # expr "." NAME
        value, _, name = items
        return _Attribute(_node_tok_span(self.f, value, name), value, self._name(name))

    # Literals and names get their token(s).
    def name(self, items):
        tok = items[0]
        return _Name(_tok_span(self.f, tok), self._name(tok))

    def int_(self, items):
        tok = items[0]
        return _Const(_tok_span(self.f, tok), int(tok.value.replace("_", ""), 0))

    def float_(self, items):
        tok = items[0]
        return _Const(_tok_span(self.f, tok), float(tok.value.replace("_", "")))

    def string(self, items):
        first, last = items[0], items[-1]
        span = _span(self.f, first.line, first.column, last.end_line, last.end_column)
        return _Const(span, "".join(_unescape(t, self.f) for t in items))

    def none(self, items):
        return _Const(_tok_span(self.f, items[0]), None)

    def true(self, items):
        return _Const(_tok_span(self.f, items[0]), True)

    def false(self, items):
        return _Const(_tok_span(self.f, items[0]), False)

    # Brackets: the first and last children are the opening and closing tokens.
    def tuple_(self, items):
        return S.TupleExpr(tuple(i for i in _values(items) if i is not None),
                           span=_toks_span(self.f, items[0], items[-1]))

    def list_(self, items):
        return S.ListExpr(tuple(i for i in _values(items) if i is not None),
                          span=_toks_span(self.f, items[0], items[-1]))

    def dict_(self, items):
        return S.DictExpr(tuple(i for i in _values(items) if i is not None),
                          span=_toks_span(self.f, items[0], items[-1]))

    def pair(self, items):
        key, value = _values(items)
        return (key, value)

    def _name(self, tok: Token) -> str:
        name = tok.value
        if name.startswith("__"):
            raise PxlSyntaxError(f"names starting with '__' are reserved: {name!r}",
                                 _tok_span(self.f, tok), hint="choose another name")
        return name



def _shallow(stmt: S.Stmt) -> S.Stmt:
    """The statement, if its expressions nest at most MAX_EXPR_DEPTH deep (later stages walk
    them recursively); found without recursion. Each level of nesting has a token of its own
    (a name, an operator, a bracket, ...), so a statement on one line shorter than the limit
    needs no walk."""
    span = stmt.span
    if span.end_line == span.line and span.end_col - span.col <= MAX_EXPR_DEPTH:  # type: ignore[operator]
        return stmt
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
    return ".".join(t.value for t in tokens)


_BUILDER = _Builder()


_ESCAPES = {"\\": "\\", "'": "'", '"': '"', "a": "\a", "b": "\b", "f": "\f", "n": "\n",
            "r": "\r", "t": "\t", "v": "\v", "\n": "", "\r\n": ""}
_ESCAPE_RE = re.compile(r"\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|[0-7]{1,3}|\r\n|.)",
                        re.S)


def _unescape(tok: Any, filename: str) -> str:
    text = tok.value
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

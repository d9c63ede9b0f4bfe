"""Completion from the registries the engine uses, for the frame in hand.

:func:`candidates` looks at the text before the cursor and offers, by context:

- ``px.``: px functions with their signatures; in an agg tuple, the aggregates;
- ``df.``: the frame's columns and DataFrame methods (``df`` is evaluated, never run);
- inside ``table='`` / ``px.DataFrame('``: table names;
- inside ``df['``, ``df[['a', '``, ``groupby('``, ``sort_values('``, ``drop('`` and the first
  item of an agg tuple: the frame's columns; inside ``df.ctx['``: the ctx keys;
- a bare word: the session's names, keyword arguments of the call in hand, keywords;
- ``.``-commands and their arguments (tables, scripts, choices, files).
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from engine.functions.metadata import CTX_KEYS
from engine.registry import REGISTRY
from engine.tables import TABLES
from pxl.repl.editing import Scan, scan
from pxl.repl.render import method_signature, signature
from pxl.values import BoundMethod, Builtin, PxFunction, PxModule, UserFunction

if TYPE_CHECKING:
    from engine.types import Schema
    from pxl.repl.session import Session

__all__ = ["Candidate", "candidates", "call_hint", "receiver"]

KEYWORDS = ("import", "from", "def", "return", "pass", "and", "or", "not", "True", "False",
            "None", "help")
_WORD = re.compile(r"[A-Za-z_]\w*$")
_COLUMN_METHODS = ("groupby", "sort_values", "drop")

Evaluate = Callable[[str], Any]


@dataclass(frozen=True)
class Candidate:
    """Replace the ``-start`` characters before the cursor with ``text``."""

    text: str
    start: int
    meta: str = ""
    display: str | None = None


def candidates(session: Session, text: str, evaluate: Evaluate | None = None) -> list[Candidate]:
    """What may come next after ``text`` (the input up to the cursor)."""
    evaluate = evaluate or session.value_of
    if text.lstrip().startswith(".") and "\n" not in text:
        return list(_command(session, text.lstrip()))
    state = scan(text)
    if state.open_string:
        if len(state.string_quote) != 1 or state.string_start is None:
            return []
        prefix = text[state.string_start + 1:]
        return _in_string(session, text, state, prefix, evaluate)
    word = _WORD.search(text)
    prefix = word.group(0) if word else ""
    before = text[: len(text) - len(prefix)]
    if prefix[:1].isdigit():
        return []
    if before.endswith("."):
        return list(_attributes(text, before[:-1], state, prefix, evaluate))
    if not prefix:
        return []
    return list(_names(session, text, state, prefix, evaluate))


def _match(options: Iterable[tuple[str, str]], prefix: str,
           start: int | None = None) -> Iterator[Candidate]:
    back = -len(prefix) if start is None else start
    for name, meta in options:
        if name.startswith(prefix) and name != prefix:
            yield Candidate(name, back, meta)


# --- dot-commands ------------------------------------------------------------------------------
def _command(session: Session, line: str) -> Iterator[Candidate]:
    from pxl.repl.commands import COMMANDS, bundled_scripts

    name, space, arg = line.partition(" ")
    if not space:
        yield from _match(((f".{n}", c.help) for n, c in COMMANDS.items()), name)
        return
    command = COMMANDS.get(name[1:])
    if command is None or " " in arg.strip():
        return
    if name == ".schema":
        yield from _match(((t, _table_meta(t)) for t in session.catalog.table_names()), arg)
    elif name == ".run":
        yield from _match(bundled_scripts(), arg)
    elif name == ".load":
        for path in sorted(glob.glob(os.path.expanduser(arg) + "*"))[:50]:
            shown = path + ("/" if os.path.isdir(path) else "")
            yield Candidate(shown, -len(arg), "")
    else:
        yield from _match(((c, "") for c in command.choices), arg)


def _table_meta(name: str) -> str:
    spec = TABLES.get(name)
    return spec.description if spec else "table"


# --- strings: tables, columns, ctx keys ---------------------------------------------------------
def _in_string(session: Session, text: str, state: Scan, prefix: str,
               evaluate: Evaluate) -> list[Candidate]:
    assert state.string_start is not None
    q = state.string_start
    before = text[:q].rstrip()
    tables = ((t, _table_meta(t)) for t in session.catalog.table_names())
    if re.search(r"\btable\s*=\s*$", before):
        return list(_match(tables, prefix))
    opened = [b for b in state.brackets if b[1] < q]
    if not opened:
        return []
    kind, at = opened[-1]
    head = text[:at].rstrip()
    if kind == "(" and head.endswith("DataFrame") and not text[at + 1:q].strip():
        return list(_match(tables, prefix))
    if kind == "[" and head.endswith(".ctx"):
        return list(_match(((k, f"px.{v.function}") for k, v in sorted(CTX_KEYS.items())), prefix))
    frame = _frame_for(text, opened, q, evaluate)
    if frame is None:
        return []
    return list(_match(_columns(frame), prefix))


def _frame_for(text: str, opened: list[tuple[str, int]], q: int, evaluate: Evaluate) -> Any:
    """The frame whose columns a string at ``q`` names, from the brackets around it."""
    kind, at = opened[-1]
    head = text[:at].rstrip()
    if kind == "[":
        if head[-1:].isalnum() or head[-1:] in "_)]":
            return _frame(evaluate(receiver(head)))  # df['
        if len(opened) > 1:
            return _frame_for(text, opened[:-1], q, evaluate)  # a list: df[['a', ' / groupby(['
        return None
    callee = receiver(head)
    method = callee.rsplit(".", 1)
    if len(method) == 2 and method[1] in _COLUMN_METHODS:
        return _frame(evaluate(method[0]))  # df.groupby('
    if not callee and len(opened) > 1 and not text[at + 1:q].strip():
        outer = receiver(text[: opened[-2][1]].rstrip())  # agg(n=('
        if outer.endswith(".agg"):
            return _frame(evaluate(outer[: -len(".agg")]))
    return None


def _frame(value: Any) -> Schema | None:
    from pxl.dataframe import DataFrame, GroupBy

    if isinstance(value, GroupBy):
        value = value.frame
    return value.rel.schema if isinstance(value, DataFrame) else None


def _columns(schema: Schema) -> Iterator[tuple[str, str]]:
    for name, ctype in schema.columns:
        yield name, str(ctype)
    if "upid" in schema:
        for key in sorted(CTX_KEYS):
            if key not in schema:
                yield key, f"df.ctx[{key!r}]"


# --- attributes: px. and df. -------------------------------------------------------------------
def _attributes(text: str, head: str, state: Scan, prefix: str,
                evaluate: Evaluate) -> Iterator[Candidate]:
    from pxl.dataframe import METHODS, DataFrame, GroupBy

    target = receiver(head)
    if not target or not (target[0].isalpha() or target[0] == "_"):
        return
    value = evaluate(target)
    if isinstance(value, PxModule):
        yield from _match(_px_functions(aggregates_only=_in_agg_tuple(text, state)), prefix)
    elif isinstance(value, DataFrame):
        yield from _match(((n, str(t)) for n, t in value.rel.schema.columns), prefix)
        yield from _match(((m, method_signature(m)) for m in METHODS), prefix)
        yield from _match([("ctx", "process metadata: df.ctx['service']")], prefix)
    elif isinstance(value, GroupBy):
        yield from _match([("agg", "agg(name=('column', px.fn), ...)")], prefix)


def _px_functions(*, aggregates_only: bool = False) -> Iterator[tuple[str, str]]:
    from pxl.builtins import PX_BUILTINS

    if aggregates_only:
        for name in sorted(REGISTRY.aggregates):
            yield name, signature(PxFunction(REGISTRY.aggregates[name]))
        return
    for name, builtin in PX_BUILTINS.items():
        yield name, signature(builtin)
    for name in sorted(REGISTRY.names() | set(REGISTRY.aliases)):
        fn = REGISTRY.lookup(name)
        if fn is not None:
            yield name, signature(PxFunction(fn))


def _in_agg_tuple(text: str, state: Scan) -> bool:
    """Whether the cursor is inside ``(...)`` directly within ``.agg(``."""
    if len(state.brackets) < 2 or state.brackets[-1][0] != "(":
        return False
    inner, outer = state.brackets[-1][1], state.brackets[-2][1]
    return not receiver(text[:inner].rstrip()) and receiver(text[:outer].rstrip()).endswith(".agg")


# --- bare names and keyword arguments ----------------------------------------------------------
def _names(session: Session, text: str, state: Scan, prefix: str,
           evaluate: Evaluate) -> Iterator[Candidate]:
    from pxl.repl.render import format_value

    seen: set[str] = set()
    for name in _keyword_args(text, state, evaluate):
        seen.add(name)
        yield from _match([(f"{name}=", "argument")], prefix)
    for name in session.names():
        if name not in seen:
            yield from _match([(name, format_value(session.env[name])[:60])], prefix)
    yield from _match(((k, "keyword") for k in KEYWORDS if k not in session.env), prefix)


def _keyword_args(text: str, state: Scan, evaluate: Evaluate) -> list[str]:
    if not state.brackets or state.brackets[-1][0] != "(":
        return []
    callee = receiver(text[: state.brackets[-1][1]].rstrip())
    if not callee:
        return []
    value = evaluate(callee)
    if isinstance(value, UserFunction):
        return [p.name for p in value.node.params]
    usage = ""
    if isinstance(value, Builtin):
        usage = signature(value)
    elif isinstance(value, BoundMethod) and not hasattr(value.obj, "groups"):
        usage = method_signature(value.name)
    inside = usage[usage.find("(") + 1: usage.rfind(")")]
    return [p.split("=")[0].strip() for p in inside.split(",")
            if p.split("=")[0].strip().isidentifier()]


def call_hint(session: Session, text: str, evaluate: Evaluate | None = None) -> str | None:
    """The signature of the call the cursor is in (for the toolbar), if it is a known one."""
    evaluate = evaluate or session.value_of
    state = scan(text)
    calls = [at for kind, at in state.brackets if kind == "("]
    for at in reversed(calls):
        callee = receiver(text[:at].rstrip())
        if not callee:
            continue
        value = evaluate(callee)
        if isinstance(value, PxFunction | Builtin):
            return signature(value)
        if isinstance(value, BoundMethod):
            if hasattr(value.obj, "groups"):
                return "agg(name=('column', px.fn), name=('column', px.quantile, 0.99), ...)"
            return method_signature(value.name)
        if isinstance(value, UserFunction):
            return f"{value.node.name}({', '.join(p.name for p in value.node.params)})"
        return None
    return None


def receiver(text: str) -> str:
    """The expression that ends ``text``: names, dots, calls and subscripts, as in
    ``df[df.a > 1].groupby('b')``; '' if ``text`` ends in anything else.

    >>> receiver("x = df[df.a > 1].groupby")
    'df[df.a > 1].groupby'
    """
    state = scan(text)
    i = len(text)
    while i > 0:
        ch = text[i - 1]
        if ch.isalnum() or ch in "_.":
            i -= 1
        elif ch in ")]" and (i - 1) in state.pairs:
            i = state.pairs[i - 1]
        else:
            break
    out = text[i:]
    while out.startswith("."):
        out = out[1:]
    return out if out[:1].isalpha() or out[:1] == "_" else ""

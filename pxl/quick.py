"""Quick queries: one line that stands for a short PxL script.

    http_events|since:-5m|filter:service=shop/payment,latency>1000000|sort:-latency|head:20

is compiled to the PxL it stands for (``pxl query --explain`` prints it) and then to the same
plan. Steps, separated by ``|`` after the table name:

- ``since:-5m`` / ``until:-1m``: the time window (first steps only)
- ``filter:COND[,COND…]``: all conditions hold; ``col OP value`` with OP one of
  ``= == != > >= < <=`` or ``~`` (contains); values are numbers, or text (quotes optional)
- ``select:a,b`` · ``drop:a,b`` · ``head:N`` · ``sort:col,-col`` (``-`` for descending)
- ``groupby:a,b`` then ``agg:name=fn(col)[,…]`` (fn: count, sum, mean, min, max, any,
  quantile(col,0.99)); ``agg:`` alone after ``groupby:`` gives the distinct groups

Names a table lacks but ``df.ctx`` knows (service, pod, namespace …) resolve through it.

>>> print(to_pxl("http_events|filter:resp_status>=500|head:3").text)
import px
df = px.DataFrame(table='http_events')
df = df[df.resp_status >= 500]
df = df.head(3)
px.display(df)
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from engine.errors import PxlError, PxlSyntaxError, Span

__all__ = ["QuickQuery", "to_pxl", "map_error"]

_OPS = {"=": "==", "==": "==", "!=": "!=", ">": ">", ">=": ">=", "<": "<", "<=": "<=", "~": "~"}
_COND = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(==|!=|>=|<=|=|>|<|~)\s*(.*?)\s*$")
_NUMBER = re.compile(r"^-?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$")
_AGG = re.compile(r"^\s*([A-Za-z_]\w*)\s*=\s*([A-Za-z_]\w*)\s*\(\s*([A-Za-z_]\w*)\s*"
                  r"(?:,\s*([0-9.]+)\s*)?\)\s*$")
_AGGREGATES = {"count", "sum", "mean", "min", "max", "any", "quantile", "quantiles"}
_NAME = re.compile(r"^[A-Za-z_]\w*$")


@dataclass(frozen=True)
class QuickQuery:
    """The PxL for a quick query, and which query text each line came from."""

    query: str
    text: str
    origins: tuple[tuple[int, int], ...]  # per PxL line: (offset, length) in the query


def _err(query: str, offset: int, length: int, message: str, hint: str | None = None) -> PxlError:
    return PxlSyntaxError(message, Span("query", 1, offset + 1, 1, offset + 1 + max(1, length)),
                          hint=hint, source=query)


def _names(query: str, arg: str, offset: int, what: str) -> list[str]:
    names = [n.strip() for n in arg.split(",")]
    for n in names:
        if not _NAME.match(n):
            raise _err(query, offset, len(arg), f"{what}: {n!r} is not a column name",
                       hint=f"e.g. {what}:req_path,latency")
    return names


def _literal(raw: str) -> str:
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\"":
        raw = raw[1:-1]
    elif _NUMBER.match(raw):
        return raw
    return repr(raw)


def _filter(query: str, arg: str, offset: int) -> str:
    conds = []
    pos = offset
    for part in arg.split(","):
        m = _COND.match(part)
        if not m or not m.group(3):
            raise _err(query, pos, len(part), f"filter: cannot read {part.strip()!r}",
                       hint="write column OP value, e.g. filter:resp_status>=500,req_path~/api")
        col, op, value = m.group(1), _OPS[m.group(2)], _literal(m.group(3))
        conds.append(f"px.contains(df.{col}, {value})" if op == "~" else f"df.{col} {op} {value}")
        pos += len(part) + 1
    if len(conds) == 1:
        return f"df = df[{conds[0]}]"
    return "df = df[" + " and ".join(f"({c})" for c in conds) + "]"


def _agg(query: str, arg: str, offset: int) -> str:
    if not arg.strip():
        return ""
    parts = []
    for item in arg.split("),"):
        item = item if item.endswith(")") else item + ")"
        m = _AGG.match(item)
        if not m or m.group(2) not in _AGGREGATES:
            raise _err(query, offset, len(arg), f"agg: cannot read {item.strip()!r}",
                       hint="e.g. agg:n=count(latency),p99=quantile(latency,0.99)")
        name, fn, col, q = m.groups()
        if fn == "quantile":
            parts.append(f"{name}=({col!r}, px.quantile, {q or '0.5'})")
        else:
            parts.append(f"{name}=({col!r}, px.{fn})")
    return ", ".join(parts)


def _sort(query: str, arg: str, offset: int) -> str:
    keys, asc = [], []
    for k in arg.split(","):
        k = k.strip()
        desc = k.startswith("-")
        _names(query, k.lstrip("-+"), offset, "sort")
        keys.append(k.lstrip("-+"))
        asc.append("False" if desc else "True")
    return f"df = df.sort_values({keys!r}, ascending=[{', '.join(asc)}])"


def to_pxl(query: str) -> QuickQuery:
    """The PxL script a quick query stands for; raises PxlSyntaxError pointing into the query."""
    pieces, offsets, pos = [], [], 0
    for piece in query.split("|"):
        pieces.append(piece)
        offsets.append(pos)
        pos += len(piece) + 1
    table = pieces[0].strip()
    if not _NAME.match(table):
        raise _err(query, 0, len(pieces[0]), f"{table!r} is not a table name",
                   hint="start with a table, e.g. http_events|head:10")
    window: dict[str, str] = {}
    lines: list[tuple[str, int, int]] = []
    group: tuple[list[str], int] | None = None
    for piece, off in zip(pieces[1:], offsets[1:], strict=True):
        step, colon, arg = piece.partition(":")
        step = step.strip()
        arg_off = off + len(step) + 1
        if not colon and step not in ("agg",):
            raise _err(query, off, len(piece), f"step {piece.strip()!r} needs a ':'",
                       hint="steps look like filter:..., head:10")
        if group is not None and step != "agg":
            raise _err(query, off, len(piece), "groupby must be followed by agg",
                       hint="e.g. groupby:req_path|agg:n=count(latency)")
        if step in ("since", "until"):
            if lines:
                raise _err(query, off, len(piece), f"{step} comes right after the table name")
            window["start_time" if step == "since" else "end_time"] = arg.strip()
            continue
        if step == "filter":
            lines.append((_filter(query, arg, arg_off), off, len(piece)))
        elif step == "select":
            lines.append((f"df = df[{_names(query, arg, arg_off, 'select')!r}]", off, len(piece)))
        elif step == "drop":
            lines.append((f"df = df.drop({_names(query, arg, arg_off, 'drop')!r})", off,
                          len(piece)))
        elif step in ("head", "limit"):
            if not arg.strip().isdigit():
                raise _err(query, arg_off, len(arg), f"{step} needs a number of rows",
                           hint=f"e.g. {step}:20")
            lines.append((f"df = df.head({int(arg)})", off, len(piece)))
        elif step == "sort":
            lines.append((_sort(query, arg, arg_off), off, len(piece)))
        elif step == "groupby":
            group = (_names(query, arg, arg_off, "groupby"), off)
        elif step == "agg":
            body = _agg(query, arg, arg_off)
            target = f"df.groupby({group[0]!r})" if group else "df"
            if group is None and not body:
                raise _err(query, off, len(piece), "agg needs aggregates or a groupby before it")
            lines.append((f"df = {target}.agg({body})", group[1] if group else off,
                          off + len(piece) - (group[1] if group else off)))
            group = None
        else:
            raise _err(query, off, len(piece), f"unknown step {step!r}",
                       hint="steps: since, until, filter, select, drop, head, sort, groupby, agg")
    if group is not None:
        raise _err(query, group[1], len(query) - group[1], "groupby must be followed by agg")
    args = "".join(f", {k}={v!r}" for k, v in window.items())
    head = [("import px", 0, len(pieces[0])),
            (f"df = px.DataFrame(table={table!r}{args})", 0, len(pieces[0]))]
    tail = [("px.display(df)", 0, len(query))]
    all_lines = head + lines + tail
    return QuickQuery(query, "\n".join(t for t, _, _ in all_lines) + "\n",
                      tuple((o, n) for _, o, n in all_lines))


def map_error(q: QuickQuery, error: PxlError) -> PxlError:
    """An error in the generated PxL, pointed at the step of the query it came from."""
    if error.span is None or error.span.file == "query" or not 1 <= error.span.line <= len(q.origins):
        return error
    offset, length = q.origins[error.span.line - 1]
    error.span = Span("query", 1, offset + 1, 1, offset + 1 + max(1, length))
    error.source = q.query
    return error

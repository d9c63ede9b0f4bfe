"""Text the REPL shows: results in the chosen mode, values, tables, schemas and help.

Everything here is a pure function returning a string, so the session and its tests need no
terminal.
"""

from __future__ import annotations

import inspect
import io
import re
from collections.abc import Sequence
from typing import Any

from engine.catalog import Catalog
from engine.registry import REGISTRY, AggregateFunction, CompileTimeFunction
from engine.tables import TABLES
from engine.timeutil import format_ns
from pxl.output import format_duration, format_table, write_csv, write_ndjson
from pxl.values import (
    BoundMethod,
    Builtin,
    ColumnValue,
    PxFunction,
    PxModule,
    TimeValue,
    TypeValue,
    UserFunction,
    describe_value,
)

__all__ = ["MODES", "format_outputs", "format_value", "format_tables", "format_schema",
           "signature", "method_signature", "help_text", "elapsed"]

MODES = ("table", "json", "csv")
_USAGE = re.compile(r"``(.+?)``")


def elapsed(seconds: float) -> str:
    return format_duration(seconds * 1e9)


def format_outputs(outputs: Sequence[Any], *, mode: str, max_rows: int, width: int) -> str:
    """The outputs of one input as tables (width-aware, humanized), NDJSON or CSV."""
    if mode == "table":
        return "\n\n".join(format_table(o, max_rows=max_rows, width=width) + _chart(o, width)
                             for o in outputs)
    buffer = io.StringIO()
    (write_ndjson if mode == "json" else write_csv)(outputs, buffer)
    return buffer.getvalue().rstrip("\n")


def _chart(output: Any, width: int) -> str:
    """The chart ``px.display(..., chart_type=...)`` asked for, under its table."""
    try:
        from pxl import charts

        if not charts.chart_type(output):
            return ""
        return "\n\n" + charts.render_terminal(output, width=width)
    except (ImportError, AttributeError):  # a pxl without terminal charts
        return ""


def format_value(value: Any) -> str:
    """A compile-time value that is not a DataFrame, as the REPL echoes it."""
    from pxl.dataframe import DataFrame, GroupBy

    if value is None:
        return ""
    if isinstance(value, bool | int | float | str):
        return repr(value)
    if isinstance(value, list | tuple):
        items = ", ".join(format_value(v) or "None" for v in value)
        return f"[{items}]" if isinstance(value, list) else f"({items}{',' if len(value) == 1 else ''})"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k!r}: {format_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, TimeValue):
        return f"{value} (time)"
    if isinstance(value, ColumnValue):
        return f"column expression {value.expr}: {value.ctype}"
    if isinstance(value, GroupBy):
        return (f"a DataFrame grouped by {', '.join(value.groups)}: "
                "call .agg(name=('column', px.fn), ...) on it")
    if isinstance(value, PxFunction | Builtin):
        return signature(value)
    if isinstance(value, UserFunction):
        return f"function {_def_line(value)}"
    if isinstance(value, BoundMethod):
        return method_signature(value.name)
    if isinstance(value, PxModule):
        return "the px module: px.<Tab> lists its functions"
    if isinstance(value, DataFrame):  # only reached when not displayed
        return f"a DataFrame with columns {', '.join(value.rel.schema.names)}"
    if isinstance(value, TypeValue):
        return f"the type {value.name}"
    return describe_value(value)


def _def_line(fn: UserFunction) -> str:
    params = ", ".join(p.name for p in fn.node.params)
    return f"{fn.node.name}({params})"


def signature(value: PxFunction | Builtin) -> str:
    """One line: how a px function is called, and what it returns.

    >>> signature(PxFunction(REGISTRY.lookup("quantile")))
    'px.quantile(FLOAT64, q: float) -> FLOAT64  (aggregate)'
    """
    if isinstance(value, Builtin):
        match = _USAGE.search(value.doc)
        return match.group(1) if match else f"px.{value.name}(...)"
    fn = value.fn
    sigs = fn.signatures
    arity = {len(s.args) for s in sigs}
    if len(arity) == 1:
        cols = [_union(s.args[i] for s in sigs) for i in range(arity.pop())]
        if isinstance(fn, AggregateFunction):
            cols += [f"{n}: {t.__name__}" for n, t in fn.params]
        text = f"px.{fn.name}({', '.join(cols)}) -> {_union(s.returns for s in sigs)}"
    else:
        text = f"px.{fn.name}: " + "; ".join(str(s) for s in sigs)
    if isinstance(fn, AggregateFunction):
        text += "  (aggregate)"
    elif isinstance(fn, CompileTimeFunction):
        text += "  (at compile time)"
    return text


def _union(names) -> str:
    seen: list[str] = []
    for n in names:
        if n not in seen:
            seen.append(n)
    return "|".join(seen)


def method_signature(name: str) -> str:
    """``df.head(n=5)`` for a DataFrame method."""
    from pxl.dataframe import METHODS

    method = METHODS.get(name)
    match = _USAGE.search(method.__doc__ or "") if method else None
    return match.group(1) if match else f"df.{name}(...)"


def format_tables(catalog: Catalog, width: int = 100) -> str:
    """Every table with its row count, time range and description, in ``width`` columns."""
    stats = getattr(catalog, "stats", None)
    rows = stats() if stats is not None else [{"table_name": n} for n in catalog.table_names()]
    if not rows:
        return "no tables: start with --demo, or --data DIR"
    pad = max(len(r["table_name"]) for r in rows) + 2
    lines = []
    for r in rows:
        name = r["table_name"]
        count = f"{r['num_rows']:>10,} row{' ' if r['num_rows'] == 1 else 's'}" if "num_rows" in r else ""
        span = ""
        if r.get("min_time") is not None:
            span = f"  {format_ns(r['min_time'])[:19]} .. {format_ns(r['max_time'])[:19]}"
        spec = TABLES.get(name)
        about = f"  {spec.description}" if spec else ""
        lines.append(_cut(f"{name:<{pad}}{count}{span}{about}".rstrip(), width))
    return "\n".join(lines)


def _cut(line: str, width: int) -> str:
    return line if len(line) <= width else line[: max(1, width - 1)] + "…"


def format_schema(catalog: Catalog, table: str) -> str | None:
    """The columns of a table: name, type, semantic type and description; None if no table."""
    schema = catalog.schema(table)
    if schema is None:
        return None
    spec = TABLES.get(table)
    width = max(len(n) for n in schema.names) + 2
    types = [str(t.dtype) for _, t in schema.columns]
    twidth = max(len(t) for t in types) + 2
    lines = [f"{table}: {spec.description}" if spec else table]
    for (name, ctype), dtype in zip(schema.columns, types, strict=True):
        semantic = "" if str(ctype.semantic) == "none" else str(ctype.semantic)
        doc = spec.describe(name) if spec else ""
        lines.append(f"  {name:<{width}}{dtype:<{twidth}}{semantic:<18}{doc}".rstrip())
    return "\n".join(lines)


def help_text(value: Any, name: str) -> str:
    """What ``help(x)`` and ``x?`` show for a value of the session."""
    from pxl.dataframe import METHODS, DataFrame, GroupBy

    if isinstance(value, PxFunction):
        fn = value.fn
        lines = [signature(value), "", fn.doc]
        if len(fn.signatures) > 1:
            lines += ["", "Signatures: " + "; ".join(str(s) for s in fn.signatures)]
        lines += [f"  e.g. {e}" for e in fn.examples]
        if fn.name in REGISTRY.aggregates and not fn.examples:
            lines += ["", f"Use it in an aggregate: df.groupby('col').agg(x=('col', px.{fn.name}))"]
        return "\n".join(lines)
    if isinstance(value, Builtin):
        return _plain(value.doc)
    if isinstance(value, BoundMethod):
        if isinstance(value.obj, GroupBy):
            return "agg(name=('column', px.fn), ...): one row per group with each aggregate"
        return _plain(METHODS[value.name].__doc__ or method_signature(value.name))
    if isinstance(value, UserFunction):
        doc = value.node.docstring or "(no docstring)"
        return f"{_def_line(value)}\n\n{inspect.cleandoc(doc)}"
    if isinstance(value, PxModule):
        return _module_help()
    if isinstance(value, DataFrame):
        return "a DataFrame with columns:\n" + "\n".join(
            f"  {n}: {t}" for n, t in value.rel.schema.columns)
    return f"{name}: {format_value(value)}"


def _plain(doc: str) -> str:
    """A docstring for the terminal: dedented, without reST's double backquotes."""
    return inspect.cleandoc(doc).replace("``", "")


def _module_help() -> str:
    from pxl.builtins import PX_BUILTINS

    by_kind: dict[str, list[str]] = {"DataFrames": sorted(f"px.{n}" for n in PX_BUILTINS)}
    for fn in [*REGISTRY.scalars.values(), *REGISTRY.aggregates.values(),
               *REGISTRY.compile_time.values()]:
        if fn.name.isidentifier():
            by_kind.setdefault(fn.category, []).append(f"px.{fn.name}")
    lines = ["The px module. help(px.NAME) or px.NAME? explains one function.", ""]
    for kind in sorted(by_kind):
        lines.append(f"{kind}: {', '.join(sorted(by_kind[kind]))}")
    return "\n".join(lines)

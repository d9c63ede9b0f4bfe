"""The object-model functions of the ``px`` module: px.DataFrame and px.display.

(Functions over columns live in the engine's registry; these build plan nodes.)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import polars as pl

from engine.errors import CompileError, Span
from engine.relations import Scan, Values
from engine.tables import TABLES
from engine.timeutil import TIME_FORMS, parse_time, relative_offset
from engine.types import ColumnType, DataType, Schema, SemanticType
from pxl.compiler import REQUIRED, Arg, closest
from pxl.dataframe import DataFrame, _names, _plan
from pxl.values import Builtin, TimeValue, describe_value

if TYPE_CHECKING:
    from pxl.compiler import Compiler

__all__ = ["PX_BUILTINS", "CHART_TYPES", "EXPORT_FORMATS"]

CHART_TYPES = ("table", "line", "bar", "stacked", "histogram")
EXPORT_FORMATS = ("prometheus",)


def _time_arg(c: Compiler, arg: Arg, what: str) -> tuple[int | None, bool]:
    """A window bound in ns since the epoch (None if not given), and whether it was given
    relative to the time the script runs ('-5m', 'now')."""
    value = arg.value
    if value is None:
        return None, False
    if isinstance(value, TimeValue):
        return value.ns, False
    if isinstance(value, int) and not isinstance(value, bool):
        return value, False
    if isinstance(value, str):
        try:
            offset = relative_offset(value)
            if offset is not None:
                return c.window_time(offset), True
            return parse_time(value, 0), False  # absolute: no time to resolve against
        except ValueError:
            pass
    raise CompileError(f"{what}={value!r} is not a time", arg.span,
                       hint="use " + "; or ".join(TIME_FORMS))


def px_dataframe(c: Compiler, args: list[Arg], kwargs: dict[str, Arg], span: Span) -> DataFrame:
    """``px.DataFrame(table, select=None, start_time=None, end_time=None)``: rows of a table.

    ``start_time``/``end_time`` take a relative time ('-5m'), an ISO 8601 time, an int of
    nanoseconds since the epoch or an expression on ``px.now()``; rows with
    start_time <= time_ < end_time are read."""
    b = c.bind("px.DataFrame", args, kwargs, [("table", REQUIRED), ("select", None),
                                              ("start_time", None), ("end_time", None)], span)
    table = b["table"].value
    if not isinstance(table, str):
        raise CompileError(f"table must be a string, not {describe_value(table)}", b["table"].span)
    schema = c.catalog.schema(table)
    if schema is None:
        names = c.catalog.table_names()
        hint = closest(table, names)
        listing = ", ".join(names) if names else "none (load some with --data DIR or --demo)"
        raise CompileError(f"no table {table!r}", b["table"].span,
                           hint=f"{hint + ' ' if hint else ''}tables: {listing}")
    columns = None
    if b["select"].value is not None:
        columns = _names(c, b["select"], "select")
        for col in columns:
            if col not in schema:
                known = closest(col, schema.names)
                raise CompileError(f"table {table!r} has no column {col!r}", b["select"].span,
                                   hint=f"{known + ' ' if known else ''}columns: "
                                        f"{', '.join(schema.names)}")
    start, start_relative = _time_arg(c, b["start_time"], "start_time")
    end, end_relative = _time_arg(c, b["end_time"], "end_time")
    if start is not None and end is not None and start > end:
        raise CompileError("start_time is after end_time", b["start_time"].span,
                           hint="swap them, or use a relative start such as '-5m'")
    # The window stays relative to the time (a cached plan moves it) when every bound given is.
    relative = (start_relative or end_relative) and (start is None or start_relative) \
        and (end is None or end_relative)
    if (start_relative or end_relative) and not relative:
        c.now_time()  # one bound relative, one fixed: the plan depends on the time
    return DataFrame(_plan(Scan, table, schema, columns, start, end,
                           c.window_time(0) if relative else None, span=span))


def px_display(c: Compiler, args: list[Arg], kwargs: dict[str, Arg], span: Span) -> None:
    """``px.display(df, name='output', chart_type=None)``: make df an output of the script.

    Outputs keep the order of the calls; a name used twice gets a suffix (_1, _2 …).
    ``chart_type`` ('line', 'bar', 'stacked', 'histogram') asks for a chart beside the table."""
    b = c.bind("px.display", args, kwargs, [("df", REQUIRED), ("name", "output"),
                                            ("chart_type", None)], span)
    frame = b["df"].value
    if not isinstance(frame, DataFrame):
        raise CompileError(f"px.display needs a DataFrame, not {describe_value(frame)}",
                           b["df"].span)
    name = b["name"].value
    if not isinstance(name, str) or not name:
        raise CompileError("name must be a non-empty string", b["name"].span)
    options: list[tuple[str, Any]] = []
    chart = b["chart_type"].value
    if chart is not None:
        if chart not in CHART_TYPES:
            raise CompileError(f"chart_type={chart!r} is not one of {', '.join(CHART_TYPES)}",
                               b["chart_type"].span)
        options.append(("chart_type", chart))
    c.add_sink(frame.rel, name, tuple(options), span)


def px_arg(c: Compiler, args: list[Arg], kwargs: dict[str, Arg], span: Span) -> Any:
    """``px.arg(name, type=str, default=..., help='')``: a script argument.

    Its value comes from the command line (``pxl run s.pxl -- --name=value``) or
    ``pxl.run(source, args={...})``, else the default; with no default it is required.
    ``pxl run s.pxl -- --help`` lists the arguments of a script."""
    b = c.bind("px.arg", args, kwargs, [("name", REQUIRED), ("type", None), ("default", None),
                                        ("help", "")], span)
    name = b["name"].value
    if not isinstance(name, str):
        raise CompileError("px.arg needs the argument's name as a string", b["name"].span)
    return c.arg_value(name, span)


def px_export(c: Compiler, args: list[Arg], kwargs: dict[str, Arg], span: Span) -> None:
    """``px.export(df, format='prometheus', name='output')``: make df an output to export.

    ``pxl run`` writes exported outputs in that format (Prometheus text exposition: one sample
    per numeric column and row, labelled by the row's string columns)."""
    b = c.bind("px.export", args, kwargs, [("df", REQUIRED), ("format", "prometheus"),
                                           ("name", "output")], span)
    fmt = b["format"].value
    if fmt not in EXPORT_FORMATS:
        raise CompileError(f"px.export: format={fmt!r} is not one of {', '.join(EXPORT_FORMATS)}",
                           b["format"].span)
    frame = _frame_arg(b["df"], "px.export")
    c.add_sink(frame.rel, _name_arg(b["name"]), (("export", fmt),), span)


def px_debug(c: Compiler, args: list[Arg], kwargs: dict[str, Arg], span: Span) -> None:
    """``px.debug(df, name='debug')``: an output shown only when debugging (pxl run --debug);
    the library returns it like any other."""
    b = c.bind("px.debug", args, kwargs, [("df", REQUIRED), ("name", "debug")], span)
    frame = _frame_arg(b["df"], "px.debug")
    c.add_sink(frame.rel, _name_arg(b["name"]), (("debug", True),), span)


def _frame_arg(arg: Arg, fn: str) -> DataFrame:
    if not isinstance(arg.value, DataFrame):
        raise CompileError(f"{fn} needs a DataFrame, not {describe_value(arg.value)}", arg.span)
    return arg.value


def _name_arg(arg: Arg) -> str:
    if not isinstance(arg.value, str) or not arg.value:
        raise CompileError("name must be a non-empty string", arg.span)
    return arg.value


_TABLES_SCHEMA = Schema.of([
    ("table_name", ColumnType(DataType.STRING)), ("num_rows", ColumnType(DataType.INT64)),
    ("size_bytes", ColumnType(DataType.INT64, SemanticType.BYTES)),
    ("min_time", ColumnType(DataType.TIME64NS, SemanticType.TIME)),
    ("max_time", ColumnType(DataType.TIME64NS, SemanticType.TIME)),
    ("evicted_rows", ColumnType(DataType.INT64)),
])
_SCHEMAS_SCHEMA = Schema.of([
    ("table_name", ColumnType(DataType.STRING)), ("column_name", ColumnType(DataType.STRING)),
    ("column_type", ColumnType(DataType.STRING)), ("semantic_type", ColumnType(DataType.STRING)),
    ("column_desc", ColumnType(DataType.STRING)),
])


def px_get_tables(c: Compiler, args: list[Arg], kwargs: dict[str, Arg], span: Span) -> DataFrame:
    """``px.GetTables()``: one row per table: name, rows, bytes, oldest and newest time, evicted
    rows."""
    c.bind("px.GetTables", args, kwargs, [], span)
    stats = getattr(c.catalog, "stats", None)
    rows = stats() if stats is not None else [{"table_name": t} for t in c.catalog.table_names()]
    data = {n: [r.get(n) for r in rows] for n in _TABLES_SCHEMA.names}
    frame = pl.DataFrame(data, schema=_TABLES_SCHEMA.polars())
    return DataFrame(_plan(Values, "GetTables", frame, _TABLES_SCHEMA, span=span))


def px_get_schemas(c: Compiler, args: list[Arg], kwargs: dict[str, Arg], span: Span) -> DataFrame:
    """``px.GetSchemas()``: one row per column of every table: type, semantic type, description."""
    c.bind("px.GetSchemas", args, kwargs, [], span)
    rows = []
    for table in c.catalog.table_names():
        schema = c.catalog.schema(table)
        spec = TABLES.get(table)
        for name, t in schema.columns if schema else ():
            rows.append((table, name, str(t.dtype), str(t.semantic),
                         spec.describe(name) if spec else ""))
    frame = pl.DataFrame(rows, schema=_SCHEMAS_SCHEMA.polars(), orient="row")
    return DataFrame(_plan(Values, "GetSchemas", frame, _SCHEMAS_SCHEMA, span=span))


_AGENTS_SCHEMA = Schema.of([
    ("agent_id", ColumnType(DataType.STRING)), ("address", ColumnType(DataType.STRING)),
    ("agent_state", ColumnType(DataType.STRING)),
    ("last_heartbeat_ns", ColumnType(DataType.INT64, SemanticType.DURATION_NS)),
    ("tables", ColumnType(DataType.STRING)), ("origin", ColumnType(DataType.STRING)),
    ("message", ColumnType(DataType.STRING)),
])


def px_get_agent_status(c: Compiler, args: list[Arg], kwargs: dict[str, Arg],
                        span: Span) -> DataFrame:
    """``px.GetAgentStatus()``: one row per agent a broker knows: its id (node name), address,
    state (up, down, unknown), nanoseconds since its last heartbeat, tables, whether it was
    named on the command line or registered itself, and its last error. Run anywhere else, one
    row for this process (state ``local``)."""
    c.bind("px.GetAgentStatus", args, kwargs, [], span)
    status = getattr(c.catalog, "agent_status", None)
    if status is not None:
        rows = status()
    else:
        import socket

        rows = [{"agent_id": socket.gethostname(), "address": "", "agent_state": "local",
                 "last_heartbeat_ns": 0, "tables": ",".join(c.catalog.table_names()),
                 "origin": "local", "message": ""}]
    data = {n: [r.get(n) for r in rows] for n in _AGENTS_SCHEMA.names}
    frame = pl.DataFrame(data, schema=_AGENTS_SCHEMA.polars())
    return DataFrame(_plan(Values, "GetAgentStatus", frame, _AGENTS_SCHEMA, span=span))


PX_BUILTINS: dict[str, Builtin] = {
    "GetAgentStatus": Builtin("GetAgentStatus", px_get_agent_status,
                              px_get_agent_status.__doc__ or ""),
    "export": Builtin("export", px_export, px_export.__doc__ or ""),
    "debug": Builtin("debug", px_debug, px_debug.__doc__ or ""),
    "GetTables": Builtin("GetTables", px_get_tables, px_get_tables.__doc__ or ""),
    "GetSchemas": Builtin("GetSchemas", px_get_schemas, px_get_schemas.__doc__ or ""),
    "arg": Builtin("arg", px_arg, px_arg.__doc__ or ""),
    "DataFrame": Builtin("DataFrame", px_dataframe, px_dataframe.__doc__ or ""),
    "display": Builtin("display", px_display, px_display.__doc__ or ""),
}

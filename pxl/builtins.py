"""The object-model functions of the ``px`` module: px.DataFrame and px.display.

(Functions over columns live in the engine's registry; these build plan nodes.)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from engine.errors import CompileError, Span
from engine.relations import Scan
from engine.timeutil import TIME_FORMS, parse_time
from pxl.compiler import REQUIRED, Arg, closest
from pxl.dataframe import DataFrame, _names, _plan
from pxl.values import Builtin, TimeValue, describe_value

if TYPE_CHECKING:
    from pxl.compiler import Compiler

__all__ = ["PX_BUILTINS", "CHART_TYPES"]

CHART_TYPES = ("table", "line", "bar", "stacked", "histogram")


def _time_arg(c: Compiler, arg: Arg, what: str) -> int | None:
    value = arg.value
    if value is None:
        return None
    if isinstance(value, TimeValue):
        return value.ns
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            return parse_time(value, c.now)
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
    start = _time_arg(c, b["start_time"], "start_time")
    end = _time_arg(c, b["end_time"], "end_time")
    if start is not None and end is not None and start > end:
        raise CompileError("start_time is after end_time", b["start_time"].span,
                           hint="swap them, or use a relative start such as '-5m'")
    return DataFrame(_plan(Scan, table, schema, columns, start, end, span=span))


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


PX_BUILTINS: dict[str, Builtin] = {
    "arg": Builtin("arg", px_arg, px_arg.__doc__ or ""),
    "DataFrame": Builtin("DataFrame", px_dataframe, px_dataframe.__doc__ or ""),
    "display": Builtin("display", px_display, px_display.__doc__ or ""),
}

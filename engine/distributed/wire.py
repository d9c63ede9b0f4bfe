"""Plans on the wire: msgpack with a version number (data travels as Arrow, plans as this).

A payload is a msgpack map ``{"format": "pxl-plan", "version": 1, "nodes": [...],
"sinks": [...]}``. ``nodes`` lists every relation once, children before parents, each as
``[kind, span, field, ...]`` with its children given by their position in the list, so a shared
sub-plan stays shared and a payload cannot hold a cycle. Expressions nest:
``["col", name, type]``, ``["lit", value, type]``, ``["call", fn, [args], type]``; a type is
``[data type, semantic type]``; times are int64 nanoseconds; inline rows (Values) are an Arrow
IPC stream.

:func:`decode` checks everything it reads — the version first, then every field, function
name, type and node (the node constructors' own checks included) — and turns any fault into a
:class:`~engine.errors.PlanError` that names the wire version; it never runs anything.

>>> from engine.relations import Limit, Plan, Scan, Sink
>>> from engine.types import ColumnType, DataType, Schema
>>> plan = Plan((Sink(Limit(Scan("t", Schema.of({"a": ColumnType(DataType.INT64)})), 5), "out"),))
>>> decode(encode(plan)).sinks[0].input.n
5
>>> decode(msgpack.packb({"format": "pxl-plan", "version": 99}))
Traceback (most recent call last):
...
engine.errors.PlanError: plan error: the plan fragment is wire version 99, but this pxl reads version 1 only (hint: run the same pxl release on the broker and on every agent)
"""

from __future__ import annotations

from collections.abc import Callable
from functools import singledispatch
from typing import Any

import msgpack
import pyarrow as pa

from engine.arrowio import from_arrow, to_arrow
from engine.distributed.exchange import Exchange
from engine.distributed.sketch import SketchValues, WeightedAggregate
from engine.errors import PlanError, Span
from engine.exprs import AggCall, Call, ColumnRef, Expr, Literal
from engine.registry import REGISTRY, TypeMismatch
from engine.relations import (
    Aggregate,
    Filter,
    Join,
    Limit,
    Map,
    Plan,
    Project,
    Relation,
    Scan,
    Sink,
    Sort,
    Union,
    Values,
)
from engine.types import ColumnType, DataType, Schema, SemanticType

__all__ = ["WIRE_VERSION", "FORMAT", "encode", "decode", "encode_schema", "decode_schema"]

#: Bumped whenever the payload changes shape; an agent refuses every other version.
WIRE_VERSION = 1
FORMAT = "pxl-plan"
_MAX_DEPTH = 200  # of nested expressions


# ------------------------------------------------------------------------------------------------
# Encoding


def encode(plan: Plan) -> bytes:
    """The plan (e.g. an agent fragment, or a broker plan) as versioned msgpack bytes."""
    index: dict[Relation, int] = {}
    nodes: list[list[Any]] = []
    stack: list[tuple[Relation, bool]] = [(s, False) for s in reversed(plan.sinks)]
    while stack:  # children before parents, without recursion
        node, ready = stack.pop()
        if node in index:
            continue
        if ready:
            index[node] = len(nodes)
            nodes.append([type(node).__name__, _span(node.span), *_fields(node, index)])
            continue
        stack.append((node, True))
        stack.extend((c, False) for c in reversed(node.children))
    payload = {"format": FORMAT, "version": WIRE_VERSION, "nodes": nodes,
               "sinks": [index[s] for s in plan.sinks]}
    try:
        return msgpack.packb(payload, use_bin_type=True)
    except (OverflowError, TypeError, ValueError) as exc:
        raise PlanError(f"the plan cannot be sent to the agents: {exc}") from None


def _span(span: Span | None) -> list[Any] | None:
    if span is None:
        return None
    return [span.file, span.line, span.col, span.end_line, span.end_col]


def _type(t: ColumnType) -> list[str]:
    return [t.dtype.value, t.semantic.value]


def _schema(s: Schema) -> list[list[Any]]:
    return [[n, _type(t)] for n, t in s.columns]


def _value(v: Any) -> Any:
    return [_value(x) for x in v] if isinstance(v, tuple) else v


def _expr(e: Expr) -> list[Any]:
    if isinstance(e, ColumnRef):
        return ["col", e.name, _type(e.ctype), _span(e.span)]
    if isinstance(e, Literal):
        return ["lit", _value(e.value), _type(e.ctype), _span(e.span)]
    if isinstance(e, Call):
        return ["call", e.fn, [_expr(a) for a in e.args], _type(e.ctype), _span(e.span)]
    raise PlanError(f"a {type(e).__name__} expression cannot be sent to the agents", e.span)


def _agg(a: AggCall) -> list[Any]:
    return [a.name, a.fn, None if a.arg is None else _expr(a.arg), list(a.params), _type(a.ctype),
            _span(a.span)]


def _ipc(node: Values) -> bytes:
    table = to_arrow(node.rows, node.row_schema)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


@singledispatch
def _fields(node: Relation, index: dict[Relation, int]) -> list[Any]:
    raise PlanError(f"a {type(node).__name__} node cannot be sent to the agents", node.span)


# A scan's relative_to (the plan cache's note that its window follows the time) is not sent: an
# agent runs a fragment once, over the window the broker resolved.
_fields.register(Scan, lambda n, ix: [n.table, _schema(n.table_schema),
                                      None if n.columns is None else list(n.columns), n.start,
                                      n.end])
_fields.register(Values, lambda n, ix: [n.name, _schema(n.row_schema), _ipc(n)])
_fields.register(Filter, lambda n, ix: [ix[n.input], _expr(n.predicate)])
_fields.register(Map, lambda n, ix: [ix[n.input], [[k, _expr(e)] for k, e in n.exprs],
                                     n.keep_input])
_fields.register(Project, lambda n, ix: [ix[n.input], list(n.columns)])
_fields.register(Aggregate, lambda n, ix: [ix[n.input], list(n.groups),
                                           [_agg(a) for a in n.aggs]])
_fields.register(Join, lambda n, ix: [ix[n.left], ix[n.right], n.how, list(n.left_on),
                                      list(n.right_on), list(n.suffixes)])
_fields.register(Union, lambda n, ix: [[ix[i] for i in n.inputs]])
_fields.register(Limit, lambda n, ix: [ix[n.input], n.n])
_fields.register(Sort, lambda n, ix: [ix[n.input], list(n.keys), list(n.descending), n.limit])
_fields.register(Sink, lambda n, ix: [ix[n.input], n.name, [[k, _value(v)] for k, v in n.options]])
_fields.register(Exchange, lambda n, ix: [n.fragment, _schema(n.rows_schema)])
_fields.register(SketchValues, lambda n, ix: [ix[n.input], list(n.groups),
                                              [list(v) for v in n.values], n.accuracy,
                                              n.exact_up_to])
_fields.register(WeightedAggregate, lambda n, ix: [ix[n.input], list(n.groups),
                                                   [_agg(a) for a in n.aggs],
                                                   [list(w) for w in n.weights]])


# ------------------------------------------------------------------------------------------------
# Decoding


class _Bad(Exception):
    """A payload field is not what the format says."""


def decode(data: bytes) -> Plan:
    """The plan in a payload made by :func:`encode`; raises PlanError (naming the version) for
    anything else: other bytes, a truncated payload, an unknown version, an inconsistent plan."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise PlanError(f"a plan fragment is bytes, not {type(data).__name__}")
    try:
        payload = msgpack.unpackb(bytes(data), raw=False, strict_map_key=True)
    except Exception as exc:  # noqa: BLE001 - msgpack raises many kinds on bad bytes
        raise PlanError(f"not a pxl plan fragment: the bytes are not msgpack ({_say(exc)})",
                        hint="is the sender a pxl broker?") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise PlanError("not a pxl plan fragment: no 'format': 'pxl-plan' header",
                        hint="is the sender a pxl broker?")
    version = payload.get("version")
    if type(version) is not int:
        raise PlanError(f"the plan fragment has no wire version (got {version!r}); this pxl "
                        f"reads version {WIRE_VERSION}")
    if version != WIRE_VERSION:
        raise PlanError(f"the plan fragment is wire version {version}, but this pxl reads "
                        f"version {WIRE_VERSION} only",
                        hint="run the same pxl release on the broker and on every agent")
    try:
        return _plan(payload)
    except PlanError as exc:
        raise PlanError(f"bad plan fragment (wire version {version}): {exc.message}",
                        hint=exc.hint) from None
    except Exception as exc:  # noqa: BLE001 - whatever a crafted payload trips, say so
        raise PlanError(f"bad plan fragment (wire version {version}): {_say(exc)}") from None


def _say(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def _want(ok: bool, what: str) -> None:
    if not ok:
        raise _Bad(what)


def _list(x: Any, what: str, size: int | None = None) -> list[Any]:
    _want(isinstance(x, list) and (size is None or len(x) == size),
          f"{what} is not a list" + (f" of {size}" if size is not None else ""))
    return x


def _str(x: Any, what: str) -> str:
    _want(isinstance(x, str), f"{what} is not a string")
    return x


def _int(x: Any, what: str) -> int:
    _want(type(x) is int, f"{what} is not an integer")
    return x


def _float(x: Any, what: str) -> float:
    _want(type(x) is float, f"{what} is not a float")
    return x


def _pairs(x: Any, what: str) -> tuple[tuple[str, str], ...]:
    return tuple((_str(a, what), _str(b, what)) for a, b in (_list(i, what, 2)
                                                             for i in _list(x, what)))


def _opt_int(x: Any, what: str) -> int | None:
    return None if x is None else _int(x, what)


def _bool(x: Any, what: str) -> bool:
    _want(type(x) is bool, f"{what} is not true/false")
    return x


def _strs(x: Any, what: str) -> tuple[str, ...]:
    return tuple(_str(v, what) for v in _list(x, what))


def _span_of(x: Any) -> Span | None:
    if x is None:
        return None
    f, line, col, end_line, end_col = _list(x, "a span", 5)
    return Span(_str(f, "a span's file"), _int(line, "a span's line"), _int(col, "a span's column"),
                _opt_int(end_line, "a span's end"), _opt_int(end_col, "a span's end"))


def _type_of(x: Any) -> ColumnType:
    dtype, semantic = _list(x, "a column type", 2)
    try:
        return ColumnType(DataType(_str(dtype, "a data type")),
                          SemanticType(_str(semantic, "a semantic type")))
    except ValueError:
        raise _Bad(f"unknown column type {dtype!r}/{semantic!r}") from None


def _schema_of(x: Any) -> Schema:
    cols = []
    for item in _list(x, "a schema"):
        name, t = _list(item, "a schema column", 2)
        cols.append((_str(name, "a column name"), _type_of(t)))
    names = [n for n, _ in cols]
    _want(len(set(names)) == len(names), "a schema names a column twice")
    return Schema(tuple(cols))


_PY_TYPES: dict[DataType, tuple[type, ...]] = {
    DataType.BOOLEAN: (bool,), DataType.INT64: (int,), DataType.FLOAT64: (float, int),
    DataType.STRING: (str,), DataType.TIME64NS: (int,), DataType.QUANTILES: (),
}


def _literal_value(x: Any, ctype: ColumnType) -> Any:
    allowed = _PY_TYPES[ctype.dtype]

    def one(v: Any) -> Any:
        ok = v is None or (isinstance(v, allowed) and not (isinstance(v, bool) and bool not in allowed))
        _want(ok, f"a {ctype.dtype} literal holds {type(v).__name__}")
        return v

    if isinstance(x, list):
        return tuple(one(v) for v in x)
    return one(x)


def _expr_of(x: Any, depth: int = 0) -> Expr:
    _want(depth < _MAX_DEPTH, "expressions nest too deeply")
    item = _list(x, "an expression")
    _want(bool(item), "an empty expression")
    tag = item[0]
    if tag == "col":
        _, name, t, span = _list(x, "a column", 4)
        return ColumnRef(_str(name, "a column name"), _type_of(t), span=_span_of(span))
    if tag == "lit":
        _, value, t, span = _list(x, "a literal", 4)
        ctype = _type_of(t)
        return Literal(_literal_value(value, ctype), ctype, span=_span_of(span))
    if tag == "call":
        _, fn, args, t, span = _list(x, "a call", 5)
        name = _str(fn, "a function name")
        _want(name in REGISTRY.scalars, f"unknown function px.{name}")
        exprs = tuple(_expr_of(a, depth + 1) for a in _list(args, "call arguments"))
        try:
            REGISTRY.scalars[name].resolve([a.ctype for a in exprs])
        except TypeMismatch as exc:
            raise _Bad(str(exc)) from None
        return Call(name, exprs, _type_of(t), span=_span_of(span))
    raise _Bad(f"unknown expression kind {tag!r}")


def _agg_of(x: Any) -> AggCall:
    name, fn, arg, params, t, span = _list(x, "an aggregate", 6)
    fname = _str(fn, "an aggregate function")
    _want(fname in REGISTRY.aggregates, f"unknown aggregate px.{fname}")
    want = REGISTRY.aggregates[fname].params
    values = tuple(_list(params, "aggregate parameters"))
    _want(len(values) == len(want) and all(isinstance(v, int | float) and type(v) is not bool
                                           for v in values),
          f"px.{fname} takes {len(want)} number parameter(s)")
    return AggCall(_str(name, "an aggregate name"), fname,
                   None if arg is None else _expr_of(arg), values, _type_of(t),
                   span=_span_of(span))


def _rows_of(x: Any) -> Any:
    _want(isinstance(x, bytes), "inline rows are not bytes")
    table = pa.ipc.open_stream(pa.py_buffer(x)).read_all()
    table.validate(full=True)
    try:
        frame, _ = from_arrow(table)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # noqa: BLE001 - Polars panics (a BaseException) on some bad data
        raise PlanError(f"inline rows are not valid Arrow data ({type(exc).__name__})") from None
    return frame


Decoder = Callable[[list[Any], Callable[[Any], Relation], Span | None], Relation]


def _sink(f: list[Any], ref: Callable[[Any], Relation], span: Span | None) -> Sink:
    options = []
    for item in _list(f[2], "output options"):
        key, value = _list(item, "an output option", 2)
        _want(value is None or isinstance(value, bool | int | float | str | list),
              "an output option is not a plain value")
        options.append((_str(key, "an option name"),
                        tuple(value) if isinstance(value, list) else value))
    return Sink(ref(f[0]), _str(f[1], "an output name"), tuple(options), span=span)


_DECODERS: dict[str, tuple[int, Decoder]] = {
    "Scan": (5, lambda f, ref, span: Scan(
        _str(f[0], "a table name"), _schema_of(f[1]),
        None if f[2] is None else _strs(f[2], "scan columns"),
        _opt_int(f[3], "a start time"), _opt_int(f[4], "an end time"), span=span)),
    "Values": (3, lambda f, ref, span: Values(
        _str(f[0], "a name"), _rows_of(f[2]), _schema_of(f[1]), span=span)),
    "Filter": (2, lambda f, ref, span: Filter(ref(f[0]), _expr_of(f[1]), span=span)),
    "Map": (3, lambda f, ref, span: Map(
        ref(f[0]), tuple((_str(k, "a column name"), _expr_of(e))
                         for k, e in (_list(i, "an assignment", 2) for i in _list(f[1], "a map"))),
        _bool(f[2], "keep_input"), span=span)),
    "Project": (2, lambda f, ref, span: Project(ref(f[0]), _strs(f[1], "columns"), span=span)),
    "Aggregate": (3, lambda f, ref, span: Aggregate(
        ref(f[0]), _strs(f[1], "groups"), tuple(_agg_of(a) for a in _list(f[2], "aggregates")),
        span=span)),
    "Join": (6, lambda f, ref, span: Join(
        ref(f[0]), ref(f[1]), _str(f[2], "a join kind"), _strs(f[3], "left_on"),
        _strs(f[4], "right_on"), _pair(_strs(f[5], "suffixes")), span=span)),
    "Union": (1, lambda f, ref, span: Union(
        tuple(ref(i) for i in _list(f[0], "union inputs")) or _no_inputs(), span=span)),
    "Limit": (2, lambda f, ref, span: Limit(ref(f[0]), _int(f[1], "a limit"), span=span)),
    "Sort": (4, lambda f, ref, span: Sort(
        ref(f[0]), _strs(f[1], "sort keys"),
        tuple(_bool(d, "a sort direction") for d in _list(f[2], "sort directions")),
        _opt_int(f[3], "a sort limit"), span=span)),
    "Sink": (3, _sink),
    "Exchange": (2, lambda f, ref, span: Exchange(
        _str(f[0], "a fragment id"), _schema_of(f[1]), span=span)),
    "SketchValues": (5, lambda f, ref, span: SketchValues(
        ref(f[0]), _strs(f[1], "groups"), _pairs(f[2], "sketched values"),
        _float(f[3], "an accuracy"), _int(f[4], "an exact count"), span=span)),
    "WeightedAggregate": (4, lambda f, ref, span: WeightedAggregate(
        ref(f[0]), _strs(f[1], "groups"), tuple(_agg_of(a) for a in _list(f[2], "aggregates")),
        _pairs(f[3], "weights"), span=span)),
}


def _pair(names: tuple[str, ...]) -> tuple[str, str]:
    _want(len(names) == 2, "suffixes are not a pair")
    return names[0], names[1]


def _no_inputs() -> tuple[Relation, ...]:
    raise _Bad("a union without inputs")


def _plan(payload: dict[str, Any]) -> Plan:
    built: list[Relation] = []

    def ref(i: Any) -> Relation:
        _want(type(i) is int and 0 <= i < len(built), f"node {len(built)} reads a node "
              "that is not before it")
        return built[i]

    for item in _list(payload.get("nodes"), "nodes"):
        row = _list(item, f"node {len(built)}")
        _want(len(row) >= 2 and isinstance(row[0], str), f"node {len(built)} has no kind")
        kind = row[0]
        _want(kind in _DECODERS, f"node {len(built)} is of unknown kind {kind!r}")
        size, build = _DECODERS[kind]
        _want(len(row) == size + 2, f"node {len(built)} ({kind}) has {len(row) - 2} fields, "
              f"not {size}")
        try:
            built.append(build(row[2:], ref, _span_of(row[1])))
        except PlanError as exc:
            raise PlanError(f"node {len(built)} ({kind}): {exc.message}", hint=exc.hint) from None
    sinks = tuple(ref(i) for i in _list(payload.get("sinks"), "sinks"))
    _want(all(isinstance(s, Sink) for s in sinks), "an output is not a Sink node")
    return Plan(sinks)  # type: ignore[arg-type]


def encode_schema(schema: Schema) -> list[list[Any]]:
    """A table schema as msgpack-ready lists (what an agent's status tells the broker)."""
    return _schema(schema)


def decode_schema(data: Any) -> Schema:
    """The schema :func:`encode_schema` made; PlanError for anything else."""
    try:
        return _schema_of(data)
    except _Bad as exc:
        raise PlanError(f"bad table schema: {exc}") from None

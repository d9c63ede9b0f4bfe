"""Plan → Polars LazyFrames → results.

One ``functools.singledispatch`` function per kind of thing: :func:`lower` turns a relation into a
LazyFrame, :func:`translate` turns an expression into a Polars expression. Their registries are the
capability list: a node type without a handler raises :class:`ExecuteError`.
All outputs of a script are collected together, so shared sub-plans run once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache, singledispatch
from typing import Any
from typing import Literal as TLiteral

import polars as pl

from engine.catalog import Catalog
from engine.dictionary import categories, is_dictionary
from engine.errors import ExecuteError, PxlError
from engine.exprs import AggCall, Call, ColumnRef, Expr, Literal, columns_of
from engine.optimizer.exprs import conjuncts
from engine.registry import REGISTRY, CallArgs
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
    join_output_names,
)
from engine.types import DataType, Schema

__all__ = ["execute", "lower", "translate", "choose_engine", "physical_plan", "Result", "EngineName",
           "STREAMING_MIN_ROWS"]

log = logging.getLogger(__name__)
EngineName = TLiteral["auto", "streaming", "in-memory"]


@dataclass(frozen=True)
class Result:
    """One output of a script: its name, its rows and the types of its columns."""

    name: str
    frame: pl.DataFrame
    schema: Schema
    options: tuple[tuple[str, object], ...] = ()
    #: rows were cut at the output row limit (there were more)
    truncated: bool = False


class _Lowering:
    """Memoises lowered nodes so a shared sub-plan becomes one LazyFrame."""

    def __init__(self, catalog: Catalog, engine: str | None = None,
                 rows: int | None = None) -> None:
        self.catalog = catalog
        self.engine = engine  # the Polars engine the frames will run on, if known
        #: rows the plan scans, if known: over few, string functions of dictionary columns run
        #: row by row (evaluating them once per distinct value first costs more, ~0.2 ms each)
        self.few_rows = rows is not None and rows < PER_VALUE_MIN_ROWS
        #: a top-k takes a sampled threshold first (_sampled) only over many rows
        self.many_rows = rows is not None and rows >= STREAMING_MIN_ROWS
        self.done: dict[Relation, pl.LazyFrame] = {}
        self.schemas: dict[Relation, pl.Schema] = {}
        self._metadata: pl.DataFrame | None | bool = False
        self.decode: set[str] = set()  # dictionary columns to read as strings while translating

    @property
    def metadata(self) -> pl.DataFrame | None:
        """Process metadata by upid (fetched once per query, only if a ctx lookup needs it)."""
        if self._metadata is False:
            get = getattr(self.catalog, "metadata", None)
            self._metadata = get() if get is not None else None
        return self._metadata  # type: ignore[return-value]

    def __call__(self, node: Relation) -> pl.LazyFrame:
        lf = self.done.get(node)
        if lf is None:
            lf = self.done[node] = lower(node, self)
        return lf

    def schema(self, node: Relation) -> pl.Schema:
        """The Polars schema of a node's LazyFrame (dictionary columns as Categoricals), carried
        through the nodes that keep their input's columns rather than asked of Polars for each
        (``collect_schema`` resolves the whole plan below the frame: ~20-50 us a call)."""
        known = self.schemas.get(node)
        if known is None:
            known = self.schemas[node] = self._schema(node)
        return known

    def _schema(self, node: Relation) -> pl.Schema:
        if isinstance(node, Filter | Sort | Limit):
            return self.schema(node.input)
        if isinstance(node, Project):
            below = self.schema(node.input)
            return pl.Schema([(c, below[c]) for c in node.columns])
        if isinstance(node, Scan):
            get = getattr(self.catalog, "physical_schema", None)
            if get is not None:
                return get(node.table, node.columns)
        return self(node).collect_schema()


#: Below this many scanned rows the in-memory engine is used, at or above it the streaming one.
#: Measured here (docs/performance.md): at 2k rows in-memory is ~10% faster on group-by, join and
#: window queries; from ~50k rows streaming wins (3-80x at 1M rows on top-k, join, group-by).
STREAMING_MIN_ROWS = 20_000


#: Below this many scanned rows, a function of one dictionary column runs row by row on decoded
#: strings rather than once per distinct value (halves the lowering of a 30-line script over
#: 2,000 rows; the tests lower it to 0 to run the per-value path on small tables).
PER_VALUE_MIN_ROWS = STREAMING_MIN_ROWS


#: Aggregates Polars' in-memory engine runs faster than its streaming one even on many rows
#: (grouped quantiles: 182 vs 205 ms at 5M rows, 179 vs 249 ms in the benchmark suite).
IN_MEMORY_AGGREGATES = frozenset({"quantile", "quantiles"})


def choose_engine(plan: Plan, catalog: Catalog) -> str:
    """'streaming' for plans over many rows, 'in-memory' for small ones, for grouped quantiles,
    for plans whose only blocking steps are top-ks by a number or a time, and for aggregates of
    all rows over fewer than a million (a catalog that cannot count rows gets streaming)."""
    nodes = _nodes(plan)
    return _choose(plan, nodes, _scanned_rows(nodes, catalog))


def _choose(plan: Plan, nodes: list[Relation], rows: int | None) -> str:
    if any(isinstance(node, Aggregate) and any(a.fn in IN_MEMORY_AGGREGATES for a in node.aggs)
           for node in nodes):
        return "in-memory"
    if rows is not None and rows < STREAMING_MIN_ROWS:
        return "in-memory"
    if rows is not None and _only_sampled_top_ks(nodes):
        return "in-memory"
    if rows is not None and rows < WHOLE_AGGREGATES_STREAMING_MIN_ROWS \
            and _whole_aggregates_only(plan, nodes):
        return "in-memory"
    return "streaming"


#: Below this many scanned rows, a plan whose every output aggregates all its rows (no groups)
#: runs in-memory: one pass of sums and counts gains less from the streaming engine than its
#: start-up costs. Measured over windows of a 10M-row table (count+mean, filter+count+mean,
#: sum/min/max; in-memory vs streaming, ms): 300k rows 0.25/0.80, 0.57/0.82, 0.45/0.62;
#: 832k 0.56/0.65, 0.91/1.03, 0.68/0.84; 3M 1.84/1.65, 3.96/2.82, 3.96/2.61.
WHOLE_AGGREGATES_STREAMING_MIN_ROWS = 1_000_000


def _whole_aggregates_only(plan: Plan, nodes: list[Relation]) -> bool:
    """Every output is an aggregate of all the rows below it (through filters, maps,
    projections and limits), and nothing groups, joins or sorts."""
    if any(isinstance(n, Join | Sort | Union) or (isinstance(n, Aggregate) and n.groups)
           for n in nodes):
        return False
    for sink in plan.sinks:
        node = sink.input
        while not isinstance(node, Aggregate):
            if not isinstance(node, Filter | Map | Project | Limit):
                return False
            node = node.input
    return True


#: Plan types of a top-k's first key for which a sampled threshold is taken (see _sampled).
_SAMPLED_KEY_TYPES = frozenset({DataType.INT64, DataType.FLOAT64, DataType.TIME64NS})


def _sampled_key(node: Sort) -> bool:
    return bool(node.limit) and node.input.schema[node.keys[0]].dtype in _SAMPLED_KEY_TYPES


def _only_sampled_top_ks(nodes: list[Relation]) -> bool:
    """The plan's only blocking steps are top-ks by a number or a time: the in-memory engine runs
    them with a sampled threshold (_sampled) 5-250x faster than the streaming engine's top-k,
    and nothing else in the plan would run faster streaming."""
    sorts = [n for n in nodes if isinstance(n, Sort)]
    return bool(sorts) and all(_sampled_key(n) for n in sorts) and not any(
        isinstance(n, Aggregate | Join) for n in nodes)


def scanned_rows(plan: Plan, catalog: Catalog) -> int | None:
    """How many rows the plan's scans read (None: the catalog cannot count them)."""
    return _scanned_rows(_nodes(plan), catalog)


def _scanned_rows(nodes: list[Relation], catalog: Catalog) -> int | None:
    count = getattr(catalog, "row_count", None)
    scans = [n for n in nodes if isinstance(n, Scan)]
    if scans and count is None:
        return None
    return sum(count(n.table, n.start, n.end) for n in scans)  # type: ignore[misc]


def lowering_for(plan: Plan, catalog: Catalog, engine: EngineName = "auto"
                 ) -> tuple[_Lowering, str]:
    """The lowering a run of ``plan`` uses, and the Polars engine it runs on (the plan's nodes
    listed and its scanned rows counted once for both)."""
    nodes = _nodes(plan)
    rows = _scanned_rows(nodes, catalog)
    chosen = _choose(plan, nodes, rows) if engine == "auto" else engine
    return _Lowering(catalog, chosen, rows), chosen


def _nodes(plan: Plan) -> list[Relation]:
    """Every node of the plan once."""
    seen: dict[int, Relation] = {}
    stack: list[Relation] = list(plan.sinks)
    while stack:
        node = stack.pop()
        if id(node) not in seen:
            seen[id(node)] = node
            stack.extend(node.children)
    return list(seen.values())


def execute(plan: Plan, catalog: Catalog, *, engine: EngineName = "auto",
            max_rows: int | None = None) -> list[Result]:
    """Run every output of the plan; raises ExecuteError naming what failed.

    ``engine='auto'`` picks Polars' streaming or in-memory engine with :func:`choose_engine`.
    ``max_rows`` keeps at most that many rows per output (Result.truncated says if more were)."""
    lowering, chosen = lowering_for(plan, catalog, engine)
    frames = [lowering(sink) for sink in plan.sinks]
    if max_rows is not None:
        frames = [f.head(max_rows + 1) for f in frames]
    log.debug("engine: %s", chosen)
    started = time.perf_counter()
    try:
        collected = pl.collect_all(frames, engine=chosen,  # type: ignore[arg-type]
                                   **_polars_options(lowering))
    except PxlError:
        raise
    except (pl.exceptions.PolarsError, ValueError, TypeError, OverflowError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        span = plan.sinks[0].span if plan.sinks else None
        raise ExecuteError(f"the query failed while running: {first}", span,
                           hint="run with --debug for the full plan") from exc
    log.debug("collected %d outputs in %.1f ms", len(frames),
              (time.perf_counter() - started) * 1e3)
    results = []
    for sink, frame in zip(plan.sinks, collected, strict=True):
        cut = max_rows is not None and frame.height > max_rows
        results.append(Result(sink.name, frame.head(max_rows) if cut else frame, sink.schema,
                              sink.options, truncated=cut))
    return results


def _polars_options(lowering: _Lowering) -> dict[str, object]:
    """Over few rows, Polars' own plan optimizations are skipped: pxl's optimizer has already
    pushed filters and column choices down, and the rest (common sub-plans, expression
    clustering, ...) cost more than they save there (the 30-line script over 2,000 rows:
    collecting 1.04 -> 0.76 ms). Types are still checked and coerced."""
    flags = getattr(pl, "QueryOptFlags", None)  # Polars >= 1.30 has it; older ones optimize
    return {"optimizations": flags.none()} if lowering.few_rows and flags is not None else {}


def physical_plan(plan: Plan, catalog: Catalog, *, engine: EngineName = "auto") -> str:
    """The Polars plan of every output, as Polars explains it (the plan execute runs)."""
    lowering, chosen = lowering_for(plan, catalog, engine)
    parts = []
    for sink in plan.sinks:
        text = lowering(sink).explain(engine=chosen,  # type: ignore[arg-type]
                                      **_polars_options(lowering))
        parts.append(f"-- {sink.name} (Polars, {chosen} engine)\n{text}")
    return "\n\n".join(parts)


# ----------------------------------------------------------------------------------------------
# Relations


@singledispatch
def lower(node: Relation, rec: _Lowering) -> pl.LazyFrame:
    raise ExecuteError(f"pxl cannot run a {type(node).__name__} node", node.span)


@lower.register
def _(node: Scan, rec: _Lowering) -> pl.LazyFrame:
    return rec.catalog.scan(node.table, node.columns, node.start, node.end)


@lower.register
def _(node: Values, rec: _Lowering) -> pl.LazyFrame:
    return node.rows.lazy()


@lower.register
def _(node: Filter, rec: _Lowering) -> pl.LazyFrame:
    lf = rec(node.input)
    scope = _Scope(rec, rec.schema(node.input))
    return lf.filter([scope.predicate(p) for p in conjuncts(node.predicate)])


@lower.register
def _(node: Map, rec: _Lowering) -> pl.LazyFrame:
    lf = rec(node.input)
    scope = _Scope(rec, rec.schema(node.input))
    exprs = [scope.value(e).alias(n) for n, e in node.exprs]
    return lf.with_columns(exprs) if node.keep_input else lf.select(exprs)


@lower.register
def _(node: Project, rec: _Lowering) -> pl.LazyFrame:
    return rec(node.input).select(list(node.columns))


@lower.register
def _(node: Aggregate, rec: _Lowering) -> pl.LazyFrame:
    lf = rec(node.input)
    scope = _Scope(rec, rec.schema(node.input))
    aggs = [_aggregate(a, scope) for a in node.aggs]
    if not node.groups:
        return lf.select(aggs)
    if not aggs:
        return lf.select(list(node.groups)).unique(maintain_order=True)
    return lf.group_by(list(node.groups), maintain_order=True).agg(aggs)


def _aggregate(a: AggCall, scope: _Scope) -> pl.Expr:
    """The Polars expression of an aggregate, named."""
    try:
        if (a.arg is None or isinstance(a.arg, ColumnRef)) \
                and all(type(p) in _PLAIN for p in a.params):  # as PxL's agg tuples write them
            column = None if a.arg is None else a.arg.name
            decoded = column is not None and a.fn != "count" and column in scope.schema \
                and is_dictionary(scope.schema[column])
            kinds = tuple(type(p) for p in a.params)  # 1 and True are equal keys
            return _column_aggregate(a.fn, column, decoded, a.params, kinds, a.name)
        fn = REGISTRY.aggregate(a.fn)
        arg = scope.plain(a.arg, decode_bare=a.fn != "count")
        return fn.polars(arg, *a.params).alias(a.name)
    except (ValueError, TypeError) as exc:
        raise ExecuteError(f"agg {a.name}: {exc}", a.span) from None


_PLAIN = frozenset({int, float, str, bool, type(None)})


@lru_cache(maxsize=4096)
def _column_aggregate(fn: str, column: str | None, decoded: bool, params: tuple[Any, ...],
                      kinds: tuple[type, ...], name: str) -> pl.Expr:
    """An aggregate of one column (of the first, for a count without one; ``decoded``: a
    dictionary column read as strings), made once per distinct aggregate: building the
    expression, its casts especially, costs ~10 us a call. Polars expressions are immutable."""
    arg = pl.first() if column is None else pl.col(column)
    if decoded:
        arg = arg.cast(pl.String)
    return REGISTRY.aggregate(fn).polars(arg, *params).alias(name)


_POLARS_HOW = {"inner": "inner", "left": "left", "right": "right", "outer": "full"}
_ORDER = {"inner": "left", "left": "left", "right": "right", "outer": "left_right"}


@lower.register
def _(node: Join, rec: _Lowering) -> pl.LazyFrame:
    lnames, rnames = join_output_names(node.left.schema, node.right.schema, node.suffixes)
    lmap = dict(zip(node.left.schema.names, lnames, strict=True))
    rmap = dict(zip(node.right.schema.names, rnames, strict=True))
    left = rec(node.left).rename(lmap)
    right = rec(node.right).rename(rmap)
    lkeys, rkeys = [lmap[k] for k in node.left_on], [rmap[k] for k in node.right_on]
    lschema = pl.Schema([(lmap[n], t) for n, t in rec.schema(node.left).items()])
    rschema = pl.Schema([(rmap[n], t) for n, t in rec.schema(node.right).items()])
    mismatched = [(lk, rk) for lk, rk in zip(lkeys, rkeys, strict=True)
                  if lschema[lk] != rschema[rk]]
    if mismatched:  # e.g. a dictionary column joined with a plain string column
        left, right = _align_keys(left, right, lschema, rschema, mismatched)
    joined = left.join(
        right, left_on=lkeys, right_on=rkeys,
        how=_POLARS_HOW[node.how], coalesce=False, maintain_order=_ORDER[node.how])  # type: ignore[arg-type]
    return joined.select(lnames + rnames)


def _align_keys(left: pl.LazyFrame, right: pl.LazyFrame, lschema: pl.Schema, rschema: pl.Schema,
                pairs: list[tuple[str, str]]) -> tuple[pl.LazyFrame, pl.LazyFrame]:
    """Give join keys one dtype. A plain string key is encoded into the other side's dictionary
    (joins are mostly a large, encoded table with a small one: 10M rows joined 3x faster than
    decoding the large side); two different dictionaries meet as plain strings."""
    lcast, rcast = [], []
    for lk, rk in pairs:
        lt, rt = lschema[lk], rschema[rk]
        if is_dictionary(lt) and not is_dictionary(rt):
            rcast.append(pl.col(rk).cast(lt))
        elif is_dictionary(rt) and not is_dictionary(lt):
            lcast.append(pl.col(lk).cast(rt))
        else:
            lcast.append(pl.col(lk).cast(pl.String))
            rcast.append(pl.col(rk).cast(pl.String))
    return (left.with_columns(lcast) if lcast else left,
            right.with_columns(rcast) if rcast else right)


@lower.register
def _(node: Union, rec: _Lowering) -> pl.LazyFrame:
    return pl.concat([rec(i) for i in node.inputs], how="vertical_relaxed")


@lower.register
def _(node: Limit, rec: _Lowering) -> pl.LazyFrame:
    return rec(node.input).head(node.n)


@lower.register
def _(node: Sort, rec: _Lowering) -> pl.LazyFrame:
    lf = rec(node.input)
    keys, desc = list(node.keys), list(node.descending)
    if node.limit is None:
        return lf.sort(keys, descending=desc, nulls_last=True, maintain_order=True)
    if rec.engine == "streaming":
        # Polars' streaming engine runs a stable sort + head as a stable top-k: 51 ms at 10M
        # rows, as fast as the unstable one (85 ms for the row-index form below).
        return lf.sort(keys, descending=desc, nulls_last=True, maintain_order=True).head(
            node.limit)
    if rec.many_rows and _sampled_key(node):
        return _sampled(lf, keys[0], desc[0], node.limit).sort(
            keys, descending=desc, nulls_last=True, maintain_order=True).head(node.limit)
    # A stable top-k: ties broken by input position (the in-memory engine takes 11 s for the
    # stable sort + head at 10M rows, 0.2 s this way); nulls last either way.
    row = "__pxl_row"  # user columns cannot start with "__"
    picked = lf.with_row_index(row).top_k(node.limit, by=[*keys, row],
                                          reverse=[not d for d in desc] + [True])
    return picked.sort([*keys, row], descending=[*desc, False], nulls_last=True).drop(row)


#: A top-k's sample: every SAMPLE_EVERY-th row (a prime, so that a period in the rows, such as
#: batches of 64 or 100, is unlikely to line up with it).
SAMPLE_EVERY = 97


def _sampled(lf: pl.LazyFrame, key: str, descending: bool, k: int) -> pl.LazyFrame:
    """The rows that can be among the first ``k`` by ``key`` (and any further keys), in their
    order: those ranking at or before the k-th best value ``v`` of a sample of the rows.

    ``k`` rows of the sample, hence of the input, rank at or before ``v``, so every row ranking
    after it has ``k`` rows before it and is dropped safely; the stable sort that follows sees
    the input order of the rest. On 10M rows, the top 10 by a number keeps ~1,000 rows: 9-18 ms
    in all against 48-87 ms for Polars' streaming top-k (1.3 s by a time-sorted ``time_``). The
    comparison orders rows as the sort does (NaN above every number, nulls after all); a sample
    with fewer than ``k`` values (or a null among its best) keeps every row. Many rows tied at
    ``v`` are all kept (the 10 lowest status codes: ~8M rows, 126-681 ms against 180-434 ms
    streaming, in two runs).
    The risk: rows whose order lines up with the sample so that it holds only poor values keep
    most rows, and Polars' in-memory stable sort + head of millions of distinct values is slow
    (~10 s at 10M rows; the row-index form, 0.3 s there, takes 0.45-0.57 s on the tied rows
    above, so the common case decided)."""
    col = pl.col(key)
    best = col.gather_every(SAMPLE_EVERY)
    best = best.top_k(k) if descending else best.bottom_k(k)
    v = best.sort(descending=descending, nulls_last=True).last()
    ranks = col >= v if descending else col <= v
    return lf.filter(ranks | (best.drop_nulls().len() < k))


@lower.register
def _(node: Sink, rec: _Lowering) -> pl.LazyFrame:
    # Outputs hold plain strings: dictionary columns are decoded (results are usually small).
    # Only string columns can be dictionary-encoded: an output without any needs no Polars
    # schema (which, over an aggregate, Polars works out for each run: ~20-50 us).
    lf = rec(node.input)
    if not any(t.dtype is DataType.STRING for _, t in node.input.schema.columns):
        return lf
    encoded = [n for n, t in rec.schema(node.input).items() if is_dictionary(t)]
    return lf.with_columns(pl.col(encoded).cast(pl.String)) if encoded else lf


# ----------------------------------------------------------------------------------------------
# Expressions


class _Scope:
    """Translates expressions over one input whose physical schema is known.

    An expression that reads a single dictionary column is evaluated once per distinct value
    and mapped back by code; elsewhere dictionary columns are decoded where a function needs
    strings."""

    def __init__(self, rec: _Lowering, schema: pl.Schema) -> None:
        self.rec = rec
        self.schema = schema

    def _dictionary_column(self, expr: Expr) -> str | None:
        if not isinstance(expr, Call) or self.rec.few_rows:
            return None
        cols = columns_of(expr)
        if len(cols) != 1:
            return None
        (col,) = cols
        dtype = self.schema.get(col)
        return col if dtype is not None and is_dictionary(dtype) else None

    def _per_value(self, expr: Expr, col: str,
                   shape: Callable[[pl.Expr], pl.Expr] | None = None) -> pl.Series:
        """``expr`` over the distinct values of ``col`` (by code), optionally reshaped, in one
        small query."""
        frame = pl.DataFrame({col: categories(self.schema[col])})
        out = translate(expr, self.rec)
        try:
            return frame.select((shape(out) if shape else out).alias("v")).to_series()
        except pl.exceptions.PolarsError as exc:
            raise ExecuteError(f"cannot evaluate {expr}: {str(exc).splitlines()[0]}",
                               expr.span) from exc

    def predicate(self, expr: Expr) -> pl.Expr:
        col = self._dictionary_column(expr)
        if col is None:
            return self.plain(expr)
        dtype = self.schema[col]
        keep = self._per_value(expr, col,
                               lambda v: pl.col(col).filter(v.fill_null(False)).cast(dtype))
        return pl.col(col).is_in(keep.implode())

    def value(self, expr: Expr) -> pl.Expr:
        col = self._dictionary_column(expr)
        if col is None:
            return self.plain(expr)
        return pl.lit(self._per_value(expr, col)).gather(pl.col(col).to_physical())

    def plain(self, expr: Expr, *, decode_bare: bool = False) -> pl.Expr:
        """Row by row, with dictionary columns decoded to strings where a function reads them
        (a bare column stays encoded unless asked: outputs are decoded at the end)."""
        decode = {c for c in columns_of(expr) if c in self.schema and is_dictionary(self.schema[c])}
        if not decode or (isinstance(expr, ColumnRef) and not decode_bare):
            return translate(expr, self.rec)
        return _decoded(expr, self.rec, decode)


def _decoded(expr: Expr, rec: _Lowering, decode: set[str]) -> pl.Expr:
    """``translate`` with the dictionary columns in ``decode`` read as plain strings."""
    token = rec.decode
    rec.decode = decode
    try:
        return translate(expr, rec)
    finally:
        rec.decode = token




@singledispatch
def translate(expr: Expr, rec: _Lowering) -> pl.Expr:
    raise ExecuteError(f"pxl cannot run a {type(expr).__name__} expression", expr.span)


@translate.register
def _(expr: ColumnRef, rec: _Lowering) -> pl.Expr:
    if expr.name in rec.decode:
        return pl.col(expr.name).cast(pl.String)
    return pl.col(expr.name)


@translate.register
def _(expr: Literal, rec: _Lowering) -> pl.Expr:
    value = expr.value
    if isinstance(value, tuple):  # a constant list argument (px.equals_any's values)
        return pl.lit(pl.Series(list(value), dtype=expr.dtype.polars)).implode()
    if isinstance(value, float):  # the key tells -0.0 from 0.0 (they compare equal)
        return _scalar(float, value.hex(), expr.dtype)
    return _scalar(type(value), value, expr.dtype)


@lru_cache(maxsize=4096)
def _scalar(kind: type, key: Any, dtype: DataType) -> pl.Expr:
    """A typed Polars literal, made once per (Python type, value, type): ``pl.lit`` with a
    dtype builds a one-value Series each time (~10 us; a fifth of lowering a 30-line script).
    Polars expressions are immutable, so one can serve every plan."""
    value = float.fromhex(key) if kind is float else key
    if dtype is DataType.TIME64NS:
        return pl.lit(value, dtype=pl.Int64).cast(pl.Datetime("ns"))
    return pl.lit(value, dtype=dtype.polars)


@translate.register
def _(expr: Call, rec: _Lowering) -> pl.Expr:
    fn = REGISTRY.scalar(expr.fn)
    args = CallArgs([translate(a, rec) for a in expr.args], [a.ctype for a in expr.args],
                    [a.value if isinstance(a, Literal) else None for a in expr.args],
                    rec.metadata if fn.category == "metadata" else None)
    try:
        return fn.polars(args)
    except (ValueError, TypeError) as exc:
        raise ExecuteError(f"px.{fn.name}: {exc}", expr.span) from None

"""Plan → Polars LazyFrames → results.

One ``functools.singledispatch`` function per kind of thing: :func:`lower` turns a relation into a
LazyFrame, :func:`translate` turns an expression into a Polars expression. Their registries are the
capability list: a node type without a handler raises :class:`ExecuteError`.
All outputs of a script are collected together, so shared sub-plans run once.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from functools import singledispatch
from typing import Literal as TLiteral

import polars as pl

from engine.catalog import Catalog
from engine.errors import ExecuteError, PxlError
from engine.exprs import AggCall, Call, ColumnRef, Expr, Literal
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
    join_output_names,
)
from engine.types import DataType, Schema

__all__ = ["execute", "lower", "translate", "Result", "EngineName"]

log = logging.getLogger(__name__)
EngineName = TLiteral["auto", "streaming", "in-memory"]


@dataclass(frozen=True)
class Result:
    """One output of a script: its name, its rows and the types of its columns."""

    name: str
    frame: pl.DataFrame
    schema: Schema
    options: tuple[tuple[str, object], ...] = ()


class _Lowering:
    """Memoises lowered nodes so a shared sub-plan becomes one LazyFrame."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.done: dict[Relation, pl.LazyFrame] = {}
        self._metadata: pl.DataFrame | None | bool = False

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


def execute(plan: Plan, catalog: Catalog, *, engine: EngineName = "auto") -> list[Result]:
    """Run every output of the plan; raises ExecuteError naming what failed."""
    lowering = _Lowering(catalog)
    frames = [lowering(sink) for sink in plan.sinks]
    started = time.perf_counter()
    try:
        collected = pl.collect_all(frames, engine=engine)
    except PxlError:
        raise
    except (pl.exceptions.PolarsError, ValueError, TypeError, OverflowError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        span = plan.sinks[0].span if plan.sinks else None
        raise ExecuteError(f"the query failed while running: {first}", span,
                           hint="run with --debug for the full plan") from exc
    log.debug("collected %d outputs in %.1f ms", len(frames),
              (time.perf_counter() - started) * 1e3)
    return [Result(s.name, f, s.schema, s.options)
            for s, f in zip(plan.sinks, collected, strict=True)]


# ----------------------------------------------------------------------------------------------
# Relations


@singledispatch
def lower(node: Relation, rec: _Lowering) -> pl.LazyFrame:
    raise ExecuteError(f"pxl cannot run a {type(node).__name__} node", node.span)


@lower.register
def _(node: Scan, rec: _Lowering) -> pl.LazyFrame:
    return rec.catalog.scan(node.table, node.columns, node.start, node.end)


@lower.register
def _(node: Filter, rec: _Lowering) -> pl.LazyFrame:
    return rec(node.input).filter(translate(node.predicate, rec))


@lower.register
def _(node: Map, rec: _Lowering) -> pl.LazyFrame:
    exprs = [translate(e, rec).alias(n) for n, e in node.exprs]
    lf = rec(node.input)
    return lf.with_columns(exprs) if node.keep_input else lf.select(exprs)


@lower.register
def _(node: Project, rec: _Lowering) -> pl.LazyFrame:
    return rec(node.input).select(list(node.columns))


@lower.register
def _(node: Aggregate, rec: _Lowering) -> pl.LazyFrame:
    lf = rec(node.input)
    aggs = [_aggregate(a, rec).alias(a.name) for a in node.aggs]
    if not node.groups:
        return lf.select(aggs)
    if not aggs:
        return lf.select(list(node.groups)).unique(maintain_order=True)
    return lf.group_by(list(node.groups), maintain_order=True).agg(aggs)


def _aggregate(a: AggCall, rec: _Lowering) -> pl.Expr:
    fn = REGISTRY.aggregate(a.fn)
    arg = translate(a.arg, rec) if a.arg is not None else pl.first()
    try:
        return fn.polars(arg, *a.params)
    except (ValueError, TypeError) as exc:
        raise ExecuteError(f"agg {a.name}: {exc}", a.span) from None


_POLARS_HOW = {"inner": "inner", "left": "left", "right": "right", "outer": "full"}
_ORDER = {"inner": "left", "left": "left", "right": "right", "outer": "left_right"}


@lower.register
def _(node: Join, rec: _Lowering) -> pl.LazyFrame:
    lnames, rnames = join_output_names(node.left.schema, node.right.schema, node.suffixes)
    lmap = dict(zip(node.left.schema.names, lnames, strict=True))
    rmap = dict(zip(node.right.schema.names, rnames, strict=True))
    left = rec(node.left).rename(lmap)
    right = rec(node.right).rename(rmap)
    joined = left.join(
        right, left_on=[lmap[k] for k in node.left_on], right_on=[rmap[k] for k in node.right_on],
        how=_POLARS_HOW[node.how], coalesce=False, maintain_order=_ORDER[node.how])  # type: ignore[arg-type]
    return joined.select(lnames + rnames)


@lower.register
def _(node: Union, rec: _Lowering) -> pl.LazyFrame:
    return pl.concat([rec(i) for i in node.inputs], how="vertical")


@lower.register
def _(node: Limit, rec: _Lowering) -> pl.LazyFrame:
    return rec(node.input).head(node.n)


@lower.register
def _(node: Sort, rec: _Lowering) -> pl.LazyFrame:
    lf = rec(node.input).sort(list(node.keys), descending=list(node.descending),
                              nulls_last=True, maintain_order=True)
    return lf if node.limit is None else lf.head(node.limit)


@lower.register
def _(node: Sink, rec: _Lowering) -> pl.LazyFrame:
    return rec(node.input)


# ----------------------------------------------------------------------------------------------
# Expressions


@singledispatch
def translate(expr: Expr, rec: _Lowering) -> pl.Expr:
    raise ExecuteError(f"pxl cannot run a {type(expr).__name__} expression", expr.span)


@translate.register
def _(expr: ColumnRef, rec: _Lowering) -> pl.Expr:
    return pl.col(expr.name)


@translate.register
def _(expr: Literal, rec: _Lowering) -> pl.Expr:
    if expr.dtype is DataType.TIME64NS:
        return pl.lit(expr.value, dtype=pl.Int64).cast(pl.Datetime("ns"))
    return pl.lit(expr.value, dtype=expr.dtype.polars)


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

"""Aggregate functions: used as ``agg(name=(column, px.fn))`` or ``(column, px.quantile, q)``.

Each declares how agents pre-aggregate it (``partial``) and how the broker combines their
answers (``merge``, ``finalize``): count → sum of counts, mean → sum and count, then sum / count.
The quantiles declare the quantile points they read instead (``sketch_points``): agents ship a
mergeable sketch of the values (engine/distributed/sketch.py, ±1% relative error), and
``sketch_answer`` builds the answer from the values the broker reads at those points.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from engine.exprs import Call, Expr, Literal
from engine.registry import REGISTRY, AggregateFunction, first_semantic, no_semantic, sig
from engine.types import QUANTILE_KEYS, QUANTILE_VALUES, ColumnType, DataType, SemanticType

_ANY = "BOOLEAN INT64 FLOAT64 STRING TIME64NS".split()


def _keep(types: Sequence[ColumnType]) -> SemanticType:
    return first_semantic(types)


def _quantiles_semantic(types: Sequence[ColumnType]) -> SemanticType:
    if types[0].semantic is SemanticType.DURATION_NS:
        return SemanticType.DURATION_NS_QUANTILES
    return SemanticType.QUANTILES


def _mean_finalize(merged: Sequence[Expr], ctype: ColumnType) -> Expr:
    """sum / count, null where no value was counted (as the mean of no values)."""
    total, n = merged
    boolean, real = ColumnType(DataType.BOOLEAN), ColumnType(DataType.FLOAT64)
    counted = Call("greaterThan", (n, Literal(0, ColumnType(DataType.INT64))), boolean)
    return Call("select", (counted, Call("divide", (total, n), real), Literal(None, real)), ctype)


def _quantiles(e: pl.Expr) -> pl.Expr:
    f = e.cast(pl.Float64)
    return pl.struct([f.quantile(q, interpolation="linear").alias(k)
                      for k, q in zip(QUANTILE_KEYS, QUANTILE_VALUES, strict=True)])


def _quantiles_answer(points: Sequence[pl.Expr]) -> pl.Expr:
    """The px.quantiles struct from the values at QUANTILE_VALUES (as _quantiles builds it)."""
    return pl.struct([p.alias(k) for k, p in zip(QUANTILE_KEYS, points, strict=True)])


REGISTRY.add(AggregateFunction(
    "count", sig(*(f"{t} -> INT64" for t in _ANY)), "Number of rows in the group (non-null values).",
    semantic=no_semantic, category="aggregates", polars=lambda e: e.count().cast(pl.Int64),
    partial=(("count", "count"),), merge=("sum",),
    examples=("df.groupby('req_path').agg(n=('latency', px.count))",)))
REGISTRY.add(AggregateFunction(
    "sum", sig("INT64 -> INT64", "FLOAT64 -> FLOAT64"), "Sum of the values.",
    semantic=_keep, category="aggregates", polars=lambda e: e.sum(),
    partial=(("sum", "sum"),), merge=("sum",),
    examples=("df.groupby('req_path').agg(bytes=('resp_body_size', px.sum))",)))
REGISTRY.add(AggregateFunction(
    "mean", sig("FLOAT64 -> FLOAT64"), "Arithmetic mean of the values (a FLOAT64).",
    # Polars averages integers in floating point itself (the same values as casting them first,
    # which cost ~0.5 ms per million rows); the cast of the answer only pins its type.
    semantic=_keep, category="aggregates", polars=lambda e: e.mean().cast(pl.Float64),
    partial=(("sum", "sum"), ("count", "count")), merge=("sum", "sum"), finalize=_mean_finalize,
    examples=("df.groupby('req_path').agg(avg_latency=('latency', px.mean))",)))
REGISTRY.add(AggregateFunction(
    "min", sig("T -> T"), "Smallest value.", semantic=_keep, category="aggregates",
    polars=lambda e: e.min(), partial=(("min", "min"),), merge=("min",),
    examples=("df.groupby('req_path').agg(first=('time_', px.min))",)))
REGISTRY.add(AggregateFunction(
    "max", sig("T -> T"), "Largest value.", semantic=_keep, category="aggregates",
    polars=lambda e: e.max(), partial=(("max", "max"),), merge=("max",),
    examples=("df.groupby('req_path').agg(slowest=('latency', px.max))",)))
REGISTRY.add(AggregateFunction(
    "quantiles", sig("FLOAT64 -> QUANTILES"),
    "p01, p10, p25, p50, p75, p90 and p99 of the values; take one with px.pluck_float64(col, 'p99').",
    semantic=_quantiles_semantic, category="aggregates", polars=_quantiles,
    sketch_points=lambda: QUANTILE_VALUES, sketch_answer=_quantiles_answer,
    examples=("df.groupby('service').agg(lat=('latency', px.quantiles))",)))
REGISTRY.add(AggregateFunction(
    "quantile", sig("FLOAT64 -> FLOAT64"),
    "The q-quantile of the values, linearly interpolated: ('latency', px.quantile, 0.99).",
    semantic=_keep, category="aggregates", params=(("q", float),),
    polars=lambda e, q: e.cast(pl.Float64).quantile(q, interpolation="linear"),
    sketch_points=lambda q: (q,), sketch_answer=lambda points: points[0],
    examples=("df.groupby('req_path').agg(p99=('latency', px.quantile, 0.99))",)))
REGISTRY.add(AggregateFunction(
    "any", sig("T -> T"),
    "Any one value of the group (here the first non-null one; null if all are null). Pixie "
    "promises no particular value either.",
    semantic=_keep, category="aggregates", polars=lambda e: e.drop_nulls().first(),
    partial=(("any", "any"),), merge=("any",),
    examples=("df.groupby('req_path').agg(method=('req_method', px.any))",)))

"""Quantile sketches: how agents pre-aggregate px.quantile and px.quantiles.

Agents ship each group's values as (value, weight) pairs, the weight counting how many of the
agent's rows hold the value. A group's values are shipped either exactly or rounded to a
log-bucket representative (a relative-error sketch in the manner of DDSketch, with relative
accuracy ``ACCURACY`` = 1%); either way the broker receives the same columns, merges the pairs
of every agent and reads the quantiles from the merged weights. Everything is Polars
expressions: windows over the group keys, no per-group Python.

**Buckets.** With γ = (1 + α) / (1 − α), a value x ≠ 0 falls in bucket k = ⌈log_γ |x|⌉, the
values in (γ^(k−1), γ^k], whose representative sign(x)·2γ^k / (γ + 1) is within α·|x| of every
one of them. The rounding is monotone, so rounded values sort as the values do. Zero, values
of magnitude below 1e-300 or above 1e300, infinities and NaN stay as they are (exact).

**Exact or rounded** (decided per group, per agent, by :class:`SketchValues`): a group ships its
exact values when it has at most ``EXACT_UP_TO`` (128) rows on the agent; otherwise it ships bucket
representatives. The agent then
groups by (keys, value) and counts, so it ships at most one row per distinct (keys, value): never
more rows than it read, at most ~115 rows per group and factor of ten between its smallest and
largest magnitude (a few hundred for latencies), and exactly the group's values when rounding
would not save much. Quantiles of k different columns in one aggregate stack their values (one
set of rows per column, so up to k rows per row read, never their cross product).

**Merge and answer** (:class:`WeightedAggregate`, on the broker): a group's n is the sum of its
weights; the q-quantile reads the values at ranks ⌊p⌋ and ⌈p⌉, p = q·(n − 1), from the
cumulative weights in value order, and interpolates linearly — Polars' linear quantile, over
the merged multiset. The stated error: **the answer lies within ±1% (relative) of a value
between the exact order statistics at ranks ⌊q(n−1)⌋ and ⌈q(n−1)⌉**, i.e. in
[x_lo − α|x_lo|, x_hi + α|x_hi|]; for values of one sign, within ±1% of the exact answer. A group
that every agent shipped exactly gets the exact answer::

    agents: Aggregate[by=(svc, __p99_v); __p99_w=count(__p99_v), n=count(latency)]
              SketchValues[by=(svc); __p99_v=latency; accuracy=0.01; exact_up_to=128]
    broker: WeightedAggregate[by=(svc); p99=quantile(__p99_v, 0.99), n=sum(n);
                              weights=(__p99_v: __p99_w)]
              Exchange[f0]

The other aggregates of the node run per (keys, value) on the agents and are merged per group on
the broker, as their partial steps say (px.any then gives one of the group's values, as
promised, not necessarily the one the whole plan gives).

>>> values = pl.DataFrame({"x": [1.0, 1.005, 100.0, -100.0, 0.0, float("inf")]})
>>> values.select(bucket(pl.col("x")).round(4))["x"].to_list()  # within 1% of each value
[0.99, 1.01, 100.4946, -100.4946, 0.0, inf]
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import polars as pl

from engine.errors import PlanError
from engine.executor import lower
from engine.explain import describe
from engine.exprs import AggCall, ColumnRef
from engine.registry import REGISTRY
from engine.relations import Unary
from engine.types import ColumnType, DataType, Schema

__all__ = ["ACCURACY", "EXACT_UP_TO", "bucket", "SketchValues", "WeightedAggregate"]

#: relative accuracy α of a bucket representative
ACCURACY = 0.01
#: a group with at most this many rows on an agent ships its values exactly
EXACT_UP_TO = 128
#: magnitudes rounded into buckets; zero, smaller, larger and non-finite values stay exact
_SMALLEST, _LARGEST = 1e-300, 1e300
_RESERVED = "__pxl_"  # prefix of the broker's working columns


def bucket(value: pl.Expr, accuracy: float = ACCURACY) -> pl.Expr:
    """The representative of the value's log bucket (the value itself where it is not rounded)."""
    gamma = (1 + accuracy) / (1 - accuracy)
    log_gamma = math.log(gamma)
    size = value.abs()
    k = (size.log() / log_gamma).ceil()
    rep = (k * log_gamma).exp() * (2 / (gamma + 1))
    rounded = (size >= _SMALLEST) & (size <= _LARGEST)
    return pl.when(rounded).then(rep * value.sign()).otherwise(value)


@dataclass(frozen=True, eq=False)
class SketchValues(Unary):
    """Add, for each (name, source) of ``values``, a FLOAT64 column ``name``: the source value,
    or its bucket representative in the groups (by ``groups``) that have more than
    ``exact_up_to`` rows.

    With several values the rows are stacked, so that grouping by every value column does not
    cross them: the input rows with the first value (the others null), then for each further
    value the rows' group keys and that value alone (every other column null)."""

    groups: tuple[str, ...]
    values: tuple[tuple[str, str], ...]
    accuracy: float = ACCURACY
    exact_up_to: int = EXACT_UP_TO

    def __post_init__(self) -> None:
        schema = self.input.schema
        self._need(self.groups, schema, "sketch")
        self._need([s for _, s in self.values], schema, "sketch")
        if not self.values:
            raise PlanError("a sketch needs a value column", self.span)
        for name, source in self.values:
            if schema[source].dtype not in (DataType.INT64, DataType.FLOAT64):
                raise PlanError(f"sketch: {source!r} is not a number", self.span)
            if name in schema:
                raise PlanError(f"sketch: the column {name!r} exists already", self.span)
        names = [n for n, _ in self.values]
        if len(set(names)) != len(names):
            raise PlanError("sketch: a value column is named twice", self.span)
        if not (isinstance(self.accuracy, float) and 0 < self.accuracy < 1):
            raise PlanError(f"sketch: the accuracy must be in (0, 1), not {self.accuracy!r}",
                            self.span)
        if type(self.exact_up_to) is not int or self.exact_up_to < 0:
            raise PlanError("sketch: exact_up_to must be a count", self.span)

    @cached_property
    def schema(self) -> Schema:
        real = ColumnType(DataType.FLOAT64)
        return Schema(self.input.schema.columns + tuple((n, real) for n, _ in self.values))


@dataclass(frozen=True, eq=False)
class WeightedAggregate(Unary):
    """Group by ``groups`` (all rows if empty), like an Aggregate, where each ``weights`` pair
    (value column, weight column) holds sketched values: an aggregate over a value column is a
    sketched one (the quantiles), answered from the weighted values; the others (the merge
    steps of partial aggregates) read their columns as an Aggregate does. Groups come out in
    the order they first appear."""

    groups: tuple[str, ...]
    aggs: tuple[AggCall, ...]
    weights: tuple[tuple[str, str], ...]

    def __post_init__(self) -> None:
        schema = self.input.schema
        self._need(self.groups, schema, "groupby")
        if any(n.startswith(_RESERVED) for n in [*schema.names, *(a.name for a in self.aggs)]):
            raise PlanError(f"a weighted aggregate reads and names no {_RESERVED}* columns",
                            self.span)
        values = dict(self.weights)
        if not values or len(values) != len(self.weights):
            raise PlanError("a weighted aggregate needs distinct weighted value columns",
                            self.span)
        for value, weight in self.weights:
            self._need([value, weight], schema, "weights")
            if schema[value].dtype is not DataType.FLOAT64 \
                    or schema[weight].dtype is not DataType.INT64:
                raise PlanError(f"weights: {value!r} must be FLOAT64 and {weight!r} INT64",
                                self.span)
        for a in self.aggs:
            if not isinstance(a.arg, ColumnRef):
                raise PlanError(f"agg {a.name}: a weighted aggregate reads columns", a.span)
            self._need([a.arg.name], schema, f"agg {a.name}")
            sketched = REGISTRY.aggregate(a.fn).sketch_points is not None
            if sketched != (a.arg.name in values):
                raise PlanError(f"agg {a.name}: px.{a.fn} over {a.arg.name!r} "
                                + ("needs weighted values" if sketched else
                                   "cannot read weighted values"), a.span)
        names = list(self.groups) + [a.name for a in self.aggs]
        if len(set(names)) != len(names) or not self.aggs:
            raise PlanError("a weighted aggregate needs aggregates with distinct names",
                            self.span)

    @cached_property
    def schema(self) -> Schema:
        cols = [(g, self.input.schema[g]) for g in self.groups]
        cols += [(a.name, a.ctype) for a in self.aggs]
        return Schema(tuple(cols))


# ------------------------------------------------------------------------------------------------
# Lowering


@lower.register(SketchValues)
def _lower_sketch_values(node: SketchValues, rec: Any) -> pl.LazyFrame:
    keys = list(node.groups)
    columns = []
    # A group's row count decides (a cheap window; counting its distinct values per group was
    # 4-5x slower than the whole sketch at 2.5M rows): few rows ship exactly.
    rows = pl.len().over(keys) if keys else pl.len()
    for name, source in node.values:
        value = pl.col(source).cast(pl.Float64)
        rounded = bucket(value, node.accuracy)
        exact = rows <= node.exact_up_to
        columns.append(pl.when(exact).then(value).otherwise(rounded).alias(name))
    lf = rec(node.input).with_columns(columns)
    if len(node.values) == 1:
        return lf
    schema = lf.collect_schema()  # physical: dictionary columns stay encoded
    names = [n for n, _ in node.values]

    def alone(kept: set[str]) -> pl.LazyFrame:
        return lf.select([pl.col(c) if c in kept else pl.lit(None, dtype=t).alias(c)
                          for c, t in schema.items()])

    first = alone(set(node.input.schema.names) | {names[0]})
    return pl.concat([first, *(alone({*keys, n}) for n in names[1:])], how="vertical")


@lower.register(WeightedAggregate)
def _lower_weighted_aggregate(node: WeightedAggregate, rec: Any) -> pl.LazyFrame:
    """Per value column: the rows sorted by value, each row's cumulative weight in its group
    (inclusive) and the group's total n. The row holding rank r is the one whose weights span
    [cumulative − weight, cumulative) ∋ r; it is picked by a plain grouped max, so the order
    rows reach the group_by in does not matter. Groups are put back in first-appearance order."""
    keys = list(node.groups)
    row = f"{_RESERVED}row"
    lf = rec(node.input)
    if keys:
        lf = lf.with_row_index(row)

    def per_group(e: pl.Expr) -> pl.Expr:
        return e.over(keys) if keys else e

    slot: dict[str, int] = {}
    for i, (value, weight) in enumerate(node.weights):
        slot[value] = i
        w = pl.when(pl.col(value).is_not_null()).then(pl.col(weight)).otherwise(0).fill_null(0)
        lf = lf.with_columns(w.alias(f"{_RESERVED}w{i}")).sort(value, nulls_last=True,
                                                                maintain_order=True)
        w = pl.col(f"{_RESERVED}w{i}")
        lf = lf.with_columns(per_group(w.cum_sum()).alias(f"{_RESERVED}c{i}"),
                             per_group(w.sum()).alias(f"{_RESERVED}n{i}"))

    aggs: list[pl.Expr] = [pl.col(row).min()] if keys else []
    aggs += [pl.col(f"{_RESERVED}n{i}").first() for i in range(len(node.weights))]
    answers: list[pl.Expr] = []
    for a in node.aggs:
        fn = REGISTRY.aggregate(a.fn)
        assert isinstance(a.arg, ColumnRef)
        if fn.sketch_points is None:
            aggs.append(fn.polars(pl.col(a.arg.name), *a.params).alias(a.name))
            answers.append(pl.col(a.name))
            continue
        i = slot[a.arg.name]
        v, w = pl.col(a.arg.name), pl.col(f"{_RESERVED}w{i}")
        c, n = pl.col(f"{_RESERVED}c{i}"), pl.col(f"{_RESERVED}n{i}")
        points = []
        for j, q in enumerate(fn.sketch_points(*a.params)):
            p = (n - 1).cast(pl.Float64) * q
            lo, hi = f"{_RESERVED}{a.name}_{j}_lo", f"{_RESERVED}{a.name}_{j}_hi"
            for name, rank in ((lo, p.floor()), (hi, p.ceil())):
                aggs.append(pl.when((c - w <= rank) & (rank < c)).then(v).max().alias(name))
            points.append(_interpolate(pl.col(lo), pl.col(hi), q, pl.col(f"{_RESERVED}n{i}")))
        answers.append(fn.sketch_answer(points).alias(a.name))  # type: ignore[misc]

    if keys:
        out = lf.group_by(keys).agg(aggs).sort(row)
    else:
        out = lf.select(aggs)
    return out.select(*keys, *answers)


def _interpolate(lo: pl.Expr, hi: pl.Expr, q: float, n: pl.Expr) -> pl.Expr:
    """Polars' linear quantile from the values at ranks ⌊p⌋ and ⌈p⌉, p = q·(n − 1) (null for
    no values: no row holds a rank then)."""
    p = (n - 1).cast(pl.Float64) * q
    return pl.when(lo == hi).then(lo).otherwise(lo + (p - p.floor()) * (hi - lo))


# ------------------------------------------------------------------------------------------------
# Explain


@describe.register(SketchValues)
def _describe_sketch_values(node: SketchValues) -> str:
    groups = f"by=({', '.join(node.groups)})" if node.groups else "all rows"
    values = ", ".join(f"{n}={s}" for n, s in node.values)
    return (f"SketchValues[{groups}; {values}; accuracy={node.accuracy!r}; "
            f"exact_up_to={node.exact_up_to}]")


@describe.register(WeightedAggregate)
def _describe_weighted_aggregate(node: WeightedAggregate) -> str:
    groups = f"by=({', '.join(node.groups)})" if node.groups else "all rows"
    aggs = ", ".join(str(a) for a in node.aggs)
    weights = ", ".join(f"{v}: {w}" for v, w in node.weights)
    return f"WeightedAggregate[{groups}; {aggs}; weights=({weights})]"

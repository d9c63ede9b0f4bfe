"""Relations of the logical plan: immutable nodes whose schema is derived from their children.

A plan is a tuple of :class:`Sink` nodes (one per ``px.display``); the nodes below form a DAG in
which a shared sub-plan is the same object. Each node checks its own integrity when built and
raises a :class:`PlanError` a user can act on.

    Sink[output]
      Aggregate[groups=[req_path]; n=count(req_path)]
        Filter[resp_status >= 500]
          Scan[http_events]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import polars as pl

from engine.errors import PlanError, Span
from engine.exprs import AggCall, Expr, columns_of
from engine.types import ColumnType, DataType, Schema

__all__ = ["Relation", "Unary", "Scan", "Values", "Filter", "Map", "Project", "Aggregate", "Join", "Union", "Limit",
           "Sort", "Sink", "Plan", "JOIN_HOWS", "join_output_names"]

JOIN_HOWS = ("inner", "left", "right", "outer")


@dataclass(frozen=True, eq=False)
class Relation:
    """Base of plan nodes. Nodes compare by identity: a shared sub-plan is one object."""

    span: Span | None = field(default=None, compare=False, repr=False, kw_only=True)

    @property
    def children(self) -> tuple[Relation, ...]:
        return ()

    @cached_property
    def schema(self) -> Schema:  # pragma: no cover - every subclass defines it
        raise NotImplementedError

    def _need(self, names: set[str] | list[str] | tuple[str, ...], schema: Schema, what: str) -> None:
        missing = [n for n in names if n not in schema]
        if missing:
            raise PlanError(f"{what}: no column {missing[0]!r} (columns: {', '.join(schema.names)})",
                            self.span)


@dataclass(frozen=True, eq=False)
class Unary(Relation):
    """A node over one input; unless it says otherwise, its rows have the input's columns."""

    input: Relation

    @property
    def children(self) -> tuple[Relation, ...]:
        return (self.input,)

    @cached_property
    def schema(self) -> Schema:
        return self.input.schema


@dataclass(frozen=True, eq=False)
class Scan(Relation):
    """Read a table: only ``columns`` (all if None), only rows with start <= time_ < end.

    ``relative_to`` is the time (ns since the epoch) the window was resolved against when the
    script gave each of its bounds relative to the time it ran (``start_time='-5m'``): a plan
    reused later moves such a window along with the time (pxl/plancache.py). None otherwise."""

    table: str
    table_schema: Schema
    columns: tuple[str, ...] | None = None
    start: int | None = None  # ns since the epoch, inclusive
    end: int | None = None  # ns since the epoch, exclusive
    relative_to: int | None = None

    def __post_init__(self) -> None:
        if self.columns is not None:
            self._need(self.columns, self.table_schema, f"table {self.table}")
        if self.start is not None and self.end is not None and self.start > self.end:
            raise PlanError(f"table {self.table}: start_time is after end_time", self.span,
                            hint="swap start_time and end_time")

    @cached_property
    def schema(self) -> Schema:
        if self.columns is None:
            return self.table_schema
        return Schema(tuple((n, self.table_schema[n]) for n in self.columns))


@dataclass(frozen=True, eq=False)
class Values(Relation):
    """Rows known while compiling (px.GetTables(), px.GetSchemas()): an inline table."""

    name: str
    rows: pl.DataFrame
    row_schema: Schema

    def __post_init__(self) -> None:
        if self.rows.columns != self.row_schema.names:
            raise PlanError(f"{self.name}: the rows do not match their schema", self.span)

    @cached_property
    def schema(self) -> Schema:
        return self.row_schema


@dataclass(frozen=True, eq=False)
class Filter(Unary):
    predicate: Expr

    def __post_init__(self) -> None:
        self._need(columns_of(self.predicate), self.input.schema, "filter")
        if self.predicate.dtype is not DataType.BOOLEAN:
            raise PlanError(f"a filter needs a true/false condition, not {self.predicate.dtype}",
                            self.predicate.span or self.span,
                            hint="compare the column, e.g. df[df.x > 0]")


@dataclass(frozen=True, eq=False)
class Map(Unary):
    """Compute columns. With ``keep_input`` the input's columns stay (a new name is appended, an
    existing one replaced in place); without it only the computed columns remain, in order."""

    exprs: tuple[tuple[str, Expr], ...]
    keep_input: bool = True

    def __post_init__(self) -> None:
        for _, e in self.exprs:
            self._need(columns_of(e), self.input.schema, "assignment")
        names = [n for n, _ in self.exprs]
        if len(set(names)) != len(names):
            raise PlanError("a column is assigned twice in one step", self.span)


    @cached_property
    def schema(self) -> Schema:
        computed = {n: e.ctype for n, e in self.exprs}
        if not self.keep_input:
            return Schema(tuple(computed.items()))
        cols = [(n, computed.pop(n, t)) for n, t in self.input.schema.columns]
        return Schema(tuple(cols) + tuple(computed.items()))


@dataclass(frozen=True, eq=False)
class Project(Unary):
    """Keep only ``columns``, in that order."""

    columns: tuple[str, ...]

    def __post_init__(self) -> None:
        self._need(self.columns, self.input.schema, "select")
        if len(set(self.columns)) != len(self.columns):
            raise PlanError("a column is selected twice", self.span)


    @cached_property
    def schema(self) -> Schema:
        return Schema(tuple((n, self.input.schema[n]) for n in self.columns))


@dataclass(frozen=True, eq=False)
class Aggregate(Unary):
    """Group by ``groups`` (all rows if empty) and compute ``aggs``; no aggs gives the distinct groups."""

    groups: tuple[str, ...]
    aggs: tuple[AggCall, ...]

    def __post_init__(self) -> None:
        self._need(self.groups, self.input.schema, "groupby")
        for a in self.aggs:
            self._need(columns_of(a), self.input.schema, f"agg {a.name}")
        names = list(self.groups) + [a.name for a in self.aggs]
        dup = next((n for n in names if names.count(n) > 1), None)
        if dup is not None:
            raise PlanError(f"agg: the output column {dup!r} is named twice", self.span,
                            hint="give each aggregate a name that is not a group column")
        if not self.groups and not self.aggs:
            raise PlanError("agg needs at least one aggregate", self.span,
                            hint="e.g. df.agg(n=('time_', px.count))")


    @cached_property
    def schema(self) -> Schema:
        cols = [(g, self.input.schema[g]) for g in self.groups]
        cols += [(a.name, a.ctype) for a in self.aggs]
        return Schema(tuple(cols))


def join_output_names(left: Schema, right: Schema, suffixes: tuple[str, str]) -> tuple[list[str], list[str]]:
    """Output names of a join's left and right columns: names in both sides get the suffixes."""
    common = set(left.names) & set(right.names)
    lnames = [n + suffixes[0] if n in common else n for n in left.names]
    rnames = [n + suffixes[1] if n in common else n for n in right.names]
    return lnames, rnames


@dataclass(frozen=True, eq=False)
class Join(Relation):
    """Rows of left and right whose keys are equal. Every column of both sides is kept, in order,
    and a name found on both sides gets the side's suffix (as in Pixie: keys too). Inner and left
    joins keep the left side's row order."""

    left: Relation
    right: Relation
    how: str
    left_on: tuple[str, ...]
    right_on: tuple[str, ...]
    suffixes: tuple[str, str] = ("_x", "_y")

    def __post_init__(self) -> None:
        if self.how not in JOIN_HOWS:
            raise PlanError(f"merge: how={self.how!r} is not one of {', '.join(JOIN_HOWS)}",
                            self.span)
        if not self.left_on or len(self.left_on) != len(self.right_on):
            raise PlanError("merge: left_on and right_on need the same number of columns",
                            self.span)
        self._need(self.left_on, self.left.schema, "merge left_on")
        self._need(self.right_on, self.right.schema, "merge right_on")
        for lk, rk in zip(self.left_on, self.right_on, strict=True):
            lt, rt = self.left.schema[lk].dtype, self.right.schema[rk].dtype
            if lt != rt:
                raise PlanError(f"merge: key {lk!r} is {lt} but {rk!r} is {rt}", self.span,
                                hint="join on columns of the same type")
        names = [n for side in join_output_names(self.left.schema, self.right.schema,
                                                  self.suffixes) for n in side]
        dup = next((n for n in names if names.count(n) > 1), None)
        if dup is not None:
            raise PlanError(f"merge: the output would have two columns named {dup!r}", self.span,
                            hint="choose different suffixes, e.g. suffixes=['_x', '_y']")

    @property
    def children(self) -> tuple[Relation, ...]:
        return (self.left, self.right)

    @cached_property
    def schema(self) -> Schema:
        lnames, rnames = join_output_names(self.left.schema, self.right.schema, self.suffixes)
        cols = [(n, t) for n, (_, t) in zip(lnames, self.left.schema.columns, strict=True)]
        cols += [(n, t) for n, (_, t) in zip(rnames, self.right.schema.columns, strict=True)]
        return Schema(tuple(cols))


@dataclass(frozen=True, eq=False)
class Union(Relation):
    """Rows of all inputs, one after another; every input has the first one's columns."""

    inputs: tuple[Relation, ...]

    def __post_init__(self) -> None:
        first = self.inputs[0].schema
        for other in self.inputs[1:]:
            if [(n, t.dtype) for n, t in other.schema.columns] != \
                    [(n, t.dtype) for n, t in first.columns]:
                raise PlanError(
                    "append: the frames have different columns: "
                    f"[{_describe(first)}] and [{_describe(other.schema)}]", self.span,
                    hint="select the same columns, in the same order, on both sides")

    @property
    def children(self) -> tuple[Relation, ...]:
        return self.inputs

    @cached_property
    def schema(self) -> Schema:
        return self.inputs[0].schema


def _describe(schema: Schema) -> str:
    return ", ".join(f"{n}: {t.dtype}" for n, t in schema.columns)


@dataclass(frozen=True, eq=False)
class Limit(Unary):
    n: int

    def __post_init__(self) -> None:
        if self.n < 0:
            raise PlanError(f"head needs a count of 0 or more, not {self.n}", self.span)


@dataclass(frozen=True, eq=False)
class Sort(Unary):
    """Order rows by ``keys``; ties keep their input order (a stable sort). With ``limit``,
    only the first ``limit`` rows (a top-k, made by the optimizer from sort + head)."""

    keys: tuple[str, ...]
    descending: tuple[bool, ...]
    limit: int | None = None

    def __post_init__(self) -> None:
        self._need(self.keys, self.input.schema, "sort_values")
        if len(self.keys) != len(self.descending):
            raise PlanError("sort_values: give one ascending flag per column", self.span)
        for k in self.keys:
            if self.input.schema[k].dtype is DataType.QUANTILES:
                raise PlanError(f"sort_values: cannot sort by {k!r} (quantiles)", self.span,
                                hint="pluck one with px.pluck_float64(col, 'p99') first")


@dataclass(frozen=True, eq=False)
class Sink(Unary):
    """A named output of the script (``px.display``/``px.export``) with its display options."""

    name: str
    options: tuple[tuple[str, Any], ...] = ()


    def option(self, key: str, default: Any = None) -> Any:
        return dict(self.options).get(key, default)


@dataclass(frozen=True)
class Plan:
    """A compiled script: its outputs in the order they were displayed."""

    sinks: tuple[Sink, ...]

    def output_types(self) -> dict[str, dict[str, ColumnType]]:
        return {s.name: dict(s.schema.columns) for s in self.sinks}

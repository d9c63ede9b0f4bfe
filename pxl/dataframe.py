"""The DataFrame of PxL: each method adds one plan node.

A ``DataFrame`` value wraps a plan relation. Its methods check their arguments against the
relation's schema and return a new DataFrame; nothing runs until the script is executed. The
docstrings of the methods are the user's reference (docs/ is generated from them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from engine.errors import CompileError, PlanError, Span
from engine.exprs import AggCall, Call, ColumnRef, Expr
from engine.functions.metadata import CTX_KEYS
from engine.registry import REGISTRY, AggregateFunction, TypeMismatch
from engine.relations import (
    JOIN_HOWS,
    Aggregate,
    Filter,
    Join,
    Limit,
    Map,
    Project,
    Relation,
    Sort,
    Union,
)
from engine.types import DataType
from pxl.compiler import REQUIRED, Arg, closest
from pxl.values import BoundMethod, ColumnValue, PxFunction, describe_value, literal_of

if TYPE_CHECKING:
    from pxl.compiler import Compiler

__all__ = ["DataFrame", "Ctx", "GroupBy", "METHODS"]


def _plan(build, *args, **kwargs) -> Relation:
    """Build a node; its integrity errors become compile errors at the node's span."""
    try:
        return build(*args, **kwargs)
    except PlanError as exc:
        raise CompileError(exc.message, exc.span, hint=exc.hint) from None


def _names(c: Compiler, arg: Arg, what: str, *, allow_empty: bool = False) -> tuple[str, ...]:
    """A column name or a list of them."""
    value = arg.value
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list | tuple) or not all(isinstance(n, str) for n in names):
        raise CompileError(f"{what} takes a column name or a list of names, not "
                           f"{describe_value(value)}", arg.span)
    if not names and not allow_empty:
        raise CompileError(f"{what} needs at least one column", arg.span)
    return tuple(names)


@dataclass(frozen=True, eq=False)
class DataFrame:
    """A table being built by the script: a relation of the plan."""

    rel: Relation

    # --- attribute and subscript access -------------------------------------------------------
    def attribute(self, c: Compiler, name: str, span: Span) -> Any:
        if name == "ctx":
            return Ctx(self)
        if name in METHODS:
            return BoundMethod(self, name)
        return self.column(name, span)

    def column(self, name: str, span: Span) -> ColumnValue:
        """A column by name; a name the frame lacks but ``df.ctx`` knows resolves through it."""
        ctype = self.rel.schema.get(name)
        if ctype is None:
            via_ctx = self.ctx_column(name, span)
            if via_ctx is None:
                raise self.no_column(name, span)
            return via_ctx
        return ColumnValue(ColumnRef(name, ctype, span=span))

    def ctx_column(self, key: str, span: Span) -> ColumnValue | None:
        """``df.ctx[key]`` as a column expression, or None if the key or the upid is missing."""
        spec = CTX_KEYS.get(key)
        upid = self.rel.schema.get("upid")
        if spec is None or upid is None or upid.dtype is not DataType.STRING:
            return None
        fn = REGISTRY.scalar(spec.function)
        return ColumnValue(Call(fn.name, (ColumnRef("upid", upid, span=span),),
                                fn.resolve([upid]), span=span))

    def with_ctx(self, names: tuple[str, ...], span: Span) -> DataFrame:
        """This frame plus a column for each name it lacks but df.ctx knows (groupby('pod'))."""
        exprs = []
        for n in names:
            if n not in self.rel.schema:
                col = self.ctx_column(n, span)
                if col is not None:
                    exprs.append((n, col.expr))
        if not exprs:
            return self
        return DataFrame(_plan(Map, self.rel, tuple(exprs), span=span))

    def no_column(self, name: str, span: Span) -> CompileError:
        names = self.rel.schema.names
        hint = closest(name, names)
        listing = ", ".join(names) if len(names) <= 30 else ", ".join(names[:30]) + ", …"
        return CompileError(f"no column {name!r} in this DataFrame", span,
                            hint=f"{hint + ' ' if hint else ''}columns: {listing}")

    def check(self, expr: Expr, span: Span) -> None:
        """Every column the expression reads exists here, with the type it was built with."""
        for e in expr.walk():
            if isinstance(e, ColumnRef):
                have = self.rel.schema.get(e.name)
                if have is None:
                    raise self.no_column(e.name, e.span or span)
                if have.dtype != e.ctype.dtype:
                    raise CompileError(
                        f"column {e.name!r} is {have.dtype} here but was {e.ctype.dtype} where "
                        "the expression was written", e.span or span,
                        hint="build the expression from this DataFrame's columns")

    def subscript(self, c: Compiler, index: Arg, span: Span) -> Any:
        """``df['col']`` a column; ``df[['a', 'b']]`` those columns; ``df[cond]`` matching rows."""
        value = index.value
        if isinstance(value, str):
            return self.column(value, index.span)
        if isinstance(value, list):
            names = _names(c, index, "selecting columns")
            frame = self.with_ctx(names, index.span)
            for n in names:
                if n not in frame.rel.schema:
                    raise self.no_column(n, index.span)
            return DataFrame(_plan(Project, frame.rel, names, span=span))
        if isinstance(value, ColumnValue):
            self.check(value.expr, index.span)
            if value.ctype.dtype is not DataType.BOOLEAN:
                raise CompileError(f"a filter needs a true/false condition, not "
                                   f"{describe_value(value)}", index.span,
                                   hint="compare the column, e.g. df[df.resp_status >= 500]")
            return DataFrame(_plan(Filter, self.rel, value.expr, span=span))
        if isinstance(value, bool):
            return self if value else self.head(c, [Arg(0, index.span)], {}, span)
        raise CompileError(f"cannot index a DataFrame with {describe_value(value)}", index.span,
                           hint="use df['col'], df[['a', 'b']] or df[df.x > 0]")

    def with_column(self, c: Compiler, name: str, value: Arg, span: Span) -> DataFrame:
        """``df.x = expr`` / ``df['x'] = expr``: add or replace a column."""
        if name.startswith("__"):
            raise CompileError(f"column names starting with '__' are reserved: {name!r}", span)
        if name in METHODS:
            raise CompileError(f"{name!r} is a DataFrame method, not a column name", span,
                               hint=f"use df[{name!r}] = ... to name a column like a method")
        if isinstance(value.value, ColumnValue):
            expr = value.value.expr
            self.check(expr, value.span)
        else:
            lit = literal_of(value.value, value.span)
            if lit is None:
                raise CompileError(f"cannot store {describe_value(value.value)} in a column",
                                   value.span, hint="assign a column expression or a constant")
            expr = lit
        return DataFrame(_plan(Map, self.rel, ((name, expr),), span=span))

    # --- methods --------------------------------------------------------------------------------
    def call_method(self, c: Compiler, name: str, args: list[Arg], kwargs: dict[str, Arg],
                    span: Span) -> Any:
        return METHODS[name](self, c, args, kwargs, span)

    def head(self, c: Compiler, args, kwargs, span) -> DataFrame:
        """``df.head(n=5)``: the first n rows."""
        a = c.bind("head", args, kwargs, [("n", 5)], span)["n"]
        if not isinstance(a.value, int) or isinstance(a.value, bool) or a.value < 0:
            raise CompileError(f"head needs a count of 0 or more, not {a.value!r}", a.span)
        return DataFrame(_plan(Limit, self.rel, a.value, span=span))

    def drop(self, c: Compiler, args, kwargs, span) -> DataFrame:
        """``df.drop('col')`` or ``df.drop(['a', 'b'])``: every column but these."""
        a = c.bind("drop", args, kwargs, [("columns", REQUIRED)], span)["columns"]
        names = _names(c, a, "drop")
        for n in names:
            if n not in self.rel.schema:
                raise self.no_column(n, a.span)
        keep = tuple(n for n in self.rel.schema.names if n not in names)
        if not keep:
            raise CompileError("drop would leave no columns", a.span)
        return DataFrame(_plan(Project, self.rel, keep, span=span))

    def groupby(self, c: Compiler, args, kwargs, span) -> GroupBy:
        """``df.groupby('col')`` or ``df.groupby(['a', 'b'])``: groups for ``.agg(...)``."""
        a = c.bind("groupby", args, kwargs, [("by", REQUIRED)], span)["by"]
        names = _names(c, a, "groupby")
        frame = self.with_ctx(names, a.span)
        for n in names:
            if n not in frame.rel.schema:
                raise self.no_column(n, a.span)
            if frame.rel.schema[n].dtype is DataType.QUANTILES:
                raise CompileError(f"cannot group by {n!r} (quantiles)", a.span)
        return GroupBy(frame, names)

    def agg(self, c: Compiler, args, kwargs, span) -> DataFrame:
        """``df.agg(n=('latency', px.count))``: aggregate all rows into one."""
        return _aggregate(c, self, (), args, kwargs, span)

    def merge(self, c: Compiler, args, kwargs, span) -> DataFrame:
        """``df.merge(right, how='inner', left_on=..., right_on=..., suffixes=['_x', '_y'])``.

        Joins rows whose key columns are equal. ``how`` is inner, left, right or outer. All columns
        of both sides are kept; a name on both sides gets the suffix of its side (keys too, as in
        Pixie). Inner and left merges keep the left frame's row order."""
        b = c.bind("merge", args, kwargs, [("right", REQUIRED), ("how", "inner"),
                                           ("left_on", REQUIRED), ("right_on", REQUIRED),
                                           ("suffixes", ["_x", "_y"])], span)
        right = b["right"].value
        if not isinstance(right, DataFrame):
            raise CompileError(f"merge needs a DataFrame to join with, not {describe_value(right)}",
                               b["right"].span)
        how = b["how"].value
        if how not in JOIN_HOWS:
            raise CompileError(f"merge: how={how!r} is not one of {', '.join(JOIN_HOWS)}",
                               b["how"].span)
        left_on, right_on = _names(c, b["left_on"], "left_on"), _names(c, b["right_on"], "right_on")
        for n in left_on:
            if n not in self.rel.schema:
                raise self.no_column(n, b["left_on"].span)
        for n in right_on:
            if n not in right.rel.schema:
                raise right.no_column(n, b["right_on"].span)
        sfx = b["suffixes"].value
        if not (isinstance(sfx, list | tuple) and len(sfx) == 2
                and all(isinstance(s, str) for s in sfx)):
            raise CompileError("suffixes must be two strings, e.g. ['_x', '_y']", b["suffixes"].span)
        return DataFrame(_plan(Join, self.rel, right.rel, how, left_on, right_on, tuple(sfx),
                               span=span))

    def append(self, c: Compiler, args, kwargs, span) -> DataFrame:
        """``df.append(other)`` or ``df.append([a, b])``: the rows of all frames, in order."""
        a = c.bind("append", args, kwargs, [("objs", REQUIRED)], span)["objs"]
        others = a.value if isinstance(a.value, list | tuple) else [a.value]
        if not others or not all(isinstance(o, DataFrame) for o in others):
            raise CompileError("append takes a DataFrame or a list of DataFrames", a.span)
        return DataFrame(_plan(Union, (self.rel, *(o.rel for o in others)), span=span))

    def sort_values(self, c: Compiler, args, kwargs, span) -> DataFrame:
        """``df.sort_values('latency', ascending=False)``; by several columns with lists. Stable."""
        b = c.bind("sort_values", args, kwargs, [("by", REQUIRED), ("ascending", True)], span)
        keys = _names(c, b["by"], "sort_values")
        frame = self.with_ctx(keys, b["by"].span)
        for k in keys:
            if k not in frame.rel.schema:
                raise self.no_column(k, b["by"].span)
        asc = b["ascending"].value
        flags = [asc] * len(keys) if isinstance(asc, bool) else asc
        if not isinstance(flags, list | tuple) or len(flags) != len(keys) or \
                not all(isinstance(f, bool) for f in flags):
            raise CompileError("ascending must be True/False or one per column",
                               b["ascending"].span)
        return DataFrame(_plan(Sort, frame.rel, keys, tuple(not f for f in flags), span=span))


@dataclass(frozen=True, eq=False)
class Ctx:
    """``df.ctx``: metadata of each row's process, by key: ``df.ctx['service']``.

    Keys (with Pixie's aliases): upid, pid, cmdline (cmd), hostname (host), container
    (container_name), container_id, pod (pod_name), service (service_name), namespace, node
    (node_name), deployment, replicaset. Unknown processes give an empty string."""

    frame: DataFrame

    def subscript(self, c: Compiler, index: Arg, span: Span) -> ColumnValue:
        key = index.value
        if not isinstance(key, str):
            raise CompileError(f"df.ctx takes a string key, not {describe_value(key)}", index.span)
        if key == "upid":
            return self.frame.column("upid", index.span)
        if "upid" not in self.frame.rel.schema:
            raise CompileError("df.ctx needs a 'upid' column to look metadata up", span,
                               hint="keep the upid column (e.g. in select=[...]) until ctx is used")
        col = self.frame.ctx_column(key, index.span)
        if col is None:
            keys = ", ".join(sorted(CTX_KEYS))
            raise CompileError(f"df.ctx has no key {key!r}", index.span,
                               hint=f"{closest(key, list(CTX_KEYS)) or ''} keys: {keys}".strip())
        return col


@dataclass(frozen=True, eq=False)
class GroupBy:
    """``df.groupby(...)``: waits for ``.agg(...)``."""

    frame: DataFrame
    groups: tuple[str, ...]

    def attribute(self, c: Compiler, name: str, span: Span) -> Any:
        if name == "agg":
            return BoundMethod(self, name)
        raise CompileError(f"a grouped DataFrame has no attribute {name!r}", span,
                           hint="call .agg(name=(column, px.fn), ...) on it")

    def call_method(self, c: Compiler, name: str, args, kwargs, span) -> DataFrame:
        return _aggregate(c, self.frame, self.groups, args, kwargs, span)


def _aggregate(c: Compiler, frame: DataFrame, groups: tuple[str, ...], args: list[Arg],
               kwargs: dict[str, Arg], span: Span) -> DataFrame:
    if args:
        raise CompileError("agg takes keyword arguments: name=(column, px.fn)", args[0].span,
                           hint="e.g. .agg(n=('latency', px.count), p99=('latency', px.quantile, 0.99))")
    aggs = tuple(_agg_call(c, frame, name, arg) for name, arg in kwargs.items())
    if not aggs and not groups:
        raise CompileError("agg needs at least one aggregate", span,
                           hint="e.g. df.agg(n=('time_', px.count))")
    return DataFrame(_plan(Aggregate, frame.rel, groups, aggs, span=span))


def _agg_call(c: Compiler, frame: DataFrame, name: str, arg: Arg) -> AggCall:
    spec = arg.value
    usage = "write name=('column', px.fn) or name=('column', px.quantile, 0.99)"
    if not isinstance(spec, tuple) or len(spec) < 2 or not isinstance(spec[0], str):
        raise CompileError(f"agg {name}: expected a tuple (column, function), not "
                           f"{describe_value(spec)}", arg.span, hint=usage)
    column, fnv, *params = spec
    if not isinstance(fnv, PxFunction) or not isinstance(fnv.fn, AggregateFunction):
        aggs = ", ".join(f"px.{n}" for n in sorted(REGISTRY.aggregates))
        raise CompileError(f"agg {name}: {describe_value(fnv)} is not an aggregate", arg.span,
                           hint=f"aggregates: {aggs}")
    fn = fnv.fn
    col = frame.column(column, arg.span)
    if len(params) != len(fn.params):
        want = ", ".join(p for p, _ in fn.params) or "none"
        raise CompileError(f"agg {name}: px.{fn.name} takes {len(fn.params)} parameter(s) after "
                           f"the column ({want}), got {len(params)}", arg.span, hint=usage)
    for value, (pname, ptype) in zip(params, fn.params, strict=True):
        ok = isinstance(value, ptype) or (ptype is float and isinstance(value, int))
        if not ok or isinstance(value, bool):
            raise CompileError(f"agg {name}: {pname} must be a {ptype.__name__}", arg.span)
    if fn.name == "quantile" and not 0 <= params[0] <= 1:
        raise CompileError(f"agg {name}: q must be between 0 and 1, not {params[0]}", arg.span)
    try:
        ctype = fn.resolve([col.ctype])
    except TypeMismatch:
        fits = [f"px.{n}" for n, a in sorted(REGISTRY.aggregates.items())
                if not a.params
                and any(sg.bind([col.ctype.dtype]) is not None for sg in a.signatures)]
        raise CompileError(f"agg {name}: px.{fn.name} cannot aggregate {column!r} "
                           f"({col.ctype.dtype})", arg.span,
                           hint=f"aggregates that take it: {', '.join(fits)}" if fits else None
                           ) from None
    return AggCall(name, fn.name, col.expr, tuple(float(p) for p in params), ctype, span=arg.span)


METHODS = {
    "head": DataFrame.head,
    "drop": DataFrame.drop,
    "groupby": DataFrame.groupby,
    "agg": DataFrame.agg,
    "merge": DataFrame.merge,
    "append": DataFrame.append,
    "sort_values": DataFrame.sort_values,
}

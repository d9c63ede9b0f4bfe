"""Operators (+ - * / % comparisons and/or/not), also callable as px.add, px.equal, ….

Names follow Pixie's (px.add, px.subtract, px.greaterThanEqual, px.logicalAnd …).
Time arithmetic works on nanoseconds: time ± int → time, time − time → int (a duration).
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence

import polars as pl

from engine.registry import REGISTRY, CallArgs, ScalarFunction, first_semantic, no_semantic, sig
from engine.types import ColumnType, DataType, SemanticType

_NUM = ("INT64, INT64 -> INT64", "FLOAT64, FLOAT64 -> FLOAT64")


def _on_ns(op: Callable[[pl.Expr, pl.Expr], pl.Expr]):
    """Apply op to the arguments, computing on int64 nanoseconds when a time is involved."""

    def build(a: CallArgs) -> pl.Expr:
        args, types = a.exprs, a.types
        if any(t.dtype is DataType.TIME64NS for t in types):
            both_times = all(t.dtype is DataType.TIME64NS for t in types)
            if both_times and op in _TIME_NATIVE:
                return op(args[0], args[1])
            ints = [a.cast(pl.Int64) if t.dtype is DataType.TIME64NS else a
                    for a, t in zip(args, types, strict=True)]
            return op(ints[0], ints[1])
        return op(args[0], args[1])

    return build


def _to_time(build):
    def wrapped(a: CallArgs) -> pl.Expr:
        out = build(a)
        n_times = sum(t.dtype is DataType.TIME64NS for t in a.types)
        return out.cast(pl.Datetime("ns")) if n_times == 1 else out

    return wrapped


def _time_diff_semantic(types: Sequence[ColumnType]) -> SemanticType:
    if all(t.dtype is DataType.TIME64NS for t in types):
        return SemanticType.DURATION_NS
    return first_semantic(types)


_TIME_NATIVE = {operator.eq, operator.ne, operator.lt, operator.le, operator.gt, operator.ge}


def _div(a: CallArgs) -> pl.Expr:
    return a[0].cast(pl.Float64) / a[1].cast(pl.Float64)


def _fold_div(a, b):
    return a / b


def _arith(name, symbol, op, signatures, semantic=first_semantic, polars=None):
    REGISTRY.add(ScalarFunction(
        name, sig(*signatures), f"a {symbol} b", semantic=semantic, category="operators",
        polars=polars or _to_time(_on_ns(op)), symbol=symbol, fold=op))


_arith("add", "+", operator.add, _NUM + ("TIME64NS, INT64 -> TIME64NS", "INT64, TIME64NS -> TIME64NS",
                                         "STRING, STRING -> STRING"))
_arith("subtract", "-", operator.sub, _NUM + ("TIME64NS, INT64 -> TIME64NS",
                                              "TIME64NS, TIME64NS -> INT64"),
       semantic=_time_diff_semantic)
_arith("multiply", "*", operator.mul, _NUM, semantic=no_semantic)
_arith("modulo", "%", operator.mod, _NUM, semantic=no_semantic)
REGISTRY.add(ScalarFunction(
    "divide", sig("FLOAT64, FLOAT64 -> FLOAT64"), "a / b; always a FLOAT64, as in Pixie",
    category="operators", polars=_div, symbol="/", fold=_fold_div))

_COMPARABLE = ("INT64, INT64 -> BOOLEAN", "FLOAT64, FLOAT64 -> BOOLEAN", "STRING, STRING -> BOOLEAN",
               "TIME64NS, TIME64NS -> BOOLEAN", "TIME64NS, INT64 -> BOOLEAN",
               "INT64, TIME64NS -> BOOLEAN", "BOOLEAN, BOOLEAN -> BOOLEAN")
for _name, _symbol, _op in (("equal", "==", operator.eq), ("notEqual", "!=", operator.ne),
                            ("lessThan", "<", operator.lt), ("lessThanEqual", "<=", operator.le),
                            ("greaterThan", ">", operator.gt),
                            ("greaterThanEqual", ">=", operator.ge)):
    REGISTRY.add(ScalarFunction(
        _name, sig(*_COMPARABLE), f"a {_symbol} b", category="operators",
        polars=_on_ns(_op), symbol=_symbol, fold=_op))

REGISTRY.add(ScalarFunction(
    "logicalAnd", sig("BOOLEAN, BOOLEAN -> BOOLEAN"), "a and b", category="operators",
    polars=lambda a: a[0] & a[1], symbol="and", fold=lambda a, b: a and b))
REGISTRY.add(ScalarFunction(
    "logicalOr", sig("BOOLEAN, BOOLEAN -> BOOLEAN"), "a or b", category="operators",
    polars=lambda a: a[0] | a[1], symbol="or", fold=lambda a, b: a or b))
REGISTRY.add(ScalarFunction(
    "logicalNot", sig("BOOLEAN -> BOOLEAN"), "not a", category="operators",
    polars=lambda a: ~a[0], symbol="not ", fold=operator.not_))
REGISTRY.add(ScalarFunction(
    "negate", sig("INT64 -> INT64", "FLOAT64 -> FLOAT64"), "-a", semantic=first_semantic,
    category="operators", polars=lambda a: -a[0], symbol="-", fold=operator.neg))

"""Shared pieces of the function modules: Python per distinct value, and folding through Polars.

Where a function cannot be written as Polars expressions (a Luhn check, SQL normalisation), its
Python body runs once per *distinct* value of a batch, and the results are mapped back onto
the rows by Polars. Where a function's exact behaviour is Polars' own (JSON paths, regexes), its
constant folding evaluates the same translation on literals, so that a folded call and a call on
a column never disagree.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import polars as pl

from engine.registry import CallArgs
from engine.types import ColumnType, DataType, SemanticType

__all__ = ["per_value", "per_row", "polars_fold", "first_arg_semantic", "null_if_any_null"]


def _mapper(fn: Callable[[Any], Any], dtype: pl.DataType,
            candidates: str | None) -> Callable[[pl.Series], pl.Series]:
    def run(s: pl.Series) -> pl.Series:
        if candidates is not None and s.dtype == pl.String:
            # values that cannot need changing (no match of ``candidates``) pass through as is
            distinct = s.filter(s.str.contains(candidates)).unique()
            out = pl.Series([fn(v) for v in distinct.to_list()], dtype=dtype)
            return s.replace(distinct, out)
        distinct = s.drop_nulls().unique()
        out = pl.Series([fn(v) for v in distinct.to_list()], dtype=dtype)
        return s.replace_strict(distinct, out, default=None, return_dtype=dtype)

    return run


def per_value(expr: pl.Expr, fn: Callable[[Any], Any], dtype: pl.DataType, *,
              candidates: str | None = None) -> pl.Expr:
    """``fn`` (never given None) once per distinct non-null value of ``expr``; null stays null.

    With ``candidates`` (a regex), only values matching it are given to ``fn``; the others are
    returned unchanged (so ``dtype`` must then be the input's)."""
    return expr.map_batches(_mapper(fn, dtype, candidates), return_dtype=dtype,
                            is_elementwise=True)


def per_row(exprs: Sequence[pl.Expr], fn: Callable[..., Any], dtype: pl.DataType) -> pl.Expr:
    """``fn(*values)`` once per distinct tuple of argument values; null if any argument is null."""
    names = [f"a{i}" for i in range(len(exprs))]

    def run(s: pl.Series) -> pl.Series:
        rows = s.struct.unnest()
        distinct = rows.drop_nulls().unique()
        out = pl.Series("__out", [fn(*row) for row in distinct.iter_rows()], dtype=dtype)
        mapped = rows.join(distinct.with_columns(out), on=names, how="left", nulls_equal=True,
                           maintain_order="left")
        return mapped["__out"]

    packed = pl.struct([e.alias(n) for e, n in zip(exprs, names, strict=True)])
    return packed.map_batches(run, return_dtype=dtype, is_elementwise=True)


_PL = {bool: pl.Boolean, int: pl.Int64, float: pl.Float64, str: pl.String}
_DT = {bool: DataType.BOOLEAN, int: DataType.INT64, float: DataType.FLOAT64, str: DataType.STRING}


def polars_fold(build: Callable[[CallArgs], pl.Expr]) -> Callable[..., Any]:
    """A ``fold`` that evaluates the function's own Polars translation on the constant values."""

    def fold(*values: Any) -> Any:
        types = [type(v) for v in values]
        if not all(t in _PL for t in types):
            raise TypeError("only scalar constants are folded")
        exprs = [pl.lit(v, dtype=_PL[t]) for v, t in zip(values, types, strict=True)]
        ctypes = [ColumnType(_DT[t]) for t in types]
        return pl.select(build(CallArgs(exprs, ctypes, list(values))).alias("v")).item()

    return fold


def first_arg_semantic(types: Sequence[ColumnType]) -> SemanticType:
    """The result means what the first argument means (abs, ceil, any …)."""
    return types[0].semantic if types[0].semantic is not SemanticType.TIME else SemanticType.NONE


def null_if_any_null(result: pl.Expr, *args: pl.Expr) -> pl.Expr:
    """``result`` where every argument is non-null, else null."""
    cond = args[0].is_null()
    for a in args[1:]:
        cond = cond | a.is_null()
    return pl.when(cond).then(None).otherwise(result)

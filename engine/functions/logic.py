"""Logic functions: px.equals_any. (``px.select`` lives in scalars.py.)

``px.equals_any(value, [a, b, c])`` takes its list as a compile-time constant: the compiler
turns a list written at a constant-argument position into a list literal, typed by its elements.
Pixie expands the call into ``value == a or value == b or …``; pxl runs one set lookup (is_in).
"""

from __future__ import annotations

from typing import Any

import polars as pl

from engine.registry import REGISTRY, ArgumentError, CallArgs, ScalarFunction, sig
from engine.types import DataType


def _values(consts: list[Any]) -> list[Any]:
    values = consts[1]
    if values is not None and not isinstance(values, tuple | list):
        raise ArgumentError(1, "give the values to compare with as a list, e.g. ['a', 'b']")
    return consts


def _equals_any(a: CallArgs) -> pl.Expr:
    values = list(a.consts[1])
    value_type, list_type = a.types[0].dtype, a.types[1].dtype
    if DataType.FLOAT64 in (value_type, list_type):
        dtype: pl.DataType = pl.Float64()
        values = [float(v) for v in values]
    else:
        dtype = value_type.polars
    column = a[0].cast(dtype) if dtype == pl.Float64 else a[0]
    return column.is_in(pl.lit(pl.Series(values, dtype=dtype)).implode())


REGISTRY.add(ScalarFunction(
    "equals_any", sig("T, T -> BOOLEAN"),
    "Whether the value equals any element of the list (a constant list of one type): "
    "px.equals_any(df.resp_status, [500, 503]).",
    category="logic", polars=_equals_any, literal_args=(1,), normalize=_values,
    fold=lambda value, values: value in values,
    examples=("df = df[px.equals_any(df.req_method, ['POST', 'PUT'])]",)))

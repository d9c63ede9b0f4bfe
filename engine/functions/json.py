"""JSON functions (Pixie's json_ops): pluck, pluck_int64, pluck_float64 and pluck_array.

As in Pixie, a missing key, a JSON null, a value of another kind or text that is not JSON gives
'' / 0 / 0.0 rather than an error; a null input gives null. Values are read with Polars'
JSON paths, so a number written inside a JSON string ("5") is read as a number too (Pixie
gives 0 there, and 0.0 for px.pluck_float64 of an integer such as 200, which pxl reads as 200.0).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import polars as pl

from engine.functions.helpers import polars_fold
from engine.registry import REGISTRY, ArgumentError, CallArgs, ScalarFunction, sig
from engine.types import QUANTILE_KEYS, ColumnType, DataType, SemanticType


def _key_path(key: str) -> str:
    escaped = key.replace("\\", "\\\\").replace("'", "\\'")
    return f"$['{escaped}']"


def _string_key(position: int):
    def normalize(consts: list[Any]) -> list[Any]:
        if consts[position] is not None and not isinstance(consts[position], str):
            raise ArgumentError(position, "the key must be a string")
        return consts

    return normalize


def _match(a: CallArgs, path: str) -> pl.Expr:
    return a[0].str.json_path_match(path)


def _or_default(a: CallArgs, value: pl.Expr, default: Any, dtype: pl.DataType) -> pl.Expr:
    return pl.when(a[0].is_null()).then(None).otherwise(
        value.fill_null(pl.lit(default, dtype=dtype)))


def _pluck(a: CallArgs) -> pl.Expr:
    return _or_default(a, _match(a, _key_path(a.consts[1])), "", pl.String)


def _pluck_int64(a: CallArgs) -> pl.Expr:
    value = _match(a, _key_path(a.consts[1])).str.to_integer(base=10, strict=False)
    return _or_default(a, value, 0, pl.Int64)


def _pluck_float64(a: CallArgs) -> pl.Expr:
    key = a.consts[1]
    if a.types[0].dtype is DataType.QUANTILES:
        if key not in QUANTILE_KEYS:
            raise ValueError(f"px.quantiles has no {key!r}; it has {', '.join(QUANTILE_KEYS)}")
        return a[0].struct.field(key)
    value = _match(a, _key_path(key)).cast(pl.Float64, strict=False)
    return _or_default(a, value, 0.0, pl.Float64)


def _pluck_semantic(types: Sequence[ColumnType]) -> SemanticType:
    if types[0].semantic is SemanticType.DURATION_NS_QUANTILES:
        return SemanticType.DURATION_NS
    return SemanticType.NONE


def _pluck_array(a: CallArgs) -> pl.Expr:
    index = a.consts[1]
    if index < 0:
        return pl.when(a[0].is_null()).then(None).otherwise(pl.lit("", dtype=pl.String))
    return _or_default(a, _match(a, f"$[{index}]"), "", pl.String)


REGISTRY.add(ScalarFunction(
    "pluck", sig("STRING, STRING -> STRING"),
    "The value under a key (a constant) of a JSON object, as a string: strings unquoted, other "
    "values as compact JSON; '' if the key is missing or the text is not a JSON object.",
    category="json", polars=_pluck, literal_args=(1,), normalize=_string_key(1),
    fold=polars_fold(_pluck),
    examples=("df.host = px.pluck(df.req_headers, 'Host')",)))

REGISTRY.add(ScalarFunction(
    "pluck_int64", sig("STRING, STRING -> INT64"),
    "The integer under a key (a constant) of a JSON object; 0 if it is missing or not an "
    "integer.",
    category="json", polars=_pluck_int64, literal_args=(1,), normalize=_string_key(1),
    fold=polars_fold(_pluck_int64),
    examples=("df.rcode = px.pluck_int64(df.resp_header, 'rcode')",)))

REGISTRY.add(ScalarFunction(
    "pluck_float64", sig("QUANTILES, STRING -> FLOAT64", "STRING, STRING -> FLOAT64"),
    "The number under a key (a constant) of a JSON object (0.0 if missing or not a number), or "
    "of px.quantiles' result, e.g. 'p99'.",
    semantic=_pluck_semantic, category="json", polars=_pluck_float64, literal_args=(1,),
    normalize=_string_key(1), fold=polars_fold(_pluck_float64),
    examples=("df.p99 = px.pluck_float64(df.latency_quantiles, 'p99')",
              "df.cost = px.pluck_float64(df.resp_body, 'cost_cents')")))

REGISTRY.add(ScalarFunction(
    "pluck_array", sig("STRING, INT64 -> STRING"),
    "The element at an index (a constant, from 0) of a JSON array, as a string (strings "
    "unquoted); '' if the index is out of range or the text is not a JSON array.",
    category="json", polars=_pluck_array, literal_args=(1,), fold=polars_fold(_pluck_array),
    examples=("df.first_part = px.pluck_array(px.split(df.req_path, '/'), 1)",)))

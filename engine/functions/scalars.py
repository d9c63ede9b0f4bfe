"""Scalar functions over columns: time bins, contains and select.

(The JSON plucks live in json.py, other string functions in strings.py, the semantic-type casts
such as px.DurationNanos in semantic.py.)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import polars as pl

from engine.registry import REGISTRY, ArgumentError, CallArgs, ScalarFunction, first_semantic, sig
from engine.timeutil import DURATION_FORMS, parse_duration
from engine.types import ColumnType, DataType, SemanticType


def _duration_arg(position: int):
    def normalize(consts: list[Any]) -> list[Any]:
        value = consts[position]
        if isinstance(value, str):
            try:
                consts = list(consts)
                consts[position] = parse_duration(value)
            except ValueError:
                raise ArgumentError(position, f"{value!r} is not a duration; use {DURATION_FORMS}") \
                    from None
        return consts

    return normalize


def _bin(a: CallArgs) -> pl.Expr:
    size = a.consts[1]
    if not isinstance(size, int) or size <= 0:
        raise ValueError(f"the bin size must be a positive number of nanoseconds, not {size!r}")
    if a.types[0].dtype is DataType.TIME64NS:
        ns = a[0].cast(pl.Int64)
        return (ns - ns % size).cast(pl.Datetime("ns"))
    return a[0] - a[0] % size


def _first_arg_semantic(types: Sequence[ColumnType]) -> SemanticType:
    return types[0].semantic


REGISTRY.add(ScalarFunction(
    "bin", sig("TIME64NS, INT64 -> TIME64NS", "INT64, INT64 -> INT64"),
    "Rounds a time (or number) down to a multiple of size: px.bin(df.time_, '1m'). The size is "
    "a duration string ('10s', '1m', '1h'), an int of nanoseconds or px.seconds(n) and the like.",
    semantic=_first_arg_semantic, category="time", polars=_bin, literal_args=(1,),
    normalize=_duration_arg(1), examples=("df.timestamp = px.bin(df.time_, '10s')",)))

REGISTRY.add(ScalarFunction(
    "contains", sig("STRING, STRING -> BOOLEAN"),
    "Whether the string contains the substring (literal match, case-sensitive).",
    category="strings",
    polars=lambda a: a[0].str.contains(a.consts[1], literal=True) if isinstance(a.consts[1], str)
    else a[0].str.contains(a[1], literal=True),
    fold=lambda s, sub: sub in s, examples=("df = df[px.contains(df.req_path, '/api')]",)))


def _select_semantic(types: Sequence[ColumnType]) -> SemanticType:
    return first_semantic(types[1:])


REGISTRY.add(ScalarFunction(
    "select", sig("BOOLEAN, T, T -> T"),
    "Per row: the second argument where the condition holds, else the third.",
    semantic=_select_semantic, category="logic",
    polars=lambda a: pl.when(a[0]).then(a[1]).otherwise(a[2]),
    fold=lambda c, x, y: x if c else y,
    examples=("df.failure = px.select(df.resp_status >= 400, 1, 0)",)))


"""Time functions: time_to_int64 / int64_to_time on columns, and Pixie's compile-time
parse_duration, format_duration, parse_time and strptime.

The compile-time ones are, as in Pixie, evaluated while compiling (their arguments must be
constants) and return plain values: ``px.parse_duration('5m')`` is the int 300000000000,
``px.parse_time('-5m')`` a time five minutes before the script's "now".
(``px.now`` and ``px.minutes`` & co live in compile_time.py, ``px.bin`` in scalars.py.)
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

import polars as pl

from engine.registry import REGISTRY, ArgumentError, CompileTimeFunction, ScalarFunction, sig
from engine.timeutil import DURATION_FORMS, TIME_FORMS, parse_duration, parse_time

REGISTRY.add(ScalarFunction(
    "time_to_int64", sig("TIME64NS -> INT64"), "A time as an int of nanoseconds since the epoch.",
    category="time", polars=lambda a: a[0].cast(pl.Int64), fold=lambda t: t,
    examples=("df.ns = px.time_to_int64(df.time_)",)))
REGISTRY.add(ScalarFunction(
    "int64_to_time", sig("INT64 -> TIME64NS"), "An int of nanoseconds since the epoch as a time.",
    category="time", polars=lambda a: a[0].cast(pl.Datetime("ns")), fold=lambda n: n,
    examples=("df.started = px.int64_to_time(px.time_to_int64(df.time_) - df.latency)",)))


def _time(ctx: Any, ns: int) -> Any:
    """A compile-time time value: the compiler's own kind (that of ``px.now()``)."""
    return dataclasses.replace(ctx.now_time(), ns=ns)


def _parse_duration(ctx: Any, text: str) -> int:
    try:
        return parse_duration(text)
    except ValueError:
        raise ArgumentError(0, f"{text!r} is not a duration; use {DURATION_FORMS}") from None


_UNITS = (("d", 86_400_000_000_000), ("h", 3_600_000_000_000), ("m", 60_000_000_000),
          ("s", 1_000_000_000))


def format_duration(ns: int) -> str:
    """Pixie's form: whole days, hours, minutes, seconds or else milliseconds, rounded toward 0."""
    sign, n = ("-" if ns < 0 else ""), abs(ns)
    for unit, size in _UNITS:
        if n >= size:
            return f"{sign}{n // size}{unit}"
    return f"{sign}{n // 1_000_000}ms"


_ABSOLUTE = ("%Y-%m-%d %H:%M:%S %z", "%Y-%m-%d %H:%M:%S.%f %z")


def _parse_time(ctx: Any, value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        return _time(ctx, value)
    if not isinstance(value, str):
        return value  # already a time
    now = ctx.now_time().ns
    text = value.strip()
    try:
        return _time(ctx, now + parse_duration(text))
    except ValueError:
        pass
    try:
        return _time(ctx, parse_time(text, now))
    except ValueError:
        pass
    for fmt in _ABSOLUTE:
        try:
            return _time(ctx, _to_ns(datetime.strptime(text, fmt)))
        except ValueError:
            continue
    raise ArgumentError(0, f"{value!r} is not a time; use " + "; or ".join(TIME_FORMS[:3]))


def _to_ns(dt: datetime) -> int:
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.replace(microsecond=0).timestamp()) * 1_000_000_000 + dt.microsecond * 1_000


def _strptime(ctx: Any, text: str, fmt: str) -> Any:
    try:
        return _time(ctx, _to_ns(datetime.strptime(text, fmt)))
    except ValueError as exc:
        raise ArgumentError(0, f"{text!r} does not match the format {fmt!r}: {exc}") from None


REGISTRY.add(CompileTimeFunction(
    "parse_duration", sig("STRING -> INT64"),
    "A duration string ('5m', '-1h', '1m30s', '250ms') as an int of nanoseconds, keeping its "
    "sign. Evaluated while compiling, as in Pixie.",
    category="time", impl=_parse_duration, usage="px.parse_duration('5m')",
    examples=("df = df[df.latency > px.parse_duration('100ms')]",)))
REGISTRY.add(CompileTimeFunction(
    "format_duration", sig("INT64 -> STRING"),
    "Nanoseconds as Pixie's duration string: whole days, hours, minutes, seconds or "
    "milliseconds, rounded toward zero ('-5m', '2h', '1500ms' is '1s'). Evaluated while "
    "compiling.",
    category="time", impl=lambda ctx, ns: format_duration(ns), usage="px.format_duration(n)",
    examples=("df.window = px.format_duration(5 * 60 * 1000 * 1000 * 1000)",)))
REGISTRY.add(CompileTimeFunction(
    "parse_time", sig("STRING -> TIME64NS", "INT64 -> TIME64NS", "TIME64NS -> TIME64NS"),
    "A time from a relative string ('-5m', '5m': from the script's now), an ISO 8601 or "
    "'2020-03-12 19:39:59 -0200' string, an int of nanoseconds or a time. Evaluated while "
    "compiling.",
    category="time", impl=_parse_time, usage="px.parse_time('-5m')",
    examples=("df = df[df.time_ > px.parse_time('-5m')]",)))
REGISTRY.add(CompileTimeFunction(
    "strptime", sig("STRING, STRING -> TIME64NS"),
    "A time parsed from a string with a C strptime format, e.g. px.strptime('2020-03-12 "
    "19:39:59 -0200', '%Y-%m-%d %H:%M:%S %z'); UTC unless the format has %z. Evaluated while "
    "compiling.",
    category="time", impl=_strptime, usage="px.strptime(text, format)",
    examples=("df = df[df.time_ > px.strptime('2020-03-12 19:39:59 -0200', "
              "'%Y-%m-%d %H:%M:%S %z')]",)))

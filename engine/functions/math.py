"""Math functions (Pixie's math_ops): abs, ceil, floor, round, sqrt, exp, pow, ln, log, log2,
log10, invert and approxEqual.

Return types are Pixie's: ceil and floor give an INT64, round(x, decimals) gives a *string*
("%.*f"), the logarithms, sqrt, exp and pow give a FLOAT64, and ``px.log(base, x)`` takes the
base first. abs, ceil, floor and round(x) keep the argument's semantic type (a duration stays a
duration). Out-of-domain values give what IEEE arithmetic gives (sqrt(-1) is NaN, ln(0) is -inf).
"""

from __future__ import annotations

import math
import operator
import sys

import polars as pl

from engine.functions.helpers import first_arg_semantic, per_row, per_value
from engine.registry import REGISTRY, CallArgs, ScalarFunction, sig
from engine.types import DataType, SemanticType

_NUM = ("INT64 -> INT64", "FLOAT64 -> FLOAT64")


def _float(e: pl.Expr) -> pl.Expr:
    return e.cast(pl.Float64)


def _add(name: str, signatures: tuple[str, ...], doc: str, polars, example: str, **kw) -> None:
    REGISTRY.add(ScalarFunction(name, sig(*signatures), doc, category="math", polars=polars,
                                examples=(example,), **kw))


_add("abs", _NUM, "The absolute value; keeps the argument's type and semantic type.",
     lambda a: a[0].abs(), "df.distance = px.abs(df.resp_body_size - df.req_body_size)",
     fold=abs, semantic=first_arg_semantic)


def _to_int(rounding: str):
    def build(a: CallArgs) -> pl.Expr:
        if a.types[0].dtype is DataType.INT64:
            return a[0]
        x = a[0]
        rounded = x.ceil() if rounding == "ceil" else x.floor() if rounding == "floor" else x.round(0)
        return rounded.cast(pl.Int64, strict=False)

    return build


def _fold_int(fn):
    def fold(x):
        return x if isinstance(x, int) else fn(x)

    return fold


_add("ceil", ("FLOAT64 -> INT64",),
     "The smallest integer not below the number, as an INT64 (as Pixie).",
     _to_int("ceil"), "df.latency_ms = px.ceil(df.latency / 1000000)",
     fold=_fold_int(math.ceil), semantic=first_arg_semantic)
_add("floor", ("FLOAT64 -> INT64",),
     "The largest integer not above the number, as an INT64 (as Pixie).",
     _to_int("floor"), "df.latency_ms = px.floor(df.latency / 1000000)",
     fold=_fold_int(math.floor), semantic=first_arg_semantic)


def _format_fixed(x: float, decimals: int) -> str:
    """C's "%.*f" (a negative precision counts as none given: 6 places)."""
    return f"{x:.{decimals if decimals >= 0 else 6}f}"


def _round(a: CallArgs) -> pl.Expr:
    if len(a.exprs) == 1:
        return _to_int("round")(a)
    decimals = a.consts[1]
    if isinstance(decimals, int):  # the usual case: once per distinct number
        return per_value(_float(a[0]), lambda x: _format_fixed(x, decimals), pl.String())
    return per_row([_float(a[0]), a[1]], _format_fixed, pl.String())


def _fold_round(x, decimals=None):
    if decimals is None:
        return x if isinstance(x, int) else round(x)
    return _format_fixed(float(x), decimals)


REGISTRY.add(ScalarFunction(
    "round", sig("FLOAT64, INT64 -> STRING", "FLOAT64 -> INT64"),
    "px.round(x, decimals) is the number written with that many decimal places, a STRING as in "
    "Pixie (px.round(3.14159, 2) is '3.14'); px.round(x) is the nearest INT64 (halves to even; "
    "a pxl extension that keeps the semantic type).",
    category="math", polars=_round, fold=_fold_round,
    semantic=lambda types: first_arg_semantic(types) if len(types) == 1 else SemanticType.NONE,
    examples=("df.latency_ms = px.round(df.latency / 1000000.0, 2)",)))

_add("sqrt", ("FLOAT64 -> FLOAT64",), "The square root (NaN for negative numbers).",
     lambda a: _float(a[0]).sqrt(), "df.root = px.sqrt(df.latency)", fold=math.sqrt)
_add("exp", ("FLOAT64 -> FLOAT64",), "e raised to the number.",
     lambda a: _float(a[0]).exp(), "df.growth = px.exp(df.resp_status / 100)", fold=math.exp)
_add("pow", ("FLOAT64, FLOAT64 -> FLOAT64",), "The first argument raised to the second.",
     lambda a: _float(a[0]).pow(_float(a[1])), "df.squared = px.pow(df.latency, 2)",
     fold=lambda x, y: float(math.pow(x, y)))
_add("ln", ("FLOAT64 -> FLOAT64",), "The natural logarithm.",
     lambda a: _float(a[0]).log(), "df.log_latency = px.ln(df.latency)", fold=math.log)
_add("log2", ("FLOAT64 -> FLOAT64",), "The base-2 logarithm.",
     lambda a: _float(a[0]).log(2.0), "df.bits = px.log2(df.resp_body_size)", fold=math.log2)
_add("log10", ("FLOAT64 -> FLOAT64",), "The base-10 logarithm.",
     lambda a: _float(a[0]).log10(), "df.magnitude = px.log10(df.latency)", fold=math.log10)
_add("log", ("FLOAT64, FLOAT64 -> FLOAT64",),
     "The logarithm of the second argument in the base given first: px.log(base, x) (Pixie's "
     "order, unlike Python's math.log(x, base)).",
     lambda a: _float(a[1]).log() / _float(a[0]).log(), "df.digits = px.log(10, df.latency)",
     fold=lambda base, x: math.log(x) / math.log(base))
_add("invert", ("INT64 -> INT64",), "The bits of the integer inverted (~x).",
     lambda a: ~a[0], "df.inverted = px.invert(df.resp_status)", fold=operator.invert)
_add("approxEqual", ("FLOAT64, FLOAT64 -> BOOLEAN",),
     "Whether the two numbers differ by less than the machine epsilon (2.2e-16).",
     lambda a: (_float(a[0]) - _float(a[1])).abs() < sys.float_info.epsilon,
     "df.same = px.approxEqual(df.latency / 2, df.latency * 0.5)",
     fold=lambda x, y: abs(x - y) < sys.float_info.epsilon)

"""Compile-time values of the PxL evaluator besides plain Python constants.

A PxL script is evaluated, never executed: names hold constants, times, column expressions,
DataFrames (plan builders) and functions. Nothing here runs Python code from the script.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from engine.exprs import Expr, Literal
from engine.registry import AggregateFunction, CompileTimeFunction, ScalarFunction
from engine.timeutil import format_ns
from engine.types import ColumnType, DataType, SemanticType

if TYPE_CHECKING:
    from engine.errors import Span
    from pxl import syntax as S

__all__ = ["TimeValue", "ColumnValue", "PxFunction", "UserFunction", "TypeValue", "Builtin",
           "PxModule", "BoundMethod", "literal_of", "describe_value", "INT64_MIN", "INT64_MAX"]

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


@dataclass(frozen=True)
class TimeValue:
    """A point in time known while compiling (px.now(), parsed times), in ns since the epoch."""

    ns: int

    def __str__(self) -> str:
        return format_ns(self.ns)


@dataclass(frozen=True)
class ColumnValue:
    """A column expression: ``df.latency * 2``. Refers to columns by name."""

    expr: Expr

    @property
    def ctype(self) -> ColumnType:
        return self.expr.ctype


@dataclass(frozen=True)
class PxFunction:
    """A px.* function of the registry as a value (called, or named in an agg tuple)."""

    fn: ScalarFunction | AggregateFunction | CompileTimeFunction

    @property
    def name(self) -> str:
        return self.fn.name


@dataclass(frozen=True)
class UserFunction:
    """A ``def`` of the script: called at compile time with its arguments."""

    node: S.FunctionDef
    globals: dict[str, Any] = field(compare=False, repr=False)


@dataclass(frozen=True)
class TypeValue:
    """``str``, ``int``, ``float``, ``bool`` in annotations."""

    name: str
    python: tuple[type, ...]


@dataclass(frozen=True)
class Builtin:
    """A function of the object model (px.DataFrame, px.display …)."""

    name: str
    impl: Any  # (compiler, args, kwargs, span) -> value
    doc: str = ""


@dataclass(frozen=True)
class PxModule:
    """The ``px`` module."""

    name: str = "px"


@dataclass(frozen=True)
class BoundMethod:
    """``df.head`` before it is called."""

    obj: Any
    name: str


def literal_of(value: Any, span: Span | None = None) -> Literal | None:
    """The plan literal for a compile-time constant, or None if it has no column type."""
    if isinstance(value, bool):
        return Literal(value, ColumnType(DataType.BOOLEAN), span=span)
    if isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            return None
        return Literal(value, ColumnType(DataType.INT64), span=span)
    if isinstance(value, float):
        return Literal(value, ColumnType(DataType.FLOAT64), span=span)
    if isinstance(value, str):
        return Literal(value, ColumnType(DataType.STRING), span=span)
    if isinstance(value, TimeValue):
        return Literal(value.ns, ColumnType(DataType.TIME64NS, SemanticType.TIME), span=span)
    return None


def describe_value(value: Any) -> str:
    """What a value is, in a user's words, for error messages."""
    from pxl.dataframe import DataFrame, GroupBy

    if value is None:
        return "None"
    if isinstance(value, bool):
        return "a bool"
    if isinstance(value, int):
        return "an int"
    if isinstance(value, float):
        return "a float"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, tuple):
        return "a tuple"
    if isinstance(value, dict):
        return "a dict"
    if isinstance(value, TimeValue):
        return "a time"
    if isinstance(value, ColumnValue):
        return f"a {value.ctype.dtype} column expression"
    if isinstance(value, DataFrame):
        return "a DataFrame"
    if isinstance(value, GroupBy):
        return "a grouped DataFrame"
    if isinstance(value, PxFunction | Builtin):
        return f"the function px.{value.name}"
    if isinstance(value, UserFunction):
        return f"the function {value.node.name}"
    if isinstance(value, PxModule):
        return "the px module"
    if isinstance(value, BoundMethod):
        return f"the method {value.name}"
    if isinstance(value, TypeValue):
        return f"the type {value.name}"
    return type(value).__name__

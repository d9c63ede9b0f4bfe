"""Column expressions of the logical plan: column references, literals, function calls, aggregates.

Expressions are immutable and typed when built: the compiler resolves every call against the
function registry, so an expression's type is known before any data is seen.

>>> from engine.types import ColumnType, DataType
>>> e = Call("greaterThanEqual", (ColumnRef("resp_status", ColumnType(DataType.INT64)),
...          Literal(500, ColumnType(DataType.INT64))), ColumnType(DataType.BOOLEAN))
>>> str(e)
'resp_status >= 500'
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from engine.errors import Span
from engine.types import ColumnType, DataType

__all__ = ["Expr", "ColumnRef", "Literal", "Call", "AggCall", "columns_of", "format_literal"]


@dataclass(frozen=True)
class Expr:
    span: Span | None = field(default=None, compare=False, repr=False, kw_only=True)

    # every subclass has a field ``ctype: ColumnType``

    @property
    def dtype(self) -> DataType:
        return self.ctype.dtype  # type: ignore[attr-defined]

    def children(self) -> tuple[Expr, ...]:
        return ()

    def walk(self) -> Iterator[Expr]:
        """This expression and all below it, parents first."""
        stack: list[Expr] = [self]
        while stack:
            e = stack.pop()
            yield e
            stack.extend(reversed(e.children()))


@dataclass(frozen=True)
class ColumnRef(Expr):
    name: str
    ctype: ColumnType

    def __str__(self) -> str:
        return self.name if self.name.isidentifier() else f"[{self.name!r}]"


@dataclass(frozen=True)
class Literal(Expr):
    value: Any
    ctype: ColumnType

    def __str__(self) -> str:
        return format_literal(self.value, self.ctype.dtype)


@dataclass(frozen=True)
class Call(Expr):
    """A scalar function applied to arguments; ``fn`` names a registry entry."""

    fn: str
    args: tuple[Expr, ...]
    ctype: ColumnType

    def children(self) -> tuple[Expr, ...]:
        return self.args

    def __str__(self) -> str:
        from engine.registry import REGISTRY  # the registry knows each function's display form

        return REGISTRY.scalar(self.fn).display(self.args)


@dataclass(frozen=True)
class AggCall:
    """An aggregate in ``agg(name=(column, px.fn, *params))``: one output column of a group."""

    name: str
    fn: str
    arg: Expr | None
    params: tuple[Any, ...]
    ctype: ColumnType
    span: Span | None = field(default=None, compare=False, repr=False, kw_only=True)

    def __str__(self) -> str:
        inner = ", ".join([str(self.arg)] if self.arg is not None else [])
        if self.params:
            inner += "".join(f", {p!r}" for p in self.params)
        return f"{self.name}={self.fn}({inner})"


def columns_of(expr: Expr | AggCall) -> frozenset[str]:
    """Names of the input columns an expression reads."""
    if isinstance(expr, AggCall):
        return columns_of(expr.arg) if expr.arg is not None else frozenset()
    # Expressions are immutable, and the optimizer's rules ask about the same ones many times
    # (a third of optimizing a 300-line script went here): remember the answer on the node.
    known = expr.__dict__.get("_columns")
    if known is None:
        known = frozenset(e.name for e in expr.walk() if isinstance(e, ColumnRef))
        object.__setattr__(expr, "_columns", known)
    return known


def format_literal(value: Any, dtype: DataType) -> str:
    if dtype is DataType.TIME64NS and isinstance(value, int):
        from engine.timeutil import format_ns

        return f"time({format_ns(value)})"
    if isinstance(value, str):
        return repr(value)
    if value is None:
        return "None"
    return repr(value)

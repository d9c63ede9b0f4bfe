"""The function registry: the single source of truth for every ``px.*`` function.

Each entry holds its name, signatures, semantic-type rule, documentation and — for scalar and
aggregate functions — its Polars translation. The compiler type-checks from it, the executor
translates from it, and docs/ is generated from it.

Signatures are written as text: ``"INT64, INT64 -> INT64"``; ``T`` is a type variable bound by
the first argument it meets; ``ANY`` matches every type. An INT64 argument is accepted where a
FLOAT64 is asked for (it is widened).

>>> REGISTRY.scalar("add").resolve((ColumnType(DataType.INT64), ColumnType(DataType.FLOAT64)))
ColumnType(dtype=<DataType.FLOAT64: 'FLOAT64'>, semantic=<SemanticType.NONE: 'none'>)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from engine.types import ColumnType, DataType, SemanticType

if TYPE_CHECKING:
    import polars as pl

    from engine.exprs import Expr

__all__ = ["ArgumentError", "CallArgs", "Signature", "ScalarFunction", "AggregateFunction", "CompileTimeFunction", "Registry",
           "REGISTRY", "sig", "TypeMismatch"]

SemanticRule = Callable[[Sequence[ColumnType]], SemanticType]


class ArgumentError(ValueError):
    """A constant argument is unusable (raised by a function's ``normalize``)."""

    def __init__(self, position: int, message: str) -> None:
        super().__init__(message)
        self.position = position


class TypeMismatch(Exception):
    """No signature of a function accepts these argument types."""


@dataclass(frozen=True)
class Signature:
    args: tuple[str, ...]  # DataType names, "T" or "ANY"
    returns: str

    def __str__(self) -> str:
        return f"({', '.join(self.args)}) -> {self.returns}"

    def bind(self, types: Sequence[DataType]) -> DataType | None:
        """The return type if these argument types fit, else None."""
        if len(types) != len(self.args):
            return None
        bound: DataType | None = None
        for want, got in zip(self.args, types, strict=True):
            if want == "ANY":
                continue
            if want == "T":
                if bound is None:
                    bound = got
                elif bound != got:
                    if {bound, got} == {DataType.INT64, DataType.FLOAT64}:
                        bound = DataType.FLOAT64
                    else:
                        return None
                continue
            target = DataType[want]
            if got != target and not (got is DataType.INT64 and target is DataType.FLOAT64):
                return None
        if self.returns == "T":
            return bound
        return DataType[self.returns]


def sig(*texts: str) -> tuple[Signature, ...]:
    """``sig("INT64, INT64 -> INT64", ...)`` → signatures."""
    out = []
    for text in texts:
        args, ret = text.split("->")
        names = tuple(a.strip() for a in args.split(",") if a.strip())
        out.append(Signature(names, ret.strip()))
    return tuple(out)


def no_semantic(types: Sequence[ColumnType]) -> SemanticType:
    return SemanticType.NONE


def first_semantic(types: Sequence[ColumnType]) -> SemanticType:
    """The semantic type of the arguments when they agree (NONE arguments agree with all)."""
    found = {t.semantic for t in types} - {SemanticType.NONE, SemanticType.TIME}
    if len(found) == 1:
        return found.pop()
    return SemanticType.NONE


@dataclass(frozen=True)
class _Function:
    name: str
    signatures: tuple[Signature, ...]
    doc: str
    semantic: SemanticRule = field(default=no_semantic)
    category: str = "misc"
    examples: tuple[str, ...] = ()

    def resolve(self, types: Sequence[ColumnType]) -> ColumnType:
        for s in self.signatures:
            ret = s.bind([t.dtype for t in types])
            if ret is not None:
                semantic = self.semantic(types)
                if ret is DataType.TIME64NS and semantic is SemanticType.NONE:
                    semantic = SemanticType.TIME
                return ColumnType(ret, semantic)
        got = ", ".join(str(t.dtype) for t in types)
        want = "; ".join(str(s) for s in self.signatures)
        raise TypeMismatch(f"px.{self.name} does not take ({got}); it takes {want}")


@dataclass(frozen=True)
class CallArgs:
    """What a Polars translation gets: the argument expressions, their types and constants."""

    exprs: list[pl.Expr]
    types: list[ColumnType]
    consts: list[Any]  # the literal value of each argument, or None if it is not a literal
    metadata: pl.DataFrame | None = None  # process metadata by upid, for df.ctx lookups

    def __getitem__(self, i: int) -> pl.Expr:
        return self.exprs[i]


@dataclass(frozen=True)
class ScalarFunction(_Function):
    """A per-row function. ``polars(CallArgs)`` builds the Polars expression."""

    polars: Callable[[CallArgs], pl.Expr] = field(default=None)  # type: ignore[assignment]
    #: infix operator shown by explain (e.g. "+"), or a prefix such as "not "
    symbol: str | None = None
    #: Python evaluation for constant folding of literal arguments (None: never folded)
    fold: Callable[..., Any] | None = None
    #: argument positions that must be compile-time constants
    literal_args: tuple[int, ...] = ()
    #: rewrites constant arguments while compiling ('1h' → 3600000000000); raises ArgumentError
    normalize: Callable[[list[Any]], list[Any]] | None = None

    def display(self, args: Sequence[Expr]) -> str:
        if self.symbol is not None and len(args) == 2:
            return f"{_paren(args[0])} {self.symbol} {_paren(args[1])}"
        if self.symbol is not None and len(args) == 1:
            return f"{self.symbol}{_paren(args[0])}"
        return f"px.{self.name}({', '.join(str(a) for a in args)})"


def _paren(e: Expr) -> str:
    from engine.exprs import Call

    text = str(e)
    if isinstance(e, Call) and REGISTRY.scalar(e.fn).symbol is not None:
        return f"({text})"
    return text


@dataclass(frozen=True)
class AggregateFunction(_Function):
    """A function over the rows of a group. ``polars(arg, params)`` builds the Polars aggregate.

    The partial-operator protocol (how engine/distributed splits it between agents and broker):
    ``partial`` lists the (suffix, aggregate) steps every agent runs on its rows of a group,
    ``merge`` the aggregate that combines the agents' values of each step on the broker, and
    ``finalize(merged, ctype)`` builds the answer from the merged columns (None: the single
    merged column is the answer).

    An order statistic (the quantiles) has no partial steps but a sketch: ``sketch_points(*params)``
    lists the quantile points its answer needs, agents ship their values as a mergeable sketch
    (value, weight) pairs — engine/distributed/sketch.py — and the broker reads the points from
    the merged sketch; ``sketch_answer(points)`` builds the answer from them. Neither: not
    splittable, agents ship the rows.

    >>> mean = REGISTRY.aggregate("mean")
    >>> mean.partial, mean.merge
    ((('sum', 'sum'), ('count', 'count')), ('sum', 'sum'))
    >>> quantile = REGISTRY.aggregate("quantile")
    >>> quantile.splittable, quantile.sketch_points(0.99)
    (True, (0.99,))
    """

    polars: Callable[..., pl.Expr] = field(default=None)  # type: ignore[assignment]
    #: names and types of the compile-time parameters after the column, e.g. quantile's q
    params: tuple[tuple[str, type], ...] = ()
    #: agent-side steps: (suffix of the partial column, registry aggregate run per group)
    partial: tuple[tuple[str, str], ...] = ()
    #: broker-side merge of each partial step: a registry aggregate over the partial column
    merge: tuple[str, ...] = ()
    #: the answer from the merged partial columns, typed ``ctype`` (None: one step, no finalize)
    finalize: Callable[[Sequence[Expr], ColumnType], Expr] | None = None
    #: instead of partial steps, the quantile points (0..1) of the values the answer needs
    sketch_points: Callable[..., tuple[float, ...]] | None = None
    #: the answer (a Polars expression) from the values at those points, in order
    sketch_answer: Callable[[list[pl.Expr]], pl.Expr] | None = None

    def __post_init__(self) -> None:
        if len(self.partial) != len(self.merge):
            raise ValueError(f"px.{self.name}: one merge step per partial step")
        if len(self.partial) > 1 and self.finalize is None:
            raise ValueError(f"px.{self.name}: several partial steps need a finalize")
        if (self.sketch_points is None) != (self.sketch_answer is None):
            raise ValueError(f"px.{self.name}: a sketch needs its points and its answer")
        if self.sketch_points is not None and self.partial:
            raise ValueError(f"px.{self.name}: partial steps or a sketch, not both")

    @property
    def splittable(self) -> bool:
        """Whether agents can pre-aggregate it (else they ship the rows to the broker)."""
        return bool(self.partial) or self.sketch_points is not None


@dataclass(frozen=True)
class CompileTimeFunction(_Function):
    """A function evaluated while compiling (px.now, px.minutes …); never reaches the executor."""

    impl: Callable[..., Any] = field(default=None)  # type: ignore[assignment]
    usage: str = ""


@dataclass
class Registry:
    scalars: dict[str, ScalarFunction] = field(default_factory=dict)
    aggregates: dict[str, AggregateFunction] = field(default_factory=dict)
    compile_time: dict[str, CompileTimeFunction] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)

    def add(self, fn: _Function, *aliases: str) -> _Function:
        table = self._table(fn)
        if fn.name in self.names():
            raise ValueError(f"px.{fn.name} is registered twice")
        table[fn.name] = fn  # type: ignore[index]
        for alias in aliases:
            self.aliases[alias] = fn.name
        return fn

    def _table(self, fn: _Function) -> dict[str, Any]:
        if isinstance(fn, ScalarFunction):
            return self.scalars
        if isinstance(fn, AggregateFunction):
            return self.aggregates
        return self.compile_time

    def names(self) -> set[str]:
        return set(self.scalars) | set(self.aggregates) | set(self.compile_time)

    def lookup(self, name: str) -> _Function | None:
        name = self.aliases.get(name, name)
        return self.scalars.get(name) or self.aggregates.get(name) or self.compile_time.get(name)

    def scalar(self, name: str) -> ScalarFunction:
        return self.scalars[self.aliases.get(name, name)]

    def aggregate(self, name: str) -> AggregateFunction:
        return self.aggregates[self.aliases.get(name, name)]


REGISTRY = Registry()


def _load() -> None:
    # The function modules register themselves into REGISTRY on import.
    import engine.functions  # noqa: F401


_load()

"""Where the broker's plan meets the agents' answers: the :class:`Exchange` leaf and its inputs.

An ``Exchange[f0]`` stands, in the broker plan, for the rows that every asked agent returned for
agent fragment ``f0``, one agent after another. The broker runs its plan over an :class:`Inputs`,
a catalog-like object that holds those answers (Arrow tables or Polars frames) by fragment id::

    agents                                   broker
    Sink[f0] ── rows of agent 1 ──┐
    Sink[f0] ── rows of agent 2 ──┼──►  Inputs{f0: [t1, t2, t3]}  ──►  Exchange[f0] ──► …
    Sink[f0] ── rows of agent 3 ──┘

>>> from engine.types import ColumnType, DataType, Schema
>>> node = Exchange("f0", Schema.of({"n": ColumnType(DataType.INT64)}))
>>> inputs = Inputs({"f0": [pl.DataFrame({"n": [1]}), pl.DataFrame({"n": [2, 3]})]})
>>> inputs.exchange("f0", node.schema).collect()["n"].to_list()
[1, 2, 3]
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import polars as pl
import pyarrow as pa

from engine.errors import ExecuteError, PlanError
from engine.executor import lower
from engine.explain import describe
from engine.relations import Relation
from engine.types import Schema

__all__ = ["Exchange", "Inputs", "merge_metadata"]


@dataclass(frozen=True, eq=False)
class Exchange(Relation):
    """The concatenated rows of agent fragment ``fragment`` (a broker-side leaf)."""

    fragment: str
    rows_schema: Schema

    def __post_init__(self) -> None:
        if not self.fragment:
            raise PlanError("an exchange needs the id of the fragment it reads", self.span)

    @cached_property
    def schema(self) -> Schema:
        return self.rows_schema


class Inputs:
    """The agents' answers by fragment id, read by the broker plan like a catalog of no tables.

    ``metadata`` is process metadata for lookups the broker runs itself (e.g. a ``df.ctx``
    above a join): the agents' metadata put together, or a function that fetches it (called
    at most once, only if the plan looks a process up)."""

    def __init__(self, parts: Mapping[str, Sequence[pa.Table | pl.DataFrame]],
                 metadata: pl.DataFrame | Callable[[], pl.DataFrame | None] | None = None
                 ) -> None:
        self._parts = {k: list(v) for k, v in parts.items()}
        self._metadata = metadata

    def table_names(self) -> list[str]:
        return []

    def schema(self, table: str) -> Schema | None:
        return None

    def scan(self, table: str, columns: Iterable[str] | None, start: int | None,
             end: int | None) -> pl.LazyFrame:
        raise ExecuteError(f"the broker reads no tables, but its plan scans {table!r}",
                           hint="split the plan with engine.distributed.split first")

    def metadata(self) -> pl.DataFrame | None:
        if callable(self._metadata):
            self._metadata = self._metadata()
        return self._metadata

    def rows(self, fragment: str) -> int:
        """How many rows the agents sent for a fragment."""
        return sum(p.num_rows if isinstance(p, pa.Table) else p.height
                   for p in self._parts.get(fragment, ()))

    def exchange(self, fragment: str, schema: Schema) -> pl.LazyFrame:
        """The fragment's rows from every agent, in agent order, typed as ``schema`` says (no
        agent answered: no rows)."""
        want = schema.polars()
        frames = [_frame(p) for p in self._parts.get(fragment, ())]
        if not frames:
            return pl.DataFrame(schema=want).lazy()
        for f in frames:
            if f.columns != list(want):
                raise ExecuteError(f"fragment {fragment}: an agent sent columns "
                                   f"({', '.join(f.columns)}), expected ({', '.join(want)})")
        out = pl.concat([f.cast(want) for f in frames], how="vertical")  # type: ignore[arg-type]
        return out.lazy()


def merge_metadata(frames: Sequence[pl.DataFrame]) -> pl.DataFrame | None:
    """Several agents' process metadata as one frame, a row per upid (the last agent's wins)."""
    if not frames:
        return None
    return pl.concat(frames, how="diagonal_relaxed").unique("upid", keep="last",
                                                            maintain_order=True)


def _frame(part: Any) -> pl.DataFrame:
    if isinstance(part, pl.DataFrame):
        return part
    frame = pl.from_arrow(part)
    assert isinstance(frame, pl.DataFrame)
    return frame


@lower.register(Exchange)
def _lower_exchange(node: Exchange, rec: Any) -> pl.LazyFrame:
    read = getattr(rec.catalog, "exchange", None)
    if read is None:
        raise ExecuteError(f"fragment {node.fragment}: the broker plan runs over the agents' "
                           "answers, not over a table store", node.span,
                           hint="run it with engine.distributed.Inputs as its catalog")
    return read(node.fragment, node.schema)


@describe.register(Exchange)
def _describe_exchange(node: Exchange) -> str:
    return f"Exchange[{node.fragment}]"

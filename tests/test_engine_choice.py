"""Which Polars engine a plan runs on: the rules of engine.executor.choose_engine."""

from __future__ import annotations

import polars as pl
import pytest

import pxl
from engine.catalog import MemoryCatalog
from engine.executor import choose_engine

NOW = 1_795_521_600_000_000_000


class _Counted(MemoryCatalog):
    """A small table that says it holds ``rows`` rows (the choice reads only the count)."""

    def __init__(self, rows: int) -> None:
        super().__init__()
        self.rows = rows
        self.add("t", pl.DataFrame({"time_": [NOW - 2, NOW - 1], "g": ["a", "b"],
                                    "x": [1.0, 2.0]}))

    def row_count(self, table: str, start: int | None = None, end: int | None = None) -> int:
        return self.rows


def _engine(body: str, rows: int) -> str:
    catalog = _Counted(rows)
    plan = pxl.compile(f"import px\ndf = px.DataFrame('t')\n{body}\n", catalog, now=NOW)
    return choose_engine(plan, catalog)


@pytest.mark.parametrize("body,rows,engine", [
    ("px.display(df[df.x > 0])", 10_000, "in-memory"),  # few rows
    ("px.display(df[df.x > 0])", 500_000, "streaming"),
    ("px.display(df.groupby('g').agg(n=('x', px.count)))", 500_000, "streaming"),
    ("px.display(df.groupby('g').agg(p=('x', px.quantile, 0.5)))", 5_000_000, "in-memory"),
    # aggregates of all rows: in-memory below a million rows
    ("df = df[df.x > 0]\npx.display(df.agg(n=('x', px.count), m=('x', px.mean)))", 900_000,
     "in-memory"),
    ("px.display(df.agg(n=('x', px.count)))", 3_000_000, "streaming"),
    ("px.display(df.agg(n=('x', px.count)))\npx.display(df)", 900_000, "streaming"),
    # top-ks by a number or a time: in-memory with a sampled threshold
    ("px.display(df.sort_values('x', ascending=False).head(5))", 5_000_000, "in-memory"),
    ("px.display(df.sort_values('g').head(5))", 5_000_000, "streaming"),
    ("px.display(df.sort_values('x').head(5).groupby('g').agg(n=('x', px.count)))", 5_000_000,
     "streaming"),
])
def test_engine_choice(body: str, rows: int, engine: str) -> None:
    assert _engine(body, rows) == engine

"""Reading the store: scans of one table state, and a view of every table at one instant."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow.parquet as pq

from engine.catalog import METADATA_TABLE
from engine.errors import DataError
from engine.store.chunks import TableState
from engine.store.retention import to_arrow
from engine.store.table import Table
from engine.types import Schema

__all__ = ["StoreView", "scan_state", "age_floor"]


class StoreView:
    """A read-only Catalog over every table of a store as it was at one instant."""

    def __init__(self, tables: dict[str, tuple[Table, TableState]], metadata: pl.DataFrame,
                 clock: Callable[[], int]) -> None:
        self._tables, self._metadata, self._clock = tables, metadata, clock

    def table_names(self) -> list[str]:
        return sorted(self._tables)

    def schema(self, table: str) -> Schema | None:
        entry = self._tables.get(table)
        return entry[0].schema if entry else None

    def scan(self, table: str, columns: Iterable[str] | None = None, start: int | None = None,
             end: int | None = None) -> pl.LazyFrame:
        if table not in self._tables:
            raise DataError(f"no table named {table!r} in the store")
        t, state = self._tables[table]
        return scan_state(t, state, columns, age_floor(t, start, self._clock), end)

    def metadata(self) -> pl.DataFrame:
        return self._metadata

    def row_count(self, table: str, start: int | None = None, end: int | None = None) -> int:
        """Rows a scan of this window would read (slices only, no data copied)."""
        t, state = self._tables[table]
        return t.frame(state, age_floor(t, start, self._clock), end).height

    def stats(self) -> list[dict[str, Any]]:
        return [t.stats() for name, (t, _) in sorted(self._tables.items())]

    def write(self, out_dir: str | Path) -> list[Path]:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = []
        for name, (t, state) in sorted(self._tables.items()):
            path = out / f"{name}.parquet"
            pq.write_table(to_arrow(t.frame(state), t.schema), path)
            paths.append(path)
        path = out / f"{METADATA_TABLE}.parquet"
        self._metadata.write_parquet(path)
        return paths + [path]


def scan_state(t: Table, state: TableState, columns: Iterable[str] | None, start: int | None,
          end: int | None) -> pl.LazyFrame:
    lf = t.frame(state, start, end).lazy()
    return lf.select(list(columns)) if columns is not None else lf


def age_floor(t: Table, start: int | None, clock: Callable[[], int]) -> int | None:
    """Rows past a table's maximum age are never read, even before they are evicted."""
    if t.max_age is None:
        return start
    cutoff = clock() - t.max_age
    return cutoff if start is None else max(start, cutoff)

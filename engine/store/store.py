"""The table store: live tables on this host, filled by collectors and read by queries.

    store = TableStore(budget_bytes=512 << 20, max_age={"conn_stats": "1h"})
    store.append("http_events", record_batch)          # from a collector thread
    store.upsert_metadata(frame_of_processes)
    pxl.run(script, catalog=store)                      # queries run while appends go on
    store.snapshot("/tmp/snap")                         # Parquet, readable by MemoryCatalog.add_dir
    store.close()

It implements :class:`engine.catalog.Catalog`. Each scan reads one immutable version of its table;
:meth:`TableStore.view` freezes every table at once for a query that reads several.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import polars as pl

from engine.errors import DataError
from engine.store.chunks import TableState
from engine.store.maintainer import Maintainer
from engine.store.metadata import MetadataRows, ProcessMetadata
from engine.store.retention import (
    DEFAULT_SHARES,
    HIGH,
    LOW,
    SLACK,
    Spill,
    default_budget,
    parse_age,
    table_budgets,
)
from engine.store.schema import TIME, Batch, dictionary_columns
from engine.store.table import Limits, Table
from engine.store.view import StoreView, age_floor, scan_state
from engine.tables import TABLES, TableSpec, semantic_of
from engine.types import ColumnType, DataType, Schema, SemanticType, from_polars

__all__ = ["TableStore", "StoreView", "Limits"]

Age = str | int | float | dt.timedelta | None
SchemaLike = Schema | TableSpec | Mapping[str, DataType | ColumnType | pl.DataType | str]


class TableStore:
    """Per-table chunks with a time index, a shared byte budget, ages, metadata and snapshots.

    ``budget_bytes`` defaults to a tenth of the host's memory (at most 4 GiB); ``shares`` maps
    table → fraction of it (``http_events`` 0.4 unless set; the others split the rest);
    ``max_age`` maps table → '1h' / timedelta / ns. ``background=False`` runs flushes,
    compaction and eviction inside the calls that need them instead of on a thread.
    """

    def __init__(self, *, budget_bytes: int | None = None,
                 shares: Mapping[str, float] | None = None, max_age: Mapping[str, Age] | None = None,
                 builtin: bool = True, background: bool = True,
                 spill_dir: str | Path | None = None, limits: Limits | None = None,
                 metadata_grace: Age = "15m", metadata_cap: int = 100_000,
                 clock: Callable[[], int] = time.time_ns, interval: float = 0.2) -> None:
        self._lock = threading.RLock()
        self._tables: dict[str, Table] = {}
        self._budget = int(budget_bytes) if budget_bytes else default_budget()
        self._shares = {**DEFAULT_SHARES, **(shares or {})}
        self._ages = {name: parse_age(v) for name, v in (max_age or {}).items()}
        self.limits = limits or Limits()
        self.clock = clock
        self.spill = Spill(spill_dir) if spill_dir is not None else None
        self._metadata = ProcessMetadata(grace_ns=parse_age(metadata_grace) or 0,
                                         max_entries=metadata_cap, clock=clock)
        self.errors: list[str] = []
        if builtin:
            for spec in TABLES.values():
                self._tables[spec.name] = Table(spec.name, spec.schema,
                                                dictionary_columns(spec.schema), self.limits)
        self._rebalance()
        self._worker = Maintainer(self, interval) if background else None

    # --- tables
    def create_table(self, name: str, schema: SchemaLike | None = None, *,
                     dictionary: Iterable[str] | None = None, share: float | None = None,
                     max_age: Age = None) -> None:
        """Add a table: a built-in one by name, or any table from its schema (which needs a
        TIME64NS ``time_``). ``dictionary`` names its dictionary columns; by default a built-in
        table uses its low-cardinality strings and another table samples its first rows."""
        if not name or not name.replace("_", "a").isalnum():
            raise DataError(f"{name!r} is not a usable table name",
                            hint="use letters, digits and underscores")
        resolved = _schema(name, schema)
        with self._lock:
            if name in self._tables:
                if schema is None or self._tables[name].schema == resolved:
                    return
                raise DataError(f"table {name!r} exists with another schema")
            if dictionary is not None:
                chosen = frozenset(dictionary)
                bad = [c for c in chosen if resolved.get(c) is None
                       or resolved[c].dtype is not DataType.STRING]
                if bad:
                    raise DataError(f"table {name!r}: {bad[0]!r} is not a STRING column",
                                    hint="only string columns can be dictionary columns")
            elif schema is None or (name in TABLES and resolved == TABLES[name].schema):
                chosen = dictionary_columns(resolved)
            else:
                chosen = None
            self._tables[name] = Table(name, resolved, chosen, self.limits)
            if share is not None:
                self._shares[name] = share
            if max_age is not None:
                self._ages[name] = parse_age(max_age)
            self._rebalance()

    def set_budget(self, budget_bytes: int) -> None:
        with self._lock:
            self._budget = int(budget_bytes)
            self._rebalance()

    def set_share(self, table: str, share: float) -> None:
        with self._lock:
            self._shares[table] = share
            self._rebalance()

    def set_max_age(self, table: str, age: Age) -> None:
        with self._lock:
            self._ages[table] = parse_age(age)
            self._rebalance()

    @property
    def budget_bytes(self) -> int:
        return self._budget

    def _rebalance(self) -> None:
        budgets = table_budgets(self._budget, self._tables, self._shares)
        for name, table in self._tables.items():
            table.budget = budgets[name]
            table.max_age = self._ages.get(name)

    def _table(self, name: str) -> Table:
        table = self._tables.get(name)
        if table is None:
            raise DataError(f"no table named {name!r} in the store",
                            hint="create it first with create_table(name, schema)")
        return table

    # --- writing
    def append(self, table: str, batch: Batch) -> int:
        """Append a batch of rows (Arrow RecordBatch/Table or Polars DataFrame); returns its
        rows. A batch that does not fit the table raises DataError and stores nothing."""
        t = self._table(table)
        rows = t.append(batch)
        state = t.state
        if state.nbytes > t.budget:
            if self._worker is None or state.nbytes > t.budget * HIGH:
                self._evict(t)
            else:
                self._worker.wake()
        elif t.flush_due(self._flush_bytes(t)):
            if self._worker is None:
                t.flush()
                t.compact()
            elif state.pending_rows >= self.limits.flush_rows:
                self._worker.wake()
        return rows

    def upsert_metadata(self, rows: MetadataRows) -> int:
        """Add or update process metadata (one row per upid; see engine.store.metadata)."""
        return self._metadata.upsert(rows)

    def flush(self, table: str | None = None) -> None:
        """Normalise every pending batch into chunks and compact (tests and benchmarks)."""
        for t in self._pick(table):
            t.flush()
            t.compact()

    def compact(self, table: str | None = None) -> int:
        return sum(t.compact() for t in self._pick(table))

    def enforce_retention(self) -> int:
        """Apply budgets and ages now, exactly; returns the rows evicted."""
        evicted = 0
        for t in self._pick(None):
            if t.max_age is not None:
                evicted += self._spill(t, t.evict_older(self.clock() - t.max_age))
            if t.state.nbytes > t.budget:
                evicted += self._evict(t)
        return evicted

    def expire_metadata(self) -> int:
        """Forget metadata of upids no table has held rows of for the grace period."""
        live: set[str] = set()
        for t in self._pick(None):
            for chunk in t.state.chunks:
                live |= chunk.upids
        return self._metadata.expire(live)

    def maintain(self) -> None:
        """One pass of background work: flush due tables, compact, evict."""
        for t in self._pick(None):
            if t.flush_due(self._flush_bytes(t)):
                t.flush()
            t.compact()
            state = t.state
            if t.max_age is not None and state.chunks:
                cutoff = self.clock() - t.max_age
                if state.chunks[0].tmax < cutoff:  # whole chunks; scans hide the rest
                    self._spill(t, t.evict_older(min(cutoff, _whole_chunks_before(state, cutoff))))
            if t.state.nbytes > t.budget:
                self._evict(t)

    def _evict(self, t: Table) -> int:
        return self._spill(t, t.evict_to(int(t.budget * LOW), int(t.budget * SLACK)))

    def _spill(self, t: Table, frames: list[pl.DataFrame]) -> int:
        if self.spill is not None and frames:
            self.spill.write(t.name, t.schema, frames)
        return sum(f.height for f in frames)

    def _flush_bytes(self, t: Table) -> int:
        return max(1, min(self.limits.flush_bytes, int(t.budget * SLACK)))

    def _pick(self, table: str | None) -> list[Table]:
        if table is not None:
            return [self._table(table)]
        with self._lock:
            return list(self._tables.values())

    # --- the Catalog protocol
    def table_names(self) -> list[str]:
        return sorted(t.name for t in self._pick(None))

    def schema(self, table: str) -> Schema | None:
        t = self._tables.get(table)
        return t.schema if t is not None else None

    def scan(self, table: str, columns: Iterable[str] | None = None, start: int | None = None,
             end: int | None = None) -> pl.LazyFrame:
        t = self._table(table)
        return scan_state(t, t.view(), columns, age_floor(t, start, self.clock), end)

    def metadata(self) -> pl.DataFrame:
        return self._metadata.frame()

    # --- introspection and files
    def stats(self) -> list[dict[str, Any]]:
        """Per table: table_name, num_rows, size_bytes, min_time, max_time, evicted_rows,
        rejected_batches, num_chunks, pending_rows, budget_bytes, max_age_ns, dictionary_columns."""
        return [t.stats() for t in sorted(self._pick(None), key=lambda t: t.name)]

    def view(self) -> StoreView:
        """Every table frozen at one instant (for a query reading several tables)."""
        tables = self._pick(None)
        return StoreView({t.name: (t, t.view()) for t in tables}, self._metadata.frame(),
                         self.clock)

    def snapshot(self, out_dir: str | Path) -> list[Path]:
        """Write every table to ``out_dir/<table>.parquet`` and the process metadata to
        ``upid_metadata.parquet``: a directory MemoryCatalog.add_dir (and ``pxl --data``) reads."""
        return self.view().write(out_dir)

    def close(self) -> None:
        """Stop the background thread (appends and scans keep working, synchronously)."""
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.stop()

    def __enter__(self) -> TableStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _whole_chunks_before(state: TableState, cutoff: int) -> int:
    """The latest time <= cutoff that cuts no chunk (the first time of the first chunk kept)."""
    for c in state.chunks:
        if c.tmax >= cutoff:
            return c.tmin
    return cutoff


def _schema(name: str, schema: SchemaLike | None) -> Schema:
    if schema is None:
        if name not in TABLES:
            raise DataError(f"{name!r} is not a built-in table", hint="give its schema")
        return TABLES[name].schema
    if isinstance(schema, Schema):
        return schema
    if isinstance(schema, TableSpec):
        return schema.schema
    cols = []
    for col, spec in schema.items():
        if isinstance(spec, ColumnType):
            cols.append((col, spec))
            continue
        if isinstance(spec, DataType):
            dtype: DataType | None = spec
        elif isinstance(spec, str):
            dtype = DataType.__members__.get(spec.upper())
        else:
            dtype = from_polars(spec)
        if dtype is None:
            raise DataError(f"table {name!r}: column {col!r} has a type pxl cannot hold ({spec})")
        semantic = SemanticType.TIME if col == TIME else semantic_of(name, col)
        cols.append((col, ColumnType(dtype, semantic)))
    return Schema(tuple(cols))

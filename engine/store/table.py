"""One table of the store: appends, flushes, compaction, eviction and scans.

Two locks, never held while calling out of this module:

- ``_lock`` guards the swap of the current :class:`TableState` reference and is held for
  microseconds (an append, an install);
- ``_write`` serialises the writers that rebuild chunks — flush, compaction, eviction — which
  do their copying outside ``_lock``; appends never wait for it.

A reader takes the current state (one reference read) and from then on works on immutable
chunks: appends, compactions and evictions that follow do not change what it sees.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

from engine.errors import DataError
from engine.store.chunks import (
    Chunk,
    Pending,
    TableState,
    compact,
    compaction_runs,
    insert,
    rows_for_bytes,
)
from engine.store.schema import (
    SAMPLE_ROWS,
    TIME,
    Batch,
    Converter,
    choose_dictionary,
    frame_schema,
    normalise,
    with_sorted_time,
)
from engine.types import DataType, Schema

__all__ = ["Table", "Limits"]

_MAX_CONVERTERS = 64
#: A dictionary column whose codes pass this is stored as plain strings from then on
#: (its values are not few after all, and a dictionary never forgets a value).
MAX_CODES = 1_000_000


@dataclass
class Limits:
    """When a table flushes its pending batches and how large its chunks grow."""

    chunk_rows: int = 65_536
    flush_rows: int = 65_536
    flush_bytes: int = 64 << 20
    flush_seconds: float = 1.0


class Table:
    """Rows of one table: immutable time-ordered chunks plus batches waiting to be normalised."""

    def __init__(self, name: str, schema: Schema, dictionary: frozenset[str] | None,
                 limits: Limits) -> None:
        if schema.get(TIME) is None or schema[TIME].dtype is not DataType.TIME64NS:
            raise DataError(f"table {name!r} needs a {TIME} column of type TIME64NS",
                            hint="the store orders, windows and ages rows by time_")
        self.name, self.schema, self.limits = name, schema, limits
        self._lock = threading.Lock()
        self._write = threading.RLock()
        self._state = TableState(dictionary=dictionary)
        self._converters: dict[Any, Converter] = {}
        self._last_arrow: tuple[pa.Schema, Converter] | None = None
        self._pending_since = 0.0
        self.budget = 1 << 62
        self.max_age: int | None = None
        self.appended_rows = self.appended_batches = self.rejected_batches = 0
        self.evicted_rows = self.evicted_bytes = 0
        self.last_error: str | None = None

    @property
    def state(self) -> TableState:
        return self._state

    # --- appends
    def append(self, batch: Batch) -> int:
        """Check a batch and queue it; raises DataError (and counts it) if it does not fit."""
        try:
            conv = self._converter(batch)
            checked = conv.check(batch)
        except DataError as exc:
            with self._lock:
                self.rejected_batches += 1
                self.last_error = exc.message
            raise
        if checked.rows == 0:
            return 0
        entry = Pending(batch, conv, checked.rows, checked.nbytes, checked.tmin, checked.tmax,
                        checked.sorted)
        with self._lock:
            if not self._state.pending:
                self._pending_since = time.monotonic()
            self._state = self._state.with_pending(entry)
            self.appended_rows += checked.rows
            self.appended_batches += 1
        return checked.rows

    def _converter(self, batch: Batch) -> Converter:
        if isinstance(batch, pl.DataFrame):
            key: Any = (tuple(batch.columns), tuple(map(_dtype_key, batch.dtypes)))
        elif isinstance(batch, pa.RecordBatch | pa.Table):
            key = batch.schema
            last = self._last_arrow
            if last is not None and (key is last[0] or key.equals(last[0])):
                return last[1]
        else:
            raise DataError(f"table {self.name!r}: cannot append a {type(batch).__name__}",
                            hint="append a pyarrow RecordBatch/Table or a polars DataFrame")
        conv = self._converters.get(key)
        if conv is None:
            if isinstance(batch, pl.DataFrame):
                conv = Converter(self.name, self.schema, batch.columns, batch.dtypes, arrow=False)
            else:
                # a zero-row slice, not schema.empty_table(): that one imports pandas when it
                # is installed (~0.5 s and ~50 MB in a collector's first append)
                empty = pl.from_arrow(batch.slice(0, 0))
                conv = Converter(self.name, self.schema, empty.columns, empty.dtypes,  # type: ignore[union-attr]
                                 arrow=True)
            if len(self._converters) >= _MAX_CONVERTERS:
                self._converters.clear()
            self._converters[key] = conv
        if not isinstance(batch, pl.DataFrame):
            self._last_arrow = (key, conv)  # Arrow schemas are slow to hash: try the last first
        return conv

    def flush_due(self, flush_bytes: int) -> bool:
        s = self._state
        return bool(s.pending) and (
            s.pending_rows >= self.limits.flush_rows or s.pending_bytes >= flush_bytes
            or time.monotonic() - self._pending_since >= self.limits.flush_seconds)

    # --- writers (each under _write)
    def flush(self) -> TableState:
        """Normalise every pending batch into the chunks."""
        with self._write:
            return self._flush_locked()

    def _flush_locked(self) -> TableState:
        state = self._state
        if not state.pending:
            return state
        dictionary = state.dictionary
        frame = normalise(state.pending, dictionary or frozenset())
        chunks = state.chunks
        if dictionary is None and state.chunk_rows + frame.height >= SAMPLE_ROWS:
            sample = pl.concat([c.frame for c in chunks] + [frame])
            dictionary = choose_dictionary(self.schema, sample)
            chunks, frame = self._recode(chunks, dictionary), self._recode_frame(frame, dictionary)
        if dictionary:
            crowded = {c for c in dictionary
                       if (frame.get_column(c).to_physical().max() or 0) > MAX_CODES}
            if crowded:
                dictionary = dictionary - crowded
                chunks, frame = self._recode(chunks, dictionary), self._recode_frame(frame, dictionary)
        chunks = insert(chunks, Chunk.of(frame))
        with self._lock:
            self._state = self._state.with_chunks(chunks, len(state.pending), dictionary)
            self._pending_since = time.monotonic()
        return self._state

    def _recode_frame(self, frame: pl.DataFrame, dictionary: frozenset[str]) -> pl.DataFrame:
        want = frame_schema(self.schema, dictionary)
        return with_sorted_time(frame.with_columns(
            pl.col(c).cast(pl.String).cast(want[c]) for c, t in frame.schema.items() if t != want[c]))

    def _recode(self, chunks: tuple[Chunk, ...], dictionary: frozenset[str]) -> tuple[Chunk, ...]:
        return tuple(Chunk.of(self._recode_frame(c.frame, dictionary)) for c in chunks)

    def compact(self) -> int:
        """Merge runs of small chunks; returns how many chunks were merged away."""
        with self._write:
            return self._compact_locked()

    def _compact_locked(self) -> int:
        chunks = self._state.chunks
        runs = compaction_runs(chunks, self.limits.chunk_rows)
        if not runs:
            return 0
        merged = compact(chunks, runs)
        self._install(merged)
        return len(chunks) - len(merged)

    def evict_to(self, target: int, slack: int = 0) -> list[pl.DataFrame]:
        """Drop the oldest rows until the table holds at most ``target`` bytes. Whole chunks go
        while that leaves at least ``target - slack``; else the oldest chunk is cut (and its
        remainder copied, so the memory really is freed). Returns the rows dropped."""
        with self._write:
            if self._state.nbytes <= target:
                return []
            self._flush_locked()  # measure normalised rows, not raw batches,
            self._compact_locked()  # and merged chunks: merging later would shrink them below
            state = self._state  # the target (a run of small chunks costs more than one chunk)
            if state.nbytes <= target:
                return []
            excess = state.nbytes - target
            chunks, k, evicted = state.chunks, 0, []
            head: tuple[Chunk, ...] = ()
            while excess > 0 and k < len(chunks):
                c = chunks[k]
                k += 1
                if c.nbytes <= excess + slack:
                    evicted.append(c.frame)
                    excess -= c.nbytes
                    continue
                drop = rows_for_bytes(c, excess)
                evicted.append(c.frame.slice(0, drop))
                head = (c.copy(drop, c.rows),) if drop < c.rows else ()
                break
            return self._evicted(head + chunks[k:], evicted)

    def evict_older(self, cutoff: int) -> list[pl.DataFrame]:
        """Drop every row with time_ < cutoff (exactly); returns the rows dropped."""
        with self._write:
            state = self._flush_locked()
            chunks = state.chunks
            k = int(np.searchsorted(state.maxs, cutoff, "left")) if chunks else 0
            evicted = [c.frame for c in chunks[:k]]
            head: tuple[Chunk, ...] = ()
            if k < len(chunks) and chunks[k].tmin < cutoff:
                c = chunks[k]
                p = int(np.searchsorted(c.times, cutoff, "left"))
                evicted.append(c.frame.slice(0, p))
                head, k = (c.copy(p, c.rows),), k + 1
            if not evicted:
                return []
            return self._evicted(head + chunks[k:], evicted)

    def _evicted(self, chunks: tuple[Chunk, ...], evicted: list[pl.DataFrame]) -> list[pl.DataFrame]:
        before = self._state
        self._install(chunks)
        with self._lock:
            self.evicted_rows += sum(f.height for f in evicted)
            self.evicted_bytes += before.chunk_bytes - self._state.chunk_bytes
        return evicted

    def _install(self, chunks: tuple[Chunk, ...]) -> None:
        with self._lock:
            self._state = self._state.with_chunks(chunks)

    # --- readers
    def view(self) -> TableState:
        """A state with no pending batches: flushed in place if no writer is busy, else
        normalised privately (the store is left as it is)."""
        state = self._state
        if not state.pending:
            return state
        if self._write.acquire(blocking=False):
            try:
                return self._flush_locked()
            finally:
                self._write.release()
        frame = normalise(state.pending, state.dictionary or frozenset())
        return state.with_chunks(insert(state.chunks, Chunk.of(frame)), len(state.pending))

    def empty(self, state: TableState) -> pl.DataFrame:
        return with_sorted_time(pl.DataFrame(schema=frame_schema(self.schema,
                                                                 state.dictionary or frozenset())))

    def frame(self, state: TableState, start: int | None = None,
              end: int | None = None) -> pl.DataFrame:
        """The rows of a flushed state in [start, end), sorted by time_, without copying."""
        parts = state.window(start, end)
        if not parts:
            return self.empty(state)
        return parts[0] if len(parts) == 1 else pl.concat(parts, rechunk=False)

    def stats(self) -> dict[str, Any]:
        s = self._state
        times = [c.tmin for c in s.chunks[:1]] + [p.tmin for p in s.pending]
        ends = [c.tmax for c in s.chunks[-1:]] + [p.tmax for p in s.pending]
        return {
            "table_name": self.name, "num_rows": s.rows, "size_bytes": s.nbytes,
            "min_time": min(times) if times else None, "max_time": max(ends) if ends else None,
            "num_chunks": len(s.chunks), "pending_rows": s.pending_rows,
            "evicted_rows": self.evicted_rows, "rejected_batches": self.rejected_batches,
            "budget_bytes": self.budget, "max_age_ns": self.max_age,
            "dictionary_columns": sorted(s.dictionary or ()),
        }


_PLAIN = frozenset({pl.Int8, pl.Int16, pl.Int32, pl.Int64, pl.UInt8, pl.UInt16, pl.UInt32,
                    pl.UInt64, pl.Float32, pl.Float64, pl.Boolean, pl.String, pl.Null, pl.Date,
                    pl.Binary})


def _dtype_key(dtype: pl.DataType) -> Any:
    """A cheap cache key for a Polars dtype (their own __hash__/__eq__ are slow Python code,
    and an append looks up its batch's ~20 of them)."""
    cls = dtype.__class__
    if cls in _PLAIN:
        return cls
    if cls is pl.Datetime:
        return (cls, dtype.time_unit, dtype.time_zone)  # type: ignore[attr-defined]
    return dtype


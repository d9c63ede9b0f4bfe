"""A table's rows: immutable chunks in time order, and the time index over them.

Invariants (checked by the tests after every operation):

- every chunk is a single-chunk Polars frame sorted by ``time_`` (flagged sorted), with
  ``times`` an int64 numpy view of that column;
- chunks are in time order and do not overlap: ``chunks[i].tmax <= chunks[i + 1].tmin``;
- a :class:`TableState` is never changed: writers build a new one and swap a reference, so a
  reader holding one sees a stable, consistent set of rows (no torn reads).

A window ``[start, end)`` is two binary searches over the chunks' bounds plus one inside each
edge chunk, then zero-copy slices::

    chunks   |--a--|--b--|--c--|--d--|
    window        [ start ...... end )
    slices       a[i:] , b , c[:j]      (numpy searchsorted on the int64 views)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import polars as pl

from engine.store.schema import TIME, Batch, Converter, with_sorted_time

__all__ = ["Chunk", "Pending", "TableState", "insert", "compaction_runs", "compact", "copy_frame",
           "rows_for_bytes"]


@dataclass(frozen=True, eq=False)
class Pending:
    """A batch appended but not yet normalised into a chunk."""

    batch: Batch
    converter: Converter
    rows: int
    nbytes: int
    tmin: int
    tmax: int
    sorted: bool


@dataclass(frozen=True, eq=False)
class Chunk:
    """Rows of one table, contiguous in memory and sorted by time."""

    frame: pl.DataFrame
    times: np.ndarray
    nbytes: int

    @classmethod
    def of(cls, frame: pl.DataFrame) -> Chunk:
        frame = with_sorted_time(frame.rechunk())  # a no-op on contiguous columns
        times = frame.get_column(TIME).cast(pl.Int64).to_numpy()
        return cls(frame, times, int(frame.estimated_size()))

    @property
    def rows(self) -> int:
        return len(self.times)

    @property
    def tmin(self) -> int:
        return int(self.times[0])

    @property
    def tmax(self) -> int:
        return int(self.times[-1])

    def slice(self, lo: int, hi: int) -> Chunk:
        """Rows [lo, hi), sharing this chunk's memory."""
        if lo == 0 and hi == self.rows:
            return self
        frame = self.frame.slice(lo, hi - lo)
        return Chunk(frame, self.times[lo:hi], int(frame.estimated_size()))

    def copy(self, lo: int, hi: int) -> Chunk:
        """Rows [lo, hi) in memory of their own, so the rest of this chunk can be freed."""
        return Chunk.of(copy_frame(self.frame.slice(lo, hi - lo)))

    @cached_property
    def upids(self) -> frozenset[str]:
        """The distinct upids of this chunk (for metadata lifetimes); computed once."""
        if "upid" not in self.frame.columns:
            return frozenset()
        return frozenset(self.frame.get_column("upid").unique().drop_nulls().cast(pl.String))


def copy_frame(frame: pl.DataFrame) -> pl.DataFrame:
    """A deep copy (slices, clone and rechunk of one chunk all share buffers)."""
    if frame.height < 2:
        return pl.concat([frame, frame.clear()], rechunk=True).clone()
    return pl.concat([frame.slice(0, 1), frame.slice(1)], rechunk=True)


@dataclass(frozen=True, eq=False)
class TableState:
    """One immutable version of a table: its chunks, its pending batches and their sizes."""

    chunks: tuple[Chunk, ...] = ()
    pending: tuple[Pending, ...] = ()
    dictionary: frozenset[str] | None = frozenset()
    chunk_rows: int = 0
    chunk_bytes: int = 0
    pending_rows: int = 0
    pending_bytes: int = 0

    @property
    def rows(self) -> int:
        return self.chunk_rows + self.pending_rows

    @property
    def nbytes(self) -> int:
        return self.chunk_bytes + self.pending_bytes

    def with_pending(self, entry: Pending) -> TableState:
        return TableState(self.chunks, self.pending + (entry,), self.dictionary, self.chunk_rows,
                          self.chunk_bytes, self.pending_rows + entry.rows,
                          self.pending_bytes + entry.nbytes)

    def with_chunks(self, chunks: tuple[Chunk, ...], flushed: int = 0,
                    dictionary: frozenset[str] | None | bool = False) -> TableState:
        """The same pending batches minus the first ``flushed``, over new chunks."""
        pending = self.pending[flushed:]
        return TableState(chunks, pending,
                          self.dictionary if dictionary is False else dictionary,  # type: ignore[arg-type]
                          sum(c.rows for c in chunks), sum(c.nbytes for c in chunks),
                          sum(p.rows for p in pending), sum(p.nbytes for p in pending))

    @cached_property
    def mins(self) -> np.ndarray:
        return np.fromiter((c.tmin for c in self.chunks), np.int64, len(self.chunks))

    @cached_property
    def maxs(self) -> np.ndarray:
        return np.fromiter((c.tmax for c in self.chunks), np.int64, len(self.chunks))

    def window(self, start: int | None, end: int | None) -> list[pl.DataFrame]:
        """The chunk slices holding exactly the rows with start <= time_ < end, in time order."""
        chunks = self.chunks
        if not chunks:
            return []
        lo = 0 if start is None else int(np.searchsorted(self.maxs, start, "left"))
        hi = len(chunks) if end is None else int(np.searchsorted(self.mins, end, "left"))
        out = []
        for i in range(lo, hi):
            c = chunks[i]
            a = 0 if start is None or c.tmin >= start else int(np.searchsorted(c.times, start))
            b = c.rows if end is None or c.tmax < end else int(np.searchsorted(c.times, end))
            if b > a:
                out.append(c.frame if a == 0 and b == c.rows else c.frame.slice(a, b - a))
        return out


def insert(chunks: tuple[Chunk, ...], new: Chunk) -> tuple[Chunk, ...]:
    """Chunks with the (sorted) rows of ``new`` added, keeping the time order.

    New rows usually come after every chunk and become one more chunk. Rows older than the newest
    chunk (a late batch) are split by the chunk whose time range they fall in; each such chunk is
    cut where the late rows begin, and only its tail is re-sorted with them, so a batch a few
    milliseconds late costs those milliseconds' worth of rows, not a whole chunk::

        before  |--a--|--b--------|        late rows   ..x..x.....
        after   |--a--|--b[:p]--|--sort(b[p:] + late)--|
    """
    if new.rows == 0:
        return chunks
    if not chunks or new.tmin >= chunks[-1].tmax:
        return chunks + (new,)
    mins = np.fromiter((c.tmin for c in chunks), np.int64, len(chunks))
    target = np.searchsorted(mins, new.times, "right") - 1
    np.maximum(target, 0, out=target)
    first = int(target[0])
    bounds = np.searchsorted(target, np.arange(first, len(chunks) + 1), "left")
    out = list(chunks[:first])
    for j in range(first, len(chunks)):
        a, b = int(bounds[j - first]), int(bounds[j - first + 1])
        c = chunks[j]
        if a == b:
            out.append(c)
            continue
        piece = new.frame.slice(a, b - a)
        p = int(np.searchsorted(c.times, new.times[a], "right"))
        if p > 0:
            out.append(c.slice(0, p))
        if p < c.rows:
            piece = pl.concat([c.frame.slice(p), piece]).sort(TIME, maintain_order=True)
        out.append(Chunk.of(piece))
    return tuple(out)


def compaction_runs(chunks: tuple[Chunk, ...], target_rows: int,
                    min_run: int = 8) -> list[tuple[int, int]]:
    """Runs [i, j) of adjacent small chunks to merge: each reaches ``target_rows`` rows, or holds
    at least ``min_run`` chunks (a slow table's chunks grow by merging again later)."""
    runs, i, n = [], 0, len(chunks)
    while i < n:
        if chunks[i].rows >= target_rows:
            i += 1
            continue
        j, rows = i, 0
        while j < n and chunks[j].rows < target_rows and rows < target_rows:
            rows += chunks[j].rows
            j += 1
        if j - i >= 2 and (rows >= target_rows or j - i >= min_run):
            runs.append((i, j))
        i = j
    return runs


def compact(chunks: tuple[Chunk, ...], runs: list[tuple[int, int]]) -> tuple[Chunk, ...]:
    """Chunks with each run merged into one contiguous chunk."""
    out, pos = [], 0
    for i, j in runs:
        out.extend(chunks[pos:i])
        out.append(Chunk.of(pl.concat([c.frame for c in chunks[i:j]], rechunk=True)))
        pos = j
    out.extend(chunks[pos:])
    return tuple(out)


def rows_for_bytes(chunk: Chunk, nbytes: int) -> int:
    """How many of a chunk's first rows hold at least ``nbytes`` (by its mean row size)."""
    per_row = chunk.nbytes / max(chunk.rows, 1)
    return min(chunk.rows, max(1, math.ceil(nbytes / per_row))) if per_row else chunk.rows


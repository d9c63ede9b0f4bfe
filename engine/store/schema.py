"""Batches in, table rows out: checking a batch against its table, and normalising it.

An append does only the cheap part, :meth:`Converter.check` (the batch's schema is looked up in a
small cache, ``time_`` is read as an int64 numpy view for its bounds and order); the costly part —
Arrow → Polars, casts, dictionary encoding, sorting — runs later on many batches at once in
:func:`normalise`, where its per-column overheads are paid once per ~64k rows instead of per batch.

Dictionary columns (a Polars Categorical of :func:`engine.dictionary.dictionary_dtype`):
built-in tables encode the strings of :data:`DICTIONARY_COLUMNS` that they have (few distinct
values, repeated on every row); a table created with its own schema decides from its first
:data:`SAMPLE_ROWS` rows, by the rule of :func:`engine.dictionary.encode_low_cardinality`.

>>> from engine.tables import TABLES
>>> sorted(dictionary_columns(TABLES["http_events"].schema))[:3]
['local_addr', 'remote_addr', 'req_method']
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from engine.arrowio import buffer_values
from engine.dictionary import MAX_CATEGORIES, dictionary_dtype
from engine.errors import DataError
from engine.types import DataType, Schema

if TYPE_CHECKING:
    from engine.store.chunks import Pending

__all__ = ["Batch", "Converter", "DICTIONARY_COLUMNS", "SAMPLE_ROWS", "dictionary_columns",
           "choose_dictionary", "normalise", "frame_schema", "TIME"]

Batch = pa.RecordBatch | pa.Table | pl.DataFrame
TIME = "time_"
#: Strings of the built-in tables held as dictionary columns: processes, addresses, methods,
#: paths, reason phrases, command names — a few hundred values repeated on millions of rows.
DICTIONARY_COLUMNS = frozenset({"upid", "remote_addr", "local_addr", "req_method", "req_path",
                                "resp_message", "req_cmd", "comm"})
#: A table with its own schema picks its dictionary columns once this many rows have arrived.
SAMPLE_ROWS = 10_000
_I64_MAX = 2**63 - 1
_UNIT_NS = {"ns": 1, "us": 1_000, "ms": 1_000_000}


def dictionary_columns(schema: Schema) -> frozenset[str]:
    """The dictionary columns of a built-in table."""
    return frozenset(n for n, t in schema.columns
                     if t.dtype is DataType.STRING and n in DICTIONARY_COLUMNS)


def choose_dictionary(schema: Schema, sample: pl.DataFrame) -> frozenset[str]:
    """String columns whose sample has at most a tenth as many distinct values as rows."""
    out = set()
    for name, ctype in schema.columns:
        if ctype.dtype is DataType.STRING and name in sample.columns and sample.height:
            distinct = sample.get_column(name).n_unique()
            if distinct <= MAX_CATEGORIES and distinct * 10 <= sample.height:
                out.add(name)
    return frozenset(out)


def frame_schema(schema: Schema, dictionary: frozenset[str]) -> dict[str, pl.DataType]:
    """The Polars dtypes of a table's stored frames."""
    return {n: dictionary_dtype(n) if n in dictionary else t.dtype.polars
            for n, t in schema.columns}


@dataclass(frozen=True)
class Checked:
    """What an append learns of a batch: its size, time bounds and whether it is time-sorted."""

    rows: int
    nbytes: int
    tmin: int
    tmax: int
    sorted: bool


class Converter:
    """How batches of one input schema become rows of one table; built once per input schema."""

    def __init__(self, table: str, schema: Schema, names: Sequence[str],
                 dtypes: Sequence[pl.DataType], *, arrow: bool) -> None:
        self.table, self.schema, self.arrow = table, schema, arrow
        self.names = list(names)
        self.dtypes = dict(zip(names, dtypes, strict=True))
        self._exprs: dict[frozenset[str], list[pl.Expr]] = {}
        if len(set(self.names)) != len(self.names):
            dup = next(n for n in self.names if self.names.count(n) > 1)
            raise self.error(f"column {dup!r} appears twice")
        for name in schema.names:
            if name not in self.dtypes:
                raise self.error(f"column {name!r} is missing",
                                 "send every column of the table, empty values as nulls")
        for name in self.names:
            if name not in schema:
                raise self.error(f"column {name!r} is not a column of this table",
                                 f"its columns are {', '.join(schema.names)}")
        self.time_unit = _time_unit(self.dtypes[TIME])
        for name, ctype in schema.columns:
            problem = _problem(self.dtypes[name], ctype.dtype, name == TIME)
            if problem:
                raise self.error(f"column {name!r}: expected {ctype.dtype}, got {problem}")
        #: Columns whose values must be checked to fit an int64 (unsigned 64-bit input).
        self.unsigned = [n for n, d in self.dtypes.items() if d == pl.UInt64]
        self.index = {n: i for i, n in enumerate(self.names)}

    def error(self, problem: str, hint: str | None = None) -> DataError:
        return DataError(f"batch for table {self.table!r} rejected: {problem}",
                         hint=hint or "nothing of this batch was stored")

    # --- the append side: cheap checks, no copies of the data
    def check(self, batch: Batch) -> Checked:
        times = self.times(batch)
        for name in self.unsigned:
            col = _column(batch, name, self.index)
            top = pc.max(col).as_py() if self.arrow else col.max()
            if top is not None and top > _I64_MAX:
                raise self.error(f"column {name!r}: value {top} does not fit an INT64")
        n = len(times)
        ordered = n < 2 or bool((times[1:] >= times[:-1]).all())
        if n == 0:
            tmin, tmax = 0, -1
        elif ordered:
            tmin, tmax = int(times[0]), int(times[-1])
        else:
            tmin, tmax = int(times.min()), int(times.max())
        nbytes = (batch.get_total_buffer_size() if self.arrow  # type: ignore[union-attr]
                  else int(batch.estimated_size()))  # type: ignore[union-attr]
        return Checked(n, nbytes, tmin, tmax, ordered)

    def times(self, batch: Batch) -> np.ndarray:
        """``time_`` as int64 ns (a view where the input already is int64 ns)."""
        col = _column(batch, TIME, self.index)
        nulls = col.null_count if self.arrow else col.null_count()
        if nulls:
            raise self.error(f"column {TIME!r} has {nulls} empty values", "every row needs a time")
        try:
            if self.arrow:
                if col.type != pa.int64():
                    col = (col.view(pa.int64()) if pa.types.is_timestamp(col.type)
                           and isinstance(col, pa.Array) else col.cast(pa.int64()))
                values = buffer_values(col)
            else:
                values = col.cast(pl.Int64).to_numpy()
        except (pa.ArrowException, pl.exceptions.PolarsError) as exc:
            raise self.error(f"column {TIME!r}: {str(exc).splitlines()[0]}") from None
        scale = _UNIT_NS[self.time_unit] if self.time_unit else 1
        return values * scale if scale != 1 else values

    # --- the flush side: many batches at once
    def exprs(self, dictionary: frozenset[str]) -> list[pl.Expr]:
        out = self._exprs.get(dictionary)
        if out is None:
            out = self._exprs[dictionary] = [
                _cast(n, self.dtypes[n], t.dtype, n in dictionary) for n, t in self.schema.columns]
        return out

    def to_polars(self, batches: Sequence[Batch]) -> pl.DataFrame:
        if self.arrow:
            tables = [pa.Table.from_batches([b]) if isinstance(b, pa.RecordBatch) else b
                      for b in batches]
            table = tables[0] if len(tables) == 1 else pa.concat_tables(tables)
            return pl.from_arrow(table)  # type: ignore[return-value]
        frames = list(batches)
        return frames[0] if len(frames) == 1 else pl.concat(frames, rechunk=False)  # type: ignore[arg-type]


def normalise(entries: Sequence[Pending], dictionary: frozenset[str]) -> pl.DataFrame:
    """Pending batches (in append order) → one contiguous frame of the table, sorted by time_."""
    parts = []
    i = 0
    while i < len(entries):
        j = i + 1
        while j < len(entries) and entries[j].converter is entries[i].converter:
            j += 1
        conv = entries[i].converter
        frame = conv.to_polars([e.batch for e in entries[i:j]])
        parts.append(frame.select(conv.exprs(dictionary)))
        i = j
    out = (parts[0] if len(parts) == 1 else pl.concat(parts, rechunk=False)).rechunk()
    ordered = all(e.sorted for e in entries) and all(
        a.tmax <= b.tmin for a, b in zip(entries, entries[1:], strict=False) if a.rows and b.rows)
    if not ordered:
        out = out.sort(TIME, maintain_order=True)
    return with_sorted_time(out)


def with_sorted_time(frame: pl.DataFrame) -> pl.DataFrame:
    """Flag ``time_`` sorted for Polars (it does not infer it) without copying the frame."""
    col = frame.get_column(TIME)
    if col.flags["SORTED_ASC"]:
        return frame
    out = frame.clone()
    out.replace_column(out.get_column_index(TIME), col.set_sorted())
    return out


def _column(batch: Batch, name: str, index: dict[str, int]):  # type: ignore[no-untyped-def]
    if isinstance(batch, pl.DataFrame):
        return batch.get_column(name)
    return batch.column(index[name])


def _time_unit(dtype: pl.DataType) -> str | None:
    return dtype.time_unit if isinstance(dtype, pl.Datetime) else None  # type: ignore[return-value]


def _problem(dtype: pl.DataType, target: DataType, is_time: bool) -> str | None:
    """Why a column of ``dtype`` cannot be stored as ``target`` (None if it can)."""
    if dtype == pl.Null and not is_time:
        return None
    ok = {
        DataType.TIME64NS: isinstance(dtype, pl.Datetime) or dtype.is_integer(),
        DataType.INT64: dtype.is_integer(),
        DataType.FLOAT64: dtype.is_integer() or dtype.is_float(),
        DataType.BOOLEAN: dtype == pl.Boolean,
        DataType.STRING: dtype == pl.String or isinstance(dtype, pl.Categorical | pl.Enum),
    }.get(target, False)
    return None if ok else f"{dtype}"


def _cast(name: str, dtype: pl.DataType, target: DataType, dictionary: bool) -> pl.Expr:
    e = pl.col(name)
    if target is DataType.TIME64NS:
        if isinstance(dtype, pl.Datetime):
            if dtype.time_zone is not None:
                e = e.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
            return e if dtype == pl.Datetime("ns") else e.cast(pl.Datetime("ns"))
        return e.cast(pl.Int64).cast(pl.Datetime("ns"))
    if target is DataType.STRING:
        if dictionary:
            want = dictionary_dtype(name)
            if dtype == want:
                return e
            return e.cast(want) if dtype in (pl.String, pl.Null) else e.cast(pl.String).cast(want)
        return e if dtype == pl.String else e.cast(pl.String)
    want = target.polars
    return e if dtype == want else e.cast(want)

"""Process metadata by upid, kept apart from the tables and for longer than their rows.

Collectors upsert what they learn of a process (pid, start time, cmdline, container, pod,
service, namespace, node, deployment, replicaset); a later upsert fills in or overrides the
values it has, and leaves the others. An entry lives while some table holds rows of its upid, and
for a grace period after (default 15 minutes, counted from the later of its last upsert and the
last time rows of it were seen); past a cap on entries the longest-unused ones go first.

>>> meta = ProcessMetadata(clock=lambda: 0)
>>> meta.upsert([{"upid": "1-2-3", "pod": "shop/cart-0"}, {"upid": "1-2-3", "service": "shop/cart"}])
2
>>> meta.frame().select("upid", "pod", "service").row(0)
('1-2-3', 'shop/cart-0', 'shop/cart')
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import polars as pl
import pyarrow as pa

from engine.errors import DataError
from engine.functions.metadata import METADATA_COLUMNS

__all__ = ["ProcessMetadata", "METADATA_SCHEMA"]

#: The known columns and their types; other columns a collector sends are kept as strings.
METADATA_SCHEMA: dict[str, pl.DataType] = {
    "upid": pl.String(), "pid": pl.Int64(), "start_time": pl.Datetime("ns"),
    **{c: pl.String() for c in METADATA_COLUMNS if c != "upid"},
}
_NS = 1_000_000_000

MetadataRows = pl.DataFrame | pa.Table | Iterable[Mapping[str, Any]]


class ProcessMetadata:
    """A upid → attributes map with lifetimes; thread-safe."""

    def __init__(self, *, grace_ns: int = 15 * 60 * _NS, max_entries: int = 100_000,
                 clock: Callable[[], int] = time.time_ns) -> None:
        self.grace_ns, self.max_entries, self.clock = grace_ns, max_entries, clock
        self._rows: dict[str, dict[str, Any]] = {}
        self._seen: dict[str, int] = {}
        self._extra: dict[str, None] = {}
        self._frame: pl.DataFrame | None = None
        self._lock = threading.Lock()
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._rows)

    def upsert(self, rows: MetadataRows) -> int:
        """Add or update entries; returns how many rows were read."""
        frame = _as_frame(rows)
        now = self.clock()
        records = frame.with_columns(pl.col(c).cast(pl.Int64) for c, t in frame.schema.items()
                                     if isinstance(t, pl.Datetime)).to_dicts()
        with self._lock:
            for rec in records:
                upid = rec.pop("upid")
                entry = self._rows.setdefault(upid, {})
                entry.update((k, v) for k, v in rec.items() if v is not None)
                self._seen[upid] = max(self._seen.get(upid, now), now)
            for col in frame.columns:
                if col not in METADATA_SCHEMA:
                    self._extra[col] = None
            self._frame = None
        return len(records)

    def frame(self) -> pl.DataFrame:
        """Every entry, one row per upid: a String ``upid`` and the columns of METADATA_SCHEMA
        (plus any other column a collector sent, as strings)."""
        with self._lock:
            if self._frame is None:
                schema = {**METADATA_SCHEMA, **{c: pl.String() for c in self._extra}}
                data = {c: pl.Series(c, [row.get(c) for row in self._rows.values()],
                                     dtype=pl.Int64 if t == pl.Datetime("ns") else t).cast(t)
                        for c, t in schema.items() if c != "upid"}
                self._frame = pl.DataFrame([pl.Series("upid", list(self._rows), pl.String),
                                            *data.values()])
            return self._frame

    def expire(self, live: Iterable[str], now: int | None = None) -> int:
        """Forget entries unused for the grace period (``live`` upids have rows now), then the
        longest-unused past the cap; returns how many went."""
        now = self.clock() if now is None else now
        with self._lock:
            for upid in live:
                if upid in self._rows:
                    self._seen[upid] = now
            gone = [u for u in self._rows if now - self._seen.get(u, now) > self.grace_ns]
            over = len(self._rows) - len(gone) - self.max_entries
            if over > 0:
                going = set(gone)
                kept = sorted((u for u in self._rows if u not in going), key=self._seen.get)
                gone.extend(kept[:over])
            for upid in gone:
                del self._rows[upid]
                self._seen.pop(upid, None)
            if gone:
                self._frame = None
                self.dropped += len(gone)
            return len(gone)


def _as_frame(rows: MetadataRows) -> pl.DataFrame:
    if isinstance(rows, pa.Table):
        frame = pl.from_arrow(rows)
    elif isinstance(rows, pl.DataFrame):
        frame = rows
    else:
        frame = pl.DataFrame(list(rows), infer_schema_length=None)
    assert isinstance(frame, pl.DataFrame)
    if "upid" not in frame.columns:
        raise DataError("process metadata needs a 'upid' column")
    casts = []
    for col, dtype in frame.schema.items():
        want = METADATA_SCHEMA.get(col, pl.String())
        if dtype == want:
            continue
        if isinstance(dtype, pl.Datetime) and dtype.time_zone is not None:
            casts.append(pl.col(col).dt.convert_time_zone("UTC").dt.replace_time_zone(None)
                         .cast(pl.Datetime("ns")))
        elif want == pl.Datetime("ns") and (dtype.is_integer() or isinstance(dtype, pl.Datetime)):
            casts.append(pl.col(col).cast(pl.Datetime("ns")))
        else:
            casts.append(pl.col(col).cast(want, strict=True))
    try:
        frame = frame.with_columns(casts)
    except pl.exceptions.PolarsError as exc:
        raise DataError(f"process metadata: {str(exc).splitlines()[0]}",
                        hint=f"columns and types: {METADATA_SCHEMA}") from None
    if frame.get_column("upid").null_count():
        raise DataError("process metadata: every row needs a upid")
    return frame

"""How much each table may hold, for how long, and where evicted rows go.

The store has one byte budget (by default a tenth of the host's memory, at most 4 GiB). Each
table gets a share of it: as in Pixie, ``http_events`` the largest (40 %), the other tables the
rest in equal parts; every share can be set. A table may also have a maximum age.

Eviction keeps a table within 10 % of its budget: past the budget the oldest chunks go (whole
while that leaves at least 90 % of the budget, else the oldest chunk is cut) down to 95 %; a
background pass does it, and an append that finds its table 5 % over does it at once.

>>> table_budgets(1000, ["http_events", "conn_stats", "dns_events"], DEFAULT_SHARES)
{'http_events': 400, 'conn_stats': 300, 'dns_events': 300}
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from engine.catalog import SEMANTIC_KEY
from engine.errors import DataError
from engine.timeutil import parse_duration
from engine.types import Schema

__all__ = ["DEFAULT_SHARES", "default_budget", "table_budgets", "parse_age", "Spill",
           "to_arrow", "HIGH", "LOW", "SLACK"]

DEFAULT_SHARES: Mapping[str, float] = {"http_events": 0.40}
#: An append that finds its table this far over budget evicts at once (else the background does).
HIGH = 1.05
#: Eviction brings a table down to this fraction of its budget ...
LOW = 0.95
#: ... dropping whole chunks while that leaves at least (LOW - SLACK) of it.
SLACK = 0.05
_CAP = 4 << 30


def default_budget(meminfo: str = "/proc/meminfo") -> int:
    """A tenth of the host's memory, at most 4 GiB (1 GiB if the size cannot be read)."""
    try:
        with open(meminfo) as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return min(_CAP, int(line.split()[1]) * 1024 // 10)
    except (OSError, ValueError, IndexError):
        pass
    return 1 << 30


def table_budgets(total: int, names: Iterable[str], shares: Mapping[str, float]) -> dict[str, int]:
    """Each table's bytes: its share if set, else an equal part of what the set shares leave.
    Shares summing past 1 (or leaving nothing for the others) are scaled to fit."""
    names = list(names)
    fixed = {n: max(0.0, float(shares[n])) for n in names if n in shares}
    rest = [n for n in names if n not in fixed]
    used = sum(fixed.values())
    if used > 1 or (not rest and used > 0):
        fixed = {n: s / used for n, s in fixed.items()}
        used = 1.0
    left = (1.0 - used) / len(rest) if rest else 0.0
    return {n: int(total * (fixed[n] if n in fixed else left)) for n in names}


def parse_age(value: str | int | float | dt.timedelta | None) -> int | None:
    """A maximum age as ns: '15m', '2h' (a duration), a timedelta, or an int of ns; None = none."""
    if value is None:
        return None
    if isinstance(value, dt.timedelta):
        ns = int(value.total_seconds() * 1e9)
    elif isinstance(value, str):
        try:
            ns = parse_duration(value)
        except ValueError:
            raise DataError(f"{value!r} is not a duration", hint="write '15m', '2h' or '7d'") from None
    elif isinstance(value, int | float) and not isinstance(value, bool):
        ns = int(value)
    else:
        raise DataError(f"a maximum age cannot be a {type(value).__name__}",
                        hint="give a duration such as '15m', a timedelta or ns")
    if ns <= 0:
        raise DataError(f"a maximum age must be positive, not {value!r}")
    return ns


def to_arrow(frame: pl.DataFrame, schema: Schema) -> pa.Table:
    """A frame as Arrow for files: dictionary columns as plain strings, semantic types kept in
    field metadata (which :class:`engine.catalog.MemoryCatalog` reads back)."""
    frame = frame.with_columns(pl.col(c).cast(pl.String) for c, t in frame.schema.items()
                               if isinstance(t, pl.Categorical))
    table = frame.to_arrow(compat_level=pl.CompatLevel.oldest())
    fields = []
    for f in table.schema:
        ctype = schema.get(f.name)
        meta = {SEMANTIC_KEY: str(ctype.semantic).encode()} if ctype is not None else None
        fields.append(f.with_metadata(meta) if meta else f)
    return table.cast(pa.schema(fields))


class Spill:
    """Evicted rows written to Parquet, one directory per table, one file per eviction, named
    ``<first time>-<last time>-<sequence>.parquet`` so a directory listing is in time order."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._seq = 0
        self.files = 0
        self.rows = 0

    def write(self, table: str, schema: Schema, frames: list[pl.DataFrame]) -> list[Path]:
        paths = []
        for frame in frames:
            if frame.height == 0:
                continue
            with self._lock:
                self._seq += 1
                seq = self._seq
            times = frame.get_column("time_").cast(pl.Int64)
            folder = self.directory / table
            folder.mkdir(exist_ok=True)
            path = folder / f"{times[0]:020d}-{times[-1]:020d}-{seq:06d}.parquet"
            pq.write_table(to_arrow(frame, schema), path)
            with self._lock:
                self.files += 1
                self.rows += frame.height
            paths.append(path)
        return paths

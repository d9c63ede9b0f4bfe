"""How query results are shown to a person and written to files.

A result is a list of outputs (one per ``px.display``), each a named Polars frame with its plan
schema. The schema's semantic types drive human formatting ("1.2 ms", "3.4 MiB") in tables; the
writers keep values exact (RFC 3339 nanosecond times, quantiles as JSON objects) and Parquet/Arrow
files carry each column's semantic type in the field metadata (``pxl.semantic``).

>>> humanize(1_234_000, ColumnType(DataType.INT64, SemanticType.DURATION_NS))
'1.23 ms'
>>> humanize(3 * 1024**2, ColumnType(DataType.INT64, SemanticType.BYTES))
'3 MiB'
"""

from __future__ import annotations

import datetime as dt
import functools
import io
import json
import math
import re
import shutil
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from engine.arrowio import SEMANTIC_KEY, arrow_schema, semantics_of
from engine.types import NUMERIC, ColumnType, DataType, Schema, SemanticType, from_polars

__all__ = [
    "Output",
    "humanize",
    "format_table",
    "format_results",
    "write_ndjson",
    "write_csv",
    "write_files",
    "read_semantics",
    "SEMANTIC_KEY",
    "TABLE_NAME_KEY",
    "FORMATS",
]

TABLE_NAME_KEY = "_tableName_"
RFC3339_NS = "%Y-%m-%dT%H:%M:%S.%9fZ"
MIN_WIDTH = 40
#: Accepted file suffixes per format; the first is used for files written into a directory.
FORMATS: dict[str, tuple[str, ...]] = {
    "parquet": (".parquet",),
    "arrow": (".arrow", ".feather", ".ipc"),
    "csv": (".csv",),
    "json": (".json", ".ndjson", ".jsonl"),
}
_ROWS_HINT = "(use -o csv/json or --max-rows)"
#: Data types whose cells are elided before numbers, times and booleans are.
_SQUEEZABLE = frozenset({DataType.STRING, DataType.QUANTILES})
_NDJSON_CHUNK = 250_000
St = SemanticType


class Result(Protocol):
    """Anything shaped like an :class:`Output` (read-only name, frame and schema)."""

    @property
    def name(self) -> str: ...

    @property
    def frame(self) -> pl.DataFrame: ...

    @property
    def schema(self) -> Schema: ...


@dataclass(frozen=True, eq=False)
class Output:
    """One displayed table of a query result."""

    name: str
    frame: pl.DataFrame
    schema: Schema


# ---------------------------------------------------------------------------------------------
# humanize: one value as a person reads it
# ---------------------------------------------------------------------------------------------

_Units = tuple[tuple[str, float, float], ...]  # (suffix, factor, first value of the next unit)
_DURATION_UNITS: _Units = (
    (" ns", 1.0, 1e3), (" µs", 1e3, 1e3), (" ms", 1e6, 1e3),
    (" s", 1e9, 60.0), (" min", 60e9, 60.0), (" h", 3600e9, math.inf),
)
_BYTE_UNITS: _Units = tuple(
    (f" {u}", 1024.0**i, 1024.0 if u != "EiB" else math.inf)
    for i, u in enumerate(("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"))
)
_RATE_UNITS: _Units = (
    ("", 1.0, 1e3), ("k", 1e3, 1e3), ("M", 1e6, 1e3), ("G", 1e9, 1e3), ("T", 1e12, math.inf),
)


def _significant(x: float, digits: int = 3) -> str:
    """``x`` to ``digits`` significant digits, never scientific, trailing zeros dropped."""
    if x == 0 or not math.isfinite(x):
        return "0" if x == 0 else _nonfinite(x)
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(x))))
    text = f"{x:.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def _nonfinite(x: float) -> str:
    return "NaN" if math.isnan(x) else ("inf" if x > 0 else "-inf")


def _scaled(x: float, units: _Units) -> str:
    """``x`` in the first unit where its rounded magnitude stays below the next unit's."""
    if not math.isfinite(x):
        return _nonfinite(x)
    for suffix, factor, limit in units:
        text = _significant(x / factor)
        if abs(float(text)) < limit:
            return text + suffix
    raise AssertionError("unreachable: the last unit has no limit")


def format_duration(ns: float) -> str:
    """Nanoseconds as "850 ns", "12.3 µs", "1.2 ms", "3.4 s", "2.5 min", "1.5 h"."""
    return _scaled(ns, _DURATION_UNITS)


def format_bytes(n: float) -> str:
    """A byte count in binary units: "512 B", "3.4 KiB", "12 MiB", "1.1 GiB"."""
    return _scaled(n, _BYTE_UNITS)


def format_float(x: float) -> str:
    """Up to 4 decimals (4 significant digits below 1); scientific only for extreme magnitudes."""
    if x == 0 or not math.isfinite(x):
        return "0" if x == 0 else _nonfinite(x)
    a = abs(x)
    if a >= 1e15 or a < 1e-6:
        return f"{x:.4g}"
    decimals = 4 if a >= 1 else 3 - math.floor(math.log10(a))
    text = f"{x:.{decimals}f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def format_time(value: object) -> str:
    """A timestamp (datetime, or int ns since the epoch) as UTC with millisecond precision."""
    if isinstance(value, int):
        try:
            value = dt.datetime(1970, 1, 1) + dt.timedelta(microseconds=value // 1000)
        except OverflowError:
            return str(value)
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return (f"{value.year:04d}-{value.month:02d}-{value.day:02d} "
                f"{value.hour:02d}:{value.minute:02d}:{value.second:02d}"
                f".{value.microsecond // 1000:03d}")
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


_NUMBER_FORMATS: dict[SemanticType, Callable[[float], str]] = {
    St.DURATION_NS: format_duration,
    St.BYTES: format_bytes,
    St.PERCENT: lambda v: _significant(v) + "%",
    St.THROUGHPUT_PER_NS: lambda v: _scaled(v * 1e9, _RATE_UNITS) + "/s",
    St.THROUGHPUT_BYTES_PER_NS: lambda v: format_bytes(v * 1e9) + "/s",
}
_SHOWN_QUANTILES = ("p50", "p90", "p99")


def _format_quantiles(value: object, semantic: SemanticType) -> str:
    """A quantiles struct (or its JSON text) as "p50=… p90=… p99=…"."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return value
    if not isinstance(value, dict):
        return str(value)
    keys = [k for k in _SHOWN_QUANTILES if k in value] or list(value)
    number = format_duration if semantic is St.DURATION_NS_QUANTILES else format_float
    parts = []
    for key in keys:
        v = value[key]
        parts.append(f"{key}={'null' if v is None else number(v)}")
    return " ".join(parts)


def humanize(value: object, ctype: ColumnType) -> str:
    """One value as shown in a table, formatted by its column's semantic and data type."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    semantic = ctype.semantic
    if semantic in (St.QUANTILES, St.DURATION_NS_QUANTILES) or ctype.dtype is DataType.QUANTILES:
        return _format_quantiles(value, semantic)
    if isinstance(value, dt.date) or (semantic is St.TIME and isinstance(value, int)):
        return format_time(value)
    if isinstance(value, int | float):
        if semantic in _NUMBER_FORMATS:
            return _NUMBER_FORMATS[semantic](value)
        return str(value) if isinstance(value, int) else format_float(value)
    if isinstance(value, str):
        return value
    return str(value)


# ---------------------------------------------------------------------------------------------
# Tables
# ---------------------------------------------------------------------------------------------

_BIDI_CONTROLS = [*range(0x200E, 0x2010), *range(0x202A, 0x202F), *range(0x2066, 0x206A)]
_ESCAPES: dict[int, str] = {
    c: f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}"
    for c in [*range(0x20), *range(0x7F, 0xA0), 0x2028, 0x2029, *_BIDI_CONTROLS,
              *range(0xD800, 0xE000)]
}
_ESCAPES.update({ord("\n"): "\\n", ord("\t"): "\\t", ord("\r"): "\\r"})


def _escape(text: str) -> str:
    """Control characters (and line/bidi separators, lone surrogates) as visible escapes."""
    return text.translate(_ESCAPES)


@functools.lru_cache(maxsize=4096)
def _char_width(ch: str) -> int:
    if unicodedata.combining(ch) or unicodedata.category(ch) in ("Mn", "Me", "Cf"):
        return 0
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def _display_width(text: str) -> int:
    if text.isascii():
        return len(text)
    return sum(_char_width(ch) for ch in text)


def _elide(text: str, width: int) -> str:
    """``text`` cut to at most ``width`` terminal columns, ending in "…" when cut."""
    if _display_width(text) <= width:
        return text
    if width <= 0:
        return ""
    kept, used = [], 0
    for ch in text:
        w = _char_width(ch)
        if used + w > width - 1:
            break
        kept.append(ch)
        used += w
    return "".join(kept) + "…"


def _pad(text: str, width: int, right: bool) -> str:
    text = _elide(text, width)
    fill = " " * (width - _display_width(text))
    return fill + text if right else text + fill


def _cell(text: str, width: int) -> str:
    """Escaped cell text; very long values are cut early (they could never be shown whole)."""
    limit = 4 * width
    if len(text) > limit:
        text = text[:limit] + "…"
    return _escape(text)


def _column_types(out: Result) -> list[tuple[str, ColumnType]]:
    """Each frame column with its plan type (from the schema, else derived from Polars)."""
    cols = []
    for name, dtype in out.frame.schema.items():
        ctype = out.schema.get(name) if out.schema is not None else None
        cols.append((name, ctype or ColumnType(from_polars(dtype) or DataType.STRING)))
    return cols


def _share(natural: Sequence[int], budget: int) -> list[int]:
    """Split ``budget`` columns among cells wanting ``natural`` widths; the widest shrink first."""
    alloc = [0] * len(natural)
    order = sorted(range(len(natural)), key=natural.__getitem__)
    left = budget
    for pos, i in enumerate(order):
        alloc[i] = min(natural[i], left // (len(order) - pos))
        left -= alloc[i]
    for i in reversed(order):
        extra = min(left, natural[i] - alloc[i])
        alloc[i] += extra
        left -= extra
    return alloc


def _layout(natural: Sequence[int], squeeze: Sequence[bool], width: int) -> list[int]:
    """Widths of the leading columns that fit ``width`` (each at least min(natural, 3)).

    Columns not marked ``squeeze`` (numbers, times) keep their natural width when the others can
    make room; otherwise all columns shrink together, the widest first.
    """
    keep = len(natural)
    while keep > 1 and 3 * keep + 1 + sum(min(w, 3) for w in natural[:keep]) > width:
        keep -= 1
    natural, squeeze, budget = natural[:keep], squeeze[:keep], width - 3 * keep - 1
    fixed = sum(w for w, s in zip(natural, squeeze, strict=True) if not s)
    if fixed + sum(min(w, 3) for w, s in zip(natural, squeeze, strict=True) if s) > budget:
        return _share(natural, budget)
    shared = iter(_share([w for w, s in zip(natural, squeeze, strict=True) if s], budget - fixed))
    return [next(shared) if s else w for w, s in zip(natural, squeeze, strict=True)]


def _rule(widths: Sequence[int], left: str, mid: str, right: str) -> str:
    return left + mid.join("─" * (w + 2) for w in widths) + right


def _row(cells: Sequence[str], widths: Sequence[int], right: Sequence[bool]) -> str:
    return "│" + "│".join(f" {_pad(c, w, r)} " for c, w, r in zip(cells, widths, right, strict=True)) + "│"


def _fit_line(options: Sequence[str], width: int) -> str:
    """The first of ``options`` that fits ``width``, else the last one elided."""
    for text in options:
        if _display_width(text) <= width:
            return text
    return _elide(options[-1], width)


def _table_width(width: int | None) -> int:
    if width is None:
        width = shutil.get_terminal_size().columns
    return max(MIN_WIDTH, width)


def _box(header: list[str], body: list[list[str]], types: list[ColumnType],
         width: int) -> list[str]:
    """The box-drawn lines for ``header`` and ``body``, dropping trailing columns that don't fit."""
    natural = [max([1, _display_width(h), *(_display_width(r[i]) for r in body)])
               for i, h in enumerate(header)]
    widths = _layout(natural, [t.dtype in _SQUEEZABLE for t in types], width)
    keep = len(widths)
    right = [t.dtype in NUMERIC for t in types[:keep]]
    lines = [_rule(widths, "┌", "┬", "┐"), _row(header[:keep], widths, right)]
    if body:
        lines.append(_rule(widths, "├", "┼", "┤"))
        lines.extend(_row(r[:keep], widths, right) for r in body)
    lines.append(_rule(widths, "└", "┴", "┘"))
    if keep < len(header):
        hidden = len(header) - keep
        lines.append(_fit_line([f"… {hidden} more columns not shown (widen the terminal or "
                                "use -o csv/json)", f"… {hidden} more columns not shown"], width))
    return lines


def format_table(out: Result, *, max_rows: int = 100, width: int | None = None) -> str:
    """A box-drawn table of ``out`` fitting ``width`` terminal columns (at least 40)."""
    width = _table_width(width)
    total = out.frame.height
    title = _elide(_escape(f"{out.name}: {total} row{'' if total == 1 else 's'}"), width)
    cols = _column_types(out)
    if not cols:
        return f"{title}\n(no columns)"
    header = [_cell(name, width) for name, _ in cols]
    shown = out.frame.head(max(0, max_rows)).rows()
    body = [[_cell(humanize(v, t), width) for v, (_, t) in zip(row, cols, strict=True)] for row in shown]
    lines = [title, *_box(header, body, [t for _, t in cols], width)]
    if total == 0:
        lines.append("(no rows)")
    elif total > len(shown):
        more = total - len(shown)
        text = f"… {more} more row{'' if more == 1 else 's'} not shown"
        lines.append(_fit_line([f"{text} {_ROWS_HINT}", text], width))
    return "\n".join(lines)


def format_results(outputs: Iterable[Result], *, max_rows: int = 100,
                   width: int | None = None) -> str:
    """Every output as a table, separated by blank lines."""
    return "\n\n".join(format_table(o, max_rows=max_rows, width=width) for o in outputs)


# ---------------------------------------------------------------------------------------------
# NDJSON and CSV
# ---------------------------------------------------------------------------------------------


def _datetime_text(expr: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """RFC 3339 in UTC with nanoseconds and "Z" ("2026-11-24T14:31:39.123456789Z")."""
    if isinstance(dtype, pl.Datetime) and dtype.time_zone is not None:
        expr = expr.dt.convert_time_zone("UTC")
    return expr.dt.strftime(RFC3339_NS)


def _plain(name: str, dtype: pl.DataType, *, csv: bool) -> pl.Expr:
    """Column ``name`` as written to JSON/CSV: times as text, non-finite floats as null."""
    col = pl.col(name)
    if isinstance(dtype, pl.Datetime):
        return _datetime_text(col, dtype)
    if dtype == pl.Date:
        return col.dt.strftime("%Y-%m-%d")
    if dtype == pl.Duration:
        return col.dt.total_nanoseconds()
    if dtype.is_float():
        return pl.when(col.is_finite()).then(col).alias(name)
    if isinstance(dtype, pl.Categorical | pl.Enum):
        return col.cast(pl.String)
    if csv and isinstance(dtype, pl.Struct):
        return pl.when(col.is_not_null()).then(col.struct.json_encode()).alias(name)
    return col


def _plain_frame(frame: pl.DataFrame, *, csv: bool) -> pl.DataFrame:
    return frame.select([_plain(n, t, csv=csv) for n, t in frame.schema.items()])


def _emit(stream: IO[Any], data: bytes) -> None:
    """Write UTF-8 ``data`` to a binary or a text stream (through its byte buffer when it has one)."""
    if isinstance(stream, io.RawIOBase | io.BufferedIOBase):
        stream.write(data)
        return
    buffer = getattr(stream, "buffer", None)
    encoding = getattr(stream, "encoding", None) or ""
    if buffer is not None and encoding.lower().replace("-", "").replace("_", "") == "utf8":
        stream.flush()
        buffer.write(data)
    else:
        stream.write(data.decode("utf-8"))


def _serialise(frame: pl.DataFrame, writer: Callable[[pl.DataFrame, IO[bytes]], None]) -> bytes:
    # Polars writes to a byte buffer several times faster than it returns a str.
    buffer = io.BytesIO()
    writer(frame, buffer)
    return buffer.getvalue()


def _ndjson_frame(out: Result) -> pl.DataFrame:
    """The frame to serialise: the table name first, then the columns in plain form."""
    frame = out.frame.drop(TABLE_NAME_KEY, strict=False)
    key = pl.Series(TABLE_NAME_KEY, [out.name], dtype=pl.String).new_from_index(0, frame.height)
    if frame.width == 0:
        return key.to_frame()
    return _plain_frame(frame, csv=False).insert_column(0, key)


def write_ndjson(outputs: Iterable[Result], stream: IO[Any]) -> None:
    """One JSON object per row of every output, keyed first by ``_tableName_``."""
    for out in outputs:
        if out.frame.height == 0:
            continue
        for chunk in _ndjson_frame(out).iter_slices(_NDJSON_CHUNK):
            _emit(stream, _serialise(chunk, pl.DataFrame.write_ndjson))


def write_csv(outputs: Iterable[Result], stream: IO[Any]) -> None:
    """CSV with a header; several outputs each get a "# <name>" line and a trailing blank line."""
    outputs = list(outputs)
    for out in outputs:
        frame = _plain_frame(out.frame, csv=True)
        data = _serialise(frame, pl.DataFrame.write_csv) if frame.width else b""
        if len(outputs) > 1:
            _emit(stream, f"# {_escape(out.name)}\n".encode())
        _emit(stream, data)
        if len(outputs) > 1:
            _emit(stream, b"\n")


# ---------------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------------


def _arrow_schema(out: Result) -> pa.Schema:
    return arrow_schema(out.frame, Schema(tuple(_column_types(out))))


def _write_parquet(out: Result, path: Path) -> None:
    out.frame.write_parquet(path, arrow_schema=_arrow_schema(out))


def _write_arrow(out: Result, path: Path) -> None:
    table = out.frame.to_arrow(compat_level=pl.CompatLevel.oldest())
    schema = _arrow_schema(out)
    table = pa.Table.from_arrays(table.columns, schema=schema)
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, schema) as writer:
        writer.write_table(table)


def _write_text(writer: Callable[[list[Result], IO[Any]], None]) -> Callable[[Result, Path], None]:
    def write(out: Result, path: Path) -> None:
        with path.open("wb") as fh:
            writer([out], fh)
    return write


_WRITERS: dict[str, Callable[[Result, Path], None]] = {
    "parquet": _write_parquet,
    "arrow": _write_arrow,
    "csv": _write_text(write_csv),
    "json": _write_text(write_ndjson),
}


def _file_stems(outputs: Sequence[Result]) -> list[str]:
    """Safe, distinct file names (without suffix) for the outputs."""
    stems: list[str] = []
    for out in outputs:
        stem = re.sub(r"[^A-Za-z0-9._-]+", "_", out.name).strip(".") or "output"
        candidate, n = stem, 2
        while candidate in stems:
            candidate, n = f"{stem}_{n}", n + 1
        stems.append(candidate)
    return stems


def write_files(outputs: Iterable[Result], path: str | Path, fmt: str) -> list[Path]:
    """Write outputs as ``fmt`` files: to ``path`` itself when it is one output and ``path`` has
    the format's suffix, else into directory ``path`` as ``<name>.<fmt>``. Returns the paths."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown output format {fmt!r}; expected one of {', '.join(FORMATS)}")
    outputs, target, write = list(outputs), Path(path), _WRITERS[fmt]
    if len(outputs) == 1 and target.suffix.lower() in FORMATS[fmt]:
        target.parent.mkdir(parents=True, exist_ok=True)
        write(outputs[0], target)
        return [target]
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for out, stem in zip(outputs, _file_stems(outputs), strict=True):
        file = target / f"{stem}.{fmt}"
        write(out, file)
        written.append(file)
    return written


def _file_schema(path: Path) -> pa.Schema:
    with path.open("rb") as fh:
        magic = fh.read(6)
    if magic[:4] == b"PAR1":
        return pq.read_schema(path)
    if magic == b"ARROW1":
        with pa.OSFile(str(path), "rb") as source:
            return pa.ipc.open_file(source).schema
    raise ValueError(f"{path}: not a Parquet or Arrow IPC file")


def read_semantics(path: str | Path) -> dict[str, str]:
    """Column name → semantic type stored in a Parquet/Arrow file written by :func:`write_files`."""
    return semantics_of(_file_schema(Path(path)))

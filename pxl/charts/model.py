"""What a chart shows: axes picked from an output's schema, and its rows reshaped into series.

Both renderers (the terminal one and the matplotlib one) draw a :class:`Chart`, so they agree on
which column is x, which columns are plotted, how series are split and what "other" holds.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from engine.errors import PxlError
from engine.types import NUMERIC, ColumnType, DataType, SemanticType, from_polars
from pxl.output import humanize

St = SemanticType

#: The chart types px.display accepts that draw something ('table' draws nothing).
KINDS = ("line", "bar", "stacked", "histogram")
#: Lines or stacks per panel; the smallest series beyond this are merged into one "other".
MAX_SERIES = 8
#: Panels (one per y unit, or per y column when a series column splits the rows) per chart.
MAX_PANELS = 4
OTHER = "other"

#: Numbers that name things rather than measure them: they are categories, never a y.
_ID_SEMANTICS = frozenset({St.PORT, St.HTTP_RESP_STATUS, St.UPID})
#: Semantic types with a unit; y columns sharing one are drawn on one axis.
_UNIT_SEMANTICS = frozenset({St.DURATION_NS, St.BYTES, St.PERCENT, St.THROUGHPUT_PER_NS,
                             St.THROUGHPUT_BYTES_PER_NS})


class ChartError(PxlError):
    """An output cannot be charted as asked (no numeric column, unknown column, missing library)."""

    kind = "error"


def chart_type(result: Any) -> str | None:
    """The chart type ``px.display`` recorded for ``result`` ('line', 'bar' …), or None."""
    options = dict(getattr(result, "options", ()) or ())
    kind = options.get("chart_type")
    return kind if kind in KINDS else None


# ---------------------------------------------------------------------------------------------
# Axes
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Axes:
    """Which columns a chart uses: ``x`` (None: the row number), the plotted ``y`` columns and the
    ``series`` column whose values split the rows into lines/stacks (None: one per y column)."""

    kind: str
    x: str | None
    y: tuple[str, ...]
    series: str | None = None


def columns(result: Any) -> list[tuple[str, ColumnType]]:
    """Each frame column with its plan type (from the schema, else derived from Polars)."""
    schema = getattr(result, "schema", None)
    cols = []
    for name, dtype in result.frame.schema.items():
        ctype = schema.get(name) if schema is not None else None
        if ctype is None:
            ctype = ColumnType(from_polars(dtype) or DataType.STRING)
        cols.append((name, ctype))
    return cols


def _role(ctype: ColumnType) -> str | None:
    if ctype.dtype is DataType.TIME64NS:
        return "time"
    if ctype.dtype in NUMERIC:
        return "category" if ctype.semantic in _ID_SEMANTICS else "number"
    if ctype.dtype in (DataType.STRING, DataType.BOOLEAN):
        return "category"
    return None  # quantiles: shown in tables only


def choose_axes(result: Any, kind: str | None = None, *, x: str | None = None,
                y: Sequence[str] | None = None, series: str | None = None) -> Axes:
    """The axes of ``result``'s chart, from its schema unless named.

    x is the first time column (``time_`` or a ``px.bin`` column) for line and stacked charts,
    the first string (or other category) column for bar charts, each falling back to the other
    and then to the row number; y is every numeric column; a category column left over splits the
    rows into series. A histogram is the distribution of the first numeric column.
    """
    kind = kind or chart_type(result) or "line"
    if kind not in KINDS:
        raise ChartError(f"chart type {kind!r} is not one of {', '.join(KINDS)}")
    cols = columns(result)
    roles = {name: _role(ctype) for name, ctype in cols}
    name = getattr(result, "name", "output")

    def check(column: str, wanted: tuple[str, ...], what: str) -> str:
        if column not in roles:
            raise ChartError(f"output {name!r} has no column {column!r}")
        if roles[column] not in wanted:
            raise ChartError(f"column {column!r} of output {name!r} cannot be the {what}")
        return column

    times = [n for n, r in roles.items() if r == "time"]
    cats = [n for n, r in roles.items() if r == "category"]
    if x is not None:
        x = check(x, ("time", "category", "number"), "x axis")
    elif kind in ("line", "stacked"):
        x = (times or cats or [None])[0]
    elif kind == "bar":
        x = (cats or times or [None])[0]
    if series is not None:
        series = check(series, ("category",), "series column")
    elif kind != "histogram":
        series = next((c for c in cats if c != x), None)
    if y is not None:
        ys = tuple(check(c, ("number",), "y axis (it is not numeric)") for c in y)
    else:
        ys = tuple(n for n, r in roles.items() if r == "number" and n not in (x, series))
    if not ys:
        raise ChartError(f"output {name!r} has no numeric column to chart")
    if kind == "histogram":
        return Axes(kind, None, ys[:1], None)
    return Axes(kind, x, ys, series)


# ---------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Series:
    """One line/stack: a value per x of the chart (NaN: none). ``merged`` > 0 marks the "other"
    series, the sum (or mean) of that many series that did not fit."""

    label: str
    values: np.ndarray
    merged: int = 0


@dataclass(frozen=True, eq=False)
class Panel:
    """One plot area: the y ``columns`` it shows (sharing ``ctype``'s unit) and their series."""

    columns: tuple[str, ...]
    ctype: ColumnType
    series: tuple[Series, ...]

    @property
    def title(self) -> str:
        return ", ".join(self.columns)


@dataclass(frozen=True, eq=False)
class Chart:
    """An output ready to draw. ``x`` holds positions: ns since the epoch when ``x_kind`` is
    "time", else 0..n-1 with ``x_labels`` naming each ("category" and "index" x); a histogram
    ("value" x) keeps its raw values in its single series."""

    name: str
    axes: Axes
    x_kind: str
    x: np.ndarray
    x_labels: tuple[str, ...]
    panels: tuple[Panel, ...]
    notes: tuple[str, ...] = ()

    @property
    def kind(self) -> str:
        return self.axes.kind

    @property
    def horizontal(self) -> bool:
        """Bars along categories are drawn sideways, one row per category."""
        return self.kind in ("bar", "stacked") and self.x_kind in ("category", "index")

    @property
    def empty(self) -> bool:
        return not any(np.isfinite(s.values).any() for p in self.panels for s in p.series)

    @property
    def title(self) -> str:
        a = self.axes
        if a.kind == "histogram":
            return f"{self.name}: histogram of {a.y[0]}"
        text = f"{self.name}: {a.kind} chart of {', '.join(a.y)}"
        if a.series:
            text += f" by {a.series}"
        if a.x:
            text += f" over {a.x}" if self.x_kind == "time" else f" per {a.x}"
        return text


def _numbers(name: str, dtype: pl.DataType) -> pl.Expr:
    """Column ``name`` as Float64 with nulls for non-finite values."""
    col = pl.col(name)
    if dtype == pl.Duration:
        col = col.dt.total_nanoseconds()
    col = col.cast(pl.Float64, strict=False)
    return pl.when(col.is_finite()).then(col).alias(name)


def _x_key(name: str | None, x_kind: str, dtype: pl.DataType | None) -> pl.Expr:
    if name is None:
        return pl.int_range(pl.len(), dtype=pl.Int64).alias("__x")
    col = pl.col(name)
    if x_kind == "time":
        if dtype == pl.Date:
            col = col.cast(pl.Datetime("ns"))
        if dtype is not None and dtype.is_integer():
            return col.cast(pl.Int64).alias("__x")
        return col.dt.epoch("ns").alias("__x")
    if x_kind == "number":
        return col.cast(pl.Float64, strict=False).alias("__x")
    return col.cast(pl.String).fill_null("null").alias("__x")


def _additive(kind: str, ctype: ColumnType) -> bool:
    """Whether merged rows of a column add up (counts, bytes, stacks) or average (latencies)."""
    if kind in ("stacked", "bar"):
        return True
    return ctype.dtype is DataType.INT64 and ctype.semantic in (St.NONE, St.BYTES)


def _merge(column: str, additive: bool) -> pl.Expr:
    col = pl.col(column)
    value = col.sum() if additive else col.mean()
    return pl.when(col.count() > 0).then(value).alias(column)


def _vector(frame: pl.DataFrame, column: str) -> np.ndarray:
    return frame[column].cast(pl.Float64).fill_null(float("nan")).to_numpy().astype(np.float64)


def _unit_groups(ys: Sequence[str], types: dict[str, ColumnType]) -> list[tuple[str, ...]]:
    groups: dict[SemanticType, list[str]] = {}
    for y in ys:
        semantic = types[y].semantic
        groups.setdefault(semantic if semantic in _UNIT_SEMANTICS else St.NONE, []).append(y)
    return [tuple(g) for g in groups.values()]


def build_chart(result: Any, kind: str | None = None, *, x: str | None = None,
                y: Sequence[str] | None = None, series: str | None = None,
                max_series: int = MAX_SERIES, max_panels: int = MAX_PANELS) -> Chart:
    """The chart of ``result`` (its ``chart_type`` unless ``kind`` is given)."""
    axes = choose_axes(result, kind, x=x, y=y, series=series)
    types = dict(columns(result))
    frame: pl.DataFrame = result.frame
    name = getattr(result, "name", "output")
    notes: list[str] = []
    if axes.kind == "histogram":
        column = axes.y[0]
        values = _vector(frame.select(_numbers(column, frame.schema[column])), column)
        values = values[np.isfinite(values)]
        panel = Panel((column,), types[column], (Series(column, values),))
        return Chart(name, axes, "value", np.empty(0), (), (panel,))

    x_kind = "index" if axes.x is None else {"time": "time", "category": "category"}.get(
        _role(types[axes.x]) or "", "category")
    x_dtype = frame.schema[axes.x] if axes.x is not None else None
    selected = [_x_key(axes.x, x_kind, x_dtype),
                (pl.col(axes.series).cast(pl.String).fill_null("null") if axes.series
                 else pl.lit("", dtype=pl.String)).alias("__s"),
                *(_numbers(c, frame.schema[c]) for c in axes.y)]
    data = frame.select(selected).filter(pl.col("__x").is_not_null())

    # Series: the biggest (by the first y column's total) keep their own line; the rest merge.
    ranked = (data.group_by("__s", maintain_order=True)
              .agg(pl.col(axes.y[0]).abs().sum().alias("__total"))
              .with_row_index("__order")
              .sort(["__total", "__order"], descending=[True, False])["__s"].to_list())
    merged = 0
    if len(ranked) > max_series:
        keep = ranked[:max_series - 1]
        merged = len(ranked) - len(keep)
        data = data.with_columns(pl.when(pl.col("__s").is_in(keep)).then(pl.col("__s"))
                                 .otherwise(pl.lit(OTHER)).alias("__s"))
        labels = [*keep, OTHER]
        notes.append(f"{merged} smaller {axes.series} values are merged into {OTHER!r}")
    else:
        labels = ranked
    rows = data.group_by(["__x", "__s"], maintain_order=True).agg(
        [_merge(c, _additive(axes.kind, types[c])) for c in axes.y])
    xs = rows["__x"].unique(maintain_order=True)
    if x_kind == "time":
        xs = xs.sort()
    base = xs.to_frame("__x")
    per_label = {
        label: base.join(rows.filter(pl.col("__s") == label), on="__x", how="left",
                         maintain_order="left")
        for label in labels
    }

    if axes.series:
        groups = [(c,) for c in axes.y]
    else:
        groups = _unit_groups(axes.y, types)
    if len(groups) > max_panels:
        hidden = [c for g in groups[max_panels:] for c in g]
        notes.append(f"not charted: {', '.join(hidden)} (at most {max_panels} panels)")
        groups = groups[:max_panels]
    panels = []
    for group in groups:
        if axes.series:
            lines = tuple(Series(label, _vector(per_label[label], group[0]),
                                 merged if merged and label == OTHER and i == len(labels) - 1
                                 else 0)
                          for i, label in enumerate(labels))
        else:
            if len(group) > max_series:
                notes.append(f"not charted: {', '.join(group[max_series:])} "
                             f"(at most {max_series} lines per panel)")
                group = group[:max_series]
            only = per_label[labels[0]] if labels else base.with_columns(
                [pl.lit(None, dtype=pl.Float64).alias(c) for c in group])
            lines = tuple(Series(c, _vector(only, c)) for c in group)
        panels.append(Panel(group, types[group[0]], lines))

    if x_kind == "time":
        positions = xs.cast(pl.Int64).to_numpy().astype(np.float64)
        x_labels: tuple[str, ...] = ()
    else:
        positions = np.arange(len(xs), dtype=np.float64)
        x_labels = tuple(str(v) for v in xs.to_list())
    return Chart(name, axes, x_kind, positions, x_labels, tuple(panels), tuple(notes))


# ---------------------------------------------------------------------------------------------
# Scales and value labels
# ---------------------------------------------------------------------------------------------

#: Per semantic type: (factor from stored to shown value, units of the shown value).
_UNITS: dict[SemanticType, tuple[float, tuple[float, ...]]] = {
    St.DURATION_NS: (1.0, (1.0, 1e3, 1e6, 1e9, 60e9, 3600e9)),
    St.BYTES: (1.0, tuple(1024.0**i for i in range(7))),
    St.THROUGHPUT_PER_NS: (1e9, (1.0, 1e3, 1e6, 1e9, 1e12)),
    St.THROUGHPUT_BYTES_PER_NS: (1e9, tuple(1024.0**i for i in range(7))),
}


def format_value(value: float, ctype: ColumnType) -> str:
    """A number on an axis or beside a bar, in its column's unit ("120 ms", "3 MiB", "0.5")."""
    if not math.isfinite(value):
        return "null" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if value == 0:
        return "0"
    if ctype.dtype is DataType.INT64 and ctype.semantic is St.NONE and value == int(value):
        return str(int(value))
    return humanize(float(value), ColumnType(DataType.FLOAT64, ctype.semantic))


def _nice_steps(raw: float, integral: bool) -> Any:
    """Round steps from the smallest not below ``raw`` up: 1, 2, 2.5, 5 × 10^k (no 2.5 for
    integral values)."""
    multipliers = (1.0, 2.0, 5.0) if integral else (1.0, 2.0, 2.5, 5.0)
    exponent = math.floor(math.log10(raw))
    while True:
        for m in multipliers:
            step = m * 10.0**exponent
            if step >= raw * (1 - 1e-9):
                yield step
        exponent += 1


@dataclass(frozen=True)
class Scale:
    """A value range ``lo``..``hi`` (always holding 0) with round ``ticks`` for labels."""

    lo: float
    hi: float
    ticks: tuple[float, ...]

    def frac(self, value: float) -> float:
        """Where ``value`` falls, 0 at ``lo`` to 1 at ``hi`` (halved first: no overflow);
        values out of range (infinities) are clamped to the nearest end."""
        f = (value / 2 - self.lo / 2) / (self.hi / 2 - self.lo / 2)
        return 0.0 if math.isnan(f) else min(1.0, max(0.0, f))


def nice_scale(values: np.ndarray, ctype: ColumnType, ticks: int = 4) -> Scale:
    """A scale holding 0 and every finite value, rounded out to at most ``ticks`` round steps in
    the column's unit (ms, MiB …): the smallest such step."""
    finite = values[np.isfinite(values)] if values.size else values
    lo = min(0.0, float(finite.min())) if finite.size else 0.0
    hi = max(0.0, float(finite.max())) if finite.size else 0.0
    if lo == hi:  # nothing but zeros: one unit of the column's kind
        hi = {St.DURATION_NS: 1e6, St.BYTES: 1024.0}.get(ctype.semantic, 1.0)
    span = hi - lo
    if not math.isfinite(span):
        return Scale(lo, hi, (lo, 0.0, hi) if lo < 0 < hi else (lo, hi))
    factor, units = _UNITS.get(ctype.semantic, (1.0, (1.0,)))
    biggest = max(abs(lo), abs(hi)) * factor
    unit = max([u for u in units if u <= biggest] or [units[0]])
    integral = ctype.dtype is DataType.INT64 and ctype.semantic is St.NONE
    ticks = max(1, ticks)
    for nice in _nice_steps(span * factor / unit / ticks, integral):
        step = nice * unit / factor
        if integral:
            step = max(step, 1.0)
        lo_t, hi_t = math.floor(lo / step) * step, math.ceil(hi / step) * step
        if not math.isfinite(hi_t - lo_t):  # rounding out went past the float range
            return Scale(lo, hi, (lo, 0.0, hi) if lo < 0 < hi else (lo, hi))
        count = round((hi_t - lo_t) / step)
        if count <= ticks:
            return Scale(lo_t, hi_t, tuple(lo_t + i * step for i in range(count + 1)))
    raise AssertionError("unreachable: steps grow without end")


def histogram(values: np.ndarray, max_bins: int = 30) -> tuple[np.ndarray, np.ndarray]:
    """(counts, edges) of the finite ``values``: Sturges' number of equal bins, at most
    ``max_bins``; one bin when all values are equal."""
    values = values[np.isfinite(values)]
    if not values.size:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    lo, hi = float(values.min()), float(values.max())
    if lo == hi:
        return np.array([values.size]), np.array([lo, hi])
    bins = max(1, min(max_bins, math.ceil(math.log2(values.size)) + 1))
    # Halved values, so that a range near the float limits does not overflow.
    counts, edges = np.histogram(values / 2, bins=bins, range=(lo / 2, hi / 2))
    return counts, edges * 2

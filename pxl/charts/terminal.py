"""Charts drawn with text: Unicode braille and block characters, no third-party library.

Layout of a vertical chart (line, stacked, bar over time, histogram), ``height`` rows of plot::

    latency: line chart of p99, p50, p99_pluck over timestamp      title
     600 ms ┤      *                                               y labels on round values
            │   *** *  o                                           ``height`` rows of plot
       0 ms ┤***ooooooo
            └┬─────────┬──────────┬                                x axis, ticks
             11:00     11:20      11:40                            x labels
             timestamp (UTC, 2026-11-24)   * p99  o p50  + p99_pluck   caption and legend

A single line is drawn in braille (2×4 dots a cell); several lines each get a mark (``*``, ``o``,
``+`` …, "." for the merged "other"); stacks and bars get fills (``█ ▓ ▒ ░ # = + :``). Bars
along categories are drawn sideways, one row per category.
"""

from __future__ import annotations

import datetime as dt
import math
import shutil
from collections.abc import Sequence
from typing import Any

import numpy as np

from engine.types import ColumnType, DataType
from pxl.charts.model import (
    Chart,
    ChartError,
    Panel,
    Scale,
    Series,
    build_chart,
    format_value,
    histogram,
    nice_scale,
)
from pxl.output import _char_width, _display_width, _elide, _escape

MIN_WIDTH = 40
#: Rows of plot per panel when no height is given.
DEFAULT_HEIGHT = 10
#: Categories shown as sideways bars; the rest are counted in a note.
MAX_BARS = 30
LINE_MARKS = "*o+x#@%&"
FILLS = "█▓▒░#=+:"
OTHER_MARK = "."
BRAILLE_MARK = "⠤⠤"
_UP = " ▁▂▃▄▅▆▇█"
_RIGHT = " ▏▎▍▌▋▊▉█"
_COLORS = (34, 33, 32, 31, 35, 36, 94, 90)  # ANSI: blue, yellow, green, red, magenta, cyan …
_COUNT = ColumnType(DataType.INT64)
_BRAILLE_BITS = ((0x01, 0x08), (0x02, 0x10), (0x04, 0x20), (0x40, 0x80))  # [dy][dx]
_NS = 1_000_000_000
_TIME_STEPS = (
    *(m * 10**e for e in range(0, 9) for m in (1, 2, 5)),  # 1 ns … 500 ms
    *(s * _NS for s in (1, 2, 5, 10, 15, 30)),
    *(m * 60 * _NS for m in (1, 2, 5, 10, 15, 30)),
    *(h * 3600 * _NS for h in (1, 2, 3, 6, 12)),
    *(d * 86400 * _NS for d in (1, 2, 7, 14, 30, 91, 365, 3650)),
)


# ---------------------------------------------------------------------------------------------
# Canvases
# ---------------------------------------------------------------------------------------------


class _Grid:
    """Character cells, each with the index of the series that inked it (-1: none)."""

    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        self.chars = [[" "] * width for _ in range(height)]
        self.ink = [[-1] * width for _ in range(height)]

    def put(self, col: int, row: int, ch: str, ink: int) -> None:
        if 0 <= col < self.width and 0 <= row < self.height:
            self.chars[row][col] = ch
            self.ink[row][col] = ink

    def line(self, row: int, color: bool) -> str:
        return _colored(self.chars[row], self.ink[row], color)


def _colored(chars: Sequence[str], ink: Sequence[int], color: bool) -> str:
    if not color:
        return "".join(chars)
    out, current = [], -1
    for ch, k in zip(chars, ink, strict=True):
        k = k if ch != " " else -1
        if k != current:
            out.append("\x1b[0m" if k < 0 else f"\x1b[{_COLORS[k % len(_COLORS)]}m")
            current = k
        out.append(ch)
    if current >= 0:
        out.append("\x1b[0m")
    return "".join(out)


def _paint(text: str, ink: int, color: bool) -> str:
    return f"\x1b[{_COLORS[ink % len(_COLORS)]}m{text}\x1b[0m" if color and ink >= 0 else text


def _segment(x0: int, y0: int, x1: int, y1: int) -> list[tuple[int, int]]:
    """The cells of a straight line from (x0, y0) to (x1, y1), both ends included (Bresenham)."""
    points = []
    dx, dy = abs(x1 - x0), -abs(y1 - y0)
    sx, sy = (1 if x0 < x1 else -1), (1 if y0 < y1 else -1)
    err = dx + dy
    while True:
        points.append((x0, y0))
        if x0 == x1 and y0 == y1:
            return points
        e2 = 2 * err
        if e2 >= dy:
            err += dy
            x0 += sx
        if e2 <= dx:
            err += dx
            y0 += sy


def _polyline(points: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    if len(points) == 1:
        return list(points)
    cells: list[tuple[int, int]] = []
    for (x0, y0), (x1, y1) in zip(points, points[1:], strict=False):
        cells.extend(_segment(x0, y0, x1, y1))
    return cells


# ---------------------------------------------------------------------------------------------
# Labels
# ---------------------------------------------------------------------------------------------


def _place(width: int, items: Sequence[tuple[int, str]]) -> tuple[str, list[int]]:
    """A line of ``width`` columns with each (column, text) centred on its column where it fits
    without touching the previous one; returns the line and the columns labelled."""
    cells = [" "] * width
    end, placed = -2, []
    for col, text in items:
        w = _display_width(text)
        if w == 0 or w > width:
            continue
        start = min(max(0, col - w // 2), width - w)
        if start <= end + 1:
            continue
        pos = start
        for ch in text:
            cw = _char_width(ch)
            if cw == 0:
                continue
            cells[pos] = ch
            if cw == 2:
                cells[pos + 1] = ""
            pos += cw
        end = start + w - 1
        placed.append(col)
    return "".join(cells).rstrip(), placed


def _legend(entries: Sequence[tuple[str, str, int]], width: int, color: bool,
            indent: int) -> list[str]:
    """``mark label`` entries, wrapped to ``width``."""
    lines: list[str] = []
    current, used = " " * indent, indent
    for mark, label, ink in entries:
        label = _elide(_escape(label), max(1, width - indent - _display_width(mark) - 1))
        text_w = _display_width(mark) + 1 + _display_width(label)
        if used > indent and used + 2 + text_w > width:
            lines.append(current)
            current, used = " " * indent, indent
        if used > indent:
            current, used = current + "  ", used + 2
        current += _paint(mark, ink, color) + " " + label
        used += text_w
    if used > indent:
        lines.append(current)
    return lines


def _time_ticks(lo: float, hi: float, width: int) -> tuple[list[tuple[float, str]], str]:
    """Round instants between ``lo`` and ``hi`` (ns) labelled to fit ``width`` columns, and the
    caption naming the day(s)."""

    def day(ns: float) -> dt.datetime:
        return dt.datetime(1970, 1, 1) + dt.timedelta(microseconds=ns // 1000)

    try:
        first, last = day(lo), day(hi)
    except OverflowError:
        return [], "UTC"
    span_days = first.date().isoformat()
    if last.date() != first.date():
        span_days += f" .. {last.date().isoformat()}"
    caption = f"UTC, {span_days}"
    if hi <= lo:
        return [(lo, first.strftime("%H:%M:%S"))], caption
    for step in _TIME_STEPS:
        if step >= 86400 * _NS:
            fmt, w = "%m-%d", 5
        elif step >= 60 * _NS:
            fmt, w = "%H:%M", 5
        elif step >= _NS:
            fmt, w = "%H:%M:%S", 8
        else:
            fmt, w = "%H:%M:%S.%f", 15
        if ((hi - lo) / step + 1) * (w + 2) <= width:
            break
    start = math.ceil(lo / step) * step
    ticks = []
    t = start
    while t <= hi:
        text = day(t).strftime(fmt)
        if step < _NS:
            text = text[:9 + max(1, min(6, 9 - int(math.log10(step))))].rstrip(".")
        ticks.append((t, text))
        t += step
    return ticks, caption


def _category_ticks(labels: Sequence[str], width: int) -> list[tuple[float, str]]:
    n = len(labels)
    if n == 0:
        return []
    spacing = width / max(1, n - 1) if n > 1 else width
    longest = max(_display_width(_escape(s)) for s in labels)
    every = 1
    while spacing * every < min(longest, 12) + 1 and every < n:
        every += 1
    room = max(1, int(spacing * every) - 1)
    return [(float(i), _elide(_escape(labels[i]), min(room, 20))) for i in range(0, n, every)]


# ---------------------------------------------------------------------------------------------
# Vertical charts: line, stacked and bars over time, histogram
# ---------------------------------------------------------------------------------------------


def _y_labels(scale: Scale, ctype: ColumnType, height: int, filled: bool) -> dict[int, str]:
    """Row → label of the ticks, topmost first; ticks falling on a labelled row are skipped."""
    rows: dict[int, str] = {}
    for t in scale.ticks:
        f = scale.frac(t)
        if filled:
            row = min(height - 1, max(0, math.floor((1 - f) * height + 1e-9)))
        else:
            row = round((1 - f) * (height - 1))
        rows.setdefault(row, format_value(t, ctype))
    return rows


def _frame(labels: dict[int, str], plot: list[str], plot_width: int,
           x_items: Sequence[tuple[int, str]], label_width: int) -> list[str]:
    """The plot rows behind their y labels, then the x axis and its labels."""
    lines = []
    for row, text in enumerate(plot):
        label = labels.get(row, "")
        lines.append(f"{label:>{label_width}} {'┤' if label else '│'}{text}")
    x_text, placed = _place(plot_width, x_items)
    axis = ["─"] * plot_width
    for col in placed:
        axis[col] = "┬"
    lines.append(" " * label_width + " └" + "".join(axis))
    if x_text:
        lines.append(" " * (label_width + 2) + x_text)
    return lines


def _x_frac(chart: Chart, value: float) -> float:
    lo, hi = float(chart.x[0]), float(chart.x[-1])
    return 0.5 if hi <= lo else (value - lo) / (hi - lo)


def _x_items(chart: Chart, plot_width: int) -> tuple[list[tuple[int, str]], str]:
    """Labelled columns of the x axis, and the axis caption."""
    name = chart.axes.x or "row"
    if not chart.x.size:
        return [], name
    if chart.x_kind == "time":
        ticks, caption = _time_ticks(float(chart.x[0]), float(chart.x[-1]), plot_width)
        name = f"{name} ({caption})"
    else:
        ticks = _category_ticks(chart.x_labels, plot_width)
    items = [(round(_x_frac(chart, v) * (plot_width - 1)), text) for v, text in ticks]
    return items, name


def _series_values(panel: Panel) -> np.ndarray:
    return np.concatenate([s.values for s in panel.series]) if panel.series else np.empty(0)


def _stack(chart: Chart, panel: Panel) -> np.ndarray:
    """Series × x values to stack: missing as 0, negatives as 0."""
    if not panel.series:
        return np.zeros((0, chart.x.size))
    values = np.vstack([s.values for s in panel.series])
    return np.clip(np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0), 0.0, None)


def _mark(series: Series, index: int) -> str:
    return OTHER_MARK if series.merged else LINE_MARKS[index % len(LINE_MARKS)]


def _fill(series: Series, index: int) -> str:
    return OTHER_MARK if series.merged else FILLS[index % len(FILLS)]


def _draw_lines(chart: Chart, panel: Panel, scale: Scale, width: int, height: int,
                color: bool) -> list[str]:
    if len(panel.series) == 1:  # braille: 2 × 4 dots per cell
        bits = [[0] * width for _ in range(height)]
        values = panel.series[0].values
        points = [(round(_x_frac(chart, x) * (2 * width - 1)),
                   round((1 - scale.frac(v)) * (4 * height - 1)))
                  for x, v in zip(chart.x, values, strict=True) if math.isfinite(v)]
        for dx, dy in _polyline(points):
            if 0 <= dx < 2 * width and 0 <= dy < 4 * height:
                bits[dy // 4][dx // 2] |= _BRAILLE_BITS[dy % 4][dx % 2]
        return [_colored([chr(0x2800 + b) if b else " " for b in row], [0] * width, color)
                for row in bits]
    grid = _Grid(width, height)
    for k in reversed(range(len(panel.series))):  # the first (biggest) series ends on top
        s = panel.series[k]
        points = [(round(_x_frac(chart, x) * (width - 1)),
                   round((1 - scale.frac(v)) * (height - 1)))
                  for x, v in zip(chart.x, s.values, strict=True) if math.isfinite(v)]
        for col, row in _polyline(points):
            grid.put(col, row, _mark(s, k), k)
    return [grid.line(r, color) for r in range(height)]


def _column_values(chart: Chart, stack: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Series × column values across the plot, and which columns are drawn."""
    n = chart.x.size
    drawn = np.ones(width, dtype=bool)
    if n == 1:  # one x: a single bar in the middle
        band = max(1, width // 8)
        drawn[:] = False
        drawn[(width - band) // 2:(width - band) // 2 + band] = True
        return np.repeat(stack, width, axis=1), drawn
    cols = chart.x[0] + np.arange(width) / max(1, width - 1) * (chart.x[-1] - chart.x[0])
    if chart.kind == "stacked":
        return np.vstack([np.interp(cols, chart.x, row) for row in stack]), drawn
    # bars: each column takes its nearest x; a gap separates bars that are 3+ columns wide
    right = np.clip(np.searchsorted(chart.x, cols), 1, n - 1)
    nearest = np.where(cols - chart.x[right - 1] <= chart.x[right] - cols, right - 1, right)
    run = np.bincount(nearest, minlength=n)
    edge = np.append(nearest[1:] != nearest[:-1], False)
    drawn &= ~(edge & (run[nearest] >= 3))
    return stack[:, nearest], drawn


def _draw_fills(stack: np.ndarray, drawn: np.ndarray, panel: Panel, scale: Scale, width: int,
                height: int, color: bool) -> list[str]:
    grid = _Grid(width, height)
    if stack.shape[0] == 1:  # one series: eighth blocks for the tops
        for col in range(width):
            if not drawn[col]:
                continue
            eighths = round(scale.frac(stack[0, col]) * height * 8) - round(
                scale.frac(0.0) * height * 8)
            for level in range(height):
                part = min(8, max(0, eighths - level * 8))
                if part:
                    grid.put(col, height - 1 - level, _UP[part], 0)
        return [grid.line(r, color) for r in range(height)]
    tops = np.cumsum(stack, axis=0)
    for row in range(height):
        middle = scale.lo + (1 - (row + 0.5) / height) * (scale.hi - scale.lo)
        for col in range(width):
            if not drawn[col] or middle < 0:
                continue
            above = np.nonzero(tops[:, col] >= middle)[0]
            if above.size:
                k = int(above[0])
                grid.put(col, row, _fill(panel.series[k], k), k)
    return [grid.line(r, color) for r in range(height)]


def _vertical_scale(chart: Chart, panel: Panel, height: int) -> tuple[Scale, dict[int, str]]:
    """The y scale of a line/stacked panel and its labels by row."""
    filled = chart.kind != "line"
    values = _stack(chart, panel).sum(axis=0) if filled else _series_values(panel)
    scale = nice_scale(values, panel.ctype, ticks=height // 3 + 1)
    return scale, _y_labels(scale, panel.ctype, height, filled)


def _vertical(chart: Chart, panel: Panel, width: int, height: int, color: bool,
              label_width: int) -> list[str]:
    """A line/stacked panel; ``label_width`` (at least the labels' own) aligns the panels."""
    filled = chart.kind != "line"
    stack = _stack(chart, panel) if filled else None
    scale, labels = _vertical_scale(chart, panel, height)
    label_width = max(label_width, *map(_display_width, labels.values()))
    plot_width = max(8, width - label_width - 2)
    if chart.x.size == 0 or not np.isfinite(_series_values(panel)).any():
        plot = [""] * height
        plot[height // 2] = " (no rows)" if chart.x.size == 0 else " (no values)"
    elif stack is None:
        plot = _draw_lines(chart, panel, scale, plot_width, height, color)
    else:
        by_column, drawn = _column_values(chart, stack, plot_width)
        plot = _draw_fills(by_column, drawn, panel, scale, plot_width, height, color)
    items, caption = _x_items(chart, plot_width)
    lines = _frame(labels, plot, plot_width, items, label_width)
    if len(panel.series) == 1 and not filled:
        entries = [(BRAILLE_MARK, panel.series[0].label, 0)]
    elif filled:
        entries = [(_fill(s, k) * 2, s.label, k) for k, s in enumerate(panel.series)]
    else:
        entries = [(_mark(s, k), s.label, k) for k, s in enumerate(panel.series)]
    indent = label_width + 2
    lines.append(" " * indent + _elide(_escape(caption), width - indent))
    lines.extend(_legend(entries, width, color, indent))
    return lines


def _histogram(chart: Chart, panel: Panel, width: int, height: int, color: bool) -> list[str]:
    values = panel.series[0].values
    counts, edges = histogram(values, max_bins=max(1, min(30, (width - 10) // 2)))
    scale = nice_scale(counts.astype(np.float64), _COUNT, ticks=height // 3 + 1)
    labels = _y_labels(scale, _COUNT, height, True)
    label_width = max(map(_display_width, labels.values()), default=1)
    plot_width = max(8, width - label_width - 2)
    grid = _Grid(plot_width, height)
    items: list[tuple[int, str]] = []
    column = panel.ctype
    if counts.size:
        slot = max(1, plot_width // counts.size)
        bar = slot - 1 if slot >= 3 else slot
        for i, count in enumerate(counts):
            eighths = round(scale.frac(float(count)) * height * 8)
            for level in range(height):
                part = min(8, max(0, eighths - level * 8))
                for c in range(i * slot, i * slot + bar):
                    if part:
                        grid.put(c, height - 1 - level, _UP[part], 0)
        items = [(i * slot, format_value(float(e), column)) for i, e in enumerate(edges[:-1])]
        if counts.size == 1:
            items = [(bar // 2, format_value(float(edges[0]), column))]
        plot = [grid.line(r, color) for r in range(height)]
        size = edges[1] - edges[0] if counts.size > 1 else 0.0
        caption = f"{panel.columns[0]}: {values.size} values"
        if size > 0 and math.isfinite(size):
            caption += f" in bins of {format_value(float(size), column)}"
    else:
        plot = [""] * height
        plot[height // 2] = " (no values)"
        caption = f"{panel.columns[0]}: no values"
    lines = _frame(labels, plot, plot_width, items, label_width)
    indent = label_width + 2
    lines.append(" " * indent + _elide(_escape(caption), width - indent))
    lines.extend(_legend([(FILLS[0] * 2, "count", 0)], width, color, indent))
    return lines


# ---------------------------------------------------------------------------------------------
# Sideways bars: one row per category
# ---------------------------------------------------------------------------------------------


def _horizontal(chart: Chart, panel: Panel, width: int, color: bool) -> list[str]:
    shown = min(len(chart.x_labels), MAX_BARS)
    if shown == 0 or not panel.series:
        return [" (no rows)"]
    stacked = len(panel.series) > 1
    if stacked:
        stack = _stack(chart, panel)[:, :shown]
        totals = stack.sum(axis=0)
    else:
        stack = np.vstack([panel.series[0].values[:shown]])
        totals = stack[0]
    texts = [format_value(float(v), panel.ctype) for v in totals]
    label_width = min(max(_display_width(_escape(s)) for s in chart.x_labels[:shown]),
                      max(4, width // 3))
    value_width = max(map(_display_width, texts))
    bar_width = max(4, width - label_width - 3 - value_width)
    scale = nice_scale(totals, panel.ctype, ticks=max(2, bar_width // 14))

    def at(v: float) -> float:
        return scale.frac(v) * bar_width

    zero = round(at(0.0))
    lines = []
    for i in range(shown):
        cells, ink = [" "] * bar_width, [-1] * bar_width
        total = float(totals[i])
        if stacked:
            bottom = 0.0
            for k, s in enumerate(panel.series):
                top = bottom + float(stack[k, i])
                for c in range(round(at(bottom)), round(at(top))):
                    cells[c], ink[c] = _fill(s, k), k
                bottom = top
        elif math.isfinite(total) and total >= 0:
            eighths = round((at(total) - zero) * 8)
            for c in range(eighths // 8):
                cells[zero + c], ink[zero + c] = "█", 0
            if eighths % 8 and zero + eighths // 8 < bar_width:
                cells[zero + eighths // 8], ink[zero + eighths // 8] = _RIGHT[eighths % 8], 0
        elif math.isfinite(total):
            for c in range(round(at(total)), zero):
                cells[c], ink[c] = "█", 0
        end = max((c + 1 for c in range(bar_width) if cells[c] != " "), default=0)
        bar = _colored(cells[:end], ink[:end], color)
        label = _elide(_escape(chart.x_labels[i]), label_width)
        pad = " " * (label_width - _display_width(label))
        lines.append(f"{pad}{label} │{bar} {texts[i]}".rstrip())
    items = [(min(bar_width - 1, round(at(t))), format_value(t, panel.ctype))
             for t in scale.ticks]
    x_text, placed = _place(bar_width, items)
    axis = ["─"] * bar_width
    for col in placed:
        axis[col] = "┬"
    lines.append(" " * label_width + " └" + "".join(axis))
    lines.append(" " * (label_width + 2) + x_text)
    if len(chart.x_labels) > shown:
        lines.append(_elide(f"… {len(chart.x_labels) - shown} more {chart.axes.x or 'rows'} "
                            "not shown", width))
    if stacked:
        lines.extend(_legend([(_fill(s, k) * 2, s.label, k) for k, s in enumerate(panel.series)],
                             width, color, label_width + 2))
    return lines


# ---------------------------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------------------------


def render_chart(chart: Chart, *, width: int | None = None, height: int | None = None,
                 color: bool = False) -> str:
    """``chart`` as text ``width`` columns wide (at least 40; default: the terminal's) with
    ``height`` rows of plot per panel (at least 3; default 10)."""
    width = max(MIN_WIDTH, width if width is not None else shutil.get_terminal_size().columns)
    height = max(3, height if height is not None else DEFAULT_HEIGHT)
    lines = [_elide(_escape(chart.title), width)]
    label_width = 1  # the same for every panel, so that their x axes line up
    if chart.kind != "histogram" and not chart.horizontal:
        label_width = max(_display_width(text) for panel in chart.panels
                          for text in _vertical_scale(chart, panel, height)[1].values())
    for i, panel in enumerate(chart.panels):
        if len(chart.panels) > 1:
            if i:
                lines.append("")
            lines.append(_elide(_escape(f"{panel.title}:"), width))
        if chart.kind == "histogram":
            lines.extend(_histogram(chart, panel, width, height, color))
        elif chart.horizontal:
            lines.extend(_horizontal(chart, panel, width, color))
        else:
            lines.extend(_vertical(chart, panel, width, height, color, label_width))
    lines.extend(_elide(f"note: {note}", width) for note in chart.notes)
    return "\n".join(line.rstrip() for line in lines)


def render_terminal(result: Any, *, width: int | None = None, height: int | None = None,
                    color: bool = False, kind: str | None = None, x: str | None = None,
                    y: Sequence[str] | None = None, series: str | None = None) -> str:
    """The chart of ``result`` (an output with a ``chart_type``, or ``kind``) drawn as text.

    Never raises for the data's shape: an output that cannot be charted (no numeric column)
    gives a one-line note instead.
    """
    try:
        chart = build_chart(result, kind, x=x, y=y, series=series)
    except ChartError as exc:
        w = max(MIN_WIDTH, width if width is not None else shutil.get_terminal_size().columns)
        return _elide(_escape(f"{getattr(result, 'name', 'output')}: no chart: {exc.message}"), w)
    return render_chart(chart, width=width, height=height, color=color)

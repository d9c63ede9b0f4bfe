"""Charts written to files: PNG and SVG drawn by matplotlib, HTML as a standalone page.

matplotlib is optional (``pip install 'pxl[charts]'``) and imported only when a file is written;
without it writing fails with a :class:`ChartError` that says what to install. Figures are built
with ``matplotlib.figure.Figure`` directly (no pyplot: no GUI backend, no global state).
"""

from __future__ import annotations

import html
import io
import re
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from engine.types import NUMERIC
from engine.types import SemanticType as St
from pxl.charts.model import (
    Chart,
    ChartError,
    Panel,
    build_chart,
    chart_type,
    columns,
    format_value,
    histogram,
    nice_scale,
)
from pxl.output import _escape, humanize

#: File suffixes that mean "write the chart" to ``pxl run --out``.
SUFFIXES = (".png", ".svg", ".html")
#: Rows of data shown in an HTML page's table.
HTML_MAX_ROWS = 1000
#: Categories drawn as bars in a file.
FILE_MAX_BARS = 60
_OTHER_COLOR = "#9a9a9a"
_LINE_STYLES = ("-", "--", "-.", ":")


def is_chart_path(path: str | Path) -> bool:
    """Whether ``path`` names a chart file (.png, .svg or .html)."""
    return Path(path).suffix.lower() in SUFFIXES


def _matplotlib(suffix: str) -> Any:
    try:
        import matplotlib
        from matplotlib.figure import Figure  # noqa: F401  (fails on a broken install too)
    except ImportError:
        raise ChartError(f"writing {suffix} charts needs matplotlib: install pxl[charts] "
                         "(pip install 'pxl[charts]')") from None
    return matplotlib


# ---------------------------------------------------------------------------------------------
# Figures
# ---------------------------------------------------------------------------------------------


def _colors(panel: Panel) -> list[str]:
    palette = [f"C{i}" for i in range(10) if i != 7]  # C7 is the grey of "other"
    return [_OTHER_COLOR if s.merged else palette[i % len(palette)]
            for i, s in enumerate(panel.series)]


def _value_formatter(panel: Panel) -> Any:
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(lambda v, _pos: format_value(float(v), panel.ctype))


def _binary_ticks(ax: Any, panel: Panel, axis: str) -> None:
    """Byte axes step by round binary units (20 MiB), not decimal ones (9.54 MiB)."""
    if panel.ctype.semantic not in (St.BYTES, St.THROUGHPUT_BYTES_PER_NS):
        return
    from matplotlib.ticker import MultipleLocator

    lo, hi = ax.get_xlim() if axis == "x" else ax.get_ylim()
    ticks = nice_scale(np.array([lo, hi]), panel.ctype, ticks=5).ticks
    if len(ticks) > 1:
        target = ax.xaxis if axis == "x" else ax.yaxis
        target.set_major_locator(MultipleLocator(ticks[1] - ticks[0]))


def _short(text: str, n: int = 32) -> str:
    """A label as drawn: control characters escaped, cut to ``n`` characters."""
    text = _escape(text)
    return text if len(text) <= n else text[:n - 1] + "…"


def _x_values(chart: Chart) -> np.ndarray:
    if chart.x_kind == "time":
        return chart.x.astype(np.int64).astype("datetime64[ns]")
    return chart.x


def _draw_vertical(ax: Any, chart: Chart, panel: Panel) -> None:
    import matplotlib.dates as mdates

    x = _x_values(chart)
    colors = _colors(panel)
    if chart.kind == "line":
        # Later lines are drawn dashed, so one lying on an earlier one leaves it visible.
        for k, (s, c) in enumerate(zip(panel.series, colors, strict=True)):
            ok = np.isfinite(s.values)
            ax.plot(x[ok], s.values[ok], label=_short(s.label), color=c, linewidth=1.8,
                    linestyle=_LINE_STYLES[k % len(_LINE_STYLES)],
                    marker="o" if ok.sum() <= 40 else None, markersize=3.5)
    else:
        stack = np.clip(np.nan_to_num(np.vstack([s.values for s in panel.series]), nan=0.0,
                                      posinf=0.0, neginf=0.0), 0.0, None)
        if chart.kind == "stacked" and chart.x.size > 1:
            ax.stackplot(x, stack, labels=[_short(s.label) for s in panel.series], colors=colors,
                         alpha=0.9, linewidth=0)
        else:  # bars at each x
            gaps = np.diff(chart.x)
            step = float(gaps[gaps > 0].min()) if (gaps > 0).any() else 60e9
            width: Any = step * 0.8
            if chart.x_kind == "time":
                width = np.timedelta64(int(step * 0.8), "ns")
            bottom = np.zeros(chart.x.size)
            for s, row, c in zip(panel.series, stack, colors, strict=True):
                ax.bar(x, row, width=width, bottom=bottom, label=_short(s.label), color=c)
                bottom = bottom + row
        ax.set_ylim(bottom=0)
    if chart.x_kind == "time":
        locator = mdates.AutoDateLocator()
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    else:
        n = len(chart.x_labels)
        every = max(1, n // 20)
        ax.set_xticks(chart.x[::every], [_short(s, 20) for s in chart.x_labels[::every]],
                      rotation=30 if n > 6 else 0, ha="right" if n > 6 else "center")
    if chart.kind == "line":
        low, high = ax.get_ylim()
        if low > 0:
            ax.set_ylim(0, high)
    ax.yaxis.set_major_formatter(_value_formatter(panel))
    _binary_ticks(ax, panel, "y")


def _draw_horizontal(ax: Any, chart: Chart, panel: Panel) -> None:
    shown = min(len(chart.x_labels), FILE_MAX_BARS)
    pos = np.arange(shown)
    colors = _colors(panel)
    stacked = len(panel.series) > 1
    left = np.zeros(shown)
    for s, c in zip(panel.series, colors, strict=True):
        values = np.nan_to_num(s.values[:shown], nan=0.0, posinf=0.0, neginf=0.0)
        if stacked:
            values = np.clip(values, 0.0, None)
        ax.barh(pos, values, left=left, height=0.7, label=_short(s.label), color=c)
        left = left + values
    ax.set_yticks(pos, [_short(s) for s in chart.x_labels[:shown]])
    ax.invert_yaxis()
    ax.xaxis.set_major_formatter(_value_formatter(panel))
    _binary_ticks(ax, panel, "x")
    ax.set_xlabel(_short(panel.title, 60))
    if len(chart.x_labels) > shown:
        ax.set_title(f"first {shown} of {len(chart.x_labels)} {chart.axes.x or 'rows'}",
                     loc="right", fontsize=8, color="#666")


def _draw_histogram(ax: Any, panel: Panel) -> None:
    counts, edges = histogram(panel.series[0].values, max_bins=40)
    if not counts.size:
        return
    if counts.size == 1:  # equal values: one bar centred on the value
        ax.bar([edges[0]], counts, width=max(abs(edges[0]) * 0.1, 1.0), color="C0")
    else:
        ax.bar(edges[:-1], counts, width=np.diff(edges), align="edge", color="C0",
               edgecolor="white", linewidth=0.6)
    ax.xaxis.set_major_formatter(_value_formatter(panel))
    _binary_ticks(ax, panel, "x")
    ax.set_xlabel(_short(panel.title, 60))
    ax.set_ylabel("count")


def _drawable(chart: Chart) -> Chart:
    """``chart`` without values beyond ±1e300 (and infinities): matplotlib's scales overflow
    near the float limits."""
    limit = 1e300
    if not any((np.abs(s.values) > limit).any() for p in chart.panels for s in p.series):
        return chart
    panels = tuple(
        replace(p, series=tuple(replace(s, values=np.where(np.abs(s.values) > limit, np.nan,
                                                           s.values)) for s in p.series))
        for p in chart.panels)
    return replace(chart, panels=panels,
                   notes=(*chart.notes, "values beyond ±1e300 (or infinite) are not drawn"))


def figure(chart: Chart) -> Any:
    """A matplotlib Figure of ``chart``: one subplot per panel, sharing the x axis."""
    _matplotlib(".png")
    from matplotlib.figure import Figure

    chart = _drawable(chart)

    panels = chart.panels
    n = max(1, len(panels))
    if chart.horizontal:
        rows = min(len(chart.x_labels), FILE_MAX_BARS)
        panel_height = max(2.4, 0.26 * rows + 1.0)
    else:
        panel_height = 3.2
    fig = Figure(figsize=(10, panel_height * n + 0.6), layout="constrained", dpi=100)
    share = not chart.horizontal and chart.kind != "histogram"
    axes = fig.subplots(n, 1, squeeze=False, sharex=share)[:, 0]
    fig.suptitle(_short(chart.title, 120), fontsize=12, x=0.01, ha="left")
    for i, ax in enumerate(axes):
        ax.grid(True, alpha=0.3)
        ax.set_axisbelow(True)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
        if i >= len(panels) or chart.empty:
            ax.text(0.5, 0.5, "no rows", transform=ax.transAxes, ha="center", va="center",
                    color="#666")
            ax.set_xticks([])
            ax.set_yticks([])
            continue
        panel = panels[i]
        if chart.kind == "histogram":
            _draw_histogram(ax, panel)
        elif chart.horizontal:
            _draw_horizontal(ax, chart, panel)
        else:
            _draw_vertical(ax, chart, panel)
            ax.set_ylabel(_short(panel.title, 40))
            if i == len(panels) - 1:
                ax.set_xlabel(_short(chart.axes.x or "row", 60)
                              + (" (UTC)" if chart.x_kind == "time" else ""))
        if len(panel.series) > 1:
            ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    if chart.notes:
        fig.supxlabel(_short("; ".join(chart.notes), 160), fontsize=8, color="#666")
    return fig


#: Settings while drawing: labels are plain text ("$" is no TeX), reproducible SVG ids.
_RC = {"text.parse_math": False, "svg.hashsalt": "pxl", "svg.fonttype": "path"}


def _render(fig: Any, fmt: str) -> bytes:
    matplotlib = _matplotlib(f".{fmt}")
    buffer = io.BytesIO()
    metadata = {"Date": None} if fmt == "svg" else {"Software": None}
    with matplotlib.rc_context(_RC), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Glyph .* missing from font")
        fig.savefig(buffer, format=fmt, metadata=metadata)
    return buffer.getvalue()


# ---------------------------------------------------------------------------------------------
# HTML
# ---------------------------------------------------------------------------------------------

_STYLE = """
body { font: 14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em; color: #222; }
h1 { font-size: 1.3em; } h2 { font-size: 1.1em; margin-top: 2em; }
figure { margin: 0; } figure svg { max-width: 100%; height: auto; }
table { border-collapse: collapse; font-size: 13px; }
th, td { border: 1px solid #ddd; padding: 3px 8px; white-space: nowrap; }
th { background: #f4f4f4; text-align: left; } td.n { text-align: right; }
tr:nth-child(even) td { background: #fafafa; }
.note { color: #666; }
""".strip()


def _svg_element(svg: bytes) -> str:
    text = svg.decode("utf-8")
    return text[text.index("<svg"):]


def _html_table(result: Any) -> str:
    cols = columns(result)
    frame = result.frame
    rows = frame.head(HTML_MAX_ROWS).rows()
    numeric = [ctype.dtype in NUMERIC for _, ctype in cols]
    head = "".join(f"<th>{html.escape(name)}</th>" for name, _ in cols)
    body = []
    for row in rows:
        cells = "".join(
            f'<td class="n">{html.escape(humanize(v, t))}</td>' if num
            else f"<td>{html.escape(humanize(v, t))}</td>"
            for v, (_, t), num in zip(row, cols, numeric, strict=True))
        body.append(f"<tr>{cells}</tr>")
    more = ""
    if frame.height > len(rows):
        more = (f'<p class="note">… {frame.height - len(rows):,} more rows not shown '
                "(use pxl run -o csv/json for all of them)</p>")
    return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n" + "\n".join(body) + \
        f"\n</tbody>\n</table>\n{more}"


def html_page(result: Any, chart: Chart, svg: bytes) -> str:
    """A standalone page (no scripts, no external resources): the chart as inline SVG, then the
    output's rows as a table."""
    name = html.escape(getattr(result, "name", "output"))
    rows = result.frame.height
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f"<title>{name} · pxl</title>\n<style>\n{_STYLE}\n</style>\n</head>\n<body>\n"
        f"<h1>{name}</h1>\n<figure>\n{_svg_element(svg)}\n</figure>\n"
        f"<h2>{name}: {rows:,} row{'' if rows == 1 else 's'}</h2>\n{_html_table(result)}"
        "</body>\n</html>\n"
    )


# ---------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------


def chart_bytes(result: Any, fmt: str, **axes: Any) -> bytes:
    """The chart of ``result`` as a ``fmt`` ("png", "svg" or "html") file's bytes."""
    if f".{fmt}" not in SUFFIXES:
        raise ChartError(f"cannot write a chart as {fmt!r}; use one of "
                         f"{', '.join(s[1:] for s in SUFFIXES)}")
    matplotlib = _matplotlib(f".{fmt}")
    chart = build_chart(result, axes.pop("kind", None), **axes)
    with matplotlib.rc_context(_RC):
        fig = figure(chart)
    if fmt == "html":
        return html_page(result, chart, _render(fig, "svg")).encode("utf-8")
    return _render(fig, fmt)


def write_chart(result: Any, path: str | Path, **axes: Any) -> Path:
    """Write the chart of ``result`` to ``path``; its suffix (.png, .svg, .html) is the format.
    ``axes`` (kind, x, y, series) override what the schema and ``chart_type`` would choose."""
    target = Path(path)
    data = chart_bytes(result, target.suffix.lower().lstrip("."), **axes)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    return target


def chart_paths(names: Sequence[str], path: str | Path) -> list[Path]:
    """``path`` for one chart; for several, ``<stem>_<name><suffix>`` beside it."""
    target = Path(path)
    if len(names) == 1:
        return [target]
    paths: list[Path] = []
    for name in names:
        stem = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "output"
        candidate, n = target.with_name(f"{target.stem}_{stem}{target.suffix}"), 2
        while candidate in paths:
            candidate, n = target.with_name(f"{target.stem}_{stem}_{n}{target.suffix}"), n + 1
        paths.append(candidate)
    return paths


def write_charts(outputs: Iterable[Any], path: str | Path) -> list[Path]:
    """Write the chart of every output that has a ``chart_type`` (see :func:`chart_paths` for the
    file names). Raises :class:`ChartError` when none has one, or matplotlib is missing."""
    suffix = Path(path).suffix.lower()
    if suffix not in SUFFIXES:
        raise ChartError(f"{path}: a chart file ends in {', '.join(SUFFIXES)}")
    charted = [o for o in outputs if chart_type(o)]
    if not charted:
        raise ChartError(f"--out {path} writes charts, but no output has a chart_type; display "
                         "one with px.display(df, chart_type='line') (or 'bar', 'stacked', "
                         "'histogram')")
    _matplotlib(suffix)
    blobs = [chart_bytes(o, suffix[1:]) for o in charted]  # every chart drawn before any write
    written = []
    for target, data in zip(chart_paths([o.name for o in charted], path), blobs, strict=True):
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        written.append(target)
    return written

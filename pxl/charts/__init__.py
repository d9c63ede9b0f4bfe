"""Charts of script outputs: ``px.display(df, chart_type='line'|'bar'|'stacked'|'histogram')``.

>>> text = render_terminal(result, width=80, height=10)   # doctest: +SKIP
>>> write_chart(result, "latency.png")                    # doctest: +SKIP

The axes come from the output's schema (:func:`choose_axes`): x is the first time column for line
and stacked charts, the first string column for bar charts; y is every numeric column; a string
column left over splits the rows into series. The terminal drawing needs nothing beyond pxl's own
dependencies; PNG, SVG and HTML files need matplotlib (``pip install 'pxl[charts]'``), imported
only when a file is written.
"""

from pxl.charts.files import SUFFIXES, chart_bytes, figure, is_chart_path, write_chart, write_charts
from pxl.charts.model import (
    KINDS,
    Axes,
    Chart,
    ChartError,
    Panel,
    Series,
    build_chart,
    chart_type,
    choose_axes,
)
from pxl.charts.terminal import render_chart, render_terminal

__all__ = [
    "KINDS",
    "SUFFIXES",
    "Axes",
    "Chart",
    "ChartError",
    "Panel",
    "Series",
    "build_chart",
    "chart_bytes",
    "chart_type",
    "choose_axes",
    "figure",
    "is_chart_path",
    "render_chart",
    "render_terminal",
    "write_chart",
    "write_charts",
]

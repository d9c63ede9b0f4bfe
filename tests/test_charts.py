"""Tests of pxl.charts: axes from the schema, terminal drawings, chart files and the CLI path."""

from __future__ import annotations

import datetime as dt
import math
import subprocess
import sys
import xml.etree.ElementTree as ET

import numpy as np
import polars as pl
import pytest

from engine.executor import Result
from engine.types import ColumnType, DataType, Schema, SemanticType
from pxl.charts import (
    ChartError,
    build_chart,
    chart_type,
    choose_axes,
    render_terminal,
    write_chart,
    write_charts,
)
from pxl.charts.terminal import FILLS, LINE_MARKS, MAX_BARS
from pxl.output import _display_width as display_width
from tests.conftest import ROOT

St = SemanticType
INT, FLOAT, STR, TIME, BOOL = (DataType.INT64, DataType.FLOAT64, DataType.STRING,
                               DataType.TIME64NS, DataType.BOOLEAN)
T0 = dt.datetime(2026, 11, 24, 11, 0)
MINUTE = dt.timedelta(minutes=1)
DEMO_NOW_ISO = "2026-11-24T12:00:00Z"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def result(columns: dict[str, tuple[list, ColumnType]], chart: str | None = "line",
           name: str = "out") -> Result:
    """An output with the given columns (values, type) and chart_type."""
    frame = pl.DataFrame({n: pl.Series(n, v, dtype=t.dtype.polars, strict=False)
                          for n, (v, t) in columns.items()})
    schema = Schema.of({n: t for n, (_, t) in columns.items()})
    return Result(name, frame, schema, (("chart_type", chart),) if chart else ())


def times(n: int) -> list[dt.datetime]:
    return [T0 + i * MINUTE for i in range(n)]


def services_over_time(n_services: int = 3, minutes: int = 10, chart: str = "line") -> Result:
    rows = [(t, f"svc{s}", (s + 1) * 10 + i, 1e6 * (s + 1))
            for i, t in enumerate(times(minutes)) for s in range(n_services)]
    return result({
        "timestamp": ([r[0] for r in rows], ColumnType(TIME, St.TIME)),
        "service": ([r[1] for r in rows], ColumnType(STR, St.SERVICE_NAME)),
        "requests": ([r[2] for r in rows], ColumnType(INT)),
        "latency": ([r[3] for r in rows], ColumnType(FLOAT, St.DURATION_NS)),
    }, chart)


def lines_of(text: str) -> list[str]:
    return text.split("\n")


def assert_fits(text: str, width: int) -> None:
    for line in lines_of(text):
        assert display_width(line) <= width, line


def plot_rows(text: str) -> list[str]:
    """The plot rows of a vertical chart (those with the y axis: │ or ┤ after the labels)."""
    return [line for line in lines_of(text) if any(c in line for c in "│┤")
            and not line.lstrip().startswith("└")]


def y_axis_column(text: str) -> int:
    return next(line.index("└") for line in lines_of(text) if "└" in line)


# ---------------------------------------------------------------------------------------------
# Axes
# ---------------------------------------------------------------------------------------------


def test_axes_time_series_puts_time_on_x_and_splits_by_the_string_column():
    axes = choose_axes(services_over_time())
    assert (axes.kind, axes.x, axes.y, axes.series) == (
        "line", "timestamp", ("requests", "latency"), "service")


def test_axes_bar_puts_the_string_column_on_x():
    axes = choose_axes(services_over_time(chart="bar"))
    assert (axes.x, axes.series, axes.y) == ("service", None, ("requests", "latency"))


def test_axes_histogram_takes_the_first_numeric_column():
    axes = choose_axes(services_over_time(chart="histogram"))
    assert (axes.x, axes.y, axes.series) == (None, ("requests",), None)


def test_axes_status_codes_are_categories_not_values():
    out = result({
        "resp_status": ([200, 500], ColumnType(INT, St.HTTP_RESP_STATUS)),
        "count": ([10, 2], ColumnType(INT)),
    }, "bar")
    axes = choose_axes(out)
    assert (axes.x, axes.y) == ("resp_status", ("count",))


def test_axes_fall_back_to_categories_then_row_number():
    by_path = result({"path": (["/a", "/b"], ColumnType(STR)), "n": ([1, 2], ColumnType(INT))})
    assert choose_axes(by_path).x == "path"
    plain = result({"n": ([1, 2], ColumnType(INT))}, "bar")
    assert choose_axes(plain).x is None


def test_axes_named_columns_and_mistakes():
    out = services_over_time()
    assert choose_axes(out, y=["latency"]).y == ("latency",)
    with pytest.raises(ChartError, match="no column 'nope'"):
        choose_axes(out, y=["nope"])
    with pytest.raises(ChartError, match="not numeric"):
        choose_axes(out, y=["service"])
    with pytest.raises(ChartError, match="no numeric column"):
        choose_axes(result({"s": (["a"], ColumnType(STR))}))


def test_chart_type_comes_from_the_display_options():
    assert chart_type(services_over_time(chart="stacked")) == "stacked"
    assert chart_type(result({"n": ([1], ColumnType(INT))}, None)) is None
    assert chart_type(result({"n": ([1], ColumnType(INT))}, "table")) is None


def test_panels_group_y_by_unit_without_a_series_column():
    out = result({
        "timestamp": (times(3), ColumnType(TIME, St.TIME)),
        "requests": ([1, 2, 3], ColumnType(INT)),
        "p50": ([1e6, 2e6, 3e6], ColumnType(FLOAT, St.DURATION_NS)),
        "p99": ([5e6, 6e6, 7e6], ColumnType(FLOAT, St.DURATION_NS)),
    })
    chart = build_chart(out)
    assert [p.columns for p in chart.panels] == [("requests",), ("p50", "p99")]
    assert [s.label for s in chart.panels[1].series] == ["p50", "p99"]


def test_many_series_are_capped_with_the_rest_merged_into_other():
    chart = build_chart(services_over_time(n_services=12))
    labels = [s.label for s in chart.panels[0].series]
    assert len(labels) == 8 and labels[-1] == "other"
    assert labels[0] == "svc11"  # the biggest first
    other = chart.panels[0].series[-1]
    assert other.merged == 5
    # requests are counts: "other" sums them (svc0..svc4 at minute 0: 10+20+30+40+50)
    assert other.values[0] == 150
    assert any("merged" in n for n in chart.notes)


# ---------------------------------------------------------------------------------------------
# Terminal drawings
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["line", "stacked", "histogram"])
@pytest.mark.parametrize("width,height", [(60, 8), (100, 12)])
def test_vertical_charts_have_the_asked_size_labels_and_legend(kind, width, height):
    out = result({
        "timestamp": (times(10), ColumnType(TIME, St.TIME)),
        "latency": ([i * 1e6 for i in range(10)], ColumnType(FLOAT, St.DURATION_NS)),
    }, kind)
    text = render_terminal(out, width=width, height=height)
    assert_fits(text, width)
    assert len(plot_rows(text)) == height
    assert lines_of(text)[0].startswith(f"out: {kind}") or lines_of(text)[0].startswith(
        "out: histogram")
    assert "ms" in text  # durations are labelled in their unit
    if kind == "histogram":
        assert "latency: 10 values in bins of" in text and "count" in lines_of(text)[-1]
    else:
        assert "11:00" in text and "timestamp (UTC, 2026-11-24)" in text
        assert "latency" in lines_of(text)[-1]  # the legend


def test_bar_chart_has_a_row_per_category_values_and_an_axis():
    out = result({
        "service": (["cart", "checkout", "payment"], ColumnType(STR)),
        "bytes": ([1024**2, 3 * 1024**2, 0], ColumnType(INT, St.BYTES)),
    }, "bar")
    text = render_terminal(out, width=60)
    assert_fits(text, 60)
    rows = [line for line in lines_of(text) if "│" in line]
    assert [r.split("│")[0].strip() for r in rows] == ["cart", "checkout", "payment"]
    assert rows[0].endswith(" 1 MiB") and rows[1].endswith(" 3 MiB") and rows[2].endswith(" 0")
    assert rows[1].count("█") > rows[0].count("█") > 0 == rows[2].count("█")
    assert "MiB" in lines_of(text)[-1]  # axis tick labels in binary units


def test_a_peak_lands_in_its_column_and_the_top_row():
    values = [0.0] * 10
    values[6] = 100.0
    out = result({"timestamp": (times(10), ColumnType(TIME, St.TIME)),
                  "v": (values, ColumnType(FLOAT))})
    text = render_terminal(out, width=60, height=10)
    rows = plot_rows(text)
    axis = y_axis_column(text)
    plot_width = 60 - axis - 1
    top = rows[0][axis + 1:]
    inked = [i for i, c in enumerate(top) if c != " "]
    want = round(6 / 9 * (2 * plot_width - 1)) // 2  # braille: two dots a cell
    assert want in inked and all(abs(i - want) <= 1 for i in inked)  # the peak, its slopes
    assert rows[0][:axis].strip() == "100"  # the top row is labelled with the peak
    assert all(c in " ⠀" or 0x2800 <= ord(c) <= 0x28FF for c in top)


def test_series_get_distinct_marks_and_peaks_in_their_columns():
    a = [0.0] * 10
    b = [0.0] * 10
    a[2], b[7] = 50.0, 100.0
    rows_ = [(t, s, v) for i, t in enumerate(times(10)) for s, v in (("a", a[i]), ("b", b[i]))]
    out = result({"timestamp": ([r[0] for r in rows_], ColumnType(TIME, St.TIME)),
                  "who": ([r[1] for r in rows_], ColumnType(STR)),
                  "v": ([r[2] for r in rows_], ColumnType(FLOAT))})
    text = render_terminal(out, width=60, height=11)
    rows = plot_rows(text)
    axis = y_axis_column(text)
    plot_width = 60 - axis - 1
    # series ranked by total: b (100) first gets "*", a gets "o"
    assert f"{LINE_MARKS[0]} b  {LINE_MARKS[1]} a" in text
    assert rows[0][axis + 1:].rstrip().index(LINE_MARKS[0]) == round(7 / 9 * (plot_width - 1))
    middle = rows[5][axis + 1:]  # 50 of 0..100 over 11 rows: the middle one
    assert middle.index(LINE_MARKS[1]) == round(2 / 9 * (plot_width - 1))


def test_stacked_series_fill_in_order_and_histogram_peaks_where_values_are():
    out = services_over_time(n_services=2, chart="stacked")
    text = render_terminal(out, width=70, height=9)
    assert FILLS[0] * 2 + " svc1" in text and FILLS[1] * 2 + " svc0" in text
    bottom = plot_rows(text)[-1]
    assert FILLS[0] in bottom  # the biggest series at the bottom
    values = [1.0] * 5 + [9.0] * 95
    hist = render_terminal(result({"v": (values, ColumnType(FLOAT))}, "histogram"),
                           width=60, height=8)
    top = plot_rows(hist)[0]
    axis = y_axis_column(hist)
    inked = [i for i, c in enumerate(top[axis + 1:]) if c != " "]
    assert inked and min(inked) > (60 - axis) // 2  # the tall bar is on the right


def test_color_marks_series_only_when_asked():
    out = services_over_time()
    assert "\x1b[" not in render_terminal(out, width=80)
    colored = render_terminal(out, width=80, color=True)
    assert "\x1b[34m" in colored and colored.count("\x1b[0m") > 3


def degenerate_outputs() -> dict[str, Result]:
    tt = ColumnType(TIME, St.TIME)
    dur = ColumnType(INT, St.DURATION_NS)
    return {
        "empty": result({"timestamp": ([], tt), "v": ([], dur)}),
        "one_row": result({"timestamp": (times(1), tt), "v": ([5], dur)}),
        "all_null": result({"timestamp": (times(3), tt), "v": ([None] * 3, dur)}),
        "nan_inf": result({"timestamp": (times(4), tt),
                           "v": ([float("nan"), float("inf"), 1.0, float("-inf")],
                                 ColumnType(FLOAT))}),
        "constant": result({"timestamp": (times(5), tt), "v": ([7] * 5, dur)}),
        "negative": result({"s": (["a", "b", "c"], ColumnType(STR)),
                            "v": ([-5.0, 3.0, -1e-9], ColumnType(FLOAT))}),
        "huge": result({"timestamp": (times(3), tt),
                        "v": ([1.7e308, -1.7e308, 0.0], ColumnType(FLOAT))}),
        "int64_max": result({"timestamp": (times(2), tt),
                             "v": ([2**63 - 1, -(2**63)], ColumnType(INT, St.BYTES))}),
        "null_x": result({"timestamp": ([None, None], tt), "v": ([1, 2], dur)}),
        "many_series": services_over_time(n_services=40, minutes=3),
        "many_bars": result({"s": ([f"path/{i}" for i in range(100)], ColumnType(STR)),
                             "v": (list(range(100)), ColumnType(INT))}),
        "wide_labels": result({"s": (["カート" * 20, "\x1b[31mred\n", None, "$x^{2$ $"],
                                     ColumnType(STR)), "v": ([1, 2, 3, 4], ColumnType(INT))}),
        "no_numbers": result({"s": (["a"], ColumnType(STR))}),
        "bools": result({"ok": ([True, False, None], ColumnType(BOOL)),
                         "v": ([1, 2, 3], ColumnType(INT))}),
    }


@pytest.mark.parametrize("kind", ["line", "bar", "stacked", "histogram"])
@pytest.mark.parametrize("case", list(degenerate_outputs()))
@pytest.mark.parametrize("width,height", [(40, 3), (120, 10)])
def test_degenerate_outputs_draw_without_crashing(case, kind, width, height):
    out = degenerate_outputs()[case]
    out = Result(out.name, out.frame, out.schema, (("chart_type", kind),))
    text = render_terminal(out, width=width, height=height)
    assert_fits(text, width)
    assert "\x1b" not in text and "\n\n\n" not in text
    if case == "no_numbers":
        assert text.startswith("out: no chart: output 'out' has no nume")
    elif kind != "bar" and (case in ("empty", "all_null") or case == "null_x"
                            and kind != "histogram"):
        assert "(no rows)" in text or "(no values)" in text


def test_tiny_sizes_are_raised_to_the_minimum():
    text = render_terminal(services_over_time(), width=5, height=1)
    assert_fits(text, 40)
    assert len(plot_rows(text)) == 2 * 3  # two panels of 3 rows


def test_many_bars_are_cut_with_a_note():
    out = degenerate_outputs()["many_bars"]
    out = Result(out.name, out.frame, out.schema, (("chart_type", "bar"),))
    text = render_terminal(out, width=80)
    assert sum("│" in line for line in lines_of(text)) == MAX_BARS
    assert f"… {100 - MAX_BARS} more s not shown" in text


# ---------------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def mpl():
    return pytest.importorskip("matplotlib")


@pytest.mark.parametrize("kind", ["line", "bar", "stacked", "histogram"])
def test_png_svg_and_html_files_are_valid(tmp_path, mpl, kind):
    out = services_over_time(n_services=3, chart=kind)
    png = write_chart(out, tmp_path / "c.png")
    assert png.read_bytes().startswith(PNG_SIGNATURE)
    svg = write_chart(out, tmp_path / "c.svg")
    root = ET.fromstring(svg.read_bytes())
    assert root.tag.endswith("svg")
    page = write_chart(out, tmp_path / "sub" / "c.html").read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "<svg" in page and "</svg>" in page
    assert "<table>" in page and "svc2" in page and "1 ms" in page  # the data, humanized
    assert "<script" not in page and "<link" not in page and "src=" not in page


@pytest.mark.parametrize("case", ["empty", "one_row", "all_null", "nan_inf", "huge", "constant",
                                  "int64_max", "wide_labels", "many_series"])
def test_degenerate_outputs_still_make_files(tmp_path, mpl, case):
    out = degenerate_outputs()[case]
    for kind in ("line", "bar", "stacked", "histogram"):
        out = Result(out.name, out.frame, out.schema, (("chart_type", kind),))
        assert write_chart(out, tmp_path / f"{kind}.png").read_bytes().startswith(PNG_SIGNATURE)


def test_several_charted_outputs_get_one_file_each(tmp_path, mpl):
    a = services_over_time(chart="line")
    b = Result("by service", a.frame, a.schema, (("chart_type", "bar"),))
    plain = Result("table_only", a.frame, a.schema, ())
    written = write_charts([a, plain, b], tmp_path / "chart.svg")
    assert [p.name for p in written] == ["chart_out.svg", "chart_by_service.svg"]
    assert write_charts([b], tmp_path / "one.svg") == [tmp_path / "one.svg"]
    with pytest.raises(ChartError, match="no output has a chart_type"):
        write_charts([plain], tmp_path / "x.png")


def test_files_without_matplotlib_say_what_to_install(tmp_path, monkeypatch):
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib → ImportError
    with pytest.raises(ChartError, match=r"install pxl\[charts\]"):
        write_chart(services_over_time(), tmp_path / "c.png")
    assert not (tmp_path / "c.png").exists()
    assert "svc0" in render_terminal(services_over_time(), width=80)  # the terminal still works


def test_the_core_does_not_import_matplotlib():
    code = ("import sys, pxl.charts, pxl.cli; "
            "assert 'matplotlib' not in sys.modules, 'matplotlib imported'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, timeout=60)


# ---------------------------------------------------------------------------------------------
# The pxl command
# ---------------------------------------------------------------------------------------------


def test_cli_draws_the_chart_under_the_table(cli):
    r = cli("run", "examples/latency_over_time.pxl", "--demo", "--now", DEMO_NOW_ISO,
            "--max-rows", "3")
    assert r.code == 0, r.err
    table_at = r.out.index("latency: 60 rows")
    chart_at = r.out.index("latency: line chart of requests, p99, p50, p99_pluck over timestamp")
    assert table_at < chart_at
    assert "timestamp (UTC, 2026-11-24)" in r.out and "* p99  o p50  + p99_pluck" in r.out
    assert any(0x2800 < ord(c) <= 0x28FF for c in r.out)  # the braille line of requests
    assert "\x1b[" not in r.out  # no colour when not a terminal


@pytest.fixture
def tiny(tmp_path):
    """A small table file and scripts over it, quicker to run than the demo dataset."""
    frame = pl.DataFrame({"time_": pl.Series(times(6), dtype=pl.Datetime("ns")),
                          "service": ["a", "b"] * 3, "latency": [i * 10**6 for i in range(6)]})
    frame.write_parquet(tmp_path / "t.parquet")
    for name, display in (("chart", "px.display(df, chart_type='bar')"),
                          ("plain", "px.display(df)")):
        (tmp_path / f"{name}.pxl").write_text(f"import px\ndf = px.DataFrame(table='t')\n"
                                              f"{display}\n")
    return tmp_path, ("--table", f"t={tmp_path / 't.parquet'}")


def test_cli_tables_without_chart_type_are_unchanged(cli, tiny):
    where, table = tiny
    r = cli("run", str(where / "plain.pxl"), *table)
    assert r.code == 0, r.err
    assert r.out.startswith("output: 6 rows") and r.out.rstrip().endswith("┘")
    r = cli("run", str(where / "chart.pxl"), *table)
    table_text, chart = r.out.split("\n\n")
    assert table_text.endswith("┘") and chart.startswith("output: bar chart of latency per service")
    bars = [line for line in chart.split("\n") if "│" in line]
    assert bars[0].startswith("a │█") and bars[0].endswith(" 6000000")  # summed per service
    assert bars[1].startswith("b │█") and bars[1].endswith(" 9000000")


def test_cli_writes_a_png(cli, tmp_path, mpl):
    target = tmp_path / "latency.png"
    r = cli("run", "examples/latency_over_time.pxl", "--demo", "--now", DEMO_NOW_ISO,
            "--out", str(target))
    assert r.code == 0, r.err
    assert r.out == "" and f"wrote {target}" in r.err
    assert target.read_bytes().startswith(PNG_SIGNATURE)


def test_cli_chart_file_mistakes_are_usage_errors(cli, tiny):
    where, table = tiny
    r = cli("run", str(where / "chart.pxl"), *table, "-o", "json", "--out", str(where / "x.svg"))
    assert r.code == 2 and "does not go with -o json" in r.err and "Traceback" not in r.err
    r = cli("run", str(where / "plain.pxl"), *table, "--out", str(where / "x.png"))
    assert r.code == 2 and "no output has a chart_type" in r.err
    assert not list(where.glob("x*"))


def test_cli_without_matplotlib_asks_to_install_pxl_charts(tiny):
    where, table = tiny
    code = "import sys; sys.modules['matplotlib'] = None; from pxl.cli import main; main()"
    proc = subprocess.run(
        [sys.executable, "-c", code, "run", str(where / "chart.pxl"), *table,
         "--out", str(where / "x.png")], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 2
    assert "install pxl[charts]" in proc.stderr and "Traceback" not in proc.stderr
    assert not (where / "x.png").exists()


def test_cli_other_out_suffixes_still_write_data_files(cli, tiny):
    where, table = tiny
    r = cli("run", str(where / "chart.pxl"), *table, "--out", str(where / "res"))
    assert r.code == 0, r.err
    assert (where / "res" / "output.json").is_file()


def test_scale_ticks_are_round_in_the_unit():
    from pxl.charts.model import nice_scale

    ms = nice_scale(np.array([0, 9.3e6]), ColumnType(INT, St.DURATION_NS), ticks=4)
    assert ms.ticks == (0, 2.5e6, 5e6, 7.5e6, 1e7)  # 0 … 10 ms
    counts = nice_scale(np.array([2400.0, 17.0]), ColumnType(INT), ticks=4)
    assert counts.ticks == (0, 1000, 2000, 3000)  # the smallest round step that fits
    assert nice_scale(np.array([3.0]), ColumnType(INT), ticks=4).ticks == (0, 1, 2, 3)
    mib = nice_scale(np.array([3 * 1024**2]), ColumnType(INT, St.BYTES))
    assert all(t % (1024 * 1024) == 0 for t in mib.ticks)
    huge = nice_scale(np.array([1.7e308, -1.7e308]), ColumnType(FLOAT))
    assert all(math.isfinite(t) for t in huge.ticks)
    assert 0 <= huge.frac(1.0e308) <= 1

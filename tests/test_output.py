"""Tests of pxl.output: humanized values, tables, NDJSON/CSV and files with semantic metadata."""

from __future__ import annotations

import datetime as dt
import io
import json

import polars as pl
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.types import QUANTILE_KEYS, ColumnType, DataType, Schema, SemanticType
from pxl.output import (
    Output,
    format_results,
    format_table,
    humanize,
    read_semantics,
    write_csv,
    write_files,
    write_ndjson,
)
from pxl.output import _display_width as display_width

St = SemanticType
INT, FLOAT, STR, TIME, QUANT, BOOL = (DataType.INT64, DataType.FLOAT64, DataType.STRING,
                                      DataType.TIME64NS, DataType.QUANTILES, DataType.BOOLEAN)


def ct(dtype: DataType, semantic: SemanticType = St.NONE) -> ColumnType:
    return ColumnType(dtype, semantic)


NS = dt.datetime(2026, 11, 24, 14, 31, 39, 123456)
NS_VALUE = pl.Series([NS], dtype=pl.Datetime("ns")) + pl.duration(nanoseconds=789)


def quantiles(**values: float | None) -> dict[str, float | None]:
    return {k: values.get(k, float(i)) for i, k in enumerate(QUANTILE_KEYS)}


def sample() -> Output:
    frame = pl.DataFrame(
        {
            "time_": pl.Series([NS, NS], dtype=pl.Datetime("ns")),
            "service": ["checkout", "カート"],
            "latency": [850, 1_234_567],
            "ratio": [0.5, float("nan")],
            "ok": [True, None],
            "lat_q": [quantiles(p50=1e6, p90=2e6, p99=3.5e9), None],
        },
        schema_overrides={"lat_q": QUANT.polars},
    ).with_columns(pl.col("time_") + pl.duration(nanoseconds=789))
    schema = Schema.of({
        "time_": ct(TIME, St.TIME),
        "service": ct(STR, St.SERVICE_NAME),
        "latency": ct(INT, St.DURATION_NS),
        "ratio": ct(FLOAT),
        "ok": ct(BOOL),
        "lat_q": ct(QUANT, St.DURATION_NS_QUANTILES),
    })
    return Output("http", frame, schema)


# ------------------------------------------------------------------------------------ humanize


@pytest.mark.parametrize(("value", "text"), [
    (0, "0 ns"), (850, "850 ns"), (999, "999 ns"), (999.6, "1 µs"), (1000, "1 µs"),
    (12_345, "12.3 µs"), (999_499, "999 µs"), (999_999, "1 ms"), (1_200_000, "1.2 ms"),
    (1_234_567, "1.23 ms"), (3_400_000_000, "3.4 s"), (59_999_000_000, "1 min"),
    (150e9, "2.5 min"), (3_599e9, "1 h"), (5_400e9, "1.5 h"), (-1_200_000, "-1.2 ms"),
    (-850, "-850 ns"), (0.5, "0.5 ns"), (float("nan"), "NaN"), (float("inf"), "inf"),
])
def test_duration(value: float, text: str) -> None:
    assert humanize(value, ct(INT, St.DURATION_NS)) == text


@pytest.mark.parametrize(("value", "text"), [
    (0, "0 B"), (512, "512 B"), (1023, "1023 B"), (1024, "1 KiB"), (3482, "3.4 KiB"),
    (1024**2 - 1, "1 MiB"), (12 * 1024**2, "12 MiB"), (int(1.1 * 1024**3), "1.1 GiB"),
    (5 * 1024**4, "5 TiB"), (-2048, "-2 KiB"),
])
def test_bytes(value: int, text: str) -> None:
    assert humanize(value, ct(INT, St.BYTES)) == text


@pytest.mark.parametrize(("value", "text"), [
    (12.345, "12.3%"), (0, "0%"), (100, "100%"), (0.5, "0.5%"), (-3.21, "-3.21%"),
])
def test_percent(value: float, text: str) -> None:
    assert humanize(value, ct(FLOAT, St.PERCENT)) == text


@pytest.mark.parametrize(("value", "text"), [
    (1.2e-6, "1.2k/s"), (850e-9, "850/s"), (1e-6, "1k/s"), (0.0025, "2.5M/s"), (0, "0/s"),
    (0.5e-9, "0.5/s"),
])
def test_throughput(value: float, text: str) -> None:
    assert humanize(value, ct(FLOAT, St.THROUGHPUT_PER_NS)) == text


def test_throughput_bytes() -> None:
    per_ns = 3.4 * 1024**2 / 1e9
    assert humanize(per_ns, ct(FLOAT, St.THROUGHPUT_BYTES_PER_NS)) == "3.4 MiB/s"
    assert humanize(0, ct(FLOAT, St.THROUGHPUT_BYTES_PER_NS)) == "0 B/s"


def test_time() -> None:
    assert humanize(NS, ct(TIME, St.TIME)) == "2026-11-24 14:31:39.123"
    aware = dt.datetime(2026, 11, 24, 16, 31, 39, 999999, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert humanize(aware, ct(TIME)) == "2026-11-24 14:31:39.999"
    assert humanize(0, ct(INT, St.TIME)) == "1970-01-01 00:00:00.000"
    assert humanize(dt.datetime(1, 2, 3), ct(TIME)) == "0001-02-03 00:00:00.000"


def test_quantiles() -> None:
    q = quantiles(p50=1.2e6, p90=15e6, p99=2.5e9)
    assert humanize(q, ct(QUANT, St.DURATION_NS_QUANTILES)) == "p50=1.2 ms p90=15 ms p99=2.5 s"
    assert humanize(q, ct(QUANT, St.QUANTILES)) == "p50=1200000 p90=15000000 p99=2500000000"
    assert humanize(quantiles(p50=None), ct(QUANT)).startswith("p50=null p90=5")
    assert humanize('{"p50": 0.25, "p99": 1.5}', ct(STR, St.QUANTILES)) == "p50=0.25 p99=1.5"


@pytest.mark.parametrize(("value", "text"), [
    (3.14159265, "3.1416"), (2.0, "2"), (0.000123456, "0.0001235"), (1234567.891, "1234567.891"),
    (-0.5, "-0.5"), (0.0, "0"), (1e20, "1e+20"), (1e-9, "1e-09"), (float("nan"), "NaN"),
    (float("-inf"), "-inf"), (123456789012.0, "123456789012"),
])
def test_float(value: float, text: str) -> None:
    assert humanize(value, ct(FLOAT)) == text


def test_plain_values() -> None:
    assert humanize(None, ct(INT, St.DURATION_NS)) == "null"
    assert humanize(None, ct(STR)) == "null"
    assert humanize(True, ct(BOOL)) == "true"
    assert humanize(False, ct(BOOL)) == "false"
    assert humanize(-42, ct(INT)) == "-42"
    assert humanize(404, ct(INT, St.HTTP_RESP_STATUS)) == "404"
    assert humanize("10.0.0.1", ct(STR, St.IP_ADDRESS)) == "10.0.0.1"
    assert humanize("a\nb", ct(STR)) == "a\nb"
    assert humanize("x", ct(STR, St.DURATION_NS)) == "x"


# -------------------------------------------------------------------------------------- tables


def lines_of(text: str) -> list[str]:
    return text.split("\n")


def test_table_layout_and_alignment() -> None:
    out = Output("t", pl.DataFrame({"name": ["a", "bbb"], "n": [5, 12345]}),
                 Schema.of({"name": ct(STR), "n": ct(INT)}))
    assert format_table(out, width=80) == "\n".join([
        "t: 2 rows",
        "┌──────┬───────┐",
        "│ name │     n │",
        "├──────┼───────┤",
        "│ a    │     5 │",
        "│ bbb  │ 12345 │",
        "└──────┴───────┘",
    ])


def test_table_humanizes_cells() -> None:
    text = format_table(sample(), width=200)
    assert text.startswith("http: 2 rows\n")
    for cell in ("2026-11-24 14:31:39.123", "850 ns", "1.23 ms", "p50=1 ms p90=2 ms p99=3.5 s",
                 "NaN", "true", "null", "カート"):
        assert cell in text


@pytest.mark.parametrize("width", [40, 41, 60, 79, 120])
def test_elision_fits_width(width: int) -> None:
    frame = pl.DataFrame({"path": ["/api/" + "x" * 300], "latency": [1_234_567],
                          "body": ["日本語" * 80], "time_": pl.Series([NS], dtype=pl.Datetime("ns"))})
    schema = Schema.of({"latency": ct(INT, St.DURATION_NS), "time_": ct(TIME, St.TIME)})
    text = format_table(Output("wide", frame, schema), width=width)
    assert all(display_width(line) <= width for line in lines_of(text))
    assert "…" in text
    if width >= 79:  # numbers and times are kept whole while strings make room
        assert "1.23 ms" in text and "2026-11-24 14:31:39.123" in text


def test_width_defaults_to_terminal_with_minimum(monkeypatch: pytest.MonkeyPatch) -> None:
    import os
    monkeypatch.setattr("shutil.get_terminal_size", lambda *a, **k: os.terminal_size((10, 24)))
    out = Output("t", pl.DataFrame({"s": ["y" * 500]}), Schema(()))
    assert max(display_width(line) for line in lines_of(format_table(out))) == 40
    assert max(display_width(line) for line in lines_of(format_table(out, width=5))) == 40


def test_many_columns_are_dropped_with_notice() -> None:
    frame = pl.DataFrame({f"column_{i}": [i] for i in range(40)})
    text = format_table(Output("many", frame, Schema(())), width=60)
    assert all(display_width(line) <= 60 for line in lines_of(text))
    assert "more columns not shown" in text


def test_max_rows_notice() -> None:
    out = Output("big", pl.DataFrame({"i": range(1334)}), Schema(()))
    text = format_table(out, max_rows=100, width=100)
    rows = [line for line in lines_of(text) if line.startswith("│")]
    assert len(rows) == 101  # header + 100 rows
    assert lines_of(text)[0] == "big: 1334 rows"
    assert lines_of(text)[-1] == "… 1234 more rows not shown (use -o csv/json or --max-rows)"
    assert lines_of(format_table(out, max_rows=1333, width=40))[-1] == "… 1 more row not shown"
    assert "not shown" not in format_table(out, max_rows=2000)


def test_empty_frame_shows_header() -> None:
    out = Output("e", pl.DataFrame(schema={"a": pl.Int64, "b": pl.String}), Schema(()))
    assert format_table(out, width=40) == "\n".join([
        "e: 0 rows", "┌───┬───┐", "│ a │ b │", "└───┴───┘", "(no rows)"])


def test_zero_columns() -> None:
    assert format_table(Output("z", pl.DataFrame(), Schema(())), width=40) == "z: 0 rows\n(no columns)"


def test_control_characters_are_escaped() -> None:
    frame = pl.DataFrame({"s\nx": ["a\nb\tc\x1b[31m\x00\u202e\u2028", "é🙂 e\u0301"]})
    text = format_table(Output("ctl\n", frame, Schema(())), width=80)
    assert r"a\nb\tc\x1b[31m\x00\u202e\u2028" in text
    assert r"s\nx" in text and r"ctl\n: 2 rows" in text
    assert "\x1b" not in text and "\t" not in text and len(lines_of(text)) == 7
    widths = {display_width(line) for line in lines_of(text)[1:]}
    assert len(widths) == 1  # wide emoji and combining accents keep the box aligned


def test_frame_columns_missing_from_schema_and_odd_dtypes() -> None:
    frame = pl.DataFrame({"l": [[1, 2]], "d": [dt.date(2024, 1, 2)], "dur": [dt.timedelta(1)]})
    text = format_table(Output("odd", frame, Schema(())), width=80)
    assert "[1, 2]" in text and "2024-01-02" in text


cell_text = st.text(st.characters(codec="utf-8"), max_size=60)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(cell_text, min_size=3, max_size=3), max_size=5),
       st.lists(cell_text, min_size=3, max_size=3, unique=True), st.integers(0, 200))
def test_any_strings_fit(rows: list[list[str]], names: list[str], width: int) -> None:
    frame = pl.DataFrame(rows or None, schema={n: pl.String for n in names}, orient="row")
    text = format_table(Output("h", frame, Schema(())), width=width)
    assert all(display_width(line) <= max(width, 40) for line in lines_of(text))


def test_format_results() -> None:
    a = Output("a", pl.DataFrame({"x": [1]}), Schema(()))
    b = Output("b", pl.DataFrame({"y": ["z"]}), Schema(()))
    text = format_results([a, b], width=40)
    assert text == format_table(a, width=40) + "\n\n" + format_table(b, width=40)
    assert format_results([]) == ""


# ------------------------------------------------------------------------------- NDJSON and CSV


def test_ndjson_exact() -> None:
    buf = io.StringIO()
    write_ndjson([sample()], buf)
    q = ('{"p01":0.0,"p10":1.0,"p25":2.0,"p50":1000000.0,"p75":4.0,"p90":2000000.0,'
         '"p99":3500000000.0}')
    assert buf.getvalue() == (
        '{"_tableName_":"http","time_":"2026-11-24T14:31:39.123456789Z","service":"checkout",'
        f'"latency":850,"ratio":0.5,"ok":true,"lat_q":{q}}}\n'
        '{"_tableName_":"http","time_":"2026-11-24T14:31:39.123456789Z","service":"カート",'
        '"latency":1234567,"ratio":null,"ok":null,"lat_q":null}\n'
    )


def test_ndjson_values_and_several_outputs() -> None:
    frame = pl.DataFrame({
        "f": [float("inf"), -float("inf"), 1.5],
        "big": [2**62, -1, 0],
        "s": ['q"\n\\', "", None],
        "t": pl.Series([dt.datetime(2024, 1, 1, tzinfo=dt.UTC), None, None]).dt.convert_time_zone(
            "Asia/Tokyo"),
    })
    other = Output("empty", pl.DataFrame(schema={"a": pl.Int64}), Schema(()))
    buf = io.BytesIO()
    write_ndjson([Output("x", frame, Schema(())), other, Output("y", frame.head(1), Schema(()))],
                 buf)
    rows = [json.loads(line) for line in buf.getvalue().decode().splitlines()]
    assert [r["_tableName_"] for r in rows] == ["x", "x", "x", "y"]
    assert [r["f"] for r in rows[:3]] == [None, None, 1.5]
    assert rows[0]["big"] == 2**62 and isinstance(rows[0]["big"], int)
    assert rows[0]["s"] == 'q"\n\\' and rows[2]["s"] is None
    assert rows[0]["t"] == "2024-01-01T00:00:00.000000000Z" and rows[1]["t"] is None
    assert list(rows[0]) == ["_tableName_", "f", "big", "s", "t"]


def test_ndjson_replaces_a_table_name_column() -> None:
    frame = pl.DataFrame({"_tableName_": ["bogus"], "a": [1]})
    buf = io.StringIO()
    write_ndjson([Output("real", frame, Schema(()))], buf)
    assert buf.getvalue() == '{"_tableName_":"real","a":1}\n'


def test_csv_one_output() -> None:
    buf = io.StringIO()
    write_csv([sample()], buf)
    lines = buf.getvalue().splitlines()
    assert lines[0] == "time_,service,latency,ratio,ok,lat_q"
    assert lines[1].startswith("2026-11-24T14:31:39.123456789Z,checkout,850,0.5,true,\"{")
    assert '""p99"":3500000000.0}"' in lines[1]
    assert lines[2] == "2026-11-24T14:31:39.123456789Z,カート,1234567,,,"
    assert len(lines) == 3


def test_csv_several_outputs() -> None:
    a = Output("a", pl.DataFrame({"x": [1, 2]}), Schema(()))
    b = Output("b", pl.DataFrame({"y": ["z"]}), Schema(()))
    buf = io.BytesIO()
    write_csv([a, b], buf)
    assert buf.getvalue().decode() == "# a\nx\n1\n2\n\n# b\ny\nz\n\n"


# ----------------------------------------------------------------------------------------- files

SEMANTICS = {"time_": "time", "service": "service_name", "latency": "duration_ns",
             "ratio": "none", "ok": "none", "lat_q": "duration_ns_quantiles"}


def read_back(path, fmt: str) -> pl.DataFrame:
    if fmt == "parquet":
        return pl.read_parquet(path)
    if fmt == "arrow":
        return pl.read_ipc(path)
    if fmt == "csv":
        return pl.read_csv(path)
    return pl.read_ndjson(path)


@pytest.mark.parametrize(("fmt", "name"), [
    ("parquet", "out.parquet"), ("arrow", "out.arrow"), ("arrow", "out.feather"),
    ("arrow", "OUT.IPC"), ("csv", "out.csv"), ("json", "out.json"), ("json", "out.ndjson"),
    ("json", "out.jsonl"),
])
def test_write_single_file(tmp_path, fmt: str, name: str) -> None:
    out = sample()
    target = tmp_path / "nested" / name
    assert write_files([out], target, fmt) == [target]
    back = read_back(target, fmt)
    if fmt in ("parquet", "arrow"):
        assert back.equals(out.frame)  # exact, incl. ns timestamps, NaN and quantile structs
        assert read_semantics(target) == SEMANTICS
    elif fmt == "json":
        assert back["_tableName_"].to_list() == ["http", "http"]
        assert back["time_"].to_list() == ["2026-11-24T14:31:39.123456789Z"] * 2
        assert back["lat_q"][0]["p99"] == 3.5e9
    else:
        assert back["latency"].to_list() == [850, 1_234_567]
        assert back["time_"][0] == "2026-11-24T14:31:39.123456789Z"


@pytest.mark.parametrize("fmt", ["parquet", "arrow", "csv", "json"])
def test_write_directory(tmp_path, fmt: str) -> None:
    a = sample()
    b = Output("errors/by pod", pl.DataFrame({"n": [1, 2]}),
               Schema.of({"n": ct(INT, St.BYTES)}))
    c = Output("http", pl.DataFrame({"m": [3.5]}), Schema(()))
    paths = write_files([a, b, c], tmp_path / "res", fmt)
    assert [p.name for p in paths] == [f"http.{fmt}", f"errors_by_pod.{fmt}", f"http_2.{fmt}"]
    assert all(p.parent == tmp_path / "res" and p.exists() for p in paths)
    assert read_back(paths[1], fmt)["n"].to_list() == [1, 2]
    if fmt in ("parquet", "arrow"):
        assert read_back(paths[0], fmt).equals(a.frame)
        assert read_semantics(paths[0]) == SEMANTICS
        assert read_semantics(paths[1]) == {"n": "bytes"}
        assert read_semantics(paths[2]) == {"m": "none"}


def test_single_output_without_suffix_goes_to_directory(tmp_path) -> None:
    paths = write_files([sample()], tmp_path / "dir.csv", "parquet")
    assert paths == [tmp_path / "dir.csv" / "http.parquet"]


def test_arrow_file_is_ipc_with_field_metadata(tmp_path) -> None:
    (path,) = write_files([sample()], tmp_path / "a.arrow", "arrow")
    with pa.memory_map(str(path)) as source:
        table = pa.ipc.open_file(source).read_all()
    assert table.schema.field("latency").metadata == {b"pxl.semantic": b"duration_ns"}
    assert table.schema.field("time_").type == pa.timestamp("ns")
    assert table.schema.field("service").type == pa.large_string()


def test_write_files_rejects_unknown_format(tmp_path) -> None:
    with pytest.raises(ValueError, match="unknown output format"):
        write_files([sample()], tmp_path / "x", "xml")


def test_read_semantics_rejects_other_files(tmp_path) -> None:
    (path,) = write_files([sample()], tmp_path / "x.csv", "csv")
    with pytest.raises(ValueError, match="not a Parquet or Arrow"):
        read_semantics(path)


@pytest.mark.slow
def test_ndjson_million_rows_is_fast() -> None:
    import time
    n = 1_000_000
    frame = pl.DataFrame({"t": pl.int_range(n, eager=True).cast(pl.Datetime("ns")),
                          "v": pl.int_range(n, eager=True), "f": pl.int_range(n, eager=True) / 3})
    start = time.perf_counter()
    buf = io.BytesIO()
    write_ndjson([Output("big", frame, Schema(()))], buf)
    assert time.perf_counter() - start < 5
    assert buf.getvalue().count(b"\n") == n

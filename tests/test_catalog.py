"""The file/frame catalog: normalisation to pxl's types, time windows, files, metadata."""

from __future__ import annotations

import polars as pl
import pytest

import pxl
from engine.catalog import MemoryCatalog
from engine.dictionary import is_dictionary
from engine.errors import DataError
from engine.types import DataType, SemanticType

NOW = 1_795_521_600_000_000_000


def test_int_time_column_is_a_time() -> None:
    c = MemoryCatalog()
    c.add("t", pl.DataFrame({"time_": [NOW - 2, NOW - 1], "x": [1, 2]}))
    assert c.schema("t")["time_"].dtype is DataType.TIME64NS
    out = pxl.run("import px\ndf = px.DataFrame('t')\ndf.b = px.bin(df.time_, 2)\npx.display(df)",
                  catalog=c, now=NOW)["output"]
    assert out["b"].dtype == pl.Datetime("ns")


def test_unsorted_times_are_sorted_and_windows_are_exact() -> None:
    times = [NOW - 5, NOW - 1, NOW - 3, NOW - 4, NOW - 2]
    c = MemoryCatalog()
    c.add("t", pl.DataFrame({"time_": times, "x": list(range(5))}))
    got = c.scan("t", None, NOW - 4, NOW - 1).collect()
    assert got["time_"].cast(pl.Int64).to_list() == [NOW - 4, NOW - 3, NOW - 2]
    assert got["time_"].is_sorted()


def test_semantic_types_of_builtin_tables() -> None:
    c = MemoryCatalog()
    c.add("http_events", pl.DataFrame({"latency": [1], "resp_body_size": [2]}))
    schema = c.schema("http_events")
    assert schema["latency"].semantic is SemanticType.DURATION_NS
    assert schema["resp_body_size"].semantic is SemanticType.BYTES


def test_low_cardinality_strings_are_dictionary_encoded() -> None:
    c = MemoryCatalog()
    c.add("t", pl.DataFrame({"path": ["/a", "/b"] * 1000, "body": [str(i) for i in range(2000)]}))
    frame = c.frame("t")
    assert is_dictionary(frame.schema["path"]) and frame.schema["body"] == pl.String
    assert c.schema("t")["path"].dtype is DataType.STRING


def test_unsupported_columns_are_skipped_with_a_notice() -> None:
    c = MemoryCatalog()
    c.add("t", pl.DataFrame({"x": [1], "l": [[1, 2]]}))
    assert c.schema("t").names == ["x"]
    assert any("l (" in n for n in c.notices)


def test_bad_inputs_are_data_errors(tmp_path) -> None:
    c = MemoryCatalog()
    with pytest.raises(DataError, match="not a directory"):
        c.add_dir(tmp_path / "missing")
    with pytest.raises(DataError, match="no table files"):
        c.add_dir(tmp_path)
    bad = tmp_path / "t.parquet"
    bad.write_bytes(b"PAR1 not really")
    with pytest.raises(DataError, match="cannot read"):
        c.add_dir(tmp_path)
    with pytest.raises(DataError, match="table name"):
        c.add("bad name!", pl.DataFrame({"x": [1]}))


def test_every_file_format_loads(tmp_path) -> None:
    frame = pl.DataFrame({"time_": [NOW - 1, NOW], "x": [1, 2], "s": ["a", "b"]})
    frame.write_parquet(tmp_path / "p.parquet")
    frame.write_ipc(tmp_path / "a.arrow")
    frame.write_csv(tmp_path / "c.csv")
    frame.write_ndjson(tmp_path / "n.ndjson")
    c = MemoryCatalog()
    assert c.add_dir(tmp_path) == ["a", "c", "n", "p"]
    for name in ("a", "c", "n", "p"):
        got = c.frame(name)
        assert got["x"].to_list() == [1, 2]
        assert c.schema(name)["time_"].dtype is DataType.TIME64NS


def test_metadata_table_feeds_ctx() -> None:
    c = MemoryCatalog()
    c.add("upid_metadata", pl.DataFrame({"upid": ["u1"], "service": ["shop/cart"]}))
    c.add("t", pl.DataFrame({"upid": ["u1", "u2"]}))
    out = pxl.run("import px\ndf = px.DataFrame('t')\ndf.s = df.ctx['service']\npx.display(df)",
                  catalog=c, now=NOW)["output"]
    assert out["s"].to_list() == ["shop/cart", ""]

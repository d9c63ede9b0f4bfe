"""Dictionary-encoded string columns give the same answers as plain ones.

The oracle suite's random pipelines and merges run again with every string column encoded, so
the per-distinct-value evaluation, decoding and key alignment paths meet the same oracle.
"""

from __future__ import annotations

import polars as pl
import pytest
from hypothesis import given

import pxl
from engine import executor
from engine.catalog import MemoryCatalog
from engine.dictionary import is_dictionary
from tests.conftest import DEMO_NOW
from tests.test_oracle import SETTINGS, assert_same, merges, pipelines, script


def setup_module() -> None:
    # the tables here are small: make them take the per-distinct-value path all the same
    executor.PER_VALUE_MIN_ROWS, setup_module.saved = 0, executor.PER_VALUE_MIN_ROWS


def teardown_module() -> None:
    executor.PER_VALUE_MIN_ROWS = setup_module.saved


def encoded_catalog(tables: dict[str, pl.DataFrame]) -> MemoryCatalog:
    catalog = MemoryCatalog()
    for name, frame in tables.items():
        strings = [c for c, t in frame.schema.items() if t == pl.String]
        catalog.add(name, frame, dictionary=strings)
        assert all(is_dictionary(catalog.frame(name).schema[c]) for c in strings)
    return catalog


@SETTINGS
@given(pipelines())
def test_pipelines_on_dictionary_columns(case) -> None:
    df, steps = case
    source = script(steps)
    want = df
    for s in steps:
        want = s.oracle(want)
    got = pxl.run(source, catalog=encoded_catalog({"t": df}), now=DEMO_NOW)["output"]
    assert got.schema == want.schema  # outputs hold plain strings again
    assert_same(got, want, source)


@SETTINGS
@given(merges())
def test_merges_with_one_side_encoded(case) -> None:
    left, right, how, keys, suffixes, select = case
    source = ("import px\nl = px.DataFrame('l')\nr = px.DataFrame('r')\n"
              f"df = l.merge(r, how={how!r}, left_on={[lc for lc, _ in keys]!r}, "
              f"right_on={[rc for _, rc in keys]!r}, suffixes={list(suffixes)!r})\n"
              "px.display(df)\n")
    catalog = MemoryCatalog()
    catalog.add("l", left, dictionary=[c for c, t in left.schema.items() if t == pl.String])
    catalog.add("r", right)
    got = pxl.run(source, catalog=catalog, now=DEMO_NOW)["output"]
    plain = pxl.run(source, tables={"l": left, "r": right}, now=DEMO_NOW)["output"]
    assert got.sort(got.columns, nulls_last=True).equals(
        plain.sort(plain.columns, nulls_last=True)), source


@pytest.mark.parametrize("per_value_min_rows", [0, 10**9])
def test_string_functions_on_encoded_columns(per_value_min_rows, monkeypatch) -> None:
    """Per distinct value or row by row on decoded strings: the same answer."""
    monkeypatch.setattr(executor, "PER_VALUE_MIN_ROWS", per_value_min_rows)
    frame = pl.DataFrame({"path": ["/api/a", "/web/b", None, "/api/c"] * 300,
                          "n": list(range(1200))})
    src = ("import px\ndf = px.DataFrame('t')\n"
           "df = df[px.contains(df.path, '/api') and px.length(df.path) > 5]\n"
           "df.upper = px.toupper(df.path)\n"
           "px.display(df.groupby('upper').agg(n=('n', px.count)).sort_values('upper'))")
    encoded = pxl.run(src, catalog=encoded_catalog({"t": frame}), now=DEMO_NOW)["output"]
    plain = pxl.run(src, tables={"t": frame}, now=DEMO_NOW)["output"]
    assert encoded.equals(plain) and encoded["upper"].to_list() == ["/API/A", "/API/C"]

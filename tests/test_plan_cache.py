"""The plan cache (pxl/plancache.py): a script run again is not compiled again, but every run
sees its own time window, the catalog's current schemas, and the cache stays bounded."""

from __future__ import annotations

import polars as pl
import pytest

import pxl
from engine.catalog import MemoryCatalog
from engine.errors import CompileError
from engine.relations import Scan
from pxl.plancache import PLAN_CACHE, PlanCache

SEC = 1_000_000_000
MIN = 60 * SEC
T0 = 1_795_521_600_000_000_000  # the first row's time

WINDOW = """import px
df = px.DataFrame(table='events', start_time='-5m')
df = df.agg(n=('latency', px.count), total=('latency', px.sum))
px.display(df)
"""


def events(minutes: int, *, start: int = T0) -> pl.DataFrame:
    """One row a second; latency = the row's number, so sums tell windows apart."""
    n = minutes * 60
    return pl.DataFrame({
        "time_": pl.Series([start + i * SEC for i in range(n)]).cast(pl.Datetime("ns")),
        "latency": list(range(n)),
    })


def expected(frame: pl.DataFrame, start: int, end: int | None = None) -> tuple[int, int]:
    t = pl.col("time_").cast(pl.Int64)
    kept = frame.filter((t >= start) & (t < end) if end is not None else t >= start)
    return kept.height, int(kept["latency"].sum())


def answer(res: pxl.Results) -> tuple[int, int]:
    row = res["output"].row(0)
    return row[0], row[1]


@pytest.fixture(autouse=True)
def fresh_cache():
    size = PLAN_CACHE.maxsize
    PLAN_CACHE.clear()
    yield
    PLAN_CACHE.resize(size)
    PLAN_CACHE.clear()


@pytest.fixture
def catalog() -> MemoryCatalog:
    cat = MemoryCatalog()
    cat.add("events", events(20))
    return cat


def scans(plan) -> list[Scan]:
    out, stack = [], list(plan.sinks)
    while stack:
        node = stack.pop()
        out += [node] if isinstance(node, Scan) else []
        stack.extend(node.children)
    return out


# ----------------------------------------------------------------------------------------------
# Each run's own window


def test_a_cached_plan_moves_its_relative_window_to_each_runs_now(catalog):
    frame = catalog.frame("events")
    answers = []
    for now in (T0 + 10 * MIN, T0 + 12 * MIN + 7 * SEC, T0 + 11 * MIN, T0 + 10 * MIN):
        res = pxl.run(WINDOW, catalog=catalog, now=now)
        assert answer(res) == expected(frame, now - 5 * MIN)
        (scan,) = scans(res.plan)
        assert (scan.start, scan.end, scan.relative_to) == (now - 5 * MIN, None, now)
        answers.append(answer(res))
    assert PLAN_CACHE.hits == 3 and PLAN_CACHE.misses == 1 and len(PLAN_CACHE) == 1
    assert len(set(answers)) == 3  # the windows differ, and so do the answers
    assert answers[0] == answers[3]


def test_new_rows_and_a_later_now_both_show_in_the_next_run(catalog):
    now = T0 + 20 * MIN
    before = catalog.frame("events")
    first = answer(pxl.run(WINDOW, catalog=catalog, now=now))
    more = pl.concat([before, events(3, start=T0 + 20 * MIN)])
    catalog.add("events", more)  # the same columns: the cached plan still fits
    later = now + 3 * MIN
    second = answer(pxl.run(WINDOW, catalog=catalog, now=later))
    assert PLAN_CACHE.hits == 1
    assert first == expected(before, now - 5 * MIN)
    assert second == expected(more, later - 5 * MIN) != first


def test_a_window_with_both_bounds_relative_moves_whole(catalog):
    script = WINDOW.replace("start_time='-5m'", "start_time='-5m', end_time='-1m'")
    frame = catalog.frame("events")
    for now in (T0 + 10 * MIN, T0 + 15 * MIN, T0 + 17 * MIN + 500):
        res = pxl.run(script, catalog=catalog, now=now)
        assert answer(res) == expected(frame, now - 5 * MIN, now - MIN)
    assert PLAN_CACHE.hits == 2


def test_the_default_now_is_each_runs_clock(catalog, monkeypatch):
    import pxl.api

    clock = iter([T0 + 10 * MIN, T0 + 14 * MIN])
    monkeypatch.setattr(pxl.api, "now_ns", lambda: next(clock))
    frame = catalog.frame("events")
    assert answer(pxl.run(WINDOW, catalog=catalog)) == expected(frame, T0 + 5 * MIN)
    assert answer(pxl.run(WINDOW, catalog=catalog)) == expected(frame, T0 + 9 * MIN)
    assert PLAN_CACHE.hits == 1


@pytest.mark.parametrize("script", [
    # the time read as a value: a literal of the plan
    "import px\ndf = px.DataFrame(table='events')\n"
    "df = df[df.time_ >= px.now() - px.minutes(5)]\n"
    "px.display(df.agg(n=('latency', px.count), total=('latency', px.sum)))\n",
    "import px\ndf = px.DataFrame(table='events', start_time=px.now() - px.minutes(5))\n"
    "px.display(df.agg(n=('latency', px.count), total=('latency', px.sum)))\n",
    # one bound relative, one fixed
    WINDOW.replace("start_time='-5m'", f"start_time='-5m', end_time={T0 + 30 * MIN}"),
    # a relative window narrowed by a constant (time_range_pushdown): max(now - 5m, constant)
    "import px\ndf = px.DataFrame(table='events', start_time='-5m')\n"
    f"df = df[df.time_ >= {T0 + 6 * MIN}]\n"
    "px.display(df.agg(n=('latency', px.count), total=('latency', px.sum)))\n",
], ids=["px.now-filter", "px.now-window", "half-relative", "narrowed-by-constant"])
def test_a_plan_that_reads_the_time_otherwise_is_compiled_for_each_run(catalog, script):
    frame = catalog.frame("events")
    for now in (T0 + 10 * MIN, T0 + 13 * MIN):
        got = answer(pxl.run(script, catalog=catalog, now=now))
        floor = T0 + 6 * MIN if f"{T0 + 6 * MIN}]" in script else 0
        end = T0 + 30 * MIN if "end_time" in script else None
        assert got == expected(frame, max(now - 5 * MIN, floor), end)
    assert PLAN_CACHE.hits == 0 and len(PLAN_CACHE) == 0


def test_a_constant_filter_left_above_a_relative_window_stays_right(catalog):
    script = ("import px\ndf = px.DataFrame(table='events', start_time='-5m')\n"
              f"df = df[df.time_ >= px.int64_to_time({T0 + 6 * MIN})]\n"
              "px.display(df.agg(n=('latency', px.count), total=('latency', px.sum)))\n")
    frame = catalog.frame("events")
    for now in (T0 + 10 * MIN, T0 + 13 * MIN, T0 + 9 * MIN):
        got = answer(pxl.run(script, catalog=catalog, now=now))
        assert got == expected(frame, max(now - 5 * MIN, T0 + 6 * MIN))
    assert PLAN_CACHE.hits == 2


def test_table_statistics_are_read_anew_each_run(catalog):
    script = "import px\npx.display(px.GetTables())\n"
    assert pxl.run(script, catalog=catalog)["output"]["num_rows"].to_list() == [1200]
    catalog.add("events", events(21))
    assert pxl.run(script, catalog=catalog)["output"]["num_rows"].to_list() == [1260]
    assert len(PLAN_CACHE) == 0


# ----------------------------------------------------------------------------------------------
# The catalog's schemas


def test_a_changed_column_type_is_compiled_anew(catalog):
    script = "import px\ndf = px.DataFrame(table='events')\npx.display(df.head(2))\n"
    assert pxl.run(script, catalog=catalog)["output"].schema["latency"] == pl.Int64
    catalog.add("events", events(20).with_columns(pl.col("latency").cast(pl.Float64)))
    res = pxl.run(script, catalog=catalog)
    assert res["output"].schema["latency"] == pl.Float64
    assert PLAN_CACHE.hits == 0


def test_a_dropped_column_is_an_error_not_a_stale_plan(catalog):
    script = WINDOW
    pxl.run(script, catalog=catalog, now=T0 + 10 * MIN)
    catalog.add("events", events(20).drop("latency").with_columns(lat=pl.lit(1)))
    with pytest.raises(CompileError, match="latency"):
        pxl.run(script, catalog=catalog, now=T0 + 10 * MIN)


def test_a_missing_table_is_an_error_not_a_stale_plan(catalog):
    pxl.run(WINDOW, catalog=catalog, now=T0 + 10 * MIN)
    other = MemoryCatalog()
    other.add("requests", events(20))
    with pytest.raises(CompileError, match="no table 'events'"):
        pxl.run(WINDOW, catalog=other, now=T0 + 10 * MIN)


def test_another_catalog_with_the_same_schemas_shares_the_plan(catalog):
    other = MemoryCatalog()
    other.add("events", events(20, start=T0 + 100 * MIN))
    now = T0 + 110 * MIN
    pxl.run(WINDOW, catalog=catalog, now=now)
    got = answer(pxl.run(WINDOW, catalog=other, now=now))
    assert PLAN_CACHE.hits == 1
    assert got == expected(other.frame("events"), now - 5 * MIN)


def test_tables_added_or_removed_reach_a_script_that_lists_them(catalog):
    script = "import px\npx.display(px.GetSchemas())\n"
    tables = lambda cat: set(pxl.run(script, catalog=cat)["output"]["table_name"])  # noqa: E731
    assert tables(catalog) == {"events"}
    catalog.add("more", events(1).rename({"latency": "bytes"}))
    assert tables(catalog) == {"events", "more"}
    smaller = MemoryCatalog()
    smaller.add("more", events(1).rename({"latency": "bytes"}))
    assert tables(smaller) == {"more"}
    assert PLAN_CACHE.hits == 0
    assert tables(smaller) == {"more"}
    assert PLAN_CACHE.hits == 1


# ----------------------------------------------------------------------------------------------
# Keys, bounds and the off switch


def test_arguments_and_settings_are_part_of_the_plan(catalog):
    script = ("#px:set max_output_rows_per_table=3\nimport px\n"
              "df = px.DataFrame(table='events', start_time=px.arg('start', default='-5m'))\n"
              "px.display(df[['latency']])\n")
    now = T0 + 10 * MIN
    for start, first in (("-5m", 300), ("-2m", 480), ("-5m", 300)):
        res = pxl.run(script, catalog=catalog, now=now, args={"start": start})
        assert res["output"]["latency"].to_list() == [first, first + 1, first + 2]
        assert res.outputs[0].truncated
    assert PLAN_CACHE.hits == 1 and len(PLAN_CACHE) == 2


def test_the_cache_keeps_the_most_recently_used_plans_only(catalog):
    PLAN_CACHE.resize(3)
    scripts = [WINDOW.replace("-5m", f"-{m}m") for m in range(1, 6)]
    now = T0 + 10 * MIN
    for s in scripts[:3]:
        pxl.run(s, catalog=catalog, now=now)
    pxl.run(scripts[0], catalog=catalog, now=now)  # used again: now the most recent
    for s in scripts[3:]:
        pxl.run(s, catalog=catalog, now=now)
    assert len(PLAN_CACHE) == 3
    hits = PLAN_CACHE.hits
    pxl.run(scripts[0], catalog=catalog, now=now)
    assert PLAN_CACHE.hits == hits + 1
    pxl.run(scripts[1], catalog=catalog, now=now)  # pushed out
    assert PLAN_CACHE.hits == hits + 1
    assert len(PLAN_CACHE) == 3


def test_the_cache_can_be_bypassed_or_turned_off(catalog):
    now = T0 + 10 * MIN
    pxl.run(WINDOW, catalog=catalog, now=now, cache=False)
    pxl.compile(WINDOW, catalog, now=now, cache=False)
    assert len(PLAN_CACHE) == 0
    PLAN_CACHE.resize(0)
    pxl.run(WINDOW, catalog=catalog, now=now)
    pxl.run(WINDOW, catalog=catalog, now=now)
    assert len(PLAN_CACHE) == 0 and PLAN_CACHE.hits == 0
    assert pxl.plan_cache is PLAN_CACHE


def test_explain_and_compile_share_the_cache_but_not_each_others_plans(catalog):
    now = T0 + 10 * MIN
    optimized = pxl.explain(WINDOW, catalog=catalog, now=now)
    raw = pxl.explain(WINDOW, catalog=catalog, now=now, optimized=False)
    assert pxl.explain(WINDOW, catalog=catalog, now=now) == optimized
    assert pxl.explain(WINDOW, catalog=catalog, now=now, optimized=False) == raw
    assert PLAN_CACHE.hits == 2 and len(PLAN_CACHE) == 2


def test_a_private_cache_is_bounded_too():
    cache = PlanCache(1)
    cache.resize(0)
    assert cache.maxsize == 0 and len(cache) == 0

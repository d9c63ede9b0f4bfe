"""pxl against hand-written Polars (both engines), DuckDB and pandas, plus pxl's compile cost.

    python benchmarks/bench_suite.py [--rows 1000000,10000000] [--repeat 5] [--only NAME]
                                     [--out benchmarks/results/suite.md] [--no-pandas] [--no-docs]

Data: a generated http_events-like table (``datagen.http_events``; time_ sorted over one hour,
~60 upids, 12 services, 40 paths) and a process_stats-like table, built once per size with numpy.
Each query is written four times: PxL text, a Polars LazyFrame (collected with the in-memory and
the streaming engine; the faster is "best Polars"), DuckDB SQL over the same data handed over as
Arrow and registered once, and pandas. A pxl timing is a whole ``pxl.run`` (parse, compile,
optimize, execute) against a catalog loaded beforehand, its plan from pxl's plan cache after the
first run (each run with its own ``now``; the diagnostics time it with the cache bypassed too);
no timing includes data generation or loading. Every side runs once to warm up, then
``--repeat`` times, the sides interleaved so that a change of load on the machine hits all of
them; medians are reported. Before timing, each query's pxl result is checked equal to the
Polars result (rows sorted, floats with a tolerance), and the DuckDB and pandas results
likewise; a mismatch is printed loudly.

Also measured: the compile cost of a 30-line and a 300-line script (40 functions) split into
parse / compile / optimize / execute against Python's ``ast.parse`` of the same text (cold: the
parse cache emptied and the plan cache bypassed), and the time ``MemoryCatalog.scan`` takes to
produce a 5-minute window of the table.

The results are printed, written as markdown to ``--out`` and, unless ``--only`` or
``--no-docs`` is given, into ``docs/performance.md`` with the machine they were measured on.
``--only`` takes query names (comma-separated), ``compile`` and/or ``scan``.
"""

from __future__ import annotations

import argparse
import ast
import datetime as dt
import gc
import itertools
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
from polars.testing import assert_frame_equal

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

from datagen import NOW, http_events, process_stats  # noqa: E402

import pxl  # noqa: E402
from engine.catalog import MemoryCatalog  # noqa: E402
from engine.executor import execute  # noqa: E402
from engine.optimizer import optimize  # noqa: E402
from pxl.compiler import compile_module  # noqa: E402
from pxl.parser import _parse_cached, parse  # noqa: E402

DEFAULT_OUT = HERE / "results" / "suite.md"
DOCS = ROOT / "docs" / "performance.md"
WINDOW_NS = 5 * 60 * 1_000_000_000
WINDOW_START = NOW - WINDOW_NS
_WINDOW_SQL = dt.datetime.fromtimestamp(WINDOW_START / 1e9, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")

# ----------------------------------------------------------------------------------------------
# The queries


@dataclass
class Data:
    """One size of the data, in every form the sides need."""

    rows: int
    catalog: MemoryCatalog
    http: pl.DataFrame  # the generated frames (plain strings, time_ flagged sorted): the
    procs: pl.DataFrame  # hand-written sides' input; pxl reads its catalog's own copy
    duck: Any  # a duckdb connection with both tables registered as Arrow
    pd_http: Any = None
    pd_procs: Any = None


@dataclass(frozen=True)
class Query:
    name: str
    what: str
    pxl: str
    polars: Callable[[Data], pl.LazyFrame]
    sql: str
    pandas: Callable[[Data], Any]


def _lat() -> pl.Expr:
    return pl.col("latency")


def _pd_filter_groupby(d: Data):
    h = d.pd_http
    g = h[h["resp_status"] >= 500].groupby("req_path", sort=False)["latency"]
    return g.agg(errors="count", avg_latency="mean").reset_index()


def _pd_bin_quantiles(d: Data):
    import pandas as pd

    h = d.pd_http
    g = h["latency"].groupby([h["service"], h["time_"].dt.floor("s").rename("timestamp")],
                             sort=False)
    return pd.concat({"p50": g.quantile(0.5), "p99": g.quantile(0.99)}, axis=1).reset_index()


def _pd_join(d: Data):
    rss = d.pd_procs.groupby("upid", sort=False)["rss_bytes"].mean().rename("rss")
    m = d.pd_http[["upid", "service", "latency"]].merge(rss, left_on="upid", right_index=True)
    return m.groupby("service", sort=False).agg(
        requests=("latency", "count"), avg_rss=("rss", "mean"),
        avg_latency=("latency", "mean")).reset_index()


def _pd_top10(d: Data):
    return d.pd_http.nlargest(10, "latency")[
        ["time_", "service", "req_path", "resp_status", "latency"]]


def _pd_string_filter(d: Data):
    h = d.pd_http
    mask = h["req_path"].str.contains("/api/", regex=False) & (h["req_method"] == "POST")
    g = h[mask].groupby("service", sort=False)["latency"]
    return g.agg(requests="count", avg_latency="mean").reset_index()


def _pd_window(d: Data):
    import pandas as pd

    h = d.pd_http
    lat = h.loc[h["time_"] >= pd.Timestamp(WINDOW_START, unit="ns"), "latency"]
    return pd.DataFrame({"requests": [lat.count()], "avg_latency": [lat.mean()]})


QUERIES = [
    Query(
        "filter_groupby", "5xx answers per path: filter + group by, count and mean",
        """import px
df = px.DataFrame(table='http_events')
df = df[df.resp_status >= 500]
df = df.groupby('req_path').agg(errors=('latency', px.count), avg_latency=('latency', px.mean))
px.display(df)
""",
        lambda d: d.http.lazy().filter(pl.col("resp_status") >= 500).group_by("req_path").agg(
            errors=_lat().count(), avg_latency=_lat().mean()),
        """SELECT req_path, count(latency) AS errors, avg(latency) AS avg_latency
FROM http_events WHERE resp_status >= 500 GROUP BY req_path""",
        _pd_filter_groupby),
    Query(
        "bin_quantiles", "p50/p99 latency per service per second: px.bin + px.quantile",
        # 43,200 groups: lift pxl's default cap of 10,000 rows per output (as Pixie has).
        """#px:set max_output_rows_per_table=100000000
import px
df = px.DataFrame(table='http_events')
df.timestamp = px.bin(df.time_, '1s')
df = df.groupby(['service', 'timestamp']).agg(
    p50=('latency', px.quantile, 0.5),
    p99=('latency', px.quantile, 0.99),
)
px.display(df)
""",
        lambda d: d.http.lazy().group_by(
            "service", pl.col("time_").dt.truncate("1s").alias("timestamp")).agg(
            p50=_lat().quantile(0.5, interpolation="linear"),
            p99=_lat().quantile(0.99, interpolation="linear")),
        # date_trunc would go through TIMESTAMP (us), rounding some rows into the next second.
        """SELECT service, make_timestamp_ns(epoch_ns(time_) // 1000000000 * 1000000000) AS timestamp,
       quantile_cont(latency, 0.5) AS p50, quantile_cont(latency, 0.99) AS p99
FROM http_events GROUP BY ALL""",
        _pd_bin_quantiles),
    Query(
        "join", "requests and mean RSS per service: join with process_stats on upid",
        """import px
ps = px.DataFrame(table='process_stats')
ps = ps.groupby('upid').agg(rss=('rss_bytes', px.mean))
df = px.DataFrame(table='http_events')
df = df.merge(ps, how='inner', left_on='upid', right_on='upid', suffixes=['', '_ps'])
df = df.groupby('service').agg(
    requests=('latency', px.count),
    avg_rss=('rss', px.mean),
    avg_latency=('latency', px.mean),
)
px.display(df)
""",
        lambda d: d.http.lazy().join(
            d.procs.lazy().group_by("upid").agg(rss=pl.col("rss_bytes").mean()), on="upid").group_by(
            "service").agg(requests=_lat().count(), avg_rss=pl.col("rss").mean(),
                           avg_latency=_lat().mean()),
        """WITH ps AS (SELECT upid, avg(rss_bytes) AS rss FROM process_stats GROUP BY upid)
SELECT h.service, count(h.latency) AS requests, avg(ps.rss) AS avg_rss,
       avg(h.latency) AS avg_latency
FROM http_events h JOIN ps ON h.upid = ps.upid GROUP BY h.service""",
        _pd_join),
    Query(
        "top10", "the 10 slowest requests: sort descending, head 10",
        """import px
df = px.DataFrame(table='http_events')
df = df.sort_values('latency', ascending=False).head(10)
df = df[['time_', 'service', 'req_path', 'resp_status', 'latency']]
px.display(df)
""",
        lambda d: d.http.lazy().select("time_", "service", "req_path", "resp_status", "latency")
        .sort("latency", descending=True).head(10),
        """SELECT time_, service, req_path, resp_status, latency
FROM http_events ORDER BY latency DESC LIMIT 10""",
        _pd_top10),
    Query(
        "string_filter", "POSTs to /api/ paths per service: px.contains and an equality",
        """import px
df = px.DataFrame(table='http_events')
df = df[px.contains(df.req_path, '/api/') and df.req_method == 'POST']
df = df.groupby('service').agg(requests=('latency', px.count), avg_latency=('latency', px.mean))
px.display(df)
""",
        lambda d: d.http.lazy().filter(
            pl.col("req_path").str.contains("/api/", literal=True)
            & (pl.col("req_method") == "POST")).group_by("service").agg(
            requests=_lat().count(), avg_latency=_lat().mean()),
        """SELECT service, count(latency) AS requests, avg(latency) AS avg_latency
FROM http_events WHERE contains(req_path, '/api/') AND req_method = 'POST'
GROUP BY service""",
        _pd_string_filter),
    Query(
        "window_5m", "requests and mean latency in the last 5 minutes: a time window",
        """import px
df = px.DataFrame(table='http_events', start_time='-5m')
df = df.agg(requests=('latency', px.count), avg_latency=('latency', px.mean))
px.display(df)
""",
        lambda d: d.http.lazy().filter(
            pl.col("time_") >= pl.lit(WINDOW_START).cast(pl.Datetime("ns"))).select(
            requests=_lat().count(), avg_latency=_lat().mean()),
        f"""SELECT count(latency) AS requests, avg(latency) AS avg_latency
FROM http_events WHERE time_ >= TIMESTAMP_NS '{_WINDOW_SQL}'""",
        _pd_window),
]
QUERY_NAMES = [q.name for q in QUERIES]

# ----------------------------------------------------------------------------------------------
# Timing


def lower_only(plan, catalog) -> list[pl.LazyFrame] | None:
    """pxl's plan → LazyFrames, without collecting (None if the executor's internals moved)."""
    try:
        from engine.executor import lowering_for
    except ImportError:
        return None
    lowering, _ = lowering_for(plan, catalog)
    return [lowering(sink) for sink in plan.sinks]


def chosen_engine(plan, catalog) -> str:
    """The Polars engine pxl.run's engine='auto' picks for this plan ("?" if unknown)."""
    try:
        from engine.executor import choose_engine
    except ImportError:
        return "?"
    return choose_engine(plan, catalog)


def _ms(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return (time.perf_counter() - started) * 1e3


def _medians(fns: dict[str, Callable[[], object]], repeat: int,
             cap_ms: float | None = None) -> dict[str, float]:
    """Median wall ms (and, under ``NAME_cpu``, CPU ms of the whole process: all its threads) of
    each function after one warm-up run, the runs of the sides interleaved so that a change of
    load on the machine hits every side alike. A side whose warm-up took over ``cap_ms`` is
    not repeated: its warm-up time is reported (and listed under ``"_single"``)."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    cpus: dict[str, list[float]] = {k: [] for k in fns}
    single = []
    for k, fn in fns.items():
        cpu, started = time.process_time(), time.perf_counter()
        fn()
        if cap_ms is not None and (time.perf_counter() - started) * 1e3 > cap_ms:
            times[k].append((time.perf_counter() - started) * 1e3)
            cpus[k].append((time.process_time() - cpu) * 1e3)
            single.append(k)
    for _ in range(repeat):
        for k, fn in fns.items():
            if k in single:
                continue
            gc.collect()
            cpu, started = time.process_time(), time.perf_counter()
            fn()
            times[k].append((time.perf_counter() - started) * 1e3)
            cpus[k].append((time.process_time() - cpu) * 1e3)
    out: dict[str, Any] = {k: statistics.median(ts) for k, ts in times.items()}
    out.update({f"{k}_cpu": statistics.median(ts) for k, ts in cpus.items()})
    out["_single"] = single
    return out


def _normalise(frame: pl.DataFrame, names: list[str]) -> pl.DataFrame:
    frame = frame.select(names)
    casts = []
    for name, dtype in frame.schema.items():
        if dtype.is_integer():
            casts.append(pl.col(name).cast(pl.Int64))
        elif isinstance(dtype, pl.Datetime):
            casts.append(pl.col(name).dt.replace_time_zone(None).cast(pl.Datetime("ns")))
        elif dtype.is_float():
            casts.append(pl.col(name).cast(pl.Float64))
        else:
            casts.append(pl.col(name).cast(pl.String))
    return frame.with_columns(casts)


def _same(got: pl.DataFrame, want: pl.DataFrame) -> str | None:
    """None if equal as sets of rows (floats to 1e-6 relative), else what differs."""
    if sorted(got.columns) != sorted(want.columns):
        return f"columns {got.columns} != {want.columns}"
    names = want.columns
    try:
        assert_frame_equal(_normalise(got, names), _normalise(want, names),
                           check_row_order=False, check_dtypes=False, rel_tol=1e-6)
    except AssertionError as exc:
        return " ".join(str(exc).split())[:300]
    return None


def _check(q: Query, d: Data, pxl_frame: pl.DataFrame, engines: dict[str, pl.DataFrame],
           duck: pl.DataFrame | None, pandas_frame: pl.DataFrame | None) -> list[str]:
    """Compare every side's result with Polars in-memory's; returns the mismatches."""
    want = engines["in-memory"]
    problems = []
    others = {"pxl": pxl_frame, "Polars streaming": engines["streaming"]}
    if duck is not None:
        others["DuckDB"] = duck
    if pandas_frame is not None:
        others["pandas"] = pandas_frame
    for side, got in others.items():
        diff = _same(got, want)
        if diff is not None:
            problems.append(f"{side}: {diff}")
    return problems


# ----------------------------------------------------------------------------------------------
# Data


def load(rows: int, with_pandas: bool) -> Data:
    import duckdb

    started = time.perf_counter()
    http = http_events(rows).with_columns(pl.col("time_").set_sorted())
    procs = process_stats().with_columns(pl.col("time_").set_sorted())
    catalog = MemoryCatalog()
    catalog.add("http_events", http)
    catalog.add("process_stats", procs)
    con = duckdb.connect()
    con.register("http_events", http.to_arrow())
    con.register("process_stats", procs.to_arrow())
    d = Data(rows, catalog, http, procs, con)
    if with_pandas:
        d.pd_http, d.pd_procs = http.to_pandas(), procs.to_pandas()
    print(f"# data: {rows:,} http_events rows, {procs.height} process_stats rows, "
          f"{http.estimated_size() / 1e6:,.0f} MB in Polars; built in "
          f"{time.perf_counter() - started:.1f} s", flush=True)
    print(f"# pxl's catalog stores http_events as: {storage(catalog, http)}", flush=True)
    return d


def storage(catalog: MemoryCatalog, http: pl.DataFrame) -> str:
    """How pxl's catalog holds the columns it does not hold as generated."""
    stored = catalog.frame("http_events").schema
    by_kind: dict[str, list[str]] = {}
    for c, t in stored.items():
        if c in http.schema and t != http.schema[c]:
            by_kind.setdefault(type(t).__name__, []).append(c)
    if not by_kind:
        return "as generated (plain strings)"
    return "; ".join(f"{', '.join(cs)} as {kind}" for kind, cs in by_kind.items())


def run_queries(d: Data, queries: list[Query], repeat: int, with_pandas: bool) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for q in queries:
        ticks = itertools.count()

        def run_pxl(q=q, ticks=ticks):
            # Each run has its own now, 1 ns after the last, as a dashboard's runs do: repeated
            # runs take the plan from the plan cache with their relative windows moved.
            return pxl.run(q.pxl, catalog=d.catalog, now=NOW + next(ticks))

        plan = pxl.compile(q.pxl, d.catalog, now=NOW, cache=False)
        sides: dict[str, Callable[[], object]] = {
            "pxl": run_pxl,
            "polars_mem": lambda q=q: q.polars(d).collect(engine="in-memory"),
            "polars_stream": lambda q=q: q.polars(d).collect(engine="streaming"),
            "duckdb": lambda q=q: d.duck.sql(q.sql).to_arrow_table(),
        }
        if with_pandas:
            sides["pandas"] = lambda q=q: q.pandas(d)
        diagnostics: dict[str, Callable[[], object]] = {
            # The compile part of pxl.run, pxl's plan → LazyFrames, and pxl's own plan executed
            # with the engine pxl.run uses ("auto") and with each engine.
            "pxl_nocache": lambda q=q: pxl.run(q.pxl, catalog=d.catalog, now=NOW, cache=False),
            "pxl_compile": lambda q=q: pxl.compile(q.pxl, d.catalog, now=NOW, cache=False),
            "pxl_lower": lambda plan=plan: lower_only(plan, d.catalog),
            "pxl_plan_auto": lambda plan=plan: execute(plan, d.catalog, engine="auto"),
            "pxl_plan_mem": lambda plan=plan: execute(plan, d.catalog, engine="in-memory"),
            "pxl_plan_stream": lambda plan=plan: execute(plan, d.catalog, engine="streaming"),
        }

        # Check the results once, before timing (the cache's plan, then a new one).
        res = pxl.run(q.pxl, catalog=d.catalog, now=NOW)
        got = res["output"]
        uncached = pxl.run(q.pxl, catalog=d.catalog, now=NOW, cache=False)["output"]
        engines = {e: q.polars(d).collect(engine=e) for e in ("in-memory", "streaming")}
        duck = pl.from_arrow(d.duck.sql(q.sql).to_arrow_table())
        pdf = pl.from_pandas(q.pandas(d)) if with_pandas else None
        problems = _check(q, d, got, engines, duck, pdf)  # type: ignore[arg-type]
        diff = _same(got, uncached)
        if diff is not None:
            problems.append(f"pxl with the plan cache bypassed: {diff}")
        for p in problems:
            print(f"!!! MISMATCH in {q.name} at {d.rows:,} rows — {p}", flush=True)

        med = _medians(sides, repeat)
        # Fewer runs for the diagnostics; a pathological one (seconds) runs once.
        diag = _medians(diagnostics, min(repeat, 3), cap_ms=3000.0)
        med["_single"] = diag.pop("_single")
        med.update(diag)
        med["best_polars"] = min(med["polars_mem"], med["polars_stream"])
        med["best_polars_cpu"] = min(med["polars_mem_cpu"], med["polars_stream_cpu"])
        med["best_polars_engine"] = ("in-memory" if med["polars_mem"] <= med["polars_stream"]
                                     else "streaming")
        med["auto_engine"] = chosen_engine(plan, d.catalog)
        med["problems"] = problems
        med["out_rows"] = got.height
        out[q.name] = med
        print(f"  {q.name:<15} pxl {med['pxl']:8.1f} ms | Polars mem {med['polars_mem']:8.1f} "
              f"stream {med['polars_stream']:8.1f} | DuckDB {med['duckdb']:8.1f} | pandas "
              f"{med.get('pandas', float('nan')):8.1f} | pxl/Polars "
              f"{med['pxl'] / med['best_polars']:5.2f} pxl/DuckDB {med['pxl'] / med['duckdb']:5.2f}"
              + ("  MISMATCH" if problems else ""), flush=True)
    return out


def time_window_scan(d: Data, repeat: int) -> dict[str, float]:
    """ms for MemoryCatalog.scan to produce the 5-minute window (no collect)."""
    cat = d.catalog
    n = max(200, repeat * 40)
    res = {}
    for label, cols in (("all columns", None), ("one column", ["latency"])):
        cat.scan("http_events", cols, WINDOW_START, None)
        ts = [_ms(lambda cols=cols: cat.scan("http_events", cols, WINDOW_START, None))
              for _ in range(n)]
        res[label] = statistics.median(ts)
    return res


# ----------------------------------------------------------------------------------------------
# Compile cost


SCRIPT_30 = """\
# Which endpoints of each service fail or slow down? Error rate and latency per service and
# path over the last 15 minutes, with the memory of the processes that served them.
import px

window = '-15m'
slow_ms = 200

df = px.DataFrame(table='http_events', start_time=window)
df = df[df.trace_role == 2]
df = df[px.contains(df.req_path, '/api/')]
df.latency_ms = df.latency / 1000.0 / 1000.0
df.failure = px.select(df.resp_status >= 500, 1, 0)
df.slow = px.select(df.latency_ms > slow_ms, 1, 0)

per_path = df.groupby(['service', 'req_path']).agg(
    requests=('latency', px.count),
    errors=('failure', px.sum),
    slow=('slow', px.sum),
    p50=('latency_ms', px.quantile, 0.5),
    p99=('latency_ms', px.quantile, 0.99),
)
per_path.error_rate = per_path.errors / per_path.requests
per_path = per_path.sort_values(['error_rate', 'p99'], ascending=False)
px.display(per_path.head(20), name='worst_paths')

procs = px.DataFrame(table='process_stats', start_time=window)
procs = procs.groupby('upid').agg(rss=('rss_bytes', px.mean))
by_proc = df.groupby(['upid', 'service']).agg(requests=('latency', px.count))
by_proc = by_proc.merge(procs, how='left', left_on='upid', right_on='upid', suffixes=['', '_p'])
px.display(by_proc.drop('upid_p'), name='processes')
"""


def script_300() -> str:
    """A ~300-line script: 40 small functions of four kinds, all called at the end."""
    head = [
        "# A long dashboard script: forty small helpers, each called once below.",
        "# Mirrors how real PxL scripts grow: filters, derived columns, per-row flags and",
        "# constants wrapped in functions with annotated parameters.",
        "import px",
        "",
        "t0 = '-1h'",
        "",
    ]
    funcs: list[str] = []
    calls: list[str] = ["df = px.DataFrame(table='http_events', start_time=t0)"]
    for i in range(40):
        kind = i % 4
        if kind == 0:
            funcs += [f"def keep_{i}(df: px.DataFrame, floor: int = {i}):",
                      f"    '''Rows whose latency is at least {i} ns.'''",
                      "    df = df[df.latency >= floor]",
                      "    df = df[df.resp_status >= 0]",
                      "    return df", ""]
            calls.append(f"df = keep_{i}(df)")
        elif kind == 1:
            funcs += [f"def add_{i}(df: px.DataFrame, scale: float = {i}.5):",
                      f"    # derived column {i}",
                      f"    df.c{i} = df.latency * scale + df.resp_status",
                      f"    df.d{i} = df.c{i} / 1000.0",
                      "    return df", ""]
            calls.append(f"df = add_{i}(df)")
        elif kind == 2:
            funcs += [f"def flag_{i}(df: px.DataFrame, code: int = {400 + i}):",
                      f"    '''1 when the status is at least {400 + i}.'''",
                      "    big = df.resp_status >= code",
                      "    flag = px.select(big, 1, 0)",
                      "    return flag", ""]
            calls.append(f"df.f{i} = flag_{i}(df)")
        else:
            funcs += [f"def limit_{i}(base: int = {i}, factor: int = 1000):",
                      f"    # a constant: {i} us in ns",
                      "    ns = base * factor",
                      "    ns = ns + 0",
                      "    return ns", ""]
            calls.append(f"df = df[df.latency >= limit_{i}()]")
    tail = [
        "",
        "df.timestamp = px.bin(df.time_, '10s')",
        "out = df.groupby(['service', 'timestamp']).agg(",
        "    requests=('latency', px.count),",
        "    errors=('f2', px.sum),",
        "    total=('c1', px.sum),",
        "    p99=('latency', px.quantile, 0.99),",
        ")",
        "out = out.sort_values('timestamp')",
        "px.display(out, name='summary')",
    ]
    lines = head + funcs + calls + tail
    while len(lines) < 300:
        lines.insert(len(head) - 1, "# " + "-" * 60)
    return "\n".join(lines) + "\n"


def time_compile(repeat: int) -> dict[str, dict]:
    small = MemoryCatalog()
    small.add("http_events", http_events(2000))
    small.add("process_stats", process_stats())
    one = MemoryCatalog()
    one.add("http_events", http_events(1))
    n = max(30, repeat * 10)
    out = {}
    for label, text, cat in (("30-line script, 2,000-row table", SCRIPT_30, small),
                             ("300-line script, 40 functions, one-row table", script_300(), one)):
        def stages(text=text, cat=cat) -> dict[str, float]:
            t = {}
            started = time.perf_counter()
            module = parse(text)
            t["parse"] = time.perf_counter()
            plan = compile_module(module, cat, now=NOW, filename="<script>")
            t["compile"] = time.perf_counter()
            plan = optimize(plan)
            t["optimize"] = time.perf_counter()
            lower_only(plan, cat)
            t["lowering"] = time.perf_counter()
            execute(plan, cat)
            t["execute"] = time.perf_counter()
            prev, res = started, {}
            for k, v in t.items():
                res[k] = (v - prev) * 1e3
                prev = v
            return res

        stages()
        pxl.run(text, catalog=cat, now=NOW)
        split: dict[str, list[float]] = {k: [] for k in ("parse", "compile", "optimize", "lowering",
                                                          "execute")}
        totals, warm, cached, asts = [], [], [], []
        for i in range(n):
            # cold: the parse cache is emptied and the plan cache bypassed, as for a script
            # seen for the first time
            _parse_cached.cache_clear()
            for k, v in stages().items():
                split[k].append(v)
            _parse_cached.cache_clear()
            totals.append(_ms(lambda text=text, cat=cat: pxl.run(text, catalog=cat, now=NOW,
                                                                 cache=False)))
            warm.append(_ms(lambda text=text, cat=cat: pxl.run(text, catalog=cat, now=NOW,
                                                               cache=False)))
            # a dashboard's next run: the plan cache's plan, its windows moved to a new now
            cached.append(_ms(lambda text=text, cat=cat, i=i: pxl.run(text, catalog=cat,
                                                                      now=NOW + 1 + i)))
            asts.append(_ms(lambda text=text: ast.parse(text)))
        res = {k: statistics.median(v) for k, v in split.items()}
        res["total"] = statistics.median(totals)
        res["warm"] = statistics.median(warm)
        res["cached"] = statistics.median(cached)
        res["ast"] = statistics.median(asts)
        res["lines"] = text.count("\n")
        res["cold"] = _cold_run(text, label.startswith("30"))
        out[label] = res
        print(f"  {label:<45} pxl.run {res['total']:6.2f} ms (parse {res['parse']:.2f}, compile "
              f"{res['compile']:.2f}, optimize {res['optimize']:.2f}, execute "
              f"{res['execute']:.2f}); ast.parse {res['ast']:.2f} ms", flush=True)
    return out


_COLD = r"""
import json, sys, time
t0 = time.perf_counter()
sys.path.insert(0, {root!r}); sys.path.insert(0, {here!r})
import pxl
from datagen import NOW, http_events, process_stats
from engine.catalog import MemoryCatalog
t1 = time.perf_counter()
cat = MemoryCatalog()
cat.add('http_events', http_events({rows}))
cat.add('process_stats', process_stats())
text = sys.stdin.read()
t2 = time.perf_counter()
pxl.run(text, catalog=cat, now=NOW)
t3 = time.perf_counter()
print(json.dumps({{"import": (t1 - t0) * 1e3, "first_run": (t3 - t2) * 1e3}}))
"""


def _cold_run(text: str, small: bool) -> dict[str, float] | None:
    """import time and first pxl.run in a fresh interpreter (grammar cache on disk, if any)."""
    code = _COLD.format(root=str(ROOT), here=str(HERE), rows=2000 if small else 1)
    try:
        done = subprocess.run([sys.executable, "-c", code], input=text, capture_output=True,
                              text=True, timeout=120, check=True)
        return json.loads(done.stdout.strip().splitlines()[-1])
    except (subprocess.SubprocessError, ValueError, IndexError) as exc:
        print(f"  (fresh-process run failed: {exc})")
        return None


# ----------------------------------------------------------------------------------------------
# Report


def machine() -> dict[str, str]:
    import duckdb
    import numpy
    try:
        import pandas
        pandas_version = pandas.__version__
    except ImportError:
        pandas_version = "not installed"
    cpu, mem = "unknown", "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": str(usable),
        "cpu": cpu,
        "memory": mem,
        "kernel": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "polars": pl.__version__,
        "duckdb": duckdb.__version__,
        "pandas": pandas_version,
        "numpy": numpy.__version__,
        "pxl": _git_state(),
        "load average (1 min) at start": f"{os.getloadavg()[0]:.2f}",
    }


def _git_state() -> str:
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True,
                             capture_output=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=ROOT, text=True, capture_output=True, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"git {rev}" + (" + uncommitted changes" if dirty else "")


def _f(x: float | None, digits: int = 1) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return f"{x:,.{digits}f}"


def _geomean(xs: list[float]) -> float:
    return math.exp(sum(math.log(x) for x in xs) / len(xs))


@dataclass
class Report:
    args: argparse.Namespace
    machine: dict[str, str]
    queries: dict[int, dict[str, dict]] = field(default_factory=dict)
    scans: dict[int, dict[str, float]] = field(default_factory=dict)
    storage: dict[int, str] = field(default_factory=dict)
    compile: dict[str, dict] | None = None

    def query_table(self, rows: int) -> list[str]:
        res = self.queries[rows]
        pandas = any("pandas" in r for r in res.values())
        lines = [
            "| query | pxl | Polars in-memory | Polars streaming | DuckDB | "
            + ("pandas | " if pandas else "") + "pxl / best Polars | pxl / DuckDB | "
            "CPU time: pxl / best Polars | CPU time: pxl / DuckDB | check |",
            "|---|--:|--:|--:|--:|" + ("--:|" if pandas else "") + "--:|--:|--:|--:|---|",
        ]
        for name, r in res.items():
            mem, stream = _f(r["polars_mem"]), _f(r["polars_stream"])
            if r["best_polars_engine"] == "in-memory":
                mem = f"**{mem}**"
            else:
                stream = f"**{stream}**"
            lines.append(
                f"| {name} | {_f(r['pxl'])} | {mem} | {stream} | {_f(r['duckdb'])} | "
                + (f"{_f(r.get('pandas'))} | " if pandas else "")
                + f"{r['pxl'] / r['best_polars']:.2f} | {r['pxl'] / r['duckdb']:.2f} | "
                + f"{r['pxl_cpu'] / r['best_polars_cpu']:.2f} | {r['pxl_cpu'] / r['duckdb_cpu']:.2f} | "
                + ("**MISMATCH**" if r["problems"] else "ok") + " |")
        if len(res) > 1:
            g = {k: _geomean([r[k] for r in res.values()])
                 for k in ("pxl", "polars_mem", "polars_stream", "best_polars", "duckdb",
                           "pxl_cpu", "best_polars_cpu", "duckdb_cpu")}
            gp = _geomean([r["pandas"] for r in res.values()]) if pandas else None
            lines.append(
                f"| *geometric mean* | {_f(g['pxl'])} | {_f(g['polars_mem'])} | "
                f"{_f(g['polars_stream'])} | {_f(g['duckdb'])} | "
                + (f"{_f(gp)} | " if pandas else "")
                + f"{g['pxl'] / g['best_polars']:.2f} | {g['pxl'] / g['duckdb']:.2f} | "
                + f"{g['pxl_cpu'] / g['best_polars_cpu']:.2f} | "
                + f"{g['pxl_cpu'] / g['duckdb_cpu']:.2f} | |")
        return lines

    def diag_table(self, rows: int) -> list[str]:
        lines = [
            "| query | pxl.run | pxl.run, plan cache bypassed | pxl.compile (not cached) | "
            "lowering (plan → LazyFrames) | execute, auto "
            "(engine it picks) | execute, in-memory | execute, streaming | best hand Polars |",
            "|---|--:|--:|--:|--:|--:|--:|--:|--:|",
        ]
        for name, r in self.queries[rows].items():
            def d(k: str, digits: int = 1, r=r) -> str:
                return _f(r[k], digits) + ("\\*" if k in r["_single"] else "")

            lines.append(
                f"| {name} | {_f(r['pxl'])} | {d('pxl_nocache')} | {d('pxl_compile', 2)} | "
                f"{d('pxl_lower', 2)} | {d('pxl_plan_auto')} ({r['auto_engine']}) | "
                f"{d('pxl_plan_mem')} | "
                f"{d('pxl_plan_stream')} | {_f(r['best_polars'])} ({r['best_polars_engine']}) |")
        if any(r["_single"] for r in self.queries[rows].values()):
            lines += ["", "\\* one run: its warm-up alone took over 3 s."]
        return lines

    def compile_table(self) -> list[str]:
        assert self.compile is not None
        lines = [
            "| script | lines | pxl.run (cold) | pxl.run (parse cached) | pxl.run (plan cached) | "
            "parse | compile | optimize | execute | of which lowering | ast.parse | "
            "pxl parse / ast.parse | fresh process: import, first run |",
            "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
        ]
        for label, r in self.compile.items():
            cold = r.get("cold")
            cold_s = (f"{_f(cold['import'], 0)} ms, {_f(cold['first_run'], 1)} ms"
                      if cold else "–")
            lines.append(
                f"| {label} | {r['lines']} | {_f(r['total'], 2)} | {_f(r['warm'], 2)} | "
                f"{_f(r['cached'], 2)} | {_f(r['parse'], 2)} | "
                f"{_f(r['compile'], 2)} | {_f(r['optimize'], 2)} | {_f(r['execute'], 2)} | "
                f"{_f(r['lowering'], 2)} | {_f(r['ast'], 2)} | {r['parse'] / r['ast']:.1f}× | {cold_s} |")
        return lines

    def scan_table(self) -> list[str]:
        lines = ["| rows | window rows | scan, all columns | scan, one column |",
                 "|--:|--:|--:|--:|"]
        for rows, r in self.scans.items():
            lines.append(f"| {rows:,} | {r['window_rows']:,} | {_f(r['all columns'], 3)} ms | "
                         f"{_f(r['one column'], 3)} ms |")
        return lines

    # --- targets
    def targets(self) -> list[tuple[str, str, str]]:
        """(target, measured, verdict) for each of the issue's targets."""
        out: list[tuple[str, str, str]] = []
        sizes = sorted(self.queries)
        big = [s for s in sizes if s >= 5_000_000]
        at = big or sizes[-1:]
        note = "" if big else f" (5M+ not run; at {sizes[-1]:,} rows)" if sizes else ""

        def verdict(ok: bool) -> str:
            return ("PASS" if ok else "FAIL") + (" *(indicative)*" if note else "")

        if sizes:
            worst = max(((r["pxl"] / r["best_polars"], q, s) for s in at
                         for q, r in self.queries[s].items()))
            out.append(("pxl ≤ 1.10 × best hand-written Polars on every query at 5M+ rows",
                        f"worst {worst[0]:.2f}× ({worst[1]}, {worst[2]:,} rows){note}",
                        verdict(worst[0] <= 1.10)))
            s = sizes[-1]
            res = self.queries[s]
            if len(res) > 1:
                ratio = _geomean([r["pxl"] for r in res.values()]) / _geomean(
                    [r["duckdb"] for r in res.values()])
                out.append(("pxl faster than DuckDB on the suite's geometric mean",
                            f"pxl/DuckDB {ratio:.2f} at {s:,} rows"
                            + ("" if len(res) == len(QUERIES) else " (subset of queries)"),
                            verdict(ratio < 1.0) if big else ("PASS" if ratio < 1 else "FAIL")))
            if "string_filter" in res:
                r = res["string_filter"]
                speed = r["duckdb"] / r["pxl"]
                out.append(("string-filter query ≥ 10× faster than DuckDB",
                            f"{speed:.2f}× faster at {s:,} rows", "PASS" if speed >= 10 else "FAIL"))
            if "bin_quantiles" in res:
                r = res["bin_quantiles"]
                out.append(("per-service quantile query no slower than DuckDB",
                            f"pxl {_f(r['pxl'])} ms vs DuckDB {_f(r['duckdb'])} ms at {s:,} rows",
                            "PASS" if r["pxl"] <= r["duckdb"] else "FAIL"))
        if self.compile:
            r30, r300 = list(self.compile.values())
            out.append(("30-line script parsed+compiled+run over a small table ≤ 10 ms",
                        f"{_f(r30['total'], 2)} ms", "PASS" if r30["total"] <= 10 else "FAIL"))
            out.append(("300-line script with 40 functions over a one-row table ≤ 30 ms",
                        f"{_f(r300['total'], 2)} ms", "PASS" if r300["total"] <= 30 else "FAIL"))
        if self.scans:
            s = max(self.scans)
            r = self.scans[s]
            worst = max(r["all columns"], r["one column"])
            out.append(("5-minute window over a 10M-row table ≤ 1 ms to produce the scan",
                        f"{_f(worst, 3)} ms at {s:,} rows"
                        + ("" if s >= 10_000_000 else " (10M not run)"),
                        ("PASS" if worst <= 1 else "FAIL")
                        + ("" if s >= 10_000_000 else " *(indicative)*")))
        return out

    def diagnosis(self) -> list[str]:
        """Where pxl's time goes, read off the diagnostic columns: pxl.run ≈ compile + execute
        (auto); execute = lowering + Polars; the gap to the best hand-written Polars splits into
        compile, the engine pxl picks, and the plan pxl hands Polars."""
        lines = []
        for rows, res in self.queries.items():
            for name, r in res.items():
                if r["pxl"] <= 1.10 * r["best_polars"]:
                    continue
                plan_best = min(r["pxl_plan_mem"], r["pxl_plan_stream"])
                plan_engine = "in-memory" if r["pxl_plan_mem"] <= r["pxl_plan_stream"] else "streaming"
                parts = [f"compile {_f(r['pxl_compile'], 2)} ms, lowering "
                         f"{_f(r['pxl_lower'], 2)} ms"]
                if r["auto_engine"] != plan_engine and r["pxl_plan_auto"] > 1.10 * plan_best:
                    parts.append(f"engine choice: pxl's plan takes {_f(r['pxl_plan_auto'])} ms on "
                                 f"{r['auto_engine']} (auto), {_f(plan_best)} ms on {plan_engine}")
                if plan_best > 1.10 * r["best_polars"]:
                    parts.append(f"the plan itself: {_f(plan_best)} ms at best vs "
                                 f"{_f(r['best_polars'])} ms hand-written")
                lines.append(f"- **{name}** at {rows:,} rows: pxl {r['pxl'] / r['best_polars']:.2f}× "
                             f"best Polars (+{_f(r['pxl'] - r['best_polars'])} ms): "
                             + "; ".join(parts) + ".")
        return lines or ["- pxl is within 10% of the best hand-written Polars on every query run."]

    def markdown(self) -> str:
        m = self.machine
        out = ["# pxl benchmark suite — results", "",
               f"Command: `python benchmarks/bench_suite.py {' '.join(sys.argv[1:])}`  ",
               f"Median of {self.args.repeat} runs after one warm-up, sides interleaved; ms.", "",
               "| machine | |", "|---|---|"]
        out += [f"| {k} | {v} |" for k, v in m.items()]
        out.append("")
        for rows in self.queries:
            out += [f"## http_events at {rows:,} rows", ""]
            if rows in self.storage:
                out += [f"pxl's catalog stores: {self.storage[rows]}; the other sides read the "
                        "generated frames (plain strings).", ""]
            out += self.query_table(rows) + [""]
            out += ["Where pxl's time goes (ms):", ""] + self.diag_table(rows) + [""]
        if self.scans:
            out += ["## Producing a 5-minute window scan (`MemoryCatalog.scan`, no collect)", ""]
            out += self.scan_table() + [""]
        if self.compile:
            out += ["## Compile cost (median ms)", ""] + self.compile_table() + [""]
        t = self.targets()
        if t:
            out += ["## Targets", "", "| target | measured | verdict |", "|---|---|---|"]
            out += [f"| {a} | {b} | {c} |" for a, b, c in t] + [""]
        if self.queries:
            out += ["## Where pxl loses time (read off the tables above)", ""] + self.diagnosis()
            out.append("")
        return "\n".join(out)


DOC_HEAD = """\
# Performance

How fast pxl runs PxL compared with the same queries written by hand in Polars, in DuckDB SQL and
in pandas, and what compiling a script costs. The numbers below are regenerated by

```sh
/work/venv/bin/pip install -e '.[bench]'      # duckdb and pandas
python benchmarks/bench_suite.py --rows 1000000,10000000 --repeat 5
```

which also writes them to `benchmarks/results/suite.md` (`--out` elsewhere; `--only NAME` runs one
query, `compile` or `scan` and leaves this page alone; `--no-pandas` skips pandas).

## What is measured

- **Data**: a generated http_events-like table (`benchmarks/datagen.py`): `time_` sorted over one
  hour, ~60 upids, 12 services (a plain `service` column), 40 request paths, 5 methods, status
  codes, lognormal latencies; and a process_stats-like table with a few rows per upid.
- **Queries**: filter + group by (`filter_groupby`); `px.bin(time_, '1s')` + p50/p99 per service
  (`bin_quantiles`, 12 × 3,600 groups); join with process_stats + group by service
  (`join`); 10 slowest requests (`top10`); `px.contains(req_path, '/api/')` and an equality
  (`string_filter`); count and mean over the last 5 minutes (`window_5m`).
- **Sides**: *pxl* is a whole `pxl.run` (parse, compile, optimize, execute) against a loaded
  catalog, which stores low-cardinality strings dictionary-encoded (Categorical). Its timed
  runs of a query take the plan from pxl's plan cache (compiled once before timing), each run
  with its own `now`, 1 ns after the last, so that relative windows are moved as for a
  dashboard re-running its script; *Where pxl's time goes* gives `pxl.run` with the cache
  bypassed too. *Polars* is the
  same query written as a LazyFrame over the generated frames (plain strings, `time_` flagged
  sorted), collected with the in-memory and the streaming engine (the faster, in bold, is "best
  Polars"); *DuckDB* runs SQL over the same frames handed over as Arrow tables (registered once,
  results fetched as Arrow); *pandas* works on `to_pandas()` copies. No timing includes making
  or loading data. `bin_quantiles` (43,200 rows out) lifts pxl's default cap of 10,000 output
  rows with `#px:set max_output_rows_per_table=...`.
- **Times**: wall-clock medians; the CPU-time ratios (all threads of the process) are less
  sensitive to other load on the machine. *Where pxl's time goes* times pxl's pieces alone:
  `pxl.compile`, lowering the plan to LazyFrames, and the plan executed with the engine pxl
  picks (`auto`) and with each engine (3 runs).
- **Checks**: before timing, every side's result is compared with Polars' (rows sorted, floats
  to 1e-6); a mismatch is printed and marked in the table.
- **Compile cost**: a realistic 30-line script and a 300-line one with 40 functions, split into
  parse / compile / optimize / execute, against `ast.parse` of the same text; plus `import pxl`
  and the first run in a fresh interpreter. *Cold* runs empty the parse cache and bypass the
  plan cache (`cache=False`), *parse cached* bypasses the plan cache, *plan cached* is a
  dashboard's next run (the cache's plan, its window moved to a new `now`); the targets are
  read off the cold runs.

**Caveat**: the machine is shared and noisy. Absolute milliseconds move from run to run; the
ratios within one run (where all sides are interleaved) are what count.

"""


ANALYSIS_START, ANALYSIS_END = "<!-- analysis: kept when this page is regenerated -->", \
    "<!-- /analysis -->"


def write_docs(report: Report) -> None:
    """Rewrite docs/performance.md, keeping its hand-written analysis block if it has one."""
    body = report.markdown().split("\n", 2)[2]  # drop the results file's own title
    analysis = ""
    if DOCS.exists():
        old = DOCS.read_text(encoding="utf-8")
        if ANALYSIS_START in old and ANALYSIS_END in old:
            start = old.index(ANALYSIS_START)
            analysis = old[start:old.index(ANALYSIS_END, start) + len(ANALYSIS_END)] + "\n\n"
    body = body.lstrip().replace("\n## ", "\n### ")
    DOCS.write_text(DOC_HEAD + analysis + "## Results\n\n" + body + "\n", encoding="utf-8")


# ----------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", default="1000000,10000000",
                    help="comma-separated http_events sizes (default 1000000,10000000)")
    ap.add_argument("--repeat", type=int, default=5, help="timed runs per side (default 5)")
    ap.add_argument("--only", action="append", default=[],
                    help=f"run only these: {', '.join(QUERY_NAMES)}, compile, scan")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="markdown results file")
    ap.add_argument("--no-pandas", action="store_true", help="skip the pandas side")
    ap.add_argument("--no-docs", action="store_true", help="do not rewrite docs/performance.md")
    args = ap.parse_args(argv)

    only = {n.strip() for o in args.only for n in o.split(",") if n.strip()}
    unknown = only - set(QUERY_NAMES) - {"compile", "scan"}
    if unknown:
        ap.error(f"unknown --only names: {', '.join(sorted(unknown))}")
    queries = [q for q in QUERIES if not only or q.name in only]
    sizes = [int(float(s)) for s in args.rows.split(",") if s.strip()]
    with_pandas = not args.no_pandas
    if with_pandas:
        try:
            import pandas  # noqa: F401
        except ImportError:
            print("# pandas is not installed; skipping it (pip install -e '.[bench]')")
            with_pandas = False

    report = Report(args, machine())
    print("# " + ", ".join(f"{k}: {v}" for k, v in report.machine.items()), flush=True)
    if not only or "compile" in only:
        print("# compile cost", flush=True)
        report.compile = time_compile(args.repeat)
    for rows in sizes:
        if not queries and "scan" not in only:
            break
        d = load(rows, with_pandas and bool(queries))
        report.storage[rows] = storage(d.catalog, d.http)
        if queries:
            report.queries[rows] = run_queries(d, queries, args.repeat, with_pandas)
        if not only or "scan" in only:
            report.scans[rows] = time_window_scan(d, args.repeat)
            report.scans[rows]["window_rows"] = d.catalog.scan(
                "http_events", ["latency"], WINDOW_START, None).collect().height
            print(f"  window scan: {report.scans[rows]['all columns']:.3f} ms (all columns), "
                  f"{report.scans[rows]['one column']:.3f} ms (one column)", flush=True)
        del d
        gc.collect()
    report.machine["load average (1 min) at end"] = f"{os.getloadavg()[0]:.2f}"

    text = report.markdown()
    print()
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(f"# written to {args.out}")
    if not only and not args.no_docs:
        write_docs(report)
        print(f"# and to {DOCS}")
    mismatches = sum(bool(r["problems"]) for res in report.queries.values() for r in res.values())
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())

"""The table store against its targets: ingest, small chunks, memory budget, window scans.

    python benchmarks/bench_store.py                  # everything, ~2-3 minutes
    python benchmarks/bench_store.py --seconds 10     # a shorter sustained-ingest run
    python benchmarks/bench_store.py --only ingest window

ingest   http_events rows (the built-in 22-column schema, from pxl.demo) in 1k-row batches built
         beforehand as Polars frames and as Arrow RecordBatches; one thread, no background
         thread. "appends" times the append calls alone (what a collector waits for; the target
         is >= 2M rows/s); "end to end" also normalises, encodes, compacts and evicts
         (background=False, so all on the same core); "end to end + thread" lets the background
         thread do that work beside the appends (wall time until all is flushed).
chunks   the same queries over a 1M-row table made of 1,000 appended 1k-row chunks, before and
         after compaction, against the same rows in one chunk (target <= 1.2x after).
memory   --seconds of 1k-row batches at 10x the budget rate (10 budgets flow through in the
         run) with the background thread on; the table's bytes are sampled between appends
         from the first eviction on (target: always within 10 % of the budget).
window   a 10M-row time-sorted table (benchmarks/datagen.py, 1 hour) appended in 64k-row
         batches; time to produce the LazyFrame of a random 5-minute window (target <= 1 ms).

Timings are medians of interleaved runs; the load average is printed, rerun on a busy machine.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import pxl  # noqa: E402
from engine.store import Limits, TableStore  # noqa: E402
from engine.types import DataType  # noqa: E402

NOW = 1_795_521_600_000_000_000
S = 1_000_000_000
QUERIES = {
    "errors by path": """
import px
df = px.DataFrame(table='http_events', start_time='-1h')
df = df[df.resp_status >= 400]
df = df.groupby(['req_path']).agg(n=('latency', px.count), lat=('latency', px.mean))
px.display(df)
""",
    "slowest 10": """
import px
df = px.DataFrame(table='http_events', start_time='-1h')
df = df.sort_values('latency', ascending=False).head(10)
px.display(df[['time_', 'upid', 'req_path', 'latency']])
""",
    "5-minute window count": """
import px
df = px.DataFrame(table='http_events', start_time='-20m', end_time='-15m')
df = df.agg(n=('latency', px.count))
px.display(df)
""",
}


def median_ms(fns: list[Callable[[], object]], repeat: int) -> list[float]:
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeat):
        for fn, ts in zip(fns, times, strict=True):
            t = time.perf_counter()
            fn()
            ts.append((time.perf_counter() - t) * 1e3)
    return [statistics.median(ts) for ts in times]


def verdict(ok: bool) -> str:
    return "meets target" if ok else "MISSES target"


# --- ingest ----------------------------------------------------------------------------------

def http_batches(n_batches: int, rows: int = 1000) -> tuple[list[pl.DataFrame], list[pa.RecordBatch]]:
    """``n_batches`` 1k-row http_events batches with increasing times. The non-time columns are
    shared between batches (built once), so building 4M rows costs little memory."""
    from pxl.demo import demo_tables

    http = demo_tables(NOW)["http_events"]
    base = [http.slice(i, rows) for i in range(0, http.height - rows + 1, rows)]
    span = int(http.get_column("time_").cast(pl.Int64).max()) + 1 - int(
        http.get_column("time_").cast(pl.Int64).min())
    # Batches own their buffers, as a collector's would (not slices of one big table's).
    arrow_base = [_own(b.to_arrow().to_batches()[0]) for b in base]
    frames, batches = [], []
    for i in range(n_batches):
        k, lap = i % len(base), i // len(base)
        shifted = base[k].get_column("time_") + pl.duration(nanoseconds=lap * span)
        time_col = base[k].select(shifted).to_series()
        frames.append(base[k].with_columns(time_col))
        batches.append(pa.RecordBatch.from_arrays(
            [time_col.to_arrow()] + arrow_base[k].columns[1:], schema=arrow_base[k].schema))
    return frames, batches


def _own(batch: pa.RecordBatch) -> pa.RecordBatch:
    return batch.take(pa.array(np.arange(batch.num_rows)))


def bench_ingest(args: argparse.Namespace) -> None:
    n = args.ingest_rows // 1000
    frames, batches = http_batches(n)
    print(f"\n## ingest: {n * 1000:,} http_events rows (22 columns) in 1k-row batches, one thread")
    warm = TableStore(background=False)
    warm.append("http_events", batches[0])
    warm.append("http_events", frames[0])
    hold = Limits(flush_rows=1 << 62, flush_bytes=1 << 62, flush_seconds=1e12)
    rows = []
    for kind, data in (("polars", frames), ("arrow", batches)):
        for mode in ("appends", "end to end", "end to end + thread"):
            gc.collect()
            if mode == "appends":  # nothing but appends: no flush, hence no eviction either
                store = TableStore(background=False, budget_bytes=1 << 50, limits=hold)
            else:
                store = TableStore(background=mode != "end to end",
                                   budget_bytes=args.ingest_budget)
            t = time.perf_counter()
            for b in data:
                store.append("http_events", b)
            if mode != "appends":
                store.flush()
            secs = time.perf_counter() - t
            store.close()
            rate = n * 1000 / secs / 1e6
            rows.append((kind, mode, rate, secs / n * 1e6))
            del store
    print("| batches | timed | M rows/s | us per batch | vs 2M rows/s |")
    print("|---|---|---:|---:|---|")
    for kind, mode, rate, per in rows:
        note = verdict(rate >= 2.0) if mode == "appends" else "(information)"
        print(f"| {kind} | {mode} | {rate:.2f} | {per:.0f} | {rate / 2.0:.1f}x, {note} |")


# --- small chunks ----------------------------------------------------------------------------

def datagen_store(rows: int, batch_rows: int, limits: Limits) -> TableStore:
    from datagen import http_events

    frame = http_events(rows)
    store = TableStore(background=False, builtin=False, limits=limits)
    store.create_table("http_events", {c: _plan_type(t) for c, t in frame.schema.items()},
                       dictionary=["upid", "service", "req_path", "req_method"])
    for i in range(0, rows, batch_rows):
        store.append("http_events", frame.slice(i, batch_rows))
    return store


def _plan_type(dtype: pl.DataType) -> DataType:
    return {pl.Datetime("ns"): DataType.TIME64NS, pl.String: DataType.STRING,
            pl.Int64: DataType.INT64}[dtype]


def bench_chunks(args: argparse.Namespace) -> None:
    print("\n## a query over 1,000 appended 1k-row chunks vs one chunk (1M rows)")
    small = datagen_store(1_000_000, 1000, Limits(chunk_rows=1, flush_rows=1000))
    one = datagen_store(1_000_000, 1_000_000, Limits(chunk_rows=1, flush_rows=1))
    one.flush()
    n_small = len(small._table("http_events").state.chunks)
    runs = {name: [lambda s=store, q=q: pxl.run(q, catalog=s, now=NOW) for store in (small, one)]
            for name, q in QUERIES.items()}
    before = {name: median_ms(fns, args.repeat) for name, fns in runs.items()}
    small.limits.chunk_rows = 65_536
    t = time.perf_counter()
    small.compact()
    compact_ms = (time.perf_counter() - t) * 1e3
    n_after = len(small._table("http_events").state.chunks)
    after = {name: median_ms(fns, args.repeat) for name, fns in runs.items()}
    print(f"chunks: {n_small} before, {n_after} after compaction ({compact_ms:.0f} ms to compact)")
    print("| query | one chunk ms | 1,000 chunks ms | ratio | compacted ms | ratio | target <= 1.2x |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for name in QUERIES:
        (b_small, b_one), (a_small, a_one) = before[name], after[name]
        print(f"| {name} | {b_one:.1f} | {b_small:.1f} | {b_small / b_one:.2f}x | {a_small:.1f} | "
              f"{a_small / a_one:.2f}x | {verdict(a_small / a_one <= 1.2)} |")


# --- memory ----------------------------------------------------------------------------------

def bench_memory(args: argparse.Namespace) -> None:
    budget, seconds = args.budget_mb << 20, args.seconds
    frames, _ = http_batches(2000)
    per_batch = frames[0].estimated_size()
    rate = 10 * budget / seconds  # bytes/s: ten budgets flow through in the run
    every = per_batch / rate
    print(f"\n## memory: {seconds:.0f} s at 10x the budget rate (budget {args.budget_mb} MiB, "
          f"{rate / 2**20:.1f} MiB/s, {1000 / every:,.0f} rows/s), background thread on")
    store = TableStore(builtin=False, budget_bytes=budget)
    store.create_table("http_events")
    table = store._table("http_events")
    rss0 = _rss()
    samples: list[float] = []
    span = int(frames[-1].get_column("time_").cast(pl.Int64).max()) - int(
        frames[0].get_column("time_").cast(pl.Int64).min()) + S
    started = time.perf_counter()
    i = 0
    while (now := time.perf_counter() - started) < seconds:
        lap, k = divmod(i, len(frames))
        batch = frames[k]
        if lap:
            batch = batch.with_columns(pl.col("time_") + pl.duration(nanoseconds=lap * span))
        store.append("http_events", batch)
        i += 1
        if table.evicted_rows:
            samples.append(table.state.nbytes / table.budget)
        wait = i * every - now
        if wait > 0:
            time.sleep(wait)
    store.close()
    s = np.array(samples)
    inside = float(np.mean((s >= 0.9) & (s <= 1.1))) * 100 if len(s) else 0.0
    print(f"appended {i * 1000:,} rows ({i * per_batch / budget:.1f} budgets), evicted "
          f"{table.evicted_rows:,}; {len(s):,} samples after the first eviction")
    if len(s):
        print(f"stored/budget: min {s.min():.3f}, mean {s.mean():.3f}, max {s.max():.3f}; "
              f"{inside:.1f} % of samples within 10 % -> {verdict(s.min() >= 0.9 and s.max() <= 1.1)}")
    print(f"process RSS grew {(_rss() - rss0) / 2**20:.0f} MiB (allocator caches included)")


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


# --- window ----------------------------------------------------------------------------------

def bench_window(args: argparse.Namespace) -> None:
    rows = args.window_rows
    print(f"\n## window: a 5-minute window of a {rows:,}-row table (1 hour, 64k-row batches)")
    store = datagen_store(rows, 65_536, Limits())
    store.flush()
    table = store._table("http_events")
    state = table.state
    rng = np.random.default_rng(1)
    hour = 3600 * S
    starts = NOW - hour + rng.integers(0, hour - 300 * S, 200)
    def scan(start: int) -> pl.LazyFrame:
        return store.scan("http_events", None, int(start), int(start) + 300 * S)
    for s0 in starts[:10]:
        scan(s0)
    times = []
    for s0 in starts:
        t = time.perf_counter()
        scan(s0)
        times.append((time.perf_counter() - t) * 1e3)
    med, p99 = statistics.median(times), float(np.percentile(times, 99))
    full = store.scan("http_events").collect()
    naive = median_ms([lambda: full.lazy().filter(pl.col("time_").is_between(
        pl.lit(int(starts[0])).cast(pl.Datetime("ns")),
        pl.lit(int(starts[0]) + 300 * S).cast(pl.Datetime("ns")), closed="left")).collect()], 5)[0]
    got = scan(starts[0]).collect().height
    collect_ms = median_ms([lambda: scan(starts[0]).select(pl.len()).collect()], 20)[0]
    print(f"{len(state.chunks)} chunks; window of ~{got:,} rows")
    print(f"produce the scan: median {med:.3f} ms, p99 {p99:.3f} ms -> {verdict(med <= 1.0)} "
          f"(<= 1 ms)")
    print(f"count its rows: {collect_ms:.2f} ms; a filter over the whole frame instead: "
          f"{naive:.1f} ms ({naive / med:.0f}x the scan)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", choices=["ingest", "chunks", "memory", "window"])
    parser.add_argument("--ingest-rows", type=int, default=2_000_000)
    parser.add_argument("--ingest-budget", type=int, default=512 << 20,
                        help="byte budget of the end-to-end ingest runs")
    parser.add_argument("--seconds", type=float, default=60.0, help="sustained-ingest length")
    parser.add_argument("--budget-mb", type=int, default=64, help="budget of the memory run")
    parser.add_argument("--window-rows", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    parts = args.only or ["ingest", "chunks", "memory", "window"]
    print(f"# table store benchmark: {os.cpu_count()} CPUs, polars {pl.__version__}, load "
          f"average {' / '.join(f'{x:.2f}' for x in os.getloadavg())}, "
          f"{threading.active_count()} thread(s)")
    for part in parts:
        globals()[f"bench_{part}"](args)
        gc.collect()
    print(f"\nload average at the end: {' / '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()

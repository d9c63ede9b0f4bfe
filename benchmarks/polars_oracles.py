"""Each example of ``examples/*.pxl`` written by hand in Polars, independently of pxl.

One function per example (keyed by the script's stem in :data:`ORACLES`), taking the raw tables
(name → polars frame), the process metadata (one row per upid, as ``pxl.demo.demo_metadata``
gives it) and ``now`` in ns since the epoch; it returns output name → DataFrame, in display order.

They serve twice: ``tests/test_examples.py`` compares pxl's outputs with them, and
``benchmarks/bench_examples.py`` times pxl against them. Nothing here imports pxl or engine:
``df.ctx[...]`` is a left join on ``upid`` with the metadata ('' for an unknown process), a
``start_time='-10m'`` is a filter on ``time_``, and groupby keeps first-appearance order as pxl
documents.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import polars as pl

__all__ = ["ORACLES", "Tables", "Outputs"]

Tables = Mapping[str, pl.DataFrame | pl.LazyFrame]
Outputs = dict[str, pl.DataFrame]
Oracle = Callable[[Tables, pl.DataFrame, int], Outputs]

MIN = 60 * 1_000_000_000
ORACLES: dict[str, Oracle] = {}


def _oracle(fn: Oracle) -> Oracle:
    ORACLES[fn.__name__] = fn
    return fn


def _since(tables: Tables, table: str, now: int, minutes: int) -> pl.LazyFrame:
    """Rows of ``table`` with time_ >= now - minutes."""
    start = pl.lit(now - minutes * MIN, dtype=pl.Int64).cast(pl.Datetime("ns"))
    return tables[table].lazy().filter(pl.col("time_") >= start)


def _ctx(lf: pl.LazyFrame, meta: pl.DataFrame, *keys: str) -> pl.LazyFrame:
    """Add metadata columns (service, pod, …) by upid, keeping the row order."""
    right = meta.lazy().select("upid", *keys)
    return lf.join(right, on="upid", how="left", maintain_order="left").with_columns(
        pl.col(k).fill_null("") for k in keys)


def _count(col: str) -> pl.Expr:
    return pl.col(col).count().cast(pl.Int64)


def _mean(col: str) -> pl.Expr:
    return pl.col(col).cast(pl.Float64).mean()


def _quantile(col: str, q: float) -> pl.Expr:
    return pl.col(col).cast(pl.Float64).quantile(q, interpolation="linear")


def _collect(**frames: pl.LazyFrame) -> Outputs:
    return dict(zip(frames, pl.collect_all(list(frames.values())), strict=True))


@_oracle
def errors_by_path(tables: Tables, meta: pl.DataFrame, now: int) -> Outputs:
    df = (_since(tables, "http_events", now, 5)
          .filter(pl.col("resp_status") >= 500)
          .group_by("req_path", maintain_order=True)
          .agg(count=_count("req_path"), avg_latency=_mean("latency")))
    return _collect(output=df)


@_oracle
def slowest_requests(tables: Tables, meta: pl.DataFrame, now: int) -> Outputs:
    requests = _since(tables, "http_events", now, 10).filter(pl.col("trace_role") == 2)
    procs = (_since(tables, "process_stats", now, 10)
             .group_by("upid").agg(rss=pl.col("rss_bytes").max(),
                                   threads=pl.col("num_threads").max()))
    df = (requests.join(procs, on="upid", how="inner", maintain_order="left")
          .sort("latency", descending=True, maintain_order=True)
          .head(10))
    df = _ctx(df, meta, "service", "pod").select(
        "time_", "service", "pod", "req_method", "req_path", "resp_status", "latency", "rss",
        "threads", "req_body", "resp_body")
    return _collect(slowest_requests=df)


@_oracle
def latency_over_time(tables: Tables, meta: pl.DataFrame, now: int) -> Outputs:
    df = (_since(tables, "http_events", now, 60)
          .filter(pl.col("trace_role") == 2)
          .group_by(pl.col("time_").dt.truncate("1m").alias("timestamp"), maintain_order=True)
          .agg(requests=_count("latency"), p99=_quantile("latency", 0.99),
               p50=_quantile("latency", 0.50), p99_pluck=_quantile("latency", 0.99))
          .sort("timestamp", maintain_order=True))
    return _collect(latency=df)


@_oracle
def service_filter(tables: Tables, meta: pl.DataFrame, now: int) -> Outputs:
    df = (_ctx(_since(tables, "http_events", now, 60), meta, "service")
          .filter(pl.col("service") == "shop/checkout", pl.col("trace_role") == 2)
          .group_by("req_method", "req_path", "resp_status", maintain_order=True)
          .agg(requests=_count("latency"), avg_latency=_mean("latency"),
               max_latency=pl.col("latency").max())
          .sort("req_path", "resp_status", maintain_order=True))
    return _collect(checkout=df)


@_oracle
def conn_audit(tables: Tables, meta: pl.DataFrame, now: int) -> Outputs:
    def delta(col: str) -> pl.Expr:
        return pl.col(col).max() - pl.col(col).min()

    per_conn = (_since(tables, "conn_stats", now, 30)
                .group_by("upid", "remote_addr", "remote_port", "trace_role", "ssl",
                          maintain_order=True)
                .agg(bytes_sent=delta("bytes_sent"), bytes_recv=delta("bytes_recv"),
                     conns_opened=delta("conn_open"), active=pl.col("conn_active").max()))
    df = (_ctx(per_conn, meta, "pod")
          .group_by("pod", "remote_addr", "trace_role", "ssl", maintain_order=True)
          .agg(pl.col("bytes_sent", "bytes_recv", "conns_opened").sum(),
               max_active=pl.col("active").max())
          .with_columns(total_bytes=pl.col("bytes_sent") + pl.col("bytes_recv"))
          .sort("total_bytes", descending=True, maintain_order=True))
    return _collect(connections=df)


@_oracle
def cpu_profile(tables: Tables, meta: pl.DataFrame, now: int) -> Outputs:
    df = _ctx(_since(tables, "stack_traces", now, 30), meta, "service")
    stacks = df.group_by("service", "stack_trace", maintain_order=True).agg(
        samples=pl.col("count").sum())
    totals = df.group_by("service", maintain_order=True).agg(
        service_samples=pl.col("count").sum())
    out = (stacks.join(totals, on="service", how="inner", maintain_order="left")
           .with_columns(percent=(100 * pl.col("samples")).cast(pl.Float64)
                         / pl.col("service_samples").cast(pl.Float64))
           .sort("samples", descending=True, maintain_order=True)
           .head(20)
           .select("service", "samples", "percent", "stack_trace"))
    return _collect(hot_stacks=out)


@_oracle
def mysql_by_service(tables: Tables, meta: pl.DataFrame, now: int) -> Outputs:
    df = (_ctx(_since(tables, "mysql_events", now, 60), meta, "service")
          .group_by("service", maintain_order=True)
          .agg(queries=_count("latency"),
               errors=(pl.col("resp_status") == 3).cast(pl.Int64).sum(),
               avg_latency=_mean("latency"), p99_latency=_quantile("latency", 0.99),
               max_latency=pl.col("latency").max())
          .with_columns(error_rate=(100 * pl.col("errors")) / pl.col("queries"))
          .sort("queries", descending=True, maintain_order=True))
    return _collect(mysql_by_service=df)


@_oracle
def service_errors(tables: Tables, meta: pl.DataFrame, now: int) -> Outputs:
    df = (_ctx(_since(tables, "http_events", now, 30).filter(pl.col("trace_role") == 2),
               meta, "service")
          .group_by("service", pl.col("time_").dt.truncate("1m").alias("timestamp"),
                    maintain_order=True)
          .agg(requests=pl.len().cast(pl.Int64),
               errors=(pl.col("resp_status") >= 500).cast(pl.Int64).sum())
          .with_columns(error_rate=pl.col("errors") / pl.col("requests"))
          .sort("service", "timestamp", maintain_order=True))
    return _collect(service_errors=df)


@_oracle
def pod_resources(tables: Tables, meta: pl.DataFrame, now: int) -> Outputs:
    def delta(col: str) -> pl.Expr:
        return pl.col(col).max() - pl.col(col).min()

    per_proc = (_since(tables, "process_stats", now, 30)
                .group_by("upid", maintain_order=True)
                .agg(cpu_ns=delta("cpu_utime_ns") + delta("cpu_ktime_ns"),
                     rss=pl.col("rss_bytes").max(), threads=pl.col("num_threads").max()))
    df = (_ctx(per_proc, meta, "pod", "service")
          .group_by("service", "pod", maintain_order=True)
          .agg(processes=_count("upid"), cpu_time=pl.col("cpu_ns").sum(),
               peak_rss=pl.col("rss").max(), peak_threads=pl.col("threads").max())
          .with_columns(cpu_cores=pl.col("cpu_time") / (30 * MIN))
          .sort("peak_rss", descending=True, maintain_order=True))
    return _collect(pod_resources=df)


@_oracle
def db_calls(tables: Tables, meta: pl.DataFrame, now: int) -> Outputs:
    def stats(table: str, database: str) -> pl.LazyFrame:
        return (_ctx(_since(tables, table, now, 60), meta, "service")
                .group_by("service", maintain_order=True)
                .agg(calls=_count("latency"), avg_latency=_mean("latency"),
                     p99_latency=_quantile("latency", 0.99))
                .select(pl.lit(database).alias("database"), pl.all()))

    df = pl.concat([stats("mysql_events", "mysql"), stats("pgsql_events", "postgres"),
                    stats("redis_events", "redis")])
    return _collect(database_calls=df)

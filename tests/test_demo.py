"""The demo dataset: schemas, determinism, consistency across tables, the planted incident."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from engine.tables import TABLES
from pxl.demo import FORMATS, demo_metadata, demo_tables, write_demo

NOW = 1_750_000_000_000_000_000  # 2025-06-15 15:06:40 UTC
MIN = 60 * 1_000_000_000
WINDOW = 60 * MIN
BURST = (NOW - 22 * MIN, NOW - 17 * MIN)

META_SCHEMA = {
    "upid": pl.String(), "pid": pl.Int64(), "start_time": pl.Datetime("ns"),
    **{c: pl.String() for c in ("cmdline", "hostname", "container_name", "container_id", "pod",
                                "service", "namespace", "node", "deployment", "replicaset")},
}
PROCESS_COUNTERS = ("major_faults", "minor_faults", "cpu_utime_ns", "cpu_ktime_ns",
                    "rchar_bytes", "wchar_bytes", "read_bytes", "write_bytes")
CONN_KEY = ("upid", "remote_addr", "remote_port", "trace_role", "protocol")
CONN_COUNTERS = ("conn_open", "conn_close", "bytes_sent", "bytes_recv")


@pytest.fixture(scope="module")
def tables() -> dict[str, pl.DataFrame]:
    return demo_tables(NOW)


@pytest.fixture(scope="module")
def meta() -> pl.DataFrame:
    return demo_metadata(NOW)


def _ns(column: str) -> pl.Expr:
    return pl.col(column).cast(pl.Int64)


def _with_service(frame: pl.DataFrame, meta: pl.DataFrame) -> pl.DataFrame:
    return frame.join(meta.select("upid", "service", "pod"), on="upid", how="left")


# --- shape ------------------------------------------------------------------------------------


def test_every_table_matches_its_schema(tables: dict[str, pl.DataFrame]) -> None:
    assert set(tables) == set(TABLES)
    for name, frame in tables.items():
        assert frame.schema == pl.Schema(TABLES[name].schema.polars()), name
        assert frame.null_count().sum_horizontal().item() == 0, name


def test_event_tables_have_rows(tables: dict[str, pl.DataFrame]) -> None:
    for name, frame in tables.items():
        if name != "proc_exit_events":
            assert frame.height > 1_000, name
    assert 50_000 <= tables["http_events"].height <= 70_000


def test_metadata_schema_and_names(meta: pl.DataFrame) -> None:
    assert meta.schema == pl.Schema(META_SCHEMA)
    assert meta["upid"].is_unique().all()
    assert meta["upid"].str.contains(r"^[0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{16}$").all()
    assert (meta["pod"].str.split("/").list.first() == meta["namespace"]).all()
    assert (meta["service"].str.split("/").list.first() == meta["namespace"]).all()
    services = set(meta["service"])
    for svc in ("frontend", "cart", "checkout", "payment", "catalog", "users", "mysql",
                "postgres", "redis"):
        assert f"shop/{svc}" in services
    assert "kube-system/coredns" in services
    assert meta["node"].n_unique() == 2
    assert meta.group_by("service").agg(pl.col("pod").n_unique())["pod"].is_between(1, 3).all()


def test_metadata_is_deterministic_and_independent_of_the_window() -> None:
    assert demo_metadata(NOW).equals(demo_metadata(NOW, seed=7))
    assert not demo_metadata(NOW, seed=8).equals(demo_metadata(NOW))


# --- determinism and time ---------------------------------------------------------------------


def test_same_seed_and_now_give_identical_frames(tables: dict[str, pl.DataFrame]) -> None:
    again = demo_tables(NOW, seed=7)
    for name, frame in tables.items():
        assert frame.equals(again[name]), name


def test_another_seed_gives_other_data(tables: dict[str, pl.DataFrame]) -> None:
    other = demo_tables(NOW, seed=8)
    assert not other["http_events"].equals(tables["http_events"])


@pytest.mark.parametrize("minutes", [60, 15])
def test_time_sorted_and_inside_the_window(minutes: int) -> None:
    frames = demo_tables(NOW, minutes=minutes)
    for name, frame in frames.items():
        t = frame["time_"].cast(pl.Int64)
        assert t.is_sorted(), name
        if frame.height:
            assert t.min() >= NOW - minutes * MIN and t.max() <= NOW, name


def test_default_now_is_the_wall_clock() -> None:
    before = time.time_ns()
    frames = demo_tables(minutes=1, scale=0.05)
    t = frames["process_stats"]["time_"].cast(pl.Int64)
    assert before - 70 * 1_000_000_000 <= t.min() and t.max() <= time.time_ns()


def test_scale_multiplies_rows(tables: dict[str, pl.DataFrame]) -> None:
    half = demo_tables(NOW, scale=0.5)
    ratio = half["http_events"].height / tables["http_events"].height
    assert 0.45 < ratio < 0.55
    empty = demo_tables(NOW, scale=0.0)
    assert empty["http_events"].height == 0
    assert empty["http_events"].schema == tables["http_events"].schema


def test_generation_is_fast() -> None:
    start = time.perf_counter()
    demo_tables(NOW + 1)
    assert time.perf_counter() - start < 3.0  # ~0.5 s on a laptop; generous for slow CI


# --- consistency across tables ----------------------------------------------------------------


def test_upids_exist_in_metadata(tables: dict[str, pl.DataFrame], meta: pl.DataFrame) -> None:
    known = set(meta["upid"])
    for name, frame in tables.items():
        assert set(frame["upid"]) <= known, name
    assert set(tables["process_stats"]["upid"]) == known


def test_traffic_comes_from_the_right_services(tables: dict[str, pl.DataFrame],
                                               meta: pl.DataFrame) -> None:
    def services(table: str) -> set[str]:
        return set(_with_service(tables[table], meta)["service"])

    assert services("mysql_events") == {"shop/checkout", "shop/payment"}
    assert services("pgsql_events") == {"shop/catalog", "shop/users"}
    assert services("redis_events") == {"shop/frontend", "shop/catalog", "shop/cart"}
    http = _with_service(tables["http_events"], meta)
    servers = set(http.filter(pl.col("trace_role") == 2)["service"])
    assert {"shop/frontend", "shop/cart", "shop/checkout", "shop/payment", "shop/catalog",
            "shop/users"} == servers


def test_addresses_are_consistent(tables: dict[str, pl.DataFrame]) -> None:
    local = pl.concat([tables[t].select("upid", "local_addr")
                       for t in ("http_events", "mysql_events", "pgsql_events", "redis_events",
                                 "dns_events")])
    per_upid = local.group_by("upid").agg(pl.col("local_addr").n_unique())
    assert (per_upid["local_addr"] == 1).all()
    pod_ips = set(local["local_addr"])
    http = tables["http_events"]
    inbound = http.filter(pl.col("trace_role") == 2)["remote_addr"]
    assert all(ip in pod_ips or ip.startswith("10.128.0.") for ip in inbound.unique())
    for table, port in (("mysql_events", 3306), ("pgsql_events", 5432), ("redis_events", 6379),
                        ("dns_events", 53)):
        frame = tables[table]
        assert (frame["remote_port"] == port).all(), table
        assert (frame["trace_role"] == 1).all(), table
    assert tables["mysql_events"]["remote_addr"].n_unique() == 1


def test_process_counters_are_monotonic(tables: dict[str, pl.DataFrame]) -> None:
    stats = tables["process_stats"]
    assert stats.select("upid", "time_").is_unique().all()
    steps = stats.select(
        [pl.col(c).diff().over("upid", order_by="time_").fill_null(0).min().alias(c)
         for c in PROCESS_COUNTERS])
    assert all(v >= 0 for v in steps.row(0)), steps
    assert (stats["rss_bytes"] > 0).all() and (stats["num_threads"] > 0).all()


def test_conn_counters_are_monotonic_and_consistent(tables: dict[str, pl.DataFrame]) -> None:
    conns = tables["conn_stats"]
    assert conns.select(*CONN_KEY, "time_").is_unique().all()
    steps = conns.select(
        [pl.col(c).diff().over(CONN_KEY, order_by="time_").fill_null(0).min().alias(c)
         for c in CONN_COUNTERS])
    assert all(v >= 0 for v in steps.row(0)), steps
    assert (conns["conn_active"] == conns["conn_open"] - conns["conn_close"]).all()
    assert (conns["conn_active"] >= 0).all()
    assert set(conns["protocol"]) == {1, 3, 5, 6, 7}
    assert conns.filter(pl.col("ssl"))["remote_port"].eq(443).all()


def test_periodic_tables_tick_every_ten_seconds(tables: dict[str, pl.DataFrame]) -> None:
    for name in ("process_stats", "conn_stats", "stack_traces"):
        t = tables[name]["time_"].cast(pl.Int64)
        assert (t % 10_000_000_000 == 0).all(), name
    assert tables["process_stats"]["time_"].n_unique() in (360, 361)


def test_stack_traces(tables: dict[str, pl.DataFrame]) -> None:
    stacks = tables["stack_traces"]
    assert (stacks["count"] > 0).all()
    assert stacks["stack_trace"].str.contains(";").all()
    assert stacks.select("time_", "upid", "stack_trace_id").is_unique().all()
    ids = stacks.group_by("stack_trace_id").agg(pl.col("stack_trace").n_unique())
    assert (ids["stack_trace"] == 1).all()


# --- the planted incident ---------------------------------------------------------------------


def test_payment_5xx_burst(tables: dict[str, pl.DataFrame], meta: pl.DataFrame) -> None:
    http = _with_service(tables["http_events"], meta).filter(
        (pl.col("service") == "shop/payment") & (pl.col("trace_role") == 2)
        & (pl.col("req_path") == "/api/payment/charge"))
    in_burst = _ns("time_").is_between(*BURST, closed="left")
    rates = http.group_by(in_burst.alias("burst")).agg(
        errors=(pl.col("resp_status") >= 500).sum(),
        rate=(pl.col("resp_status") >= 500).mean())
    burst = rates.filter(pl.col("burst")).row(0, named=True)
    calm = rates.filter(~pl.col("burst")).row(0, named=True)
    assert burst["errors"] >= 30
    assert burst["rate"] > 0.4 and calm["rate"] < 0.02
    codes = http.filter(in_burst & (pl.col("resp_status") >= 500))["resp_status"]
    assert codes.mode().item() == 503


def test_checkout_is_the_slow_endpoint(tables: dict[str, pl.DataFrame]) -> None:
    http = tables["http_events"].filter(~_ns("time_").is_between(*BURST))
    p99 = http.group_by("req_path").agg(pl.col("latency").quantile(0.99))
    slowest = p99.sort("latency", descending=True)
    assert slowest["req_path"][0] in ("/checkout", "/api/checkout")
    checkout = p99.filter(pl.col("req_path") == "/api/checkout")["latency"].item()
    assert checkout > 1e9  # p99 > 1 s
    orders = tables["mysql_events"].filter(pl.col("req_body").str.contains("FROM orders"))
    assert orders["latency"].median() > 50 * tables["mysql_events"]["latency"].median()


def test_the_payment_pod_restarts(tables: dict[str, pl.DataFrame], meta: pl.DataFrame) -> None:
    exits = _with_service(tables["proc_exit_events"], meta)
    assert exits.height == 1 and exits["signal"].item() == 9
    assert exits["service"].item() == "shop/payment"
    died = exits["upid"].item()
    pod_upids = meta.filter(pl.col("pod") == exits["pod"].item())["upid"]
    assert pod_upids.len() == 2
    stats = tables["process_stats"]
    last = stats.filter(pl.col("upid") == died)["time_"].max()
    assert last <= exits["time_"].item()
    reborn = next(u for u in pod_upids if u != died)
    assert stats.filter(pl.col("upid") == reborn)["time_"].min() > exits["time_"].item()


# --- HTTP details -----------------------------------------------------------------------------


def test_http_columns_look_real(tables: dict[str, pl.DataFrame]) -> None:
    http = tables["http_events"]
    assert (http["resp_status"] == 200).mean() > 0.85
    assert {1, 2} <= set(http["trace_role"]) and (http["trace_role"] == 2).mean() > 0.9
    assert (http["major_version"] == 1).all() and (http["minor_version"] == 1).all()
    assert http["req_body"].str.len_bytes().max() <= 512
    assert http["resp_body"].str.len_bytes().max() <= 512
    assert (http["resp_body_size"] >= http["resp_body"].str.len_bytes()).all()
    assert http["resp_body_size"].max() > 10_000
    assert http["req_path"].n_unique() < 200
    for column in ("req_headers", "resp_headers"):
        decoded = http[column].str.json_decode(infer_schema_length=None)
        assert isinstance(decoded.dtype, pl.Struct) and decoded.null_count() == 0, column
    json_rows = http.filter((pl.col("content_type") == 1) & (pl.col("resp_body_size") > 0)
                            & (pl.col("resp_body_size") <= 512))
    assert json_rows["resp_body"].str.starts_with("{").all()


def test_dns_has_some_nxdomain(tables: dict[str, pl.DataFrame]) -> None:
    rcode = tables["dns_events"]["resp_header"].str.json_path_match("$.rcode").cast(pl.Int64)
    assert set(rcode) == {0, 3}
    assert 0.02 < (rcode == 3).mean() < 0.4


def test_mysql_statuses(tables: dict[str, pl.DataFrame]) -> None:
    mysql = tables["mysql_events"]
    assert (mysql["req_cmd"] == 3).all()
    assert set(mysql["resp_status"]) == {2, 3}
    errors = mysql.filter(pl.col("resp_status") == 3)
    assert errors["resp_body"].str.contains("Lock wait timeout").any()


# --- files ------------------------------------------------------------------------------------


def _read(path: Path, fmt: str, like: pl.DataFrame) -> pl.DataFrame:
    if fmt == "parquet":
        return pl.read_parquet(path)
    if fmt == "arrow":
        return pl.read_ipc(path)
    if fmt == "ndjson":
        return pl.read_ndjson(path, schema=like.schema)
    raw = pl.read_csv(path, infer_schema=False)
    return raw.select(
        pl.col(n).str.to_datetime(time_unit="ns") if dtype == pl.Datetime
        else pl.col(n).replace_strict({"true": True, "false": False}, return_dtype=pl.Boolean)
        if dtype == pl.Boolean else pl.col(n).cast(dtype)
        for n, dtype in like.schema.items())


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_write_demo_round_trips(tmp_path: Path, fmt: str) -> None:
    kw: dict[str, Any] = {"now_ns": NOW, "minutes": 5, "scale": 0.1}
    paths = write_demo(tmp_path, fmt, **kw)
    expected = demo_tables(**kw) | {"upid_metadata": demo_metadata(NOW)}
    assert sorted(p.name for p in paths) == sorted(f"{n}{FORMATS[fmt]}" for n in expected)
    for path in paths:
        like = expected[path.name.removesuffix(FORMATS[fmt])]
        back = _read(path, fmt, like)
        assert back.schema == like.schema, path.name
        assert back.equals(like), path.name


def test_write_demo_rejects_unknown_formats(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown format"):
        write_demo(tmp_path, "xlsx", now_ns=NOW)

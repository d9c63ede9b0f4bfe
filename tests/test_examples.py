"""Every ``examples/*.pxl`` runs on the demo dataset and equals the same query written in Polars.

The hand-written Polars versions live in ``benchmarks/polars_oracles.py`` (the benchmark times
them against pxl). Each example also gets a check of what it should find in the demo data:
the slow checkout endpoint, the payment outage 22–17 minutes before now, the OOM-killed pod…
"""

from __future__ import annotations

import importlib.util
import json
from datetime import datetime
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

import pxl
from tests.conftest import DEMO_NOW, EXAMPLES, ROOT

MIN = 60 * 1_000_000_000
BURST = (DEMO_NOW - 22 * MIN, DEMO_NOW - 17 * MIN)
DEMO_NOW_ISO = "2026-11-24T12:00:00Z"


def _load_oracles():
    spec = importlib.util.spec_from_file_location(
        "polars_oracles", ROOT / "benchmarks" / "polars_oracles.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module.ORACLES


ORACLES = _load_oracles()
SCRIPTS = sorted(EXAMPLES.glob("*.pxl"))


@pytest.fixture(scope="module")
def demo_meta():
    from pxl.demo import demo_metadata

    return demo_metadata(DEMO_NOW)


@pytest.fixture(scope="module")
def results(demo_catalog):
    """Each example's results, run once per module."""
    cache: dict[str, pxl.Results] = {}

    def get(stem: str) -> pxl.Results:
        if stem not in cache:
            path = EXAMPLES / f"{stem}.pxl"
            cache[stem] = pxl.run(path.read_text(), catalog=demo_catalog, now=DEMO_NOW,
                                  filename=str(path))
        return cache[stem]

    return get


def _ns(frame: pl.DataFrame, col: str) -> list[int]:
    return frame[col].cast(pl.Int64).to_list()


# --- every example against its oracle -----------------------------------------------------------


def test_there_are_examples():
    assert len(SCRIPTS) >= 7
    assert (EXAMPLES / "errors_by_path.pxl").exists()


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_example_has_oracle(script: Path):
    assert script.stem in ORACLES, (
        f"examples/{script.name} has no hand-written Polars version; add a function named "
        f"{script.stem} to benchmarks/polars_oracles.py")


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_example_starts_with_its_question(script: Path):
    first = script.read_text().splitlines()[0]
    assert first.startswith("# ") and len(first) > 20


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_example_matches_polars(script: Path, results, demo_frames, demo_meta):
    oracle = ORACLES.get(script.stem)
    if oracle is None:
        pytest.fail(f"no oracle for {script.name}")
    res = results(script.stem)
    want = oracle(demo_frames, demo_meta, DEMO_NOW)
    assert list(res) == list(want), "outputs (names and display order)"
    for name, expected in want.items():
        got = res[name]
        assert got.height > 0, f"{script.stem}: output {name} is empty"
        assert_frame_equal(got, expected, check_dtypes=True, check_exact=False,
                           rel_tol=1e-9, abs_tol=1e-6)


def test_oracles_have_examples():
    stems = {s.stem for s in SCRIPTS}
    assert set(ORACLES) <= stems, f"oracles without an example: {set(ORACLES) - stems}"


# --- what each example should find in the demo data ----------------------------------------------


def test_errors_by_path(results):
    out = results("errors_by_path")["output"]
    assert out.columns == ["req_path", "count", "avg_latency"]
    assert out["count"].min() >= 1


def test_slowest_requests_top_is_the_checkout_endpoint(results):
    out = results("slowest_requests")["slowest_requests"]
    assert out.height == 10
    assert out.columns == ["time_", "service", "pod", "req_method", "req_path", "resp_status",
                           "latency", "rss", "threads", "req_body", "resp_body"]
    assert out["latency"].to_list() == sorted(out["latency"].to_list(), reverse=True)
    assert set(out["req_path"]) <= {"/checkout", "/api/checkout"}
    assert set(out["req_method"]) == {"POST"}
    assert set(out["service"]) <= {"shop/frontend", "shop/checkout"}
    assert out["latency"][0] > 1_000_000_000  # over a second
    assert all(out["req_body"].str.len_bytes() > 0)
    assert all(pod.startswith(svc + "-") for pod, svc in zip(out["pod"], out["service"], strict=True))
    assert min(_ns(out, "time_")) >= DEMO_NOW - 10 * MIN


def test_latency_over_time_two_p99s_and_a_line_chart(results):
    res = results("latency_over_time")
    out = res["latency"]
    assert res.outputs[0].options == (("chart_type", "line"),)
    assert out.height == 60
    assert out.columns == ["timestamp", "requests", "p99", "p50", "p99_pluck"]
    assert_frame_equal(out.select(p=pl.col("p99")), out.select(p=pl.col("p99_pluck")))
    minutes = _ns(out, "timestamp")
    assert minutes == sorted(minutes) and all(m % MIN == 0 for m in minutes)
    worst = minutes[out["p99"].arg_max()]
    assert BURST[0] <= worst < BURST[1]  # the payment outage's 8 s timeouts
    assert (out["p50"] < out["p99"]).all()
    schema = res.outputs[0].schema
    assert schema["p99_pluck"].semantic.value == schema["p99"].semantic.value == "duration_ns"


def test_service_filter_goes_through_ctx(results):
    out = results("service_filter")["checkout"]
    assert set(out["req_path"]) == {"/api/checkout", "/healthz"}
    bad = out.filter(pl.col("req_path") == "/api/checkout", pl.col("resp_status") == 502)
    assert bad["requests"][0] > 20 and bad["avg_latency"][0] > 5e9
    ok = out.filter(pl.col("req_path") == "/api/checkout", pl.col("resp_status") == 200)
    assert 0.15e9 < ok["avg_latency"][0] < 1e9  # the slow endpoint: ~0.25 s median


def test_conn_audit(results):
    out = results("conn_audit")["connections"]
    assert out.columns == ["pod", "remote_addr", "trace_role", "ssl", "bytes_sent", "bytes_recv",
                           "conns_opened", "max_active", "total_bytes"]
    assert (out["total_bytes"].diff().drop_nulls() <= 0).all()
    assert out["pod"].str.contains(r"^(shop|kube-system)/").all()
    external = out.filter(pl.col("ssl"))
    assert set(external["remote_addr"]) == {"203.0.113.10", "203.0.113.24"}
    assert set(external["pod"].str.extract(r"^shop/([a-z]+)-")) == {"payment", "checkout"}
    assert (out["bytes_sent"] >= 0).all() and (out["conns_opened"] >= 0).all()


def test_cpu_profile(results):
    out = results("cpu_profile")["hot_stacks"]
    assert out.height == 20
    assert out["samples"].to_list() == sorted(out["samples"].to_list(), reverse=True)
    assert ((out["percent"] > 0) & (out["percent"] <= 100)).all()
    mysql = out.filter(pl.col("service") == "shop/mysql")
    assert mysql["stack_trace"].str.contains("filesort").any()  # the unindexed ORDER BY


def test_mysql_by_service(results):
    out = results("mysql_by_service")["mysql_by_service"]
    assert out["service"].to_list() == ["shop/checkout", "shop/payment"]
    payment = out.row(1, named=True)
    assert payment["error_rate"] > out.row(0, named=True)["error_rate"]  # lock-wait timeouts
    assert payment["p99_latency"] > 10e9


def test_service_errors_shows_the_payment_outage(results):
    res = results("service_errors")
    assert res.outputs[0].options == (("chart_type", "line"),)
    out = res["service_errors"].with_columns(t=pl.col("timestamp").cast(pl.Int64))
    payment = out.filter(pl.col("service") == "shop/payment")
    during = payment.filter(pl.col("t") >= BURST[0], pl.col("t") + MIN <= BURST[1])
    after = payment.filter(pl.col("t") >= BURST[1] + MIN)
    # payment also answers kubelet's /healthz, so its error rate tops out below the charge's 70%
    assert during.height == 5 and (during["error_rate"] > 0.15).all()
    assert (after["error_rate"] < 0.02).all()
    assert during["errors"].sum() > 50 * max(1, after["errors"].sum())
    cart = out.filter(pl.col("service") == "shop/cart")
    assert cart["error_rate"].max() < 0.05


def test_pod_resources_shows_the_restarted_pod(results):
    out = results("pod_resources")["pod_resources"]
    restarted = out.filter(pl.col("processes") == 2)
    assert restarted.height == 1
    row = restarted.row(0, named=True)
    assert row["service"] == "shop/payment"
    assert row["peak_rss"] > 400 * 2**20  # the leak before the OOM kill
    assert (out["cpu_cores"] > 0).all() and (out["cpu_cores"] < 2).all()


def test_db_calls(results):
    out = results("db_calls")["database_calls"]
    assert out["database"].unique(maintain_order=True).to_list() == ["mysql", "postgres", "redis"]
    assert set(out.filter(pl.col("database") == "redis")["service"]) == {
        "shop/frontend", "shop/catalog", "shop/cart"}
    slowest_redis = out.filter(pl.col("database") == "redis")["avg_latency"].max()
    assert slowest_redis < out.filter(pl.col("database") == "mysql")["avg_latency"].min()


# --- the real command -----------------------------------------------------------------------------


def test_cli_runs_an_example_as_a_table(cli):
    r = cli("run", "examples/service_filter.pxl", "--demo", "--now", DEMO_NOW_ISO)
    assert r.code == 0, r.err
    assert "checkout: 5 rows" in r.out
    assert "/healthz" in r.out and "502" in r.out and "POST" in r.out


def test_cli_json_equals_the_library(cli, results):
    r = cli("run", "examples/mysql_by_service.pxl", "--demo", "--now", DEMO_NOW_ISO, "-o", "json")
    assert r.code == 0, r.err
    rows = [json.loads(line) for line in r.out.splitlines() if line.strip()]
    assert {row.pop("_tableName_") for row in rows} == {"mysql_by_service"}
    want = results("mysql_by_service")["mysql_by_service"]
    assert_frame_equal(pl.DataFrame(rows), want, check_dtypes=False)


def test_cli_json_multi_row_chart_example(cli, results):
    r = cli("run", "examples/service_errors.pxl", "--demo", "--now", DEMO_NOW_ISO, "-o", "json")
    assert r.code == 0, r.err
    rows = [json.loads(line) for line in r.out.splitlines() if line.strip()]
    want = results("service_errors")["service_errors"]
    assert len(rows) == want.height
    worst = max(rows, key=lambda row: row["error_rate"])
    assert worst["service"] == "shop/payment"
    stamp = worst["timestamp"]
    when = (datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() * 1e9
            if isinstance(stamp, str) else stamp)
    assert BURST[0] - MIN <= when < BURST[1]

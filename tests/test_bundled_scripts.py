"""The bundled scripts (pxl/scripts/px/*.pxl) on the demo cluster, and the semantic-type casts.

Every bundled script (new ones included: the list comes from pxl.scripts.bundled()) runs with
its defaults and gives non-empty outputs with the columns it promises; each has at least one
check of what it shows against what the demo cluster is known to hold (pxl/demo.py: the slow
POST /api/checkout, the payment outage 22–17 minutes before now, the OOM-killed payment pod,
NXDOMAIN answers from the resolver search path …). A few check that an argument narrows the
output, and the real ``pxl`` command lists, shows and runs them.
"""

from __future__ import annotations

import re
from typing import Any

import polars as pl
import pytest

import pxl
from engine.catalog import MemoryCatalog
from engine.types import DataType, SemanticType
from pxl.args import declared_args
from pxl.parser import parse
from pxl.scripts import bundled, find
from tests.conftest import DEMO_NOW

NS = 1_000_000_000
MIN = 60 * NS
MIB = 1 << 20
SCRIPTS = bundled()
APP_SERVICES = {f"shop/{s}" for s in ("frontend", "catalog", "cart", "checkout", "payment",
                                      "users")}

#: The outputs and columns each script promises (a script not listed must still run).
EXPECTED: dict[str, dict[str, set[str]]] = {
    "px/http_data": {"http_data": {"time_", "service", "pod", "req_path", "resp_status",
                                   "latency"}},
    "px/http_post_requests": {"post_requests": {"time_", "service", "pod", "req_path",
                                                "req_body", "resp_status", "latency"}},
    "px/slow_http_requests": {"slow_requests": {"time_", "service", "pod", "latency",
                                                "service_p99", "req_path", "resp_status"}},
    "px/largest_http_request": {
        "largest_requests": {"service", "req_path", "resp_body_size", "latency"},
        "largest_by_endpoint": {"service", "req_path", "requests", "max_resp_size"}},
    "px/service_stats": {
        "service_let": {"timestamp", "service", "latency_p50", "latency_p99", "error_rate",
                        "request_throughput", "bytes_throughput"},
        "service_summary": {"service", "requests", "error_rate", "latency_p50", "latency_p99",
                            "request_throughput"}},
    "px/service_map": {"service_map": {"client", "server", "protocol", "requests_per_s",
                                       "latency_mean", "latency_p99", "error_rate"}},
    "px/mysql_data": {"mysql_data": {"time_", "service", "command", "req_body", "status",
                                     "latency"}},
    "px/pgsql_data": {"pgsql_data": {"time_", "service", "req_cmd", "req", "resp", "latency"}},
    "px/redis_data": {"redis_data": {"time_", "service", "req_cmd", "key", "req_args", "resp",
                                     "latency"},
                      "redis_commands": {"service", "req_cmd", "calls", "latency_p99"}},
    "px/dns_data": {"dns_data": {"time_", "service", "query_name", "query_type", "rcode",
                                 "answers", "latency"}},
    "px/dns_flow_graph": {"dns_flow_graph": {"client", "query_name", "rcode", "lookups",
                                             "latency_mean"},
                          "rcodes": {"rcode", "lookups"}},
    "px/sql_queries": {"sql_queries": {"database", "normed_query", "calls", "calls_per_s",
                                       "latency_p50", "latency_p99", "error_rate"}},
    "px/pod_cpu_mem": {"pod_usage": {"pod", "processes", "cpu_usage", "rss_peak", "rss_growth"},
                       "processes": {"pod", "upid", "cmdline", "cpu_usage", "rss_peak"},
                       "memory_over_time": {"pod", "timestamp", "rss"}},
    "px/network_connections": {"connections": {"pod", "remote_addr", "remote_port", "role",
                                               "protocol", "bytes_sent", "bytes_recv",
                                               "conns_opened", "conns_open"},
                               "pod_traffic": {"pod", "bytes_sent", "bytes_recv"}},
    "px/perf_flamegraph": {"stack_traces": {"pod", "samples", "percent", "stack_trace"}},
}


_CACHE: dict[tuple[str, tuple[tuple[str, Any], ...]], pxl.Results] = {}


@pytest.fixture(scope="module")
def run(demo_catalog: MemoryCatalog):
    """run('px/service_stats', start_time='-30m') → the script's Results (cached)."""

    def go(name: str, /, **args: Any) -> pxl.Results:
        key = (name, tuple(sorted(args.items())))
        if key not in _CACHE:
            script = find(name)
            assert script is not None, name
            _CACHE[key] = pxl.run(script.path.read_text(encoding="utf-8"), catalog=demo_catalog,
                                  now=DEMO_NOW, args=args, filename=str(script.path))
        return _CACHE[key]

    return go


def _outputs(res: pxl.Results) -> dict[str, Any]:
    return {o.name: o for o in res.outputs}


# ------------------------------------------------------------------------------------------------
# Every script


def test_the_fifteen_scripts_are_bundled() -> None:
    assert set(EXPECTED) <= {s.name for s in SCRIPTS}


@pytest.mark.parametrize("script", SCRIPTS, ids=[s.name for s in SCRIPTS])
def test_script_runs_with_its_defaults(script, run) -> None:
    source = script.path.read_text(encoding="utf-8")
    first = source.splitlines()[0]
    assert first.startswith("# ") and len(script.summary) > 20, "first line: '# summary'"
    args = declared_args(parse(source, str(script.path)))
    assert all(not a.required for a in args), "every argument has a default"
    assert "start_time" in {a.name for a in args}

    res = run(script.name)
    assert len(res) >= 1
    for out in res.outputs:
        assert out.frame.height > 0, f"{script.name}: output {out.name} is empty"
    for name, columns in EXPECTED.get(script.name, {}).items():
        assert name in res, f"{script.name} has no output {name}"
        missing = columns - set(res[name].columns)
        assert not missing, f"{script.name}:{name} lacks {sorted(missing)}"


# ------------------------------------------------------------------------------------------------
# What each shows


def _served_http(demo_frames, since_min: int) -> pl.DataFrame:
    h = demo_frames["http_events"]
    start = pl.lit(DEMO_NOW - since_min * MIN).cast(pl.Datetime("ns"))
    return h.filter((pl.col("trace_role") == 2) & (pl.col("time_") >= start))


def test_http_data_is_the_newest_requests(run) -> None:
    df = run("px/http_data")["http_data"]
    assert df.height == 100 and df["time_"].is_sorted(descending=True)
    assert set(df["service"]) <= APP_SERVICES


def test_http_post_requests_are_the_newest_served_posts(run, demo_frames) -> None:
    df = run("px/http_post_requests")["post_requests"]
    want = (_served_http(demo_frames, 5).filter(pl.col("req_method") == "POST")
            .sort("time_", descending=True).head(100))
    assert df["time_"].to_list() == want["time_"].to_list()
    assert (df["req_body_size"] > 0).all()


def test_http_post_requests_path_argument_narrows(run) -> None:
    df = run("px/http_post_requests", path="/api/checkout")["post_requests"]
    assert df.height > 0 and set(df["req_path"]) == {"/api/checkout"}
    assert set(df["service"]) == {"shop/checkout"}


def test_slow_http_requests_are_the_checkouts(run) -> None:
    df = run("px/slow_http_requests")["slow_requests"]
    assert df["latency"].is_sorted(descending=True)
    assert (df["latency"] >= df["service_p99"]).all()
    top = df.head(5)
    assert set(top["req_path"]) <= {"/api/checkout", "/checkout"}
    assert set(top["req_method"]) == {"POST"} and (top["latency"] > NS).all()


def test_slow_http_requests_svc_argument_narrows(run) -> None:
    df = run("px/slow_http_requests", svc="checkout")["slow_requests"]
    assert set(df["service"]) == {"shop/checkout"}
    assert df["req_path"][0] == "/api/checkout"


def test_largest_http_request_is_the_largest(run, demo_frames) -> None:
    res = run("px/largest_http_request")
    top = res["largest_requests"]
    assert top.height == 10 and top["resp_body_size"].is_sorted(descending=True)
    assert top["resp_body_size"][0] == _served_http(demo_frames, 5)["resp_body_size"].max()
    by_endpoint = res["largest_by_endpoint"]
    assert by_endpoint["max_resp_size"][0] == top["resp_body_size"][0]
    assert by_endpoint["requests"].sum() == _served_http(demo_frames, 5).height


def test_service_stats_shows_the_payment_outage(run) -> None:
    res = run("px/service_stats", start_time="-30m", window="1m")
    let = res["service_let"]
    assert set(let["service"]) == APP_SERVICES
    assert (let["latency_p99"] >= let["latency_p50"]).all()
    assert let["error_rate"].min() >= 0 and let["error_rate"].max() <= 100
    payment = let.filter(pl.col("service") == "shop/payment")
    peak = payment.sort("error_rate", descending=True).row(0, named=True)
    start, end = DEMO_NOW - 22 * MIN, DEMO_NOW - 17 * MIN
    peak_ns = peak["timestamp"].timestamp() * NS  # type: ignore[union-attr]
    assert start - MIN <= peak_ns < end and peak["error_rate"] > 20
    # outside the outage payment hardly fails
    calm = payment.filter(pl.col("timestamp") >= pl.lit(end + MIN).cast(pl.Datetime("ns")))
    assert calm["error_rate"].max() < 10
    # per-bin throughput is requests per bin width (per ns)
    assert payment["request_throughput"].to_list() == pytest.approx(
        [n / MIN for n in payment["requests"]])
    outs = _outputs(res)
    assert dict(outs["service_let"].options).get("chart_type") == "line"
    assert outs["service_let"].schema["error_rate"].semantic is SemanticType.PERCENT
    assert outs["service_let"].schema["request_throughput"].semantic \
        is SemanticType.THROUGHPUT_PER_NS
    summary = res["service_summary"]
    assert summary["requests"].sum() == let["requests"].sum()


def test_service_stats_svc_argument_narrows(run) -> None:
    res = run("px/service_stats", svc="payment")
    assert set(res["service_let"]["service"]) == {"shop/payment"}
    assert res["service_summary"].height == 1


def test_service_map_edges(run) -> None:
    df = run("px/service_map")["service_map"]
    edges = {(r["client"], r["server"], r["protocol"]) for r in df.iter_rows(named=True)}
    assert len(edges) == df.height  # one row per edge
    for edge in [("shop/frontend", "shop/checkout", "HTTP"),
                 ("shop/frontend", "shop/catalog", "HTTP"),
                 ("shop/checkout", "shop/payment", "HTTP"),
                 ("shop/payment", "203.0.113.10", "HTTP"),  # external API, client side only
                 ("shop/checkout", "10.244.1.76", "MySQL"),  # a database pod: no name known
                 ("shop/catalog", "10.244.2.72", "PostgreSQL"),
                 ("shop/cart", "10.244.1.9", "Redis")]:
        assert edge in edges, edge
    # calls between traced pods are counted once, from the server's side
    assert not any(c == s for c, s, _ in edges)
    served = run("px/service_stats")["service_summary"]
    into_checkout = df.filter(pl.col("server") == "shop/checkout")["requests"].sum()
    assert into_checkout == served.filter(pl.col("service") == "shop/checkout")["requests"][0]
    assert df["error_rate"].min() >= 0 and df["error_rate"].max() <= 100
    assert (df["requests_per_s"] * 5 * MIN).round(6).to_list() == \
        df["requests"].cast(pl.Float64).to_list()


def test_service_map_svc_argument_narrows(run) -> None:
    df = run("px/service_map", svc="payment")["service_map"]
    assert df.height > 0
    assert all("payment" in c or "payment" in s for c, s in zip(df["client"], df["server"],
                                                               strict=True))


def test_mysql_data(run) -> None:
    df = run("px/mysql_data")["mysql_data"]
    assert set(df["service"]) <= {"shop/checkout", "shop/payment"}
    assert set(df["command"]) == {"Query"}
    errors = run("px/mysql_data", start_time="-1h", errors_only=True)["mysql_data"]
    assert errors.height > 0 and set(errors["status"]) == {"error"}


def test_pgsql_data(run) -> None:
    df = run("px/pgsql_data")["pgsql_data"]
    assert set(df["service"]) <= {"shop/catalog", "shop/users"}
    assert df["req"].str.contains("(?i)select|insert|update").all()


def test_redis_data_cmd_argument_narrows(run) -> None:
    everything = run("px/redis_data")["redis_commands"]
    assert everything["req_cmd"].n_unique() > 1
    res = run("px/redis_data", cmd="get")
    assert set(res["redis_data"]["req_cmd"]) == {"GET"}
    assert set(res["redis_commands"]["req_cmd"]) == {"GET"}
    assert (res["redis_data"]["key"] != "").all()


def test_dns_data(run) -> None:
    df = run("px/dns_data")["dns_data"]
    assert set(df["rcode"]) <= {"NOERROR", "NXDOMAIN"} and (df["query_name"] != "").all()
    ok = df.filter(pl.col("rcode") == "NOERROR")
    assert ok["answers"].str.contains('"addr"').all()


def test_dns_flow_graph_shows_the_search_path_nxdomains(run) -> None:
    res = run("px/dns_flow_graph")
    df = res["dns_flow_graph"]
    nx = df.filter(pl.col("rcode") == "NXDOMAIN")
    assert nx.height > 0
    # NXDOMAINs are the external names tried against the cluster search path
    assert nx["query_name"].str.contains(r"^api\..*\.example\.com\..*cluster\.local$").all()
    assert set(nx["client"]) == {"shop/checkout", "shop/payment"}
    assert ("shop/frontend", "checkout.shop.svc.cluster.local", "NOERROR") in {
        (r["client"], r["query_name"], r["rcode"]) for r in df.iter_rows(named=True)}
    assert res["rcodes"]["lookups"].sum() == df["lookups"].sum()
    only = run("px/dns_flow_graph", name="payments")["dns_flow_graph"]
    assert only.height > 0 and only["query_name"].str.contains("payments").all()


def test_sql_queries_normalises_literals(run) -> None:
    df = run("px/sql_queries")["sql_queries"]
    queries = df["normed_query"].to_list()
    assert not any(re.search(r"'u-\d+'|= \d+\b", q) for q in queries), queries
    mysql = df.filter(pl.col("database") == "mysql")["normed_query"]
    pgsql = df.filter(pl.col("database") == "postgres")["normed_query"]
    assert mysql.str.contains(r"\?").all() and pgsql.str.contains(r"\$1").any()
    assert len(queries) == len(set(zip(df["database"], queries, strict=True)))
    # the unindexed orders query costs the most time in total
    assert df["total_time"].is_sorted(descending=True)
    assert "FROM orders" in queries[0] and "ORDER BY created_at" in queries[0]
    assert df["calls"].sum() > 1000


def test_pod_cpu_mem_shows_the_leaking_payment_pod(run) -> None:
    res = run("px/pod_cpu_mem", start_time="-30m")
    pods = res["pod_usage"]
    leak = pods.sort("rss_growth", descending=True).row(0, named=True)
    assert leak["pod"].startswith("shop/payment-") and leak["processes"] == 2
    assert leak["rss_peak"] >= 500 * MIB and leak["rss_growth"] > 256 * MIB
    assert (pods["cpu_usage"] > 0).all() and (pods["cpu_usage"] < 400).all()
    procs = res["processes"].filter(pl.col("pod") == leak["pod"])
    assert procs.height == 2 and procs["upid"].n_unique() == 2
    memory = res["memory_over_time"].filter(pl.col("pod") == leak["pod"]).sort("timestamp")
    killed = DEMO_NOW - 17 * MIN
    before = memory.filter(pl.col("timestamp") < pl.lit(killed).cast(pl.Datetime("ns")))
    after = memory.filter(pl.col("timestamp") > pl.lit(killed + MIN).cast(pl.Datetime("ns")))
    assert before["rss"][0] < before["rss"].max() - 256 * MIB  # it grew …
    assert after["rss"].max() < 256 * MIB  # … and came back small after the OOM kill
    assert dict(_outputs(res)["memory_over_time"].options).get("chart_type") == "line"


def test_pod_cpu_mem_cpu_is_counter_growth_over_time(run, demo_frames) -> None:
    df = run("px/pod_cpu_mem")["processes"].row(0, named=True)
    ps = demo_frames["process_stats"].filter(
        (pl.col("upid") == df["upid"])
        & (pl.col("time_") >= pl.lit(DEMO_NOW - 5 * MIN).cast(pl.Datetime("ns"))))
    cpu = ps["cpu_utime_ns"] + ps["cpu_ktime_ns"]
    span = ps["time_"].cast(pl.Int64).max() - ps["time_"].cast(pl.Int64).min()
    assert df["cpu_usage"] == pytest.approx(100 * (cpu.max() - cpu.min()) / span)


def test_network_connections(run) -> None:
    res = run("px/network_connections")
    df = res["connections"]
    assert (df["bytes_sent"] >= 0).all() and (df["bytes_recv"] >= 0).all()
    assert set(df["role"]) == {"client", "server"}
    assert {"HTTP", "MySQL", "DNS", "Redis"} <= set(df["protocol"])
    assert df["bytes_total"].is_sorted(descending=True)
    traffic = res["pod_traffic"]
    assert traffic["bytes_sent"].sum() == df["bytes_sent"].sum()
    redis = run("px/network_connections", pod="redis")["connections"]
    assert 0 < redis.height < df.height and set(redis["pod"]) == {"shop/redis-0"}


def test_perf_flamegraph_percentages(run) -> None:
    df = run("px/perf_flamegraph")["stack_traces"]
    per_pod = df.group_by("pod").agg(pl.col("percent").sum())
    assert per_pod["percent"].to_list() == pytest.approx([100.0] * per_pod.height)
    assert df["samples"].is_sorted(descending=True)
    mysql = run("px/perf_flamegraph", pod="mysql", frame="dispatch_command")["stack_traces"]
    assert set(mysql["pod"]) == {"shop/mysql-0"}
    assert mysql["stack_trace"].str.contains("dispatch_command").all()
    assert mysql["percent"].sum() < 100  # still shares of all the pod's samples


# ------------------------------------------------------------------------------------------------
# The pxl command


def test_cli_lists_every_script_with_its_summary(cli) -> None:
    r = cli("scripts", "list")
    assert r.code == 0, r.err
    for script in SCRIPTS:
        line = next((ln for ln in r.out.splitlines() if ln.split()[:1] == [script.name]), None)
        assert line is not None, script.name
        assert script.summary[:40] in line


def test_cli_shows_a_script(cli) -> None:
    r = cli("scripts", "show", "px/service_stats")
    assert r.code == 0, r.err
    assert r.out.strip() == find("px/service_stats").path.read_text(encoding="utf-8").strip()


def test_cli_runs_service_stats_on_the_demo(cli) -> None:
    r = cli("run", "px/service_stats", "--demo")
    assert r.code == 0, r.err
    assert "service_let" in r.out and "service_summary" in r.out and "shop/payment" in r.out


# ------------------------------------------------------------------------------------------------
# Semantic-type casts (engine/functions/semantic.py)

CASTS = [  # (call on column c, input dtype, values, result dtype, semantic type)
    ("px.Service(df.c)", pl.String, ["shop/cart"], DataType.STRING, SemanticType.SERVICE_NAME),
    ("px.Pod(df.c)", pl.String, ["shop/cart-1"], DataType.STRING, SemanticType.POD_NAME),
    ("px.Namespace(df.c)", pl.String, ["shop"], DataType.STRING, SemanticType.NAMESPACE_NAME),
    ("px.Node(df.c)", pl.String, ["node-1"], DataType.STRING, SemanticType.NODE_NAME),
    ("px.Container(df.c)", pl.String, ["cart"], DataType.STRING, SemanticType.CONTAINER_NAME),
    ("px.UPID(df.c)", pl.String, ["00000001-0000dc8e-1"], DataType.STRING, SemanticType.UPID),
    ("px.Time(df.c)", pl.Int64, [1_700_000_000_000_000_000], DataType.TIME64NS,
     SemanticType.TIME),
    ("px.Throughput(df.c)", pl.Float64, [2.5e-9], DataType.FLOAT64,
     SemanticType.THROUGHPUT_PER_NS),
    ("px.ThroughputBytes(df.c)", pl.Int64, [3], DataType.INT64,
     SemanticType.THROUGHPUT_BYTES_PER_NS),
    ("px.DurationNanos(df.c)", pl.Int64, [1500], DataType.INT64, SemanticType.DURATION_NS),
    ("px.Bytes(df.c)", pl.Float64, [1.5], DataType.FLOAT64, SemanticType.BYTES),
    ("px.Percent(df.c)", pl.Int64, [50], DataType.INT64, SemanticType.PERCENT),
]


def _cast_run(expr: str, frame: pl.DataFrame, prelude: str = "") -> Any:
    src = f"import px\n{prelude}df = px.DataFrame('t')\ndf.out = {expr}\npx.display(df)\n"
    return pxl.run(src, tables={"t": frame}, now=DEMO_NOW).outputs[0]


@pytest.mark.parametrize("expr, dtype, values, want_dtype, semantic", CASTS,
                         ids=[c[0] for c in CASTS])
def test_cast_marks_the_semantic_type(expr, dtype, values, want_dtype, semantic) -> None:
    out = _cast_run(expr, pl.DataFrame({"c": pl.Series(values, dtype=dtype)}))
    assert out.schema["out"].dtype is want_dtype and out.schema["out"].semantic is semantic
    got = out.frame["out"]
    if want_dtype is DataType.TIME64NS:
        got = got.cast(pl.Int64)
    assert got.to_list() == values


def test_time_cast_keeps_a_time_and_casts_constants() -> None:
    frame = pl.DataFrame({"c": pl.Series([5], dtype=pl.Int64).cast(pl.Datetime("ns"))})
    out = _cast_run("px.Time(df.c)", frame)
    assert out.schema["out"].dtype is DataType.TIME64NS
    assert out.frame["out"].cast(pl.Int64).to_list() == [5]
    out = _cast_run("px.Service('shop/cart')", frame)
    assert out.frame["out"].to_list() == ["shop/cart"]
    assert out.schema["out"].semantic is SemanticType.SERVICE_NAME


def test_cast_rejects_the_wrong_type() -> None:
    frame = pl.DataFrame({"c": [1], "s": ["x"]})
    with pytest.raises(pxl.PxlError, match="px.Service does not take"):
        _cast_run("px.Service(df.c)", frame)
    with pytest.raises(pxl.PxlError, match="px.Throughput does not take"):
        _cast_run("px.Throughput(df.s)", frame)


def test_casts_work_as_annotations_and_argument_types() -> None:
    src = """import px
svc = px.arg('svc', type=px.Service, default='shop/cart')
def pick(svc: px.Service, pod: px.Pod, since: px.Time, n: px.DurationNanos):
    df = px.DataFrame('t')
    df.svc = px.Service(svc)
    return df[['svc']]
px.display(pick(svc, 'shop/cart-1', px.now(), 5))
"""
    frame = pl.DataFrame({"c": [1]})
    res = pxl.run(src, tables={"t": frame}, now=DEMO_NOW, args={"svc": "shop/users"})
    assert res["output"]["svc"].to_list() == ["shop/users"]
    assert res.outputs[0].schema["svc"].semantic is SemanticType.SERVICE_NAME


def test_throughput_is_shown_per_second() -> None:
    from pxl.output import humanize

    rate = pxl.run("import px\ndf = px.DataFrame('t')\n"
                   "df.r = px.Throughput(df.n / px.seconds(2))\n"
                   "df.b = px.ThroughputBytes(df.n * 1024 / px.seconds(1))\npx.display(df)\n",
                   tables={"t": pl.DataFrame({"n": [5]})}, now=DEMO_NOW).outputs[0]
    assert humanize(rate.frame["r"][0], rate.schema["r"]) == "2.5/s"
    assert humanize(rate.frame["b"][0], rate.schema["b"]) == "5 KiB/s"

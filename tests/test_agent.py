"""The agent as a real process: queries over Arrow Flight, errors, tokens, status, collectors."""

from __future__ import annotations

import os
import time
from contextlib import contextmanager

import msgpack
import pyarrow.flight as flight
import pytest

import pxl
from pxl.agent.doctor import run_checks
from tests.conftest import ROOT, free_port, pxl_process

ERRORS_BY_PATH = (ROOT / "examples" / "errors_by_path.pxl").read_text()


@contextmanager
def agent(*extra: str, token: str | None = None):
    address = f"127.0.0.1:{free_port()}"
    with pxl_process("agent", "--listen", address, *extra, token=token) as proc:
        yield address, proc


@pytest.fixture(scope="module")
def demo_agent():
    with agent("--demo", "--no-collect") as (address, proc):
        yield address


def test_query_over_flight_matches_local(demo_agent, demo_catalog) -> None:
    with pxl.connect(demo_agent) as remote:
        res = remote.run(ERRORS_BY_PATH.replace("'-5m'", "'-60m'"))
    out = res["output"]
    assert out.height > 0 and set(out.columns) == {"req_path", "count", "avg_latency"}
    assert res.outputs[0].schema["avg_latency"].semantic.value == "duration_ns"


def test_errors_come_back_as_the_same_error(demo_agent) -> None:
    with pxl.connect(demo_agent) as remote, pytest.raises(pxl.CompileError) as e:
        remote.run("import px\ndf = px.DataFrame('http_events')\npx.display(df[df.nope > 1])",
                   filename="q.pxl")
    assert e.value.span.file == "q.pxl" and e.value.span.line == 3
    assert "q.pxl:3:15" in e.value.render() and "^" in e.value.render()


def test_cli_connect_and_status(demo_agent, cli, tmp_path) -> None:
    r = cli("run", "examples/errors_by_path.pxl", "--connect", demo_agent, "-o", "json")
    assert r.code == 0, r.err
    r = cli("agent", "--listen", demo_agent, "--status")
    assert r.code == 0 and "http_events" in r.out
    r = cli("run", "examples/errors_by_path.pxl", "--connect", "127.0.0.1:1")
    assert r.code == 1 and "cannot reach" in r.err and "Traceback" not in r.err


def test_protocol_version_is_checked(demo_agent) -> None:
    client = flight.FlightClient(f"grpc+tcp://{demo_agent}")
    body = msgpack.packb({"version": 999, "script": "import px"})
    with pytest.raises(flight.FlightServerError, match="protocol"):
        list(client.do_action(flight.Action("run", body)))


def test_token_is_required_when_set() -> None:
    with agent("--demo", "--no-collect", token="s3cret") as (address, _):
        with pxl.connect(address) as remote, pytest.raises(pxl.PxlError, match="token"):
            remote.status()
        with pxl.connect(address, token="wrong") as remote, pytest.raises(pxl.PxlError):
            remote.status()
        with pxl.connect(address, token="s3cret") as remote:
            assert remote.status()["tables"]


def test_doctor(cli) -> None:
    r = cli("doctor")
    checks = run_checks()
    assert r.code == (0 if all(c.ok for c in checks) else 1)
    for c in checks:
        assert f"{'✔' if c.ok else '✕'} {c.name}" in r.out


@pytest.mark.bpf
@pytest.mark.skipif(os.geteuid() != 0, reason="the collectors need root")
def test_live_agent_collects_processes() -> None:
    with agent() as (address, proc):
        deadline = time.time() + 30
        rows = 0
        while time.time() < deadline and rows == 0:
            with pxl.connect(address) as remote:
                out = remote.run("import px\ndf = px.DataFrame('process_stats')\n"
                                 "df.cmd = df.ctx['cmdline']\n"
                                 "px.display(df.agg(n=('upid', px.count)))")["output"]
            rows = out["n"][0]
            time.sleep(0.5)
        assert rows > 0
        with pxl.connect(address) as remote:
            status = remote.status()
        assert "process_stats" in status["collectors"]


def test_agent_snapshot_round_trips(demo_agent, tmp_path) -> None:
    with pxl.connect(demo_agent) as remote:
        paths = remote.snapshot(str(tmp_path / "snap"))
    assert any(p.endswith("http_events.parquet") for p in paths)
    assert any(p.endswith("upid_metadata.parquet") for p in paths)
    src = ("import px\ndf = px.DataFrame('http_events')\ndf.svc = df.ctx['service']\n"
           "px.display(df.agg(n=('svc', px.count)))")
    out = pxl.run(src, data=tmp_path / "snap")["output"]
    assert out["n"][0] > 0


def test_schema_and_snapshot_commands(cli, tmp_path) -> None:
    r = cli("schema", "http_events", "--demo")
    assert r.code == 0 and "latency" in r.out and "duration_ns" in r.out
    r = cli("schema", "http_event", "--demo")
    assert r.code == 2 and "http_events" in r.err
    r = cli("snapshot", "--demo", "--out", str(tmp_path / "s"))
    assert r.code == 0 and (tmp_path / "s" / "conn_stats.parquet").is_file()
    r = cli("tables", "--data", str(tmp_path / "s"))
    assert r.code == 0 and "conn_stats" in r.out

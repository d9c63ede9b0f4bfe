"""The broker over real Arrow Flight: answers equal one process's, and faults give partial answers.

- Hypothesis: tables dealt to 1–5 agents (Flight servers in this process, each over its own
  catalog), random queries through the real broker; its answer equals the whole plan's over
  all rows. (In-process so that each example gets fresh agents; the process tests below run
  the same code as separate ``pxl agent`` and ``pxl broker`` processes.)
- Processes: three ``pxl agent --data`` slices of the demo data and a ``pxl broker``; bundled
  scripts answer as one process over all the data; an agent killed before or during a query, one
  slower than the deadline, one whose stream breaks, a wrong token, a protocol or wire version
  mismatch, self-registration and a broker restart.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path

import msgpack
import polars as pl
import pyarrow.flight as flight
import pytest
from hypothesis import given
from hypothesis import strategies as st

import pxl
from engine.catalog import MemoryCatalog
from engine.distributed.wire import WIRE_VERSION, decode, encode, encode_schema
from engine.executor import execute
from engine.explain import explain
from pxl.agent.server import PROTOCOL_VERSION, AgentServer
from pxl.broker.service import make_broker
from tests.conftest import DEMO_NOW, ROOT, free_port, pxl_process, wait_up
from tests.test_oracle import assert_same, merges, pipelines
from tests.test_sketch import assert_same_within_sketch
from tests.test_split import SETTINGS, agent_catalogs, appends, spread

# ------------------------------------------------------------------------------------------------
# Agents in this process, over Flight


def _catalog_status(catalog: MemoryCatalog, node: str) -> dict:
    return {"node": node, "protocol": PROTOCOL_VERSION, "wire_version": WIRE_VERSION,
            "tables": [{"table_name": t, "num_rows": catalog.frame(t).height}
                       for t in catalog.table_names()],
            "schemas": {t: encode_schema(catalog.schema(t)) for t in catalog.table_names()}}


@contextmanager
def catalog_agents(catalogs: list[MemoryCatalog]):
    """A Flight agent per catalog on 127.0.0.1; yields their addresses."""
    with ExitStack() as stack:
        addresses = []
        for i, cat in enumerate(catalogs):
            server = AgentServer("grpc+tcp://127.0.0.1:0", run=None,  # type: ignore[arg-type]
                                 status=lambda c=cat, n=f"agent{i}": _catalog_status(c, n),
                                 fragment=lambda payload, c=cat: execute(decode(payload), c),
                                 metadata=cat.metadata)
            stack.callback(server.shutdown)
            addresses.append(f"127.0.0.1:{server.port}")
        yield addresses


def broker_answer(source: str, frames: dict[str, pl.DataFrame], draw) -> None:
    agents = draw(st.integers(1, 5))
    dealt = {}
    for name, frame in frames.items():
        parts = draw(spread(frame, agents))
        if all(p is None for p in parts):  # a table no agent holds does not exist for a broker
            parts[0] = frame
        dealt[name] = (frame, parts)
    parts, whole = agent_catalogs(dealt, agents)
    plan = pxl.compile(source, whole, now=DEMO_NOW)
    want = execute(plan, whole)
    with catalog_agents(parts) as addresses:
        broker = make_broker(tuple(addresses), deadline_s=30)
        try:
            got = broker.run(source, now=DEMO_NOW)
        finally:
            broker.stop()
    assert got.missing == []
    assert [o.name for o in got.outputs] == [w.name for w in want]
    for g, w in zip(got.outputs, want, strict=True):
        assert g.schema == w.schema, source
        assert_same(g.frame, w.frame, source)


@SETTINGS
@given(pipelines(), st.data())
def test_broker_pipeline_answers_as_one_process(case, data):
    df, steps = case
    lines = ["import px", "df = px.DataFrame('t')", *(s.pxl for s in steps), "px.display(df)"]
    broker_answer("\n".join(lines) + "\n", {"t": df}, data.draw)


@SETTINGS
@given(appends(), st.data())
def test_broker_union_answers_as_one_process(case, data):
    source, frames = case
    broker_answer(source, frames, data.draw)


@SETTINGS
@given(merges(), st.data())
def test_broker_join_answers_as_one_process(case, data):
    left, right, how, keys, suffixes, select = case
    source = ("import px\nl = px.DataFrame('l')\nr = px.DataFrame('r')\n"
              f"df = l.merge(r, how={how!r}, left_on={[k for k, _ in keys]!r}, "
              f"right_on={[k for _, k in keys]!r}, suffixes={list(suffixes)!r})\n"
              + (f"df = df[{list(select)!r}]\n" if select is not None else "")
              + "px.display(df)\n")
    broker_answer(source, {"l": left, "r": right}, data.draw)


# ------------------------------------------------------------------------------------------------
# Processes


def agent_args(port: int, data: Path, node: str, *extra: str) -> tuple[str, ...]:
    return ("agent", "--listen", f"127.0.0.1:{port}", "--data", str(data), "--no-collect",
            "--node", node, *extra)


@pytest.fixture(scope="module")
def slices(tmp_path_factory, demo_frames) -> tuple[list[Path], MemoryCatalog]:
    """The demo tables dealt row by row to three directories, and all of them in one catalog."""
    from pxl.demo import demo_metadata

    root = tmp_path_factory.mktemp("slices")
    dirs = [root / f"agent{i}" for i in range(3)]
    meta = demo_metadata(DEMO_NOW)
    for d in dirs:
        d.mkdir()
        meta.write_parquet(d / "upid_metadata.parquet")
    whole = MemoryCatalog()
    for name, frame in demo_frames.items():
        frame = frame.with_row_index("__i")
        for i, d in enumerate(dirs):
            frame.filter(pl.col("__i") % 3 == i).drop("__i").write_parquet(d / f"{name}.parquet")
        whole.add(name, frame.drop("__i"))
    whole.set_metadata(meta)
    return dirs, whole


@pytest.fixture(scope="module")
def cluster(slices, tmp_path_factory):
    """Three agents and a broker that knows them, as processes."""
    dirs, _ = slices
    ports = [free_port() for _ in range(4)]
    state = tmp_path_factory.mktemp("broker") / "state.json"
    with ExitStack() as stack:
        for i, d in enumerate(dirs):
            stack.enter_context(pxl_process(*agent_args(ports[i], d, f"agent{i}")))
        agents = ",".join(f"127.0.0.1:{p}" for p in ports[:3])
        broker = f"127.0.0.1:{ports[3]}"
        stack.enter_context(pxl_process("broker", "--listen", broker, "--agents", agents,
                                    "--state", str(state), "--deadline", "20"))
        yield broker, [f"127.0.0.1:{p}" for p in ports[:3]]


def _sorted(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.sort(frame.columns, nulls_last=True) if frame.width else frame


def _assert_answer(got: pl.DataFrame, want: pl.DataFrame, source: str, plan) -> None:
    """Equal to one process's answer; quantiles within the broker's sketch error (1%)."""
    if "quantile" in explain(plan):
        assert_same_within_sketch(got, want, source)
    else:
        assert_same(_sorted(got), _sorted(want), source)


SCRIPTS = {
    "errors": (ROOT / "examples" / "errors_by_path.pxl").read_text().replace("'-5m'", "'-60m'"),
    "quantiles": "import px\ndf = px.DataFrame('http_events', start_time='-60m')\n"
                 "px.display(df.groupby('req_method').agg(p50=('latency', px.quantile, 0.5), "
                 "n=('latency', px.count)))\n",
    "top_k_ctx": "import px\ndf = px.DataFrame('http_events', start_time='-60m')\n"
                 "df.service = df.ctx['service']\n"
                 "px.display(df.sort_values('latency', ascending=False).head(7)"
                 "[['service', 'req_path', 'latency']])\n",
    "join": "import px\nh = px.DataFrame('http_events', start_time='-60m')\n"
            "p = px.DataFrame('process_stats', start_time='-60m')\n"
            "p = p.groupby('upid').agg(rss=('rss_bytes', px.max))\n"
            "j = h.merge(p, how='inner', left_on='upid', right_on='upid', suffixes=['', '_p'])\n"
            "j.service = j.ctx['service']\n"
            "px.display(j.groupby('service').agg(n=('latency', px.count), "
            "rss=('rss', px.max)))\n",
}


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_broker_processes_answer_as_one_process(cluster, slices, name):
    broker, _ = cluster
    source = SCRIPTS[name]
    want = pxl.run(source, catalog=slices[1], now=DEMO_NOW)
    with pxl.connect(broker) as remote:
        got = remote.run(source, now=DEMO_NOW)
    assert got.missing == [] and not got.partial
    assert list(got) == list(want)
    for key in want:
        assert got[key].height > 0
        _assert_answer(got[key], want[key], source, want.plan)


def test_bundled_scripts_through_the_broker(cluster, slices):
    from pxl.scripts import bundled

    broker, _ = cluster
    checked = 0
    with pxl.connect(broker) as remote:
        for script in bundled():
            source = script.path.read_text()
            want = pxl.run(source, catalog=slices[1], now=DEMO_NOW)
            got = remote.run(source, now=DEMO_NOW)
            assert got.missing == [], script.name
            assert list(got) == list(want), script.name
            # a limit (or the output cap) may pick other rows among equals: the broker breaks
            # ties by agent, one process by time
            limited = "limit" in explain(want.plan).lower()
            for key, w in zip(want, want.outputs, strict=True):
                assert got[key].shape == want[key].shape, script.name
                if not (limited or w.truncated):
                    _assert_answer(got[key], want[key], script.name, want.plan)
            checked += not limited
    assert checked >= 5


def test_partials_cross_the_wire_small(cluster, slices):
    """A grouped aggregate: each agent sends at most one row per group, and the Arrow it sends
    carries no shared string buffers (Polars' newer string layout would drag them along)."""
    broker, agents = cluster
    source = SCRIPTS["errors"]
    with pxl.connect(broker) as remote:
        got = remote.run(source, now=DEMO_NOW)
        figures = remote.status()["last_query"]
    groups = got["output"].height
    assert 0 < sum(figures["rows_received"].values()) <= groups * len(agents)
    raw = slices[1].frame("http_events").to_arrow().nbytes
    assert figures["bytes_received"] < 200 * groups * len(agents) < raw / 10, (figures, raw)


def test_get_agent_status_and_tables_through_the_broker(cluster, slices):
    broker, agents = cluster
    with pxl.connect(broker) as remote:
        got = remote.run("import px\npx.display(px.GetAgentStatus(), 'agents')\n"
                         "px.display(px.GetTables(), 'tables')\n")
    status = got["agents"]
    assert status["address"].to_list() == agents
    assert status["agent_id"].to_list() == ["agent0", "agent1", "agent2"]
    assert set(status["agent_state"]) == {"up"}
    assert (status["last_heartbeat_ns"] < 10e9).all()
    assert "http_events" in status["tables"][0].split(",")
    tables = got["tables"].filter(pl.col("table_name") == "http_events")
    assert tables["num_rows"].item() == slices[1].frame("http_events").height


def test_cli_through_the_broker(cluster, cli):
    broker, _ = cluster
    r = cli("run", "examples/errors_by_path.pxl", "--connect", broker, "-o", "json")
    assert r.code == 0, r.err
    assert "warning" not in r.err
    r = cli("explain", "examples/errors_by_path.pxl", "--connect", broker, "--distributed")
    assert r.code == 0, r.err
    assert "== agent fragment f0: every agent with http_events ==" in r.out
    assert "Exchange[f0]" in r.out
    r = cli("broker", "--listen", broker, "--status")
    assert r.code == 0 and "agent0" in r.out and "up" in r.out


def test_repl_through_the_broker(cluster, slices, cli):
    """The REPL compiles against the broker's schemas and runs each input's plan there."""
    broker, _ = cluster
    lines = ("df = px.DataFrame('http_events', start_time='-60m')\n"
             "n = df.groupby('req_method').agg(n=('latency', px.count))\n"
             "n\n"
             ".tables\n")
    r = cli("repl", "--connect", broker, "--now", "2026-11-24T12:00:00Z", stdin=lines)
    assert r.code == 0, r.err
    want = slices[1].frame("http_events").group_by("req_method").len()
    for method, count in want.iter_rows():
        assert re.search(rf"{method}\s.*\b{count}\b", r.out), (method, count, r.out)
    assert "http_events" in r.out and "warning" not in r.out


# --- faults


@pytest.fixture
def two_agents(slices, tmp_path):
    """Two agents and a broker with a short deadline; agent 1 started with ``env``."""

    @contextmanager
    def start(env: dict[str, str] | None = None, deadline: str = "2"):
        dirs, _ = slices
        ports = [free_port() for _ in range(3)]
        with ExitStack() as stack:
            stack.enter_context(pxl_process(*agent_args(ports[0], dirs[0], "good")))
            bad = stack.enter_context(pxl_process(*agent_args(ports[1], dirs[1], "bad"), env=env))
            broker = f"127.0.0.1:{ports[2]}"
            stack.enter_context(pxl_process(
                "broker", "--listen", broker, "--agents",
                f"127.0.0.1:{ports[0]},127.0.0.1:{ports[1]}", "--state",
                str(tmp_path / "state.json"), "--deadline", deadline))
            yield broker, bad

    return start


def _one_agent_answer(slices, source: str, index: int = 0) -> pxl.Results:
    catalog = pxl.make_catalog(slices[0][index])
    return pxl.run(source, catalog=catalog, now=DEMO_NOW)


def test_agent_killed_before_the_query(two_agents, slices, cli):
    source = SCRIPTS["errors"]
    with two_agents() as (broker, bad):
        bad.kill()
        bad.wait()
        started = time.monotonic()
        with pxl.connect(broker) as remote:
            got = remote.run(source, now=DEMO_NOW)
        took = time.monotonic() - started
        assert took < 2 + 1, took
        assert [m.agent for m in got.missing] == ["bad"] and got.partial
        assert "reach" in got.missing[0].reason
        want = _one_agent_answer(slices, source)
        assert_same(_sorted(got["output"]), _sorted(want["output"]), source)
        r = cli("run", "examples/errors_by_path.pxl", "--connect", broker)
        assert r.code == 3, r.err
        assert "partial result" in r.err and "bad" in r.err and "Traceback" not in r.err
        r = cli("run", "examples/errors_by_path.pxl", "--connect", broker, "--allow-partial")
        assert r.code == 0 and "partial result" in r.err


def test_slow_agent_past_the_deadline(two_agents, slices):
    source = SCRIPTS["errors"]
    with two_agents(env={"PXL_FAILPOINTS": "slow_fragment=6"}, deadline="1.5") as (broker, _):
        started = time.monotonic()
        with pxl.connect(broker) as remote:
            got = remote.run(source, now=DEMO_NOW)
        took = time.monotonic() - started
        assert took < 1.5 + 1, took
        assert [m.agent for m in got.missing] == ["bad"]
        assert "in time" in got.missing[0].reason or "deadline" in got.missing[0].reason
        want = _one_agent_answer(slices, source)
        assert_same(_sorted(got["output"]), _sorted(want["output"]), source)
        with pxl.connect(broker) as remote:  # a longer deadline of the caller's: both answer
            got = remote.run(source, now=DEMO_NOW, deadline_s=15)
        assert got.missing == []


def test_agent_killed_during_the_query(two_agents, slices):
    source = SCRIPTS["errors"]
    with two_agents(env={"PXL_FAILPOINTS": "slow_fragment=4"}, deadline="20") as (broker, bad):
        threading.Timer(1.0, lambda: bad.send_signal(signal.SIGKILL)).start()
        started = time.monotonic()
        with pxl.connect(broker) as remote:
            got = remote.run(source, now=DEMO_NOW)
        took = time.monotonic() - started
        assert took < 4, took  # answered when the agent died, not at the 20 s deadline
        assert [m.agent for m in got.missing] == ["bad"]
        want = _one_agent_answer(slices, source)
        assert_same(_sorted(got["output"]), _sorted(want["output"]), source)


def test_stream_breaking_mid_way_loses_the_whole_agent(slices, tmp_path):
    # the left join runs on the broker, so each agent ships all its http_events rows: two
    # 64k-row batches, the bad agent's stream breaks after the first
    dirs, _ = slices
    source = ("import px\nh = px.DataFrame('http_events', start_time='-60m')\n"
              "p = px.DataFrame('process_stats', start_time='-60m')\n"
              "p = p.groupby('upid').agg(k=('rss_bytes', px.count))\n"
              "df = h.merge(p, how='left', left_on='upid', right_on='upid', "
              "suffixes=['', '_p'])\n"
              "px.display(df.agg(n=('latency', px.count)))\n")
    big = []
    for i, d in enumerate(dirs[:2]):
        out = tmp_path / f"big{i}"
        out.mkdir()
        for f in d.iterdir():
            frame = pl.read_parquet(f)
            if f.stem == "http_events":
                frame = pl.concat([frame] * (70_000 // frame.height + 1))
                assert frame.height > 65_536
            frame.write_parquet(out / f.name)
        big.append(out)
    ports = [free_port() for _ in range(3)]
    broker = f"127.0.0.1:{ports[2]}"
    with pxl_process(*agent_args(ports[0], big[0], "good")), \
            pxl_process(*agent_args(ports[1], big[1], "bad"), env={"PXL_FAILPOINTS": "stream_abort"}), \
            pxl_process("broker", "--listen", broker, "--agents",
                    f"127.0.0.1:{ports[0]},127.0.0.1:{ports[1]}",
                    "--state", str(tmp_path / "s.json")):
        with pxl.connect(broker) as remote:
            got = remote.run(source, now=DEMO_NOW)
    assert [m.agent for m in got.missing] == ["bad"]
    assert "stream" in got.missing[0].reason
    # none of the bad agent's rows, not even its first batch
    want = pxl.run(source, catalog=pxl.make_catalog(big[0]), now=DEMO_NOW)
    assert got["output"]["n"].to_list() == want["output"]["n"].to_list()


def test_wrong_token(slices, tmp_path):
    dirs, _ = slices
    ports = [free_port() for _ in range(2)]
    broker = f"127.0.0.1:{ports[1]}"
    with pxl_process(*agent_args(ports[0], dirs[0], "a0"), token="agent-secret"), \
            pxl_process("broker", "--listen", broker, "--agents", f"127.0.0.1:{ports[0]}",
                    "--state", str(tmp_path / "s.json"), token="broker-secret"):
        with pxl.connect(broker) as remote, pytest.raises(pxl.PxlError, match="token"):
            remote.run(SCRIPTS["errors"])
        # the agent refuses the broker's token: the broker knows no tables, and says why
        time.sleep(2.5)  # a heartbeat
        with pxl.connect(broker, token="broker-secret") as remote, \
                pytest.raises(pxl.CompileError, match="no table") as e:
            remote.run(SCRIPTS["errors"], now=DEMO_NOW)
        assert "token" in e.value.hint and f"127.0.0.1:{ports[0]}" in e.value.hint


def test_versions_are_checked(cluster):
    _, agents = cluster
    client = flight.FlightClient(f"grpc+tcp://{agents[0]}")
    plan = pxl.compile("import px\npx.display(px.DataFrame('http_events').head(1))",
                       pxl.make_catalog(tables={"http_events": pl.DataFrame(
                           {"time_": [1], "upid": ["u"]})}))
    from engine.distributed import split

    payload = encode(split(plan).agent_plan())
    newer = msgpack.unpackb(payload)
    newer["version"] = WIRE_VERSION + 1
    body = msgpack.packb({"version": PROTOCOL_VERSION, "plan": msgpack.packb(newer)})
    with pytest.raises(flight.FlightServerError, match=f"wire version {WIRE_VERSION + 1}"):
        list(client.do_action(flight.Action("fragment", body)))
    body = msgpack.packb({"version": PROTOCOL_VERSION + 1, "plan": payload})
    with pytest.raises(flight.FlightServerError, match="protocol"):
        list(client.do_action(flight.Action("fragment", body)))
    with pytest.raises(flight.FlightServerError, match="not msgpack|bad 'fragment'"):
        list(client.do_action(flight.Action("fragment", b"\xc1\xff garbage")))


def test_self_registration_survives_a_broker_restart(slices, tmp_path):
    dirs, _ = slices
    agent_port, b1, b2 = (free_port() for _ in range(3))
    state = tmp_path / "state.json"
    with pxl_process("broker", "--listen", f"127.0.0.1:{b1}", "--state", str(state)) as first:
        with pxl_process(*agent_args(agent_port, dirs[0], "roamer", "--broker", f"127.0.0.1:{b1}")):
            deadline = time.time() + 20
            while time.time() < deadline:
                with pxl.connect(f"127.0.0.1:{b1}") as remote:
                    agents = remote.status()["agents"]
                if agents and agents[0]["agent_state"] == "up":
                    break
                time.sleep(0.2)
            assert [a["agent_id"] for a in agents] == ["roamer"]
            assert agents[0]["origin"] == "registered"
            first.terminate()
            first.wait(timeout=20)
            # a new broker (elsewhere; the agent still heartbeats to the old one) knows it
            # from the state file alone, and queries it
            with pxl_process("broker", "--listen", f"127.0.0.1:{b2}", "--state", str(state)):
                with pxl.connect(f"127.0.0.1:{b2}") as remote:
                    got = remote.run(SCRIPTS["errors"], now=DEMO_NOW)
                assert got.missing == []
                want = _one_agent_answer(slices, SCRIPTS["errors"])
                assert_same(_sorted(got["output"]), _sorted(want["output"]), "errors")


def test_broker_without_agents_says_so(tmp_path, cli):
    port = free_port()
    with pxl_process("broker", "--listen", f"127.0.0.1:{port}", "--state",
                 str(tmp_path / "s.json")):
        r = cli("run", "examples/errors_by_path.pxl", "--connect", f"127.0.0.1:{port}")
    assert r.code == 1 and "no agent" in r.err and "Traceback" not in r.err


# --- the network: an agent in its own network namespace, cut off by taking its link down


@contextmanager
def netns_pair():
    """A network namespace joined to this one by a veth pair: (run-in-namespace prefix,
    the agent's address in it, a function that cuts (False) or restores (True) the link)."""
    tag = f"{os.getpid() % 100000}"
    ns, host, peer = f"pxl{tag}", f"pxh{tag}", f"pxp{tag}"
    subnet = 16 + os.getpid() % 200

    def ip(*args: str) -> None:
        subprocess.run(["ip", *args], check=True, capture_output=True)

    try:
        ip("netns", "add", ns)
        ip("link", "add", host, "type", "veth", "peer", "name", peer)
        ip("link", "set", peer, "netns", ns)
        ip("addr", "add", f"10.231.{subnet}.1/30", "dev", host)
        ip("link", "set", host, "up")
        ip("netns", "exec", ns, "ip", "addr", "add", f"10.231.{subnet}.2/30", "dev", peer)
        ip("netns", "exec", ns, "ip", "link", "set", peer, "up")
        ip("netns", "exec", ns, "ip", "link", "set", "lo", "up")

        def link(up: bool) -> None:
            ip("netns", "exec", ns, "ip", "link", "set", peer, "up" if up else "down")

        yield ["ip", "netns", "exec", ns], f"10.231.{subnet}.2", link
    finally:
        subprocess.run(["ip", "link", "del", host], capture_output=True)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def _can_netns() -> bool:
    if os.geteuid() != 0 or not Path("/usr/sbin/ip").exists() and not Path("/sbin/ip").exists():
        return False
    probe = subprocess.run(["ip", "netns", "add", f"pxlprobe{os.getpid()}"], capture_output=True)
    subprocess.run(["ip", "netns", "del", f"pxlprobe{os.getpid()}"], capture_output=True)
    return probe.returncode == 0


@pytest.mark.slow
@pytest.mark.skipif(not _can_netns(), reason="needs root and ip netns")
def test_agent_cut_off_by_the_network(slices, tmp_path):
    """A silent partition (packets vanish, nothing is refused): the broker answers with the
    reachable agent's rows within the deadline + 1 s, then whole again once the link is back."""
    dirs, _ = slices
    source = SCRIPTS["errors"]
    port, local_port, broker_port = free_port(), free_port(), free_port()
    with netns_pair() as (inside, address, link):
        remote_agent = f"{address}:{port}"
        env = {k: v for k, v in os.environ.items() if k != "PXL_TOKEN"}
        proc = subprocess.Popen([*inside, sys.executable, "-m", "pxl.cli",
                                 *agent_args(port, dirs[1], "far")[:2], remote_agent,
                                 *agent_args(port, dirs[1], "far")[3:]],
                                stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env=env,
                                cwd=ROOT)
        try:
            wait_up(remote_agent, proc)
            broker = f"127.0.0.1:{broker_port}"
            with pxl_process(*agent_args(local_port, dirs[0], "near")), \
                    pxl_process("broker", "--listen", broker, "--agents",
                            f"127.0.0.1:{local_port},{remote_agent}", "--state",
                            str(tmp_path / "s.json"), "--deadline", "3"):
                with pxl.connect(broker) as remote:
                    whole = remote.run(source, now=DEMO_NOW)
                assert whole.missing == []
                link(False)
                started = time.monotonic()
                with pxl.connect(broker) as remote:
                    cut = remote.run(source, now=DEMO_NOW)
                took = time.monotonic() - started
                assert took < 3 + 1, took
                assert [m.agent for m in cut.missing] == ["far"]
                want = _one_agent_answer(slices, source)
                assert_same(_sorted(cut["output"]), _sorted(want["output"]), source)
                link(True)
                deadline = time.time() + 30
                while True:
                    with pxl.connect(broker) as remote:
                        again = remote.run(source, now=DEMO_NOW)
                    if not again.missing or time.time() > deadline:
                        break
                    time.sleep(1)
                assert again.missing == []
                assert_same(_sorted(again["output"]), _sorted(whole["output"]), source)
        finally:
            proc.kill()
            proc.wait()
            proc.stderr.close()


def test_tls_from_client_to_broker_to_agents(slices, tmp_path, cli):
    """Every hop encrypted: the agent and the broker serve TLS, the broker checks the agents'
    certificate, the client the broker's; a plain-text client gets nothing."""
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    made = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days",
                           "1", "-subj", "/CN=pxl-test", "-addext", "subjectAltName=IP:127.0.0.1",
                           "-keyout", str(key), "-out", str(cert)], capture_output=True)
    if made.returncode != 0:
        pytest.skip(f"openssl cannot make a test certificate: {made.stderr.decode()[:200]}")
    dirs, _ = slices
    agent_port, broker_port = free_port(), free_port()
    tls = ("--tls-cert", str(cert), "--tls-key", str(key))
    broker = f"127.0.0.1:{broker_port}"
    env = {"PXL_TOKEN": "t0ken"}
    agent = subprocess.Popen([sys.executable, "-m", "pxl.cli",
                              *agent_args(agent_port, dirs[0], "sealed"), *tls],
                             stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, cwd=ROOT,
                             env={**os.environ, **env})
    brk = subprocess.Popen([sys.executable, "-m", "pxl.cli", "broker", "--listen", broker,
                            "--agents", f"127.0.0.1:{agent_port}", "--state",
                            str(tmp_path / "s.json"), *tls, "--tls-root", str(cert)],
                           stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, cwd=ROOT,
                           env={**os.environ, **env})
    try:
        deadline = time.time() + 60
        while True:
            try:
                with pxl.connect(broker, token="t0ken", tls_root=cert.read_bytes(),
                                 timeout_s=2) as remote:
                    got = remote.run(SCRIPTS["errors"], now=DEMO_NOW)
                if not got.missing:
                    break
            except pxl.PxlError:
                pass
            assert time.time() < deadline, brk.stderr.read1().decode()
            time.sleep(0.5)
        want = _one_agent_answer(slices, SCRIPTS["errors"])
        assert_same(_sorted(got["output"]), _sorted(want["output"]), "errors")
        with pxl.connect(broker, token="t0ken", timeout_s=3) as remote, \
                pytest.raises(pxl.PxlError):
            remote.status()  # plain text to a TLS port
        r = cli("run", "examples/errors_by_path.pxl", "--connect", broker, "--tls-root",
                str(cert), "--token", "t0ken")
        assert r.code == 0, r.err
    finally:
        for proc in (brk, agent):
            proc.kill()
            proc.wait()
            proc.stderr.close()


def test_malformed_requests_get_errors_not_crashes(cluster):
    broker, agents = cluster
    for address in (broker, agents[0]):
        client = flight.FlightClient(f"grpc+tcp://{address}")
        for action, body in (("run", msgpack.packb({"version": PROTOCOL_VERSION})),
                             ("run", msgpack.packb([1, 2])),
                             ("plan", msgpack.packb({"version": PROTOCOL_VERSION, "plan": "x"})),
                             ("register", msgpack.packb({"version": PROTOCOL_VERSION})),
                             ("nonsense", b"")):
            with pytest.raises(flight.FlightServerError, match="pxl-error"):
                list(client.do_action(flight.Action(action, body)))
        with pxl.connect(address) as remote:
            assert remote.status()  # still serving

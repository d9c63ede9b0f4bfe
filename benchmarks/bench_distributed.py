"""Distributed queries: a broker over N agents against one process over all the rows.

    python benchmarks/bench_distributed.py [--rows-per-agent 2500000] [--agents 4] [--repeat 5]
                                           [--out benchmarks/results/distributed.md] [--note TEXT]

What it does, start to end:

- Generates ``agents × rows-per-agent`` http_events-like rows (``datagen.http_events``, seeded,
  time-sorted over the hour before ``NOW``; stored as table ``http_requests``, since an agent's
  ``http_events`` has the built-in 22-column schema), deals them to the agents in time order
  (agent 0 the first slice) and writes each slice as Parquet into a temporary directory.
- Starts ``pxl agent --no-collect --data DIR`` per slice and two brokers over them (``python -m
  pxl.cli`` from this checkout, each process in its own process group; all stopped at the end,
  error or not): the *main* broker over the N agents (``--deadline 10``), and a *down* broker
  over the same agents plus one address where nothing listens (``--deadline 3``).
- The single process: the same rows in one ``MemoryCatalog``, loaded before any timing.

Measured, against the targets for distributed queries:

1. A grouped aggregate (two filters, ``groupby(['service', 'req_method'])``: 12 × 3 = 36
   groups, count + mean + sum): the bytes the broker received (``Broker.last_query``, from the
   broker's ``status`` reply: the Arrow size of the agents' partial answers) against the Arrow
   size of the raw rows, both of the columns the query reads and of all the table's columns
   (plain Arrow strings, as ``polars.DataFrame.to_arrow`` gives them). Target: ≤ 0.1 %.
2. The same query's wall time as the client sees it (``pxl.connect(broker).run``) against
   ``pxl.run`` over the single process's catalog, against one agent answering the script alone
   over its own slice (``pxl.connect(agent).run``), and against what the broker asks of one
   agent (the ``fragment`` action and the fetch of its answer, over Flight). One warm-up each,
   then ``--repeat`` rounds with the sides interleaved; medians. Also the in-process compile +
   optimize + split time. Target: broker ≤ 1.5 × single process.
3. Down agents, through the ``--deadline 3`` broker: (a) a refused connection (the extra
   address), (b) an agent frozen with SIGSTOP, (c) an agent killed with SIGKILL. Each time is the
   client's wall time for the partial answer; ``results.missing`` must name the agents down.
   Target: ≤ deadline + 1 s.
4. A grouped quantile (``groupby('service')``, p99 of latency, and a count) through the main
   broker against the single process, timed the same way: and what the agents shipped (the
   agent fragment's plan; rows and bytes received).

Before timing, each broker answer is checked equal to the single process's (rows sorted by the
group keys; floats to a relative 1e-9; a p99 from a quantile sketch to its stated 1 %) — a
mismatch, or the wrong agents missing, is printed loudly and the exit status is 1. Every target
gets PASS or FAIL in the markdown written to stdout and ``--out``, with the machine, the load
average and the commit (and engine files changed from it; from a copy, say which with --note).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
from polars.testing import assert_frame_equal

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

from bench_examples import _cpu_model  # noqa: E402
from datagen import NOW, http_events  # noqa: E402

import pxl  # noqa: E402
from engine.catalog import MemoryCatalog  # noqa: E402
from engine.distributed.split import split  # noqa: E402
from engine.distributed.wire import encode  # noqa: E402
from engine.errors import PxlError  # noqa: E402
from engine.relations import Relation, Scan  # noqa: E402
from pxl.agent.server import PROTOCOL_VERSION  # noqa: E402

DEFAULT_OUT = HERE / "results" / "distributed.md"
#: datagen's http_events-like table, under another name: an agent's store holds http_events
#: with the 22 columns of the built-in schema, and this table has 9 (a service column among them)
TABLE = "http_requests"
DOWN_DEADLINE_S = 3.0

AGGREGATE = """\
import px
df = px.DataFrame(table='http_requests', start_time='-1h')
df = df[df.req_method != 'DELETE']
df = df[df.req_method != 'PATCH']
df = df.groupby(['service', 'req_method']).agg(
    requests=('latency', px.count),
    mean_latency=('latency', px.mean),
    body_bytes=('resp_body_size', px.sum),
)
px.display(df, 'by_service_method')
"""
AGGREGATE_KEYS = ["service", "req_method"]

QUANTILE = """\
import px
df = px.DataFrame(table='http_requests', start_time='-1h')
df = df.groupby('service').agg(
    p99=('latency', px.quantile, 0.99),
    requests=('latency', px.count),
)
px.display(df, 'p99_by_service')
"""
QUANTILE_KEYS = ["service"]


# ----------------------------------------------------------------------------------------------
# Processes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Processes:
    """The agents and brokers this run starts, each in its own process group."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        log = open(self.logs / f"{name}.log", "wb")  # noqa: SIM115 - the child owns it
        # -m pxl.cli from ROOT: this checkout's modules, even when run from a copy of it
        proc = subprocess.Popen([sys.executable, "-m", "pxl.cli", *args], cwd=ROOT,
                                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
        log.close()
        self.procs[name] = proc
        return proc

    def log_tail(self, name: str, lines: int = 20) -> str:
        text = (self.logs / f"{name}.log").read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def signal(self, name: str, sig: int) -> None:
        os.killpg(self.procs[name].pid, sig)

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                for sig in (signal.SIGCONT, signal.SIGTERM):  # a frozen agent cannot stop
                    try:
                        os.killpg(proc.pid, sig)
                    except ProcessLookupError:
                        pass
        for proc in self.procs.values():
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait(timeout=5)


def wait_status(procs: Processes, name: str, address: str, ready: Callable[[dict], bool],
                timeout_s: float = 300.0) -> dict[str, Any]:
    """Poll a process's ``status`` until ``ready`` says yes (or it dies, or time runs out)."""
    end = time.monotonic() + timeout_s
    last = "no answer yet"
    while time.monotonic() < end:
        if procs.procs[name].poll() is not None:
            raise SystemExit(f"{name} exited ({procs.procs[name].returncode}):\n"
                             f"{procs.log_tail(name)}")
        try:
            with pxl.connect(address, timeout_s=2) as remote:
                status = remote.status(timeout_s=2)
            if ready(status):
                return status
            last = "not ready"
        except PxlError as exc:
            last = exc.message
        time.sleep(0.2)
    raise SystemExit(f"{name} at {address}: not ready after {timeout_s:g} s ({last}):\n"
                     f"{procs.log_tail(name)}")


def agent_loaded(rows: int) -> Callable[[dict], bool]:
    def ready(status: dict) -> bool:
        stats = {s.get("table_name"): s for s in status.get("tables", ())}
        return int((stats.get(TABLE) or {}).get("num_rows") or 0) == rows
    return ready


def broker_knows(addresses: list[str]) -> Callable[[dict], bool]:
    def ready(status: dict) -> bool:
        up = {a["address"] for a in status.get("agents", ())
              if a.get("agent_state") == "up" and a.get("tables")}
        return set(addresses) <= up
    return ready


# ----------------------------------------------------------------------------------------------
# Measuring


def scans(relation: Relation) -> list[Scan]:
    found = [relation] if isinstance(relation, Scan) else []
    for child in relation.children:
        found += scans(child)
    return found


def read_columns(source: str, catalog: MemoryCatalog) -> list[str]:
    """The columns of the table the query's scans read (time_ too when they have a window)."""
    plan = pxl.compile(source, catalog, now=NOW)
    cols: set[str] = set()
    for sink in plan.sinks:
        for scan in scans(sink):
            cols |= set(scan.columns or scan.table_schema.names)
            if scan.start is not None or scan.end is not None:
                cols.add("time_")
    return sorted(cols)


def arrow_bytes(frame: pl.DataFrame) -> int:
    """The Arrow size of a frame's columns, strings as plain Arrow strings (offsets + data)."""
    return frame.to_arrow(compat_level=pl.CompatLevel.oldest()).nbytes


def same(a: pl.DataFrame, b: pl.DataFrame, keys: list[str], what: str,
         rtol: float = 1e-9) -> bool:
    def norm(f: pl.DataFrame) -> pl.DataFrame:
        f = f.with_columns(pl.col(pl.Categorical, pl.Enum).cast(pl.String))
        return f.sort(keys)
    try:
        assert_frame_equal(norm(a), norm(b), check_exact=False, rel_tol=rtol, check_dtypes=False)
    except AssertionError as exc:
        print(f"\n!!! MISMATCH: {what}\n{exc}\n", file=sys.stderr)
        return False
    return True


def fragment_call(remote: pxl.Remote, source: str, catalog: MemoryCatalog) -> Callable[[], Any]:
    """What the broker asks of one agent, alone: the ``fragment`` action and the fetch of its
    answers over Flight (the plan compiled and split here, as the broker does)."""
    payload = encode(split(pxl.compile(source, catalog, now=NOW)).agent_plan({TABLE}))

    def call() -> list[Any]:
        reply = remote.action("fragment", {"version": PROTOCOL_VERSION, "plan": payload})
        return [remote.fetch(item["ticket"]) for item in reply.get("outputs", ())]
    return call


def compile_split(source: str, catalog: MemoryCatalog) -> float:
    """The median time to compile, optimize and split the script (the broker's own work)."""
    return statistics.median(timed(lambda: split(pxl.compile(source, catalog, now=NOW)))[0]
                             for _ in range(20))


def code_state() -> str:
    """The commit measured, and the engine files that differed from it."""
    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True,
                                  timeout=10).stdout.rstrip()
        except (OSError, subprocess.SubprocessError):
            return ""
    head = git("rev-parse", "--short", "HEAD")
    if not head:
        return ""  # a copy (say --note which commit)
    dirty = sorted(line[3:] for line in git("status", "--porcelain", "--", "engine",
                                               "pxl").splitlines())
    return f"commit {head}" + (f" with uncommitted changes to {', '.join(dirty)}" if dirty else "")


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    out = fn()
    return time.perf_counter() - started, out


def fmt_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1000
    raise AssertionError


def fmt_s(s: float) -> str:
    return f"{s * 1e3:,.0f} ms" if s < 10 else f"{s:,.1f} s"


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


# ----------------------------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows-per-agent", type=int, default=2_500_000)
    ap.add_argument("--agents", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--note", default="",
                    help="Added to the machine line, e.g. the commit when run from a copy.")
    opts = ap.parse_args()
    n_agents, per_agent, repeat = opts.agents, opts.rows_per_agent, max(1, opts.repeat)
    total = n_agents * per_agent
    load_start = loadavg()
    print(f"{n_agents} agents × {per_agent:,} rows = {total:,} rows; {repeat} runs; "
          f"load {load_start}", flush=True)

    t, http = timed(lambda: http_events(total))
    print(f"generated {total:,} rows in {t:.1f} s", flush=True)
    ok = True
    with tempfile.TemporaryDirectory(prefix="pxl-bench-dist-") as tmp:
        tmpdir = Path(tmp)
        for i in range(n_agents):
            d = tmpdir / f"agent{i}"
            d.mkdir()
            http.slice(i * per_agent, per_agent).write_parquet(d / f"{TABLE}.parquet")
        (tmpdir / "logs").mkdir()
        procs = Processes(tmpdir / "logs")
        try:
            ok = run(opts, http, tmpdir, procs, load_start)
        finally:
            procs.stop_all()
    return 0 if ok else 1


def run(opts: argparse.Namespace, http: pl.DataFrame, tmpdir: Path, procs: Processes,
        load_start: str) -> bool:
    n_agents, per_agent, repeat = opts.agents, opts.rows_per_agent, max(1, opts.repeat)
    total = n_agents * per_agent
    ok = True

    # --- processes
    agents = [f"127.0.0.1:{free_port()}" for _ in range(n_agents)]
    started = time.perf_counter()
    for i, address in enumerate(agents):
        procs.start(f"agent{i}", "agent", "--listen", address, "--data", str(tmpdir / f"agent{i}"),
                    "--no-collect", "--node", f"agent{i}", "--budget-mb", "4096")
    # the single process's catalog loads while the agents do
    catalog = MemoryCatalog()
    catalog.add(TABLE, http)
    catalog.frame(TABLE)  # materialised now, not in the first timed run
    for i, address in enumerate(agents):
        wait_status(procs, f"agent{i}", address, agent_loaded(per_agent))
    print(f"agents up, {per_agent:,} rows each, in {time.perf_counter() - started:.1f} s",
          flush=True)
    broker = f"127.0.0.1:{free_port()}"
    down_broker = f"127.0.0.1:{free_port()}"
    nowhere = f"127.0.0.1:{free_port()}"  # nothing listens here
    procs.start("broker", "broker", "--listen", broker, "--agents", ",".join(agents),
                "--state", str(tmpdir / "broker.json"), "--deadline", "10")
    procs.start("broker_down", "broker", "--listen", down_broker,
                "--agents", ",".join([*agents, nowhere]), "--state",
                str(tmpdir / "broker_down.json"), "--deadline", f"{DOWN_DEADLINE_S:g}")
    wait_status(procs, "broker", broker, broker_knows(agents))
    wait_status(procs, "broker_down", down_broker, broker_knows(agents))
    client = pxl.connect(broker, timeout_s=120)
    down_client = pxl.connect(down_broker, timeout_s=120)
    agent0 = pxl.connect(agents[0], timeout_s=120)

    def last_query() -> dict[str, Any]:
        return client.status().get("last_query") or {}

    # --- 1. bytes
    cols = read_columns(AGGREGATE, catalog)
    raw_read = arrow_bytes(http.select(cols))
    raw_all = arrow_bytes(http)
    single = pxl.run(AGGREGATE, catalog=catalog, now=NOW)["by_service_method"]
    via_broker = client.run(AGGREGATE, now=NOW)
    if via_broker.missing:
        print(f"!!! agents missing: {via_broker.missing}", file=sys.stderr)
        ok = False
    ok &= same(via_broker["by_service_method"], single, AGGREGATE_KEYS, "aggregate: broker")
    lq = last_query()
    received = int(lq.get("bytes_received") or 0)
    rows_received = sum((lq.get("rows_received") or {}).values())
    groups = single.height
    frac_read, frac_all = received / raw_read, received / raw_all

    # --- 2. wall time, interleaved
    sides: dict[str, Callable[[], Any]] = {
        "broker": lambda: client.run(AGGREGATE, now=NOW),
        "single": lambda: pxl.run(AGGREGATE, catalog=catalog, now=NOW),
        "agent0": lambda: agent0.run(AGGREGATE, now=NOW),
        "fragment0": fragment_call(agent0, AGGREGATE, catalog),
    }
    one_agent = agent0.run(AGGREGATE, now=NOW)["by_service_method"]
    expect0 = pxl.run(AGGREGATE, catalog=_catalog(http.slice(0, per_agent)), now=NOW)
    ok &= same(one_agent, expect0["by_service_method"], AGGREGATE_KEYS, "aggregate: agent 0")
    times = interleave(sides, repeat)
    med = {k: statistics.median(v) for k, v in times.items()}
    ratio = med["broker"] / med["single"]
    compile_s = compile_split(AGGREGATE, catalog)

    # --- 4. quantile
    q_single = pxl.run(QUANTILE, catalog=catalog, now=NOW)["p99_by_service"]
    q_broker = client.run(QUANTILE, now=NOW)
    qlq = last_query()
    q_received = int(qlq.get("bytes_received") or 0)
    q_rows = sum((qlq.get("rows_received") or {}).values())
    q_fragment = pxl.explain(QUANTILE, catalog=catalog, now=NOW, distributed=True)
    q_shipped = fragment_text(q_fragment)
    # a sketch answers within its stated error (1 % relative), shipped rows exactly
    q_sketch = "Sketch" in q_shipped
    joined = q_broker["p99_by_service"].join(q_single, on=QUANTILE_KEYS, suffix="_single")
    q_error = (joined["p99"] / joined["p99_single"] - 1).abs().max() if joined.height else None
    ok &= same(q_broker["p99_by_service"], q_single, QUANTILE_KEYS, "quantile: broker",
               rtol=0.0101 if q_sketch else 1e-9)
    q_cols = read_columns(QUANTILE, catalog)
    q_raw = arrow_bytes(http.select(q_cols))
    q_times = interleave({"broker": lambda: client.run(QUANTILE, now=NOW),
                          "single": lambda: pxl.run(QUANTILE, catalog=catalog, now=NOW),
                          "fragment0": fragment_call(agent0, QUANTILE, catalog)}, repeat)
    q_med = {k: statistics.median(v) for k, v in q_times.items()}
    q_compile_s = compile_split(QUANTILE, catalog)

    # --- 3. down agents (through the --deadline 3 broker)
    down_runs = max(3, min(repeat, 5))
    down: dict[str, list[float]] = {}
    down_missing: dict[str, str] = {}

    def partial(case: str, expect: set[str]) -> None:
        nonlocal ok
        elapsed: list[float] = []
        for _ in range(down_runs):
            t, res = timed(lambda: down_client.run(AGGREGATE, now=NOW))
            got = {m.address for m in res.missing}
            if got != expect:
                print(f"!!! {case}: missing {sorted(got)}, expected {sorted(expect)}",
                      file=sys.stderr)
                ok = False
            elapsed.append(t)
            down_missing[case] = "; ".join(f"{m.agent}: {m.reason}" for m in res.missing)
        down[case] = elapsed
        print(f"  {case}: {', '.join(fmt_s(x) for x in elapsed)}", flush=True)

    print("down agents (deadline 3 s):", flush=True)
    down_client.run(AGGREGATE, now=NOW)  # warm-up
    partial("refused", {nowhere})
    victim = f"agent{n_agents - 1}"
    procs.signal(victim, signal.SIGSTOP)
    try:
        partial("frozen", {nowhere, agents[-1]})
    finally:
        procs.signal(victim, signal.SIGCONT)
    wait_status(procs, "broker_down", down_broker, broker_knows(agents))
    procs.signal(victim, signal.SIGKILL)
    procs.procs[victim].wait(timeout=10)
    partial("killed", {nowhere, agents[-1]})
    load_end = loadavg()
    code = "; ".join(x for x in (code_state(), opts.note) if x)

    # --- report
    target_bytes = frac_read <= 0.001 and frac_all <= 0.001
    target_time = ratio <= 1.5
    worst_down = max(max(v) for v in down.values())
    target_down = worst_down <= DOWN_DEADLINE_S + 1
    md = report(locals())
    print()
    print(md)
    opts.out.parent.mkdir(parents=True, exist_ok=True)
    opts.out.write_text(md)
    print(f"written to {opts.out}")
    return ok


def _catalog(frame: pl.DataFrame) -> MemoryCatalog:
    catalog = MemoryCatalog()
    catalog.add(TABLE, frame)
    return catalog


def interleave(sides: dict[str, Callable[[], Any]], repeat: int) -> dict[str, list[float]]:
    for fn in sides.values():  # warm-up
        fn()
    times: dict[str, list[float]] = {k: [] for k in sides}
    for r in range(repeat):
        for name, fn in sides.items():
            times[name].append(timed(fn)[0])
        print(f"  run {r + 1}: " + ", ".join(f"{k} {fmt_s(v[-1])}" for k, v in times.items()),
              flush=True)
    return times


def fragment_text(explained: str) -> str:
    """The first agent fragment's plan, one line (what each agent ships)."""
    lines: list[str] = []
    inside = False
    for line in explained.splitlines():
        if line.startswith("== agent fragment"):
            if lines:
                break
            inside = True
            continue
        if line.startswith("=="):
            inside = False
        elif inside and line.strip():
            lines.append(line.strip())
    return " ← ".join(lines)


def report(v: dict[str, Any]) -> str:
    n_agents, per_agent, total = v["n_agents"], v["per_agent"], v["total"]
    med, times, q_med = v["med"], v["times"], v["q_med"]

    def verdict(passed: bool) -> str:
        return "PASS" if passed else "FAIL"

    def spread(xs: list[float]) -> str:
        return f"{fmt_s(min(xs))}–{fmt_s(max(xs))}"

    lines = [
        "# Distributed queries: broker over agents vs one process",
        "",
        f"Measured {dt.date.today().isoformat()} by `benchmarks/bench_distributed.py`: "
        f"{n_agents} agents × {per_agent:,} rows = {total:,} http_events-like rows "
        f"(`datagen.http_events` as table `{TABLE}`, dealt to the agents in time order, loaded "
        f"from Parquet with `pxl agent --no-collect --data DIR`), all processes on one machine "
        f"(nproc {os.cpu_count()}, {_cpu_model()}; Python {platform.python_version()}, "
        f"Polars {pl.__version__}; load {v['load_start']} at the start, {v['load_end']} at the "
        f"end; {v['code']}). Times are medians of {v['repeat']} runs after a warm-up, the sides "
        f"interleaved. {n_agents} agents, 2 brokers and the client share {os.cpu_count()} cores "
        f"(the agents cannot all run at once), and the machine is shared and noisy: read "
        f"ratios from one run, not across runs.",
        "",
        "## Targets",
        "",
        "| target | measured | limit | |",
        "|---|---|---|---|",
        f"| 1. bytes the broker received / raw rows (columns read) | "
        f"{fmt_bytes(v['received'])} / {fmt_bytes(v['raw_read'])} = {v['frac_read']:.6%} | "
        f"≤ 0.1 % | {verdict(v['frac_read'] <= 0.001)} |",
        f"| 1. … / raw rows (all {len(v['http'].columns)} columns) | "
        f"{fmt_bytes(v['received'])} / {fmt_bytes(v['raw_all'])} = {v['frac_all']:.6%} | "
        f"≤ 0.1 % | {verdict(v['frac_all'] <= 0.001)} |",
        f"| 2. broker wall time / one process over all rows | "
        f"{fmt_s(med['broker'])} / {fmt_s(med['single'])} = {v['ratio']:.2f}× | ≤ 1.5× | "
        f"{verdict(v['target_time'])} |",
        f"| 3. partial answer, an agent down (worst of {len(v['down'])} cases × "
        f"{v['down_runs']} runs) | {fmt_s(v['worst_down'])} | ≤ deadline "
        f"{DOWN_DEADLINE_S:g} s + 1 s | {verdict(v['target_down'])} |",
        "",
        "## 1–2. Grouped aggregate",
        "",
        "```",
        AGGREGATE.rstrip(),
        "```",
        "",
        f"{v['groups']} groups. The agents answered {v['rows_received']} partial rows "
        f"({n_agents} × ≤ {v['groups']}), {fmt_bytes(v['received'])} as Arrow "
        f"(`Broker.last_query['bytes_received']`, the sum of the answers' Arrow `nbytes`). "
        f"Raw: the Arrow size (`nbytes`, plain strings) of the {total:,} rows' columns the query "
        f"reads ({', '.join(v['cols'])}): {fmt_bytes(v['raw_read'])}; of all columns: "
        f"{fmt_bytes(v['raw_all'])}.",
        "",
        "| side | median | runs (min–max) | vs one process |",
        "|---|---|---|---|",
        f"| broker over {n_agents} agents (`pxl.connect(broker).run`) | {fmt_s(med['broker'])} | "
        f"{spread(times['broker'])} | {med['broker'] / med['single']:.2f}× |",
        f"| one process over all {total:,} rows (`pxl.run`, catalog in memory) | "
        f"{fmt_s(med['single'])} | {spread(times['single'])} | 1.00× |",
        f"| one agent alone over its {per_agent:,} rows (`pxl.connect(agent).run`) | "
        f"{fmt_s(med['agent0'])} | {spread(times['agent0'])} | "
        f"{med['agent0'] / med['single']:.2f}× |",
        f"| *where the broker's time goes:* agent 0's fragment alone (`fragment` action + fetch "
        f"over Flight) | {fmt_s(med['fragment0'])} | {spread(times['fragment0'])} | "
        f"{med['fragment0'] / med['single']:.2f}× |",
        f"| *…* compile + optimize + split (in process) | {fmt_s(v['compile_s'])} | | |",
        "",
        "## 3. An agent down (broker `--deadline 3`)",
        "",
        f"The broker knows the {n_agents} agents and one address where nothing listens. Client "
        f"wall time for the partial answer (`results.missing` checked each run):",
        "",
        "| case | runs | worst | missing (reason) |",
        "|---|---|---|---|",
    ]
    cases = {"refused": "refused connection (the extra address)",
             "frozen": f"+ agent{n_agents - 1} frozen (SIGSTOP)",
             "killed": f"+ agent{n_agents - 1} killed (SIGKILL)"}
    for case, label in cases.items():
        xs = v["down"][case]
        lines.append(f"| {label} | {', '.join(fmt_s(x) for x in xs)} | {fmt_s(max(xs))} | "
                     f"{v['down_missing'][case]} |")
    lines += [
        "",
        "## 4. Grouped quantile",
        "",
        "```",
        QUANTILE.rstrip(),
        "```",
        "",
        f"Each agent ran `{v['q_shipped']}` and shipped {v['q_rows']:,} rows, "
        f"{fmt_bytes(v['q_received'])} as Arrow ({v['q_received'] / v['q_raw']:.2%} of the "
        f"raw Arrow size of the columns read, {fmt_bytes(v['q_raw'])}). Largest relative "
        f"difference of the broker's p99 from the one process's: {v['q_error']:.3%}"
        + (" (a sketch: stated error ±1 %)." if v["q_sketch"] else " (rows shipped: exact)."),
        "",
        "| side | median | runs (min–max) | vs one process |",
        "|---|---|---|---|",
        f"| broker over {n_agents} agents | {fmt_s(q_med['broker'])} | "
        f"{spread(v['q_times']['broker'])} | {q_med['broker'] / q_med['single']:.2f}× |",
        f"| one process over all {total:,} rows | {fmt_s(q_med['single'])} | "
        f"{spread(v['q_times']['single'])} | 1.00× |",
        f"| *where the broker's time goes:* agent 0's fragment alone (action + fetch) | "
        f"{fmt_s(q_med['fragment0'])} | {spread(v['q_times']['fragment0'])} | "
        f"{q_med['fragment0'] / q_med['single']:.2f}× |",
        f"| *…* compile + optimize + split (in process) | {fmt_s(v['q_compile_s'])} | | |",
        "",
    ]
    if not v["ok"]:
        lines += ["**A check failed (a result mismatch or wrong missing agents): see the "
                  "run's output.**", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())

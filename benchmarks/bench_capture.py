"""What HTTP capture costs: loopback nginx (1 worker) driven by wrk, with and without HttpEvents.

    sudo /work/venv/bin/python benchmarks/bench_capture.py          # 5 s runs × 3, ~3 min
    sudo /work/venv/bin/python benchmarks/bench_capture.py --seconds 3 --repeat 5 \
        --runs 'ring drained only,full capture'                     # baseline is always run

Runs, interleaved and repeated (the machine is shared: compare runs next to each other):

- **baseline**: no tracing;
- **tracepoints only**: the socket tracer attached with a port filter nothing matches, so every
  syscall pays the tracepoints and nothing is captured (the floor of this design);
- **ring drained only**: the socket tracer capturing nginx's port, its ring buffer drained and
  the records thrown away (the floor of capturing payloads: tracepoints, copies, the drain);
- **full capture**: HttpEvents tracing every process on nginx's port (nginx and wrk: two
  records per request), draining in this process, appending to a TableStore;
- **full capture, state machine only**: the same with the batch path off (every record through
  the per-connection parser, as before the batch path existed);
- **server only**: the same, limited to nginx's worker (``include_pids``);
- **paced**: full capture at a load wrk paces well below saturation (a Lua ``delay()``), to
  see whether the collector keeps up without losing events.

For each: requests/s, the ratio to the baseline, events lost in the kernel, http_events rows,
how long the collector took after wrk stopped to drain what was left, and the collector's CPU
time (this process: getrusage) per captured row. Last, the RSS of an agent with every default
collector started and idle, over the RSS before they were started.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from tests.test_collectors_live import Nginx  # noqa: E402  (the tests' nginx fixture)

PACE_LUA = "function delay() return {ms} end\n"


def cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class WorkCpu:
    """CPU time of the traffic itself: the nginx worker (from /proc) and wrk (a child process,
    from RUSAGE_CHILDREN once it is reaped), both including the BPF programs they run. Per
    request, it is what capture costs the traced programs, far steadier than req/s on a shared
    machine."""

    worker = 0  # the nginx worker's pid, set by main()

    def __init__(self) -> None:
        self.t0 = self._now()

    @classmethod
    def _now(cls) -> float:
        tick = os.sysconf("SC_CLK_TCK")
        fields = Path(f"/proc/{cls.worker}/stat").read_text().rsplit(")", 1)[1].split()
        child = resource.getrusage(resource.RUSAGE_CHILDREN)
        return (int(fields[11]) + int(fields[12])) / tick + child.ru_utime + child.ru_stime

    def us_per_request(self, requests: int) -> float:
        return (self._now() - self.t0) / max(requests, 1) * 1e6


def wrk(url: str, seconds: float, conns: int, script: str | None = None) -> subprocess.Popen:
    cmd = ["wrk", "-t1", f"-c{conns}", f"-d{seconds:g}s", url]
    if script:
        cmd[1:1] = ["-s", script]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def wrk_result(proc: subprocess.Popen) -> tuple[int, float]:
    out = proc.communicate()[0]
    n = int(re.search(r"(\d+) requests in", out).group(1))
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    return n, rate


def run_baseline(url: str, seconds: float, conns: int, script: str | None = None) -> dict:
    cpu = WorkCpu()
    n, rate = wrk_result(wrk(url, seconds, conns, script))
    return {"requests": n, "rate": rate, "work_us": cpu.us_per_request(n)}


def run_tracepoints_only(url: str, seconds: float, conns: int) -> dict:
    from collectors.socket_trace import SocketTrace, SocketTraceSettings

    trace = SocketTrace(SocketTraceSettings(ports=(1,)))  # attached, matching nothing
    trace.start()
    try:
        cpu = WorkCpu()
        n, rate = wrk_result(wrk(url, seconds, conns))
        return {"requests": n, "rate": rate, "lost": trace.lost, "work_us": cpu.us_per_request(n)}
    finally:
        trace.close()


def run_drain_only(url: str, seconds: float, conns: int, port: int) -> dict:
    import select

    from collectors.socket_trace import SocketTrace, SocketTraceSettings

    trace = SocketTrace(SocketTraceSettings(ports=(port,)))
    trace.start()
    try:
        ring = trace.ring
        records = 0
        c0 = cpu_s()
        work = WorkCpu()
        proc = wrk(url, seconds, conns)
        while proc.poll() is None:
            select.select([ring.fileno()], [], [], 0.05)
            time.sleep(0.05)  # as HttpEvents gathers
            records += len(ring.consume_raw()[1])
        while ring.pending():
            records += len(ring.consume_raw()[1])
        used = cpu_s() - c0
        n, rate = wrk_result(proc)
        return {"requests": n, "rate": rate, "lost": trace.lost, "events": records,
                "cpu_s": used, "cpu_us_per_event": used / max(records, 1) * 1e6,
                "work_us": work.us_per_request(n), "agent_us": used / max(n, 1) * 1e6}
    finally:
        trace.close()


def run_capture(url: str, seconds: float, conns: int, settings: dict,
                script: str | None = None) -> dict:
    from collectors.http_events import HttpEvents
    from collectors.runtime import settle
    from engine.store import TableStore

    store = TableStore(budget_bytes=1 << 30)
    collector = HttpEvents(store).configure(**settings)
    collector.open()
    collector.load()
    collector.attach()
    settle()  # as pxl agent does once its collectors are started
    try:
        c0 = cpu_s()
        work = WorkCpu()
        proc = wrk(url, seconds, conns, script)
        while proc.poll() is None:
            collector.poll(timeout_ms=100)
        t_end = time.monotonic()
        n, rate = wrk_result(proc)
        work_us = work.us_per_request(n)
        while collector.trace.ring.pending():  # the backlog wrk left behind
            collector.poll(timeout_ms=0)
        drain_s = time.monotonic() - t_end
        collector.poll(timeout_ms=0)
        used = cpu_s() - c0
        stats = collector.stats()
        rows = stats["http_rows"]
        return {"requests": n, "rate": rate, "lost": stats["lost_events"], "rows": rows,
                "drain_s": drain_s, "cpu_s": used, "cpu_us_per_row": used / max(rows, 1) * 1e6,
                "events": stats["events"], "parse_errors": stats["http.parse_errors"],
                "batch_path_rows": stats["http.batch_rows"], "work_us": work_us,
                "agent_us": used / max(n, 1) * 1e6,
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    finally:
        collector.close()
        store.close()


def idle_rss(seconds: float) -> tuple[float, float, float]:
    """RSS before and after starting every default collector (idle for ``seconds``), and the
    CPU they used while idle."""
    from collectors.registry import default_collectors
    from engine.store import TableStore

    before = rss_mb()
    store = TableStore()
    collectors = default_collectors(store)
    for c in collectors:
        c.open()
        c.load()
        c.attach()
    try:
        c0, end = cpu_s(), time.monotonic() + seconds
        while time.monotonic() < end:
            for c in collectors:
                c.poll(timeout_ms=30)
        return before, rss_mb(), cpu_s() - c0
    finally:
        for c in collectors:
            c.close()
        store.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--conns", type=int, default=4, help="wrk connections")
    parser.add_argument("--pace-ms", type=float, default=1.0,
                        help="paced run: wrk waits this long before each request")
    parser.add_argument("--pace-conns", type=int, default=8)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "capture.md"),
                        help="where the markdown report goes ('' for nowhere)")
    parser.add_argument("--runs", default="",
                        help="comma-separated run names to do (default: all), e.g. "
                             "'baseline,full capture'")
    args = parser.parse_args(argv)
    if os.geteuid() != 0 or not shutil.which("wrk") or not shutil.which("nginx"):
        print("needs root, nginx and wrk (apt-get install nginx-light wrk)", file=sys.stderr)
        return 2

    import polars  # noqa: F401  (loaded before the RSS baseline, as in any agent)

    import engine.store  # noqa: F401

    nginx = Nginx()
    WorkCpu.worker = nginx.worker
    tmp = tempfile.mkdtemp(prefix="pxl-bench-")
    pace = Path(tmp) / "pace.lua"
    pace.write_text(PACE_LUA.format(ms=args.pace_ms))
    url = f"http://127.0.0.1:{nginx.port}/bench"
    full = {"include_ports": (nginx.port,)}
    server = {"include_ports": (nginx.port,), "include_pids": (nginx.worker,)}
    slow = {"include_ports": (nginx.port,), "batch_path": False}
    results: dict[str, list[dict]] = {}
    try:
        rss = idle_rss(3.0)
        wrk_result(wrk(url, 1, args.conns))  # warm-up
        for _ in range(args.repeat):
            runs = {
                "baseline": lambda: run_baseline(url, args.seconds, args.conns),
                "tracepoints only": lambda: run_tracepoints_only(url, args.seconds, args.conns),
                "ring drained only": lambda: run_drain_only(url, args.seconds, args.conns,
                                                            nginx.port),
                "full capture": lambda: run_capture(url, args.seconds, args.conns, full),
                "full capture, state machine only": lambda: run_capture(
                    url, args.seconds, args.conns, slow),
                "server only": lambda: run_capture(url, args.seconds, args.conns, server),
                "paced baseline": lambda: run_baseline(url, args.seconds, args.pace_conns,
                                                       str(pace)),
                "paced capture": lambda: run_capture(url, args.seconds, args.pace_conns, full,
                                                     str(pace)),
            }
            wanted = [r.strip() for r in args.runs.split(",") if r.strip()]
            unknown = [r for r in wanted if r not in runs]
            if unknown:
                raise SystemExit(f"unknown run {unknown[0]!r}; runs: {', '.join(runs)}")
            if wanted:
                runs = {k: v for k, v in runs.items() if k in wanted or k == "baseline"
                        or (k == "paced baseline" and any(w.startswith("paced") for w in wanted))}
            for name, run in runs.items():
                r = run()
                results.setdefault(name, []).append(r)
                print(f"  {name}: {r}", file=sys.stderr, flush=True)
    finally:
        nginx.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    report(results, rss, args)
    return 0


def _mean(rs: list[dict], key: str) -> float:
    """The median over the repeats (robust to a repeat the machine's other load spoiled)."""
    values = [r[key] for r in rs if key in r]
    return statistics.median(values) if values else float("nan")


def _ratio(rs: list[dict], base: list[dict]) -> float:
    """The median over the repeats of each repeat's rate over its own baseline's (the runs of a
    repeat are next to each other in time, so this cancels slow drifts in the machine's load)."""
    return statistics.median(r["rate"] / b["rate"] for r, b in zip(rs, base, strict=False))


def report(results: dict[str, list[dict]], rss: tuple[float, float, float],
           args: argparse.Namespace) -> None:
    """Print the results as markdown and write them to ``args.out`` with the machine noted."""
    from bench_examples import _cpu_model

    load = os.getloadavg()[0]
    lines = [f"## HTTP capture cost: nginx (1 worker) + wrk -t1, {args.seconds:g} s runs × "
             f"{args.repeat}",
             "",
             "Command: `" + " ".join(["python", "benchmarks/bench_capture.py", *sys.argv[1:]])
             + "`",
             "",
             f"{time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} vCPUs ({_cpu_model()}), "
             f"Linux {os.uname().release}, Python {sys.version.split()[0]}, load average "
             f"{load:.1f} at the end. Medians over the repeats; 'vs baseline' is the median of "
             "each repeat's ratio to the baseline run of the same repeat. CPU per request: "
             "nginx's worker and wrk (the BPF programs they run included), the collector; "
             "'CPU vs baseline' is both over the baseline's nginx + wrk CPU per request "
             "(steadier than req/s here).",
             "",
             "| run | req/s | vs baseline | lost events | http rows | drain after (s) | "
             "collector CPU (s) | CPU per row (µs) | nginx + wrk CPU per request (µs) | "
             "collector CPU per request (µs) | CPU vs baseline |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, rs in results.items():
        base = results["paced baseline" if name.startswith("paced") else "baseline"]
        rate = _mean(rs, "rate")
        rows = [f"{name}", f"{rate:,.0f}", f"{(_ratio(rs, base) - 1) * 100:+.1f} %"]
        if "rows" in rs[0]:
            rows += [f"{max(r['lost'] for r in rs)}", f"{_mean(rs, 'rows'):,.0f}",
                     f"{_mean(rs, 'drain_s'):.1f}", f"{_mean(rs, 'cpu_s'):.1f}",
                     f"{_mean(rs, 'cpu_us_per_row'):.1f}"]
        elif "events" in rs[0]:  # drained only: CPU per record, not per row
            rows += [f"{max(r['lost'] for r in rs)}", "", "", f"{_mean(rs, 'cpu_s'):.1f}",
                     f"({_mean(rs, 'cpu_us_per_event'):.1f} per record)"]
        elif "lost" in rs[0]:
            rows += ["0", "", "", "", ""]
        else:
            rows += ["", "", "", "", ""]
        work, agent = _mean(rs, "work_us"), _mean(rs, "agent_us") if "agent_us" in rs[0] else 0.0
        rows += [f"{work:.1f}", f"{agent:.1f}" if "agent_us" in rs[0] else "",
                 f"{((work + agent) / _mean(base, 'work_us') - 1) * 100:+.1f} %"]
        lines.append("| " + " | ".join(rows) + " |")
    before, after, idle_cpu = rss
    lines += ["", f"Idle agent (process_stats + http_events + proc_exit started, 3 s): RSS "
                  f"{after:.0f} MB ({after - before:+.0f} MB over Python + Polars + the store, "
                  f"{before:.0f} MB); {idle_cpu:.2f} s CPU in 3 s."]
    text = "\n".join(lines) + "\n"
    print("\n" + text)
    if args.out:
        Path(args.out).write_text("# Capture cost (benchmarks/bench_capture.py)\n\n" + text)
        print(f"written to {args.out}", file=sys.stderr)


if __name__ == "__main__":
    raise SystemExit(main())

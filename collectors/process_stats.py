"""process_stats from /proc: CPU, memory and I/O counters of every process, once per interval.

No BPF: a plain reader with the collectors' lifecycle. Counters are cumulative, as in Pixie.
It also upserts the process metadata df.ctx reads (pid, start time, cmdline, container id,
hostname) for every process it sees.

Example::

    collector = ProcessStats(store).configure(interval_s=1.0)
    collector.open(); collector.load(); collector.attach()
    while running:
        collector.poll(timeout_ms=100)
    collector.close()
"""

from __future__ import annotations

import socket
import time
from typing import Any

import polars as pl

from collectors.procfs import cmdline, container_id, host_id, list_pids, make_upid, read_process
from engine.errors import DataError

__all__ = ["ProcessStats"]

_COLUMNS = ("major_faults", "minor_faults", "cpu_utime_ns", "cpu_ktime_ns", "num_threads",
            "vsize_bytes", "rss_bytes", "rchar_bytes", "wchar_bytes", "read_bytes", "write_bytes")


class ProcessStats:
    """A collector of the process_stats table (and of process metadata)."""

    name = "process_stats"
    tables = ("process_stats",)

    def __init__(self, store: Any, *, host: int | None = None) -> None:
        self.store = store
        self.host = host if host is not None else host_id()
        self.interval_ns = 1_000_000_000
        self.pids: frozenset[int] | None = None
        self._next = 0
        self._known: set[str] = set()
        self.counters = {"samples": 0, "rows": 0, "vanished": 0, "rejected_batches": 0}

    # --- lifecycle
    def open(self) -> ProcessStats:
        if read_process(1) is None and read_process(_self_pid()) is None:
            raise DataError("cannot read /proc", hint="run on Linux with /proc mounted")
        return self

    def configure(self, *, interval_s: float = 1.0, pids: list[int] | None = None) -> ProcessStats:
        self.interval_ns = max(1, int(interval_s * 1e9))
        self.pids = frozenset(pids) if pids else None
        return self

    def load(self) -> ProcessStats:
        return self

    def attach(self) -> ProcessStats:
        return self

    def poll(self, timeout_ms: int = 0) -> int:
        """Take a sample if the interval has passed; returns the rows appended."""
        now = time.time_ns()
        if now < self._next:
            time.sleep(min(timeout_ms / 1000, (self._next - now) / 1e9))
            return 0
        self._next = now + self.interval_ns
        return self.sample(now)

    def close(self) -> None:
        self._known.clear()

    def stats(self) -> dict[str, int]:
        return dict(self.counters)

    # --- work
    def sample(self, now: int) -> int:
        pids = self.pids if self.pids is not None else list_pids()
        cols: dict[str, list[Any]] = {"upid": [], **{c: [] for c in _COLUMNS}}
        new_meta = []
        for pid in pids:
            p = read_process(pid)
            if p is None:
                self.counters["vanished"] += 1
                continue
            upid = make_upid(self.host, pid, p.start_ns)
            if upid not in self._known:
                self._known.add(upid)
                new_meta.append(self._metadata(upid, pid, p.start_ns, p.comm))
            cols["upid"].append(upid)
            for name, value in zip(_COLUMNS, (p.major_faults, p.minor_faults, p.utime_ns,
                                             p.stime_ns, p.num_threads, p.vsize_bytes, p.rss_bytes,
                                             p.rchar, p.wchar, p.read_bytes, p.write_bytes),
                                   strict=True):
                cols[name].append(value)
        if new_meta:
            self.store.upsert_metadata(new_meta)
        n = len(cols["upid"])
        if not n:
            return 0
        frame = pl.DataFrame({"time_": pl.Series([now] * n, dtype=pl.Int64)
                              .cast(pl.Datetime("ns")),
                              **{k: pl.Series(v, dtype=pl.String if k == "upid" else pl.Int64)
                                 for k, v in cols.items()}})
        try:
            self.store.append("process_stats", frame)
        except DataError:
            self.counters["rejected_batches"] += 1
            raise
        self.counters["samples"] += 1
        self.counters["rows"] += n
        return n

    def _metadata(self, upid: str, pid: int, start_ns: int, comm: str) -> dict[str, Any]:
        host = socket.gethostname()
        return {"upid": upid, "pid": pid, "start_time": start_ns, "cmdline": cmdline(pid) or comm,
                "hostname": host, "container_id": container_id(pid), "node": host}


def _self_pid() -> int:
    import os

    return os.getpid()

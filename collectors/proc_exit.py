"""proc_exit_events from the process events tracer, and the pid → upid cache collectors share.

:class:`ProcExit` runs :class:`~collectors.proc_events.ProcEvents` (sched_process_exec/exit →
ring buffer): each exit becomes a ``proc_exit_events`` row (time_, upid, exit_code, signal,
comm) and each exec a metadata upsert. Both feed a :class:`UpidCache`, which the socket-tracing
collector reads to name the processes behind its records: a process that lived for a few
milliseconds is gone from /proc when its records are processed, but its exec event said when it
started, and its exit event says until when its pid meant it.

Example (as root)::

    upids = UpidCache()
    collector = ProcExit(store, upids=upids)
    collector.open(); collector.load(); collector.attach()
    while running:
        collector.poll(timeout_ms=100)
    collector.close()
"""

from __future__ import annotations

import os
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

import polars as pl

from collectors.procfs import (
    boot_time_ns,
    cmdline,
    container_id,
    host_id,
    make_upid,
    read_process,
)
from collectors.registry import StatsReporter

__all__ = ["ProcExit", "UpidCache", "metadata_row", "start_ns_of"]

_TICK_NS = 1_000_000_000 // os.sysconf("SC_CLK_TCK")
_SECOND = 1_000_000_000


def start_ns_of(start_boottime_ns: int) -> int:
    """A start time from the kernel (ns since boot) as /proc gives it: whole clock ticks after
    the boot time, ns since the epoch (what upids are built from everywhere)."""
    return boot_time_ns() + start_boottime_ns // _TICK_NS * _TICK_NS


def metadata_row(upid: str, pid: int, start_ns: int, comm: str = "") -> dict[str, Any]:
    """The metadata row of one process, as ProcessStats upserts it."""
    host = socket.gethostname()
    return {"upid": upid, "pid": pid, "start_time": start_ns, "cmdline": cmdline(pid) or comm,
            "hostname": host, "container_id": container_id(pid), "node": host}


@dataclass(slots=True)
class _Entry:
    start_ns: int
    upid: str
    checked_ns: int  # when /proc or an event last confirmed it (monotonic clock)
    exited_ns: int = 0  # wall time of its exit event, 0 while alive
    comm: str = ""


class UpidCache:
    """tgid → upid, read from /proc once per process and kept right by exec/exit events.

    ``upid(tgid, ts_ns)`` names the process that had ``tgid`` at wall time ``ts_ns``. Without
    events (no :class:`ProcExit` running) an entry is re-read from /proc when older than
    ``revalidate_s``, which notices a reused pid; with them, an exit marks the entry and a later
    ``ts_ns`` reads /proc again. Exited entries are dropped ``grace_s`` after their exit.
    Thread-safe: collectors poll on their own threads.
    """

    def __init__(self, host: int | None = None, *, revalidate_s: float = 10.0,
                 grace_s: float = 60.0) -> None:
        self.host = host if host is not None else host_id()
        self.revalidate_ns = int(revalidate_s * _SECOND)
        self.grace_ns = int(grace_s * _SECOND)
        self._entries: dict[int, _Entry] = {}
        self._lock = threading.Lock()
        self._next_sweep = 0
        self.counters = {"proc_reads": 0, "unresolved": 0, "reused_pids": 0}

    def __len__(self) -> int:
        return len(self._entries)

    def upid(self, tgid: int, ts_ns: int = 0) -> str | None:
        """The upid of the process that was ``tgid`` at ``ts_ns`` (0: now), or None if it is
        gone and no event said when it started."""
        entry = self._entries.get(tgid)
        now = time.monotonic_ns()
        if entry is not None:
            if entry.exited_ns:
                if ts_ns <= entry.exited_ns and ts_ns:
                    return entry.upid
            elif now - entry.checked_ns < self.revalidate_ns:
                return entry.upid
        with self._lock:
            return self._read(tgid, entry, now)

    def entry_start(self, tgid: int) -> tuple[int, str] | None:
        """(start_ns, comm) of a cached process (for its metadata), or None."""
        entry = self._entries.get(tgid)
        return None if entry is None else (entry.start_ns, entry.comm)

    def _read(self, tgid: int, entry: _Entry | None, now: int) -> str | None:
        self.counters["proc_reads"] += 1
        sample = read_process(tgid)
        if sample is None:
            if entry is not None and not entry.exited_ns:
                entry.checked_ns = now  # gone, not reused (yet): its records are still its own
                return entry.upid
            self.counters["unresolved"] += 1
            return None
        if entry is not None and entry.start_ns == sample.start_ns:
            entry.checked_ns, entry.exited_ns = now, 0
            return entry.upid
        if entry is not None:
            self.counters["reused_pids"] += 1
        upid = make_upid(self.host, tgid, sample.start_ns)
        self._entries[tgid] = _Entry(sample.start_ns, upid, now, 0, sample.comm)
        return upid

    # --- what the process events say
    def on_exec(self, tgid: int, start_ns: int, comm: str) -> str:
        """A process exec'd: same pid, same start time, a new program."""
        with self._lock:
            entry = self._entries.get(tgid)
            now = time.monotonic_ns()
            if entry is None or entry.start_ns != start_ns:
                entry = _Entry(start_ns, make_upid(self.host, tgid, start_ns), now)
                self._entries[tgid] = entry
            entry.checked_ns, entry.exited_ns, entry.comm = now, 0, comm
            return entry.upid

    def exit(self, tgid: int, start_ns: int, ts_ns: int, comm: str) -> str:
        """A process exited at wall time ``ts_ns``: its pid names it until then."""
        with self._lock:
            entry = self._entries.get(tgid)
            now = time.monotonic_ns()
            if entry is None or entry.start_ns != start_ns:
                entry = _Entry(start_ns, make_upid(self.host, tgid, start_ns), now, comm=comm)
                self._entries[tgid] = entry
            entry.exited_ns = ts_ns
            if now >= self._next_sweep:
                self._next_sweep = now + self.grace_ns // 4
                self._sweep(time.time_ns())
            return entry.upid

    def _sweep(self, wall_ns: int) -> None:
        cutoff = wall_ns - self.grace_ns
        for tgid in [t for t, e in self._entries.items() if e.exited_ns and e.exited_ns < cutoff]:
            del self._entries[tgid]


_COLUMNS = ("time_", "upid", "exit_code", "signal", "comm")


class ProcExit:
    """A collector of proc_exit_events (and of metadata of processes that exec)."""

    name = "proc_exit"
    tables = ("proc_exit_events",)

    def __init__(self, store: Any, *, host: int | None = None,
                 upids: UpidCache | None = None) -> None:
        from collectors.proc_events import ProcEvents

        self.store = store
        self.host = host if host is not None else host_id()
        self.upids = upids if upids is not None else UpidCache(self.host)
        self.events = ProcEvents()
        self.stats_interval_s = 10.0
        self._reporter: StatsReporter | None = None
        self._known: set[str] = set()
        self.counters = {"events": 0, "execs": 0, "exits": 0, "rows": 0, "batches": 0}

    # --- lifecycle
    def open(self) -> ProcExit:
        self.events.open()
        return self

    def configure(self, *, stats_interval_s: float = 10.0) -> ProcExit:
        """proc_events has no kernel-side settings: every exec and exit on the host is seen."""
        self.stats_interval_s = stats_interval_s
        return self

    def load(self) -> ProcExit:
        self.events.load()
        return self

    def attach(self) -> ProcExit:
        self.events.attach()
        self._reporter = StatsReporter(self.store, self.name, self.stats_interval_s)
        return self

    def poll(self, timeout_ms: int = 100) -> int:
        """Drain the exec/exit events; returns the proc_exit_events rows appended."""
        batch = self.events.poll(timeout_ms)
        rows = self.take(batch) if batch else 0
        if self._reporter is not None:
            self._reporter.maybe_report(self.stats)
        return rows

    def close(self) -> None:
        if self._reporter is not None:
            self._reporter.report(self.stats())
            self._reporter = None
        self.events.close()
        self._known.clear()

    def stats(self) -> dict[str, int]:
        return {**self.counters, "lost_events": self.events.lost, "upids_cached": len(self.upids)}

    # --- work
    def take(self, batch: list[Any]) -> int:
        """ProcEvents → cache updates, metadata upserts and one proc_exit_events batch."""
        cols: dict[str, list[Any]] = {c: [] for c in _COLUMNS}
        meta = []
        for ev in batch:
            start = start_ns_of(ev.start_ns)
            if ev.kind == "exec":
                self.counters["execs"] += 1
                upid = self.upids.on_exec(ev.tgid, start, ev.comm)
                self._known.add(upid)  # re-upserted on every exec: its cmdline changed
                meta.append(metadata_row(upid, ev.tgid, start, ev.comm))
            elif ev.kind == "exit":
                self.counters["exits"] += 1
                upid = self.upids.exit(ev.tgid, start, ev.ts_ns, ev.comm)
                if upid not in self._known:
                    self._known.add(upid)
                    meta.append(metadata_row(upid, ev.tgid, start, ev.comm))
                for name, value in zip(_COLUMNS, (ev.ts_ns, upid, ev.exit_code, ev.signal,
                                                  ev.comm), strict=True):
                    cols[name].append(value)
        self.counters["events"] += len(batch)
        if meta:
            self.store.upsert_metadata(meta)
        n = len(cols["upid"])
        if len(self._known) > 100_000:
            self._known.clear()
        if not n:
            return 0
        frame = pl.DataFrame({
            "time_": pl.Series(cols["time_"], dtype=pl.Int64).cast(pl.Datetime("ns")),
            "upid": pl.Series(cols["upid"], dtype=pl.String),
            "exit_code": pl.Series(cols["exit_code"], dtype=pl.Int64),
            "signal": pl.Series(cols["signal"], dtype=pl.Int64),
            "comm": pl.Series(cols["comm"], dtype=pl.String)})
        self.store.append("proc_exit_events", frame)
        self.counters["rows"] += n
        self.counters["batches"] += 1
        return n

"""http_events and conn_stats from the socket tracer.

One :class:`~collectors.socket_trace.SocketTrace` (syscall tracepoints → ring buffer) feeds one
:class:`~collectors.conn_tracker.ConnTracker` (protocol inference, HTTP/1.x parsing, pairing)::

    ring buffer ──poll──► DataEvent/ConnEvent batches ──scope──► ConnTracker ──► HttpRecord
         │                        │ opens/closes                                    │ tgid → upid
         │ kernel byte totals     ▼                                                 ▼
         └──(every 5 s)──►  ConnStats ──► conn_stats batch        http_events batch (one per poll)

Only connections whose first bytes look like HTTP are parsed; any other connection is skipped
at the cost of one dict lookup per read/write once the tracker has given up on it. A record's
process is named by its upid through a :class:`~collectors.proc_exit.UpidCache` (shared with
the ProcExit collector, whose exec/exit events keep it right); records whose process cannot be
named yet wait up to ``unresolved_s`` for those events.

Example (as root)::

    collector = HttpEvents(store).configure(include_ports=(8080,))
    collector.open(); collector.load(); collector.attach()
    while running:
        collector.poll(timeout_ms=100)
    collector.close()
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, fields, replace
from typing import Any

import pyarrow as pa

from collectors.conn_stats import ConnStats
from collectors.conn_tracker import ConnTracker, HttpRecord, _Conn, records_to_arrow
from collectors.events import ConnEvent, DataEvent
from collectors.http_batch import BatchPath
from collectors.proc_exit import UpidCache, metadata_row
from collectors.procfs import PROC, host_id, make_upid
from collectors.registry import StatsReporter
from collectors.socket_trace import MAX_CAPTURE, DataBatch, SocketTrace

__all__ = ["HttpEvents", "HttpEventsSettings"]

MAX_KERNEL_FILTER = 16  # entries of the BPF pid and port lists
_SECOND = 1_000_000_000


@dataclass(frozen=True)
class HttpEventsSettings:
    """What to capture and how often to report. Include lists of up to 16 pids or ports are
    applied in the kernel; everything else (exclusions, containers, longer lists) in the
    collector, before any parsing."""

    include_pids: tuple[int, ...] = ()  # non-empty: only these processes
    exclude_pids: tuple[int, ...] = ()  # never these (the agent itself is always excluded)
    include_ports: tuple[int, ...] = ()  # non-empty: only connections with one of these ports
    exclude_ports: tuple[int, ...] = ()  # never connections with one of these ports
    include_containers: tuple[str, ...] = ()  # non-empty: only processes whose /proc/PID/cgroup
    exclude_containers: tuple[str, ...] = ()  # contains one of these (container id, cgroup path)
    capture_bytes: int = MAX_CAPTURE  # payload bytes the kernel copies per read/write
    body_limit: int = 512  # body bytes kept in req_body/resp_body
    max_connections: int = 16_384  # connections the tracker holds state for
    conn_stats_interval_s: float = 5.0
    stats_interval_s: float = 10.0  # self-observation rows in pxl_collector_stats
    batch_events: int = 32_768  # ring-buffer records decoded at a time
    max_poll_ms: int = 500  # longest one poll() drains before it appends what it has
    gather_ms: float = 200.0  # least time between drains while the collector keeps up (see poll)
    unresolved_s: float = 2.0  # how long a record waits for its process to be named
    batch_path: bool = True  # whole messages of known connections parsed a batch at a time

    def __post_init__(self) -> None:
        for name in ("include_pids", "exclude_pids", "include_ports", "exclude_ports",
                     "include_containers", "exclude_containers"):
            value = getattr(self, name)
            if isinstance(value, int | str):
                value = (value,)
            object.__setattr__(self, name, tuple(value))
        if any(not 0 < p < 65536 for p in self.include_ports + self.exclude_ports):
            raise ValueError("ports must be in 1..65535")

    def kernel_settings(self) -> dict[str, Any]:
        """What SocketTrace filters (its lists hold at most 16 entries)."""
        pids = self.include_pids if len(self.include_pids) <= MAX_KERNEL_FILTER else ()
        ports = self.include_ports if len(self.include_ports) <= MAX_KERNEL_FILTER else ()
        return {"capture_bytes": self.capture_bytes, "pids": pids, "ports": ports}

    @property
    def filters_in_collector(self) -> bool:
        return bool(self.exclude_pids or self.exclude_ports or self.include_containers
                    or self.exclude_containers or len(self.include_pids) > MAX_KERNEL_FILTER
                    or len(self.include_ports) > MAX_KERNEL_FILTER)


class _Scope:
    """The capture scope applied in the collector: per process (pids, cgroups; decided once per
    tgid and re-decided every few seconds) and per connection (ports, at its open event)."""

    def __init__(self, s: HttpEventsSettings) -> None:
        self.include_pids = frozenset(s.include_pids)
        self.exclude_pids = frozenset(s.exclude_pids)
        self.include_ports = frozenset(s.include_ports)
        self.exclude_ports = frozenset(s.exclude_ports)
        self.include_containers, self.exclude_containers = s.include_containers, s.exclude_containers
        self.processes: dict[int, bool] = {}

    def process(self, tgid: int) -> bool:
        ok = self.processes.get(tgid)
        if ok is None:
            ok = self.processes[tgid] = self._decide(tgid)
        return ok

    def _decide(self, tgid: int) -> bool:
        if tgid in self.exclude_pids or (self.include_pids and tgid not in self.include_pids):
            return False
        if self.include_containers or self.exclude_containers:
            try:
                cgroup = (PROC / str(tgid) / "cgroup").read_text()
            except OSError:
                cgroup = ""
            if any(c in cgroup for c in self.exclude_containers):
                return False
            if self.include_containers and not any(c in cgroup for c in self.include_containers):
                return False
        return True

    def connection(self, ev: ConnEvent) -> bool:
        ports = (ev.local_port, ev.remote_port)
        if self.exclude_ports and any(p in self.exclude_ports for p in ports):
            return False
        return not self.include_ports or any(p in self.include_ports for p in ports)


class HttpEvents:
    """A collector of http_events and conn_stats (one socket tracer for both)."""

    name = "http_events"
    tables = ("http_events", "conn_stats")

    def __init__(self, store: Any, *, host: int | None = None,
                 upids: UpidCache | None = None) -> None:
        self.store = store
        self.host = host if host is not None else host_id()
        self.upids = upids if upids is not None else UpidCache(self.host)
        self.settings = HttpEventsSettings()
        self.trace = SocketTrace()
        self.tracker = ConnTracker()
        self.batch = BatchPath(self.tracker)
        self.conn_stats = ConnStats(self.upids.upid, fallback=self._fallback_upid)
        self._scope: _Scope | None = None
        self._skip: set[tuple[int, int, int]] = set()  # connections out of scope
        self._waiting: list[tuple[int, HttpRecord]] = []  # (first try, record) without a upid
        self._known: set[str] = set()  # upids whose metadata was upserted
        self._new_meta: list[dict[str, Any]] = []  # metadata rows of newly named processes
        self._reporter: StatsReporter | None = None
        self._lock = threading.RLock()  # stats() may be called from another thread
        self._next_conn_stats = 0
        self._next_rescope = 0
        self._last_drain = 0  # monotonic ns of the last drain
        self._behind = False  # the last drain stopped with records left in the ring
        self.counters = {"polls": 0, "wakeups": 0, "batches": 0, "events": 0, "skipped_events": 0,
                         "http_rows": 0, "http_batches": 0, "conn_stats_batches": 0,
                         "unresolved_upids": 0, "busy_ns": 0}

    # --- lifecycle: open → configure → load → attach → poll → close
    def open(self) -> HttpEvents:
        self.trace.open()
        return self

    def configure(self, **changes: Any) -> HttpEvents:
        """Change :class:`HttpEventsSettings` fields (before load: some become kernel constants)."""
        known = {f.name for f in fields(HttpEventsSettings)}
        bad = sorted(set(changes) - known)
        if bad:
            raise ValueError(f"http_events has no setting {bad[0]!r}; known: {', '.join(sorted(known))}")
        self.settings = replace(self.settings, **changes)
        s = self.settings
        self.trace.configure(**s.kernel_settings())
        self.tracker = ConnTracker(body_limit=s.body_limit, max_connections=s.max_connections)
        self.batch = BatchPath(self.tracker)
        return self

    def load(self) -> HttpEvents:
        self.trace.load()
        return self

    def attach(self) -> HttpEvents:
        s = self.settings
        self._scope = _Scope(s) if s.filters_in_collector else None
        self.trace.attach()
        now = time.monotonic_ns()
        self._next_conn_stats = now + int(s.conn_stats_interval_s * _SECOND)
        self._next_rescope = now + 10 * _SECOND
        self._reporter = StatsReporter(self.store, self.name, s.stats_interval_s)
        return self

    def poll(self, timeout_ms: int = 100) -> int:
        """Drain the ring buffer in batches (waiting up to ``timeout_ms`` for the first),
        append one http_events batch, and a conn_stats batch / self-observation rows when due.
        Returns the http_events rows appended."""
        s = self.settings
        self.counters["polls"] += 1
        ring = self.trace.ring
        if timeout_ms and not self._behind:
            # Let a batch gather: drain at most every gather_ms unless the last drain left a
            # backlog. The kernel signals when a record lands in an empty ring, so a consumer
            # that drained at once after every wakeup would take an interrupt and a wakeup per
            # record, and one that drained whatever trickled in would pay the per-batch costs
            # (a few milliseconds of numpy and Arrow calls, a store append) for a few rows at
            # a time.
            if not ring.pending():
                if not ring.wait(timeout_ms):
                    return self._periodic(0)
                self.counters["wakeups"] += 1
            rest = self._last_drain + int(s.gather_ms * 1_000_000) - time.monotonic_ns()
            if rest > 0:
                wait = min(rest / 1e9, timeout_ms / 1000)
                time.sleep(wait)
                if rest / 1e9 > wait:  # the caller's timeout came first: drain next time
                    return self._periodic(0)
        t0 = self._last_drain = time.monotonic_ns()
        rows = self._drain(t0 + s.max_poll_ms * 1_000_000)
        self.counters["busy_ns"] += time.monotonic_ns() - t0
        return self._periodic(rows)

    def _drain(self, deadline: int | None) -> int:
        """Batches from the ring until a short one (with no ``deadline``: until it is empty),
        or until ``deadline`` passes with a backlog left; then one append of their rows.
        Returns the http_events rows appended."""
        size = self.settings.batch_events
        records: list[HttpRecord] = []
        frames: list[pa.RecordBatch] = []
        self._behind = False
        while True:
            batch = self.trace.poll_batch(size)
            if not len(batch):
                break
            self.counters["batches"] += 1
            self.counters["events"] += len(batch)
            with self._lock:
                records += self._feed_batch(batch, frames)
            if deadline is None:
                continue
            if len(batch) < size:
                break
            if time.monotonic_ns() > deadline:
                self._behind = True
                break
        with self._lock:
            return self._append(records, frames)

    def _periodic(self, rows: int) -> int:
        """conn_stats and self-observation rows when due; passes ``rows`` through."""
        s = self.settings
        if self._waiting and not rows:
            with self._lock:
                rows = self._append([])  # records waiting for their process to be named
        now = time.monotonic_ns()
        if now >= self._next_conn_stats:
            self._next_conn_stats = now + int(s.conn_stats_interval_s * _SECOND)
            with self._lock:
                self.snapshot_connections()
        if self._scope is not None and now >= self._next_rescope:
            self._next_rescope = now + 10 * _SECOND
            self._scope.processes.clear()  # pids are reused, processes move between cgroups
        if self._reporter is not None:
            self._reporter.maybe_report(self.stats)
        return rows

    def close(self) -> None:
        """Drain the ring, flush what the tracker still holds, append it, detach."""
        with self._lock:
            if self.trace.attached:
                self._drain(None)  # what the kernel wrote before we stop: the ring is finite
                self._append(self.tracker.flush(), final=True)
                self.snapshot_connections()
            if self._reporter is not None:
                self._reporter.report(self.stats())
                self._reporter = None
            self.trace.close()

    def stats(self) -> dict[str, int]:
        """Counters: the tracer's (events, bytes, kernel losses), the HTTP tracker's (prefixed
        ``http.``) and this collector's own."""
        with self._lock:
            t = self.tracker.counters()
        http = {f"http.{k}": v for k, v in t.items()}
        http.update({f"http.batch_{k}": v for k, v in self.batch.counters.items()})
        return {"lost_events": self.trace.lost, "spilled_events": self.trace.spilled,
                "ring_events": self.trace.events,
                "ring_bytes": self.trace.bytes, **self.counters, **http,
                **self.conn_stats.counters, "upids_cached": len(self.upids)}

    # --- work
    def _feed_batch(self, batch: DataBatch, frames: list[pa.RecordBatch]) -> list[HttpRecord]:
        """One drain: whole messages of known connections through the batch path (rows into
        ``frames``), the rest through the tracker in ring order (records returned)."""
        if self.settings.batch_path:
            # New connections: their open events and first records through the tracker first
            # (it learns they carry HTTP), so the batch path can take the rest.
            first = self.batch.first_records(batch)
            opens = [c for c in batch.conns if c[1].opened]
            closes = [c for c in batch.conns if not c[1].opened]
            records = self._feed(batch.events(first, opens)) if len(first) or opens else []
            frame, left = self.batch.run(batch, self._accept, skip=first, conn_events=closes)
            if frame is not None:
                frames.append(frame)
            records += self._feed(batch.events(left, closes))
        else:
            records = self._feed(batch.events())
        if len(batch.ts):
            records += self.tracker.advance(int(batch.ts.max()))
        return records

    def _accept(self, key: tuple[int, int, int], conn: _Conn, ts: int) -> str | None:
        """The upid of a connection's process if the batch path may take its records: in
        scope and named now (anything else waits in the tracker's path)."""
        scope = self._scope
        if scope is not None and (not scope.process(key[0]) or key in self._skip):
            return None
        return self._upid(key[0], ts)

    def _upid(self, tgid: int, ts: int) -> str | None:
        upid = self.upids.upid(tgid, ts)
        if upid is not None and upid not in self._known:
            self._known.add(upid)
            self._new_meta.append(self._metadata(upid, tgid))
        return upid

    def _feed(self, batch: list[DataEvent | ConnEvent]) -> list[HttpRecord]:
        tracker_feed = self.tracker.feed
        scope, skip = self._scope, self._skip
        out: list[HttpRecord] = []
        skipped = 0
        for ev in batch:
            if type(ev) is DataEvent:
                if scope is not None:
                    c = ev.conn
                    if not scope.process(c.tgid) or (skip and (c.tgid, c.fd, c.generation) in skip):
                        skipped += 1
                        continue
                recs = tracker_feed(ev)
                if recs:
                    out += recs
                continue
            assert isinstance(ev, ConnEvent)
            if scope is not None:
                c = ev.conn
                key = (c.tgid, c.fd, c.generation)
                if not scope.process(c.tgid) or not scope.connection(ev):
                    if ev.opened:
                        skip.add(key)
                    else:
                        skip.discard(key)
                    skipped += 1
                    continue
            if ev.opened:
                self.conn_stats.opened(ev)
            else:
                self.conn_stats.closed(ev, self.tracker.is_http(ev.conn))
            recs = tracker_feed(ev)
            if recs:
                out += recs
        self.counters["skipped_events"] += skipped
        return out

    def _append(self, records: list[HttpRecord], frames: list[pa.RecordBatch] | None = None,
                final: bool = False) -> int:
        """Name each record's process, upsert metadata of new ones, append one batch (with the
        batch path's ``frames``)."""
        now = time.monotonic_ns()
        if self._waiting:
            waiting, self._waiting = self._waiting, []
            records = [r for _, r in waiting] + records
            first_try = [t for t, _ in waiting] + [now] * (len(records) - len(waiting))
        else:
            first_try = None
        cache: dict[int, str | None] = {}
        ready: list[HttpRecord] = []
        upids: list[str] = []
        give_up = now - int(self.settings.unresolved_s * _SECOND)
        for i, r in enumerate(records):
            tgid = r.tgid
            upid = cache.get(tgid, "")
            if upid == "":
                upid = cache[tgid] = self._upid(tgid, r.time_)
            if upid is None:
                tried = first_try[i] if first_try is not None else now
                if not final and tried > give_up:
                    self._waiting.append((tried, r))
                    continue
                self.counters["unresolved_upids"] += 1
                upid = self._fallback_upid(tgid)
            ready.append(r)
            upids.append(upid)
        if self._new_meta:
            self.store.upsert_metadata(self._new_meta)
            self._new_meta = []
        if len(self._known) > 100_000:
            self._known.clear()
        if ready:
            frames = [*(frames or ()), records_to_arrow(ready, upids)]
        rows = 0
        for frame in frames or ():
            rows += self.store.append("http_events", frame)
            self.counters["http_batches"] += 1
        self.counters["http_rows"] += rows
        return rows

    def snapshot_connections(self) -> int:
        """Append a conn_stats batch from the kernel's connection map now; returns its rows."""
        if not self.trace.attached:
            return 0
        live = self.trace.connections()
        if self._scope is not None:
            scope, skip = self._scope, self._skip
            skip &= {(e.conn.tgid, e.conn.fd, e.conn.generation) for e in live}  # lost closes
            live = [e for e in live if scope.process(e.conn.tgid)
                    and (e.conn.tgid, e.conn.fd, e.conn.generation) not in skip]
        frame = self.conn_stats.snapshot(live, time.time_ns(), self.tracker.is_http)
        if frame is None:
            return 0
        self.store.append("conn_stats", frame)
        self.counters["conn_stats_batches"] += 1
        return frame.height

    def _metadata(self, upid: str, tgid: int) -> dict[str, Any]:
        start, comm = self.upids.entry_start(tgid) or (0, "")
        return metadata_row(upid, tgid, start, comm)

    def _fallback_upid(self, tgid: int) -> str:
        """For a process gone before anything said when it started: start time 0."""
        return make_upid(self.host, tgid, 0)

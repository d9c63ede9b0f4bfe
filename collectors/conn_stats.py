"""conn_stats: connection counters per (upid, remote_addr, remote_port, trace_role), cumulative.

Fed by the socket tracer (the HttpEvents collector owns one and shares its tracer): each
connection's open and close event, and every few seconds the kernel's byte totals of the
connections open now (``SocketTrace.connections()``, one map read). Pure Python, so it is
tested without a kernel.

A group's ``conn_open``/``conn_close`` count its connections opened/closed so far,
``conn_active`` those open now, ``bytes_sent``/``bytes_recv`` are the totals of its closed
connections plus the current totals of its open ones; ``protocol`` is 1 once the protocol
tracker found HTTP on one of them; ``ssl`` is False (TLS is not seen yet). A snapshot writes a
row for every group with an open connection or a change since the last one. A group with no
open connection is forgotten after ``idle_s`` without a change (its counters then start again
from 0 if the same peer comes back), or earlier, oldest first, beyond ``max_groups``.

>>> from collectors.events import ConnEvent, ConnKey, Role
>>> stats = ConnStats(lambda tgid, ts: f"upid-{tgid}")
>>> k = ConnKey(tgid=7, fd=3, generation=1)
>>> stats.opened(ConnEvent(1, k, True, Role.SERVER, 2, "10.0.0.5", 80, "10.0.0.9", 5555))
>>> live = ConnEvent(1, k, True, Role.SERVER, 2, "10.0.0.5", 80, "10.0.0.9", 5555, 100, 40)
>>> stats.snapshot([live], now_ns=10**9).select("conn_open", "conn_active", "bytes_sent").row(0)
(1, 1, 100)
>>> stats.closed(ConnEvent(2, k, False, Role.SERVER, 2, "10.0.0.5", 80, "10.0.0.9", 5555, 150, 60))
>>> stats.snapshot([], now_ns=2 * 10**9).select("conn_close", "conn_active", "bytes_sent").row(0)
(1, 0, 150)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import polars as pl

from collectors.events import ConnEvent, ConnKey

__all__ = ["ConnStats", "PROTOCOL_UNKNOWN", "PROTOCOL_HTTP"]

PROTOCOL_UNKNOWN, PROTOCOL_HTTP = 0, 1
_SECOND = 1_000_000_000

_Key = tuple[int, int, int]
_Group = tuple[str, str, int, int]  # upid, remote_addr, remote_port, trace_role


@dataclass(slots=True)
class _Conn:
    tgid: int
    ts_ns: int  # when it opened
    role: int
    family: int
    remote_addr: str
    remote_port: int
    sent: int = 0
    recv: int = 0
    http: bool = False
    upid: str | None = None
    counted: bool = False  # its open is in its group's conn_open
    missing: int = 0  # snapshots it was absent from the kernel map without a close event


@dataclass(slots=True)
class _Totals:
    family: int
    protocol: int = PROTOCOL_UNKNOWN
    opened: int = 0
    closed: int = 0
    closed_sent: int = 0
    closed_recv: int = 0
    changed_ns: int = 0


class ConnStats:
    """Builds conn_stats batches. ``resolve(tgid, ts_ns)`` names the process that had ``tgid``
    at ``ts_ns`` (a upid, or None while that is not known yet); a connection whose process
    stays unknown for ``unresolved_s`` is counted under ``fallback(tgid)``."""

    def __init__(self, resolve: Callable[[int, int], str | None], *,
                 fallback: Callable[[int], str] | None = None, idle_s: float = 300.0,
                 max_groups: int = 65_536, unresolved_s: float = 5.0) -> None:
        self.resolve = resolve
        self.fallback = fallback or (lambda tgid: f"unknown-{tgid}")
        self.idle_ns = int(idle_s * _SECOND)
        self.max_groups = max_groups
        self.unresolved_ns = int(unresolved_s * _SECOND)
        self._live: dict[_Key, _Conn] = {}
        self._closed: list[_Conn] = []  # closed since the last snapshot
        self._groups: dict[_Group, _Totals] = {}
        self.counters = {"conn_stats_rows": 0, "conn_stats_vanished": 0,
                         "conn_stats_evicted_groups": 0, "conn_stats_unresolved": 0}

    def __len__(self) -> int:
        return len(self._groups)

    # --- events
    def opened(self, ev: ConnEvent) -> None:
        c = ev.conn
        self._live[(c.tgid, c.fd, c.generation)] = _Conn(
            c.tgid, ev.ts_ns, int(ev.role), ev.family, ev.remote_addr, ev.remote_port)

    def closed(self, ev: ConnEvent, http: bool = False) -> None:
        c = ev.conn
        conn = self._live.pop((c.tgid, c.fd, c.generation), None)
        if conn is None:  # its open was not seen (lost, or before we started)
            conn = _Conn(c.tgid, ev.ts_ns, int(ev.role), ev.family, ev.remote_addr,
                         ev.remote_port)
        conn.sent, conn.recv = ev.bytes_sent, ev.bytes_recv
        conn.http |= http
        self._closed.append(conn)

    def forget(self, conn: ConnKey) -> None:
        """Stop counting a connection (it turned out to be out of the capture scope)."""
        self._live.pop((conn.tgid, conn.fd, conn.generation), None)

    # --- snapshots
    def snapshot(self, live: Iterable[ConnEvent], now_ns: int,
                 is_http: Callable[[ConnKey], bool] | None = None) -> pl.DataFrame | None:
        """One conn_stats batch from the kernel's open connections (with their byte totals),
        or None if no group has anything to say."""
        seen: set[_Key] = set()
        for ev in live:
            c = ev.conn
            key = (c.tgid, c.fd, c.generation)
            conn = self._live.get(key)
            if conn is None:
                if ev.ts_ns > now_ns - _SECOND:
                    continue  # its open event is still on its way
                self.opened(ev)  # its open event was lost
                conn = self._live[key]
            conn.sent, conn.recv, conn.missing = ev.bytes_sent, ev.bytes_recv, 0
            if is_http is not None and not conn.http:
                conn.http = is_http(c)
            seen.add(key)
        for key, conn in list(self._live.items()):
            if key not in seen:
                conn.missing += 1
                if conn.missing >= 2:  # gone from the kernel map, no close event: count it closed
                    self.counters["conn_stats_vanished"] += 1
                    del self._live[key]
                    self._closed.append(conn)
        return self._fold(now_ns)

    def _upid(self, conn: _Conn, now_ns: int) -> str | None:
        if conn.upid is None:
            conn.upid = self.resolve(conn.tgid, conn.ts_ns)
            if conn.upid is None and now_ns - conn.ts_ns > self.unresolved_ns:
                self.counters["conn_stats_unresolved"] += 1
                conn.upid = self.fallback(conn.tgid)
        return conn.upid

    def _fold(self, now_ns: int) -> pl.DataFrame | None:
        active: dict[_Group, list[int]] = {}  # group → [count, sent, recv]
        touched: set[_Group] = set()
        groups = self._groups
        still_closed = []
        for conn in self._closed:
            upid = self._upid(conn, now_ns)
            if upid is None:
                still_closed.append(conn)  # try again next time
                continue
            g = self._group(upid, conn, now_ns)
            totals = groups[g]
            if not conn.counted:
                totals.opened += 1
            totals.closed += 1
            totals.closed_sent += conn.sent
            totals.closed_recv += conn.recv
            touched.add(g)
        self._closed = still_closed
        for conn in self._live.values():
            upid = self._upid(conn, now_ns)
            if upid is None:
                continue
            g = self._group(upid, conn, now_ns)
            if not conn.counted:
                conn.counted = True
                groups[g].opened += 1
            acc = active.setdefault(g, [0, 0, 0])
            acc[0] += 1
            acc[1] += conn.sent
            acc[2] += conn.recv
            if conn.http:
                groups[g].protocol = PROTOCOL_HTTP
        self._evict(now_ns, active)
        rows = touched | active.keys()
        if not rows:
            return None
        return self._frame(sorted(rows), active, now_ns)

    def _group(self, upid: str, conn: _Conn, now_ns: int) -> _Group:
        g = (upid, conn.remote_addr, conn.remote_port, conn.role)
        totals = self._groups.get(g)
        if totals is None:
            totals = self._groups[g] = _Totals(conn.family)
        if conn.http:
            totals.protocol = PROTOCOL_HTTP
        totals.changed_ns = now_ns
        return g

    def _evict(self, now_ns: int, active: dict[_Group, list[int]]) -> None:
        groups = self._groups
        cutoff = now_ns - self.idle_ns
        idle = [g for g, t in groups.items() if t.changed_ns < cutoff and g not in active]
        over = len(groups) - len(idle) - self.max_groups
        if over > 0:
            quiet = sorted((t.changed_ns, g) for g, t in groups.items()
                           if g not in active and t.changed_ns >= cutoff)
            idle += [g for _, g in quiet[:over]]
        for g in idle:
            del groups[g]
        self.counters["conn_stats_evicted_groups"] += len(idle)

    def _frame(self, rows: list[_Group], active: dict[_Group, list[int]],
               now_ns: int) -> pl.DataFrame:
        cols: dict[str, list] = {name: [] for name in (
            "upid", "remote_addr", "remote_port", "trace_role", "addr_family", "protocol",
            "conn_open", "conn_close", "conn_active", "bytes_sent", "bytes_recv")}
        for g in rows:
            t = self._groups[g]
            count, sent, recv = active.get(g, (0, 0, 0))
            for name, value in zip(cols, (*g, t.family, t.protocol, t.opened, t.closed, count,
                                          t.closed_sent + sent, t.closed_recv + recv),
                                   strict=True):
                cols[name].append(value)
        n = len(rows)
        self.counters["conn_stats_rows"] += n
        ints = {k: pl.Series(v, dtype=pl.Int64) for k, v in cols.items()
                if k not in ("upid", "remote_addr")}
        return pl.DataFrame({
            "time_": pl.Series([now_ns] * n, dtype=pl.Int64).cast(pl.Datetime("ns")),
            "upid": pl.Series(cols["upid"], dtype=pl.String),
            "remote_addr": pl.Series(cols["remote_addr"], dtype=pl.String),
            "remote_port": ints["remote_port"], "trace_role": ints["trace_role"],
            "addr_family": ints["addr_family"], "protocol": ints["protocol"],
            "ssl": pl.Series([False] * n, dtype=pl.Boolean),
            **{k: ints[k] for k in ("conn_open", "conn_close", "conn_active", "bytes_sent",
                                    "bytes_recv")}})

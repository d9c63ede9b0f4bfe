"""The socket tracer: what processes send and receive over TCP/UDP, and their connections.

Pairs with ``bpf_src/socket_trace.bpf.c`` (syscall tracepoints → ring buffer) and turns its
records into :class:`~collectors.events.DataEvent` and :class:`~collectors.events.ConnEvent`,
the input of the protocol parsers. Byte totals per connection are kept in the kernel
(``connections()`` reads them for conn_stats).

Example (as root)::

    with SocketTrace().configure(capture_bytes=1024, ports=(8080,)) as trace:
        while True:
            for event in trace.poll(timeout_ms=100):
                ...
"""

from __future__ import annotations

import os
import socket
import struct
from dataclasses import dataclass, field
from functools import cached_property
from typing import NamedTuple

import numpy as np

from collectors.events import ConnEvent, ConnKey, DataEvent, Direction, Role
from collectors.loader import BpfCollector, Record
from collectors.ringbuf import RingBuffer

__all__ = ["SocketTrace", "SocketTraceSettings", "DataBatch", "DATA_EVENT", "CONN_EVENT",
           "MAX_CAPTURE", "merge_spilled"]

# ---- the records of bpf_src/socket_trace.h, mirrored once --------------------------------------
MAX_CAPTURE = 4096
MAX_FILTER = 16
EVENT_DATA, EVENT_OPEN, EVENT_CLOSE = 1, 2, 3

DATA_EVENT = Record("data_event", [
    ("ts_ns", "Q"), ("kind", "I"), ("tgid", "I"), ("pid", "I"), ("fd", "i"),
    ("generation", "I"), ("direction", "I"), ("size", "Q"), ("captured", "I"), ("syscall", "I"),
], tail="data")

CONN_EVENT = Record("conn_event", [
    ("ts_ns", "Q"), ("kind", "I"), ("tgid", "I"), ("pid", "I"), ("fd", "i"),
    ("generation", "I"), ("role", "I"), ("family", "H"), ("local_port", "H"),
    ("remote_port", "H"), ("_pad", "H"), ("local_addr", "16s"), ("remote_addr", "16s"),
    ("bytes_sent", "Q"), ("bytes_recv", "Q"),
])

_KIND = struct.Struct("<I")
_KIND_AT = 8  # both records start with u64 ts_ns, u32 kind, u32 tgid, u32 pid, s32 fd
_TGID_AT, _FD_AT = 12, 20
_DATA_AT = DATA_EVENT.offsets["data"]


@dataclass(frozen=True)
class SocketTraceSettings:
    """What to trace; each field is a const volatile global of socket_trace.bpf.c."""

    capture_bytes: int = MAX_CAPTURE  # payload bytes kept per syscall (the rest is only counted)
    exclude_pid: int = field(default_factory=os.getpid)  # never traced: the agent itself
    pids: tuple[int, ...] = ()  # non-empty: only these processes (up to 16)
    ports: tuple[int, ...] = ()  # non-empty: only connections with one of these ports at either end
    infer_conns: bool = True  # adopt sockets that were open before attach (role unknown)

    def __post_init__(self) -> None:
        if not 0 < self.capture_bytes <= MAX_CAPTURE:
            raise ValueError(f"capture_bytes must be in 1..{MAX_CAPTURE}, got {self.capture_bytes}")
        if len(self.pids) > MAX_FILTER or len(self.ports) > MAX_FILTER:
            raise ValueError(f"at most {MAX_FILTER} pids and {MAX_FILTER} ports")
        if any(not 0 < p < 65536 for p in self.ports):
            raise ValueError(f"ports must be in 1..65535: {self.ports}")

    def rodata(self) -> dict[str, bytes]:
        pad = MAX_FILTER
        return {
            "capture_bytes": struct.pack("<I", self.capture_bytes),
            "agent_tgid": struct.pack("<I", self.exclude_pid),
            "n_trace_tgids": struct.pack("<I", len(self.pids)),
            "trace_tgids": struct.pack(f"<{pad}I", *self.pids, *[0] * (pad - len(self.pids))),
            "n_trace_ports": struct.pack("<I", len(self.ports)),
            "trace_ports": struct.pack(f"<{pad}H", *self.ports, *[0] * (pad - len(self.ports))),
            "infer_conns": struct.pack("<B", self.infer_conns),
        }


def _addr(family: int, raw: bytes) -> str:
    if family == socket.AF_INET:
        return socket.inet_ntop(socket.AF_INET, raw[:4])
    return socket.inet_ntop(socket.AF_INET6, raw)


def decode_conn(rec: bytes, clock_offset_ns: int) -> ConnEvent:
    (ts, kind, tgid, _pid, fd, gen, role, family, lport, rport, _pad, laddr, raddr,
     sent, recv) = CONN_EVENT.unpack(rec)
    return ConnEvent(ts + clock_offset_ns, ConnKey(tgid, fd, gen), kind == EVENT_OPEN, Role(role),
                     family, _addr(family, laddr), lport, _addr(family, raddr), rport, sent, recv)


def decode(records: list[bytes], clock_offset_ns: int,
           keys: dict[tuple[int, int, int], ConnKey] | None = None) -> list[DataEvent | ConnEvent]:
    """Ring-buffer records of socket_trace.bpf.c → events, in arrival order. ``keys`` caches
    the ConnKey of each connection across calls (a frozen dataclass costs more to build than
    a dict lookup)."""
    out: list[DataEvent | ConnEvent] = []
    append = out.append
    unpack_data = DATA_EVENT.struct.unpack_from
    egress, ingress = Direction.EGRESS, Direction.INGRESS
    if keys is None:
        keys = {}
    for rec in records:
        if _KIND.unpack_from(rec, _KIND_AT)[0] == EVENT_DATA:
            ts, _k, tgid, _pid, fd, gen, direction, size, captured, _nr = unpack_data(rec)
            key = keys.get((tgid, fd, gen))
            if key is None:
                key = keys[(tgid, fd, gen)] = ConnKey(tgid, fd, gen)
            append(DataEvent(ts + clock_offset_ns, key, ingress if direction else egress,
                             rec[_DATA_AT:_DATA_AT + captured], size))
        else:
            append(decode_conn(rec, clock_offset_ns))
    return out


class Connections(NamedTuple):
    """A batch's connections: one group id per data record, and each group's key."""

    gid: np.ndarray
    keys: list[tuple[int, int, int]]


class DataBatch:
    """One drain of the ring buffer decoded column-wise: the data records as numpy columns over a
    single copy of their bytes (``payload(i)`` slices one out), the connection events as objects.
    ``order`` numbers every record in ring order, so ``events(indices)`` can hand a subset of the
    data records back, merged with the connection events, as the events ``decode`` would give."""

    def __init__(self, blob: bytes, starts: np.ndarray | list[int], lengths: np.ndarray | list[int],
                 clock_offset_ns: int,
                 keys: dict[tuple[int, int, int], ConnKey] | None = None) -> None:
        self.blob = blob
        self._keys = {} if keys is None else keys
        n = len(starts)
        st = np.asarray(starts, dtype=np.int64)
        ln = np.asarray(lengths, dtype=np.int64)
        whole = ln >= DATA_EVENT.size
        if (st % 8).any():
            raise ValueError("ring records start 8-aligned")
        fields = _Fields(blob)
        kind = fields.take(st, _KIND_AT, "<u4") if n else np.zeros(0, dtype=np.uint32)
        is_data = (kind == EVENT_DATA) & whole
        self.order = np.flatnonzero(is_data)
        col = fields.columns(st[self.order], DATA_EVENT)
        self.ts = col["ts_ns"].astype(np.int64) + clock_offset_ns
        self.tgid = col["tgid"].astype(np.int64)
        self.fd = col["fd"].astype(np.int64)
        self.generation = col["generation"].astype(np.int64)
        self.direction = col["direction"].astype(np.int64)
        self.size = col["size"].astype(np.int64)
        captured = col["captured"].astype(np.int64)
        self.start = st[self.order] + _DATA_AT
        # never past the record, whatever its header says
        self.captured = np.minimum(captured, ln[self.order] - _DATA_AT)
        self.conns: list[tuple[int, ConnEvent]] = [
            (int(i), decode_conn(blob[starts[i]:starts[i] + lengths[i]], clock_offset_ns))
            for i in np.flatnonzero(((kind == EVENT_OPEN) | (kind == EVENT_CLOSE))
                                    & (ln >= CONN_EVENT.size))]
        #: records too short for their kind (never written by socket_trace.bpf.c): skipped
        self.malformed = n - len(self.order) - len(self.conns)
        self.records = n

    def __len__(self) -> int:
        return self.records

    @cached_property
    def connections(self) -> Connections:
        """The data records grouped by connection: a group id per record and each group's
        (tgid, fd, generation), computed once per batch."""
        tgid, fd, gen = self.tgid, self.fd, self.generation
        order = np.lexsort((gen, fd, tgid))
        st, sf, sg = tgid[order], fd[order], gen[order]
        new = np.ones(len(order), dtype=bool)
        new[1:] = (st[1:] != st[:-1]) | (sf[1:] != sf[:-1]) | (sg[1:] != sg[:-1])
        gid = np.empty(len(order), dtype=np.int64)
        gid[order] = np.cumsum(new) - 1
        first = order[new]
        return Connections(gid, list(zip(tgid[first].tolist(), fd[first].tolist(),
                                         gen[first].tolist(), strict=True)))

    def payload(self, i: int) -> bytes:
        at = int(self.start[i])
        return self.blob[at:at + int(self.captured[i])]

    def key(self, i: int) -> ConnKey:
        t = (int(self.tgid[i]), int(self.fd[i]), int(self.generation[i]))
        key = self._keys.get(t)
        if key is None:
            key = self._keys[t] = ConnKey(*t)
        return key

    def events(self, data: np.ndarray | None = None,
               conns: list[tuple[int, ConnEvent]] | None = None) -> list[DataEvent | ConnEvent]:
        """Data records ``data`` (indices into the columns, default all) and the connection
        events ``conns`` (default all), as objects in ring order."""
        idx = range(len(self.order)) if data is None else data.tolist()
        ts, direction, size = self.ts, self.direction, self.size
        egress, ingress = Direction.EGRESS, Direction.INGRESS
        out = [(int(self.order[i]), DataEvent(int(ts[i]), self.key(i),
                                              ingress if direction[i] else egress,
                                              self.payload(i), int(size[i])))
               for i in idx]
        conns = self.conns if conns is None else conns
        if conns:
            out += conns
            out.sort(key=_first)
        return [e for _, e in out]


def merge_spilled(blob: bytes, starts: np.ndarray, lengths: np.ndarray,
                  spilled: list[bytes]) -> tuple[bytes, np.ndarray, np.ndarray]:
    """A drain's records (``starts``, ``lengths`` into ``blob``, in ring order) with records
    from the spill ring put in their places: each goes right before the first record of its
    own (tgid, fd) written after it (by ``ts_ns``), or last if there is none. Only the order
    within a socket matters to what reads these (the parsers keep state per connection), and
    within a socket, calls and their records follow one another in time."""
    blob += bytes(-len(blob) % 8)
    parts, at = [], len(blob)
    add = np.empty(len(spilled), dtype=np.int64)
    for i, rec in enumerate(spilled):
        add[i] = at
        parts.append(rec + bytes(-len(rec) % 8))
        at += len(parts[-1])
    joined = blob + b"".join(parts)
    fields = _Fields(joined)
    st = np.asarray(starts, dtype=np.int64)

    def key(at: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return (fields.take(at, 0, "<u8"), fields.take(at, _TGID_AT, "<u4"),
                fields.take(at, _FD_AT, "<i4"))

    m_ts, m_tgid, m_fd = key(st)
    s_ts, s_tgid, s_fd = key(add)
    where = np.empty(len(spilled), dtype=np.int64)
    for i in range(len(spilled)):
        later = np.flatnonzero((m_tgid == s_tgid[i]) & (m_fd == s_fd[i]) & (m_ts > s_ts[i]))
        where[i] = later[0] if len(later) else len(st)
    lens = np.array([len(r) for r in spilled], dtype=np.int64)
    return (joined, np.insert(st, where, add),
            np.insert(np.asarray(lengths, dtype=np.int64), where, lens))


class _Fields:
    """Fields of records that start 8-aligned in a buffer, read through typed views of it
    (every field of these structs is naturally aligned): one gather per field, or per record
    type for all of its fields (``columns``)."""

    def __init__(self, blob: bytes) -> None:
        self.blob = blob
        self._views: dict[str, np.ndarray] = {}

    def _view(self, code: str) -> np.ndarray:
        view = self._views.get(code)
        if view is None:
            size = np.dtype(code).itemsize
            view = self._views[code] = np.frombuffer(self.blob, dtype=code,
                                                     count=len(self.blob) // size)
        return view

    def take(self, starts: np.ndarray, offset: int, code: str) -> np.ndarray:
        view = self._view(code)
        size = view.itemsize
        assert offset % size == 0, "field not naturally aligned"
        return view[np.minimum((starts + offset) // size, len(view) - 1)]

    def columns(self, starts: np.ndarray, record: Record) -> dict[str, np.ndarray]:
        """Every fixed field of the records at ``starts``, which lie wholly in the buffer: one
        gather of their 8-byte words, read through the record's layout."""
        words = -(-record.size // 8)
        rows = np.take(self._view("<u8"), (starts >> 3)[:, None] + np.arange(words),
                       mode="clip").view(record.dtype)
        return {name: rows[name].reshape(-1) for name, code in record.fields
                if not code.endswith("s")}


def _first(pair: tuple[int, object]) -> int:
    return pair[0]


class SocketTrace(BpfCollector[DataEvent | ConnEvent]):
    """Lifecycle: ``SocketTrace().open().configure(...).load().attach()``, then ``poll()``,
    then ``close()`` (or use it as a context manager, which starts it)."""

    name = "socket_trace"

    def __init__(self, settings: SocketTraceSettings | None = None) -> None:
        super().__init__()
        self.settings = settings or SocketTraceSettings()
        #: payload bytes handed out in DataEvents
        self.bytes = 0
        self._keys: dict[tuple[int, int, int], ConnKey] = {}  # ConnKeys of recent connections
        self._spill: RingBuffer | None = None
        #: records read from the spill ring, each with the main ring position that must be read
        #: past before it is handed out (everything written before it is below that position)
        self._held: list[tuple[int, bytes]] = []
        self._spilled_before_close = 0

    def load(self) -> SocketTrace:
        super().load()
        m = self._obj.get_map("spill")
        self._spill = RingBuffer(m.get_fd(), m.get_max_entries(), stamped=True)
        return self

    def close(self) -> None:
        if self._obj is not None:
            self._spilled_before_close = self.spilled
        super().close()
        if self._spill is not None:
            self._spill.close()
            self._spill = None
        self._held = []

    @property
    def spilled(self) -> int:
        """Records the main ring refused and the spill ring took (none lost); after
        ``close()``, the count at close."""
        if self._obj is None:
            return self._spilled_before_close
        return int(self._obj.get_map(self.lost_map).lookup(1) or 0)

    def _consume(self, max_records: int | None) -> tuple[bytes, np.ndarray, np.ndarray]:
        """One drain (``poll`` and ``poll_batch``): the spill ring is read first, then the main
        ring; a spilled record is handed out, in its place among the main ring's, once the main
        ring has been read past every record written before it."""
        ring = self.ring
        spill = self._spill
        if spill is not None and spill.pending():
            sblob, sst, sln = spill.consume_raw()
            past = ring.producer_pos  # read after the spilled records were: it covers all before
            self._held += [(past, sblob[a:a + n]) for a, n in zip(sst.tolist(), sln.tolist(),
                                                                   strict=True)]
        blob, starts, lengths = ring.consume_raw(max_records)
        if self._held:
            done = ring.consumer_pos
            ready = [r for past, r in self._held if past <= done]
            if ready:
                self._held = [(past, r) for past, r in self._held if past > done]
                blob, starts, lengths = merge_spilled(blob, starts, lengths, ready)
        return blob, starts, lengths

    def decode(self, records: list[bytes]) -> list[DataEvent | ConnEvent]:
        if len(self._keys) > 65_536:
            self._keys.clear()
        events = decode(records, self.clock_offset_ns, self._keys)
        self.bytes += sum(len(e.data) for e in events if isinstance(e, DataEvent))
        return events

    def poll_batch(self, max_records: int | None = None) -> DataBatch:
        """The records ready now (no waiting), decoded column-wise (see :class:`DataBatch`)."""
        if len(self._keys) > 65_536:
            self._keys.clear()
        blob, starts, lengths = self._consume(max_records)
        batch = DataBatch(blob, starts, lengths, self.clock_offset_ns, self._keys)
        self.events += len(batch)
        self.bytes += int(batch.captured.sum())
        return batch

    def connections(self) -> list[ConnEvent]:
        """The connections traced now, with their byte totals so far (``opened`` is True and
        ``ts_ns`` is when each opened), read from the kernel map in one pass."""
        gen_at = CONN_EVENT.offsets["generation"]
        return [decode_conn(raw, self.clock_offset_ns) for raw in self.map("conns").values()
                if raw[gen_at:gen_at + 4] != b"\0\0\0\0"]  # 0: a socket that is not traced


# ---- python -m collectors.socket_trace: print what it sees ---------------------------------------

def format_event(event: DataEvent | ConnEvent, t0_ns: int, width: int = 60) -> str:
    """One line per event, bcc-tool style."""
    k = event.conn
    head = f"{(event.ts_ns - t0_ns) / 1e9:10.6f} {k.tgid:>7} {k.fd:>4} {k.generation:>5}"
    if isinstance(event, DataEvent):
        arrow = "->" if event.direction == Direction.EGRESS else "<-"
        text = repr(event.data[:width])[2:-1][:width]
        more = "" if len(event.data) == event.size else f" (+{event.size - len(event.data)} B)"
        return f"{head}  {arrow} {event.size:>6}  {text}{more}"
    fam = "[{}]:{}" if event.family == socket.AF_INET6 else "{}:{}"
    local = fam.format(event.local_addr, event.local_port)
    remote = fam.format(event.remote_addr, event.remote_port)
    if event.opened:
        return f"{head}  open  {event.role.name.lower():<7} {local} <-> {remote}"
    return (f"{head}  close {event.role.name.lower():<7} {local} <-> {remote}  "
            f"sent {event.bytes_sent} recv {event.bytes_recv}")


def main(argv: list[str] | None = None) -> int:
    import argparse
    import time

    parser = argparse.ArgumentParser(prog="python -m collectors.socket_trace",
                                     description="Print the socket tracer's events (as root).")
    parser.add_argument("-p", "--pid", type=int, action="append", default=[], help="only this pid")
    parser.add_argument("-P", "--port", type=int, action="append", default=[],
                        help="only connections with this port")
    parser.add_argument("-c", "--capture-bytes", type=int, default=MAX_CAPTURE)
    parser.add_argument("-d", "--duration", type=float, default=0, help="seconds (0: until ^C)")
    args = parser.parse_args(argv)
    trace = SocketTrace(SocketTraceSettings(capture_bytes=args.capture_bytes,
                                            pids=tuple(args.pid), ports=tuple(args.port)))
    with trace:
        t0, end = time.time_ns(), time.monotonic() + (args.duration or float("inf"))
        print(f"{'TIME(s)':>10} {'PID':>7} {'FD':>4} {'CONN':>5}  EVENT")
        try:
            while time.monotonic() < end:
                for event in trace.poll(timeout_ms=100):
                    print(format_event(event, t0), flush=True)
        except KeyboardInterrupt:
            pass
        print(f"# {trace.events} events, {trace.bytes} payload bytes, {trace.lost} lost")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

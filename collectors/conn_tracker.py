"""Per-connection stream reassembly and request/response pairing for the socket tracer.

The BPF side emits one :class:`~collectors.events.DataEvent` per syscall that moved bytes and one
:class:`~collectors.events.ConnEvent` per connection opened or closed. A :class:`ConnTracker`
keeps, for every connection, one incremental HTTP/1.x parser per direction, pairs requests with
their responses in order (pipelining included), and returns one :class:`HttpRecord` per pair —
every column of ``http_events`` except ``upid``, which the caller knows and adds.

>>> from collectors.events import ConnKey, DataEvent, Direction
>>> t = ConnTracker()
>>> k = ConnKey(tgid=7, fd=3, generation=1)
>>> t.feed(DataEvent(1_000, k, Direction.INGRESS, b"GET /hi HTTP/1.1\\r\\n\\r\\n", 20))
[]
>>> [r] = t.feed(DataEvent(4_000, k, Direction.EGRESS,
...                        b"HTTP/1.1 200 OK\\r\\nContent-Length: 2\\r\\n\\r\\nok", 40))
>>> r.req_method, r.req_path, r.resp_status, r.resp_body, r.latency, r.trace_role
('GET', '/hi', 200, 'ok', 3000, 2)
>>> records_to_polars([r], upid="u1").select("upid", "req_path", "latency").row(0)
('u1', '/hi', 3000)
"""

from __future__ import annotations

from collections import Counter, OrderedDict, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from operator import attrgetter

import polars as pl
import pyarrow as pa

from collectors.arrow import column
from collectors.events import ConnEvent, ConnKey, DataEvent, Direction, Role
from collectors.protocols.http1 import (
    BODY_LIMIT,
    MAX_HEAD,
    HttpMessage,
    HttpParser,
    Kind,
    looks_like_http,
    might_be_http,
)
from engine.tables import TABLES
from engine.types import DataType

__all__ = ["ConnTracker", "HttpRecord", "RECORD_COLUMNS", "records_to_arrow", "records_to_polars",
           "BINARY_BODY", "CONTENT_UNKNOWN", "CONTENT_JSON", "CONTENT_GRPC"]

#: ``content_type`` values, as Pixie's.
CONTENT_UNKNOWN, CONTENT_JSON, CONTENT_GRPC = 0, 1, 2
#: What a body that is not UTF-8 text reads as in the table (its size is still recorded).
BINARY_BODY = "<removed: non-utf8 body>"
#: Default idle time after which a connection's state is dropped (it is rebuilt if bytes come).
IDLE_TIMEOUT_NS = 300 * 1_000_000_000
#: Reads and writes that may fail to look like HTTP before a connection whose start was not seen
#: is given up on (one whose start was seen is given up on at its first non-HTTP bytes).
MAX_INFER_TRIES = 64


@dataclass(slots=True)
class HttpRecord:
    """One request paired with its response: the columns of ``http_events`` but ``upid``."""

    time_: int
    remote_addr: str
    remote_port: int
    local_addr: str
    local_port: int
    trace_role: int
    encrypted: bool
    major_version: int
    minor_version: int
    content_type: int
    req_headers: str
    req_method: str
    req_path: str
    req_body: str
    req_body_size: int
    resp_headers: str
    resp_status: int
    resp_message: str
    resp_body: str
    resp_body_size: int
    latency: int
    #: the traced process (not a column: the caller turns it into a upid)
    tgid: int = field(default=0, compare=False)


RECORD_COLUMNS = tuple(f.name for f in fields(HttpRecord) if f.name != "tgid")
_Key = tuple[int, int, int]  # a ConnKey as a plain tuple: hashed in C, not by dataclass code
_REQUEST = Kind.REQUEST


class _Conn:
    """What is known of one connection."""

    __slots__ = ("key", "opened", "remote_addr", "remote_port", "local_addr", "local_port",
                 "last_ts", "role", "parsers", "methods", "requests", "responses", "pending",
                 "tries")

    def __init__(self, key: _Key) -> None:
        self.key = key
        self.opened = False
        self.remote_addr, self.remote_port, self.local_addr, self.local_port = "", 0, "", 0
        self.last_ts = 0
        self.role = Role.UNKNOWN
        self.parsers: tuple[HttpParser, HttpParser] | None = None  # indexed by Direction
        self.methods: deque[str] = deque()
        self.requests: deque[HttpMessage] = deque()
        self.responses: deque[HttpMessage] = deque()
        # Reads seen before the protocol is known, per direction (a few bytes at most); None
        # once the protocol is known, or once the connection was found not to carry HTTP.
        self.pending: tuple[list[DataEvent], list[DataEvent]] | None = ([], [])
        self.tries = 0  # reads/writes that did not look like HTTP


class ConnTracker:
    """Reassembles the HTTP/1.x traffic of many connections from the tracer's events.

    ``feed`` takes events in the order the ring buffer delivers them and returns the records
    they complete. Connections idle for ``idle_timeout_ns`` (by event time) are dropped, and at
    most ``max_connections`` are tracked (least recently used go first); both count as evictions.
    ``max_pending`` bounds the messages waiting for their other half on one connection.
    """

    def __init__(self, *, body_limit: int = BODY_LIMIT, max_head: int = MAX_HEAD,
                 max_connections: int = 16_384, idle_timeout_ns: int = IDLE_TIMEOUT_NS,
                 max_pending: int = 256) -> None:
        self.body_limit = body_limit
        self.max_head = max_head
        self.max_connections = max(1, max_connections)
        self.idle_timeout_ns = idle_timeout_ns
        self.max_pending = max_pending
        self._conns: OrderedDict[_Key, _Conn] = OrderedDict()
        self._now = 0
        self._next_sweep = 0  # event time of the next look for idle connections
        self._sweep_every = max(1, idle_timeout_ns // 16)
        self._counts: Counter[str] = Counter()  # the tracker's own, and retired parsers'

    def __len__(self) -> int:
        return len(self._conns)

    # --- events in, records out
    def feed(self, event: DataEvent | ConnEvent) -> list[HttpRecord]:
        """Take one event; return the records it completed (maybe none)."""
        ts = event.ts_ns
        if ts > self._now:
            self._now = ts
        out = self._data(event) if type(event) is DataEvent else self._conn_event(event)
        if ts >= self._next_sweep:
            out += self._sweep(ts)
        return out

    def advance(self, ts: int) -> list[HttpRecord]:
        """Event time reached ``ts`` through events the caller handled itself (the batch path):
        look for idle connections when due, as ``feed`` does."""
        if ts > self._now:
            self._now = ts
        return self._sweep(ts) if ts >= self._next_sweep else []

    def _sweep(self, ts: int) -> list[HttpRecord]:
        self._next_sweep = ts + self._sweep_every
        return self.evict_idle(self._now)

    # --- for the batch path (collectors/http_batch.py)
    def idle_http(self, key: _Key) -> _Conn | None:
        """The connection, if it is known to carry HTTP and holds nothing but whole requests
        waiting for their responses: no bytes buffered, no message half-parsed, no response
        waiting, and one pending method per waiting request, none of them HEAD or CONNECT."""
        conn = self._conns.get(key)
        if conn is None or conn.parsers is None or conn.responses \
                or len(conn.methods) != len(conn.requests):
            return None
        a, b = conn.parsers
        if not (a.idle and b.idle) or "HEAD" in conn.methods or "CONNECT" in conn.methods:
            return None
        return conn

    def tracks(self, key: _Key) -> bool:
        return key in self._conns

    def touch(self, key: _Key) -> None:
        """The connection was just used (least recently used connections are evicted first)."""
        self._conns.move_to_end(key)

    def count_records(self, n: int) -> None:
        self._counts["records"] += n

    def feed_all(self, events: Iterable[DataEvent | ConnEvent]) -> list[HttpRecord]:
        out: list[HttpRecord] = []
        for event in events:
            out += self.feed(event)
        return out

    def evict_idle(self, now_ns: int) -> list[HttpRecord]:
        """Drop connections with no event since ``now_ns - idle_timeout_ns``, flushing them."""
        out: list[HttpRecord] = []
        cutoff = now_ns - self.idle_timeout_ns
        conns = self._conns
        while conns:
            conn = next(iter(conns.values()))
            if conn.last_ts >= cutoff:
                break
            del conns[conn.key]
            self._counts["evicted_connections"] += 1
            self._counts["evicted_idle"] += 1
            out += self._close(conn)
        return out

    def flush(self) -> list[HttpRecord]:
        """Close every tracked connection (the tracer is stopping) and return what completes."""
        out: list[HttpRecord] = []
        while self._conns:
            _, conn = self._conns.popitem(last=False)
            out += self._close(conn)
        return out

    def is_http(self, conn: ConnKey) -> bool:
        """Whether the connection is tracked now and was inferred to carry HTTP."""
        tracked = self._conns.get((conn.tgid, conn.fd, conn.generation))
        return tracked is not None and tracked.parsers is not None

    def counters(self) -> dict[str, int]:
        """Cumulative counters for self-observation: parser errors, skipped and lost bytes,
        unpaired messages, evictions, and how many connections are tracked now."""
        total = Counter(self._counts)
        for conn in self._conns.values():
            if conn.parsers is not None:
                for parser in conn.parsers:
                    total.update(parser.counters())
        keys = ("records", "messages", "parse_errors", "garbage_bytes", "dropped_bytes",
                "lost_body_bytes", "truncated_messages", "interim_responses", "opaque_bytes",
                "unclassified_bytes", "unpaired_requests", "unpaired_responses",
                "evicted_connections", "evicted_idle", "evicted_lru", "connections_opened",
                "connections_closed")
        out = {k: total[k] for k in keys}
        out["connections"] = len(self._conns)
        return out

    # --- connections
    def _conn_event(self, event: ConnEvent) -> list[HttpRecord]:
        out: list[HttpRecord] = []
        c = event.conn
        key = (c.tgid, c.fd, c.generation)
        if event.opened:
            self._counts["connections_opened"] += 1
            conn = self._conns.get(key)
            if conn is not None and conn.opened:  # a stale entry under a reused key
                del self._conns[key]
                out += self._close(conn)
                conn = None
            if conn is None:
                conn = self._track(key, out)
            else:
                self._conns.move_to_end(key)
            conn.opened = True
            conn.remote_addr, conn.remote_port = event.remote_addr, event.remote_port
            conn.local_addr, conn.local_port = event.local_addr, event.local_port
            if conn.role == Role.UNKNOWN:
                conn.role = event.role
            conn.last_ts = event.ts_ns
            return out
        conn = self._conns.pop(key, None)
        if conn is not None:
            self._counts["connections_closed"] += 1
            out += self._close(conn)
        return out

    def _track(self, key: _Key, out: list[HttpRecord]) -> _Conn:
        conns = self._conns
        while len(conns) >= self.max_connections:
            _, old = conns.popitem(last=False)
            self._counts["evicted_connections"] += 1
            self._counts["evicted_lru"] += 1
            out += self._close(old)
        conn = conns[key] = _Conn(key)
        return conn

    def _close(self, conn: _Conn) -> list[HttpRecord]:
        """The connection ended (or was evicted): finish both streams, pair, count the rest."""
        counts = self._counts
        out: list[HttpRecord] = []
        if conn.pending is not None:
            counts["unclassified_bytes"] += sum(e.size for p in conn.pending for e in p)
        if conn.parsers is not None:
            for parser in sorted(conn.parsers, key=_requests_first):
                self._route(conn, parser, parser.finish())
                counts.update(parser.counters())
            out = self._pair(conn)
        counts["unpaired_requests"] += len(conn.requests)
        counts["unpaired_responses"] += len(conn.responses)
        conn.requests.clear()
        conn.responses.clear()
        return out

    # --- data
    def _data(self, event: DataEvent) -> list[HttpRecord]:
        c = event.conn
        key = (c.tgid, c.fd, c.generation)
        conns = self._conns
        conn = conns.get(key)
        out: list[HttpRecord] = []
        if conn is None:
            conn = self._track(key, out)
        else:
            conns.move_to_end(key)
        conn.last_ts = event.ts_ns
        parsers = conn.parsers
        if parsers is None:
            if conn.pending is None:  # not HTTP: skipped at the cost of this lookup
                self._counts["unclassified_bytes"] += event.size
                return out
            return out + self._infer(conn, event)
        parser = parsers[event.direction]
        messages = parser.feed(event.data, event.ts_ns, event.size)
        if messages:
            queue = conn.requests if parser.kind == _REQUEST else conn.responses
            queue.extend(messages)
            if parser.opaque or len(queue) > self.max_pending:
                self._route(conn, parser, [])
            if conn.requests and conn.responses:
                out += self._pair(conn)
        elif parser.opaque:
            parsers[1 - event.direction].make_opaque()
        return out

    def _infer(self, conn: _Conn, event: DataEvent) -> list[HttpRecord]:
        """Decide from a connection's first bytes whether it carries HTTP and who is the client."""
        assert conn.pending is not None
        pending = conn.pending[event.direction]
        pending.append(event)
        prefix = event.data if len(pending) == 1 else b"".join(e.data for e in pending)
        role = looks_like_http(prefix)
        if role is None:
            if not might_be_http(prefix) or event.size > len(event.data):
                self._counts["unclassified_bytes"] += sum(e.size for e in pending)
                pending.clear()
                conn.tries += 1
                # Its first bytes were seen (opened by connect/accept) and are not HTTP, or
                # enough of a stream joined midway was not: skip the rest of it.
                if (conn.opened and conn.role != Role.UNKNOWN) or conn.tries >= MAX_INFER_TRIES:
                    self._counts["unclassified_bytes"] += sum(e.size for e in conn.pending[
                        1 - event.direction])
                    conn.pending = None
            return []
        requests = event.direction if role == Role.CLIENT else Direction(1 - event.direction)
        conn.role = Role.CLIENT if requests == Direction.EGRESS else Role.SERVER
        kinds = (Kind.REQUEST, Kind.RESPONSE) if requests == 0 else (Kind.RESPONSE, Kind.REQUEST)
        conn.parsers = tuple(  # type: ignore[assignment]
            HttpParser(k, body_limit=self.body_limit, max_head=self.max_head,
                       methods=conn.methods) for k in kinds)
        backlog = sorted(conn.pending[0] + conn.pending[1], key=_ts)
        conn.pending = None
        out: list[HttpRecord] = []
        for e in backlog:
            out += self._data(e)
        return out

    def _route(self, conn: _Conn, parser: HttpParser, messages: list[HttpMessage]) -> None:
        """Queue a parser's messages; switch the connection to opaque if the parser did; bound
        the queue."""
        queue = conn.requests if parser.kind == _REQUEST else conn.responses
        queue.extend(messages)
        if parser.opaque and conn.parsers is not None:
            for other in conn.parsers:
                if not other.opaque:
                    other.make_opaque()
        limit = self.max_pending
        if len(queue) > limit:
            name = "unpaired_requests" if queue is conn.requests else "unpaired_responses"
            while len(queue) > limit:
                queue.popleft()
                self._counts[name] += 1

    def _pair(self, conn: _Conn) -> list[HttpRecord]:
        """Match responses to requests first-in first-out (HTTP/1.x answers in order)."""
        out: list[HttpRecord] = []
        requests, responses = conn.requests, conn.responses
        while requests and responses:
            resp = responses.popleft()
            req = requests[0]
            if resp.first_ts < req.first_ts:  # it answers a request that was never seen
                self._counts["unpaired_responses"] += 1
                continue
            requests.popleft()
            out.append(_record(conn, req, resp))
        if out:
            self._counts["records"] += len(out)
        return out


def _requests_first(parser: HttpParser) -> int:
    return 0 if parser.kind == Kind.REQUEST else 1


def _ts(event: DataEvent) -> int:
    return event.ts_ns


def _record(conn: _Conn, req: HttpMessage, resp: HttpMessage) -> HttpRecord:
    return HttpRecord(
        req.first_ts, conn.remote_addr, conn.remote_port, conn.local_addr, conn.local_port,
        int(conn.role), False, 1, resp.minor, content_type(resp, req),
        req.headers.to_json(req.trailers), req.method, req.path, body_text(req.body),
        req.body_size, resp.headers.to_json(resp.trailers), resp.status, resp.reason,
        body_text(resp.body), resp.body_size, max(0, resp.last_ts - req.first_ts), conn.key[0])


def content_type(resp: HttpMessage, req: HttpMessage) -> int:
    """1 for JSON, 2 for gRPC, else 0: from the response's Content-Type, else the request's."""
    return content_type_of(resp.headers._index.get("content-type")
                           or req.headers._index.get("content-type"))


def content_type_of(value: str | None) -> int:
    """The content_type column value of one Content-Type header value."""
    if not value:
        return CONTENT_UNKNOWN
    value = value.lower()
    if value.startswith("application/grpc"):
        return CONTENT_GRPC
    return CONTENT_JSON if "json" in value else CONTENT_UNKNOWN


def body_text(body: bytes) -> str:
    """A captured body as table text: UTF-8 (a character cut by the truncation is dropped),
    anything else replaced by :data:`BINARY_BODY`.

    >>> body_text("é".encode() * 2), body_text("é".encode()[:1] + b""), body_text(b"\\xff\\xfe")
    ('éé', '', '<removed: non-utf8 body>')
    """
    if not body:
        return ""
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as e:
        if e.end == len(body) and e.start >= len(body) - 3:
            try:
                return body[:e.start].decode("utf-8")
            except UnicodeDecodeError:
                pass
        return BINARY_BODY


_ARROW_TYPES = {DataType.INT64: pa.int64(), DataType.STRING: pa.string(),
                DataType.BOOLEAN: pa.bool_(), DataType.TIME64NS: pa.timestamp("ns")}


def records_to_arrow(records: Sequence[HttpRecord],
                     upid: str | Sequence[str] | None = None) -> pa.RecordBatch:
    """The records as one Arrow batch with exactly the ``http_events`` schema (built column by
    column). ``upid``: one for all records, one per record, or None to leave the column out."""
    n = len(records)
    arrays, names = [], []
    for name, dtype, _, _ in TABLES["http_events"].columns:
        if name == "upid":
            if upid is None:
                continue
            values: list = [upid] * n if isinstance(upid, str) else list(upid)
            if len(values) != n:
                raise ValueError(f"{len(values)} upids for {n} records")
        else:
            values = list(map(attrgetter(name), records))
        arrays.append(column(values, _ARROW_TYPES[dtype]))
        names.append(name)
    return pa.RecordBatch.from_arrays(arrays, names=names)


def records_to_polars(records: Sequence[HttpRecord],
                      upid: str | Sequence[str] | None = None) -> pl.DataFrame:
    """The records as a Polars frame with the ``http_events`` dtypes (see records_to_arrow)."""
    frame = pl.from_arrow(records_to_arrow(records, upid))
    assert isinstance(frame, pl.DataFrame)
    return frame

"""The batch path of HTTP capture (collectors/http_batch.py) against the state machine.

Ring-buffer records are built byte for byte as socket_trace.bpf.c writes them and laid out as
the ring does; HttpEvents then runs them with and without the batch path. Both must give the
same http_events rows and the same counters, however the traffic is cut into batches."""

from __future__ import annotations

import socket
import struct

import numpy as np
import polars as pl
import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collectors.conn_tracker import records_to_arrow
from collectors.http_batch import Head, parse_head, parse_plain_heads
from collectors.http_events import HttpEvents
from collectors.ringbuf import HEADER
from collectors.socket_trace import (
    CONN_EVENT,
    DATA_EVENT,
    EVENT_CLOSE,
    EVENT_DATA,
    EVENT_OPEN,
    DataBatch,
    decode,
)
from engine.store import TableStore

T0 = 1_795_521_600_000_000_000
IN, OUT = 1, 0
CLIENT, SERVER = 1, 2


# --- records as the kernel writes them, laid out as the ring holds them
def data_rec(ts: int, key: tuple[int, int, int], direction: int, payload: bytes,
             size: int | None = None) -> bytes:
    tgid, fd, gen = key
    return DATA_EVENT.struct.pack(ts, EVENT_DATA, tgid, tgid, fd, gen, direction,
                                  len(payload) if size is None else size, len(payload),
                                  0) + payload


def conn_rec(ts: int, key: tuple[int, int, int], opened: bool, role: int = SERVER,
             port: int = 40_000) -> bytes:
    tgid, fd, gen = key
    addr = socket.inet_pton(socket.AF_INET, "10.0.0.5") + bytes(12)
    peer = socket.inet_pton(socket.AF_INET, "10.0.0.9") + bytes(12)
    return CONN_EVENT.struct.pack(ts, EVENT_OPEN if opened else EVENT_CLOSE, tgid, tgid, fd,
                                  gen, role, socket.AF_INET, 8080, port + fd, 0, addr, peer,
                                  0, 0)


def ring_layout(records: list[bytes]) -> tuple[bytes, list[int], list[int]]:
    """What RingBuffer.consume_raw returns for these records."""
    parts, starts, lengths, at = [], [], [], 0
    for rec in records:
        pad = -(len(rec) + HEADER) % 8
        parts.append(struct.pack("<II", len(rec), 0) + rec + bytes(pad))
        starts.append(at + HEADER)
        lengths.append(len(rec))
        at += HEADER + len(rec) + pad
    return b"".join(parts), starts, lengths


class Upids:
    def upid(self, tgid: int, ts_ns: int = 0) -> str:
        return f"00000001-{tgid:08x}-0000000000000000"

    def entry_start(self, tgid: int) -> tuple[int, str]:
        return (0, "test")

    def __len__(self) -> int:
        return 0


def run(records: list[bytes], cuts: list[int], batch_path: bool, **settings):
    """All records through HttpEvents in batches cut at ``cuts``: (rows, http counters)."""
    store = TableStore(budget_bytes=1 << 28)
    collector = HttpEvents(store, host=1, upids=Upids()).configure(batch_path=batch_path,
                                                                   **settings)
    bounds = sorted({0, len(records), *(c % (len(records) + 1) for c in cuts)})
    for a, b in zip(bounds, bounds[1:], strict=False):
        batch = DataBatch(*ring_layout(records[a:b]), 0)
        frames: list = []
        collector._append(collector._feed_batch(batch, frames), frames)
    collector._append(collector.tracker.flush(), final=True)
    rows = store.scan("http_events").collect()
    store.close()
    counters = {k: v for k, v in collector.stats().items()
                if k.startswith("http.") and not k.startswith("http.batch_")}
    return rows.sort(pl.all()), counters, collector.batch.counters


# --- traffic
GET = b"GET /api/items?id=42 HTTP/1.1\r\nHost: shop:8080\r\nAccept: */*\r\n\r\n"
POST = (b"POST /api/orders HTTP/1.1\r\nHost: shop:8080\r\nContent-Type: application/json\r\n"
        b"Content-Length: 11\r\n\r\n{\"qty\": 12}")
OK = (b"HTTP/1.1 200 OK\r\nServer: t\r\nContent-Type: application/json\r\n"
      b"Content-Length: 9\r\n\r\n{\"id\":42}")
REQUESTS = [
    GET, POST,
    b"GET /caf\xc3\xa9 HTTP/1.1\r\nX-Name: \xc3\xa9t\xc3\xa9\r\n\r\n",  # UTF-8 path and value
    b"PUT /u HTTP/1.0\r\nContent-Length: 4\r\nContent-Type: text/plain\r\n\r\n\xff\xfe\x00a",
    b"GET /dup HTTP/1.1\r\nAccept: a\r\naccept: b\r\nX-Q: \"quoted\\\"\r\n\r\n",
    b"HEAD /h HTTP/1.1\r\n\r\n",
    b"POST /chunked HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    b"GET /lf HTTP/1.1\nHost: x\n\n",
    b"OPTIONS * HTTP/1.1\r\nContent-Length: 600\r\n\r\n" + b"x" * 600,
    b"GET /a HTTP/1.1\r\nHost: y\r\n\r\nGET /b HTTP/1.1\r\n\r\n",  # two in one write
]
RESPONSES = [
    OK,
    b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 4\r\n\r\nnope",
    b"HTTP/1.1 204 No Content\r\n\r\n",
    b"HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n\xe2\x82\xac\xe2\x82",  # a cut character
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
    b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    b"HTTP/1.1 500 Internal Server Error \r\nContent-Length: 600\r\nContent-Type: "
    b"application/grpc\r\n\r\n" + b"e" * 600,
    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
    b"garbage",
]


_NAMES = st.sampled_from(["Host", "Accept", "accept", "X-Id", "Content-Type", "content-type",
                          "User-Agent", "X Bad", "Cookie", "Content-Length"])
_VALUES = st.sampled_from(["a", "*/*", "v:1", "x: y", "  padded ", "", "q\"uote", "back\\slash",
                           "t\tab", "\u00e9t\u00e9", "application/json", "application/grpc+proto",
                           "text/plain; charset=utf-8", "3", "007", "5, 5", "12345678901234567890"])


@st.composite
def varied_request(draw) -> bytes:
    """A request head of random fields (plain ones and every oddity parse_head must decide),
    a random path, and a body when it says Content-Length: heads differ from one another, so
    drains hold many distinct ones."""
    method = draw(st.sampled_from(["GET", "POST", "PUT", "HEAD", "DELETE"]))
    path = "/" + draw(st.text("abcxyz019-_/?=&%", max_size=12))
    fields = draw(st.lists(st.tuples(_NAMES, _VALUES), max_size=5))
    body = b""
    lines = []
    for name, value in fields:
        if name.lower() == "content-length":
            continue
        lines.append(f"{name}: {value}")
    if draw(st.booleans()):
        body = draw(st.binary(max_size=40))
        lines.append(f"Content-Length: {len(body)}")
    head = f"{method} {path} HTTP/1.{draw(st.sampled_from([0, 1]))}\r\n"
    return (head + "".join(line + "\r\n" for line in lines) + "\r\n").encode() + body


@st.composite
def varied_response(draw) -> bytes:
    status = draw(st.sampled_from([200, 201, 204, 304, 404, 500]))
    reason = draw(st.sampled_from(["OK", "", " Not Found ", "Server Error"]))
    fields = draw(st.lists(st.tuples(_NAMES, _VALUES), max_size=5))
    lines = [f"{n}: {v}" for n, v in fields if n.lower() != "content-length"]
    body = draw(st.binary(max_size=40)) if status not in (204, 304) else b""
    lines.append(f"Content-Length: {len(body)}")
    start = f"HTTP/1.1 {status}" + (f" {reason}" if reason or draw(st.booleans()) else "")
    return (start + "\r\n" + "".join(line + "\r\n" for line in lines) + "\r\n").encode() + body


@st.composite
def traffic(draw, varied: bool = False) -> list[bytes]:
    """Records of 1-3 connections seen from the server or the client side, interleaved:
    mostly one whole message per write, sometimes split, pipelined, truncated or odd;
    ``varied``: half the exchanges with random heads."""
    nconn = draw(st.integers(1, 3))
    sides = [draw(st.sampled_from([SERVER, CLIENT])) for _ in range(nconn)]
    keys = [(100 + i % 2, 5 + i, 1 + i) for i in range(nconn)]
    opened_at_start = draw(st.lists(st.booleans(), min_size=nconn, max_size=nconn))
    scripts: list[list[tuple[int, bytes, int | None]]] = []
    for i in range(nconn):
        req_dir = IN if sides[i] == SERVER else OUT
        steps: list[tuple[int, bytes, int | None]] = []
        for _ in range(draw(st.integers(1, 12))):
            simple = draw(st.integers(0, 9)) < 7
            req = GET if simple and draw(st.booleans()) else (
                POST if simple else draw(st.sampled_from(REQUESTS)))
            resp = OK if simple else draw(st.sampled_from(RESPONSES))
            if varied and draw(st.booleans()):
                req, resp = draw(varied_request()), draw(varied_response())
            for direction, msg in ((req_dir, req), (1 - req_dir, resp)):
                cut = draw(st.integers(0, 40)) if not simple else 0
                truncated = draw(st.integers(0, 30)) == 0
                if 0 < cut < len(msg):
                    steps += [(direction, msg[:cut], None), (direction, msg[cut:], None)]
                elif truncated:
                    steps.append((direction, msg[:len(msg) // 2], len(msg)))
                else:
                    steps.append((direction, msg, None))
            if draw(st.integers(0, 6)) == 0:  # pipelined: the next request before this answer
                steps[-1], steps[-2] = steps[-2], steps[-1]
        scripts.append(steps)
    records, ts = [], T0
    for i, key in enumerate(keys):
        if opened_at_start[i]:
            records.append(conn_rec(ts, key, True, sides[i]))
    pos = [0] * nconn
    while any(p < len(s) for p, s in zip(pos, scripts, strict=True)):
        i = draw(st.sampled_from([j for j in range(nconn) if pos[j] < len(scripts[j])]))
        direction, payload, size = scripts[i][pos[i]]
        pos[i] += 1
        ts += draw(st.integers(1, 50_000))
        records.append(data_rec(ts, keys[i], direction, payload, size))
    for i, key in enumerate(keys):
        if draw(st.booleans()):
            ts += 1
            records.append(conn_rec(ts, key, False, sides[i]))
    return records


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(traffic(), st.lists(st.integers(0, 1000), max_size=6))
def test_batch_path_gives_the_state_machines_rows_and_counters(records, cuts) -> None:
    slow_rows, slow_counters, _ = run(records, cuts, batch_path=False)
    rows, counters, _ = run(records, cuts, batch_path=True)
    assert rows.schema == slow_rows.schema
    assert rows.equals(slow_rows), (rows, slow_rows)
    assert counters == slow_counters


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(traffic(varied=True), st.lists(st.integers(0, 1000), max_size=6))
def test_heads_taken_apart_by_polars_read_as_parse_head_reads_them(records, cuts) -> None:
    """Every drain's heads through parse_plain_heads (not only drains of many distinct ones):
    random fields, paths, values that need JSON escapes, blanks, names given twice, odd
    Content-Lengths and content types."""
    import collectors.http_batch as hb

    slow_rows, slow_counters, _ = run(records, cuts, batch_path=False)
    saved, hb.PLAIN_HEADS_FROM = hb.PLAIN_HEADS_FROM, 0
    try:
        rows, counters, _ = run(records, cuts, batch_path=True)
    finally:
        hb.PLAIN_HEADS_FROM = saved
    assert rows.equals(slow_rows), (rows, slow_rows)
    assert counters == slow_counters


def keep_alive(conns: int, exchanges: int) -> list[bytes]:
    keys = [(100, 5 + i, 1 + i) for i in range(conns)]
    records = [conn_rec(T0, k, True) for k in keys]
    ts = T0
    for n in range(exchanges):
        for k in keys:
            ts += 1000
            records.append(data_rec(ts, k, IN, GET if n % 3 else POST))
            ts += 1000
            records.append(data_rec(ts, k, OUT, OK))
    return records


def test_keep_alive_traffic_goes_through_the_batch_path() -> None:
    records = keep_alive(conns=4, exchanges=300)
    cuts = list(range(0, len(records), 500))
    slow_rows, slow_counters, _ = run(records, cuts, batch_path=False)
    rows, counters, batch = run(records, cuts, batch_path=True)
    assert rows.equals(slow_rows) and counters == slow_counters
    assert rows.height == 1200
    # The first exchange of each connection goes to the state machine (it learns the
    # connection carries HTTP); after that the batch path takes all but the requests answered
    # in a later batch.
    assert batch["rows"] >= 1200 - 4 - 2 * len(cuts)
    assert batch["heads_parsed"] == 3  # GET, POST and OK: each distinct head parsed once
    row = rows.filter(pl.col("req_method") == "POST").row(0, named=True)
    assert row["req_body"] == '{"qty": 12}' and row["resp_body"] == '{"id":42}'
    assert row["content_type"] == 1 and row["latency"] == 1000 and row["trace_role"] == SERVER


def test_a_connection_with_anything_unusual_is_left_to_the_state_machine() -> None:
    records = keep_alive(conns=2, exchanges=20)
    ts = T0 + 10**9
    chunked = REQUESTS[6]
    records += [data_rec(ts, (100, 5, 1), IN, chunked), data_rec(ts + 1, (100, 5, 1), OUT, OK),
                data_rec(ts + 2, (100, 6, 2), IN, GET), data_rec(ts + 3, (100, 6, 2), OUT, OK)]
    cut = [len(records) - 4]
    # the last batch: connection 5 has a chunked request (all its records go to the state
    # machine), connection 6 is taken
    slow_rows, _, _ = run(records, cut, batch_path=False)
    rows, _, batch = run(records, cut, batch_path=True)
    assert rows.equals(slow_rows)
    # first batch: each connection's first exchange goes to the state machine (it learns the
    # connection carries HTTP), the batch path takes the other 19
    assert batch["rows"] == 2 * 19 + 1 and batch["left"] == 2


def test_same_rows_as_decode_and_the_tracker_alone() -> None:
    """DataBatch.events gives exactly what decode() gives for the same records."""
    records = keep_alive(conns=2, exchanges=5) + [conn_rec(T0 + 10**6, (100, 5, 1), False)]
    batch = DataBatch(*ring_layout(records), 7)
    assert batch.events() == decode(records, 7)
    last = len(records) - 1
    assert batch.events(np.array([0, 3])) == [e for i, e in enumerate(decode(records, 7))
                                              if i in (0, 1, 2, 5, last)]


def test_rows_of_the_batch_path_have_the_schema_of_the_state_machines() -> None:
    collector = HttpEvents(TableStore(), host=1, upids=Upids())
    records = keep_alive(2, 10)
    collector._feed_batch(DataBatch(*ring_layout(records[:6]), 0), [])
    frame, left = collector.batch.run(DataBatch(*ring_layout(records[6:]), 0), collector._accept)
    assert frame is not None and frame.num_rows == 18 and len(left) == 0
    # the same columns and types, strings as views where a column repeats a few strings
    # (Polars reads both as its String)
    plain = {pa.string_view(): pa.string()}
    assert [(f.name, plain.get(f.type, f.type)) for f in frame.schema] == \
        [(f.name, f.type) for f in records_to_arrow([], upid=[]).schema]
    stored = pl.from_arrow(frame)
    assert stored.schema == pl.from_arrow(records_to_arrow([], upid=[])).schema


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(varied_request(), varied_response(), st.sampled_from(REQUESTS),
                          st.sampled_from(RESPONSES)), min_size=1, max_size=40))
def test_parse_plain_heads_agrees_with_parse_head(messages) -> None:
    """Head by head: what Polars takes apart reads as parse_head reads it, what it declines
    parse_head declines too, and the rest is left to parse_head."""
    heads = [m[:m.index(b"\r\n\r\n") + 4] for m in messages if b"\r\n\r\n" in m]
    if not heads:
        return
    table, left = parse_plain_heads(pa.array(heads, type=pa.binary()), max_head=1 << 16)
    taken = {row["i"]: row for row in table.iter_rows(named=True)}
    assert not set(taken) & set(left.tolist())
    for i, raw in enumerate(heads):
        want = parse_head(raw, max_head=1 << 16)
        if i in taken:
            got = taken[i]
            assert want is not None, raw
            assert tuple(got[k] for k in Head._fields) == tuple(want), raw
        elif i not in left:
            assert want is None, raw


def test_parse_head_declines_what_it_does_not_frame() -> None:
    head = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    assert parse_head(head, max_head=1 << 16).path == "/"
    assert parse_head(b"HEAD / HTTP/1.1\r\n\r\n", max_head=1 << 16) is None
    assert parse_head(b"HTTP/1.1 200 OK\r\n\r\n", max_head=1 << 16) is None  # until close
    assert parse_head(b"HTTP/1.1 100 Continue\r\n\r\n", max_head=1 << 16) is None
    assert parse_head(b"HTTP/1.1 204 No\r\nContent-Length: 5\r\n\r\n", max_head=64).length == 0
    assert parse_head(b"GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n", max_head=1 << 16) is None
    assert parse_head(head, max_head=len(head) - 1) is None

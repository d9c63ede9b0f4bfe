"""Connection tracking: reassembly of both directions, pairing, eviction, counters, batches."""

from __future__ import annotations

import json
import time

import polars as pl
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collectors.conn_tracker import (
    BINARY_BODY,
    RECORD_COLUMNS,
    ConnTracker,
    HttpRecord,
    body_text,
    records_to_arrow,
    records_to_polars,
)
from collectors.events import ConnEvent, ConnKey, DataEvent, Direction, Role
from engine.tables import TABLES

IN, OUT = Direction.INGRESS, Direction.EGRESS
K = ConnKey(tgid=100, fd=7, generation=1)
T0 = 1_795_521_600_000_000_000

GET = b"GET /api/items?id=42 HTTP/1.1\r\nHost: shop:8080\r\nAccept: */*\r\n\r\n"
POST = (b"POST /api/orders HTTP/1.1\r\nHost: shop:8080\r\nContent-Type: application/json\r\n"
        b"Content-Length: 11\r\n\r\n{\"qty\": 12}")
OK_JSON = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 9\r\n\r\n"
           b"{\"id\":42}")
CREATED = b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"
NOT_FOUND = b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 4\r\n\r\nnope"


def opened(ts: int = T0, key: ConnKey = K, role: Role = Role.SERVER) -> ConnEvent:
    return ConnEvent(ts, key, True, role, 2, "10.0.0.5", 8080, "10.0.0.9", 51234)


def closed(ts: int, key: ConnKey = K) -> ConnEvent:
    return ConnEvent(ts, key, False, Role.UNKNOWN, 2, "10.0.0.5", 8080, "10.0.0.9", 51234)


def data(ts: int, direction: Direction, raw: bytes, key: ConnKey = K,
         size: int | None = None) -> DataEvent:
    return DataEvent(ts, key, direction, raw, len(raw) if size is None else size)


def server(*exchanges: tuple[bytes, bytes], step: int = 1000) -> list[DataEvent | ConnEvent]:
    """Events of a traced server answering each request in turn."""
    events: list[DataEvent | ConnEvent] = [opened()]
    ts = T0
    for req, resp in exchanges:
        ts += step
        events.append(data(ts, IN, req))
        ts += step
        events.append(data(ts, OUT, resp))
    return events


# --- records
def test_server_side_record_has_every_column() -> None:
    t = ConnTracker()
    [r] = t.feed_all(server((POST, OK_JSON)))
    assert r == HttpRecord(
        time_=T0 + 1000, remote_addr="10.0.0.9", remote_port=51234, local_addr="10.0.0.5",
        local_port=8080, trace_role=2, encrypted=False, major_version=1, minor_version=1,
        content_type=1,
        req_headers='{"Host":"shop:8080","Content-Type":"application/json","Content-Length":"11"}',
        req_method="POST", req_path="/api/orders", req_body='{"qty": 12}', req_body_size=11,
        resp_headers='{"Content-Type":"application/json","Content-Length":"9"}',
        resp_status=200, resp_message="OK", resp_body='{"id":42}', resp_body_size=9,
        latency=1000)
    assert t.counters()["records"] == 1


def test_client_side_role_comes_from_the_direction_of_requests() -> None:
    t = ConnTracker()
    events = [opened(role=Role.UNKNOWN), data(T0 + 1, OUT, GET), data(T0 + 9, IN, NOT_FOUND)]
    [r] = t.feed_all(events)
    assert (r.trace_role, r.resp_status, r.resp_body, r.latency) == (1, 404, "nope", 8)
    assert r.content_type == 0


def test_unknown_addresses_without_an_open_event() -> None:
    t = ConnTracker()
    [r] = t.feed_all([data(5, IN, GET), data(7, OUT, CREATED)])
    assert (r.remote_addr, r.remote_port, r.local_addr, r.local_port) == ("", 0, "", 0)
    assert r.trace_role == 2 and r.time_ == 5 and r.latency == 2


def test_keep_alive_and_pipelining_pair_first_in_first_out() -> None:
    t = ConnTracker()
    out = t.feed_all([opened(), data(T0 + 1, IN, GET + POST + GET),
                      data(T0 + 2, OUT, OK_JSON), data(T0 + 3, OUT, CREATED + NOT_FOUND),
                      data(T0 + 4, IN, POST), data(T0 + 5, OUT, CREATED)])
    assert [(r.req_method, r.resp_status) for r in out] == [
        ("GET", 200), ("POST", 201), ("GET", 404), ("POST", 201)]
    assert [r.latency for r in out] == [1, 2, 2, 1]
    assert t.counters()["unpaired_requests"] == t.counters()["unpaired_responses"] == 0


def test_request_response_split_at_every_byte_boundary() -> None:
    want = ConnTracker().feed_all(server((POST, NOT_FOUND)))[0]
    for i in range(1, len(POST)):
        for j in (1, len(NOT_FOUND) // 2, len(NOT_FOUND) - 1):
            t = ConnTracker()
            out = t.feed_all([opened(), data(T0 + 10, IN, POST[:i]), data(T0 + 20, IN, POST[i:]),
                              data(T0 + 30, OUT, NOT_FOUND[:j]),
                              data(T0 + 40, OUT, NOT_FOUND[j:])])
            assert len(out) == 1, (i, j)
            r = out[0]
            assert (r.time_, r.latency) == (T0 + 10, 30)
            for name in RECORD_COLUMNS:
                if name not in ("time_", "latency"):
                    assert getattr(r, name) == getattr(want, name), (i, j, name)


def test_response_split_at_every_byte_boundary() -> None:
    want = ConnTracker().feed_all(server((GET, OK_JSON)))[0]
    for j in range(1, len(OK_JSON)):
        t = ConnTracker()
        out = t.feed_all([opened(), data(T0 + 1, IN, GET), data(T0 + 2, OUT, OK_JSON[:j]),
                          data(T0 + 3, OUT, OK_JSON[j:])])
        assert [(r.resp_body, r.resp_headers, r.latency) for r in out] == [
            (want.resp_body, want.resp_headers, 2)], j


def test_many_small_writes_from_a_client() -> None:
    t = ConnTracker()
    events: list[DataEvent | ConnEvent] = [opened(role=Role.CLIENT)]
    ts = T0
    for i in range(len(POST)):  # one byte per write, protocol inferred from the first few
        ts += 1
        events.append(data(ts, OUT, POST[i:i + 1]))
    for i in range(0, len(CREATED), 3):
        ts += 1
        events.append(data(ts, IN, CREATED[i:i + 3]))
    [r] = t.feed_all(events)
    assert (r.trace_role, r.req_method, r.req_body, r.resp_status) == (1, "POST", '{"qty": 12}', 201)
    assert r.time_ == T0 + 1 and r.latency == ts - (T0 + 1)
    assert t.counters()["unclassified_bytes"] == 0


def test_truncated_capture_keeps_pairing_in_sync() -> None:
    body = b"GET /not-a-request HTTP/1.1\r\n\r\n" * 4000
    upload = (b"PUT /big HTTP/1.1\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n"
              + body)
    t = ConnTracker()
    out = t.feed_all([opened(), data(T0 + 1, IN, upload[:4096], size=len(upload)),
                      data(T0 + 2, OUT, CREATED), data(T0 + 3, IN, GET),
                      data(T0 + 4, OUT, OK_JSON)])
    assert [(r.req_path, r.req_body_size, r.resp_status) for r in out] == [
        ("/big", len(body), 201), ("/api/items?id=42", 0, 200)]
    assert len(out[0].req_body) == 512
    c = t.counters()
    assert c["lost_body_bytes"] == len(upload) - 4096 and c["parse_errors"] == 0


def test_100_continue_does_not_break_pairing() -> None:
    head = (b"POST /upload HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
    t = ConnTracker()
    out = t.feed_all([opened(), data(T0 + 1, IN, head),
                      data(T0 + 2, OUT, b"HTTP/1.1 100 Continue\r\n\r\n"),
                      data(T0 + 3, IN, b"hello"), data(T0 + 4, OUT, CREATED),
                      data(T0 + 5, IN, GET), data(T0 + 6, OUT, OK_JSON)])
    assert [(r.req_path, r.req_body, r.resp_status, r.latency) for r in out] == [
        ("/upload", "hello", 201, 3), ("/api/items?id=42", "", 200, 1)]
    assert t.counters()["interim_responses"] == 1


def test_early_final_response_waits_for_the_request_to_complete() -> None:
    head = b"POST /upload HTTP/1.1\r\nContent-Length: 5\r\n\r\n"
    t = ConnTracker()
    assert t.feed_all([opened(), data(T0 + 1, IN, head), data(T0 + 2, OUT, NOT_FOUND)]) == []
    [r] = t.feed(data(T0 + 3, IN, b"12345"))
    assert (r.req_body, r.resp_status, r.latency) == ("12345", 404, 1)


def test_head_responses_have_no_body() -> None:
    t = ConnTracker()
    out = t.feed_all([opened(), data(T0 + 1, IN, b"HEAD /file HTTP/1.1\r\n\r\n" + GET),
                      data(T0 + 2, OUT, b"HTTP/1.1 200 OK\r\nContent-Length: 4096\r\n\r\n"
                           + OK_JSON)])
    assert [(r.req_method, r.resp_body_size, r.resp_body) for r in out] == [
        ("HEAD", 0, ""), ("GET", 9, '{"id":42}')]


@pytest.mark.parametrize("status", [204, 304])
def test_204_304_without_bodies(status: int) -> None:
    resp = f"HTTP/1.1 {status} Whatever\r\nETag: \"x\"\r\n\r\n".encode()
    t = ConnTracker()
    out = t.feed_all(server((GET, resp), (GET, OK_JSON)))
    assert [r.resp_status for r in out] == [status, 200]


def test_upgrade_makes_both_directions_opaque() -> None:
    req = b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
    resp = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n"
    frames = b"\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58" + GET
    t = ConnTracker()
    out = t.feed_all([opened(), data(T0 + 1, IN, req), data(T0 + 2, OUT, resp),
                      data(T0 + 3, IN, frames), data(T0 + 4, OUT, frames), closed(T0 + 5)])
    assert [(r.req_path, r.resp_status) for r in out] == [("/ws", 101)]
    c = t.counters()
    assert c["opaque_bytes"] == 2 * len(frames) and c["garbage_bytes"] == 0
    assert c["unpaired_requests"] == 0 and c["parse_errors"] == 0


def test_connect_tunnel_is_opaque() -> None:
    t = ConnTracker()
    tls = b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" * 3
    out = t.feed_all([opened(role=Role.CLIENT),
                      data(T0 + 1, OUT, b"CONNECT api.example.com:443 HTTP/1.1\r\n\r\n"),
                      data(T0 + 2, IN, b"HTTP/1.1 200 Connection established\r\n\r\n"),
                      data(T0 + 3, OUT, tls), data(T0 + 4, IN, tls)])
    assert [(r.req_method, r.req_path, r.resp_status) for r in out] == [
        ("CONNECT", "api.example.com:443", 200)]
    assert t.counters()["opaque_bytes"] == 2 * len(tls)


def test_connection_close_body_is_flushed_on_close() -> None:
    t = ConnTracker()
    assert t.feed_all([opened(), data(T0 + 1, IN, GET),
                       data(T0 + 2, OUT, b"HTTP/1.0 200 OK\r\nConnection: close\r\n\r\nall "),
                       data(T0 + 3, OUT, b"of it")]) == []
    [r] = t.feed(closed(T0 + 9))
    assert (r.resp_body, r.resp_body_size, r.latency) == ("all of it", 9, 2)
    c = t.counters()
    assert c["connections"] == 0 and c["connections_closed"] == 1


def test_garbage_connection_yields_nothing_and_is_counted() -> None:
    t = ConnTracker()
    tls = bytes.fromhex("1603010200010001fc0303") + bytes(200)
    out = t.feed_all([opened(), data(T0 + 1, IN, tls), data(T0 + 2, OUT, tls), closed(T0 + 3)])
    assert out == [] and t.counters()["unclassified_bytes"] == 2 * len(tls)


def test_garbage_inside_an_http_connection_is_skipped() -> None:
    t = ConnTracker()
    out = t.feed_all([opened(), data(T0 + 1, IN, GET), data(T0 + 2, OUT, OK_JSON),
                      data(T0 + 3, IN, b"\x00\xffjunk\x01" + POST), data(T0 + 4, OUT, CREATED)])
    assert [r.req_method for r in out] == ["GET", "POST"]
    assert t.counters()["garbage_bytes"] == 7 and t.counters()["parse_errors"] == 1


def test_capture_started_mid_connection() -> None:
    t = ConnTracker()
    out = t.feed_all([data(T0 + 1, OUT, b"rest of some body\r\n"), data(T0 + 2, IN, GET),
                      data(T0 + 3, OUT, OK_JSON)])
    assert [r.req_path for r in out] == ["/api/items?id=42"]
    assert t.counters()["unclassified_bytes"] == 19


def test_response_without_a_request_is_unpaired() -> None:
    t = ConnTracker()
    out = t.feed_all([opened(), data(T0 + 1, OUT, NOT_FOUND), data(T0 + 2, IN, GET),
                      data(T0 + 3, OUT, OK_JSON)])
    assert [(r.req_path, r.resp_status) for r in out] == [("/api/items?id=42", 200)]
    assert t.counters()["unpaired_responses"] == 1


def test_close_counts_requests_left_unanswered() -> None:
    t = ConnTracker()
    t.feed_all([opened(), data(T0 + 1, IN, GET + GET), data(T0 + 2, OUT, OK_JSON)])
    assert t.feed(closed(T0 + 3)) == [] and t.counters()["unpaired_requests"] == 1


def test_idle_connections_are_evicted() -> None:
    t = ConnTracker(idle_timeout_ns=1_000)
    other = ConnKey(100, 8, 1)
    t.feed_all([opened(), data(T0 + 1, IN, GET)])
    assert len(t) == 1
    t.feed(data(T0 + 500, IN, GET, key=other))
    assert len(t) == 2
    t.feed(data(T0 + 1_200, IN, GET, key=other))  # K was last seen at T0 + 1
    c = t.counters()
    assert len(t) == 1 and c["evicted_idle"] == c["evicted_connections"] == 1
    assert c["unpaired_requests"] == 1
    assert t.evict_idle(T0 + 10_000) == [] and len(t) == 0


def test_least_recently_used_connections_are_evicted_over_the_cap() -> None:
    t = ConnTracker(max_connections=2)
    keys = [ConnKey(1, fd, 1) for fd in range(4)]
    for i, k in enumerate(keys):
        t.feed(data(T0 + i, IN, GET, key=k))
        t.feed(data(T0 + i, IN, b"", key=keys[0]))  # keep the first one in use
    c = t.counters()
    assert len(t) == 2 and c["evicted_lru"] == 2 and c["connections"] == 2


def test_reused_key_flushes_the_stale_connection() -> None:
    t = ConnTracker()
    t.feed_all([opened(), data(T0 + 1, IN, GET)])
    assert t.feed(opened(T0 + 2)) == []
    assert t.counters()["unpaired_requests"] == 1
    [r] = t.feed_all([data(T0 + 3, IN, GET), data(T0 + 4, OUT, CREATED)])
    assert r.latency == 1


def test_flush_closes_everything() -> None:
    t = ConnTracker()
    t.feed_all([opened(), data(T0 + 1, IN, GET),
                data(T0 + 2, OUT, b"HTTP/1.1 200 OK\r\n\r\nstreamed")])
    [r] = t.flush()
    assert r.resp_body == "streamed" and len(t) == 0


def test_counters_are_a_flat_dict_of_ints() -> None:
    c = ConnTracker().counters()
    assert all(isinstance(v, int) for v in c.values())
    for key in ("parse_errors", "dropped_bytes", "unpaired_requests", "unpaired_responses",
                "evicted_connections", "garbage_bytes", "records", "connections"):
        assert key in c


def test_content_types_and_bodies() -> None:
    grpc = b"HTTP/1.1 200 OK\r\nContent-Type: application/grpc+proto\r\nContent-Length: 0\r\n\r\n"
    t = ConnTracker()
    out = t.feed_all(server((GET, OK_JSON), (GET, grpc), (GET, NOT_FOUND), (POST, CREATED)))
    assert [r.content_type for r in out] == [1, 2, 0, 1]  # the last from the request's type
    assert body_text(b"\x89PNG\r\n\x1a\n\x00\x00") == BINARY_BODY
    assert body_text("naïve".encode()[:3]) == "na"


# --- batches
def test_record_columns_are_http_events_without_upid() -> None:
    names = [n for n, *_ in TABLES["http_events"].columns if n != "upid"]
    assert list(RECORD_COLUMNS) == names


def test_records_to_arrow_and_polars_have_the_table_schema() -> None:
    records = ConnTracker().feed_all(server((GET, OK_JSON), (POST, CREATED)))
    spec = TABLES["http_events"]
    batch = records_to_arrow(records, upid="00000001-0000abcd-0000000000000001")
    assert batch.schema.names == [n for n, *_ in spec.columns]
    assert batch.schema.field("time_").type == pa.timestamp("ns")
    assert batch.column("upid").to_pylist() == ["00000001-0000abcd-0000000000000001"] * 2
    frame = records_to_polars(records, upid=["a", "b"])
    assert dict(frame.schema) == spec.schema.polars()
    assert frame["upid"].to_list() == ["a", "b"]
    assert frame["time_"].cast(pl.Int64).to_list() == [r.time_ for r in records]
    bare = records_to_arrow(records)
    assert "upid" not in bare.schema.names and bare.num_rows == 2
    assert records_to_polars([], upid="x").height == 0
    with pytest.raises(ValueError):
        records_to_arrow(records, upid=["only-one"])


def test_headers_columns_are_json_objects() -> None:
    [r] = ConnTracker().feed_all(server((GET, OK_JSON)))
    assert json.loads(r.req_headers) == {"Host": "shop:8080", "Accept": "*/*"}
    assert json.loads(r.resp_headers)["Content-Type"] == "application/json"


# --- fuzzing the whole tracker
EXCHANGES = st.sampled_from([(GET, OK_JSON), (POST, CREATED), (GET, NOT_FOUND),
                             (b"HEAD /h HTTP/1.1\r\n\r\n",
                              b"HTTP/1.1 200 OK\r\nContent-Length: 77\r\n\r\n"),
                             (b"DELETE /d HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
                              b"HTTP/1.1 204 No Content\r\n\r\n")])


def split(raw: bytes, cuts: list[int]) -> list[bytes]:
    bounds = sorted({0, len(raw), *(c % (len(raw) + 1) for c in cuts)})
    return [raw[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(EXCHANGES, min_size=1, max_size=6), st.integers(1, 3),
       st.lists(st.integers(0, 10_000), max_size=6), st.lists(st.integers(0, 10_000), max_size=6),
       st.sampled_from([IN, OUT]))
def test_any_split_and_pipelining_depth_pairs_every_exchange(exchanges, depth, rcuts, scuts,
                                                              req_dir) -> None:
    """Requests sent in groups of ``depth`` (pipelined), each direction cut at random points;
    responses never precede their requests. Every exchange comes out, in order."""
    t = ConnTracker()
    events: list[DataEvent | ConnEvent] = [opened()]
    ts = T0
    resp_dir = Direction(1 - req_dir)
    for g in range(0, len(exchanges), depth):
        group = exchanges[g:g + depth]
        for piece in split(b"".join(q for q, _ in group), rcuts):
            ts += 1
            events.append(data(ts, req_dir, piece))
        for piece in split(b"".join(s for _, s in group), scuts):
            ts += 1
            events.append(data(ts, resp_dir, piece))
    out = t.feed_all(events) + t.feed(closed(ts + 1))
    assert [(r.req_method, r.resp_status) for r in out] == [
        (q.split(b" ")[0].decode(), int(s.split(b" ")[1])) for q, s in exchanges]
    assert all(r.trace_role == (2 if req_dir == IN else 1) for r in out)
    c = t.counters()
    assert c["parse_errors"] == c["unpaired_requests"] == c["unpaired_responses"] == 0


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.sampled_from([IN, OUT]), st.binary(max_size=200),
                          st.integers(0, 9000)), max_size=25))
def test_tracker_never_raises_on_arbitrary_events(raw_events) -> None:
    t = ConnTracker(max_connections=3, idle_timeout_ns=50)
    for i, (fd, direction, payload, extra) in enumerate(raw_events):
        key = ConnKey(1, fd, 1)
        if extra % 7 == 0:
            t.feed(opened(i, key) if extra % 2 else closed(i, key))
        records = t.feed(data(i, direction, payload, key=key, size=len(payload) + extra % 5000))
        for r in records:
            assert r.latency >= 0 and len(r.req_body) <= 512 * 4
    t.flush()
    assert len(t) == 0


# --- throughput (reported, not asserted)
def _benchmark_events(pairs: int, conns: int = 64) -> list[DataEvent | ConnEvent]:
    resp = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 26\r\n"
            b"Date: Tue, 24 Nov 2026 11:00:00 GMT\r\n\r\n{\"id\":42,\"name\":\"widget\"}\n")
    keys = [ConnKey(1, fd, 1) for fd in range(conns)]
    events: list[DataEvent | ConnEvent] = [opened(T0, k) for k in keys]
    ts = T0
    for i in range(pairs):
        k = keys[i % conns]
        ts += 1000
        events.append(DataEvent(ts, k, IN, GET, len(GET)))
        ts += 1000
        events.append(DataEvent(ts, k, OUT, resp, len(resp)))
    return events


class _Report:
    """Adds the measured throughput to pytest's terminal summary."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def pytest_terminal_summary(self, terminalreporter) -> None:
        terminalreporter.write_sep("-", "HTTP/1.x tracker throughput (one core, CPU time)")
        for line in self.lines:
            terminalreporter.write_line(line)


def test_throughput_is_reported(request: pytest.FixtureRequest, record_property) -> None:
    pairs = 20_000
    events = _benchmark_events(pairs)
    best = parse_best = float("inf")
    for _ in range(3):
        t = ConnTracker()
        start = time.process_time()
        records = t.feed_all(events)
        middle = time.process_time()
        records_to_arrow(records, upid="u")
        end = time.process_time()
        assert len(records) == pairs
        parse_best = min(parse_best, middle - start)
        best = min(best, end - start)
    start = time.process_time()
    for _ in range(1_000_000):
        pass
    loop_ns = (time.process_time() - start) * 1e3  # ns per empty loop iteration
    record_property("http_pairs_per_second", round(pairs / parse_best))
    report = _Report()
    report.lines.append(f"{pairs / parse_best:,.0f} request/response pairs/s parsed and paired; "
                        f"{pairs / best:,.0f} pairs/s including the Arrow batch "
                        f"(calibration: an empty Python loop iteration took {loop_ns:.0f} ns)")
    name = "http1-throughput-report"
    if request.config.pluginmanager.get_plugin(name) is None:
        request.config.pluginmanager.register(report, name)


def test_docstring_examples() -> None:
    import doctest

    import collectors.conn_tracker

    result = doctest.testmod(collectors.conn_tracker, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0

"""The HTTP/1.x parser of one direction: framing, splits, truncated capture, garbage, limits."""

from __future__ import annotations

import json
from collections import deque

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collectors.events import Role
from collectors.protocols.http1 import (
    BODY_LIMIT,
    MAX_LINE,
    HttpMessage,
    HttpParser,
    Kind,
    looks_like_http,
    might_be_http,
)
from collectors.protocols.http_headers import Headers, parse_fields

REQ, RESP = Kind.REQUEST, Kind.RESPONSE


def run(kind: Kind | None, *pieces: bytes | tuple[bytes, int], methods: list[str] | None = None,
        finish: bool = False, **options) -> tuple[list[HttpMessage], HttpParser]:
    """Feed ``pieces`` (bytes, or (captured bytes, syscall size)) at ts 1, 2, 3 …"""
    parser = HttpParser(kind, methods=deque(methods or []), **options)
    out: list[HttpMessage] = []
    for ts, piece in enumerate(pieces, start=1):
        data, size = piece if isinstance(piece, tuple) else (piece, None)
        out += parser.feed(data, ts, size)
    if finish:
        out += parser.finish()
    return out, parser


def shape(msg: HttpMessage) -> tuple:
    """A message without its timestamps (which depend on how the stream was split)."""
    return (msg.kind, msg.minor, msg.method, msg.path, msg.status, msg.reason, msg.headers.items,
            msg.trailers.items, msg.body, msg.body_size, msg.body_lost, msg.complete)


GET = b"GET /items?id=42&x=%20y HTTP/1.1\r\nHost: svc.local\r\nAccept: */*\r\n\r\n"
POST = (b"POST /orders HTTP/1.1\r\nHost: svc.local\r\nContent-Type: application/json\r\n"
        b"Content-Length: 13\r\n\r\n{\"qty\": 1234}")
OK = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello"
NOT_FOUND = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"


# --- requests and responses
def test_request_line_headers_and_body() -> None:
    [m], p = run(REQ, POST)
    assert (m.method, m.path, m.major, m.minor) == ("POST", "/orders", 1, 1)
    assert m.headers.items == (("Host", "svc.local"), ("Content-Type", "application/json"),
                               ("Content-Length", "13"))
    assert m.headers["content-type"] == m.headers["CONTENT-TYPE"] == "application/json"
    assert "host" in m.headers and m.headers.get("x-missing") is None
    assert json.loads(m.headers.to_json()) == dict(m.headers.items)
    assert (m.body, m.body_size, m.body_lost, m.complete) == (b'{"qty": 1234}', 13, 0, True)
    assert (m.first_ts, m.last_ts) == (1, 1)
    assert p.counters()["messages"] == 1 and p.buffered == 0


def test_path_keeps_query_string_and_http10() -> None:
    [m], _ = run(REQ, b"GET /a/b?c=1&d=%2F HTTP/1.0\r\n\r\n")
    assert (m.path, m.minor, m.body_size) == ("/a/b?c=1&d=%2F", 0, 0)


def test_response_status_reason_and_empty_reason() -> None:
    [a, b], _ = run(RESP, OK + b"HTTP/1.1 503\r\nContent-Length: 0\r\n\r\n")
    assert (a.status, a.reason, a.body, a.body_size) == (200, "OK", b"hello", 5)
    assert (b.status, b.reason) == (503, "")


def test_body_truncated_to_limit_with_full_size() -> None:
    body = bytes(range(256)) * 8
    [m], _ = run(REQ, b"PUT /blob HTTP/1.1\r\nContent-Length: 2048\r\n\r\n" + body)
    assert m.body == body[:BODY_LIMIT] and m.body_size == 2048
    [m], _ = run(REQ, b"PUT /blob HTTP/1.1\r\nContent-Length: 2048\r\n\r\n" + body, body_limit=10)
    assert m.body == body[:10] and m.body_size == 2048


def test_keep_alive_messages_in_separate_reads() -> None:
    msgs, _ = run(REQ, GET, POST, GET)
    assert [m.method for m in msgs] == ["GET", "POST", "GET"]
    assert [(m.first_ts, m.last_ts) for m in msgs] == [(1, 1), (2, 2), (3, 3)]


def test_pipelining_several_messages_in_one_read() -> None:
    msgs, _ = run(REQ, GET + POST + GET + POST)
    assert [m.method for m in msgs] == ["GET", "POST", "GET", "POST"]
    msgs, _ = run(RESP, OK + NOT_FOUND + OK)
    assert [m.status for m in msgs] == [200, 404, 200]


def test_lf_only_line_endings_and_blank_lines_between_messages() -> None:
    msgs, p = run(REQ, b"GET /a HTTP/1.1\nHost: x\n\n\r\n\r\nGET /b HTTP/1.1\nHost: y\n\n")
    assert [(m.path, m.headers["host"]) for m in msgs] == [("/a", "x"), ("/b", "y")]
    assert p.parse_errors == 0 and p.garbage_bytes == 0


def test_any_method_token_and_absolute_or_asterisk_targets() -> None:
    msgs, _ = run(REQ, b"OPTIONS * HTTP/1.1\r\n\r\n", b"PURGE http://h/x HTTP/1.1\r\n\r\n",
                  b"MY-METHOD /x HTTP/1.1\r\n\r\n")
    assert [(m.method, m.path) for m in msgs] == [("OPTIONS", "*"), ("PURGE", "http://h/x"),
                                                   ("MY-METHOD", "/x")]


# --- chunked bodies
CHUNKED = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Checksum\r\n\r\n"
           b"5;name=value\r\nhello\r\n"
           b"6 ; quoted=\"a;b\"\r\n world\r\n"
           b"0\r\nX-Checksum: abc123\r\nX-Count: 2\r\n\r\n")


def test_chunked_with_extensions_and_trailers() -> None:
    (m, after), p = run(RESP, CHUNKED + NOT_FOUND)
    assert (m.body, m.body_size, m.complete) == (b"hello world", 11, True)
    assert m.trailers.items == (("X-Checksum", "abc123"), ("X-Count", "2"))
    assert after.status == 404 and p.parse_errors == 0


def test_chunked_request_and_uppercase_hex_and_chunked_after_other_codings() -> None:
    raw = (b"POST /up HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
           b"A\r\n0123456789\r\n1a\r\n" + b"z" * 26 + b"\r\n0\r\n\r\n")
    [m], _ = run(REQ, raw)
    assert m.body_size == 36 and m.body == b"0123456789" + b"z" * 26


def test_chunked_body_truncated_to_limit() -> None:
    raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + \
        b"".join(b"100\r\n" + bytes([65 + i]) * 256 + b"\r\n" for i in range(4)) + b"0\r\n\r\n"
    [m], _ = run(RESP, raw)
    assert m.body_size == 1024 and m.body == b"A" * 256 + b"B" * 256


def test_bad_chunk_size_returns_message_incomplete_and_resyncs() -> None:
    raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nxx\r\n" + NOT_FOUND
    msgs, p = run(RESP, raw)
    assert [(m.status, m.complete) for m in msgs] == [(200, False), (404, True)]
    assert p.parse_errors == 1 and p.truncated_messages == 1


# --- partial frames
PAIR_REQ = POST
PAIR_RESP = CHUNKED


@pytest.mark.parametrize("kind,raw", [(REQ, PAIR_REQ + GET), (RESP, PAIR_RESP + OK)])
def test_split_at_every_byte_boundary(kind: Kind, raw: bytes) -> None:
    whole = [shape(m) for m in run(kind, raw)[0]]
    for i in range(1, len(raw)):
        msgs, p = run(kind, raw[:i], raw[i:])
        assert [shape(m) for m in msgs] == whole, i
        assert p.parse_errors == 0 and p.garbage_bytes == 0 and p.buffered == 0
        assert msgs[0].first_ts == 1  # the first byte came with the first read


def test_one_byte_at_a_time() -> None:
    raw = PAIR_REQ + GET + POST
    msgs, p = run(REQ, *[raw[i:i + 1] for i in range(len(raw))])
    assert [shape(m) for m in msgs] == [shape(m) for m in run(REQ, raw)[0]]
    first = msgs[1]
    assert first.first_ts == len(PAIR_REQ) + 1 and first.last_ts == len(PAIR_REQ) + len(GET)


def test_first_ts_is_the_read_that_brought_the_first_byte() -> None:
    msgs, _ = run(REQ, GET + GET[:10], GET[10:30], GET[30:])
    assert [(m.first_ts, m.last_ts) for m in msgs] == [(1, 1), (1, 3)]


# --- truncated capture: size > len(data)
def big_request(n: int, path: bytes = b"/upload") -> bytes:
    return b"POST " + path + b" HTTP/1.1\r\nContent-Length: " + str(n).encode() + b"\r\n\r\n"


def test_missing_body_bytes_are_counted_not_parsed() -> None:
    head = big_request(100_000)
    body = (b"GET /fake HTTP/1.1\r\n\r\n" * 5000)[:100_000]  # a body that looks like requests
    write = head + body
    msgs, p = run(REQ, (write[:4096], len(write)), GET)
    assert [m.path for m in msgs] == ["/upload", "/items?id=42&x=%20y"]
    m = msgs[0]
    assert (m.body_size, m.body_lost, m.complete) == (100_000, 100_000 - (4096 - len(head)), True)
    assert m.body == body[:BODY_LIMIT] and m.last_ts == 1
    assert p.lost_body_bytes == m.body_lost and p.parse_errors == 0 and p.dropped_bytes == 0


def test_body_over_several_truncated_writes() -> None:
    head = big_request(30_000)
    chunks = [(b"x" * 4096, 10_000), (b"y" * 4096, 10_000), (b"z" * 4096, 10_000)]
    msgs, p = run(REQ, head, *chunks, GET)
    assert [m.path for m in msgs] == ["/upload", "/items?id=42&x=%20y"]
    assert msgs[0].body_size == 30_000 and msgs[0].body_lost == 3 * (10_000 - 4096)
    assert msgs[0].last_ts == 4


def test_truncated_chunk_data_stays_in_sync() -> None:
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    chunk = b"2000\r\n" + b"a" * 0x2000 + b"\r\n"
    msgs, p = run(RESP, head, (chunk[:4096], len(chunk)), (chunk[:4096], len(chunk)),
                  b"0\r\n\r\n", NOT_FOUND)
    assert [(m.status, m.body_size, m.complete) for m in msgs] == [(200, 0x4000, True),
                                                                   (404, 0, True)]
    assert p.parse_errors == 0 and msgs[0].body_lost == 2 * (0x2000 - 4090)


def test_gap_past_the_body_loses_the_next_message_only() -> None:
    write = big_request(10) + b"0123456789" + GET  # the GET is in the part not captured
    msgs, p = run(REQ, (write[:60], len(write)), POST)
    assert [m.method for m in msgs] == ["POST", "POST"]
    assert p.dropped_bytes > 0 and p.parse_errors == 0


def test_gap_in_a_header_block_returns_what_was_seen() -> None:
    head = b"GET /cookies HTTP/1.1\r\nHost: a\r\nCookie: " + b"c" * 8000 + b"\r\n\r\n"
    msgs, p = run(REQ, (head[:4096], len(head)), GET)
    assert [(m.path, m.complete) for m in msgs] == [("/cookies", False),
                                                    ("/items?id=42&x=%20y", True)]
    assert msgs[0].headers.items == (("Host", "a"),)


def test_gap_in_eof_body_counts_as_body() -> None:
    msgs, _ = run(RESP, b"HTTP/1.0 200 OK\r\n\r\nabc", (b"def", 1000), finish=True)
    assert [(m.body, m.body_size, m.body_lost) for m in msgs] == [(b"abcdef", 1003, 997)]


# --- interim responses, bodiless responses, switching protocols
def test_100_continue_is_skipped() -> None:
    msgs, p = run(RESP, b"HTTP/1.1 100 Continue\r\n\r\n", b"HTTP/1.1 201 Created\r\n"
                  b"Content-Length: 2\r\n\r\nok", methods=["POST"])
    assert [(m.status, m.first_ts) for m in msgs] == [(201, 2)]
    assert p.interim_responses == 1 and len(p.methods) == 0


def test_103_early_hints_then_final() -> None:
    raw = b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\n" + OK
    [m], p = run(RESP, raw, methods=["GET"])
    assert m.status == 200 and p.interim_responses == 1


def test_head_response_has_no_body_even_with_content_length() -> None:
    raw = b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n" + OK
    msgs, p = run(RESP, raw, methods=["HEAD", "GET"])
    assert [(m.status, m.body_size) for m in msgs] == [(200, 0), (200, 5)]
    assert p.parse_errors == 0


def test_request_parser_queues_methods_for_the_response_parser() -> None:
    methods: deque[str] = deque()
    req = HttpParser(REQ, methods=methods)
    resp = HttpParser(RESP, methods=methods)
    req.feed(b"HEAD /a HTTP/1.1\r\n\r\n" + GET, 1)
    assert list(methods) == ["HEAD", "GET"]
    msgs = resp.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n" + OK, 2)
    assert [m.body_size for m in msgs] == [0, 5] and not methods


@pytest.mark.parametrize("status", [204, 304])
def test_204_and_304_have_no_body(status: int) -> None:
    raw = f"HTTP/1.1 {status} X\r\nContent-Length: 10\r\n\r\n".encode() + OK
    msgs, _ = run(RESP, raw, methods=["GET", "GET"])
    assert [(m.status, m.body_size) for m in msgs] == [(status, 0), (200, 5)]


def test_101_switching_protocols_makes_the_stream_opaque() -> None:
    frames = b"\x81\x05hello" + b"GET / HTTP/1.1\r\n\r\n"
    msgs, p = run(RESP, b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                  b"Connection: Upgrade\r\n\r\n" + frames, frames, methods=["GET"])
    assert [m.status for m in msgs] == [101]
    assert p.opaque and p.opaque_bytes == 2 * len(frames) and p.garbage_bytes == 0


def test_connect_2xx_makes_the_stream_opaque_other_answers_do_not() -> None:
    tls = b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03"
    msgs, p = run(RESP, b"HTTP/1.1 200 Connection established\r\n\r\n", tls,
                  methods=["CONNECT"])
    assert [m.status for m in msgs] == [200] and p.opaque and p.opaque_bytes == len(tls)
    msgs, p = run(RESP, b"HTTP/1.1 407 Proxy Auth\r\nContent-Length: 0\r\n\r\n", OK,
                  methods=["CONNECT", "GET"])
    assert [m.status for m in msgs] == [407, 200] and not p.opaque


def test_make_opaque_from_outside() -> None:
    p = HttpParser(REQ)
    p.feed(b"GET /chat HTTP/1.1\r\nUpgrade: websocket\r\n\r\n", 1)
    p.make_opaque()
    assert p.feed(GET, 2) == [] and p.opaque_bytes == len(GET)


# --- bodies delimited by the end of the stream
def test_connection_close_body_finishes_on_close() -> None:
    p = HttpParser(RESP, methods=deque(["GET"]))
    assert p.feed(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\npart one, ", 1) == []
    assert p.feed(b"part two", 2) == []
    [m] = p.finish()
    assert (m.body, m.body_size, m.complete, m.last_ts) == (b"part one, part two", 18, True, 2)


def test_non_chunked_transfer_coding_reads_until_close() -> None:
    msgs, _ = run(RESP, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n\x1f\x8b", finish=True)
    assert [(m.body, m.complete) for m in msgs] == [(b"\x1f\x8b", True)]


def test_stream_closed_mid_body_returns_an_incomplete_message() -> None:
    msgs, p = run(REQ, big_request(100) + b"only this", finish=True)
    assert [(m.body_size, m.complete) for m in msgs] == [(9, False)]
    assert p.truncated_messages == 1


def test_stream_closed_mid_header_block() -> None:
    msgs, _ = run(RESP, b"HTTP/1.1 500 Oops\r\nContent-Ty", finish=True, methods=["GET"])
    assert [(m.status, m.complete) for m in msgs] == [(500, False)]


# --- garbage, limits, resynchronisation
def test_garbage_is_skipped_counted_and_the_parser_resyncs() -> None:
    tls = bytes.fromhex("160301020001000200030312") + bytes(range(256))
    junk = b"\x00\x01binary\xff"
    msgs, p = run(REQ, tls, GET, junk + POST)
    assert [m.method for m in msgs] == ["GET", "POST"]
    assert p.garbage_bytes == len(tls) + len(junk) and p.parse_errors == 2


def test_garbage_split_anywhere_resyncs_the_same() -> None:
    raw = b"\x17\x03\x03junkGE" + GET + b"HTTP/1.1 200 OK\r\n" + POST
    whole, pw = run(REQ, raw)
    assert [m.method for m in whole] == ["GET", "POST"]
    for i in range(1, len(raw)):
        msgs, p = run(REQ, raw[:i], raw[i:])
        assert [shape(m) for m in msgs] == [shape(m) for m in whole], i
        assert p.counters() == pw.counters(), i


def test_response_parser_ignores_request_lines_and_vice_versa() -> None:
    msgs, p = run(RESP, GET + OK)
    assert [m.status for m in msgs] == [200] and p.garbage_bytes == len(GET)


def test_auto_kind_locks_on_the_first_start_line() -> None:
    p = HttpParser()
    assert [m.status for m in p.feed(b"\x00\x00" + OK, 1)] == [200]
    assert p.kind == RESP


def test_invalid_content_length_is_a_parse_error() -> None:
    raw = b"POST /x HTTP/1.1\r\nContent-Length: 12abc\r\n\r\n" + GET
    msgs, p = run(REQ, raw)
    assert [(m.path, m.complete) for m in msgs] == [("/x", False), ("/items?id=42&x=%20y", True)]
    assert p.parse_errors == 1
    [m], _ = run(REQ, b"POST /x HTTP/1.1\r\nContent-Length: 2, 2\r\n\r\nok")
    assert m.body == b"ok"
    [m], _ = run(REQ, b"POST /x HTTP/1.1\r\nContent-Length: \xc2\xb2\r\n\r\n")
    assert not m.complete


def test_header_block_over_the_cap_is_dropped() -> None:
    p = HttpParser(REQ, max_head=1024)
    p.feed(b"GET /big HTTP/1.1\r\n", 1)
    for i in range(100):
        p.feed(b"X-Filler-%03d: " % i + b"v" * 100 + b"\r\n", 2 + i)
        assert p.buffered <= 1024 + 120
    assert p.parse_errors == 1
    assert [m.path for m in p.feed(GET, 200)] == ["/items?id=42&x=%20y"]


def test_endless_start_line_is_dropped() -> None:
    p = HttpParser(REQ)
    p.feed(b"GET /" + b"a" * (MAX_LINE + 10), 1)
    assert p.parse_errors == 1 and p.buffered < 16
    p = HttpParser(REQ, max_head=1024)  # a start line is part of the header block
    for _ in range(10):
        p.feed(b"GET /" + b"a" * 300, 1)
        assert p.buffered <= 1024
    assert p.parse_errors >= 1


def test_headers_duplicates_folding_malformed_lines_and_escaping() -> None:
    h = parse_fields('Set-Cookie: a=1\r\nset-cookie: b=2\r\nX-Long: one\r\n  two\r\n'
                     'not a header\r\nX-Quote: say "hi"\\\r\n\r\n')
    assert h["SET-COOKIE"] == "a=1, b=2" and h["x-long"] == "one two"
    assert json.loads(h.to_json()) == {"Set-Cookie": "a=1, b=2", "X-Long": "one two",
                                       "X-Quote": 'say "hi"\\'}
    assert Headers().to_json() == "{}" and len(h) == 4
    trailers = Headers([("grpc-status", "0")])
    assert json.loads(Headers([("a", "1")]).to_json(trailers)) == {"a": "1", "grpc-status": "0"}


def test_non_utf8_header_bytes_are_replaced() -> None:
    [m], _ = run(REQ, b"GET /\xff HTTP/1.1\r\nX-Bin: \xfe\xff\r\n\r\n")
    assert m.path == "/\ufffd" and json.loads(m.headers.to_json())["X-Bin"] == "\ufffd\ufffd"


# --- protocol inference
@pytest.mark.parametrize("data,role", [
    (b"GET / HTTP/1.1\r\n", Role.CLIENT),
    (b"POST /api", Role.CLIENT),
    (b"HTTP/1.1 200 OK\r\n", Role.SERVER),
    (b"HTTP/1.0 404", Role.SERVER),
    (b"\x16\x03\x01\x02\x00", None),
    (b"GET /x SMTP/1.0\r\n", None),
    (b"GE", None),
    (b"*3\r\n$3\r\nSET\r\n", None),
    (b"HTTP/2.0 200", None),
])
def test_looks_like_http(data: bytes, role: Role | None) -> None:
    assert looks_like_http(data) == role


def test_might_be_http_only_for_short_prefixes() -> None:
    assert might_be_http(b"G") and might_be_http(b"GET ") and might_be_http(b"HTTP/1.1 2")
    assert not might_be_http(b"GX") and not might_be_http(b"\x16\x03")
    assert not might_be_http(b"GET /x")  # looks_like_http already answers this one


# --- fuzzing
HEADER_NAMES = st.sampled_from(["Host", "Accept", "X-Request-Id", "User-Agent", "Cookie",
                                "x-b3-traceid", "Cache-Control"])
HEADER_VALUES = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7e), max_size=30)


@st.composite
def messages(draw, kind: Kind) -> tuple[bytes, str]:
    """One serialised message and the method it answers (responses) or has (requests)."""
    headers = draw(st.lists(st.tuples(HEADER_NAMES, HEADER_VALUES), max_size=4))
    body = draw(st.binary(max_size=700))
    framing = draw(st.sampled_from(["length", "chunked", "none"] if kind == REQ or not body
                                   else ["length", "chunked"]))
    method = draw(st.sampled_from(["GET", "POST", "PUT", "HEAD", "DELETE"]))
    if kind == REQ:
        path = draw(st.from_regex(r"/[a-z0-9/._?=&%-]{0,40}", fullmatch=True))
        start = f"{method} {path} HTTP/1.{draw(st.sampled_from([0, 1]))}"
    else:
        status = draw(st.sampled_from([200, 201, 204, 301, 304, 404, 500]))
        start = f"HTTP/1.1 {status} {draw(st.sampled_from(['OK', 'Whatever', '']))}".rstrip()
        if method == "HEAD" or status in (204, 304):
            body, framing = b"", "length"
    if framing == "none" and body:
        framing = "length"
    lines = [start] + [f"{n}: {v}" for n, v in headers]
    if framing == "length":
        lines.append(f"Content-Length: {len(body)}")
        payload = body
    else:
        lines.append("Transfer-Encoding: chunked")
        payload = b""
        rest = body
        while rest:
            n = draw(st.integers(1, max(1, len(rest))))
            ext = draw(st.sampled_from([b"", b";a=b", b"; q=\"x;y\""]))
            payload += b"%x%s\r\n%s\r\n" % (n, ext, rest[:n])
            rest = rest[n:]
        payload += b"0\r\n" + draw(st.sampled_from([b"", b"X-Trailer: t\r\n"])) + b"\r\n"
    eol = draw(st.sampled_from(["\r\n", "\n"]))
    return (eol.join(lines) + eol + eol).encode() + payload, method


@st.composite
def streams(draw) -> tuple[Kind, bytes, list[str], list[int]]:
    kind = draw(st.sampled_from([REQ, RESP]))
    parts = draw(st.lists(messages(kind), min_size=1, max_size=5))
    raw = b"".join(p for p, _ in parts)
    cuts = sorted(draw(st.lists(st.integers(0, len(raw)), max_size=12)))
    return kind, raw, [m for _, m in parts], cuts


def pieces(raw: bytes, cuts: list[int]) -> list[bytes]:
    bounds = [0, *cuts, len(raw)]
    return [raw[a:b] for a, b in zip(bounds, bounds[1:], strict=False) if b > a]


FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(streams())
def test_valid_streams_split_anywhere_parse_like_unsplit(case) -> None:
    kind, raw, methods, cuts = case
    whole, p_whole = run(kind, raw, methods=methods)
    assert len(whole) == len(methods) and p_whole.parse_errors == 0
    assert all(m.complete for m in whole)
    split, p = run(kind, *pieces(raw, cuts), methods=methods)
    assert [shape(m) for m in split] == [shape(m) for m in whole]
    assert p.counters() == p_whole.counters() and p.buffered == 0
    for m in split:
        assert m.first_ts <= m.last_ts
    if kind == REQ:
        assert [m.method for m in whole] == methods


@FUZZ
@given(st.lists(st.binary(max_size=300), max_size=12), st.sampled_from([REQ, RESP, None]),
       st.lists(st.integers(0, 5000), max_size=12))
def test_arbitrary_bytes_never_raise_and_memory_stays_bounded(chunks, kind, sizes) -> None:
    p = HttpParser(kind, max_head=2048, methods=deque(["HEAD", "CONNECT", "GET"]))
    for i, data in enumerate(chunks):
        size = len(data) + (sizes[i] if i < len(sizes) else 0)
        for m in p.feed(data, i, size):
            assert m.body_size >= len(m.body) and len(m.body) <= BODY_LIMIT
        assert p.buffered <= 2048 + BODY_LIMIT
    p.finish()
    assert p.buffered == 0


@FUZZ
@given(streams(), st.lists(st.binary(max_size=40), min_size=1, max_size=4), st.data())
def test_garbage_inserted_between_reads_never_raises(case, junk, data) -> None:
    kind, raw, methods, cuts = case
    parts = pieces(raw, cuts)
    for j in junk:
        parts.insert(data.draw(st.integers(0, len(parts))), j)
    msgs, p = run(kind, *parts, methods=methods, finish=True)
    assert len(msgs) <= len(methods) + len(junk) + 1
    assert p.buffered == 0


@FUZZ
@given(st.lists(st.integers(0, 20_000), min_size=1, max_size=6), st.integers(64, 4096),
       st.data())
def test_truncated_capture_never_invents_messages(body_sizes, capture, data) -> None:
    """Bodies made of request lines, written one message per syscall and captured in part:
    only the real requests come out, never one made of (missing or seen) body bytes."""
    fake = b"GET /fake HTTP/1.1\r\nHost: f\r\n\r\n"
    writes = []
    for i, n in enumerate(body_sizes):
        body = (fake * (n // len(fake) + 1))[:n]
        writes.append(big_request(n, b"/real%d" % i) + body)
    p = HttpParser(REQ)
    out = []
    for ts, w in enumerate(writes):
        out += p.feed(w[:capture], ts, len(w))
    assert [m.path for m in out] == [f"/real{i}" for i in range(len(writes))]
    assert [m.body_size for m in out] == body_sizes


@pytest.mark.parametrize("module", ["collectors.protocols.http1",
                                    "collectors.protocols.http_headers"])
def test_docstring_examples(module: str) -> None:
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0

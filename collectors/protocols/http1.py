"""HTTP/1.x: an incremental parser for one direction of one connection.

The socket tracer hands over the bytes of each syscall as it happened, so a message can be split
over many reads, several messages can share one read (keep-alive, pipelining), and a large write
may have been captured only in part (``size > len(data)``: the kernel copied its first 4 KiB).
:class:`HttpParser` takes those pieces in order and returns whole messages; it never raises on
bad input — bytes that are not HTTP are skipped, counted, and the parser picks up again at the
next plausible request or status line.

>>> p = HttpParser(Kind.REQUEST)
>>> p.feed(b"GET /a?b=1 HTTP/1.1\\r\\nHost: x\\r\\n", 10)
[]
>>> [m] = p.feed(b"Content-Length: 2\\r\\n\\r\\nhi", 12)
>>> m.method, m.path, m.headers["host"], m.body, m.first_ts, m.last_ts
('GET', '/a?b=1', 'x', b'hi', 10, 12)
>>> looks_like_http(b"HTTP/1.1 200 OK\\r\\n")
<Role.SERVER: 2>
"""

from __future__ import annotations

import enum
import re
from bisect import bisect_right
from collections import deque
from dataclasses import dataclass

from collectors.events import Role
from collectors.protocols.http_headers import NO_FIELDS, Headers, parse_fields

__all__ = ["Kind", "Headers", "HttpMessage", "HttpParser", "looks_like_http", "might_be_http",
           "BODY_LIMIT", "MAX_HEAD"]

#: Bytes of a body kept in a message (the full size is counted all the same).
BODY_LIMIT = 512
#: Largest header block (start line, fields, blank line) a parser buffers; larger ones are dropped.
MAX_HEAD = 64 * 1024
#: Longest start line and longest chunk-size line (with extensions), if the header cap allows.
MAX_LINE = 8 * 1024
#: Request methods a parser remembers for the responses still to come (bounds pipelining depth).
MAX_PENDING_METHODS = 1024

_METHODS = (b"GET", b"POST", b"PUT", b"DELETE", b"HEAD", b"OPTIONS", b"PATCH", b"CONNECT",
            b"TRACE", b"PROPFIND", b"PROPPATCH", b"MKCOL", b"COPY", b"MOVE", b"LOCK", b"UNLOCK",
            b"PURGE")
_TARGET = rb"[^\x00-\x20\x7f]"
_REQUEST_LINE = re.compile(rb"([A-Z][A-Z0-9_-]{0,23}) (" + _TARGET + rb"+) HTTP/1\.([0-9])\r?\n")
_STATUS_LINE = re.compile(rb"HTTP/1\.([0-9]) ([1-9][0-9][0-9])(?: ([^\r\n]*))?\r?\n")


def _prefixes(*parts: bytes) -> bytes:
    """A pattern matching every prefix of the sequence ``parts`` (each an atom of a regex)."""
    pattern = b""
    for part in reversed(parts):
        pattern = part + (b"(?:" + pattern + b")?" if pattern else b"")
    return pattern


# Every prefix of a valid start line not yet ended by its newline matches these.
_REQUEST_PARTIAL = re.compile(_prefixes(
    rb"[A-Z][A-Z0-9_-]{0,23}", b" ", _TARGET + b"*", rb"(?<=[^ ]) ", *(bytes([c]) for c in b"HTTP/1"),
    rb"\.", b"[0-9]", b"\r"))
_STATUS_PARTIAL = re.compile(_prefixes(
    *(bytes([c]) for c in b"HTTP/1"), rb"\.", b"[0-9]", b" ", b"[1-9]", b"[0-9]", b"[0-9]",
    rb"(?: [^\r\n]*)?", b"\r"))
# Where a lost parser looks for the next message (all are short: a tail this long is kept).
_REQUEST_SYNC = re.compile(b"(?:" + b"|".join(_METHODS) + b") " + _TARGET)
_STATUS_SYNC = re.compile(rb"HTTP/1\.[0-9] [1-9]")
_ANY_SYNC = re.compile(_REQUEST_SYNC.pattern + b"|" + _STATUS_SYNC.pattern)
_SYNC_LEN = max(len(m) for m in _METHODS) + 2  # longest match of the patterns above
_INFER_STATUS = re.compile(rb"HTTP/1\.[0-9] [1-9][0-9][0-9]")
_INFER_PREFIXES = frozenset(m[:i] for m in (*_METHODS, b"HTTP") for i in range(1, len(m) + 1)) | \
    frozenset(m + b" " for m in _METHODS)
_HTTP_PARTIAL = re.compile(_prefixes(*(bytes([c]) for c in b"HTTP/1"), rb"\.", b"[0-9]", b" ",
                                     b"[1-9]", b"[0-9]"))


class Kind(enum.IntEnum):
    """Which messages a direction carries."""

    REQUEST = 1
    RESPONSE = 2


@dataclass(slots=True)
class HttpMessage:
    """One request or response. ``body`` holds at most the parser's body limit; ``body_size``
    counts every body byte that crossed the socket, ``body_lost`` those the capture did not hold.
    ``complete`` is False when the message's end was never seen (stream closed or cut)."""

    kind: Kind
    minor: int
    method: str = ""
    path: str = ""
    status: int = 0
    reason: str = ""
    headers: Headers = NO_FIELDS
    trailers: Headers = NO_FIELDS
    body: bytes = b""
    body_size: int = 0
    body_lost: int = 0
    first_ts: int = 0
    last_ts: int = 0
    complete: bool = True

    @property
    def major(self) -> int:
        return 1


def looks_like_http(first_bytes: bytes) -> Role | None:
    """Who sent these bytes, if they open an HTTP/1.x message: a request line means the sender
    is a client, a status line a server.

    >>> looks_like_http(b"POST /v1 HTTP/1.1\\r\\n"), looks_like_http(b"\\x16\\x03\\x01\\x02")
    (<Role.CLIENT: 1>, None)
    """
    if _INFER_STATUS.match(first_bytes):
        return Role.SERVER
    if _REQUEST_SYNC.match(first_bytes):
        nl = first_bytes.find(b"\n", 0, MAX_LINE)
        if nl < 0 or _REQUEST_LINE.fullmatch(first_bytes, 0, nl + 1):
            return Role.CLIENT
    return None


def might_be_http(prefix: bytes) -> bool:
    """Whether more bytes could still make ``prefix`` look like HTTP (it is too short to tell)."""
    if len(prefix) > 12:
        return False
    return prefix in _INFER_PREFIXES or _HTTP_PARTIAL.fullmatch(prefix) is not None


def _message(kind: Kind, m: re.Match[bytes]) -> HttpMessage:
    """A message from the match of its start line."""
    if kind == Kind.REQUEST:
        return HttpMessage(kind, int(m[3]), m[1].decode("ascii"), _decode(m[2]))
    return HttpMessage(kind, int(m[1]), "", "", int(m[2]), _decode(m[3] or b"").strip())


def _decode(raw: bytes | bytearray) -> str:
    return raw.decode("utf-8", "replace")


# Parser states.
_START, _LENGTH, _CHUNK_SIZE, _CHUNK_DATA, _CHUNK_CRLF, _TRAILERS, _EOF, _RESYNC, _OPAQUE = range(9)


class HttpParser:
    """Parses the HTTP/1.x messages of one direction of one connection, fed in order.

    ``kind`` fixes whether the direction carries requests or responses (None: whichever
    start line comes first). ``methods`` is the queue of request methods still awaiting a
    response: a request parser appends to it and the response parser of the same connection
    pops from it, which is how a response to HEAD or CONNECT is known to have no body.

    Counters (cumulative): ``messages``, ``garbage_bytes`` (skipped while looking for a start
    line), ``parse_errors``, ``dropped_bytes`` (bytes lost to truncated capture that could not be
    counted as body, or discarded with a broken frame), ``lost_body_bytes``,
    ``truncated_messages``, ``interim_responses`` (1xx skipped), ``opaque_bytes``.
    """

    def __init__(self, kind: Kind | None = None, *, body_limit: int = BODY_LIMIT,
                 max_head: int = MAX_HEAD, methods: deque[str] | None = None) -> None:
        self.kind = kind
        self.body_limit = body_limit
        self.max_head = max(max_head, 64)
        self._max_line = min(MAX_LINE, self.max_head)
        self.methods: deque[str] = deque() if methods is None else methods
        # Unparsed bytes are _buf[_pos:]: the caller's own bytes object while one read is being
        # parsed, a bytearray only when bytes must wait for the next read.
        self._buf: bytes | bytearray = b""
        self._pos = 0
        self._ts = 0
        self._base_ts = 0  # ts of the read _buf[0] came from
        self._marks: list[tuple[int, int]] | None = None  # (offset, ts) of each buffered read
        self._scan = 0  # how far past _pos the header terminator was looked for
        self._state = _START
        self._msg: HttpMessage | None = None
        self._body = bytearray()
        self._remaining = 0
        self._trailer_bytes = 0
        self._trailers: list[bytes] = []
        self.messages = self.garbage_bytes = self.parse_errors = self.dropped_bytes = 0
        self.lost_body_bytes = self.truncated_messages = self.interim_responses = 0
        self.opaque_bytes = 0

    # --- public surface
    @property
    def buffered(self) -> int:
        """Bytes held between reads (bounded by the header cap)."""
        return len(self._buf) - self._pos + len(self._body)

    @property
    def idle(self) -> bool:
        """At a message boundary with nothing held: the next bytes start a message."""
        return (self._state == _START and self._pos >= len(self._buf) and not self._scan
                and self._msg is None and not self._body)

    @property
    def opaque(self) -> bool:
        """True once the stream switched protocols (101, CONNECT): nothing more is parsed."""
        return self._state == _OPAQUE

    def counters(self) -> dict[str, int]:
        return {"messages": self.messages, "garbage_bytes": self.garbage_bytes,
                "parse_errors": self.parse_errors, "dropped_bytes": self.dropped_bytes,
                "lost_body_bytes": self.lost_body_bytes,
                "truncated_messages": self.truncated_messages,
                "interim_responses": self.interim_responses, "opaque_bytes": self.opaque_bytes}

    def feed(self, data: bytes, ts_ns: int, size: int | None = None) -> list[HttpMessage]:
        """Take the bytes of one read or write (``size``: how many the syscall moved, when the
        capture holds only the first ``len(data)``) and return the messages they complete."""
        out: list[HttpMessage] = []
        gap = size - len(data) if size is not None and size > len(data) else 0
        if self._state == _OPAQUE:
            self.opaque_bytes += len(data) + gap
            return out
        self._ts = ts_ns
        if data:
            buf = self._buf
            if self._pos >= len(buf):  # nothing waiting: parse the caller's bytes in place
                self._buf, self._pos, self._base_ts, self._marks = data, 0, ts_ns, None
            else:
                if self._marks is None:
                    self._marks = [(0, self._base_ts)]
                self._marks.append((len(buf), ts_ns))
                buf += data  # type: ignore[operator]  # a bytearray, see _compact
            self._run(out)
        if gap:
            self._gap(gap, out)
        self._compact()
        return out

    def finish(self) -> list[HttpMessage]:
        """End of stream: a body delimited by the close is complete; a message cut short is
        returned incomplete; the parser is then ready for a new stream."""
        out: list[HttpMessage] = []
        state = self._state
        if state == _EOF and self._msg is not None:
            self._emit(out, complete=True)
        elif state in (_LENGTH, _CHUNK_SIZE, _CHUNK_DATA, _CHUNK_CRLF, _TRAILERS):
            self._emit(out, complete=False)
        elif state == _START:
            self._partial_head(out)
        left = len(self._buf) - self._pos
        if state == _RESYNC:
            self.garbage_bytes += left
        elif state != _OPAQUE:
            self.dropped_bytes += left
        self._buf, self._pos, self._marks = b"", 0, None
        self._state = _START if state != _OPAQUE else _OPAQUE
        return out

    def make_opaque(self) -> None:
        """The connection switched protocols: count, never parse, what follows."""
        self.opaque_bytes += len(self._buf) - self._pos
        self._buf, self._pos, self._marks = b"", 0, None
        self._msg = None
        self._body.clear()
        self._state = _OPAQUE

    # --- the state machine
    def _run(self, out: list[HttpMessage]) -> None:
        while True:
            state = self._state
            if state == _START:
                if self._pos >= len(self._buf):
                    return
                more = self._start(out)
            elif state == _LENGTH or state == _CHUNK_DATA:
                more = self._counted(out)
            elif state == _CHUNK_SIZE:
                more = self._chunk_size(out)
            elif state == _CHUNK_CRLF:
                more = self._chunk_crlf(out)
            elif state == _TRAILERS:
                more = self._trailer_line(out)
            elif state == _EOF:
                more = self._until_close()
            elif state == _RESYNC:
                more = self._resync()
            else:
                return
            if not more:
                return

    def _start(self, out: list[HttpMessage]) -> bool:
        """At a message boundary: parse a whole header block, or wait for one."""
        buf, pos, kind = self._buf, self._pos, self.kind
        if kind is not None and not self._scan:  # the common case: a whole head is here
            m = (_REQUEST_LINE if kind == Kind.REQUEST else _STATUS_LINE).match(buf, pos)
            if m is not None and m.end() - pos <= self._max_line:
                nl = m.end() - 1
                e = buf.find(b"\r\n\r\n", nl - 1, pos + self.max_head)
                # ... unless a bare-LF blank line ends the head earlier (then: slowly)
                if e > 0 and buf.find(b"\n\n", nl, e + 3) < 0 and \
                        buf.find(b"\n\r\n", nl, e + 3) < 0:
                    end = e + 4
                    self._pos = end
                    fields = parse_fields(buf[nl + 1:end].decode("utf-8", "replace"))
                    ts = self._base_ts if self._marks is None else self._ts_at(pos)
                    return self._begin(_message(kind, m), fields, ts, out)
        return self._start_slowly(out)

    def _start_slowly(self, out: list[HttpMessage]) -> bool:
        """Blank lines, a partial or invalid start line, a head still incomplete or too big."""
        buf, pos = self._buf, self._pos
        n = len(buf)
        while pos < n and (buf[pos] == 13 or buf[pos] == 10):  # blank lines between messages
            pos += 1
        self._pos = pos
        if pos == n:
            return False
        nl = buf.find(b"\n", pos, pos + self._max_line)
        if nl < 0:
            if n - pos >= self._max_line or not self._partial_line_ok(pos, n):
                return self._lose_sync()
            return False
        line = self._start_line(pos, nl + 1)
        if line is None:
            return self._lose_sync()
        end = self._head_end(buf, pos, nl)
        if end < 0:
            if n - pos >= self.max_head:
                return self._lose_sync()
            self._scan = max(0, n - pos - 2)
            return False
        fields = parse_fields(_decode(buf[nl + 1:end]))
        self._pos = end
        return self._begin(line, fields, self._ts_at(pos), out)

    def _head_end(self, buf: bytes | bytearray, pos: int, nl: int) -> int:
        """Where the header block starting at ``pos`` (start line ending at ``nl``) ends, or
        -1 if that is not in the buffer within the header cap."""
        start = max(nl, pos + self._scan)
        limit = pos + self.max_head
        end = buf.find(b"\n\r\n", start, limit)
        lf = buf.find(b"\n\n", start, limit if end < 0 else end + 2)
        if lf >= 0:
            self._scan = 0
            return lf + 2
        if end >= 0:
            self._scan = 0
            return end + 3
        return -1

    def _start_line(self, pos: int, end: int) -> HttpMessage | None:
        kind, buf = self.kind, self._buf
        if kind != Kind.RESPONSE:
            m = _REQUEST_LINE.fullmatch(buf, pos, end)
            if m is not None:
                self.kind = Kind.REQUEST
                return _message(Kind.REQUEST, m)
        if kind != Kind.REQUEST:
            m = _STATUS_LINE.fullmatch(buf, pos, end)
            if m is not None:
                self.kind = Kind.RESPONSE
                return _message(Kind.RESPONSE, m)
        return None

    def _partial_line_ok(self, pos: int, end: int) -> bool:
        buf = self._buf
        return ((self.kind != Kind.RESPONSE and _REQUEST_PARTIAL.fullmatch(buf, pos, end)
                 is not None)
                or (self.kind != Kind.REQUEST and _STATUS_PARTIAL.fullmatch(buf, pos, end)
                    is not None))

    def _begin(self, msg: HttpMessage, fields: Headers, first_ts: int,
               out: list[HttpMessage]) -> bool:
        """A header block was parsed: decide how the body is framed (RFC 9112 §6.3)."""
        msg.headers, msg.first_ts = fields, first_ts
        self._msg = msg
        self._body.clear()
        response = msg.kind == Kind.RESPONSE
        if response:
            status = msg.status
            if status < 200 and status != 101:
                self.interim_responses += 1  # 100 Continue, 103 Early Hints: not the answer
                self._msg = None
                return True
            method = self.methods.popleft() if self.methods else ""
            if status == 101 or (method == "CONNECT" and status < 300):
                self._emit(out, complete=True)
                self._state = _OPAQUE
                self.opaque_bytes += len(self._buf) - self._pos
                self._pos = len(self._buf)
                return False
            if method == "HEAD" or status == 204 or status == 304:
                return self._emit(out, complete=True)
        elif len(self.methods) < MAX_PENDING_METHODS:
            self.methods.append(msg.method)
        te = fields._index.get("transfer-encoding")
        if te is not None:
            if te.rpartition(",")[2].strip().lower() == "chunked":
                self._state = _CHUNK_SIZE
                return True
            if response:
                self._state = _EOF
                return True
            return self._bad_frame(out)
        cl = fields._index.get("content-length")
        if cl is not None:
            length = (int(cl) if cl.isascii() and cl.isdigit() and len(cl) < 19
                      else _content_length(cl))
            if length is None:
                return self._bad_frame(out)
            buf, pos = self._buf, self._pos
            if len(buf) - pos >= length:  # the whole body is here: take it in one step
                msg.body = bytes(buf[pos:pos + min(length, self.body_limit)])
                msg.body_size = length
                self._pos = pos + length
                return self._emit(out, complete=True)
            self._remaining = length
            self._state = _LENGTH
            return True
        if response:
            self._state = _EOF
            return True
        return self._emit(out, complete=True)

    def _counted(self, out: list[HttpMessage]) -> bool:
        """Body bytes of a known length: Content-Length, or the data of one chunk."""
        buf, pos = self._buf, self._pos
        take = min(len(buf) - pos, self._remaining)
        if take <= 0:
            return False
        body = self._body
        room = self.body_limit - len(body)
        if room > 0:
            body += buf[pos:pos + min(take, room)]
        self._pos = pos + take
        self._remaining -= take
        self._msg.body_size += take  # type: ignore[union-attr]
        if self._remaining:
            return False
        if self._state == _LENGTH:
            return self._emit(out, complete=True)
        self._state = _CHUNK_CRLF
        return True

    def _chunk_size(self, out: list[HttpMessage]) -> bool:
        buf, pos = self._buf, self._pos
        nl = buf.find(b"\n", pos, pos + self._max_line)
        if nl < 0:
            if len(buf) - pos >= self._max_line:
                return self._bad_frame(out)
            return False
        digits = bytes(buf[pos:nl]).partition(b";")[0].strip()  # drop chunk extensions
        if not digits or len(digits) > 16 or digits.strip(b"0123456789abcdefABCDEF"):
            return self._bad_frame(out)
        self._pos = nl + 1
        size = int(digits, 16)
        if size == 0:
            self._state = _TRAILERS
            self._trailers = []
            self._trailer_bytes = 0
        else:
            self._remaining = size
            self._state = _CHUNK_DATA
        return True

    def _chunk_crlf(self, out: list[HttpMessage]) -> bool:
        buf, pos = self._buf, self._pos
        avail = len(buf) - pos
        if avail == 0:
            return False
        if buf[pos] == 10:
            self._pos = pos + 1
        elif buf[pos] == 13:
            if avail < 2:
                return False
            if buf[pos + 1] != 10:
                return self._bad_frame(out)
            self._pos = pos + 2
        else:
            return self._bad_frame(out)
        self._state = _CHUNK_SIZE
        return True

    def _trailer_line(self, out: list[HttpMessage]) -> bool:
        buf, pos = self._buf, self._pos
        nl = buf.find(b"\n", pos, pos + self.max_head)
        if nl < 0:
            if len(buf) - pos >= self.max_head:
                return self._bad_frame(out)
            return False
        line = bytes(buf[pos:nl + 1])
        self._pos = nl + 1
        self._trailer_bytes += len(line)
        if line in (b"\r\n", b"\n"):
            msg = self._msg
            if self._trailers and msg is not None:
                msg.trailers = parse_fields(_decode(b"".join(self._trailers)))
            return self._emit(out, complete=True)
        if self._trailer_bytes > self.max_head:
            return self._bad_frame(out)
        self._trailers.append(line)
        return True

    def _until_close(self) -> bool:
        buf, pos = self._buf, self._pos
        take = len(buf) - pos
        room = self.body_limit - len(self._body)
        if room > 0:
            self._body += buf[pos:pos + min(take, room)]
        self._msg.body_size += take  # type: ignore[union-attr]
        self._pos = len(buf)
        return False

    def _resync(self) -> bool:
        buf, pos = self._buf, self._pos
        sync = (_ANY_SYNC if self.kind is None
                else _REQUEST_SYNC if self.kind == Kind.REQUEST else _STATUS_SYNC)
        m = sync.search(buf, pos)
        if m is not None:
            self.garbage_bytes += m.start() - pos
            self._pos = m.start()
            self._state = _START
            return True
        keep = max(pos, len(buf) - _SYNC_LEN + 1)  # a match may still start in this tail
        self.garbage_bytes += keep - pos
        self._pos = keep
        return False

    # --- endings
    def _emit(self, out: list[HttpMessage], *, complete: bool) -> bool:
        msg = self._msg
        self._msg = None
        self._state = _START
        if msg is None:
            return True
        if self._body:
            msg.body = bytes(self._body)
            self._body.clear()
        msg.last_ts = self._ts
        msg.complete = complete
        if not complete:
            self.truncated_messages += 1
        self.messages += 1
        out.append(msg)
        return True

    def _lose_sync(self) -> bool:
        """The bytes at the current position cannot start a message: skip one, look again."""
        self.parse_errors += 1
        self.garbage_bytes += 1
        self._pos += 1
        self._scan = 0
        self._state = _RESYNC
        return True

    def _bad_frame(self, out: list[HttpMessage]) -> bool:
        """A body's framing is broken: return the message as far as it got, then resync."""
        self.parse_errors += 1
        self._emit(out, complete=False)
        self._state = _RESYNC
        return True

    def _partial_head(self, out: list[HttpMessage]) -> None:
        """A header block cut short (capture or stream): keep what its whole lines say."""
        buf, pos = self._buf, self._pos
        last = buf.rfind(b"\n", pos)
        nl = buf.find(b"\n", pos)
        if nl < 0:
            return
        msg = self._start_line(pos, nl + 1)
        if msg is None:
            return
        fields = parse_fields(_decode(buf[nl + 1:last + 1]))
        first_ts = self._ts_at(pos)
        self.dropped_bytes += len(buf) - pos
        self._pos = len(buf)
        self._scan = 0
        before = len(out)
        self._begin(msg, fields, first_ts, out)
        if self._msg is not None:
            self._emit(out, complete=False)
        elif len(out) > before and out[-1] is msg and msg.complete:
            msg.complete = False  # its header block was cut: whatever it said is unknown
            self.truncated_messages += 1

    def _gap(self, gap: int, out: list[HttpMessage]) -> None:
        """``gap`` bytes were moved by the syscall but not captured; they follow the data."""
        state = self._state
        if state == _LENGTH or state == _CHUNK_DATA:
            take = min(gap, self._remaining)
            self._remaining -= take
            self._msg.body_size += take  # type: ignore[union-attr]
            self._msg.body_lost += take  # type: ignore[union-attr]
            self.lost_body_bytes += take
            gap -= take
            if not self._remaining:
                if state == _LENGTH:
                    self._emit(out, complete=True)
                else:
                    self._state = _CHUNK_CRLF
        if self._state == _CHUNK_CRLF and gap:
            need = 2 - (len(self._buf) - self._pos)  # assume CRLF; a lone CR may be buffered
            if gap >= need:
                gap -= need
                self._pos = len(self._buf)
                self._state = _CHUNK_SIZE
        if not gap:
            return
        state = self._state
        if state == _EOF:
            self._msg.body_size += gap  # type: ignore[union-attr]
            self._msg.body_lost += gap  # type: ignore[union-attr]
            self.lost_body_bytes += gap
            return
        if state == _OPAQUE:
            self.opaque_bytes += gap
            return
        # The gap holds framing (a header block, a chunk size line): the stream is lost until
        # the next start line. Return what there is of the message under way.
        if state == _START:
            self._partial_head(out)
            if self._state == _OPAQUE:
                self.opaque_bytes += gap
                return
        elif state != _RESYNC:
            self.parse_errors += 1
            self._emit(out, complete=False)
        self.dropped_bytes += gap + len(self._buf) - self._pos
        self._pos = len(self._buf)
        self._state = _RESYNC

    # --- buffer upkeep
    def _ts_at(self, pos: int) -> int:
        """The time of the read that brought the buffered byte at ``pos``."""
        marks = self._marks
        if marks is None:
            return self._base_ts
        return marks[max(bisect_right(marks, pos, key=_offset) - 1, 0)][1]

    def _compact(self) -> None:
        """Keep only the unparsed bytes, in a buffer of our own."""
        buf, pos = self._buf, self._pos
        if pos >= len(buf):
            self._buf, self._pos, self._marks = b"", 0, None
            return
        marks = self._marks
        if marks is not None:
            i = max(bisect_right(marks, pos, key=_offset) - 1, 0)
            marks = [(max(o - pos, 0), t) for o, t in marks[i:]]
            self._marks = marks if len(marks) > 1 else None
            self._base_ts = marks[0][1]
        if type(buf) is bytearray:
            if pos:
                del buf[:pos]
        else:
            self._buf = bytearray(memoryview(buf)[pos:])
        self._pos = 0


def _offset(mark: tuple[int, int]) -> int:
    return mark[0]


def _content_length(value: str) -> int | None:
    """A Content-Length value, or None if malformed (identical repeats are allowed)."""
    parts = {p.strip() for p in value.split(",")} if "," in value else {value}
    if len(parts) != 1:
        return None
    text = parts.pop()
    if not text.isdigit() or not text.isascii() or len(text) > 18:  # isdigit: also "²"
        return None
    return int(text)

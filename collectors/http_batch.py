"""The batch path of HTTP/1.x capture: whole messages, a ring-buffer drain at a time.

Under load nearly every read or write of a keep-alive HTTP connection carries exactly one whole
message: a request line or status line, its header block, and a body framed by Content-Length
that ends where the syscall's bytes end. For those the per-connection state machine of
:mod:`collectors.conn_tracker` has nothing to remember between reads, so :class:`BatchPath`
takes them out of a :class:`~collectors.socket_trace.DataBatch` and turns them into
``http_events`` rows column by column:

1. group the batch's records by connection (numpy); a connection qualifies when the tracker
   knows it carries HTTP and holds nothing of it (no bytes buffered, no message waiting for its
   other half, no request method pending), it neither opens nor closes in this batch, and the
   caller accepts it (capture scope, a known process);
2. find each record's header block (numpy: the first CRLF CRLF of its bytes) and parse each
   *distinct* head once, with the very functions the state machine uses (``parse_head``), so
   a thousand identical heads cost one parse;
3. keep a connection only if every record of it is one whole message of the kind its direction
   carries, framed exactly (no chunked encoding, no read-until-close, no HEAD or CONNECT, no
   interim 1xx, nothing truncated by the capture), and its responses do not outnumber its
   requests or precede them in time;
4. pair the k-th request of a connection with its k-th response (numpy), build the rows (Polars),
   and hand the requests still unanswered to the state machine, which then holds them exactly as
   if it had parsed them itself.

Everything else — other connections, and whole connections with any record that does not fit —
goes to the state machine untouched, in ring order. ``tests/test_http_batch.py`` checks that
both paths give the same rows and counters on the same traffic, split any way into batches.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from collectors.arrow import bools, ints, strings, take_views, times, values
from collectors.conn_tracker import ConnTracker, _Conn, body_text, content_type_of
from collectors.protocols.http1 import (
    _REQUEST_LINE,
    _STATUS_LINE,
    MAX_LINE,
    Kind,
    _content_length,
    _message,
)
from collectors.protocols.http_headers import parse_fields
from collectors.socket_trace import DataBatch
from engine.tables import TABLES

__all__ = ["BatchPath", "Head", "parse_head"]

_NO_BODY, _LENGTH = 0, 1
#: distinct heads remembered across batches (each at most a capture, 4 KiB)
MEMO_HEADS = 4096
#: above this many distinct heads in a drain, plain ones are taken apart by Polars
PLAIN_HEADS_FROM = 32


class Head(NamedTuple):
    """What a whole header block says, as far as the batch path needs it."""

    request: bool
    method: str
    path: str
    minor: int
    status: int
    reason: str
    headers: str  # the JSON the *_headers columns hold
    body: int  # _NO_BODY or _LENGTH
    length: int  # Content-Length (with _LENGTH)
    has_type: bool  # a non-empty Content-Type
    type_code: int  # content_type column value of that Content-Type


def parse_head(head: bytes, *, max_head: int, max_line: int = MAX_LINE) -> Head | None:
    """A header block (start line through the blank line, as one read brought it) parsed as
    ``HttpParser._start`` would, or None when the batch path must leave its message to the state
    machine: not a well-formed head, bare-LF line ends, a framing it does not take."""
    request = not head.startswith(b"HTTP/")
    m = (_REQUEST_LINE if request else _STATUS_LINE).match(head)
    if m is None or m.end() > min(max_line, max_head) or len(head) > max_head:
        return None
    nl = m.end() - 1
    e = head.find(b"\r\n\r\n", nl - 1)
    if e + 4 != len(head) or head.find(b"\n\n", nl, e + 3) >= 0 \
            or head.find(b"\n\r\n", nl, e + 3) >= 0:
        return None
    msg = _message(Kind.REQUEST if request else Kind.RESPONSE, m)
    fields = parse_fields(head[nl + 1:].decode("utf-8", "replace"))
    index = fields._index
    if request:
        if msg.method in ("HEAD", "CONNECT"):  # their responses are framed by the method
            return None
    elif msg.status < 200:  # interim (1xx) and 101 Switching Protocols
        return None
    if "transfer-encoding" in index:
        return None
    body, length = _NO_BODY, 0
    if request or msg.status not in (204, 304):
        cl = index.get("content-length")
        if cl is not None:
            n = (int(cl) if cl.isascii() and cl.isdigit() and len(cl) < 19
                 else _content_length(cl))
            if n is None:
                return None
            body, length = _LENGTH, n
        elif not request:  # delimited by the close
            return None
    ctype = index.get("content-type") or ""
    return Head(request, msg.method, msg.path, msg.minor, msg.status, msg.reason,
                fields.to_json(), body, length, bool(ctype), content_type_of(ctype))


_FIELD = (r"[!#$%&'*+.^_`|~0-9A-Za-z-]+: "  # a token name, one space, a value of visible
          r"[\x21\x23-\x5b\x5d-\x7e](?:[\x20\x21\x23-\x5b\x5d-\x7e]*[\x21\x23-\x5b\x5d-\x7e])?\r\n")
#: Heads of the plain form taken apart by Polars: ASCII, CRLF line ends, every field
#: "Name: value" with a token name and a value of visible ASCII but " and \ (so the JSON object
#: needs no escapes), no empty value, no blank around it. Anything else is parse_head's.
_PLAIN_REQUEST = (r"^([A-Z][A-Z0-9_-]{0,23}) ([\x21-\x7e]+) HTTP/1\.([0-9])\r\n"
                  r"((?:" + _FIELD + r")*)\r\n$")
_PLAIN_RESPONSE = (r"^HTTP/1\.([0-9]) ([1-9][0-9][0-9])(?: ([\x20-\x7e]*))?\r\n"
                   r"((?:" + _FIELD + r")*)\r\n$")
_HEAD_COLUMNS = {"i": pl.Int64, "request": pl.Boolean, "method": pl.String, "path": pl.String,
                 "minor": pl.Int64, "status": pl.Int64, "reason": pl.String,
                 "headers": pl.String, "body": pl.Int64, "length": pl.Int64,
                 "has_type": pl.Boolean, "type_code": pl.Int64}


def _field_value(block: pl.Expr, name: str) -> pl.Expr:
    """The value of field ``name`` (any case) in a plain field block, or null."""
    return block.str.extract(r"(?i)(?:^|\n)" + name + r": ([^\r]*)\r", 1)


def parse_plain_heads(heads: pa.Array, max_head: int, max_line: int = MAX_LINE
                      ) -> tuple[pl.DataFrame, np.ndarray]:
    """Heads of the plain form (see ``_PLAIN_REQUEST``) parsed column-wise, as parse_head
    would: one row per head taken (``i``: its index in ``heads``), and the indices of the heads
    left to parse_head (not plain, or a name given twice, or an odd Content-Length)."""
    n = len(heads)
    frame = pl.DataFrame({"i": np.arange(n), "h": _ascii_text(heads)})
    req = pl.col("h").str.extract_groups(_PLAIN_REQUEST)
    resp = pl.col("h").str.extract_groups(_PLAIN_RESPONSE)
    parsed = frame.with_columns(q=req, s=resp).with_columns(
        request=pl.col("q").struct.field("1").is_not_null(),
        response=pl.col("s").struct.field("1").is_not_null())
    parsed = parsed.with_columns(
        block=pl.when("request").then(pl.col("q").struct.field("4"))
        .otherwise(pl.col("s").struct.field("4")),
        line=pl.col("h").str.find("\r\n", literal=True) + 2)
    block = pl.col("block")
    parsed = parsed.with_columns(
        names=block.str.replace_all(r": [^\r]*\r\n", "\n").str.to_lowercase(),
        seps=block.str.count_matches(": ", literal=True),
        lines=block.str.count_matches("\r\n", literal=True),
        cl=_field_value(block, "content-length"),
        te=block.str.contains(r"(?i)(?:^|\n)transfer-encoding:"),
        ct=_field_value(block, "content-type"),
        size=pl.col("h").str.len_bytes())
    good = ((pl.col("request") | pl.col("response")) & (pl.col("seps") == pl.col("lines"))
            & (pl.col("line") <= min(max_line, max_head)) & (pl.col("size") <= max_head)
            & (pl.col("cl").is_null() | pl.col("cl").str.contains(r"^[0-9]{1,18}$")))
    taken = parsed.filter(good)
    # a name given twice joins its values: parse_head's (few distinct name lists: checked here)
    lists = taken.get_column("names").unique().to_list()
    twice = [n for n in lists if len(set(n.split("\n")[:-1])) != n.count("\n")]
    if twice:
        taken = taken.filter(~pl.col("names").is_in(twice))
    minor = (pl.when("request").then(pl.col("q").struct.field("3"))
             .otherwise(pl.col("s").struct.field("1")).cast(pl.Int64))
    status = pl.when("request").then(0).otherwise(pl.col("s").struct.field("2").cast(pl.Int64))
    method = pl.when("request").then(pl.col("q").struct.field("1")).otherwise(pl.lit(""))
    ct = pl.col("ct").fill_null("")
    ct_lower = ct.str.to_lowercase()
    length = pl.col("cl").cast(pl.Int64)
    no_body = pl.col("request") & length.is_null() | ~pl.col("request") & status.is_in([204, 304])
    out = taken.select(
        i=pl.col("i"),
        request=pl.col("request"),
        method=method,
        path=pl.when("request").then(pl.col("q").struct.field("2")).otherwise(pl.lit("")),
        minor=minor,
        status=status,
        reason=pl.when("request").then(pl.lit(""))
        .otherwise(pl.col("s").struct.field("3").fill_null("").str.strip_chars(" ")),
        headers=pl.when(block == "").then(pl.lit("{}")).otherwise(
            pl.lit('{"') + block.str.replace_all(": ", '":"', literal=True)
            .str.replace_all("\r\n", '","', literal=True).str.strip_suffix('","') + pl.lit('"}')),
        body=pl.when(no_body).then(_NO_BODY).otherwise(_LENGTH),
        length=pl.when(no_body).then(0).otherwise(length.fill_null(0)),
        has_type=ct != "",
        type_code=pl.when(ct_lower.str.starts_with("application/grpc")).then(2)
        .when(ct_lower.str.contains("json", literal=True)).then(1).otherwise(0),
        keep=(~pl.col("te") & (pl.col("request") & ~method.is_in(["HEAD", "CONNECT"])
                                | ~pl.col("request") & (status >= 200)
                                & (status.is_in([204, 304]) | length.is_not_null()))))
    # not taken by the batch path: same answer as parse_head's None
    left = np.setdiff1d(np.arange(n), out.get_column("i").to_numpy(), assume_unique=True)
    return out.filter("keep").drop("keep").cast(_HEAD_COLUMNS), left


def _ascii_text(heads: pa.Array) -> pl.Series:
    """Binary heads as text: ASCII ones as they are, the others as "" (never plain)."""
    arr = heads.cast(pa.large_binary())
    mixed = _non_ascii(arr)
    if mixed.any():
        texts = [b.decode("ascii") if not m else "" for b, m in zip(arr.to_pylist(),
                                                                     mixed.tolist(), strict=True)]
        return pl.Series("h", texts, dtype=pl.String)
    return pl.Series("h", arr.view(pa.large_string()), dtype=pl.String)


def _crlf2(blob: bytes) -> np.ndarray:
    """Where every CR LF CR LF of the buffer starts, ascending: four strided u32 compares (one
    per alignment) instead of seven passes over the bytes."""
    out = []
    for k in range(4):
        m = (len(blob) - 4 - k) // 4 + 1
        if m > 0:
            words = np.ndarray((m,), dtype="<u4", buffer=blob, offset=k, strides=(4,))
            out.append(np.flatnonzero(words == 0x0A0D0A0D) * 4 + k)
    return np.sort(np.concatenate(out)) if out else np.zeros(0, dtype=np.int64)


def _slices(blob: bytes, starts: np.ndarray, ends: np.ndarray) -> pa.Array:
    """The byte ranges ``[starts, ends)`` of ``blob`` (disjoint) as one Arrow binary array: in
    ascending order, the ranges and the gaps between them are laid over the blob as alternate
    elements of one array without copying, then Arrow's take copies out the ranges."""
    n = len(starts)
    if not n:
        return pa.Array.from_buffers(pa.binary(), 0, [None, pa.py_buffer(bytes(4)), None])
    order = np.argsort(starts, kind="stable")
    bounds = np.empty(2 * n, dtype=np.int32)  # a drain is a few MiB
    bounds[0::2] = starts[order]
    bounds[1::2] = ends[order]
    over = pa.Array.from_buffers(pa.binary(), 2 * n - 1,
                                 [None, pa.py_buffer(bounds), pa.py_buffer(blob)])
    where = np.empty(n, dtype=np.int64)
    where[order] = np.arange(0, 2 * n, 2)
    return over.take(ints(where))


def _non_ascii(arr: pa.Array) -> np.ndarray:
    """Which elements of a binary array hold a byte >= 0x80 (one pass over its bytes)."""
    wide = pa.types.is_large_binary(arr.type)
    off = np.frombuffer(arr.buffers()[1], dtype=np.int64 if wide else np.int32)[
        arr.offset:arr.offset + len(arr) + 1]
    data = arr.buffers()[2]
    raw = np.frombuffer(data, dtype=np.uint8) if data is not None else np.zeros(0, np.uint8)
    high = np.zeros(len(raw) + 1, dtype=np.int64)
    np.cumsum(raw >= 0x80, out=high[1:])
    return high[off[1:]] != high[off[:-1]]


def _texts(blob: bytes, starts: np.ndarray, lengths: np.ndarray) -> pa.Array:
    """Bodies as table text (see ``body_text``): ASCII ones as they are, any other decoded one
    by one."""
    if not lengths.any():  # no bodies (requests without one): nothing to copy or check
        return pa.Array.from_buffers(pa.string(), len(lengths), [
            None, pa.py_buffer(np.zeros(len(lengths) + 1, dtype=np.int32)), pa.py_buffer(b"")])
    arr = _slices(blob, starts, starts + lengths)
    if _non_ascii(arr).any():  # rare: decoded one by one
        return strings([body_text(t) for t in arr.to_pylist()])
    return arr.view(pa.string())


_COLUMNS = [name for name, _, _, _ in TABLES["http_events"].columns]
_NEWEST = pl.CompatLevel.newest()  # Polars strings to Arrow as string_view: no copy

#: (key, conn) → the connection's upid if the batch path may take it, else None
Accept = Callable[[tuple[int, int, int], _Conn, int], "str | None"]


class BatchPath:
    """Takes the whole messages of qualifying connections out of each batch (see the module
    docstring). Counters: ``records`` taken, ``rows`` made, ``heads_parsed`` (distinct heads
    parsed), ``left`` (data records handed to the state machine)."""

    def __init__(self, tracker: ConnTracker) -> None:
        self.tracker = tracker
        self._memo: dict[bytes, Head | None] = {}
        self.counters = {"records": 0, "rows": 0, "heads_parsed": 0, "left": 0}

    def first_records(self, batch: DataBatch, k: int = 2) -> np.ndarray:
        """The first ``k`` data records of each connection the tracker does not know yet or
        that opens in this batch (indices, ascending): fed to the state machine first (with
        the open events), they tell it the connection carries HTTP, so ``run`` can take the
        rest of the batch."""
        if not len(batch.order):
            return np.zeros(0, dtype=np.int64)
        conns = batch.connections
        opened = {(e.conn.tgid, e.conn.fd, e.conn.generation) for _, e in batch.conns if e.opened}
        new = np.array([key in opened or not self.tracker.tracks(key) for key in conns.keys])
        sel = np.flatnonzero(new[conns.gid])
        if not len(sel):
            return sel
        g = conns.gid[sel]
        order = np.argsort(g, kind="stable")
        rank = np.arange(len(sel)) - np.searchsorted(g[order], g[order])
        return np.sort(sel[order][rank < k])

    def run(self, batch: DataBatch, accept: Accept, *, skip: np.ndarray | None = None,
            conn_events: list | None = None) -> tuple[pa.RecordBatch | None, np.ndarray]:
        """The http_events rows (``upid`` included) of the records taken, and the indices of
        the data records left for the state machine, ascending. ``skip``: data records the
        state machine already has; ``conn_events``: the connection events it is still to see
        after these records (default: all of the batch's)."""
        n = len(batch.order)
        everything = np.arange(n)
        if skip is not None and len(skip):
            everything = np.setdiff1d(everything, skip, assume_unique=True)
        if n == 0:
            return None, everything
        tracker = self.tracker
        conns = batch.connections
        ngroups = len(conns.keys)
        # A connection opened in this batch is left to the tracker; one closed in it is taken
        # if the close comes after all its bytes (the tracker then sees the close last).
        opened: set[tuple[int, int, int]] = set()
        closed: dict[tuple[int, int, int], int] = {}
        for at, e in batch.conns if conn_events is None else conn_events:
            k = (e.conn.tgid, e.conn.fd, e.conn.generation)
            if e.opened:
                opened.add(k)
            else:
                closed.setdefault(k, at)
        if closed:
            last_at = np.zeros(ngroups, dtype=np.int64)
            np.maximum.at(last_at, conns.gid, batch.order)
        req_dir = np.full(ngroups, -1, dtype=np.int64)
        objs: list[_Conn | None] = [None] * ngroups
        upids: list[str] = [""] * ngroups
        first_ts = batch.ts[np.unique(conns.gid, return_index=True)[1]]
        for g, key in enumerate(conns.keys):
            if key in opened or (key in closed and closed[key] < last_at[g]):
                continue
            conn = tracker.idle_http(key)
            if conn is None:
                continue
            upid = accept(key, conn, int(first_ts[g]))
            if upid is None:
                continue
            assert conn.parsers is not None
            req_dir[g] = 0 if conn.parsers[0].kind == Kind.REQUEST else 1
            objs[g] = conn
            upids[g] = upid
        eligible = req_dir[conns.gid] >= 0
        if skip is not None and len(skip):
            eligible[skip] = False
        cand = np.flatnonzero(eligible)
        if not len(cand):
            self.counters["left"] += len(everything)
            return None, everything
        gid = conns.gid[cand]
        ps = batch.start[cand]
        pe = ps + batch.captured[cand]
        ts = batch.ts[cand]
        is_req = batch.direction[cand] == req_dir[gid]

        # Heads: the first CRLF CRLF of each record's bytes ends it.
        crlf2 = _crlf2(batch.blob)
        j = np.searchsorted(crlf2, ps)
        he = crlf2[np.minimum(j, max(len(crlf2) - 1, 0))] + 4 if len(crlf2) else pe + 1
        ok = (j < len(crlf2)) & (he <= pe) & (batch.captured[cand] == batch.size[cand])
        heads, code = self._heads(batch.blob, ps, he, ok)
        if not heads.height:
            self.counters["left"] += len(everything)
            return None, everything
        h_req = heads.get_column("request").to_numpy()
        h_body = heads.get_column("body").to_numpy()
        h_len = heads.get_column("length").to_numpy()
        c = np.maximum(code, 0)
        body_len = pe - he
        framed = np.where(h_body[c] == _LENGTH, body_len == h_len[c], body_len == 0)
        ok &= (code >= 0) & (h_req[c] == is_req) & framed

        # A connection is taken whole or not at all. Its first responses answer the requests
        # the tracker holds (those go to the state machine); the k-th response after them
        # answers the k-th request of this batch.
        bad = np.zeros(ngroups, dtype=bool)
        bad[gid[~ok]] = True
        held = np.array([len(o.requests) if o is not None else 0 for o in objs], dtype=np.int64)
        n_req = np.bincount(gid[is_req], minlength=ngroups)
        n_resp = np.bincount(gid[~is_req], minlength=ngroups)
        bad |= n_resp > n_req + held
        # The tracker bounds the messages waiting on a connection at any moment: the depth of
        # its queue (held + requests so far - responses so far, in ring order) must stay within.
        by_conn = np.argsort(gid, kind="stable")
        depth = np.cumsum(np.where(is_req[by_conn], 1, -1))
        starts = np.flatnonzero(np.r_[True, gid[by_conn][1:] != gid[by_conn][:-1]])
        depth -= np.repeat(depth[starts] - np.where(is_req[by_conn][starts], 1, -1),
                           np.diff(np.r_[starts, len(by_conn)]))
        depth += held[gid[by_conn]]
        deepest = np.maximum.reduceat(np.abs(depth), starts)
        bad[gid[by_conn][starts][deepest > tracker.max_pending]] = True
        reqs = np.flatnonzero(is_req)
        resps = np.flatnonzero(~is_req)
        reqs = reqs[np.argsort(gid[reqs], kind="stable")]
        resps = resps[np.argsort(gid[resps], kind="stable")]
        groups = np.arange(ngroups)
        req_rank = np.arange(len(reqs)) - np.searchsorted(gid[reqs], groups)[gid[reqs]]
        resp_rank = np.arange(len(resps)) - np.searchsorted(gid[resps], groups)[gid[resps]]
        answers_held = resp_rank < held[gid[resps]]
        r = resps[~answers_held]
        pair_gid = gid[r]
        want = np.searchsorted(gid[reqs], pair_gid) + resp_rank[~answers_held] - held[pair_gid]
        q = reqs[np.minimum(want, max(len(reqs) - 1, 0))] if len(reqs) else r
        bad[pair_gid[ts[r] < ts[q]]] = True
        keep = ~bad[pair_gid]
        q, r, pair_gid = q[keep], r[keep], pair_gid[keep]
        answered = np.maximum(n_resp - held, 0)
        waiting = reqs[req_rank >= answered[gid[reqs]]]
        taken = ~bad[gid]
        taken[waiting] = False
        taken[resps[answers_held]] = False
        left = np.ones(n, dtype=bool)
        left[cand[taken]] = False
        if skip is not None and len(skip):
            left[skip] = False
        left_idx = np.flatnonzero(left)

        # What the state machine would have noted.
        pairs = np.bincount(pair_gid, minlength=ngroups)
        last = np.full(ngroups, -1, dtype=np.int64)
        np.maximum.at(last, gid[taken], np.flatnonzero(taken))  # the last in ring order
        for g in np.flatnonzero(~bad & (req_dir >= 0)).tolist():
            conn = objs[g]
            assert conn is not None and conn.parsers is not None
            if last[g] >= 0:
                conn.last_ts = int(ts[last[g]])
            tracker.touch(conn.key)
            d = int(req_dir[g])
            conn.parsers[d].messages += int(pairs[g])
            conn.parsers[1 - d].messages += int(pairs[g])
        tracker.count_records(len(r))
        self.counters["records"] += 2 * len(r)
        self.counters["rows"] += len(r)
        self.counters["left"] += len(left_idx)
        if not len(r):
            return None, left_idx
        frame = self._rows(batch.blob, heads, code, q, r, pair_gid, ts, he, objs, upids,
                           self.tracker.body_limit)
        return frame, left_idx

    def _heads(self, blob: bytes, ps: np.ndarray, he: np.ndarray,
               ok: np.ndarray) -> tuple[pl.DataFrame, np.ndarray]:
        """Each distinct head of the records marked ``ok`` parsed once (Arrow's hash
        dictionary finds them): a table with a row per head the batch path takes, and ``code``,
        each record's row in it (-1: none, or a head the batch path does not take). Many
        distinct heads are taken apart by Polars when plain (``parse_plain_heads``), the rest,
        and a few, by ``parse_head``."""
        memo, max_head = self._memo, self.tracker.max_head
        if len(memo) > MEMO_HEADS:
            memo.clear()
        code = np.full(len(ps), -1, dtype=np.int64)
        at = np.flatnonzero(ok)
        if not len(at):
            return pl.DataFrame(schema=_HEAD_COLUMNS), code
        encoded = pc.dictionary_encode(_slices(blob, ps[at], he[at]))
        distinct = encoded.dictionary
        parts = []
        rest = np.arange(len(distinct))
        if len(distinct) > PLAIN_HEADS_FROM:
            plain, rest = parse_plain_heads(distinct, max_head)
            parts.append(plain)
            self.counters["heads_parsed"] += len(distinct) - len(rest)
        rows = []
        for i, raw in zip(rest.tolist(), distinct.take(ints(rest)).to_pylist(), strict=True):
            head = memo.get(raw, False)
            if head is False:
                head = memo[raw] = parse_head(raw, max_head=max_head)
                self.counters["heads_parsed"] += 1
            if head is not None:
                rows.append((i, *head))
        if rows:
            parts.append(pl.DataFrame(rows, schema=_HEAD_COLUMNS, orient="row"))
        table = (pl.concat(parts) if len(parts) > 1 else parts[0] if parts
                 else pl.DataFrame(schema=_HEAD_COLUMNS))
        index = np.full(len(distinct), -1, dtype=np.int64)
        index[table.get_column("i").to_numpy()] = np.arange(table.height)
        code[at] = index[values(encoded.indices)]
        return table, code

    @staticmethod
    def _rows(blob: bytes, heads: pl.DataFrame, code: np.ndarray, q: np.ndarray, r: np.ndarray,
              gid: np.ndarray, ts: np.ndarray, he: np.ndarray, objs: list[_Conn | None],
              upids: list[str], body_limit: int) -> pa.RecordBatch:
        """One row per (request q, response r) pair, in the http_events schema."""
        qc, rc = code[q], code[r]
        n = len(q)

        def per(values: list, idx: np.ndarray) -> pa.Array:  # a string per connection
            return take_views(strings(values).cast(pa.string_view()), idx)

        def per_int(values: list | np.ndarray, idx: np.ndarray) -> pa.Array:
            return ints(np.asarray(values, dtype=np.int64)[idx])

        def head(name: str, idx: np.ndarray) -> pa.Array:  # a string of each row's head
            return take_views(heads.get_column(name).to_arrow(compat_level=_NEWEST), idx)

        h_len = np.where(heads.get_column("body").to_numpy() == _LENGTH,
                         heads.get_column("length").to_numpy(), 0)
        has_type = heads.get_column("has_type").to_numpy()
        type_code = heads.get_column("type_code").to_numpy()
        req_len, resp_len = h_len[qc], h_len[rc]
        conns = [o for o in objs if o is not None]
        g = np.cumsum([o is not None for o in objs]) - 1  # group id → index into conns
        cg = g[gid]
        cols = {
            "time_": times(ts[q]),
            "upid": per([u for u, o in zip(upids, objs, strict=True) if o is not None], cg),
            "remote_addr": per([o.remote_addr for o in conns], cg),
            "remote_port": per_int([o.remote_port for o in conns], cg),
            "local_addr": per([o.local_addr for o in conns], cg),
            "local_port": per_int([o.local_port for o in conns], cg),
            "trace_role": per_int([int(o.role) for o in conns], cg),
            "encrypted": bools(np.zeros(n, dtype=bool)),
            "major_version": ints(np.ones(n, dtype=np.int64)),
            "minor_version": per_int(heads.get_column("minor").to_numpy(), rc),
            "content_type": ints(np.where(has_type[rc], type_code[rc],
                                              np.where(has_type[qc], type_code[qc], 0))),
            "req_headers": head("headers", qc),
            "req_method": head("method", qc),
            "req_path": head("path", qc),
            "req_body": _texts(blob, he[q], np.minimum(req_len, body_limit)),
            "req_body_size": ints(req_len),
            "resp_headers": head("headers", rc),
            "resp_status": per_int(heads.get_column("status").to_numpy(), rc),
            "resp_message": head("reason", rc),
            "resp_body": _texts(blob, he[r], np.minimum(resp_len, body_limit)),
            "resp_body_size": ints(resp_len),
            "latency": ints(np.maximum(ts[r] - ts[q], 0)),
        }
        return pa.RecordBatch.from_arrays([cols[c] for c in _COLUMNS], names=_COLUMNS)

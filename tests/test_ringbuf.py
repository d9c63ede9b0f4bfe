"""The ring buffer's walk from record to record (collectors/ringbuf.py: record_starts).

The stamped walk finds records in numpy from words that read as recent timestamps and checks
that they chain; it must give exactly what the plain one-record-at-a-time walk gives, whatever
the payloads hold: here payloads are built to look like records (fake headers with stamps in
the window, at every alignment), records are busy or discarded, and the copy is cut anywhere.
No kernel is needed: the ring's bytes are what a BPF program's bpf_ringbuf_output leaves.
"""

from __future__ import annotations

import struct

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from collectors import ringbuf
from collectors.ringbuf import BUSY, DISCARD, HEADER, PAGE, STAMP_WINDOW_NS, record_starts

NOW = 5_000 * 10**9  # a bpf_ktime_get_ns() reading: 5000 s after boot
IN_WINDOW = st.integers(NOW - STAMP_WINDOW_NS + 1, NOW)
SIZE = 1 << 16  # the ring's size
PG0 = 3  # the kernel's page offset of the ring's first data page


def header(n: int, at: int, origin: int = 0) -> bytes:
    """A record header as the kernel writes it at blob offset ``at``."""
    return struct.pack("<II", n, PG0 + ((origin + at) % SIZE) // PAGE)


def layout(records: list[bytes], origin: int = 0) -> bytes:
    out = bytearray()
    for r in records:
        out += header(len(r), len(out), origin) + r + bytes(-len(r) % 8)
    return bytes(out)


def plain(blob: bytes, span: int, limit: int) -> tuple[list[int], int]:
    """The walk, written the obvious way."""
    starts, at = [], 0
    while at + HEADER <= span - span % 4 and len(starts) != limit:
        head = struct.unpack_from("<I", blob, at)[0]
        if head & BUSY:
            break
        starts.append(at)
        at += (head & ~(BUSY | DISCARD) & 0xFFFFFFFF) + HEADER + 7 & ~7
    return starts, at


@st.composite
def payloads(draw) -> bytes:
    """Payload bytes, often holding what reads as a record header and a stamp."""
    parts = []
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(["bytes", "fake", "stamp"]))
        if kind == "bytes":
            parts.append(draw(st.binary(max_size=40)))
        elif kind == "fake":  # a header saying "a record of n bytes" and a stamp after it
            n = draw(st.integers(0, 200))  # (page offsets that fit where it lands, or not)
            parts.append(struct.pack("<IIQ", n | draw(st.sampled_from([0, BUSY, DISCARD])),
                                     draw(st.integers(PG0, PG0 + 2)), draw(IN_WINDOW)))
        else:
            parts.append(struct.pack("<Q", draw(IN_WINDOW)))
    return b"".join(parts)


@st.composite
def rings(draw) -> tuple[bytes, int, int, int]:
    """A ring's bytes from the consumer position on (``origin`` in the ring), the span copied,
    and a record limit."""
    origin = draw(st.sampled_from([0, PAGE - 64, SIZE - 200, 5 * PAGE + 8]))
    out = bytearray()
    for _ in range(draw(st.integers(0, 12))):
        stamp = draw(st.one_of(IN_WINDOW, st.integers(0, 2**64 - 1)))  # mostly in the window
        body = struct.pack("<Q", stamp) + draw(payloads())
        flags = draw(st.sampled_from([0, 0, 0, 0, DISCARD, BUSY]))
        out += header(len(body) | flags, len(out), origin) + body + bytes(-len(body) % 8)
    out += draw(st.binary(max_size=24))  # whatever lies beyond the last record
    span = draw(st.integers(0, len(out)))
    limit = draw(st.sampled_from([-1, -1, 1, 2, 5]))
    return bytes(out), span, limit, origin


@settings(max_examples=600, deadline=None)
@given(rings())
def test_stamped_walk_is_the_plain_walk(ring):
    blob, span, limit, origin = ring
    want = plain(blob, span, limit)
    for stamped in (False, True):
        starts, at = record_starts(blob, span, limit, stamped=stamped, now_ns=NOW,
                                   origin=origin, size=SIZE)
        assert (starts.tolist(), at) == want, stamped
        assert starts.dtype == np.int64


def test_a_clean_ring_takes_no_step_one_record_at_a_time(monkeypatch):
    stepped, walk = [], ringbuf._plain_walk  # records walked the plain way, per call

    def spy(*args):
        rest, at = walk(*args)
        stepped.append(len(rest))
        return rest, at

    records = [struct.pack("<Q", NOW - i) + bytes(i % 50 * 3) for i in range(1000)]
    blob = layout(records)
    monkeypatch.setattr(ringbuf, "_plain_walk", spy)
    starts, at = record_starts(blob, len(blob), stamped=True, now_ns=NOW, size=SIZE)
    assert len(starts) == 1000 and at == len(blob)
    assert starts.tolist() == plain(blob, len(blob), -1)[0]
    assert sum(stepped) == 0
    # a stamp gone stale (a record written more than ten minutes ago) is walked past anyway
    stale = bytearray(blob)
    struct.pack_into("<Q", stale, starts[500] + HEADER, NOW - STAMP_WINDOW_NS - 1)
    starts2, at2 = record_starts(bytes(stale), len(stale), stamped=True, now_ns=NOW, size=SIZE)
    assert starts2.tolist() == starts.tolist() and at2 == at
    assert sum(stepped) == 1  # one record the plain way, then chained runs again


def test_busy_record_stops_the_walk_in_the_vector_path():
    blob = bytearray(layout([struct.pack("<Q", NOW) + bytes(20) for _ in range(6)]))
    step = len(blob) // 6
    struct.pack_into("<I", blob, 4 * step, 28 | BUSY)
    starts, at = record_starts(bytes(blob), len(blob), stamped=True, now_ns=NOW, size=SIZE)
    assert starts.tolist() == [0, step, 2 * step, 3 * step] and at == 4 * step


# ---- records the main ring refused, put back in place (collectors/socket_trace.py) --------------

@st.composite
def spilled_drains(draw) -> tuple[list[tuple[int, int, int]], list[bool]]:
    """Records in ring order as (ts, tgid, fd), each socket's in time order (ring order across
    sockets is any interleaving, their clocks unrelated), and which ones the main ring refused."""
    n = draw(st.integers(1, 30))
    keys = draw(st.lists(st.sampled_from([(7, 3), (7, 4), (9, 3)]), min_size=n, max_size=n))
    clocks = {k: draw(st.integers(1, 10**6)) for k in set(keys)}
    out = []
    for k in keys:
        clocks[k] += draw(st.integers(1, 1000))
        out.append((clocks[k], *k))
    return out, draw(st.lists(st.booleans(), min_size=n, max_size=n))


@settings(max_examples=300, deadline=None)
@given(spilled_drains())
def test_spilled_records_go_back_in_their_sockets_order(drain):
    from collectors.socket_trace import merge_spilled

    records, refused = drain

    def record(i: int) -> bytes:  # the fields merge_spilled reads, then the record's number
        ts, tgid, fd = records[i]
        return struct.pack("<QIIIiI", ts, 1, tgid, tgid, fd, i) + bytes(i % 5)

    main = [i for i in range(len(records)) if not refused[i]]
    blob, starts, lengths = bytearray(), [], []
    for i in main:
        rec = record(i)
        blob += header(len(rec), len(blob))
        starts.append(len(blob))
        lengths.append(len(rec))
        blob += rec + bytes(-len(rec) % 8)
    spilled = [record(i) for i in range(len(records)) if refused[i]]
    joined, st_, ln = merge_spilled(bytes(blob), np.array(starts, dtype=np.int64),
                                    np.array(lengths, dtype=np.int64), spilled)
    assert (st_ % 8 == 0).all()
    got = [joined[a:a + n] for a, n in zip(st_.tolist(), ln.tolist(), strict=True)]
    assert sorted(got) == sorted(record(i) for i in range(len(records)))  # nothing lost or made
    order = [struct.unpack_from("<I", r, 24)[0] for r in got]
    for k in {r[1:] for r in records}:  # each socket's records in the order they were written
        mine = [i for i in order if records[i][1:] == k]
        assert mine == sorted(mine)

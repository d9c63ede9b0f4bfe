"""A BPF ring buffer (BPF_MAP_TYPE_RINGBUF) read from pure Python through mmap.

pylibbpf has no ring-buffer class, only the map's fd (``BpfMap.get_fd()``); this is the consumer
side of the kernel's protocol (kernel/bpf/ringbuf.c, libbpf's ringbuf.c)::

    offset 0     consumer page  RW   u64 consumer_pos (we advance it)
    offset PAGE  producer page  RO   u64 producer_pos (the kernel advances it)
                 data           RO   size bytes (the kernel offers them mapped twice in a row, so
                                     that a record that wraps reads as one slice; we map them
                                     once, since every read copies out anyway, and join the two
                                     pieces of a wrapping read: half the resident memory)

    record at data[pos & (size - 1)]:  u32 len | BUSY (bit 31) | DISCARD (bit 30), u32 pgoff,
                                       len bytes of payload, padded to 8 bytes

Records are copied out in batches and ``consumer_pos`` written back once per batch. Waiting is an
epoll on the map fd, which the kernel signals when it commits a record the consumer was waiting
for (its default adaptive wakeup).

Example (with a loaded pylibbpf object ``obj`` whose map ``events`` is a ring buffer)::

    m = obj.get_map("events")
    ring = RingBuffer(m.get_fd(), m.get_max_entries())
    for record in ring.poll(timeout_ms=100):
        ...   # bytes, exactly as the BPF program passed them to bpf_ringbuf_output/submit
    ring.close()
"""

from __future__ import annotations

import mmap
import select
import struct
import time

import numpy as np

__all__ = ["RingBuffer", "record_starts"]

PAGE = mmap.PAGESIZE
PAGE_SHIFT = PAGE.bit_length() - 1
BUSY = 1 << 31
DISCARD = 1 << 30
HEADER = 8
#: The largest record a collector writes (socket_trace's data_event with a full 4 KiB capture),
#: rounded up: a copy of the ring is never cut shorter than one of these.
MAX_RECORD = 8192

#: Stamped records (see RingBuffer) are looked for among words that read as a bpf_ktime_get_ns()
#: of the last ten minutes or the next minute.
STAMP_WINDOW_NS = 600 * 10**9
STAMP_AHEAD_NS = 60 * 10**9

_LENGTH = ~(BUSY | DISCARD) & 0xFFFFFFFF
_NONE = np.zeros(0, dtype=np.int64)
_U64 = struct.Struct("<Q")
_U32 = struct.Struct("<I")


class RingBuffer:
    """The consumer end of one BPF ring buffer map.

    ``map_fd`` stays owned by the caller (mmap and epoll keep what they need); ``size`` is the
    map's max_entries, a power of two multiple of the page size. ``stamped``: every record
    starts with a u64 ``bpf_ktime_get_ns()``, which lets the walk from record to record be
    done in numpy (see ``record_starts``); any content still reads right, only slower.
    """

    def __init__(self, map_fd: int, size: int, stamped: bool = False) -> None:
        if size <= 0 or size & (size - 1) or size % PAGE:
            raise ValueError(f"ring buffer size {size} is not a power of 2 multiple of {PAGE}")
        self.size = size
        self.stamped = stamped
        self._mask = size - 1
        self._consumer = mmap.mmap(map_fd, PAGE, mmap.MAP_SHARED,
                                   mmap.PROT_READ | mmap.PROT_WRITE, offset=0)
        try:
            self._producer = mmap.mmap(map_fd, PAGE + size, mmap.MAP_SHARED, mmap.PROT_READ,
                                       offset=PAGE)
        except BaseException:
            self._consumer.close()
            raise
        self._epoll = select.epoll()
        self._epoll.register(map_fd, select.EPOLLIN)
        #: records handed out, and their payload bytes
        self.records = 0
        self.bytes = 0

    # -- positions -------------------------------------------------------------------------
    @property
    def consumer_pos(self) -> int:
        return _U64.unpack_from(self._consumer, 0)[0]

    @property
    def producer_pos(self) -> int:
        return _U64.unpack_from(self._producer, 0)[0]

    def pending(self) -> int:
        """Bytes committed or reserved by the kernel and not consumed yet."""
        return self.producer_pos - self.consumer_pos

    # -- consuming --------------------------------------------------------------------------
    def consume_raw(self, max_records: int | None = None,
                    max_bytes: int = 8 << 20) -> tuple[bytes, np.ndarray, np.ndarray]:
        """Every record ready now (at most ``max_records``, in about ``max_bytes`` of ring),
        without waiting, as one copy of the ring's bytes and each record's payload offset and
        length in it (discarded records left out): what a vectorised decoder wants, with no
        slice object per record."""
        first = self.consumer_pos
        avail = self.producer_pos - first
        if avail <= 0:
            return b"", _NONE, _NONE
        # One copy of what is there (a span that wraps is joined from its two pieces).
        base = PAGE + (first & self._mask)
        span = min(avail, max(max_bytes, HEADER + MAX_RECORD))
        end = PAGE + self.size
        data = self._producer
        blob = data[base:base + span] if base + span <= end else \
            data[base:end] + data[PAGE:PAGE + span - (end - base)]
        limit = -1 if max_records is None else max_records + 1  # +1: where the next one starts
        heads, at = record_starts(blob, span, limit, self.stamped, origin=first,
                                  size=self.size)
        head_words = np.frombuffer(blob, dtype="<u4", count=span // 4)[heads >> 2] \
            if len(heads) else np.zeros(0, dtype=np.uint32)
        lengths = (head_words & _LENGTH).astype(np.int64)
        whole = heads + HEADER + lengths <= span  # a record the copy cut waits for next time
        n = int(whole.argmin()) if not whole.all() else len(heads)
        if max_records is not None:
            n = min(n, max_records)
        consumed = int(heads[n]) if n < len(heads) else at
        keep = (head_words[:n] & DISCARD) == 0
        starts = heads[:n][keep] + HEADER
        lengths = lengths[:n][keep]
        if consumed:
            _U64.pack_into(self._consumer, 0, first + consumed)
        self.records += len(starts)
        self.bytes += int(lengths.sum())
        return blob, starts, lengths

    def consume(self, max_records: int | None = None) -> list[bytes]:
        """Every record ready now (at most ``max_records``), without waiting."""
        blob, starts, lengths = self.consume_raw(max_records)
        return [blob[s:s + n] for s, n in zip(starts.tolist(), lengths.tolist(), strict=True)]

    def poll(self, timeout_ms: int = 0, max_records: int | None = None) -> list[bytes]:
        """The records ready now; if none, wait up to ``timeout_ms`` (-1: forever) for some."""
        out = self.consume(max_records)
        if out or timeout_ms == 0:
            return out
        self.wait(timeout_ms)
        return self.consume(max_records)

    def wait(self, timeout_ms: int) -> bool:
        """Wait up to ``timeout_ms`` (-1: forever) for the kernel to signal that records
        arrived; whether it did."""
        return bool(self._epoll.poll(-1 if timeout_ms < 0 else timeout_ms / 1000))

    def fileno(self) -> int:
        """An fd that turns readable when records arrive (for a caller's own select loop)."""
        return self._epoll.fileno()

    def close(self) -> None:
        if not self._epoll.closed:
            self._epoll.close()
            self._producer.close()
            self._consumer.close()

    def __enter__(self) -> RingBuffer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def record_starts(blob: bytes, span: int, limit: int = -1, stamped: bool = False,
                  now_ns: int | None = None, origin: int = 0,
                  size: int = 1 << 62) -> tuple[np.ndarray, int]:
    """Where the records in the first ``span`` bytes of ``blob`` (a copy of the ring from the
    consumer's position on) start, at most ``limit`` of them (-1: no limit), up to the first
    one still being written; and the offset where the walk stopped.

    Each record's header says where the next one starts, so the walk is a chain. With
    ``stamped`` records it is found in numpy. A candidate record is an 8-aligned word that
    reads as a timestamp of the last ten minutes, after a header whose page offset is the
    one the kernel writes at that place (``origin``: where ``blob`` starts in the ring of
    ``size`` bytes; the first record gives the constant). Runs of candidates that chain are
    taken whole. Where the chain breaks (payload bytes that read like a record, a record
    whose stamp is stale) the walk takes one record the plain way and looks again.
    """
    if not stamped or span < 2 * HEADER:
        rest, at = _plain_walk(blob, span, 0, limit)
        return _limit([rest], limit, at)
    w64 = np.frombuffer(blob, dtype="<u8", count=span // 8)
    now = time.monotonic_ns() if now_ns is None else now_ns
    since = np.uint64(max(now - STAMP_WINDOW_NS, 1 << 32))  # not small numbers near boot
    stamp = w64[1:] - since  # wraps around: in the window ⇔ small
    cand = np.flatnonzero(stamp <= np.uint64(STAMP_WINDOW_NS + STAMP_AHEAD_NS)) * 8
    words = np.frombuffer(blob, dtype="<u4", count=span // 4)
    # a header's page offset, less its page in the ring, is the same for all: the first one's
    pg0 = int(words[1]) - ((origin & (size - 1)) >> PAGE_SHIFT)
    cand = cand[words[(cand >> 2) + 1] == (((origin + cand) & (size - 1)) >> PAGE_SHIFT) + pg0]
    head = words[cand >> 2].astype(np.int64)
    nxt = cand + (((head & _LENGTH) + (HEADER + 7)) & ~7)
    # run ends: candidates the chain does not go on from to the next candidate
    ends = np.append(np.flatnonzero(nxt[:-1] != cand[1:]), len(cand) - 1)
    busy = np.flatnonzero(head & BUSY)
    found: list[np.ndarray] = []
    at, total = 0, 0
    while limit == -1 or total < limit:
        i = int(np.searchsorted(cand, at))
        if i < len(cand) and cand[i] == at:  # a run of chained records from here
            end = int(ends[np.searchsorted(ends, i)])
            k = np.searchsorted(busy, i)
            if k < len(busy) and busy[k] <= end:  # committed up to a record still written
                found.append(cand[i:busy[k]])
                at = int(cand[busy[k]])
                break
            found.append(cand[i:end + 1])
            total += end + 1 - i
            at = int(nxt[end])
            continue
        rest, at_next = _plain_walk(blob, span, at, 1)
        if not len(rest):  # the end, or a record still written
            break
        found.append(rest)
        total += 1
        at = at_next
    return _limit(found, limit, at)


def _plain_walk(blob: bytes, span: int, at: int, todo: int) -> tuple[np.ndarray, int]:
    """The walk one record at a time from offset ``at`` (at most ``todo``, -1: no limit)."""
    words = memoryview(blob)[:span - span % 4].cast("I")
    rest: list[int] = []
    append = rest.append
    last = len(words) * 4 - HEADER
    while at <= last and len(rest) != todo:
        head = words[at >> 2]  # records start 8-aligned
        if head & BUSY:  # reserved, not committed yet: records behind it must wait
            break
        append(at)
        at += ((head & _LENGTH) + HEADER + 7) & ~7
    words.release()
    return np.asarray(rest, dtype=np.int64), at


def _limit(found: list[np.ndarray], limit: int, at: int) -> tuple[np.ndarray, int]:
    heads = found[0] if len(found) == 1 else np.concatenate(found) if found else _NONE
    if limit != -1 and len(heads) > limit:
        at = int(heads[limit])
        heads = heads[:limit]
    return heads.astype(np.int64, copy=False), at

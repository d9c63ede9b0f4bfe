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

import numpy as np

__all__ = ["RingBuffer"]

PAGE = mmap.PAGESIZE
BUSY = 1 << 31
DISCARD = 1 << 30
HEADER = 8
#: The largest record a collector writes (socket_trace's data_event with a full 4 KiB capture),
#: rounded up: a copy of the ring is never cut shorter than one of these.
MAX_RECORD = 8192

_LENGTH = ~(BUSY | DISCARD) & 0xFFFFFFFF
_NONE = np.zeros(0, dtype=np.int64)
_U64 = struct.Struct("<Q")
_U32 = struct.Struct("<I")


class RingBuffer:
    """The consumer end of one BPF ring buffer map.

    ``map_fd`` stays owned by the caller (mmap and epoll keep what they need); ``size`` is the
    map's max_entries, a power of two multiple of the page size.
    """

    def __init__(self, map_fd: int, size: int) -> None:
        if size <= 0 or size & (size - 1) or size % PAGE:
            raise ValueError(f"ring buffer size {size} is not a power of 2 multiple of {PAGE}")
        self.size = size
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
        # The walk from header to header is the one step per record done in Python; the rest
        # (lengths, discarded records, records the copy cut, the record limit) is numpy's.
        words = memoryview(blob).cast("I") if span % 4 == 0 else \
            memoryview(blob[:span - span % 4]).cast("I")
        heads: list[int] = []
        append = heads.append
        at = 0
        last = len(words) * 4 - HEADER
        limit = -1 if max_records is None else max_records + 1  # +1: where the next one starts
        while at <= last and len(heads) != limit:
            head = words[at >> 2]  # records start 8-aligned
            if head & BUSY:  # reserved, not committed yet: records behind it must wait
                break
            append(at)
            at += ((head & _LENGTH) + HEADER + 7) & ~7
        words.release()
        at_ = np.asarray(heads, dtype=np.int64)
        head_words = np.frombuffer(blob, dtype="<u4", count=span // 4)[at_ >> 2] \
            if len(at_) else np.zeros(0, dtype=np.uint32)
        lengths = (head_words & _LENGTH).astype(np.int64)
        whole = at_ + HEADER + lengths <= span  # a record the copy cut waits for next time
        n = int(whole.argmin()) if not whole.all() else len(at_)
        if max_records is not None:
            n = min(n, max_records)
        consumed = int(at_[n]) if n < len(at_) else at
        keep = (head_words[:n] & DISCARD) == 0
        starts = at_[:n][keep] + HEADER
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
        self._epoll.poll(-1 if timeout_ms < 0 else timeout_ms / 1000)
        return self.consume(max_records)

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

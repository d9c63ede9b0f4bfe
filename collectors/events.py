"""The events that flow from the kernel side to the protocol parsers.

The socket tracer's BPF programs emit one record per syscall that moves bytes, and one per
connection opened or closed; the loader decodes them into these plain objects, which is all a
protocol parser ever sees (so parsers are testable and fuzzable without BPF).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["Direction", "Role", "ConnKey", "DataEvent", "ConnEvent"]


class Direction(enum.IntEnum):
    EGRESS = 0  # written/sent by the traced process
    INGRESS = 1  # read/received by the traced process


class Role(enum.IntEnum):
    """Pixie's trace_role: which side of the connection the traced process is."""

    UNKNOWN = 0
    CLIENT = 1
    SERVER = 2


@dataclass(frozen=True, slots=True)
class ConnKey:
    """One connection of one process: a (tgid, fd) pair is reused, so a generation counts the
    connect/accept calls that produced it."""

    tgid: int
    fd: int
    generation: int


@dataclass(frozen=True, slots=True)
class DataEvent:
    """Bytes one syscall moved: at most the first CAPTURE_BYTES of them are in ``data``."""

    ts_ns: int  # wall-clock ns since the epoch
    conn: ConnKey
    direction: Direction
    data: bytes
    size: int  # how many bytes the syscall moved (>= len(data))


@dataclass(frozen=True, slots=True)
class ConnEvent:
    """A connection opened (connect/accept) or closed."""

    ts_ns: int
    conn: ConnKey
    opened: bool
    role: Role
    family: int  # 2 = IPv4, 10 = IPv6
    local_addr: str
    local_port: int
    remote_addr: str
    remote_port: int
    bytes_sent: int = 0  # totals so far, on close
    bytes_recv: int = 0

"""Reading /proc: process identity (upid), counters and metadata.

A process is named by a upid — host id, pid and start time — so that a reused pid never merges
two processes: ``"{host_id:08x}-{pid:08x}-{start_ns:016x}"``, the form pxl's demo data uses.
"""

from __future__ import annotations

import os
import re
import socket
import zlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

__all__ = ["make_upid", "ProcSample", "read_process", "list_pids", "boot_time_ns",
           "container_id", "host_id"]

PROC = Path("/proc")
_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")
_CONTAINER = re.compile(r"([0-9a-f]{64})")


def make_upid(host: int, pid: int, start_ns: int) -> str:
    return f"{host:08x}-{pid:08x}-{start_ns:016x}"


@cache
def boot_time_ns() -> int:
    for line in (PROC / "stat").read_text().splitlines():
        if line.startswith("btime "):
            return int(line.split()[1]) * 1_000_000_000
    raise OSError("no btime in /proc/stat")


@cache
def host_id() -> int:
    """A stable small number for this host (from its machine id, else its hostname)."""
    for path in ("/etc/machine-id", "/var/lib/dbus/machine-id"):
        try:
            text = Path(path).read_text().strip()
            if text:
                return int(text[:8], 16) or 1
        except (OSError, ValueError):
            continue
    # not hash(): Python salts it per process, and upids must survive an agent restart
    return (zlib.crc32(socket.gethostname().encode()) & 0x7FFFFFFF) or 1


@dataclass(frozen=True, slots=True)
class ProcSample:
    pid: int
    start_ns: int
    comm: str
    major_faults: int
    minor_faults: int
    utime_ns: int
    stime_ns: int
    num_threads: int
    vsize_bytes: int
    rss_bytes: int
    rchar: int
    wchar: int
    read_bytes: int
    write_bytes: int


def list_pids() -> list[int]:
    return [int(d) for d in os.listdir(PROC) if d.isdigit()]


def _stat_fields(text: str) -> tuple[str, list[str]]:
    # comm may contain spaces and parentheses: split around the last ')'
    start, end = text.index("("), text.rindex(")")
    return text[start + 1:end], text[end + 2:].split()


def read_process(pid: int) -> ProcSample | None:
    """One process's counters, or None if it is gone (or unreadable)."""
    base = PROC / str(pid)
    try:
        comm, f = _stat_fields((base / "stat").read_text())
        io = {}
        try:
            for line in (base / "io").read_text().splitlines():
                key, _, value = line.partition(":")
                io[key] = int(value)
        except (PermissionError, FileNotFoundError):
            pass
    except (FileNotFoundError, ProcessLookupError, PermissionError, ValueError, IndexError):
        return None
    # fields after comm: state(0) ppid(1) … minflt(7) majflt(9) utime(11) stime(12)
    # num_threads(17) starttime(19) vsize(20) rss(21)
    to_ns = 1_000_000_000 // _TICKS
    return ProcSample(
        pid=pid, start_ns=boot_time_ns() + int(f[19]) * to_ns, comm=comm,
        major_faults=int(f[9]), minor_faults=int(f[7]), utime_ns=int(f[11]) * to_ns,
        stime_ns=int(f[12]) * to_ns, num_threads=int(f[17]), vsize_bytes=int(f[20]),
        rss_bytes=int(f[21]) * _PAGE, rchar=io.get("rchar", 0), wchar=io.get("wchar", 0),
        read_bytes=io.get("read_bytes", 0), write_bytes=io.get("write_bytes", 0))


def cmdline(pid: int) -> str:
    try:
        raw = (PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return ""
    return raw.rstrip(b"\0").replace(b"\0", b" ").decode("utf-8", "replace")


def container_id(pid: int) -> str:
    """The container id from the process's cgroup path ('' outside containers)."""
    try:
        text = (PROC / str(pid) / "cgroup").read_text()
    except OSError:
        return ""
    m = _CONTAINER.search(text)
    return m.group(1) if m else ""

"""Process exec and exit events, host-wide: the rows of proc_exit_events, and the start time
that turns a pid into a upid.

Pairs with ``bpf_src/proc_events.bpf.c`` (sched_process_exec / sched_process_exit → ring buffer).

Example (as root)::

    with ProcEvents() as procs:
        for ev in procs.poll(timeout_ms=1000):
            if ev.kind == "exit":
                print(ev.comm, ev.tgid, ev.exit_code, ev.signal)
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from collectors.loader import BpfCollector, Record

__all__ = ["ProcEvent", "ProcEvents", "ProcEventsSettings", "PROCESS_EVENT"]

# ---- the record of bpf_src/proc_events.h, mirrored once ----------------------------------------
PROC_EXEC, PROC_EXIT = 1, 2
PROCESS_EVENT = Record("process_event", [
    ("ts_ns", "Q"), ("kind", "I"), ("pid", "I"), ("tgid", "I"), ("ppid", "I"),
    ("start_ns", "Q"), ("exit_code", "i"), ("signal", "I"), ("comm", "16s"),
])

_KINDS = {PROC_EXEC: "exec", PROC_EXIT: "exit"}
_TICK_NS = 1_000_000_000 // os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True, slots=True)
class ProcEvent:
    """A process exec'd a new program, or its last thread exited."""

    ts_ns: int  # wall-clock ns since the epoch
    kind: str  # "exec" or "exit"
    pid: int  # the thread that exec'd or exited last
    tgid: int  # the process
    ppid: int
    start_ns: int  # when the process started, ns since boot (CLOCK_BOOTTIME)
    exit_code: int  # exit status 0-255 ("exit" only)
    signal: int  # the signal that killed it, 0 if none ("exit" only)
    comm: str

    @property
    def start_ticks(self) -> int:
        """The start time in clock ticks since boot, as field 22 of /proc/<pid>/stat shows it
        (what a upid is built from when the process is read from /proc instead)."""
        return self.start_ns // _TICK_NS


@dataclass(frozen=True)
class ProcEventsSettings:
    """proc_events has no settings: every process on the host is reported."""

    def rodata(self) -> dict[str, bytes]:
        return {}


def decode(records: list[bytes], clock_offset_ns: int) -> list[ProcEvent]:
    out = []
    for rec in records:
        ts, kind, pid, tgid, ppid, start, code, sig, comm = PROCESS_EVENT.unpack(rec)
        out.append(ProcEvent(ts + clock_offset_ns, _KINDS.get(kind, str(kind)), pid, tgid, ppid,
                             start, code, sig,
                             comm.split(b"\0", 1)[0].decode("utf-8", "replace")))
    return out


class ProcEvents(BpfCollector[ProcEvent]):
    """Lifecycle: ``ProcEvents().open().load().attach()``, then ``poll()``, then ``close()``."""

    name = "proc_events"

    def __init__(self, settings: ProcEventsSettings | None = None) -> None:
        super().__init__()
        self.settings = settings or ProcEventsSettings()

    def decode(self, records: list[bytes]) -> list[ProcEvent]:
        return decode(records, self.clock_offset_ns)


def main(argv: list[str] | None = None) -> int:
    """``python -m collectors.proc_events [-d SECONDS]``: print execs and exits (as root)."""
    import argparse
    import time

    parser = argparse.ArgumentParser(prog="python -m collectors.proc_events")
    parser.add_argument("-d", "--duration", type=float, default=0, help="seconds (0: until ^C)")
    args = parser.parse_args(argv)
    with ProcEvents() as procs:
        t0, end = time.time_ns(), time.monotonic() + (args.duration or float("inf"))
        print(f"{'TIME(s)':>10} {'EVENT':<5} {'PID':>7} {'PPID':>7} {'START(ticks)':>12} "
              f"{'CODE':>4} {'SIG':>3}  COMM")
        try:
            while time.monotonic() < end:
                for e in procs.poll(timeout_ms=100):
                    print(f"{(e.ts_ns - t0) / 1e9:10.6f} {e.kind:<5} {e.tgid:>7} {e.ppid:>7} "
                          f"{e.start_ticks:>12} {e.exit_code:>4} {e.signal:>3}  {e.comm}",
                          flush=True)
        except KeyboardInterrupt:
            pass
        print(f"# {procs.events} events, {procs.lost} lost")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

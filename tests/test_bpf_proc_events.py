"""proc_events against real processes: exec, exit codes, signals, threads, start times."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from collectors.loader import unavailable_reason
from collectors.proc_events import ProcEvent, ProcEvents

pytestmark = [pytest.mark.bpf,
              pytest.mark.skipif(unavailable_reason() is not None,
                                 reason=f"cannot load BPF here: {unavailable_reason()}")]


@pytest.fixture(scope="module")
def procs():
    p = ProcEvents().start()
    yield p
    p.close()


def drain(procs: ProcEvents, tgids: set[int], settle_ms: int = 150) -> list[ProcEvent]:
    out: list[ProcEvent] = []
    while batch := procs.poll(timeout_ms=settle_ms):
        out += [e for e in batch if e.tgid in tgids]
    return out


def stat_start_ticks(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[19])


def test_exec_and_exit_with_code_and_start_time(procs):
    before = time.time_ns()
    child = subprocess.Popen(["sh", "-c", "read line; exit 3"], stdin=subprocess.PIPE)
    time.sleep(0.05)
    ticks = stat_start_ticks(child.pid)
    child.communicate(b"\n", timeout=10)
    events = drain(procs, {child.pid})
    assert [(e.kind, e.comm) for e in events] == [("exec", "sh"), ("exit", "sh")]
    exec_, exit_ = events
    assert exec_.ppid == exit_.ppid == os.getpid()
    assert exec_.start_ticks == exit_.start_ticks == ticks  # as /proc/<pid>/stat has it
    assert (exit_.exit_code, exit_.signal) == (3, 0)
    assert before <= exec_.ts_ns <= exit_.ts_ns <= time.time_ns()
    assert procs.lost == 0


def test_killed_by_a_signal(procs):
    child = subprocess.Popen(["sleep", "30"])
    time.sleep(0.05)
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=10)
    exits = [e for e in drain(procs, {child.pid}) if e.kind == "exit"]
    assert [(e.comm, e.exit_code, e.signal) for e in exits] == [("sleep", 0, signal.SIGKILL)]


def test_one_exit_per_process_not_per_thread(procs):
    code = ("import os, threading, time\n"
            "for _ in range(3): threading.Thread(target=time.sleep, args=(30,), daemon=True).start()\n"
            "os._exit(5)\n")
    child = subprocess.Popen([sys.executable, "-c", code])
    child.wait(timeout=10)
    exits = [e for e in drain(procs, {child.pid}) if e.kind == "exit"]
    assert [(e.tgid, e.exit_code) for e in exits] == [(child.pid, 5)]

"""Shared fixtures: the demo dataset at a fixed instant, a runner for the pxl command, and
``pxl agent``/``pxl broker`` processes."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

import pxl
from engine.catalog import MemoryCatalog

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
#: The instant the demo data ends at in tests (2026-11-24T12:00:00Z), so results are reproducible.
DEMO_NOW = 1_795_521_600_000_000_000


@pytest.fixture(scope="session")
def demo_frames():
    from pxl.demo import demo_tables

    return demo_tables(DEMO_NOW)


@pytest.fixture(scope="session")
def demo_catalog(demo_frames) -> MemoryCatalog:
    catalog = MemoryCatalog()
    for name, frame in demo_frames.items():
        catalog.add(name, frame)
    from pxl.demo import demo_metadata

    catalog.set_metadata(demo_metadata(DEMO_NOW))
    return catalog


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_up(address: str, proc: subprocess.Popen, token: str | None = None) -> None:
    """Until the agent or broker at ``address`` answers (a minute at most; its stderr if it
    died)."""
    deadline = time.time() + 60
    while True:
        try:
            with pxl.connect(address, token=token, timeout_s=2) as remote:
                remote.status()
            return
        except pxl.PxlError:
            if proc.poll() is not None:
                raise AssertionError(proc.stderr.read().decode()) from None
            if time.time() > deadline:
                raise
            time.sleep(0.2)


@contextmanager
def pxl_process(*args: str, env: dict[str, str] | None = None, token: str | None = None):
    """``pxl <args>`` (an agent or broker listening on the --listen address), stopped after."""
    address = args[args.index("--listen") + 1]
    full_env = {k: v for k, v in os.environ.items() if k not in ("PXL_TOKEN", "PXL_FAILPOINTS")}
    full_env.update(env or {})
    if token:
        full_env["PXL_TOKEN"] = token
    proc = subprocess.Popen([sys.executable, "-m", "pxl.cli", *args], stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, env=full_env, cwd=ROOT)
    try:
        wait_up(address, proc, token)
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        if proc.stderr:
            proc.stderr.close()


@dataclass
class CliResult:
    code: int
    out: str
    err: str


def run_cli(*args: str, stdin: str | bytes | None = None, cwd: Path | None = None) -> CliResult:
    """Run the real ``pxl`` command in a subprocess, as a user would."""
    data = stdin.encode() if isinstance(stdin, str) else stdin
    proc = subprocess.run([sys.executable, "-m", "pxl.cli", *args], input=data,
                          capture_output=True, cwd=cwd or ROOT, timeout=120)
    return CliResult(proc.returncode, proc.stdout.decode("utf-8", "replace"),
                     proc.stderr.decode("utf-8", "replace"))


@pytest.fixture
def cli():
    return run_cli

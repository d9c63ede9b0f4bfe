"""Shared fixtures: the demo dataset at a fixed instant, and a runner for the pxl command."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

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

"""The library surface: ``pxl.run``, ``pxl.compile``, ``pxl.explain``.

The pipeline is written down once, in :func:`run`: parse → compile → optimize → execute, each
stage timed at debug level.

>>> import polars as pl
>>> res = run("import px\\npx.display(px.DataFrame('t').head(1))", tables={"t": pl.DataFrame({"a": [1, 2]})})
>>> res["output"]["a"].to_list()
[1]
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from engine.catalog import Catalog, MemoryCatalog, TableSource
from engine.errors import PxlError
from engine.executor import EngineName, Result, execute, physical_plan
from engine.explain import explain as explain_plan
from engine.optimizer import optimize
from engine.relations import Plan
from engine.timeutil import now_ns
from pxl.args import VisSpec
from pxl.compiler import compile_module
from pxl.gcpause import gc_paused
from pxl.parser import parse
from pxl.plancache import PLAN_CACHE, CompileReads, plan_key, relative_scans
from pxl.pragmas import DEFAULT_MAX_OUTPUT_ROWS, read_pragmas

__all__ = ["run", "compile", "explain", "Results", "MissingAgent", "make_catalog"]

log = logging.getLogger("pxl")


@contextmanager
def _stage(name: str) -> Iterator[None]:
    started = time.perf_counter()
    yield
    log.debug("%s: %.2f ms", name, (time.perf_counter() - started) * 1e3)


class Results(Mapping[str, pl.DataFrame]):
    """The outputs of a script: output name → polars.DataFrame, in display order.

    ``results.outputs`` also gives each output's column types (with semantic types) and
    display options such as ``chart_type``."""

    def __init__(self, outputs: list[Result], plan: Plan | None,
                 missing: Sequence[MissingAgent] = ()) -> None:
        self.outputs = outputs
        self.plan = plan
        #: agents a broker asked that did not answer in full: the outputs lack their rows
        self.missing = list(missing)
        self._by_name = {o.name: o.frame for o in outputs}

    @property
    def partial(self) -> bool:
        """True when some agents' rows are missing from the outputs (see ``missing``)."""
        return bool(self.missing)

    def __getitem__(self, name: str) -> pl.DataFrame:
        return self._by_name[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_name)

    def __len__(self) -> int:
        return len(self._by_name)

    def __repr__(self) -> str:
        shapes = ", ".join(f"{o.name}: {o.frame.height}×{o.frame.width}" for o in self.outputs)
        gap = f"; {len(self.missing)} agents missing" if self.missing else ""
        return f"Results({shapes}{gap})"


@dataclass(frozen=True)
class MissingAgent:
    """An agent whose rows a broker's answer lacks, and why."""

    agent: str
    address: str
    reason: str

    def __str__(self) -> str:
        return f"{self.agent} ({self.address}): {self.reason}"


def make_catalog(data: str | Path | None = None,
                 tables: Mapping[str, TableSource] | None = None) -> MemoryCatalog:
    """Tables from a directory of files and/or a mapping of frames (the latter win)."""
    catalog = MemoryCatalog()
    if data is not None:
        catalog.add_dir(data)
    for name, source in (tables or {}).items():
        catalog.add(name, source)
    return catalog


@dataclass(frozen=True)
class _Source:
    text: str
    filename: str


def compile(source: str, catalog: Catalog | None = None, *, now: int | None = None,
            filename: str = "<script>", data: str | Path | None = None,
            tables: Mapping[str, TableSource] | None = None, optimized: bool = True,
            args: Mapping[str, Any] | None = None, vis: VisSpec | None = None,
            cache: bool = True) -> Plan:
    """Parse and compile a script into a (by default optimized) plan.

    ``args`` gives script arguments (declared with px.arg or a vis.json) by name. A script
    compiled before against the same tables comes from the plan cache (pxl/plancache.py), its
    relative windows moved to ``now``; ``cache=False`` compiles it anew."""
    catalog = catalog if catalog is not None else make_catalog(data, tables)
    now = now if now is not None else now_ns()
    return _compile(source, catalog, now, filename, optimized, args, vis, cache)[0]


def _compile(source: str, catalog: Catalog, now: int, filename: str, optimized: bool,
             args: Mapping[str, Any] | None, vis: VisSpec | None, cache: bool
             ) -> tuple[Plan, dict[str, Any]]:
    """The plan and the script's #px:set settings, from the plan cache if it has them."""
    key = plan_key(source, filename, args, vis, optimized) if cache else None
    if key is not None:
        with _stage("plan cache"):
            found = PLAN_CACHE.get(key, catalog, now)
        if found is not None:
            return found
    reads = CompileReads() if key is not None else None
    try:
        with gc_paused():  # many small objects, no garbage cycles: see pxl/gcpause.py
            with _stage("parse"):
                module = parse(source, filename)
                settings = read_pragmas(source, filename)  # a bad #px:set line is an error first
            with _stage("compile"):
                plan = compile_module(module, catalog, now=now, filename=filename,
                                      args=dict(args or {}), vis=vis, reads=reads)
            relative = relative_scans(plan) if key is not None else 0
            if optimized:
                with _stage("optimize"):
                    plan = optimize(plan)
    except PxlError as exc:
        exc.with_source(source)
        raise
    if reads is not None:
        PLAN_CACHE.put(key, plan, reads, now, settings, relative)
    return plan, settings


def run(source: str, *, data: str | Path | None = None,
        tables: Mapping[str, TableSource] | None = None, catalog: Catalog | None = None,
        now: int | None = None, filename: str = "<script>", engine: EngineName = "auto",
        args: Mapping[str, Any] | None = None, vis: VisSpec | None = None,
        cache: bool = True) -> Results:
    """Run a PxL script and return its outputs.

    ``data`` is a directory of table files (parquet, arrow, csv, ndjson; one table per file,
    named after the file); ``tables`` maps names to polars DataFrames/LazyFrames, pyarrow Tables
    or file paths; ``catalog`` is any table store. ``now`` (ns since the epoch) anchors relative
    times such as '-5m'. ``args`` sets script arguments (px.arg); ``vis`` is a Pixie vis.json
    spec (pxl.args.load_vis). Each output keeps at most ``#px:set max_output_rows_per_table=N``
    rows (10,000 by default; ``results.outputs[i].truncated`` says when rows were cut).
    A script run again against the same tables is not compiled again: its plan comes from the
    plan cache (pxl/plancache.py), relative windows such as ``start_time='-5m'`` moved to this
    run's ``now``; ``cache=False`` compiles it anew.
    Raises :class:`pxl.PxlError` on any mistake in the script or data."""
    if catalog is None:
        catalog = make_catalog(data, tables)
    now = now if now is not None else now_ns()
    plan, settings = _compile(source, catalog, now, filename, True, args, vis, cache)
    max_rows = settings.get("max_output_rows_per_table", DEFAULT_MAX_OUTPUT_ROWS)
    try:
        with _stage("execute"):
            outputs = execute(plan, catalog, engine=engine, max_rows=max_rows)
    except PxlError as exc:
        exc.with_source(source)
        raise
    return Results(outputs, plan)


def explain(source: str, *, data: str | Path | None = None,
            tables: Mapping[str, TableSource] | None = None, catalog: Catalog | None = None,
            now: int | None = None, filename: str = "<script>", optimized: bool = True,
            physical: bool = False, args: Mapping[str, Any] | None = None,
            vis: VisSpec | None = None, distributed: bool = False) -> str:
    """The plan of a script as stable text; with ``physical`` the Polars plan too; with
    ``distributed`` the agent and broker fragments the splitter cuts it into."""
    if catalog is None:
        catalog = make_catalog(data, tables)
    plan = compile(source, catalog, now=now, filename=filename, optimized=optimized, args=args,
                   vis=vis)
    if distributed:
        from engine.distributed import explain_distributed, split

        return explain_distributed(split(plan))
    text = explain_plan(plan)
    if physical:
        text += "\n\n" + physical_plan(plan, catalog)
    return text

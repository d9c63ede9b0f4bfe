"""Compiled plans kept for scripts that run again: a dashboard re-running its script every few
seconds parses, compiles and optimizes it once.

An entry is found by what the plan is made of: the script's text and file name, its arguments,
its vis.json and whether it was optimized. It is used only if what the compile read of the
catalog is unchanged: the schema of each table it looked up (by identity, else by equality) and
the list of tables if it asked for that. A compile that read anything else of the catalog (row
counts for ``px.GetTables()``, the agents' status) is not kept.

Relative times are resolved against each run's own ``now``. A window every bound of which the
script gave relative to the time it runs (``start_time='-5m'``) is kept as such
(``Scan.relative_to``): a later run moves it by as much as ``now`` moved. A plan that read the
time in any other way (``px.now()``, a window with one absolute bound, a time-window narrowed by
a constant filter) is not kept: it would need a new compile for each ``now`` anyway.

    run 1, now=12:00:00   compile → Scan[http_events; time=[11:55:00, +inf), relative_to=12:00:00]
                          kept
    run 2, now=12:00:05   found: the same plan with Scan[...; time=[11:55:05, +inf)]

The cache holds :data:`MAX_PLANS` plans, least recently used out first. ``pxl.run(...,
cache=False)`` bypasses it; :data:`PLAN_CACHE` ``.clear()`` empties it, ``.resize(0)`` turns it
off for the process.

>>> cache = PlanCache(2)
>>> cache.resize(0)
>>> len(cache), cache.maxsize
(0, 0)
"""

from __future__ import annotations

import dataclasses
import threading
from collections import OrderedDict
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from engine.optimizer.transform import transform
from engine.relations import Plan, Relation, Scan

if TYPE_CHECKING:
    import polars as pl

    from engine.catalog import Catalog
    from engine.types import Schema

__all__ = ["PlanCache", "CompileReads", "RecordingCatalog", "PLAN_CACHE", "MAX_PLANS",
           "plan_key", "relative_scans"]

#: Plans kept by default (a plan of a long script is a few hundred small objects).
MAX_PLANS = 128


@dataclass
class CompileReads:
    """What a compile read besides the script: recorded by the compiler and its catalog."""

    #: table → the schema the catalog gave for it
    schemas: dict[str, Schema | None] = field(default_factory=dict)
    #: the catalog's list of tables, if the compile asked for it
    table_names: tuple[str, ...] | None = None
    #: the compile read something of the catalog besides its tables and schemas (rows, stats)
    other: bool = False
    #: the compile read the time other than for a window relative to it (px.now() & co)
    now: bool = False


class RecordingCatalog:
    """A catalog that notes in a :class:`CompileReads` what the compiler asks of it."""

    def __init__(self, catalog: Catalog, reads: CompileReads) -> None:
        self._catalog = catalog
        self._reads = reads

    def table_names(self) -> list[str]:
        names = self._catalog.table_names()
        self._reads.table_names = tuple(names)
        return names

    def schema(self, table: str) -> Schema | None:
        schema = self._catalog.schema(table)
        self._reads.schemas[table] = schema
        return schema

    def scan(self, table: str, columns: Iterable[str] | None, start: int | None,
             end: int | None) -> pl.LazyFrame:
        self._reads.other = True
        return self._catalog.scan(table, columns, start, end)

    def metadata(self) -> pl.DataFrame | None:
        self._reads.other = True
        return self._catalog.metadata()

    def __getattr__(self, name: str) -> Any:
        # stats(), agent_status() and anything a catalog adds: data, not schema
        self._reads.other = True
        return getattr(self._catalog, name)


def plan_key(source: str, filename: str, args: Mapping[str, Any] | None, vis: Any,
             optimized: bool) -> Hashable | None:
    """The cache key of a compile, or None if its arguments cannot be a key (unhashable)."""
    key = (source, filename, tuple(sorted((args or {}).items())), vis, optimized)
    try:
        hash(key)
    except TypeError:
        return None
    return key


def relative_scans(plan: Plan) -> int:
    """How many scans of the plan have a window relative to the time it ran."""
    seen: set[int] = set()
    stack: list[Relation] = list(plan.sinks)
    count = 0
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        count += isinstance(node, Scan) and node.relative_to is not None
        stack.extend(node.children)
    return count


@dataclass(frozen=True)
class _Entry:
    plan: Plan
    now: int  # the time the plan's relative windows were resolved against
    settings: dict[str, Any]  # the script's #px:set settings
    schemas: tuple[tuple[str, Schema | None], ...]
    table_names: tuple[str, ...] | None
    relative: int  # scans with a window relative to the time


class PlanCache:
    """Compiled plans by script, least recently used out first; thread-safe."""

    def __init__(self, maxsize: int = MAX_PLANS) -> None:
        self.maxsize = maxsize
        self._entries: OrderedDict[Hashable, _Entry] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self.hits = self.misses = 0

    def resize(self, maxsize: int) -> None:
        """Keep at most ``maxsize`` plans from now on (0: keep none, the cache is off)."""
        with self._lock:
            self.maxsize = maxsize
            while len(self._entries) > maxsize:
                self._entries.popitem(last=False)

    def get(self, key: Hashable, catalog: Catalog, now: int
            ) -> tuple[Plan, dict[str, Any]] | None:
        """The plan kept for ``key`` with its windows moved to ``now``, and the script's
        settings; None if there is none or the catalog changed under it."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
        found = entry is not None and _unchanged(entry, catalog)
        with self._lock:
            if found:
                self.hits += 1
            else:
                self.misses += 1
        if entry is None or not found:
            return None
        plan = _moved(entry.plan, now - entry.now) if entry.relative else entry.plan
        return plan, entry.settings

    def put(self, key: Hashable, plan: Plan, reads: CompileReads, now: int,
            settings: dict[str, Any], relative_before: int) -> None:
        """Keep a plan compiled at ``now`` unless it depends on more than the cache checks:
        ``relative_before`` is :func:`relative_scans` of the plan before it was optimized (a
        rule that turned a relative window into a fixed one leaves fewer after)."""
        relative = relative_scans(plan)
        if self.maxsize <= 0 or reads.other or reads.now or relative != relative_before:
            return
        entry = _Entry(plan, now, settings, tuple(reads.schemas.items()), reads.table_names,
                       relative)
        with self._lock:
            self._entries[key] = entry
            self._entries.move_to_end(key)
            while len(self._entries) > self.maxsize:
                self._entries.popitem(last=False)


def _unchanged(entry: _Entry, catalog: Catalog) -> bool:
    """Whether the catalog still answers what the compile asked of it."""
    for table, schema in entry.schemas:
        current = catalog.schema(table)
        if current is not schema and current != schema:
            return False
    return entry.table_names is None or tuple(catalog.table_names()) == entry.table_names


def _moved(plan: Plan, by: int) -> Plan:
    """The plan with its relative windows moved ``by`` ns (the plan itself if 0)."""
    if by == 0:
        return plan

    def move(node: Relation) -> Relation:
        if not isinstance(node, Scan) or node.relative_to is None:
            return node
        return dataclasses.replace(
            node, start=None if node.start is None else node.start + by,
            end=None if node.end is None else node.end + by, relative_to=node.relative_to + by)

    return transform(plan, move)


#: The process's plan cache, used by pxl.run, pxl.compile and pxl.explain.
PLAN_CACHE = PlanCache()

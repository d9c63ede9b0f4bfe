"""Every collector this host runs, and the table they report on themselves into.

``default_collectors(store)`` builds them all, sharing what they share (one
:class:`~collectors.proc_exit.UpidCache`), each configured from ``settings`` and ready for the
same lifecycle: ``open() → load() → attach()``, then ``poll(timeout_ms)`` from a loop, then
``close()``; ``stats()`` gives each one's counters at any time::

    collectors = default_collectors(store, settings={"http_events": {"include_ports": [8080]}})
    for c in collectors:
        c.open(); c.load(); c.attach()

Self-observation: collectors append their counters, every ~10 s, as rows of
``pxl_collector_stats`` (time_, collector, counter, value), Pixie's ``stirling_error`` in spirit,
so a PxL script can ask how much a collector lost.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import polars as pl

from engine.types import DataType

__all__ = ["COLLECTORS", "COLLECTOR_STATS", "COLLECTOR_STATS_SCHEMA", "StatsReporter",
           "default_collectors"]

#: The collectors default_collectors builds, by name, in order.
COLLECTORS = ("process_stats", "http_events", "proc_exit")

#: The self-observation table and its columns.
COLLECTOR_STATS = "pxl_collector_stats"
COLLECTOR_STATS_SCHEMA: dict[str, DataType] = {
    "time_": DataType.TIME64NS, "collector": DataType.STRING, "counter": DataType.STRING,
    "value": DataType.INT64,
}


def default_collectors(store: Any, *, host: int | None = None,
                       settings: Mapping[str, Mapping[str, Any]] | None = None) -> list[Any]:
    """One of each collector of :data:`COLLECTORS`, filling ``store``.

    ``host`` is the host id in upids (default: from /etc/machine-id); ``settings`` maps a
    collector's name to the keyword arguments of its ``configure`` (unknown names are an error).
    Nothing is opened or loaded yet: that is the caller's ``open() → load() → attach()``.
    """
    from collectors.http_events import HttpEvents
    from collectors.proc_exit import ProcExit, UpidCache
    from collectors.process_stats import ProcessStats
    from collectors.procfs import host_id

    settings = dict(settings or {})
    unknown = sorted(set(settings) - set(COLLECTORS))
    if unknown:
        raise ValueError(f"no collector named {unknown[0]!r}; known: {', '.join(COLLECTORS)}")
    host = host if host is not None else host_id()
    upids = UpidCache(host)
    collectors = [ProcessStats(store, host=host), HttpEvents(store, host=host, upids=upids),
                  ProcExit(store, host=host, upids=upids)]
    for c in collectors:
        if settings.get(c.name):
            c.configure(**settings[c.name])
    assert tuple(c.name for c in collectors) == COLLECTORS
    return collectors


class StatsReporter:
    """Appends a collector's counters to ``pxl_collector_stats`` at most every ``interval_s``
    (creating the table in the store the first time)."""

    def __init__(self, store: Any, collector: str, interval_s: float = 10.0) -> None:
        self.store = store
        self.collector = collector
        self.interval_ns = int(interval_s * 1e9)
        self._next = time.monotonic_ns() + self.interval_ns
        store.create_table(COLLECTOR_STATS, COLLECTOR_STATS_SCHEMA)

    def maybe_report(self, counters: Callable[[], Mapping[str, int]]) -> int:
        """Report if the interval has passed (``counters`` is only called then)."""
        now = time.monotonic_ns()
        if now < self._next:
            return 0
        self._next = now + self.interval_ns
        return self.report(counters())

    def report(self, counters: Mapping[str, int]) -> int:
        items = [(k, int(v)) for k, v in counters.items() if isinstance(v, int | bool)]
        if not items:
            return 0
        n = len(items)
        frame = pl.DataFrame({
            "time_": pl.Series([time.time_ns()] * n, dtype=pl.Int64).cast(pl.Datetime("ns")),
            "collector": pl.Series([self.collector] * n, dtype=pl.String),
            "counter": pl.Series([k for k, _ in items], dtype=pl.String),
            "value": pl.Series([v for _, v in items], dtype=pl.Int64)})
        return self.store.append(COLLECTOR_STATS, frame)

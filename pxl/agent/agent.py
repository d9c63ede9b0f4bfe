"""The agent: the table store, the collectors that fill it, and the query endpoint.

Each collector runs its own poll loop on a thread (open → configure → load → attach → poll →
close); queries run against the store while appends go on.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from collectors.runtime import settle
from engine.store import TableStore

__all__ = ["Agent"]

log = logging.getLogger(__name__)


class _Loop(threading.Thread):
    def __init__(self, collector: Any, errors: list[str]) -> None:
        super().__init__(name=f"collector-{collector.name}", daemon=True)
        self.collector = collector
        self.errors = errors
        self.running = threading.Event()
        self.running.set()

    def run(self) -> None:
        while self.running.is_set():
            try:
                self.collector.poll(timeout_ms=100)
            except Exception as exc:  # a collector's failure must not take the agent down
                self.errors.append(f"{self.collector.name}: {type(exc).__name__}: {exc}")
                log.warning("collector %s failed: %s", self.collector.name, exc)
                time.sleep(1.0)


class Agent:
    """A store, its collectors, and ``run`` for queries."""

    def __init__(self, store: TableStore, collectors: list[Any] | None = None, *,
                 node: str = "local") -> None:
        self.store = store
        self.collectors = list(collectors or [])
        self.node = node
        self.started = time.time()
        self.errors: list[str] = []
        self._loops: list[_Loop] = []

    def start(self) -> Agent:
        for c in self.collectors:
            c.open()
            c.load()
            c.attach()
        settle()  # gc.freeze, and Arrow's allocator: see collectors/runtime.py
        for c in self.collectors:
            loop = _Loop(c, self.errors)
            loop.start()
            self._loops.append(loop)
        return self

    def stop(self) -> None:
        """Stop the collectors and close the store."""
        self.stop_collectors()
        self.store.close()

    def stop_collectors(self) -> None:
        for loop in self._loops:
            loop.running.clear()
        for loop in self._loops:
            loop.join(timeout=5)
        for c in self.collectors:
            try:
                c.close()
            except Exception as exc:  # closing must go on for the others
                self.errors.append(f"{c.name}: close: {exc}")
        self._loops.clear()

    def run(self, script: str, *, args: dict[str, Any] | None = None, now: int | None = None,
            filename: str = "<script>") -> Any:
        from pxl.api import run

        return run(script, catalog=self.store.view(), args=args, now=now, filename=filename)

    def fragment(self, payload: bytes) -> list[Any]:
        """Run plan fragments a broker sent (wire bytes) over one view of the store; every
        output whole (the broker applies the script's row cap after merging)."""
        from engine.distributed.wire import decode
        from engine.executor import execute

        return execute(decode(payload), self.store.view())

    def metadata(self) -> Any:
        """Process metadata (upid → pod, service, …), for lookups the broker runs."""
        return self.store.view().metadata()

    def status(self) -> dict[str, Any]:
        from engine.distributed.wire import WIRE_VERSION, encode_schema
        from pxl.agent.server import PROTOCOL_VERSION

        view = self.store.view()
        return {
            "node": self.node,
            "protocol": PROTOCOL_VERSION,
            "wire_version": WIRE_VERSION,
            "uptime_s": round(time.time() - self.started, 1),
            "tables": self.store.stats(),
            "schemas": {t: encode_schema(s) for t in view.table_names()
                        if (s := view.schema(t)) is not None},
            "collectors": {c.name: c.stats() for c in self.collectors},
            "errors": self.errors[-20:],
        }

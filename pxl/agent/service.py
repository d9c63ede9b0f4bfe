"""Starting an agent: its store, the data it serves, its collectors and its Flight endpoint."""

from __future__ import annotations

import signal
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

from engine.catalog import MemoryCatalog
from engine.errors import PxlError
from engine.store import TableStore
from pxl.agent.agent import Agent
from pxl.agent.doctor import collectors_ready, format_checks, run_checks
from pxl.agent.server import AgentServer

__all__ = ["AgentError", "build_agent", "serve", "capture"]


class AgentError(PxlError):
    """The agent cannot start (no privileges, no BTF, a port in use …)."""

    kind = "agent error"


def _load_tables(store: TableStore, catalog: MemoryCatalog) -> None:
    for name in catalog.table_names():
        frame = catalog.frame(name)
        if "time_" not in frame.columns:
            continue  # the store keeps time-indexed tables only
        if name not in store.table_names():
            store.create_table(name, catalog.schema(name))
        store.append(name, frame)
    meta = catalog.metadata()
    if meta is not None:
        store.upsert_metadata(meta)


def _collectors(store: TableStore) -> list:
    checks = run_checks()
    if not collectors_ready(checks):
        raise AgentError("this host cannot run the collectors:\n" + format_checks(checks),
                         hint="fix the ✕ lines, or serve files only with --no-collect --data DIR")
    try:
        from collectors.registry import default_collectors
    except ImportError:  # only the /proc collector is available
        from collectors.process_stats import ProcessStats

        return [ProcessStats(store)]
    return default_collectors(store)


def build_agent(*, node: str | None = None, demo: bool = False, data_dirs: tuple[str, ...] = (),
                collect: bool = True, budget_bytes: int | None = None) -> Agent:
    store = TableStore(budget_bytes=budget_bytes)
    try:
        if demo or data_dirs:
            catalog = MemoryCatalog()
            if demo:
                from pxl.demo import demo_metadata, demo_tables

                now = time.time_ns()
                for name, frame in demo_tables(now).items():
                    catalog.add(name, frame)
                catalog.set_metadata(demo_metadata(now))
            for d in data_dirs:
                catalog.add_dir(d)
            _load_tables(store, catalog)
        collectors = _collectors(store) if collect else []
    except BaseException:
        store.close()
        raise
    return Agent(store, collectors, node=node or socket.gethostname())


def serve(listen: str, *, node: str | None = None, demo: bool = False,
          data_dirs: tuple[str, ...] = (), collect: bool = True, budget_bytes: int | None = None,
          token: str | None = None, tls: tuple[bytes, bytes] | None = None,
          echo: Callable[[str], None] = print, stop: threading.Event | None = None) -> None:
    """Serve queries until SIGINT/SIGTERM (or ``stop`` is set)."""
    agent = build_agent(node=node, demo=demo, data_dirs=data_dirs, collect=collect,
                        budget_bytes=budget_bytes)
    scheme = "grpc+tls" if tls else "grpc+tcp"
    try:
        server = AgentServer(f"{scheme}://{listen}", agent.run, agent.status, token=token, tls=tls,
                             snapshot=agent.store.snapshot)
    except Exception as exc:  # pyarrow raises plain errors for a bad or busy address
        agent.stop()
        raise AgentError(f"cannot listen on {listen}: {str(exc).splitlines()[0]}",
                         hint="is another agent running there? choose another --listen port") \
            from None
    done = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: done.set())
    try:
        agent.start()
        names = ", ".join(c.name for c in agent.collectors) or "none"
        echo(f"pxl agent {agent.node} listening on {listen} (collectors: {names}; "
             f"tables: {len(agent.store.table_names())})")
        while not done.wait(0.5):
            pass
    finally:
        server.shutdown()
        agent.stop()
        echo("pxl agent stopped")


def capture(seconds: float, out_dir: str | Path, *,
            echo: Callable[[str], None] = print) -> list[Path]:
    """Run the collectors for a while, then write every table to Parquet."""
    agent = build_agent(collect=True)
    try:
        agent.start()
        echo(f"capturing for {seconds:g} s …")
        time.sleep(seconds)
    finally:
        agent.stop_collectors()
    try:
        return agent.store.snapshot(out_dir)
    finally:
        agent.store.close()

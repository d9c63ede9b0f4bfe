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

__all__ = ["AgentError", "build_agent", "serve", "capture", "stop_on_signals"]


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


class _Heartbeat(threading.Thread):
    """Registers the agent with a broker every heartbeat (so a restarted broker, or one that
    never heard of this agent, learns of it within one period)."""

    def __init__(self, agent: Agent, broker: str, advertise: str, *, token: str | None,
                 tls_root: bytes | None, echo: Callable[[str], None]) -> None:
        super().__init__(name="broker-heartbeat", daemon=True)
        self.agent, self.broker, self.advertise, self.echo = agent, broker, advertise, echo
        self.token, self.tls_root = token, tls_root
        self.done = threading.Event()

    def run(self) -> None:
        from pxl.agent.server import PROTOCOL_VERSION
        from pxl.broker.registry import HEARTBEAT_S
        from pxl.remote import Remote

        last_error: str | None = None
        with Remote(self.broker, token=self.token, tls_root=self.tls_root) as remote:
            while True:
                try:
                    remote.action("register", {"version": PROTOCOL_VERSION,
                                               "address": self.advertise,
                                               "status": self.agent.status()},
                                  timeout_s=HEARTBEAT_S)
                except PxlError as exc:
                    if exc.message != last_error:  # say it once, not every period
                        self.echo(f"cannot register with broker {self.broker}: {exc.message}")
                    last_error = exc.message
                else:
                    if last_error is not None:
                        self.echo(f"registered with broker {self.broker} as {self.advertise}")
                    last_error = None
                if self.done.wait(HEARTBEAT_S):
                    return


def stop_on_signals(stop: threading.Event | None = None) -> threading.Event:
    """An event set by SIGINT/SIGTERM (when called on the main thread), or ``stop``."""
    done = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: done.set())
    return done


def advertised(listen: str, advertise: str | None) -> str:
    """The address a broker should use for this agent."""
    if advertise:
        return advertise
    host, _, port = listen.rpartition(":")
    if host in ("0.0.0.0", "::", "[::]", ""):
        host = socket.gethostbyname(socket.gethostname())
    return f"{host}:{port}"


def serve(listen: str, *, node: str | None = None, demo: bool = False,
          data_dirs: tuple[str, ...] = (), collect: bool = True, budget_bytes: int | None = None,
          token: str | None = None, tls: tuple[bytes, bytes] | None = None,
          broker: str | None = None, advertise: str | None = None,
          tls_root: bytes | None = None,
          echo: Callable[[str], None] = print, stop: threading.Event | None = None) -> None:
    """Serve queries until SIGINT/SIGTERM (or ``stop`` is set); with ``broker``, register with
    it every heartbeat as ``advertise`` (default: the listen address)."""
    agent = build_agent(node=node, demo=demo, data_dirs=data_dirs, collect=collect,
                        budget_bytes=budget_bytes)
    scheme = "grpc+tls" if tls else "grpc+tcp"
    try:
        server = AgentServer(f"{scheme}://{listen}", agent.run, agent.status, token=token, tls=tls,
                             snapshot=agent.store.snapshot, fragment=agent.fragment,
                             metadata=agent.metadata, view=agent.store.view)
    except Exception as exc:  # pyarrow raises plain errors for a bad or busy address
        agent.stop()
        raise AgentError(f"cannot listen on {listen}: {str(exc).splitlines()[0]}",
                         hint="is another agent running there? choose another --listen port") \
            from None
    done = stop_on_signals(stop)
    heartbeat: _Heartbeat | None = None
    try:
        agent.start()
        names = ", ".join(c.name for c in agent.collectors) or "none"
        echo(f"pxl agent {agent.node} listening on {listen} (collectors: {names}; "
             f"tables: {len(agent.store.table_names())})")
        if broker:
            heartbeat = _Heartbeat(agent, broker, advertised(listen, advertise), token=token,
                                   tls_root=tls_root, echo=echo)
            heartbeat.start()
        while not done.wait(0.5):
            pass
    finally:
        if heartbeat is not None:
            heartbeat.done.set()
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

"""The broker's Flight endpoint and its process: ``pxl broker --listen HOST:PORT``.

Clients talk to a broker exactly as to an agent (``run``, ``status``; ``pxl run --connect``,
``pxl.connect``); agents started with ``--broker`` call ``register`` every heartbeat.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.errors import PxlError
from pxl.agent.server import Endpoint, read_request
from pxl.agent.service import AgentError, stop_on_signals
from pxl.broker.broker import DEFAULT_DEADLINE_S, Broker
from pxl.broker.registry import HEARTBEAT_S, Registry
from pxl.remote import Remote

__all__ = ["BrokerServer", "serve_broker", "make_broker"]


class BrokerServer(Endpoint):
    """Scripts in, answers merged from every agent out."""

    def __init__(self, location: str, broker: Broker, *, token: str | None = None,
                 tls: tuple[bytes, bytes] | None = None) -> None:
        super().__init__(location, token=token, tls=tls)
        self.broker = broker

    def list_actions(self, context: Any) -> list[tuple[str, str]]:
        return [("run", "Run a PxL script over every agent; returns the tickets of its outputs "
                        "and the agents that did not answer"),
                ("plan", "The same for a plan compiled by the client (wire bytes)"),
                ("status", "The agents: state, last heartbeat, tables"),
                ("register", "An agent announces itself (and its tables) — its heartbeat")]

    def _act(self, kind: str, body: bytes) -> Any:
        if kind == "status":
            return self.broker.status()
        request = read_request(body)
        if kind == "register":
            self.check_version(request)
            self.broker.register(request)
            return {"ok": True}
        if kind == "run":
            self.check_version(request)
            deadline = _deadline(request)
            results = self.broker.run(request["script"], args=request.get("args") or {},
                                      now=request.get("now"),
                                      filename=request.get("filename", "<script>"),
                                      deadline_s=deadline)
            return self.reply(results)
        if kind == "plan":
            self.check_version(request)
            plan, max_rows = self.plan_request(request)
            return self.reply(self.broker.run_plan(plan, max_rows=max_rows,
                                                   deadline_s=_deadline(request)))
        raise PxlError(f"unknown action {kind!r}", hint="is the caller a newer pxl?")


def _deadline(request: dict[str, Any]) -> float | None:
    deadline = request.get("deadline_s")
    if deadline is not None and not (isinstance(deadline, int | float) and deadline > 0):
        raise PxlError(f"the deadline must be a positive number of seconds, not {deadline!r}")
    return deadline


def make_broker(agents: tuple[str, ...] = (), *, state_file: str | Path | None = None,
                token: str | None = None, tls_root: bytes | None = None,
                deadline_s: float = DEFAULT_DEADLINE_S, heartbeat_s: float = HEARTBEAT_S,
                forget_after_s: float = 300.0) -> Broker:
    registry = Registry(agents, state_file=state_file, heartbeat_s=heartbeat_s,
                        forget_after_s=forget_after_s)
    return Broker(registry, lambda address: Remote(address, token=token, tls_root=tls_root),
                  deadline_s=deadline_s)


def serve_broker(listen: str, *, agents: tuple[str, ...] = (), state_file: str | None = None,
                 token: str | None = None, tls: tuple[bytes, bytes] | None = None,
                 tls_root: bytes | None = None, deadline_s: float = DEFAULT_DEADLINE_S,
                 heartbeat_s: float = HEARTBEAT_S, echo: Callable[[str], None] = print,
                 stop: threading.Event | None = None) -> None:
    """Serve until SIGINT/SIGTERM (or ``stop`` is set)."""
    broker = make_broker(agents, state_file=state_file, token=token, tls_root=tls_root,
                         deadline_s=deadline_s, heartbeat_s=heartbeat_s)
    scheme = "grpc+tls" if tls else "grpc+tcp"
    try:
        server = BrokerServer(f"{scheme}://{listen}", broker, token=token, tls=tls)
    except Exception as exc:  # pyarrow raises plain errors for a bad or busy address
        raise AgentError(f"cannot listen on {listen}: {str(exc).splitlines()[0]}",
                         hint="is another broker running there? choose another --listen port") \
            from None
    done = stop_on_signals(stop)
    try:
        broker.start()
        known = len(broker.registry.agents())
        echo(f"pxl broker listening on {listen} ({known} agents known; deadline {deadline_s:g} s)")
        while not done.wait(0.5):
            pass
    finally:
        server.shutdown()
        broker.stop()
        echo("pxl broker stopped")

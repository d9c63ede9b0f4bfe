"""The agent's query endpoint over Arrow Flight.

A client asks with an action and reads the answers as Arrow streams::

    client                                   agent
      do_action("run", msgpack{script,…})  →   compile + execute over the store
                                           ←   msgpack[{name, ticket, options, truncated}, …]
      do_get(ticket)                       →
                                           ←   Arrow record batches (semantic types in metadata)

Errors a user caused come back as a FlightServerError whose message is ``pxl-error:`` + JSON
(kind, message, span, hint, source) so the client re-raises them as the same PxlError.
Every call needs the bearer token when the agent has one.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import msgpack
import pyarrow as pa
import pyarrow.flight as flight

from engine.arrowio import to_arrow
from engine.errors import PxlError

__all__ = ["AgentServer", "PROTOCOL_VERSION", "ERROR_PREFIX", "encode_error"]

PROTOCOL_VERSION = 1
ERROR_PREFIX = "pxl-error:"
RESULT_TTL_S = 300
BATCH_ROWS = 65_536


def encode_error(exc: PxlError) -> str:
    span = None
    if exc.span is not None:
        s = exc.span
        span = [s.file, s.line, s.col, s.end_line, s.end_col]
    return ERROR_PREFIX + json.dumps({"class": type(exc).__name__, "message": exc.message,
                                      "span": span, "hint": exc.hint, "source": exc.source})


class _TokenMiddlewareFactory(flight.ServerMiddlewareFactory):
    def __init__(self, token: str) -> None:
        self.expected = f"Bearer {token}"

    def start_call(self, info: Any, headers: dict[str, list[str]]) -> None:
        values = headers.get("authorization") or headers.get("Authorization") or []
        if self.expected not in values:
            raise flight.FlightUnauthenticatedError("a valid bearer token is required")
        return None


class AgentServer(flight.FlightServerBase):
    """Runs scripts sent by clients against ``catalog`` and serves their outputs."""

    def __init__(self, location: str, run: Callable[..., Any], status: Callable[[], dict],
                 *, token: str | None = None, tls: tuple[bytes, bytes] | None = None,
                 snapshot: Callable[[str], list[Any]] | None = None) -> None:
        middleware = {"auth": _TokenMiddlewareFactory(token)} if token else {}
        kwargs: dict[str, Any] = {"middleware": middleware}
        if tls is not None:
            kwargs["tls_certificates"] = [tls]
        super().__init__(location, **kwargs)
        self._run = run
        self._status = status
        self._snapshot = snapshot
        self._results: dict[bytes, tuple[float, pa.Table]] = {}
        self._lock = threading.Lock()

    # --- actions
    def list_actions(self, context: Any) -> list[tuple[str, str]]:
        return [("run", "Run a PxL script; returns the tickets of its outputs"),
                ("status", "The agent's tables, collectors and counters"),
                ("snapshot", "Write every table to Parquet in a directory on the agent's host")]

    def do_action(self, context: Any, action: flight.Action) -> Any:
        body = action.body.to_pybytes() if action.body is not None else b""
        if action.type == "status":
            return [msgpack.packb(self._status(), default=str)]
        if action.type == "run":
            return [msgpack.packb(self._do_run(msgpack.unpackb(body)))]
        if action.type == "snapshot" and self._snapshot is not None:
            out_dir = msgpack.unpackb(body).get("out_dir")
            try:
                paths = self._snapshot(out_dir)
            except (PxlError, OSError) as exc:
                raise flight.FlightServerError(encode_error(
                    exc if isinstance(exc, PxlError) else PxlError(str(exc)))) from None
            return [msgpack.packb([str(p) for p in paths])]
        raise flight.FlightServerError(f"unknown action {action.type!r}")

    def _do_run(self, request: dict[str, Any]) -> list[dict[str, Any]]:
        version = request.get("version")
        if version != PROTOCOL_VERSION:
            raise flight.FlightServerError(
                encode_error(PxlError(f"this agent speaks protocol {PROTOCOL_VERSION}, the client "
                                      f"{version}", hint="use the same pxl version on both")))
        try:
            results = self._run(request["script"], args=request.get("args") or {},
                                now=request.get("now"), filename=request.get("filename", "<script>"))
        except PxlError as exc:
            raise flight.FlightServerError(encode_error(exc)) from None
        self._expire()
        out = []
        for r in results.outputs:
            ticket = uuid.uuid4().hex.encode()
            with self._lock:
                self._results[ticket] = (time.monotonic(), to_arrow(r.frame, r.schema))
            out.append({"name": r.name, "ticket": ticket, "options": [list(o) for o in r.options],
                        "truncated": r.truncated})
        return out

    def _expire(self) -> None:
        cutoff = time.monotonic() - RESULT_TTL_S
        with self._lock:
            for key in [k for k, (t, _) in self._results.items() if t < cutoff]:
                del self._results[key]

    # --- data
    def do_get(self, context: Any, ticket: flight.Ticket) -> flight.RecordBatchStream:
        with self._lock:
            entry = self._results.pop(ticket.ticket, None)
        if entry is None:
            raise flight.FlightServerError("unknown or expired ticket")
        table = entry[1]
        return flight.RecordBatchStream(pa.RecordBatchReader.from_batches(
            table.schema, table.to_batches(max_chunksize=BATCH_ROWS)))

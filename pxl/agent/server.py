"""Arrow Flight endpoints: the agent's, and the shared machinery the broker's builds on.

A client asks with an action and reads the answers as Arrow streams::

    client                                   agent (or broker)
      do_action("run", msgpack{script,…})  →   compile + execute
                                           ←   msgpack{outputs: [{name, ticket, options,
                                                                  truncated}, …], missing: […]}
      do_get(ticket)                       →
                                           ←   Arrow record batches, 64k rows each

A broker asks an agent for plan fragments instead of scripts::

      do_action("fragment", msgpack{version, plan: <wire bytes>})
                                           ←   msgpack{outputs: [{name: "f0", ticket, rows}, …]}
      do_action("metadata")                ←   msgpack{ticket} (process metadata, for lookups
                                               the broker runs itself), then do_get(ticket)

Errors a user caused come back as a FlightServerError whose message is ``pxl-error:`` + JSON
(kind, message, span, hint, source) so the client re-raises them as the same PxlError.
Every call needs the bearer token when the endpoint has one.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import msgpack
import polars as pl
import pyarrow as pa
import pyarrow.flight as flight

from engine.arrowio import to_arrow
from engine.errors import PxlError

__all__ = ["Endpoint", "AgentServer", "PROTOCOL_VERSION", "ERROR_PREFIX", "encode_error",
           "failpoint"]

#: the request/reply shapes of the actions above; both ends refuse any other
PROTOCOL_VERSION = 2
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


def failpoint(name: str) -> str | None:
    """The value of fault-injection point ``name`` in ``$PXL_FAILPOINTS`` (``a=1,b``), if set.

    For the fault tests only (a slow agent, a stream that breaks after its first batch): the
    faults a real network makes cannot be timed from a test."""
    spec = os.environ.get("PXL_FAILPOINTS")
    if not spec:
        return None
    for item in spec.split(","):
        key, _, value = item.partition("=")
        if key.strip() == name:
            return value.strip() or "1"
    return None


class _TokenMiddlewareFactory(flight.ServerMiddlewareFactory):
    def __init__(self, token: str) -> None:
        self.expected = f"Bearer {token}"

    def start_call(self, info: Any, headers: dict[str, list[str]]) -> None:
        values = headers.get("authorization") or headers.get("Authorization") or []
        if self.expected not in values:
            raise flight.FlightUnauthenticatedError("a valid bearer token is required")
        return None


def fail(exc: PxlError) -> flight.FlightServerError:
    """``exc`` as the Flight error a pxl client turns back into ``exc``."""
    return flight.FlightServerError(encode_error(exc))


class Endpoint(flight.FlightServerBase):
    """Token check, result tickets and streamed answers: what agent and broker share."""

    def __init__(self, location: str, *, token: str | None = None,
                 tls: tuple[bytes, bytes] | None = None) -> None:
        middleware = {"auth": _TokenMiddlewareFactory(token)} if token else {}
        kwargs: dict[str, Any] = {"middleware": middleware}
        if tls is not None:
            kwargs["tls_certificates"] = [tls]
        super().__init__(location, **kwargs)
        self._results: dict[bytes, tuple[float, pa.Table]] = {}
        self._lock = threading.Lock()

    def keep(self, table: pa.Table) -> bytes:
        """Hold ``table`` for one do_get; returns its ticket."""
        self._expire()
        ticket = uuid.uuid4().hex.encode()
        with self._lock:
            self._results[ticket] = (time.monotonic(), table)
        return ticket

    def _expire(self) -> None:
        cutoff = time.monotonic() - RESULT_TTL_S
        with self._lock:
            for key in [k for k, (t, _) in self._results.items() if t < cutoff]:
                del self._results[key]

    @staticmethod
    def check_version(request: dict[str, Any]) -> None:
        version = request.get("version")
        if version != PROTOCOL_VERSION:
            raise fail(PxlError(f"this pxl speaks protocol {PROTOCOL_VERSION}, the caller "
                                f"{version}", hint="run the same pxl release everywhere"))

    def reply(self, results: Any) -> dict[str, Any]:
        """A run's answer: a ticket per output, and the agents missing from it (a broker's)."""
        return {"outputs": [{"name": r.name, "ticket": self.keep(to_arrow(r.frame, r.schema)),
                             "options": [list(o) for o in r.options], "truncated": r.truncated}
                            for r in results.outputs],
                "missing": [{"agent": m.agent, "address": m.address, "reason": m.reason}
                            for m in getattr(results, "missing", ())]}

    @staticmethod
    def plan_request(request: dict[str, Any]) -> tuple[Any, int | None]:
        """The plan a ``plan`` request carries (checked by the wire decoder) and its row cap."""
        from engine.distributed.wire import decode

        payload, max_rows = request.get("plan"), request.get("max_rows")
        if not isinstance(payload, bytes):
            raise PxlError("a plan request needs the plan as wire bytes")
        if max_rows is not None and not (type(max_rows) is int and max_rows >= 0):
            raise PxlError(f"max_rows must be a count, not {max_rows!r}")
        return decode(payload), max_rows

    def do_action(self, context: Any, action: flight.Action) -> Any:
        body = action.body.to_pybytes() if action.body is not None else b""
        try:
            return [msgpack.packb(self._act(action.type, body), default=str)]
        except PxlError as exc:
            raise fail(exc) from None
        except (ValueError, KeyError, TypeError, msgpack.UnpackException) as exc:  # a bad body
            raise fail(PxlError(f"bad {action.type!r} request: {exc}")) from None

    def _act(self, kind: str, body: bytes) -> Any:
        """The answer to action ``kind`` (msgpack-ready); PxlError for a caller's mistake."""
        raise NotImplementedError

    def do_get(self, context: Any, ticket: flight.Ticket) -> flight.FlightDataStream:
        with self._lock:
            entry = self._results.pop(ticket.ticket, None)
        if entry is None:
            raise flight.FlightServerError("unknown or expired ticket")
        table = entry[1]
        return flight.GeneratorStream(table.schema, _batches(table))


def _batches(table: pa.Table) -> Iterator[pa.RecordBatch]:
    broken = failpoint("stream_abort")
    for i, batch in enumerate(table.to_batches(max_chunksize=BATCH_ROWS)):
        if broken and i >= 1:
            raise flight.FlightServerError("failpoint stream_abort: the stream broke")
        yield batch


class AgentServer(Endpoint):
    """Runs scripts and plan fragments against the agent's store and serves their outputs."""

    def __init__(self, location: str, run: Callable[..., Any], status: Callable[[], dict],
                 *, token: str | None = None, tls: tuple[bytes, bytes] | None = None,
                 snapshot: Callable[[str], list[Any]] | None = None,
                 fragment: Callable[[bytes], list[Any]] | None = None,
                 metadata: Callable[[], pl.DataFrame | None] | None = None,
                 view: Callable[[], Any] | None = None) -> None:
        super().__init__(location, token=token, tls=tls)
        self._view = view or _no_tables
        self._run = run
        self._status = status
        self._snapshot = snapshot
        self._fragment = fragment
        self._metadata = metadata

    # --- actions
    def list_actions(self, context: Any) -> list[tuple[str, str]]:
        return [("run", "Run a PxL script; returns the tickets of its outputs"),
                ("plan", "Run a compiled plan (wire bytes); returns the tickets of its outputs"),
                ("fragment", "Run a plan fragment sent by a broker; returns its tickets"),
                ("metadata", "A ticket for the process metadata (upid → pod, service, …)"),
                ("status", "The agent's tables, collectors and counters"),
                ("snapshot", "Write every table to Parquet in a directory on the agent's host")]

    def _act(self, kind: str, body: bytes) -> Any:
        if kind == "status":
            return self._status()
        if kind == "run":
            request = read_request(body)
            self.check_version(request)
            results = self._run(request["script"], args=request.get("args") or {},
                                now=request.get("now"),
                                filename=request.get("filename", "<script>"))
            return self.reply(results)
        if kind == "plan":
            request = read_request(body)
            self.check_version(request)
            plan, max_rows = self.plan_request(request)
            from engine.executor import execute
            from pxl.api import Results

            view = self._view()
            return self.reply(Results(execute(plan, view, max_rows=max_rows), plan))
        if kind == "fragment" and self._fragment is not None:
            request = read_request(body)
            self.check_version(request)
            delay = failpoint("slow_fragment")
            if delay:
                time.sleep(float(delay))
            plan = request.get("plan")
            if not isinstance(plan, bytes):
                raise PxlError("a fragment request needs the plan as wire bytes")
            outputs = self._fragment(plan)
            return {"outputs": [{"name": r.name, "rows": r.frame.height,
                                 "ticket": self.keep(to_arrow(r.frame, r.schema))}
                                for r in outputs]}
        if kind == "metadata" and self._metadata is not None:
            frame = self._metadata()
            return {"ticket": None if frame is None else
                    self.keep(frame.to_arrow(compat_level=pl.CompatLevel.oldest()))}
        if kind == "snapshot" and self._snapshot is not None:
            out_dir = read_request(body).get("out_dir")
            try:
                return [str(p) for p in self._snapshot(out_dir)]
            except OSError as exc:
                raise PxlError(str(exc)) from None
        raise PxlError(f"unknown action {kind!r}", hint="is the caller a newer pxl?")


def _no_tables() -> Any:
    raise PxlError("this endpoint holds no tables to run plans on")


def read_request(body: bytes) -> dict[str, Any]:
    request = msgpack.unpackb(body) if body else {}
    if not isinstance(request, dict):
        raise ValueError("the body is not a msgpack map")
    return request

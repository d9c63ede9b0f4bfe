"""Run scripts on a pxl agent (or broker) over Arrow Flight: ``pxl.connect(addr).run(source)``.

>>> # remote = pxl.connect("127.0.0.1:7070"); remote.run(source)["output"]
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import msgpack
import pyarrow as pa
import pyarrow.flight as flight

from engine import errors as E
from engine.arrowio import from_arrow
from engine.errors import PxlError
from engine.executor import Result
from engine.relations import Plan
from engine.types import Schema

__all__ = ["Remote", "RemoteCatalog", "connect", "DEFAULT_PORT"]

DEFAULT_PORT = 7070


def _location(address: str, tls: bool) -> str:
    if "://" in address:
        return address
    host, sep, port = address.rpartition(":")
    if not sep:
        host, port = address, str(DEFAULT_PORT)
    return f"{'grpc+tls' if tls else 'grpc+tcp'}://{host}:{port}"


def _decode_error(exc: flight.FlightError, address: str) -> PxlError:
    from pxl.agent.server import ERROR_PREFIX

    text = str(exc)
    start = text.find(ERROR_PREFIX)
    if start >= 0:
        raw = text[start + len(ERROR_PREFIX):]
        try:
            data, _ = json.JSONDecoder().raw_decode(raw)
        except ValueError:
            data = None
        if isinstance(data, dict):
            cls = getattr(E, data.get("class", ""), None)
            if not (isinstance(cls, type) and issubclass(cls, PxlError)):
                cls = PxlError
            span = E.Span(*data["span"]) if data.get("span") else None
            return cls(data.get("message", ""), span, hint=data.get("hint"),
                       source=data.get("source"))
    if isinstance(exc, flight.FlightUnauthenticatedError):
        return E.ExecuteError(f"{address} refused the request: a valid token is needed",
                              hint="pass --token (or PXL_TOKEN) with the agent's token")
    if isinstance(exc, flight.FlightTimedOutError):
        return E.ExecuteError(f"{address} did not answer in time",
                              hint="is it overloaded, or cut off from this host?")
    if isinstance(exc, flight.FlightUnavailableError):
        return E.ExecuteError(f"cannot reach {address}",
                              hint="is the agent running? check the address and port")
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    return E.ExecuteError(f"{address}: {first}")


class Remote:
    """A connection to an agent or broker."""

    def __init__(self, address: str, *, token: str | None = None, tls_root: bytes | None = None,
                 timeout_s: float = 60.0) -> None:
        self.address = address
        kwargs: dict[str, Any] = {}
        if tls_root is not None:
            kwargs["tls_root_certs"] = tls_root
        self._client = flight.FlightClient(_location(address, tls_root is not None), **kwargs)
        self._headers = [(b"authorization", f"Bearer {token}".encode())] if token else []
        self.timeout_s = timeout_s

    def _options(self, timeout_s: float | None) -> flight.FlightCallOptions:
        return flight.FlightCallOptions(headers=self._headers,
                                        timeout=self.timeout_s if timeout_s is None else timeout_s)

    def action(self, name: str, body: dict[str, Any] | None = None, *,
               timeout_s: float | None = None) -> Any:
        """One Flight action; its msgpack answer. Errors come back as the PxlError they were."""
        payload = msgpack.packb(body or {})
        try:
            results = list(self._client.do_action(flight.Action(name, payload),
                                                  self._options(timeout_s)))
        except flight.FlightError as exc:
            raise _decode_error(exc, self.address) from None
        return msgpack.unpackb(results[0].body.to_pybytes()) if results else None

    def fetch(self, ticket: bytes, *, timeout_s: float | None = None) -> pa.Table:
        """The Arrow stream behind a ticket, read batch by batch."""
        try:
            return self._client.do_get(flight.Ticket(ticket), self._options(timeout_s)).read_all()
        except flight.FlightError as exc:
            raise _decode_error(exc, self.address) from None

    def status(self, *, timeout_s: float | None = None) -> dict[str, Any]:
        return self.action("status", timeout_s=timeout_s)

    def snapshot(self, out_dir: str) -> list[str]:
        """Have the agent write its tables to Parquet in ``out_dir`` on its own host."""
        return self.action("snapshot", {"out_dir": out_dir})

    def run(self, source: str, *, args: Mapping[str, Any] | None = None, now: int | None = None,
            filename: str = "<script>", deadline_s: float | None = None) -> Any:
        """Run a script there; returns :class:`pxl.Results` like :func:`pxl.run`. On a broker,
        ``deadline_s`` bounds the wait for agents, and ``results.missing`` lists those whose
        rows are not in the answer."""
        from pxl.agent.server import PROTOCOL_VERSION

        request: dict[str, Any] = {"version": PROTOCOL_VERSION, "script": source,
                                   "args": dict(args or {}), "now": now, "filename": filename}
        if deadline_s is not None:
            request["deadline_s"] = deadline_s
        return self._results(self.action("run", request, timeout_s=self._wait(deadline_s)),
                             None)

    def run_plan(self, plan: Plan, *, max_rows: int | None = None,
                 deadline_s: float | None = None) -> Any:
        """Run a compiled, optimized plan there (what the REPL does with ``--connect``)."""
        from engine.distributed.wire import encode
        from pxl.agent.server import PROTOCOL_VERSION

        request: dict[str, Any] = {"version": PROTOCOL_VERSION, "plan": encode(plan),
                                   "max_rows": max_rows}
        if deadline_s is not None:
            request["deadline_s"] = deadline_s
        return self._results(self.action("plan", request, timeout_s=self._wait(deadline_s)),
                             plan)

    def _wait(self, deadline_s: float | None) -> float | None:
        return None if deadline_s is None else max(self.timeout_s, deadline_s + 30)

    def _results(self, reply: dict[str, Any], plan: Plan | None) -> Any:
        from pxl.api import MissingAgent, Results

        outputs = []
        for item in reply["outputs"]:
            frame, schema = from_arrow(self.fetch(item["ticket"]))
            options = tuple(tuple(o) for o in item.get("options", ()))
            outputs.append(Result(item["name"], frame, schema, options,  # type: ignore[arg-type]
                                  truncated=bool(item.get("truncated"))))
        missing = [MissingAgent(m["agent"], m["address"], m["reason"])
                   for m in reply.get("missing", ())]
        return Results(outputs, plan, missing)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Remote:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class RemoteCatalog:
    """The tables of an agent or broker, for compiling locally (the REPL with ``--connect``):
    names, schemas and sizes from its status; plans run there with :meth:`run_plan`."""

    def __init__(self, remote: Remote) -> None:
        from engine.distributed.wire import decode_schema

        self.remote = remote
        status = remote.status()
        self._stats = [s for s in status.get("tables", ()) if isinstance(s, dict)]
        self._schemas = {t: decode_schema(d) for t, d in (status.get("schemas") or {}).items()}

    def table_names(self) -> list[str]:
        return sorted(self._schemas)

    def schema(self, table: str) -> Schema | None:
        return self._schemas.get(table)

    def stats(self) -> list[dict[str, Any]]:
        return self._stats

    def scan(self, table: str, columns: Any, start: int | None, end: int | None) -> Any:
        raise E.ExecuteError(f"{table} lives on {self.remote.address}; run plans there",
                             hint="use run_plan")

    def metadata(self) -> None:
        return None

    def run_plan(self, plan: Plan) -> Any:
        return self.remote.run_plan(plan)


def connect(address: str, *, token: str | None = None, tls_root: bytes | None = None,
            timeout_s: float = 60.0) -> Remote:
    """A connection to the agent or broker at ``host:port``."""
    return Remote(address, token=token, tls_root=tls_root, timeout_s=timeout_s)

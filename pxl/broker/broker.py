"""The broker: one script over every agent's tables.

::

    script ─► compile (against the agents' schemas) ─► optimize ─► split
                      │ every agent with the fragment's tables, in parallel, under one deadline:
                      ├─► do_action("fragment", wire bytes) ─► do_get(ticket) … Arrow batches
                      ▼
              broker plan over the answers (agent order) ─► Results (+ the agents missing)

An agent that is down, too slow for the deadline, or breaks off mid-stream contributes no rows
at all (never half of them) and is named in ``Results.missing`` with the reason. An agent that
holds none of a fragment's tables is not asked.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for
from dataclasses import dataclass
from typing import Any

import polars as pl
import pyarrow as pa

from engine.catalog import METADATA_COLUMNS
from engine.distributed.exchange import merge_metadata
from engine.distributed.simulate import run_broker
from engine.distributed.split import DistributedPlan, split
from engine.distributed.wire import WIRE_VERSION, decode, decode_schema, encode, encode_schema
from engine.errors import CompileError, ExecuteError, PxlError
from engine.relations import Plan
from engine.types import Schema
from pxl.agent.server import PROTOCOL_VERSION
from pxl.api import MissingAgent, Results
from pxl.api import compile as compile_script
from pxl.broker.registry import AgentEntry, Registry
from pxl.pragmas import DEFAULT_MAX_OUTPUT_ROWS, read_pragmas
from pxl.remote import Remote

__all__ = ["Broker", "AgentsCatalog", "DEFAULT_DEADLINE_S"]

log = logging.getLogger(__name__)

DEFAULT_DEADLINE_S = 10.0


class AgentsCatalog:
    """What the compiler needs of the agents' tables: their names, schemas and sizes (the
    broker scans nothing itself). ``agent_status`` feeds ``px.GetAgentStatus()``."""

    def __init__(self, agents: list[AgentEntry], heartbeat_s: float) -> None:
        self._agents = agents
        self._heartbeat_s = heartbeat_s
        self._schemas: dict[str, Schema] = {}
        for a in agents:
            for table, data in a.schemas.items():
                if table not in self._schemas:
                    try:
                        self._schemas[table] = decode_schema(data)
                    except PxlError:
                        log.warning("agent %s sent a bad schema for %s", a.name, table)

    def table_names(self) -> list[str]:
        return sorted(self._schemas)

    def schema(self, table: str) -> Schema | None:
        return self._schemas.get(table)

    def scan(self, table: str, columns: Iterable[str] | None, start: int | None,
             end: int | None) -> pl.LazyFrame:
        raise ExecuteError(f"the broker holds no rows of {table!r}; the agents do")

    def metadata(self) -> pl.DataFrame | None:
        return None

    def stats(self) -> list[dict[str, Any]]:
        """Per table, summed over the agents (for ``px.GetTables()``)."""
        total: dict[str, dict[str, Any]] = {}
        for a in self._agents:
            for s in a.stats:
                name = s.get("table_name")
                t = total.setdefault(name, {"table_name": name, "num_rows": 0, "size_bytes": 0,
                                            "evicted_rows": 0, "min_time": None,
                                            "max_time": None})
                for key in ("num_rows", "size_bytes", "evicted_rows"):
                    t[key] += int(s.get(key) or 0)
                for key, pick in (("min_time", min), ("max_time", max)):
                    if s.get(key) is not None:
                        t[key] = s[key] if t[key] is None else pick(t[key], s[key])
        return [total[k] for k in sorted(total)]

    def agent_status(self) -> list[dict[str, Any]]:
        now = time.time()
        return [{"agent_id": a.name, "address": a.address,
                 "agent_state": a.state(now, self._heartbeat_s),
                 "last_heartbeat_ns": (None if a.last_heartbeat is None
                                       else int((now - a.last_heartbeat) * 1e9)),
                 "tables": ",".join(a.tables or ()), "origin": a.origin, "message": a.error}
                for a in self._agents]


@dataclass
class _Answer:
    tables: dict[str, pa.Table]
    bytes: int


class Broker:
    """Answers scripts from the agents in ``registry``; keeps their status fresh."""

    def __init__(self, registry: Registry, connect: Callable[[str], Remote], *,
                 deadline_s: float = DEFAULT_DEADLINE_S) -> None:
        self.registry = registry
        self.deadline_s = deadline_s
        self._connect = connect
        self._remotes: dict[str, Remote] = {}
        self._remotes_lock = threading.Lock()
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None
        #: the last query's figures (bytes and rows received per fragment)
        self.last_query: dict[str, Any] = {}

    def remote(self, address: str) -> Remote:
        with self._remotes_lock:
            r = self._remotes.get(address)
            if r is None:
                r = self._remotes[address] = self._connect(address)
            return r

    # --- heartbeats
    def start(self) -> Broker:
        self._poller = threading.Thread(target=self._poll_loop, name="broker-heartbeats",
                                        daemon=True)
        self._poller.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._poller is not None:
            self._poller.join(timeout=5)
        with self._remotes_lock:
            for r in self._remotes.values():
                r.close()
            self._remotes.clear()

    def _poll_loop(self) -> None:
        with ThreadPoolExecutor(max_workers=8, thread_name_prefix="broker-poll") as pool:
            while not self._stop.is_set():
                started = time.monotonic()
                list(pool.map(self.poll, [a.address for a in self.registry.agents()]))
                self._stop.wait(max(0.0, self.registry.heartbeat_s - (time.monotonic() - started)))

    def poll(self, address: str, timeout_s: float | None = None) -> None:
        timeout_s = timeout_s or min(2.0, self.registry.heartbeat_s)
        try:
            status = self.remote(address).status(timeout_s=timeout_s)
        except PxlError as exc:
            self.registry.failed(address, exc.message)
        else:
            self.registry.heard(address, status)

    def register(self, request: dict[str, Any]) -> None:
        address = request.get("address")
        status = request.get("status")
        if not isinstance(address, str) or not address or not isinstance(status, dict):
            raise PxlError("a register request needs the agent's address and status")
        self.registry.heard(address, status, registered=True)

    def status(self) -> dict[str, Any]:
        catalog = AgentsCatalog(self.registry.agents(), self.registry.heartbeat_s)
        return {"node": "broker", "role": "broker", "wire_version": WIRE_VERSION,
                "deadline_s": self.deadline_s, "agents": catalog.agent_status(),
                "tables": catalog.stats(), "last_query": self.last_query,
                "schemas": {t: encode_schema(s) for t in catalog.table_names()
                            if (s := catalog.schema(t)) is not None}}

    # --- queries
    def run(self, source: str, *, args: dict[str, Any] | None = None, now: int | None = None,
            filename: str = "<script>", deadline_s: float | None = None) -> Results:
        deadline_s = self.deadline_s if deadline_s is None else deadline_s
        agents = self._refresh_unknown(self.registry.agents(), deadline_s)
        catalog = AgentsCatalog(agents, self.registry.heartbeat_s)
        try:
            plan = compile_script(source, catalog, now=now, filename=filename, args=args)
        except CompileError as exc:
            if not catalog.table_names():
                errors = "; ".join(f"{a.name}: {a.error}" for a in agents if a.error)
                exc.hint = (f"the broker has heard from no agent yet ({errors})" if errors else
                            "the broker has heard from no agent yet: start agents with "
                            "--broker HOST:PORT, or name them with pxl broker --agents")
            raise
        max_rows = read_pragmas(source, filename).get("max_output_rows_per_table",
                                                      DEFAULT_MAX_OUTPUT_ROWS)
        try:
            return self.run_plan(plan, max_rows=max_rows, deadline_s=deadline_s, agents=agents)
        except PxlError as exc:
            exc.with_source(source)
            raise

    def run_plan(self, plan: Plan, *, max_rows: int | None = DEFAULT_MAX_OUTPUT_ROWS,
                 deadline_s: float | None = None,
                 agents: list[AgentEntry] | None = None) -> Results:
        """An optimized plan (compiled here, or by a client such as the REPL) over every
        agent."""
        deadline_s = self.deadline_s if deadline_s is None else deadline_s
        if agents is None:
            agents = self._refresh_unknown(self.registry.agents(), deadline_s)
        dplan = split(plan)
        answers, missing, received = self._fan_out(dplan, agents, deadline_s)
        answered = [a for a in agents if a.address in received]
        outputs = run_broker(dplan, answers, max_rows=max_rows,
                             metadata=lambda: self._metadata(answered, missing, deadline_s))
        self.last_query = {"bytes_received": sum(received.values()),
                           "rows_received": {f: sum(t.num_rows for t in ts)
                                             for f, ts in answers.items()},
                           "agents_asked": len(received) + len(missing)}
        return Results(outputs, plan, missing)

    def _refresh_unknown(self, agents: list[AgentEntry], deadline_s: float) -> list[AgentEntry]:
        """Ask the agents never heard from for their tables (a broker just started)."""
        unknown = [a.address for a in agents if a.tables is None]
        if not unknown:
            return agents
        timeout = min(deadline_s, 2 * self.registry.heartbeat_s)
        with ThreadPoolExecutor(max_workers=len(unknown)) as pool:
            list(pool.map(lambda address: self.poll(address, timeout), unknown))
        return self.registry.agents()

    def _fan_out(self, dplan: DistributedPlan, agents: list[AgentEntry], deadline_s: float
                 ) -> tuple[dict[str, list[pa.Table]], list[MissingAgent], dict[str, int]]:
        answers: dict[str, list[pa.Table]] = {fid: [] for fid in dplan.agent}
        missing: list[MissingAgent] = []
        received: dict[str, int] = {}
        if not dplan.agent:
            return answers, missing, received
        end = time.monotonic() + deadline_s
        pool = ThreadPoolExecutor(max_workers=max(1, len(agents)),
                                  thread_name_prefix="broker-query")
        try:
            futures: list[tuple[AgentEntry, Future[_Answer | None]]] = [
                (a, pool.submit(self._ask, a, dplan, end)) for a in agents]
            wait_for([f for _, f in futures], timeout=max(0.0, end - time.monotonic()) + 0.5)
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
        for agent, future in futures:
            if not future.done():
                missing.append(MissingAgent(agent.name, agent.address,
                                            f"no answer within the {deadline_s:g} s deadline"))
                continue
            try:
                answer = future.result()
            except PxlError as exc:
                missing.append(MissingAgent(agent.name, agent.address, _reason(exc)))
                continue
            if answer is None:
                continue  # holds none of the tables: not asked
            received[agent.address] = answer.bytes
            for fid, table in answer.tables.items():
                answers[fid].append(table)
        return answers, missing, received

    def _ask(self, agent: AgentEntry, dplan: DistributedPlan, end: float) -> _Answer | None:
        remote = self.remote(agent.address)
        tables = agent.tables
        if tables is None:  # never heard from it: ask what it holds first
            status = remote.status(timeout_s=_left(end))
            self.registry.heard(agent.address, status)
            tables = tuple(str(s.get("table_name")) for s in status.get("tables", ()))
        plan = dplan.agent_plan(tables)
        if plan is None:
            return None
        payload = encode(plan)
        decode(payload)  # never send what an agent of this release would refuse
        reply = remote.action("fragment", {"version": PROTOCOL_VERSION, "plan": payload},
                              timeout_s=_left(end))
        got: dict[str, pa.Table] = {}
        for item in reply.get("outputs", ()):
            got[item["name"]] = remote.fetch(item["ticket"], timeout_s=_left(end))
        lacking = [f for f in _fragments(plan) if f not in got]
        if lacking:
            raise ExecuteError(f"answered without fragments {', '.join(lacking)}")
        return _Answer(got, sum(t.nbytes for t in got.values()))

    def _metadata(self, agents: list[AgentEntry], missing: list[MissingAgent],
                  deadline_s: float) -> pl.DataFrame | None:
        """Every answering agent's process metadata, for lookups the broker plan runs."""
        end = time.monotonic() + deadline_s

        def one(agent: AgentEntry) -> pa.Table | None:
            remote = self.remote(agent.address)
            reply = remote.action("metadata", timeout_s=_left(end))
            ticket = reply.get("ticket") if isinstance(reply, dict) else None
            return remote.fetch(ticket, timeout_s=_left(end)) if ticket else None

        frames = []
        with ThreadPoolExecutor(max_workers=max(1, len(agents))) as pool:
            for agent, future in [(a, pool.submit(one, a)) for a in agents]:
                try:
                    table = future.result()
                except PxlError as exc:
                    missing.append(MissingAgent(agent.name, agent.address,
                                                f"process metadata: {_reason(exc)}"))
                    continue
                if table is not None and table.num_rows:
                    frame = pl.from_arrow(table)
                    assert isinstance(frame, pl.DataFrame)
                    frames.append(frame.select(c for c in frame.columns
                                               if c == "upid" or c in METADATA_COLUMNS))
        return merge_metadata(frames)


def _left(end: float) -> float:
    """Seconds to the deadline (a call needs a positive timeout)."""
    left = end - time.monotonic()
    if left <= 0:
        raise ExecuteError("the deadline passed")
    return left


def _fragments(plan: Any) -> list[str]:
    return [s.name for s in plan.sinks]


def _reason(exc: PxlError) -> str:
    text = exc.message
    return f"{text} ({exc.hint})" if exc.hint else text

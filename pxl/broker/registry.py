"""The agents a broker knows: given on its command line, or registered by themselves.

Each entry keeps what the broker last heard from the agent: its node name, its tables and their
schemas, the time of the last heartbeat, and the last error. The broker hears from an agent by
polling its status every ``heartbeat_s`` and whenever the agent registers (an agent started
with ``--broker`` does so every ``heartbeat_s``). State::

    unknown ──(status or register)──► up ──(nothing heard for 3 heartbeats)──► down
                                       ▲                                         │
                                       └──────────────(heard again)──────────────┘

A self-registered agent down for ``forget_after_s`` is forgotten (its node left the cluster);
an agent named on the command line never is. The registry is written to a JSON state file
after every change, so a restarted broker knows every agent (and its tables) at once.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

__all__ = ["AgentEntry", "Registry", "HEARTBEAT_S"]

log = logging.getLogger(__name__)

HEARTBEAT_S = 2.0
STATE_VERSION = 1


@dataclass(frozen=True)
class AgentEntry:
    """What the broker knows of one agent (an immutable snapshot)."""

    address: str
    node: str = ""
    origin: str = "static"  # "static" (--agents) or "registered" (the agent asked)
    last_heartbeat: float | None = None  # unix seconds
    tables: tuple[str, ...] | None = None  # None: never heard, unknown
    schemas: dict[str, Any] = field(default_factory=dict, hash=False)
    stats: tuple[dict[str, Any], ...] = ()
    error: str = ""
    added: float = field(default_factory=time.time)

    @property
    def name(self) -> str:
        return self.node or self.address

    def state(self, now: float, heartbeat_s: float = HEARTBEAT_S) -> str:
        if self.last_heartbeat is None:
            return "down" if self.error else "unknown"
        return "up" if now - self.last_heartbeat <= 3 * heartbeat_s else "down"


class Registry:
    """The broker's agents, in a stable order: command-line ones first, then by registration."""

    def __init__(self, static: Iterable[str] = (), *, state_file: str | Path | None = None,
                 heartbeat_s: float = HEARTBEAT_S, forget_after_s: float = 300.0) -> None:
        self.heartbeat_s = heartbeat_s
        self.forget_after_s = forget_after_s
        self.state_file = Path(state_file) if state_file else None
        self._lock = threading.Lock()
        self._agents: dict[str, AgentEntry] = {}
        if self.state_file is not None:
            self._load(self.state_file)
        static = list(static)
        for address, entry in list(self._agents.items()):
            if entry.origin == "static" and address not in static:  # dropped from --agents
                self._agents[address] = replace(entry, origin="registered")
        for address in static:
            entry = self._agents.get(address)
            self._agents[address] = (replace(entry, origin="static") if entry
                                     else AgentEntry(address))

    def agents(self) -> list[AgentEntry]:
        with self._lock:
            return list(self._agents.values())

    def heard(self, address: str, status: dict[str, Any], *, registered: bool = False) -> None:
        """The agent at ``address`` answered (a status poll, or it registered) with ``status``."""
        stats = tuple(s for s in status.get("tables", ()) if isinstance(s, dict))
        schemas = status.get("schemas") if isinstance(status.get("schemas"), dict) else {}
        with self._lock:
            old = self._agents.get(address)
            if old is None and not registered:
                return  # forgotten while the poll was under way
            base = old or AgentEntry(address, origin="registered")
            new = replace(base, node=str(status.get("node") or base.node),
                          last_heartbeat=time.time(), error="",
                          tables=tuple(sorted(str(s.get("table_name")) for s in stats)),
                          schemas=schemas, stats=stats)
            # the state file keeps what a restarted broker needs, not every heartbeat
            changed = (old is None or old.state(time.time(), self.heartbeat_s) != "up"
                       or (old.tables, old.node, old.schemas) != (new.tables, new.node,
                                                                   new.schemas))
            self._agents[address] = new
        if changed:
            self.save()

    def failed(self, address: str, error: str) -> None:
        """A poll of the agent at ``address`` failed."""
        with self._lock:
            old = self._agents.get(address)
            if old is None:
                return
            self._agents[address] = replace(old, error=error)
            gone = (old.origin == "registered" and old.last_heartbeat is not None
                    and time.time() - old.last_heartbeat > self.forget_after_s)
            if gone:
                del self._agents[address]
                log.info("forgot agent %s (%s): nothing heard for %.0f s", old.name, address,
                         time.time() - old.last_heartbeat)
        if gone or (old is not None and old.error != error):
            self.save()

    # --- the state file
    def save(self) -> None:
        if self.state_file is None:
            return
        with self._lock:
            data = {"version": STATE_VERSION,
                    "agents": [{**asdict(a), "tables": list(a.tables) if a.tables is not None
                                else None, "stats": list(a.stats)}
                               for a in self._agents.values()]}
        tmp = self.state_file.with_name(self.state_file.name + f".{os.getpid()}.tmp")
        try:
            self.state_file.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps(data, default=str))
            os.replace(tmp, self.state_file)
        except OSError as exc:
            log.warning("cannot write the broker state to %s: %s", self.state_file, exc)

    def _load(self, path: Path) -> None:
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            return
        except (OSError, ValueError) as exc:
            # keep the unreadable file for a human, start afresh beside it
            log.warning("broker state %s is unreadable (%s); starting without it", path, exc)
            return
        if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
            log.warning("broker state %s has another format; starting without it", path)
            return
        for item in data.get("agents", ()):
            try:
                entry = AgentEntry(
                    address=str(item["address"]), node=str(item.get("node") or ""),
                    origin=str(item.get("origin") or "registered"),
                    last_heartbeat=item.get("last_heartbeat"),
                    tables=tuple(item["tables"]) if item.get("tables") is not None else None,
                    schemas=dict(item.get("schemas") or {}), stats=tuple(item.get("stats") or ()),
                    error=str(item.get("error") or ""), added=float(item.get("added") or 0))
            except (KeyError, TypeError, ValueError):
                continue
            self._agents[entry.address] = entry

"""The broker: fans a script's plan fragments out to every agent and merges their answers."""

from pxl.broker.broker import DEFAULT_DEADLINE_S, AgentsCatalog, Broker
from pxl.broker.registry import AgentEntry, Registry

__all__ = ["Broker", "AgentsCatalog", "Registry", "AgentEntry", "DEFAULT_DEADLINE_S"]

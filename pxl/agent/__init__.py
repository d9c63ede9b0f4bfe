"""The pxl agent: collectors + table store + a query endpoint over Arrow Flight."""

from pxl.agent.agent import Agent
from pxl.agent.server import AgentServer

__all__ = ["Agent", "AgentServer"]

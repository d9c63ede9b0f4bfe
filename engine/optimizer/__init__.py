"""The optimizer: pure rules ``(plan) -> plan`` applied in order.

Each rule lives in its own module, named like its function, with a before/after example in its
docstring; :data:`RULES` lists them in the order they run.
"""

from __future__ import annotations

from engine.optimizer.transform import transform
from engine.relations import Plan

__all__ = ["RULES", "optimize", "transform"]

RULES: tuple = ()


def optimize(plan: Plan, rules: tuple = RULES) -> Plan:
    for rule in rules:
        plan = rule(plan)
    return plan

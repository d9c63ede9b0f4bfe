"""The optimizer: pure rules ``(plan) -> plan`` applied in order.

Each rule lives in its own module, named like its function, with a before/after example in its
docstring; :data:`RULES` lists them in the order they run.
"""

from __future__ import annotations

from collections.abc import Callable

from engine.optimizer.constant_folding import constant_folding
from engine.optimizer.dead_outputs import dead_outputs
from engine.optimizer.limit_pushdown import limit_pushdown
from engine.optimizer.merge_maps import merge_maps
from engine.optimizer.predicate_pushdown import predicate_pushdown
from engine.optimizer.projection_pruning import projection_pruning
from engine.optimizer.sort_limit import sort_limit
from engine.optimizer.time_range_pushdown import time_range_pushdown
from engine.optimizer.transform import rewrite, transform
from engine.relations import Plan

__all__ = ["RULES", "Rule", "optimize", "transform", "rewrite"]

Rule = Callable[[Plan], Plan]

RULES: tuple[Rule, ...] = (
    constant_folding,
    predicate_pushdown,
    time_range_pushdown,
    limit_pushdown,
    sort_limit,
    dead_outputs,
    merge_maps,
    projection_pruning,
)


def optimize(plan: Plan, rules: tuple[Rule, ...] = RULES) -> Plan:
    for rule in rules:
        plan = rule(plan)
    return plan

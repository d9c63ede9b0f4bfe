"""A limit right above a sort becomes a top-k: the sort keeps only the first n rows.

Before::                          After::
    Limit[10]                         Sort[latency desc; limit=10]
      Sort[latency desc]                Scan[http_events]
        Scan[http_events]
"""

from __future__ import annotations

import dataclasses

from engine.optimizer.transform import transform
from engine.relations import Limit, Plan, Relation, Sort

__all__ = ["sort_limit"]


def _node(node: Relation) -> Relation:
    if isinstance(node, Limit) and isinstance(node.input, Sort):
        sort = node.input
        n = node.n if sort.limit is None else min(node.n, sort.limit)
        return dataclasses.replace(sort, limit=n)
    return node


def sort_limit(plan: Plan) -> Plan:
    return transform(plan, _node)

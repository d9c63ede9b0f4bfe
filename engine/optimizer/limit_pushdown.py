"""Move limits below row-wise steps, so maps and lookups run on n rows, not all of them.

A limit goes below maps and projections; into every input of a union (the limit stays on top);
into the left input of a left join (each left row yields at least one row, in left order);
two limits become the smaller one.

Before::                          After::
    Limit[10]                         Map[service=px.upid_to_service_name(upid)]
      Map[service=…]                    Limit[10]
        Scan[http_events]                 Scan[http_events]
"""

from __future__ import annotations

import dataclasses

from engine.optimizer.transform import transform
from engine.relations import Join, Limit, Map, Plan, Project, Relation, Union

__all__ = ["limit_pushdown"]


def _limit(node: Relation, n: int) -> Relation:
    """``node`` limited to n rows, the limit pushed as deep as it goes."""
    if isinstance(node, Limit):
        return _limit(node.input, min(n, node.n))
    if isinstance(node, Map | Project):
        return dataclasses.replace(node, input=_limit(node.input, n))
    if isinstance(node, Union):
        inputs = tuple(_limit(i, n) for i in node.inputs)
        return Limit(dataclasses.replace(node, inputs=inputs), n, span=node.span)
    if isinstance(node, Join) and node.how == "left":
        return Limit(dataclasses.replace(node, left=_limit(node.left, n)), n, span=node.span)
    return Limit(node, n, span=node.span)


def _node(node: Relation) -> Relation:
    if isinstance(node, Limit):
        return _limit(node.input, node.n)
    return node


def limit_pushdown(plan: Plan) -> Plan:
    return transform(plan, _node)

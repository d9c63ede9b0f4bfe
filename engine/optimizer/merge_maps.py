"""Two adjacent maps that do not depend on each other become one map.

Before::                          After::
    Map[b=x * 2]                      Map[a=x + 1, b=x * 2]
      Map[a=x + 1]                      Scan[t]
        Scan[t]
"""

from __future__ import annotations

import dataclasses

from engine.exprs import columns_of
from engine.optimizer.transform import transform
from engine.relations import Map, Plan, Relation

__all__ = ["merge_maps"]


def _node(node: Relation) -> Relation:
    if not (isinstance(node, Map) and isinstance(node.input, Map)
            and node.keep_input and node.input.keep_input):
        return node
    inner = node.input
    computed = {n for n, _ in inner.exprs}
    for name, expr in node.exprs:
        if name in computed or columns_of(expr) & computed:
            return node
    return dataclasses.replace(inner, exprs=inner.exprs + node.exprs, span=inner.span)


def merge_maps(plan: Plan) -> Plan:
    return transform(plan, _node)

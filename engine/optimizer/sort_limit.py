"""A limit above a sort becomes a top-k: the sort keeps only the first n rows.

A sort below an inner or left join whose keys come from the left side moves above the join
first (the join keeps the left order, and the sort is stable, so the rows are the same), so that
sort → merge → head joins every row but sorts only into a top-k.

Before::                          After::
    Limit[10]                         Sort[latency desc; limit=10]
      Join[inner; …]                    Join[inner; …]
        Sort[latency desc]                Scan[http_events]
          Scan[http_events]               Scan[process_stats]
        Scan[process_stats]
"""

from __future__ import annotations

import dataclasses

from engine.optimizer.transform import transform
from engine.relations import Join, Limit, Plan, Relation, Sort, join_output_names

__all__ = ["sort_limit"]


def _sort_above_join(join: Join) -> Sort | None:
    """Join(Sort(x), r) → Sort(Join(x, r)) when that gives the same rows in the same order."""
    sort = join.left
    if join.how not in ("inner", "left") or not isinstance(sort, Sort) or sort.limit is not None:
        return None
    lnames, _ = join_output_names(join.left.schema, join.right.schema, join.suffixes)
    renamed = dict(zip(join.left.schema.names, lnames, strict=True))
    keys = tuple(renamed[k] for k in sort.keys)
    return Sort(dataclasses.replace(join, left=sort.input), keys, sort.descending, span=sort.span)


def _node(node: Relation) -> Relation:
    if not isinstance(node, Limit):
        return node
    below = node.input
    if isinstance(below, Join):
        below = _sort_above_join(below) or below
    if isinstance(below, Sort):
        n = node.n if below.limit is None else min(node.n, below.limit)
        return dataclasses.replace(below, limit=n)
    return node


def sort_limit(plan: Plan) -> Plan:
    return transform(plan, _node)

"""Move filters towards the scans, so fewer rows flow through everything above them.

A filter's conjuncts go below projections, sorts, maps that do not compute what they read,
aggregates whose group columns are all they read, into every input of a union, and into the
side of a join that holds their columns (left for inner/left joins, right for inner/right).
Adjacent filters become one.

Before::                                After::
    Filter[resp_status >= 500]              Map[ms=latency / 1000000]
      Map[ms=latency / 1000000]               Filter[resp_status >= 500]
        Scan[http_events]                       Scan[http_events]
"""

from __future__ import annotations

import dataclasses

from engine.exprs import Expr, columns_of
from engine.optimizer.exprs import conjoin, conjuncts, rename
from engine.optimizer.transform import transform
from engine.relations import (
    Aggregate,
    Filter,
    Join,
    Map,
    Plan,
    Project,
    Relation,
    Sort,
    Union,
    join_output_names,
)

__all__ = ["predicate_pushdown"]


def _filter(node: Relation, parts: list[Expr]) -> Relation:
    """``node`` filtered by the conjuncts, each pushed as deep as it goes."""
    if not parts:
        return node
    if isinstance(node, Filter):
        return _filter(node.input, conjuncts(node.predicate) + parts)
    stay, pushed = _push(node, parts)
    if pushed is not node:
        node = pushed
    if not stay:
        return node
    return Filter(node, conjoin(stay), span=stay[0].span)


def _push(node: Relation, parts: list[Expr]) -> tuple[list[Expr], Relation]:
    """Push what can go below ``node``; return the conjuncts that stay above and the new node."""
    if isinstance(node, Project | Sort) and not (isinstance(node, Sort) and node.limit is not None):
        return [], dataclasses.replace(node, input=_filter(node.input, parts))
    if isinstance(node, Map) and node.keep_input:
        computed = {n for n, _ in node.exprs}
        down = [p for p in parts if not columns_of(p) & computed]
        stay = [p for p in parts if columns_of(p) & computed]
        if down:
            node = dataclasses.replace(node, input=_filter(node.input, down))
        return stay, node
    if isinstance(node, Aggregate):
        down = [p for p in parts if columns_of(p) <= set(node.groups)]
        stay = [p for p in parts if not columns_of(p) <= set(node.groups)]
        if down:
            node = dataclasses.replace(node, input=_filter(node.input, down))
        return stay, node
    if isinstance(node, Union):
        inputs = tuple(_filter(i, list(parts)) for i in node.inputs)
        return [], dataclasses.replace(node, inputs=inputs)
    if isinstance(node, Join):
        return _push_join(node, parts)
    return parts, node


def _push_join(node: Join, parts: list[Expr]) -> tuple[list[Expr], Relation]:
    lnames, rnames = join_output_names(node.left.schema, node.right.schema, node.suffixes)
    to_left = dict(zip(lnames, node.left.schema.names, strict=True))
    to_right = dict(zip(rnames, node.right.schema.names, strict=True))
    left, right, stay = [], [], []
    for p in parts:
        cols = columns_of(p)
        if cols <= set(to_left) and node.how in ("inner", "left"):
            left.append(rename(p, to_left))
        elif cols <= set(to_right) and node.how in ("inner", "right"):
            right.append(rename(p, to_right))
        else:
            stay.append(p)
    if left or right:
        node = dataclasses.replace(node, left=_filter(node.left, left),
                                   right=_filter(node.right, right))
    return stay, node


def _node(node: Relation) -> Relation:
    if isinstance(node, Filter):
        return _filter(node.input, conjuncts(node.predicate))
    return node


def predicate_pushdown(plan: Plan) -> Plan:
    return transform(plan, _node)

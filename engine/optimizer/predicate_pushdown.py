"""Move filters towards the scans, so fewer rows flow through everything above them.

A filter's conjuncts go below projections, sorts, maps that do not compute what they read,
aggregates whose group columns are all they read, into every input of a union, and into the
side of a join that holds their columns (left for inner/left joins, right for inner/right).
Adjacent filters become one.

Before::                                After::
    Filter[resp_status >= 500]              Map[ms=latency / 1000000]
      Map[ms=latency / 1000000]               Filter[resp_status >= 500]
        Scan[http_events]                       Scan[http_events]

One pass from the outputs down carries the conjuncts still looking for a place, so a long chain
of filters and maps is rebuilt once, not once per filter.
"""

from __future__ import annotations

from collections.abc import Callable

from engine.exprs import Expr, columns_of
from engine.optimizer.exprs import conjoin, conjuncts, rename
from engine.optimizer.transform import replace_children
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

Pending = list[Expr]


def _split(node: Relation, parts: Pending) -> tuple[Pending, list[Pending]]:
    """Which conjuncts stay above ``node``, and which go to each of its children."""
    if isinstance(node, Project) or (isinstance(node, Sort) and node.limit is None):
        return [], [parts]
    if isinstance(node, Map) and node.keep_input:
        computed = {n for n, _ in node.exprs}
        return _partition(parts, lambda cols: computed.isdisjoint(cols))
    if isinstance(node, Aggregate):
        groups = set(node.groups)
        return _partition(parts, groups.issuperset)
    if isinstance(node, Union):
        return [], [list(parts) for _ in node.inputs]
    if isinstance(node, Join):
        return _split_join(node, parts)
    return parts, [[] for _ in node.children]


def _partition(parts: Pending, goes_down: Callable[[frozenset[str]], bool]
               ) -> tuple[Pending, list[Pending]]:
    """(the conjuncts that stay, [those that go down]) by the columns each reads."""
    stay: Pending = []
    down: Pending = []
    for p in parts:
        (down if goes_down(columns_of(p)) else stay).append(p)
    return stay, [down]


def _split_join(node: Join, parts: Pending) -> tuple[Pending, list[Pending]]:
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
    return stay, [left, right]


def predicate_pushdown(plan: Plan) -> Plan:
    shared: dict[Relation, Relation] = {}  # nodes reached with nothing to place: rebuilt once

    def visit(node: Relation, pending: Pending) -> Relation:
        while isinstance(node, Filter):
            pending = conjuncts(node.predicate) + pending
            node = node.input
        if not pending:
            if node not in shared:
                shared[node] = replace_children(node, tuple(visit(c, []) for c in node.children))
            return shared[node]
        stay, below = _split(node, pending)
        new = replace_children(node, tuple(visit(c, p) for c, p in zip(node.children, below,
                                                                         strict=True)))
        return Filter(new, conjoin(stay), span=stay[0].span) if stay else new

    return Plan(tuple(visit(s, []) for s in plan.sinks))  # type: ignore[misc]

"""Which columns of each node's output are read by something above it.

Shared by dead-output elimination and projection pruning. A node used by several parents needs
the union of what they read; an output (Sink) needs every column it has.
"""

from __future__ import annotations

from engine.exprs import columns_of
from engine.optimizer.transform import replace_children
from engine.relations import (
    Aggregate,
    Filter,
    Join,
    Limit,
    Map,
    Plan,
    Project,
    Relation,
    Scan,
    Sink,
    Sort,
    Union,
    Values,
    join_output_names,
)

__all__ = ["required_columns", "parents_first", "shrink"]


def parents_first(plan: Plan) -> list[Relation]:
    """Every node once, each before all of its children."""
    order: list[Relation] = []
    seen: set[int] = set()
    for sink in plan.sinks:
        stack: list[tuple[Relation, bool]] = [(sink, False)]
        while stack:
            node, expanded = stack.pop()
            if expanded:
                order.append(node)
                continue
            if id(node) in seen:
                continue
            seen.add(id(node))
            stack.append((node, True))
            stack.extend((c, False) for c in node.children)
    return order[::-1]


def required_columns(plan: Plan, *, drop_dead: bool = True) -> dict[Relation, set[str]]:
    """node → the names of its output columns that its parents read.

    With ``drop_dead`` the computed columns and aggregates nothing reads are assumed gone (as
    dead_outputs makes them); without it every expression a node holds is read."""
    need: dict[Relation, set[str]] = {}
    for node in parents_first(plan):
        if isinstance(node, Sink):
            need[node] = set(node.schema.names)
        mine = need.get(node, set())
        for child, cols in _child_needs(node, mine, drop_dead):
            need.setdefault(child, set()).update(cols)
    return need


def _child_needs(node: Relation, need: set[str],
                 drop_dead: bool) -> list[tuple[Relation, set[str]]]:
    if isinstance(node, Sink):
        return [(node.input, set(node.input.schema.names))]
    if isinstance(node, Filter):
        return [(node.input, need | columns_of(node.predicate))]
    if isinstance(node, Map):
        kept = [(n, e) for n, e in node.exprs if n in need or not drop_dead]
        reads = set().union(*(columns_of(e) for _, e in kept)) if kept else set()
        # a replaced input column stays below: it holds the new column's place in the output
        passthrough = need - {n for n, _ in node.exprs if n not in node.input.schema} \
            if node.keep_input else set()
        return [(node.input, passthrough | reads)]
    if isinstance(node, Project):
        # as shrink(): a projection that nothing reads still keeps its first column
        return [(node.input, {c for c in node.columns if c in need} or set(node.columns[:1]))]
    if isinstance(node, Aggregate):
        aggs = [a for a in node.aggs if a.name in need or not drop_dead] or list(node.aggs[:1])
        reads = set().union(*(columns_of(a) for a in aggs)) if aggs else set()
        return [(node.input, set(node.groups) | reads)]
    if isinstance(node, Sort):
        return [(node.input, need | set(node.keys))]
    if isinstance(node, Limit):
        return [(node.input, set(need))]
    if isinstance(node, Union):
        return [(i, set(need) or set(node.schema.names[:1])) for i in node.inputs]
    if isinstance(node, Join):
        return _join_needs(node, need)
    if isinstance(node, Scan | Values):
        return []
    raise TypeError(f"no column analysis for {type(node).__name__}")


def _join_needs(node: Join, need: set[str]) -> list[tuple[Relation, set[str]]]:
    # Names on both sides stay (dropping one would change the other's suffix).
    common = set(node.left.schema.names) & set(node.right.schema.names)
    lnames, rnames = join_output_names(node.left.schema, node.right.schema, node.suffixes)
    left = {src for src, out in zip(node.left.schema.names, lnames, strict=True) if out in need}
    right = {src for src, out in zip(node.right.schema.names, rnames, strict=True) if out in need}
    return [(node.left, left | set(node.left_on) | common),
            (node.right, right | set(node.right_on) | common)]


def shrink(old: Relation, children: tuple[Relation, ...], wanted: set[str]) -> Relation:
    """Rebuild ``old`` over children that may have lost unread columns: projections keep only
    the wanted columns and union inputs are re-projected to line up."""
    if isinstance(old, Project):
        cols = tuple(c for c in old.columns if c in wanted) or old.columns[:1]
        cols = tuple(c for c in cols if c in children[0].schema) or cols
        return Project(children[0], cols, span=old.span)
    if isinstance(old, Union):
        names = [n for n in old.schema.names if n in wanted] or old.schema.names[:1]
        inputs = tuple(i if i.schema.names == names else Project(i, tuple(names), span=i.span)
                       for i in children)
        return Union(inputs, span=old.span)
    return replace_children(old, children)

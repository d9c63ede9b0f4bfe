"""One bottom-up rewrite helper, so that no rule hand-writes recursion."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from engine.relations import Join, Plan, Relation, Sink, Union

__all__ = ["transform", "rewrite", "replace_children"]


def replace_children(node: Relation, children: tuple[Relation, ...]) -> Relation:
    """The same node over new children (the node itself if nothing changed)."""
    old = node.children
    if all(a is b for a, b in zip(old, children, strict=True)):
        return node
    if all(a.schema == b.schema for a, b in zip(old, children, strict=True)):
        return _over_same_columns(node, children)
    if isinstance(node, Join):
        return dataclasses.replace(node, left=children[0], right=children[1])
    if isinstance(node, Union):
        return dataclasses.replace(node, inputs=children)
    return dataclasses.replace(node, input=children[0])  # type: ignore[call-arg]


def _over_same_columns(node: Relation, children: tuple[Relation, ...]) -> Relation:
    """A copy of ``node`` over children with the same columns as its own: a node's checks and
    its schema depend only on its fields and its children's columns, so the copy keeps both
    (rebuilding through ``__init__`` re-ran the checks: a third of optimizing a 30-line
    script)."""
    new = object.__new__(type(node))
    new.__dict__.update(node.__dict__)
    if isinstance(node, Join):
        new.__dict__["left"], new.__dict__["right"] = children
    elif isinstance(node, Union):
        new.__dict__["inputs"] = children
    else:
        new.__dict__["input"] = children[0]
    return new


def transform(plan: Plan, fn: Callable[[Relation], Relation]) -> Plan:
    """Apply ``fn`` to every node, children first; a shared sub-plan is rewritten once."""
    done: dict[Relation, Relation] = {}

    def visit(node: Relation) -> Relation:
        if node in done:
            return done[node]
        new = replace_children(node, tuple(visit(c) for c in node.children))
        out = done[node] = fn(new)
        return out

    sinks = tuple(visit(s) for s in plan.sinks)
    for s in sinks:
        if not isinstance(s, Sink):
            raise TypeError("a rule turned an output into something else")
    return Plan(sinks)  # type: ignore[arg-type]



def rewrite(plan: Plan, fn: Callable[[Relation, tuple[Relation, ...]], Relation]) -> Plan:
    """Rebuild every node, children first, with ``fn(old_node, new_children)``.

    For rules that look facts up by the original node and may change a node together with its
    children (e.g. prune a projection whose input lost columns)."""
    done: dict[Relation, Relation] = {}

    def visit(node: Relation) -> Relation:
        if node in done:
            return done[node]
        out = done[node] = fn(node, tuple(visit(c) for c in node.children))
        return out

    return Plan(tuple(visit(s) for s in plan.sinks))  # type: ignore[arg-type]

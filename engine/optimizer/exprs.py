"""Helpers over expressions shared by the rules: conjuncts, renaming, rewriting."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping

from engine.exprs import AggCall, Call, ColumnRef, Expr
from engine.registry import REGISTRY
from engine.relations import Aggregate, Filter, Map, Relation
from engine.types import ColumnType, DataType

__all__ = ["conjuncts", "conjoin", "rename", "rewrite_expr", "map_node_exprs"]

_BOOL = ColumnType(DataType.BOOLEAN)


def conjuncts(e: Expr) -> list[Expr]:
    """``a and (b and c)`` → [a, b, c]."""
    if isinstance(e, Call) and e.fn == "logicalAnd":
        return conjuncts(e.args[0]) + conjuncts(e.args[1])
    return [e]


def conjoin(parts: list[Expr]) -> Expr:
    """[a, b, c] → ``(a and b) and c``."""
    out = parts[0]
    for p in parts[1:]:
        out = Call("logicalAnd", (out, p), REGISTRY.scalar("logicalAnd").resolve([_BOOL, _BOOL]),
                   span=p.span)
    return out


def rewrite_expr(e: Expr, fn: Callable[[Expr], Expr]) -> Expr:
    """Apply ``fn`` bottom-up to every sub-expression."""
    if isinstance(e, Call):
        args = tuple(rewrite_expr(a, fn) for a in e.args)
        if any(a is not b for a, b in zip(args, e.args, strict=True)):
            e = dataclasses.replace(e, args=args)
    return fn(e)


def rename(e: Expr, mapping: Mapping[str, str]) -> Expr:
    """The expression with column references renamed."""

    def visit(x: Expr) -> Expr:
        if isinstance(x, ColumnRef) and x.name in mapping and mapping[x.name] != x.name:
            return dataclasses.replace(x, name=mapping[x.name])
        return x

    return rewrite_expr(e, visit)


def map_node_exprs(node: Relation, fn: Callable[[Expr], Expr]) -> Relation:
    """The node with ``fn`` applied to each of its own expressions (not its children's)."""
    if isinstance(node, Filter):
        new = fn(node.predicate)
        return node if new is node.predicate else dataclasses.replace(node, predicate=new)
    if isinstance(node, Map):
        exprs = tuple((n, fn(e)) for n, e in node.exprs)
        changed = any(a[1] is not b[1] for a, b in zip(exprs, node.exprs, strict=True))
        return dataclasses.replace(node, exprs=exprs) if changed else node
    if isinstance(node, Aggregate):
        aggs = tuple(_agg(a, fn) for a in node.aggs)
        changed = any(a is not b for a, b in zip(aggs, node.aggs, strict=True))
        return dataclasses.replace(node, aggs=aggs) if changed else node
    return node


def _agg(a: AggCall, fn: Callable[[Expr], Expr]) -> AggCall:
    if a.arg is None:
        return a
    new = fn(a.arg)
    return a if new is a.arg else dataclasses.replace(a, arg=new)

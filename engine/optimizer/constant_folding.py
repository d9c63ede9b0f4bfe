"""Fold calls whose arguments are all literals; drop filters that are always true.

Before: ``Filter[resp_status >= (400 + 100)]``   After: ``Filter[resp_status >= 500]``
Before: ``Filter[True]`` over X                   After: X
"""

from __future__ import annotations

from engine.exprs import Call, Expr, Literal
from engine.optimizer.exprs import map_node_exprs, rewrite_expr
from engine.optimizer.transform import transform
from engine.registry import REGISTRY
from engine.relations import Filter, Plan, Relation
from engine.types import DataType

__all__ = ["constant_folding"]

_PY = {DataType.BOOLEAN: bool, DataType.INT64: int, DataType.FLOAT64: float, DataType.STRING: str}


def _fold(e: Expr) -> Expr:
    if not isinstance(e, Call) or not all(isinstance(a, Literal) for a in e.args):
        return e
    fn = REGISTRY.scalar(e.fn)
    want = _PY.get(e.ctype.dtype)
    if fn.fold is None or want is None or any(a.dtype is DataType.TIME64NS for a in e.args):
        return e
    try:
        value = fn.fold(*(a.value for a in e.args))  # type: ignore[attr-defined]
    except (ArithmeticError, TypeError, ValueError):
        return e  # leave it to run time (e.g. a division by zero gives inf/null there)
    if want is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, want) or (want is int and isinstance(value, bool)):
        return e
    if want is int and not -(2**63) <= value < 2**63:
        return e
    return Literal(value, e.ctype, span=e.span)


def _node(node: Relation) -> Relation:
    node = map_node_exprs(node, lambda e: rewrite_expr(e, _fold))
    if isinstance(node, Filter) and isinstance(node.predicate, Literal) \
            and node.predicate.value is True:
        return node.input
    return node


def constant_folding(plan: Plan) -> Plan:
    return transform(plan, _node)

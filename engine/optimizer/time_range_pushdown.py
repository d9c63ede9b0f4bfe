"""Turn comparisons of ``time_`` with a constant, right above a scan, into the scan's window.

The store then answers the window with a binary search instead of a filter over every row.

Before::                                              After::
    Filter[time_ >= time(2026-11-24T11:55:00Z)]           Scan[http_events; time=[11:55:00Z, +inf)]
      Scan[http_events]
"""

from __future__ import annotations

import dataclasses

from engine.exprs import Call, ColumnRef, Expr, Literal
from engine.optimizer.exprs import conjoin, conjuncts
from engine.optimizer.transform import transform
from engine.relations import Filter, Plan, Relation, Scan
from engine.types import DataType

__all__ = ["time_range_pushdown"]

_MIRROR = {"greaterThan": "lessThan", "greaterThanEqual": "lessThanEqual",
           "lessThan": "greaterThan", "lessThanEqual": "greaterThanEqual", "equal": "equal"}


def _bound(e: Expr) -> tuple[str, int] | None:
    """(comparison, ns) for ``time_ <op> constant`` (either way round), else None."""
    if not isinstance(e, Call) or e.fn not in _MIRROR or len(e.args) != 2:
        return None
    a, b = e.args
    fn = e.fn
    if isinstance(b, ColumnRef) and isinstance(a, Literal):
        a, b, fn = b, a, _MIRROR[fn]
    if not (isinstance(a, ColumnRef) and a.name == "time_" and a.dtype is DataType.TIME64NS):
        return None
    if not isinstance(b, Literal) or b.dtype not in (DataType.TIME64NS, DataType.INT64) \
            or not isinstance(b.value, int) or isinstance(b.value, bool):
        return None
    return fn, b.value


def _narrow(scan: Scan, fn: str, ns: int) -> Scan:
    start, end = scan.start, scan.end
    lo = {"greaterThan": ns + 1, "greaterThanEqual": ns, "equal": ns}.get(fn)
    hi = {"lessThan": ns, "lessThanEqual": ns + 1, "equal": ns + 1}.get(fn)
    if lo is not None:
        start = lo if start is None else max(start, lo)
    if hi is not None:
        end = hi if end is None else min(end, hi)
    if start is not None and end is not None and start > end:
        end = start  # an empty window
    # A window relative to the time the script ran, narrowed by a constant, is no longer
    # relative: a plan cache must not move it (pxl/plancache.py counts such scans).
    return dataclasses.replace(scan, start=start, end=end, relative_to=None)


def _node(node: Relation) -> Relation:
    if not (isinstance(node, Filter) and isinstance(node.input, Scan)
            and "time_" in node.input.table_schema):
        return node
    scan, rest = node.input, []
    for part in conjuncts(node.predicate):
        bound = _bound(part)
        if bound is None:
            rest.append(part)
        else:
            scan = _narrow(scan, *bound)
    if scan is node.input:
        return node
    return Filter(scan, conjoin(rest), span=node.span) if rest else scan


def time_range_pushdown(plan: Plan) -> Plan:
    return transform(plan, _node)

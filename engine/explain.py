"""A stable, canonical text form of any plan (golden tests compare it byte for byte).

>>> from engine.types import Schema
>>> print(explain_relation(Limit(Scan("t", Schema(())), 5)))
Limit[5]
  Scan[t]
"""

from __future__ import annotations

from functools import singledispatch

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
)
from engine.timeutil import format_ns

__all__ = ["explain", "explain_relation", "describe"]


def explain(plan: Plan) -> str:
    """Every output of the plan, one tree each, separated by blank lines."""
    return "\n\n".join(explain_relation(s) for s in plan.sinks)


def explain_relation(node: Relation, indent: int = 0) -> str:
    lines: list[str] = []
    stack = [(node, indent)]
    while stack:
        n, depth = stack.pop()
        lines.append("  " * depth + describe(n))
        stack.extend((c, depth + 1) for c in reversed(n.children))
    return "\n".join(lines)


def _names(names: tuple[str, ...]) -> str:
    return ", ".join(names)


@singledispatch
def describe(node: Relation) -> str:
    """One line for one node: its kind and its arguments."""
    raise TypeError(f"no explain form for {type(node).__name__}")


@describe.register
def _(node: Scan) -> str:
    parts = [node.table]
    if node.start is not None or node.end is not None:
        start = format_ns(node.start) if node.start is not None else "-inf"
        end = format_ns(node.end) if node.end is not None else "+inf"
        parts.append(f"time=[{start}, {end})")
    if node.columns is not None:
        parts.append(f"columns=({_names(node.columns)})")
    return f"Scan[{'; '.join(parts)}]"


@describe.register
def _(node: Values) -> str:
    return f"Values[{node.name}; {node.rows.height} rows]"


@describe.register
def _(node: Filter) -> str:
    return f"Filter[{node.predicate}]"


@describe.register
def _(node: Map) -> str:
    body = ", ".join(f"{n}={e}" for n, e in node.exprs)
    return f"Map[{body}]" if node.keep_input else f"Map[only; {body}]"


@describe.register
def _(node: Project) -> str:
    return f"Project[{_names(node.columns)}]"


@describe.register
def _(node: Aggregate) -> str:
    aggs = ", ".join(str(a) for a in node.aggs)
    groups = f"by=({_names(node.groups)})" if node.groups else "all rows"
    return f"Aggregate[{groups}; {aggs}]" if aggs else f"Aggregate[{groups}; distinct]"


@describe.register
def _(node: Join) -> str:
    return (f"Join[{node.how}; ({_names(node.left_on)}) = ({_names(node.right_on)}); "
            f"suffixes=({node.suffixes[0]!r}, {node.suffixes[1]!r})]")


@describe.register
def _(node: Union) -> str:
    return f"Union[{len(node.inputs)}]"


@describe.register
def _(node: Limit) -> str:
    return f"Limit[{node.n}]"


@describe.register
def _(node: Sort) -> str:
    keys = ", ".join(f"{k} {'desc' if d else 'asc'}" for k, d in zip(node.keys, node.descending,
                                                                      strict=True))
    return f"Sort[{keys}]" if node.limit is None else f"Sort[{keys}; limit={node.limit}]"


@describe.register
def _(node: Sink) -> str:
    opts = "".join(f"; {k}={v!r}" for k, v in node.options)
    return f"Sink[{node.name}{opts}]"

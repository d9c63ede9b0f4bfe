"""Drop computed columns and aggregates that nothing reads.

Before::                                   After::
    Project[req_path]                          Project[req_path]
      Map[ms=latency / 1000000]                  Scan[http_events]
        Scan[http_events]
"""

from __future__ import annotations

from engine.optimizer.columns import required_columns, shrink
from engine.optimizer.transform import replace_children, rewrite
from engine.relations import Aggregate, Map, Plan, Relation

__all__ = ["dead_outputs"]


def dead_outputs(plan: Plan) -> Plan:
    need = required_columns(plan)

    def visit(old: Relation, children: tuple[Relation, ...]) -> Relation:
        wanted = need.get(old, set())
        if isinstance(old, Map):
            exprs = tuple((n, e) for n, e in old.exprs if n in wanted)
            if not exprs and old.keep_input:
                return children[0]
            if len(exprs) == len(old.exprs):
                return replace_children(old, children)  # nothing dropped: no new node
            return Map(children[0], exprs or old.exprs[:1], old.keep_input, span=old.span)
        if isinstance(old, Aggregate):
            aggs = tuple(a for a in old.aggs if a.name in wanted)
            if not aggs and not old.groups:
                aggs = old.aggs[:1]
            if len(aggs) == len(old.aggs):
                return replace_children(old, children)
            return Aggregate(children[0], old.groups, aggs, span=old.span)
        return shrink(old, children, wanted)

    return rewrite(plan, visit)

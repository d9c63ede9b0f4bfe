"""Scans read only the columns something above them needs; projections keep only those too.

Union inputs are re-projected to one column list so that they still line up.

Before::                                   After::
    Aggregate[by=(req_path); n=count(…)]       Aggregate[by=(req_path); n=count(…)]
      Scan[http_events]                          Scan[http_events; columns=(req_path)]
"""

from __future__ import annotations

import dataclasses

from engine.optimizer.columns import required_columns, shrink
from engine.optimizer.transform import rewrite
from engine.relations import Plan, Relation, Scan

__all__ = ["projection_pruning"]


def projection_pruning(plan: Plan) -> Plan:
    need = required_columns(plan, drop_dead=False)

    def visit(old: Relation, children: tuple[Relation, ...]) -> Relation:
        wanted = need.get(old, set())
        if isinstance(old, Scan):
            cols = tuple(n for n in old.schema.names if n in wanted) or tuple(old.schema.names[:1])
            if cols != tuple(old.schema.names):
                return dataclasses.replace(old, columns=cols)
            return old
        return shrink(old, children, wanted)

    return rewrite(plan, visit)

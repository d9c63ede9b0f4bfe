"""The text form of a split plan: each agent fragment, then the broker plan.

>>> from engine.relations import Limit, Plan, Scan, Sink
>>> from engine.types import ColumnType, DataType, Schema
>>> from engine.distributed.split import split
>>> t = Scan("t", Schema.of({"a": ColumnType(DataType.INT64)}))
>>> print(explain_distributed(split(Plan((Sink(Limit(t, 5), "output"),)))))
== agent fragment f0: every agent with t ==
Limit[5]
  Scan[t]
<BLANKLINE>
== broker ==
Sink[output]
  Limit[5]
    Exchange[f0]
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine.explain import explain, explain_relation

if TYPE_CHECKING:
    from engine.distributed.split import DistributedPlan

__all__ = ["explain_distributed"]


def explain_distributed(dplan: DistributedPlan) -> str:
    """Every agent fragment (what each agent runs, without its output node), then the broker
    plan, each under a ``== … ==`` header."""
    parts = []
    for fragment in dplan.agent.values():
        head = f"== agent fragment {fragment.id}: every agent with {', '.join(sorted(fragment.tables))} =="
        parts.append(f"{head}\n{explain_relation(fragment.root)}")
    parts.append(f"== broker ==\n{explain(dplan.broker)}")
    return "\n\n".join(parts)

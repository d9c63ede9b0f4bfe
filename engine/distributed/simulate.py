"""A split plan run in one process: each catalog plays an agent, then the broker merges.

What the broker and the agents will do over Arrow Flight, minus the network: every agent gets
its fragments as wire bytes (so the wire format is exercised too), runs those whose tables it
holds, and answers in Arrow; the broker runs its plan over the answers, agent by agent in
catalog order::

    catalogs[0] ── decode(encode(fragments)) ── execute ── Arrow ──┐
    catalogs[1] ── …                                               ├──► Inputs ── broker plan
    catalogs[2] (lacks the table: not asked)                       ┘
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import polars as pl
import pyarrow as pa

from engine.arrowio import to_arrow
from engine.catalog import Catalog
from engine.distributed.exchange import Inputs, merge_metadata
from engine.distributed.split import DistributedPlan, split
from engine.distributed.wire import decode, encode
from engine.executor import EngineName, Result, execute
from engine.relations import Plan

__all__ = ["run_fragments", "run_broker", "run_distributed"]


def run_fragments(dplan: DistributedPlan, catalogs: Sequence[Catalog], *,
                  engine: EngineName = "auto") -> dict[str, list[pa.Table]]:
    """Each fragment's answers, one Arrow table per agent that holds its tables."""
    answers: dict[str, list[pa.Table]] = {fid: [] for fid in dplan.agent}
    for catalog in catalogs:
        plan = dplan.agent_plan(catalog.table_names())
        if plan is None:
            continue  # an agent without the tables is not asked
        for result in execute(decode(encode(plan)), catalog, engine=engine):
            answers[result.name].append(to_arrow(result.frame, result.schema))
    return answers


def run_broker(dplan: DistributedPlan, answers: Mapping[str, Sequence[pa.Table | pl.DataFrame]],
               *, metadata: pl.DataFrame | None = None, engine: EngineName = "auto",
               max_rows: int | None = None) -> list[Result]:
    """The broker plan over the agents' answers (``metadata`` for lookups the broker runs)."""
    return execute(dplan.broker, Inputs(answers, metadata), engine=engine, max_rows=max_rows)


def run_distributed(plan: Plan, catalogs: Sequence[Catalog], *, engine: EngineName = "auto",
                    max_rows: int | None = None) -> list[Result]:
    """Split an optimized plan and run it with each catalog as one agent."""
    dplan = split(plan)
    answers = run_fragments(dplan, catalogs, engine=engine)
    return run_broker(dplan, answers, metadata=_metadata(catalogs), engine=engine,
                      max_rows=max_rows)


def _metadata(catalogs: Sequence[Catalog]) -> pl.DataFrame | None:
    return merge_metadata([m for c in catalogs if (m := _of(c)) is not None])


def _of(catalog: Catalog) -> pl.DataFrame | None:
    get = getattr(catalog, "metadata", None)
    return get() if get is not None else None

"""The splitter: an optimized plan → agent fragments (run on every agent) + one broker plan.

The plan is cut at the first operator that needs every agent's rows at once. Below the cut,
each agent runs a *fragment* over its own tables; above it, the broker runs the rest over the
agents' answers, which it reads through :class:`~engine.distributed.exchange.Exchange` leaves.
Every node type has a :func:`placement` (the small partial-operator protocol):

- ``AGENT``  row by row, so it runs on every agent: Scan, Filter, Map (metadata lookups too),
  Project;
- ``BOTH``   runs on every agent *and* again on the broker: Limit, Sort with a limit (top-k);
- ``SPLIT``  a partial step on the agents, merge + finalize on the broker: Aggregate, with the
  steps of each aggregate taken from the function registry (``AggregateFunction.partial`` …);
- ``BROKER`` needs all rows: Sort without a limit, Join, Union, Values, Sink (and the sketch
  nodes the splitter itself makes).

An aggregate::

    Sink[output]                          agents (fragment f0)
      Aggregate[by=(path); n=count(x),      Aggregate[by=(path); n=count(x),
                m=mean(latency)]   ──►                __m_sum=sum(latency), __m_count=count(latency)]
        Filter[status >= 500]                 Filter[status >= 500]
          Scan[http_events]                     Scan[http_events]
                                          broker
                                            Sink[output]
                                              Project[path, n, m]
                                                Map[m=px.select(__m_count > 0, __m_sum / __m_count, None)]
                                                  Aggregate[by=(path); n=sum(n), __m_sum=sum(__m_sum), …]
                                                    Exchange[f0]

A top-k runs on both sides; a join (or union) runs on the broker over inputs already filtered
and pruned on the agents::

    Sort[latency desc; limit=10]           agents:  f0 = Scan[http_events]
      Join[inner; (upid) = (upid)]   ──►            f1 = Filter[…] Scan[process_stats]
        Scan[http_events]                  broker:  Sort[latency desc; limit=10]
        Filter[…]                                     Join[inner; (upid) = (upid)]
          Scan[process_stats]                           Exchange[f0]
                                                        Exchange[f1]

The quantiles pre-aggregate as a mergeable sketch (engine/distributed/sketch.py): agents group
by the keys and each quantile's value — exact, or rounded to a 1% log bucket where a group has
many rows — and count; the broker reads the quantiles from the merged counts::

    Aggregate[by=(svc); p99=quantile(latency, 0.99), n=count(latency)]
      Scan[http_events]
                     ──►  agents:  Aggregate[by=(svc, __p99_v); __p99_w=count(__p99_v),
                                             n=count(latency)]
                                     SketchValues[by=(svc); __p99_v=latency; …]
                                       Scan[http_events]
                          broker:  WeightedAggregate[by=(svc); p99=quantile(__p99_v, 0.99),
                                                     n=sum(n); weights=(__p99_v: __p99_w)]
                                     Exchange[f0]

The broker reads each fragment's answers concatenated in agent order, so with rows partitioned
across agents in that order the split plan gives the same rows, in the same order, as the whole
plan over all rows (a quantile whose values were rounded: within the sketch's stated error).
An aggregate whose functions cannot pre-aggregate, or over an input the agents cannot run
alone, makes agents ship the aggregate's input rows (only the columns it reads).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import singledispatch

from engine.distributed.exchange import Exchange
from engine.distributed.sketch import EXACT_UP_TO, SketchValues, WeightedAggregate
from engine.errors import PlanError
from engine.exprs import AggCall, ColumnRef, Expr, columns_of
from engine.optimizer.transform import replace_children, transform
from engine.registry import REGISTRY
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
from engine.types import ColumnType, DataType

__all__ = ["Placement", "placement", "Fragment", "DistributedPlan", "split"]


class Placement(enum.Enum):
    """Where a node runs once the plan is split."""

    AGENT = "agent"  # on every agent, row by row
    BOTH = "both"  # on every agent, then again on the broker over their answers
    SPLIT = "split"  # a partial step on every agent, merge + finalize on the broker
    BROKER = "broker"  # on the broker, over all agents' rows

    def __str__(self) -> str:
        return self.value


@singledispatch
def placement(node: Relation) -> Placement:
    """Where a node runs; a node type without an answer cannot be split."""
    raise PlanError(f"the splitter does not know where a {type(node).__name__} node runs",
                    node.span)


for _kind in (Scan, Filter, Map, Project):
    placement.register(_kind, lambda node: Placement.AGENT)
placement.register(Limit, lambda node: Placement.BOTH)
placement.register(Sort, lambda node: Placement.BROKER if node.limit is None else Placement.BOTH)
placement.register(Aggregate, lambda node: Placement.SPLIT)
for _kind in (Join, Union, Values, Sink, Exchange, SketchValues, WeightedAggregate):
    placement.register(_kind, lambda node: Placement.BROKER)


@dataclass(frozen=True)
class Fragment:
    """What every agent holding ``tables`` runs: one output, named by the fragment id."""

    id: str
    sink: Sink
    tables: frozenset[str]

    @property
    def root(self) -> Relation:
        return self.sink.input


@dataclass(frozen=True)
class DistributedPlan:
    """Agent fragments by id (in the order the broker reads them) and the broker plan."""

    agent: dict[str, Fragment] = field(hash=False)
    broker: Plan

    def agent_plan(self, tables: Iterable[str] | None = None) -> Plan | None:
        """The fragments an agent holding ``tables`` can answer (all if None) as one plan, so
        shared parts run once; None if it holds none (then it is not asked)."""
        held = None if tables is None else set(tables)
        sinks = tuple(f.sink for f in self.agent.values() if held is None or f.tables <= held)
        return Plan(sinks) if sinks else None


@dataclass(frozen=True)
class _Local:
    """How a node runs on the agents: ``root`` on each, then ``replay`` (limits and top-ks,
    bottom first) on the broker over their concatenated answers."""

    root: Relation
    replay: tuple[Relation, ...] = ()


def split(plan: Plan, *, exact_up_to: int = EXACT_UP_TO) -> DistributedPlan:
    """Cut an optimized plan into agent fragments and a broker plan (see the module doc).

    A quantile's group with at most ``exact_up_to`` rows on an agent ships its values
    exactly (see engine.distributed.sketch; a huge number makes every quantile exact, still at
    most one row per distinct value)."""
    splitter = _Splitter(exact_up_to)
    sinks = tuple(splitter.broker(s) for s in _through_unions(plan).sinks)
    fragments = {f.id: f for f in splitter.fragments.values()}
    return DistributedPlan(fragments, Plan(sinks))  # type: ignore[arg-type]


def _through_unions(plan: Plan) -> Plan:
    """Row-by-row steps above a union move into each of its inputs, so that they run on the
    agents (metadata lookups included) and an aggregate above can pre-aggregate each input::

        Map[service=…]                 Union[2]
          Union[2]            ──►        Map[service=…]   Scan[mysql_events]
            Scan[mysql_events]           Map[service=…]   Scan[pgsql_events]
            Scan[pgsql_events]
    """

    def visit(node: Relation) -> Relation:
        if placement(node) is Placement.AGENT and node.children \
                and isinstance(node.children[0], Union):
            union = node.children[0]
            return Union(tuple(replace_children(node, (i,)) for i in union.inputs),
                         span=union.span)
        return node

    return transform(plan, visit)


class _Splitter:
    def __init__(self, exact_up_to: int = EXACT_UP_TO) -> None:
        self.exact_up_to = exact_up_to
        self.fragments: dict[Relation, Fragment] = {}  # by the root each agent runs
        self._local: dict[Relation, _Local | None] = {}
        self._broker: dict[Relation, Relation] = {}
        self._partial: dict[tuple[Relation, Relation], Relation] = {}

    # --- the agent side
    def local(self, node: Relation) -> _Local | None:
        """How ``node`` runs on the agents, or None if the broker must run it."""
        if node not in self._local:
            self._local[node] = self._place(node)
        return self._local[node]

    def _place(self, node: Relation) -> _Local | None:
        where = placement(node)
        if where is Placement.AGENT and not node.children:
            return _Local(node)
        if where not in (Placement.AGENT, Placement.BOTH):
            return None
        below = self.local(node.children[0])
        if below is None:
            return None
        root = replace_children(node, (below.root,))
        if where is Placement.BOTH:
            # a limit keeps the first n rows of anything the broker replays; a top-k would
            # need rows an earlier limit dropped on the agents
            if isinstance(node, Sort) and below.replay:
                return None
            return _Local(root, below.replay + (node,))
        if below.replay and not _commutes(node, below.replay):
            return None
        return _Local(root, below.replay)

    # --- the broker side
    def broker(self, node: Relation) -> Relation:
        """The broker's version of ``node``: over exchanges wherever agents did the work."""
        if node not in self._broker:
            local = self.local(node)
            if local is not None:
                out = self._exchange(local)
            elif placement(node) is Placement.SPLIT:
                out = self._aggregate(node)  # type: ignore[arg-type]
            else:
                out = replace_children(node, tuple(self.broker(c) for c in node.children))
            self._broker[node] = out
        return self._broker[node]

    def _exchange(self, local: _Local) -> Relation:
        fragment = self.fragments.get(local.root)
        if fragment is None:
            fid = f"f{len(self.fragments)}"
            fragment = Fragment(fid, Sink(local.root, fid, span=local.root.span),
                                frozenset(_tables(local.root)))
            self.fragments[local.root] = fragment
        out: Relation = Exchange(fragment.id, local.root.schema, span=local.root.span)
        for step in local.replay:
            out = replace_children(step, (out,))
        return out

    def _aggregate(self, node: Aggregate) -> Relation:
        parts = self._partial_inputs(node.input)
        steps = _Steps.of(node) if parts is not None and all(
            REGISTRY.aggregate(a.fn).splittable for a in node.aggs) else None
        if steps is None or (len(steps.values) > 1 and any(a.arg is None for a in node.aggs)):
            # agents ship the rows: only the columns the aggregate reads (a count of rows
            # cannot run over the stacked values of several quantile columns)
            return replace_children(node, (self.broker(self._narrow(node)),))
        exchanges = tuple(self._exchange(_Local(self._partial_root(node, p, steps)))
                          for p in parts)
        merged_input = exchanges[0] if len(exchanges) == 1 else Union(exchanges, span=node.span)
        merged: Relation
        if steps.values:
            merged = WeightedAggregate(merged_input, node.groups, tuple(steps.merge),
                                       tuple((v, w) for v, w, _, _ in steps.values),
                                       span=node.span)
        else:
            merged = Aggregate(merged_input, node.groups, tuple(steps.merge), span=node.span)
        if steps.finalize:
            merged = Map(merged, tuple(steps.finalize), span=node.span)
            merged = Project(merged, tuple(node.schema.names), span=node.span)
        return merged

    def _narrow(self, node: Aggregate) -> Relation:
        """The aggregate's input, projected on the agents to the columns it reads."""
        reads = set(node.groups).union(*(columns_of(a) for a in node.aggs))
        names = tuple(n for n in node.input.schema.names if n in reads)
        if not names or len(names) == len(node.input.schema) or self.local(node.input) is None:
            return node.input
        return Project(node.input, names, span=node.span)

    def _partial_root(self, node: Aggregate, part: Relation, steps: _Steps) -> Relation:
        key = (node, part)
        if key not in self._partial:
            groups = node.groups
            if steps.values:  # sketched values become group keys (see engine.distributed.sketch)
                computed = tuple((source, arg) for _, _, arg, source in steps.values
                                 if not isinstance(arg, ColumnRef))
                if computed:  # an expression argument: a column first
                    part = Map(part, computed, span=node.span)
                sources = tuple((v, source) for v, _, _, source in steps.values)
                part = SketchValues(part, node.groups, sources, exact_up_to=self.exact_up_to,
                                    span=node.span)
                groups += tuple(v for v, _, _, _ in steps.values)
            self._partial[key] = Aggregate(part, groups, tuple(steps.partial), span=node.span)
        return self._partial[key]

    def _partial_inputs(self, node: Relation) -> list[Relation] | None:
        """What agents pre-aggregate: the node, or each input of a union of such nodes."""
        if isinstance(node, Union):
            parts = [self._partial_inputs(i) for i in node.inputs]
            if any(p is None for p in parts):
                return None
            return [r for p in parts for r in p]  # type: ignore[union-attr]
        local = self.local(node)
        if local is None or local.replay:
            return None
        return [local.root]


def _commutes(node: Relation, replay: tuple[Relation, ...]) -> bool:
    """Whether a row-by-row step may run on the agents below the broker's replayed limits and
    top-ks: it must keep every row (not a filter) and the top-k keys as they are."""
    keys = {k for step in replay if isinstance(step, Sort) for k in step.keys}
    if isinstance(node, Project):
        return keys <= set(node.columns)
    if isinstance(node, Map):
        return node.keep_input and not keys & {n for n, _ in node.exprs}
    return False


def _tables(node: Relation) -> set[str]:
    found: set[str] = set()
    stack, seen = [node], set()
    while stack:
        n = stack.pop()
        if id(n) in seen:
            continue
        seen.add(id(n))
        if isinstance(n, Scan):
            found.add(n.table)
        stack.extend(n.children)
    return found


@dataclass
class _Steps:
    """An aggregate's partial columns (agents), merged columns (broker) and the finalize
    expressions of the answers that are not a merged column already; for sketched aggregates
    (the quantiles), the (value column, weight column, argument, column the argument is in) of
    each distinct argument."""

    partial: list[AggCall] = field(default_factory=list)
    merge: list[AggCall] = field(default_factory=list)
    finalize: list[tuple[str, Expr]] = field(default_factory=list)
    values: list[tuple[str, str, Expr, str]] = field(default_factory=list)

    @classmethod
    def of(cls, node: Aggregate) -> _Steps:
        steps = cls()
        taken = set(node.input.schema.names) | set(node.groups) | {a.name for a in node.aggs}
        for a in node.aggs:
            fn = REGISTRY.aggregate(a.fn)
            if fn.sketch_points is not None:
                value = steps._sketched(a, taken)
                steps.merge.append(AggCall(a.name, a.fn, ColumnRef(value, _REAL), a.params,
                                           a.ctype, span=a.span))
                continue
            if fn.finalize is None:  # one step: partial and merged columns carry the answer's name
                ((_, partial_fn),), (merge_fn,) = fn.partial, fn.merge
                ptype = a.ctype if partial_fn == fn.name else _typed(partial_fn, a.arg)
                params = a.params if partial_fn == fn.name else ()
                steps.partial.append(AggCall(a.name, partial_fn, a.arg, params, ptype,
                                             span=a.span))
                steps.merge.append(AggCall(a.name, merge_fn, ColumnRef(a.name, ptype), (),
                                           a.ctype, span=a.span))
                continue
            merged = []
            for (suffix, partial_fn), merge_fn in zip(fn.partial, fn.merge, strict=True):
                name = _fresh(f"__{a.name}_{suffix}", taken)
                ptype = _typed(partial_fn, a.arg)
                mtype = _typed(merge_fn, ColumnRef(name, ptype))
                steps.partial.append(AggCall(name, partial_fn, a.arg, (), ptype, span=a.span))
                steps.merge.append(AggCall(name, merge_fn, ColumnRef(name, ptype), (), mtype,
                                           span=a.span))
                merged.append(ColumnRef(name, mtype))
            steps.finalize.append((a.name, fn.finalize(merged, a.ctype)))
        return steps

    def _sketched(self, a: AggCall, taken: set[str]) -> str:
        """The value column sketching ``a``'s argument (one per distinct argument), and on the
        agents its weight: how many rows hold the (exact or rounded) value."""
        assert a.arg is not None
        for value, _, arg, _ in self.values:
            if arg == a.arg:
                return value
        value, weight = _fresh(f"__{a.name}_v", taken), _fresh(f"__{a.name}_w", taken)
        source = a.arg.name if isinstance(a.arg, ColumnRef) else _fresh(f"{value}_x", taken)
        self.values.append((value, weight, a.arg, source))
        self.partial.append(AggCall(weight, "count", ColumnRef(value, _REAL), (), _INT,
                                    span=a.span))
        return value


_INT, _REAL = ColumnType(DataType.INT64), ColumnType(DataType.FLOAT64)


def _typed(fn: str, arg: Expr | None) -> ColumnType:
    if arg is None:  # a count of rows
        return ColumnType(DataType.INT64)
    return REGISTRY.aggregate(fn).resolve([arg.ctype])


def _fresh(name: str, taken: set[str]) -> str:
    while name in taken:
        name += "_"
    taken.add(name)
    return name

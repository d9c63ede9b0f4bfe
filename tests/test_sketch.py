"""Quantile sketches (engine/distributed/sketch.py): agents ship (keys, value, weight) cells,
exact or rounded to 1% log buckets, and the broker answers px.quantile / px.quantiles from them.

- Buckets: every rounded value is within 1% of the value, rounding keeps the order, zero and
  non-finite values stay.
- Hypothesis: random tables (lognormal, mixed-sign, integer, repeated values, nulls, groups of
  nulls only) dealt to 1–5 agents; the split answer lies within the stated bound — ±1%
  (relative) of a value between the exact order statistics at ranks ⌊q(n−1)⌋ and ⌈q(n−1)⌉ —
  and equals the whole plan's answer exactly when the agents shipped exact values. Counts,
  means, maxima alongside are exact; groups come in the whole plan's order.
- Size: many groups ship at most the rows; few groups with many rows ship a few hundred rows
  per group.
"""

from __future__ import annotations

import math
import os

import msgpack
import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

import pxl
from engine.catalog import MemoryCatalog
from engine.distributed import decode, encode, run_broker, run_distributed, run_fragments, split
from engine.distributed.sketch import ACCURACY, EXACT_UP_TO, SketchValues, bucket
from engine.errors import PlanError
from engine.executor import execute
from engine.exprs import AggCall, Call, ColumnRef, Literal
from engine.relations import Aggregate, Map, Plan, Scan, Sink
from engine.types import QUANTILE_KEYS, QUANTILE_VALUES, ColumnType, DataType

NOW = 1_795_521_600_000_000_000
SETTINGS = settings(max_examples=int(os.environ.get("PXL_SPLIT_EXAMPLES", "100")), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
HUGE = 2**40  # exact_up_to: every group ships exact values
INT, REAL = ColumnType(DataType.INT64), ColumnType(DataType.FLOAT64)


# ------------------------------------------------------------------------------------------------
# Buckets


@settings(max_examples=300, deadline=None)
@given(st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=1, max_size=50))
def test_buckets_are_within_the_accuracy_and_keep_the_order(values):
    x = pl.Series("x", sorted(values), dtype=pl.Float64)
    rounded = pl.DataFrame({"x": x}).select(bucket(pl.col("x")))["x"]
    for v, r in zip(x.to_list(), rounded.to_list(), strict=True):
        assert abs(r - v) <= ACCURACY * abs(v) * (1 + 1e-9), (v, r)
        if v == 0 or abs(v) < 1e-300 or abs(v) > 1e300:
            assert r == v
    assert rounded.to_list() == sorted(rounded.to_list())  # monotone


def test_special_values_stay_exact():
    x = [0.0, -0.0, math.inf, -math.inf, 1e-310, 5e-324, 1.7e308, None]
    out = pl.DataFrame({"x": x}, schema={"x": pl.Float64}).select(bucket(pl.col("x")))["x"]
    assert out.to_list() == x
    nan = pl.DataFrame({"x": [math.nan]}).select(bucket(pl.col("x")))["x"][0]
    assert math.isnan(nan)


# ------------------------------------------------------------------------------------------------
# Split answers within the bound


def deal(frame: pl.DataFrame, owner: np.ndarray, agents: int) -> list[pl.DataFrame]:
    return [frame.filter(pl.Series(owner == i)) for i in range(agents)]


def catalogs(parts: list[pl.DataFrame]) -> tuple[list[MemoryCatalog], MemoryCatalog]:
    cats = []
    for part in parts:
        cat = MemoryCatalog()
        cat.add("t", part)
        cats.append(cat)
    whole = MemoryCatalog()
    whole.add("t", pl.concat(parts))
    return cats, whole


def values(rng: np.random.Generator, kind: str, n: int) -> np.ndarray:
    if kind == "lognormal":  # latencies in ns
        return rng.lognormal(rng.uniform(0, 20), rng.uniform(0.1, 3), n)
    if kind == "mixed":  # both signs, zeros, a wide range
        out = rng.normal(0, 10.0 ** rng.integers(-3, 6), n) * rng.lognormal(0, 2, n)
        out[rng.random(n) < 0.05] = 0.0
        return out
    if kind == "ints":
        return rng.integers(-1000, 10**6, n).astype(np.float64)
    return rng.choice(rng.normal(0, 100, 5), n)  # few repeated values


@st.composite
def tables(draw):
    """A table t(k, x, y): group keys (some null), a float column x with some nulls and a
    group whose x is null throughout, an integer column y."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    rows = draw(st.sampled_from([0, 1, 5, 60, 400, 3000]))
    groups = draw(st.integers(1, 6))
    kind = draw(st.sampled_from(["lognormal", "mixed", "ints", "repeated"]))
    missing = rng.random(rows) < draw(st.sampled_from([0.0, 0.1, 0.6]))
    frame = pl.DataFrame({"k": rng.integers(0, groups, rows).astype(str),
                          "x": values(rng, kind, rows), "missing": missing,
                          "y": rng.integers(0, 50, rows)}, schema_overrides={"k": pl.String})
    frame = frame.select(
        pl.when(pl.col("k") != "0").then(pl.col("k")).alias("k"),  # group "0": a null key
        pl.when(pl.col("missing") | (pl.col("k") == "1")).then(None).otherwise(pl.col("x"))
        .alias("x"),  # group "1": only nulls
        pl.col("y"))
    return frame, rng


def exact_points(frame: pl.DataFrame, keys: list[str], q: float, col: str = "x"
                 ) -> list[tuple[float, float] | None]:
    """Per group (first-appearance order): the exact order statistics at ranks ⌊p⌋ and ⌈p⌉,
    p = q(n−1), of the column's non-null values; None for a group without values."""
    values = pl.col(col).drop_nulls().cast(pl.Float64).sort()
    if keys:
        lists = frame.group_by(keys, maintain_order=True).agg(values)
    else:
        lists = frame.select(values.implode())
    out = []
    for xs in lists[col].to_list():
        if not xs:
            out.append(None)
            continue
        p = q * (len(xs) - 1)
        out.append((xs[math.floor(p)], xs[math.ceil(p)]))
    return out


def within_bound(got: float | None, points: tuple[float, float] | None) -> bool:
    """The stated error: within ±α (relative) of a value between the two order statistics."""
    if points is None:
        return got is None
    lo, hi = points
    slack = 1e-9 * max(abs(lo), abs(hi))
    low, high = lo - ACCURACY * abs(lo) - slack, hi + ACCURACY * abs(hi) + slack
    return got is not None and low <= got <= high


QS = st.sampled_from([0.0, 0.01, 0.25, 0.5, 0.9, 0.99, 1.0]) | st.floats(0, 1)


@SETTINGS
@given(tables(), st.integers(1, 5), QS, st.sampled_from([0, 8, EXACT_UP_TO, HUGE]),
       st.booleans(), st.booleans())
def test_split_quantiles_are_within_the_stated_bound(case, agents, q, exact_up_to, grouped,
                                                     second):
    frame, rng = case
    parts = deal(frame, rng.integers(0, agents, frame.height), agents)
    cats, whole = catalogs(parts)
    keys = ["k"] if grouped else []
    by = "df.groupby('k')" if grouped else "df"
    extra = ", py=('y', px.quantile, 0.5)" if second else ""
    source = ("import px\n"
              "df = px.DataFrame('t')\n"
              f"df = {by}.agg(p=('x', px.quantile, {q!r}), qs=('x', px.quantiles),\n"
              f"    n=('x', px.count), m=('x', px.mean), top=('y', px.max){extra})\n"
              "px.display(df)\n")
    plan = pxl.compile(source, whole, now=NOW)
    dplan = split(plan, exact_up_to=exact_up_to)
    answers = run_fragments(dplan, cats)
    got = run_broker(dplan, answers)[0]
    want = execute(plan, whole)[0]
    assert got.schema == want.schema
    g, w = got.frame, want.frame
    assert g.schema == w.schema
    # rows shipped: at most one per distinct (keys, value) of each quantile column
    shipped = [t.num_rows for t in answers["f0"]]
    assert all(s <= p.height * (2 if second else 1) for s, p in zip(shipped, parts, strict=True))
    if exact_up_to == HUGE or all(p.height <= exact_up_to for p in parts):
        assert_frame_equal(g, w, check_exact=False, rel_tol=1e-9, abs_tol=1e-12)
        return
    same = [*keys, "n", "m", "top"]
    assert_frame_equal(g.select(same), w.select(same), check_exact=False, rel_tol=1e-9)
    rows = pl.concat(parts)
    answers = [(g["p"], q, "x")] + ([(g["py"], 0.5, "y")] if second else [])
    fields = g["qs"].struct.unnest()
    answers += [(fields[k], qq, "x") for k, qq in zip(QUANTILE_KEYS, QUANTILE_VALUES, strict=True)]
    for answer, qq, col in answers:
        for got_, points in zip(answer.to_list(), exact_points(rows, keys, qq, col), strict=True):
            assert within_bound(got_, points), (answer.name, qq, got_, points)


def test_special_values_and_null_groups_answer_exactly():
    """Small groups ship exact values: NaN, infinities, -0.0 and null-only groups answer as the
    whole plan does."""
    frame = pl.DataFrame({
        "k": ["a", "a", "b", "b", "c", None, "a", "b", None, "d"],
        "x": [math.inf, 1.0, math.nan, 2.0, None, -math.inf, 3.0, -0.0, 5.0, None],
    })
    parts = deal(frame, np.array([0, 1, 2, 0, 1, 2, 0, 1, 2, 0]), 3)
    cats, whole = catalogs(parts)
    for q in (0.0, 0.3, 0.5, 1.0):
        source = ("import px\n"
                  f"df = px.DataFrame('t').groupby('k').agg(p=('x', px.quantile, {q}),\n"
                  "    qs=('x', px.quantiles), n=('x', px.count))\n"
                  "px.display(df)\n")
        plan = pxl.compile(source, whole, now=NOW)
        assert_frame_equal(run_distributed(plan, cats)[0].frame, execute(plan, whole)[0].frame)
    got = run_distributed(plan, cats)[0].frame
    assert got.filter(pl.col("k") == "c")["p"].to_list() == [None]  # nulls only: null
    assert got.filter(pl.col("k") == "d")["qs"].struct.unnest().row(0) == (None,) * 7


def assert_same_within_sketch(got: pl.DataFrame, want: pl.DataFrame, source: str) -> None:
    """A split answer with quantiles of positive values (latencies) against the whole plan's:
    the same rows and columns, numbers within the sketch's 1% (exact for the rest), rows in
    either order (sorted by the columns that are not floats)."""
    assert got.schema == want.schema and got.height == want.height, source
    floats = [c for c, t in want.schema.items() if t == pl.Float64 or isinstance(t, pl.Struct)]
    keys = [c for c in want.columns if c not in floats]
    if keys:
        got, want = (f.sort(keys, nulls_last=True, maintain_order=True) for f in (got, want))
    assert got.select(keys).equals(want.select(keys)), source
    for c in floats:
        g, w = got[c], want[c]
        if isinstance(w.dtype, pl.Struct):
            g, w = g.struct.unnest(), w.struct.unnest()
        try:
            assert_frame_equal(pl.DataFrame(g), pl.DataFrame(w), check_exact=False,
                               rel_tol=ACCURACY * (1 + 1e-6), abs_tol=1e-9)
        except AssertionError as exc:
            raise AssertionError(f"{source}: column {c}: {exc}") from None


# ------------------------------------------------------------------------------------------------
# Size


def latencies(agents: int, rows: int, groups: int, seed: int = 7) -> list[pl.DataFrame]:
    rng = np.random.default_rng(seed)
    return [pl.DataFrame({
        "service": rng.integers(0, groups, rows).astype(str),
        "latency": rng.lognormal(math.log(2e6), 1.0, rows).astype(np.int64),  # ns, ~2 ms
    }) for _ in range(agents)]


QUERY = ("import px\n"
         "df = px.DataFrame('t')\n"
         "df = df.groupby('service').agg(p99=('latency', px.quantile, 0.99),\n"
         "    lat=('latency', px.quantiles), n=('latency', px.count), avg=('latency', px.mean))\n"
         "px.display(df)\n")


def test_few_groups_with_many_rows_ship_a_sketch():
    """200k lognormal latencies over 4 agents in 10 groups: a few hundred rows per group and
    agent (measured: 11.5k in all), p99 and every px.quantiles point within 1% of the exact
    answer (all values are positive, so the bound is relative to the exact answer)."""
    groups, agents = 10, 4
    parts = latencies(agents, 50_000, groups)
    cats, whole = catalogs(parts)
    plan = pxl.compile(QUERY, whole, now=NOW)
    dplan = split(plan)
    answers = run_fragments(dplan, cats)
    shipped = sum(t.num_rows for t in answers["f0"])
    assert shipped <= groups * 2000, shipped
    got, want = run_broker(dplan, answers)[0], execute(plan, whole)[0]
    assert got.schema == want.schema
    g, w = got.frame, want.frame
    assert g["service"].to_list() == w["service"].to_list()
    assert g["n"].to_list() == w["n"].to_list()
    assert_frame_equal(g.select("avg"), w.select("avg"), check_exact=False, rel_tol=1e-9)
    rel = ((g["p99"] / w["p99"]) - 1).abs().max()
    assert rel <= ACCURACY
    for key in QUANTILE_KEYS:
        a, b = g["lat"].struct.field(key), w["lat"].struct.field(key)
        assert ((a / b) - 1).abs().max() <= ACCURACY, key


def test_many_groups_ship_at_most_the_rows():
    """15k groups over 3 agents of 40k rows: every group ships its exact values (at most one row
    per distinct (group, value), never more than the rows) and the answer is exact."""
    parts = latencies(3, 40_000, 15_000, seed=3)
    cats, whole = catalogs(parts)
    plan = pxl.compile(QUERY, whole, now=NOW)
    dplan = split(plan)
    answers = run_fragments(dplan, cats)
    for table, part in zip(answers["f0"], parts, strict=True):
        assert table.num_rows <= part.height
    assert_frame_equal(run_broker(dplan, answers)[0].frame, execute(plan, whole)[0].frame,
                       check_exact=False, rel_tol=1e-9)


def test_quantiles_of_several_columns_do_not_cross():
    """Two quantile columns: agents stack their values (one set of rows each) rather than
    grouping by both, so few groups still ship few rows."""
    rng = np.random.default_rng(5)
    parts = [pl.DataFrame({"k": rng.integers(0, 3, 30_000), "a": rng.lognormal(5, 1, 30_000),
                           "b": rng.integers(0, 10**6, 30_000)}) for _ in range(2)]
    cats, whole = catalogs(parts)
    source = ("import px\n"
              "df = px.DataFrame('t').groupby('k').agg(pa=('a', px.quantile, 0.9),\n"
              "    pb=('b', px.quantile, 0.5), qa=('a', px.quantiles), n=('b', px.count))\n"
              "px.display(df)\n")
    plan = pxl.compile(source, whole, now=NOW)
    dplan = split(plan)
    (fragment,) = dplan.agent.values()
    assert isinstance(fragment.root, Aggregate) and isinstance(fragment.root.input, SketchValues)
    answers = run_fragments(dplan, cats)
    assert sum(t.num_rows for t in answers["f0"]) <= 2 * 3 * 2 * 1000
    g, w = run_broker(dplan, answers)[0].frame, execute(plan, whole)[0].frame
    assert g["n"].to_list() == w["n"].to_list()
    for col in ("pa", "pb"):
        assert ((g[col] / w[col]) - 1).abs().max() <= ACCURACY


def test_a_computed_argument_is_computed_on_the_agents():
    """An aggregate's argument may be an expression (the optimizer rewrites arguments): the
    agents compute it into a column first. Two quantile columns beside a count of rows: the
    rows are shipped (a count of rows cannot run over stacked values)."""
    rng = np.random.default_rng(9)
    parts = [pl.DataFrame({"k": rng.integers(0, 3, 400), "lat": rng.integers(1, 10**6, 400),
                           "b": rng.random(400)}) for _ in range(3)]
    cats, whole = catalogs(parts)
    scan = Scan("t", whole.schema("t"))
    lat, b = ColumnRef("lat", INT), ColumnRef("b", REAL)
    doubled = Call("multiply", (lat, Literal(2, INT)), INT)
    node = Aggregate(scan, ("k",), (AggCall("p", "quantile", doubled, (0.9,), REAL),
                                    AggCall("n", "count", lat, (), INT)))
    plan = Plan((Sink(node, "out"),))
    dplan = split(plan, exact_up_to=0)
    root = dplan.agent["f0"].root
    assert isinstance(root.input, SketchValues) and isinstance(root.input.input, Map)
    g, w = run_distributed(plan, cats)[0].frame, execute(plan, whole)[0].frame
    assert g["n"].to_list() == w["n"].to_list()
    assert ((g["p"] / w["p"]) - 1).abs().max() <= ACCURACY
    rows = Aggregate(scan, ("k",), (AggCall("p", "quantile", lat, (0.9,), REAL),
                                    AggCall("q", "quantile", b, (0.5,), REAL),
                                    AggCall("n", "count", None, (), INT)))
    plan = Plan((Sink(rows, "out"),))
    assert not isinstance(split(plan).agent["f0"].root, Aggregate)
    assert_frame_equal(run_distributed(plan, cats)[0].frame, execute(plan, whole)[0].frame)


# ------------------------------------------------------------------------------------------------
# The wire


def _payload(exact_up_to: int = EXACT_UP_TO) -> dict:
    cat = MemoryCatalog()
    cat.add("t", pl.DataFrame({"k": ["a"], "x": [1.5]}))
    plan = pxl.compile("import px\npx.display(px.DataFrame('t').groupby('k').agg("
                       "p=('x', px.quantile, 0.5)))\n", cat, now=NOW)
    dplan = split(plan, exact_up_to=exact_up_to)
    return {"agent": msgpack.unpackb(encode(dplan.agent_plan())),
            "broker": msgpack.unpackb(encode(dplan.broker))}


def test_sketch_nodes_travel_and_decode_checks_them():
    payloads = _payload(7)
    agent = decode(msgpack.packb(payloads["agent"]))
    assert agent.sinks[0].input.input.exact_up_to == 7
    rows = {row[0]: row for row in payloads["agent"]["nodes"] + payloads["broker"]["nodes"]}
    assert set(rows) >= {"SketchValues", "WeightedAggregate"}
    bad = [("SketchValues", 5, 1.5, "accuracy"), ("SketchValues", 5, 1, "not a float"),
           ("SketchValues", 6, -1, "exact_up_to"), ("SketchValues", 4, [["__p_v", "nope"]],
                                                   "no column 'nope'"),
           ("WeightedAggregate", 5, [], "weighted value"),
           ("WeightedAggregate", 5, [["__p_v", "k"]], "INT64")]
    for kind, field, value, message in bad:
        side = "agent" if kind == "SketchValues" else "broker"
        payload = _payload()[side]
        for row in payload["nodes"]:
            if row[0] == kind:
                row[field] = value
        with pytest.raises(PlanError, match=message):
            decode(msgpack.packb(payload))
    # a weighted aggregate whose quantile reads an unweighted column
    payload = _payload()["broker"]
    for row in payload["nodes"]:
        if row[0] == "WeightedAggregate":
            row[4][0][2][1] = "k"
            row[4][0][2][2] = ["FLOAT64", "none"]
    with pytest.raises(PlanError, match="needs weighted values"):
        decode(msgpack.packb(payload))

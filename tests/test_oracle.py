"""Differential tests: random PxL pipelines against an independent Polars oracle.

Hypothesis draws a table (int64 columns with negatives, a float column, a low-cardinality string
column, a bool column, 0–60 rows, nulls in some columns) and a pipeline of 1–6 steps. Each step
is rendered twice: as PxL text, run through ``pxl.run``, and as an oracle step written here
directly against Polars' eager API (it never touches engine/executor.py). Row orders are the ones
PxL defines: groupby in first appearance, stable sorts with nulls last, merges in left order.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

import pxl
from engine.executor import execute

NOW = 1_795_521_600_000_000_000

PL_TYPES = {"int": pl.Int64, "float": pl.Float64, "str": pl.String, "bool": pl.Boolean}
STRINGS = ["x", "y", "zz", "", "é", "Z"]
ELEMENTS: dict[str, st.SearchStrategy] = {
    "a": st.integers(-3, 3),
    "b": st.integers(-1000, 1000),
    "c": st.integers(-20, 20),
    "f": st.integers(-400, 400).map(lambda k: k / 4),  # dyadic: sums are exact
    "s": st.sampled_from(STRINGS),
    "t": st.booleans(),
}
BASE = {"a": "int", "b": "int", "c": "int", "f": "float", "s": "str", "t": "bool"}

#: PXL_ORACLE_EXAMPLES=5000 for a long run
SETTINGS = settings(max_examples=int(os.environ.get("PXL_ORACLE_EXAMPLES", "150")), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# ------------------------------------------------------------------------------------------------
# Tables


def table(draw, columns: dict[str, str], n: int) -> pl.DataFrame:
    data = {}
    for name in columns:
        elem = ELEMENTS[name]
        if draw(st.booleans()):
            elem = st.one_of(st.none(), elem)
        data[name] = draw(st.lists(elem, min_size=n, max_size=n))
    return pl.DataFrame(data, schema={n_: PL_TYPES[k] for n_, k in columns.items()})


def run_pxl(source: str, tables: dict[str, pl.DataFrame]) -> pl.DataFrame:
    try:
        res = pxl.run(source, tables=tables, now=NOW)
    except pxl.PxlError as exc:
        raise AssertionError(f"{exc}\n--- script ---\n{source}") from exc
    assert list(res) == ["output"]
    return res["output"]


def assert_same(got: pl.DataFrame, want: pl.DataFrame, source: str) -> None:
    try:
        assert_frame_equal(got, want, check_dtypes=True, check_exact=False, rel_tol=1e-9,
                           abs_tol=1e-9)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n--- script ---\n{source}\n--- got ---\n{got}\n"
                             f"--- want ---\n{want}") from None


# ------------------------------------------------------------------------------------------------
# Expressions: a tiny AST rendered both as PxL text and as a Polars expression.
#   ("col", name) ("lit", value) ("neg", e) ("arith", op, l, r) ("cmp", op, l, r)
#   ("and", l, r) ("or", l, r) ("not", e)


def kind_of(e: tuple, schema: dict[str, str]) -> str:
    tag = e[0]
    if tag == "col":
        return schema[e[1]]
    if tag == "lit":
        v = e[1]
        return ("bool" if isinstance(v, bool) else "int" if isinstance(v, int)
                else "float" if isinstance(v, float) else "str")
    if tag == "neg":
        return kind_of(e[1], schema)
    if tag == "arith":
        op, lk, rk = e[1], kind_of(e[2], schema), kind_of(e[3], schema)
        if op == "/":
            return "float"
        if lk == "str":
            return "str"
        return "float" if "float" in (lk, rk) else "int"
    return "bool"


def pxl_text(e: tuple) -> str:
    tag = e[0]
    if tag == "col":
        return f"df.{e[1]}"
    if tag == "lit":
        v = e[1]
        text = repr(v)
        return f"({text})" if isinstance(v, int | float) and not isinstance(v, bool) and v < 0 \
            else text
    if tag == "neg":
        return f"(-{pxl_text(e[1])})"
    if tag in ("arith", "cmp"):
        return f"({pxl_text(e[2])} {e[1]} {pxl_text(e[3])})"
    if tag in ("and", "or"):
        return f"({pxl_text(e[1])} {tag} {pxl_text(e[2])})"
    if tag == "not":
        return f"(not {pxl_text(e[1])})"
    raise AssertionError(e)


_OPS: dict[str, Callable[[Any, Any], Any]] = {
    "+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b,
    "/": lambda a, b: a / b,  # Polars' true division: Float64 even for two ints
    "==": lambda a, b: a == b, "!=": lambda a, b: a != b, "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b,
}


def polars_expr(e: tuple) -> Any:
    """The oracle's expression (literals stay plain Python values, as Polars allows)."""
    tag = e[0]
    if tag == "col":
        return pl.col(e[1])
    if tag == "lit":
        return e[1]
    if tag == "neg":
        return -polars_expr(e[1])
    if tag in ("arith", "cmp"):
        return _OPS[e[1]](polars_expr(e[2]), polars_expr(e[3]))
    if tag == "and":
        return polars_expr(e[1]) & polars_expr(e[2])
    if tag == "or":
        return polars_expr(e[1]) | polars_expr(e[2])
    if tag == "not":
        return ~polars_expr(e[1])
    raise AssertionError(e)


def evaluate(e: tuple, df: pl.DataFrame, kind: str) -> pl.Series:
    if e[0] == "lit":  # a constant column
        return pl.Series([e[1]] * df.height, dtype=PL_TYPES[kind])
    return df.select(polars_expr(e).alias("__v")).to_series()


def literal_for(draw, kind: str) -> Any:
    if kind == "int":
        return draw(st.integers(-25, 25))
    if kind == "float":
        return draw(st.integers(-100, 100).map(lambda k: k / 4))
    if kind == "str":
        return draw(st.sampled_from(STRINGS + ["m"]))
    return draw(st.booleans())


def numeric_expr(draw, schema: dict[str, str], depth: int) -> tuple:
    """An arithmetic expression that reads at least one numeric column."""
    nums = [c for c, k in schema.items() if k in ("int", "float")]
    choice = draw(st.integers(0, 4)) if depth > 0 else 0
    if choice <= 1:
        return ("col", draw(st.sampled_from(nums)))
    if choice == 2:
        return ("neg", numeric_expr(draw, schema, depth - 1))
    op = draw(st.sampled_from(["+", "-", "*", "/"]))
    left = numeric_expr(draw, schema, depth - 1)
    if draw(st.booleans()):
        right = numeric_expr(draw, schema, depth - 1)
    else:
        right = ("lit", literal_for(draw, draw(st.sampled_from(["int", "float"]))))
    if draw(st.booleans()):
        left, right = right, left
    return ("arith", op, left, right)


def atom_condition(draw, schema: dict[str, str]) -> tuple:
    nums = [c for c, k in schema.items() if k in ("int", "float")]
    options = []
    if nums:
        options += ["num_lit", "num_lit", "num_col", "expr_lit"]
    if any(k == "str" for k in schema.values()):
        options.append("str")
    if any(k == "bool" for k in schema.values()):
        options += ["bool_col", "bool_cmp"]
    what = draw(st.sampled_from(options))
    ops = ["==", "!=", "<", "<=", ">", ">="]
    if what == "num_lit":
        col = draw(st.sampled_from(nums))
        lit = literal_for(draw, draw(st.sampled_from(["int", schema[col]])))
        return ("cmp", draw(st.sampled_from(ops)), ("col", col), ("lit", lit))
    if what == "num_col":
        return ("cmp", draw(st.sampled_from(ops)), ("col", draw(st.sampled_from(nums))),
                ("col", draw(st.sampled_from(nums))))
    if what == "expr_lit":
        return ("cmp", draw(st.sampled_from(ops)), numeric_expr(draw, schema, 1),
                ("lit", literal_for(draw, "int")))
    if what == "str":
        col = draw(st.sampled_from([c for c, k in schema.items() if k == "str"]))
        return ("cmp", draw(st.sampled_from(ops)), ("col", col), ("lit", literal_for(draw, "str")))
    bcol = draw(st.sampled_from([c for c, k in schema.items() if k == "bool"]))
    if what == "bool_col":
        return ("col", bcol)
    return ("cmp", draw(st.sampled_from(["==", "!="])), ("col", bcol), ("lit", draw(st.booleans())))


def condition(draw, schema: dict[str, str], depth: int) -> tuple:
    choice = draw(st.integers(0, 5)) if depth > 0 else 0
    if choice <= 2:
        return atom_condition(draw, schema)
    if choice == 3:
        return ("not", condition(draw, schema, depth - 1))
    return (draw(st.sampled_from(["and", "or"])), condition(draw, schema, depth - 1),
            condition(draw, schema, depth - 1))


# ------------------------------------------------------------------------------------------------
# Pipeline steps


@dataclass
class Step:
    pxl: str  # one or more lines of PxL over the name ``df``
    oracle: Callable[[pl.DataFrame], pl.DataFrame]


class Names:
    def __init__(self) -> None:
        self.n = 0

    def fresh(self, prefix: str) -> str:
        self.n += 1
        return f"{prefix}{self.n}"


def step_filter(draw, schema, names) -> Step:
    cond = condition(draw, schema, 2)

    def oracle(df: pl.DataFrame) -> pl.DataFrame:
        mask = df.select(polars_expr(cond).alias("__m")).to_series()
        return df.filter(mask.fill_null(False))

    return Step(f"df = df[{pxl_text(cond)}]", oracle)


def step_assign(draw, schema, names) -> Step:
    nums = [c for c, k in schema.items() if k in ("int", "float")]
    options = ["const", "cond"] + (["num", "num", "num"] if nums else [])
    if any(k == "str" for k in schema.values()):
        options.append("concat")
    what = draw(st.sampled_from(options))
    if what == "num":
        expr = numeric_expr(draw, schema, 2)
    elif what == "cond":
        expr = condition(draw, schema, 1)
    elif what == "concat":
        col = ("col", draw(st.sampled_from([c for c, k in schema.items() if k == "str"])))
        lit = ("lit", draw(st.sampled_from(["_", "q"])))
        expr = ("arith", "+", *((col, lit) if draw(st.booleans()) else (lit, col)))
    else:
        expr = ("lit", literal_for(draw, draw(st.sampled_from(list(PL_TYPES)))))
    kind = kind_of(expr, schema)
    target = draw(st.sampled_from([names.fresh("x"), *schema]))
    text = pxl_text(expr)
    if text.startswith("(") and text.endswith(")") and draw(st.booleans()):
        text = text[1:-1]  # the outer parentheses are optional

    def oracle(df: pl.DataFrame) -> pl.DataFrame:
        values = evaluate(expr, df, kind).alias(target)
        if target in df.columns:
            return df.clone().replace_column(df.columns.index(target), values)  # (in place)
        return df.hstack([values])

    schema[target] = kind
    return Step(f"df.{target} = {text}", oracle)


def step_project(draw, schema, names) -> Step:
    cols = draw(st.permutations(list(schema)))[:draw(st.integers(1, len(schema)))]
    for c in list(schema):
        if c not in cols:
            del schema[c]
    reordered = {c: schema[c] for c in cols}
    schema.clear()
    schema.update(reordered)
    return Step(f"df = df[{list(cols)!r}]", lambda df: df.select(list(cols)))


def step_drop(draw, schema, names) -> Step:
    cols = draw(st.permutations(list(schema)))[:draw(st.integers(1, len(schema) - 1))]
    for c in cols:
        del schema[c]
    arg = repr(cols[0]) if len(cols) == 1 and draw(st.booleans()) else repr(list(cols))
    return Step(f"df = df.drop({arg})", lambda df: df.drop(list(cols)))


AGG_FNS = {
    "count": ("int", "float", "str", "bool"), "sum": ("int", "float"), "mean": ("int", "float"),
    "min": ("int", "float", "str", "bool"), "max": ("int", "float", "str", "bool"),
    "quantile": ("int", "float"),
}


def agg_kind(fn: str, kind: str) -> str:
    if fn == "count":
        return "int"
    if fn in ("mean", "quantile"):
        return "float"
    return kind


def agg_value(s: pl.Series, fn: str, q: float | None) -> Any:
    if fn == "count":
        return s.len() - s.null_count()
    if fn == "sum":
        return s.sum()
    if fn == "mean":
        return s.cast(pl.Float64).mean()
    if fn == "min":
        return s.min()
    if fn == "max":
        return s.max()
    return s.cast(pl.Float64).quantile(q, interpolation="linear")


def draw_aggs(draw, schema, names) -> list[tuple[str, str, str, float | None]]:
    aggs = []
    for _ in range(draw(st.integers(1, 3))):
        col = draw(st.sampled_from(list(schema)))
        fn = draw(st.sampled_from([f for f, kinds in AGG_FNS.items() if schema[col] in kinds]))
        q = draw(st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.75, 0.99, 1.0])) if fn == "quantile" \
            else None
        name = names.fresh("g")
        aggs.append((name, col, fn, q))
    return aggs


def agg_text(aggs) -> str:
    parts = []
    for name, col, fn, q in aggs:
        extra = f", {q!r}" if q is not None else ""
        parts.append(f"{name}=({col!r}, px.{fn}{extra})")
    return ", ".join(parts)


def aggregate_oracle(df: pl.DataFrame, keys: list[str], aggs, in_schema: dict[str, str]
                     ) -> pl.DataFrame:
    """Group rows by key values in order of first appearance (nulls form a group)."""
    groups: dict[tuple, list[int]] = {}
    if keys:
        for i, key in enumerate(df.select(keys).rows()):
            groups.setdefault(key, []).append(i)
    else:
        groups[()] = list(range(df.height))
    out: dict[str, list] = {k: [] for k in keys} | {a[0]: [] for a in aggs}
    for key, rows in groups.items():
        sub = df[rows] if rows else df.clear()
        for k, v in zip(keys, key, strict=True):
            out[k].append(v)
        for name, col, fn, q in aggs:
            out[name].append(agg_value(sub[col], fn, q))
    schema = {k: PL_TYPES[in_schema[k]] for k in keys}
    schema |= {name: PL_TYPES[agg_kind(fn, in_schema[col])] for name, col, fn, q in aggs}
    return pl.DataFrame(out, schema=schema)


def step_groupby(draw, schema, names) -> Step:
    keyable = [c for c, k in schema.items() if k != "float"]
    keys = draw(st.permutations(keyable))[:draw(st.integers(1, min(2, len(keyable))))]
    aggs = draw_aggs(draw, schema, names)
    before = dict(schema)
    schema.clear()
    schema.update({k: before[k] for k in keys})
    schema.update({name: agg_kind(fn, before[col]) for name, col, fn, q in aggs})
    by = repr(keys[0]) if len(keys) == 1 and draw(st.booleans()) else repr(list(keys))
    return Step(f"df = df.groupby({by}).agg({agg_text(aggs)})",
                lambda df: aggregate_oracle(df, list(keys), aggs, before))


def step_agg(draw, schema, names) -> Step:
    aggs = draw_aggs(draw, schema, names)
    before = dict(schema)
    schema.clear()
    schema.update({name: agg_kind(fn, before[col]) for name, col, fn, q in aggs})
    return Step(f"df = df.agg({agg_text(aggs)})", lambda df: aggregate_oracle(df, [], aggs, before))


def sort_key(value: Any, descending: bool) -> tuple:
    """Nulls last either way; NaN above every number (as Polars orders floats)."""
    is_null = value is None
    is_nan = isinstance(value, float) and math.isnan(value)
    plain = 0 if is_null or is_nan else value
    if descending:  # used with reverse=True
        return (not is_null, is_nan, plain)
    return (is_null, is_nan, plain)


def sort_oracle(df: pl.DataFrame, keys: list[str], descending: list[bool]) -> pl.DataFrame:
    if df.height == 0:
        return df
    order = list(range(df.height))
    for key, desc in reversed(list(zip(keys, descending, strict=True))):
        values = df[key].to_list()
        order = sorted(order, key=lambda i: sort_key(values[i], desc), reverse=desc)  # stable
    return df[order]


def step_sort(draw, schema, names) -> Step:
    keys = draw(st.permutations(list(schema)))[:draw(st.integers(1, min(2, len(schema))))]
    style = draw(st.sampled_from(["default", "one", "list"]))
    if style == "default":
        asc = [True] * len(keys)
        extra = ""
    elif style == "one":
        flag = draw(st.booleans())
        asc = [flag] * len(keys)
        extra = f", ascending={flag!r}"
    else:
        asc = draw(st.lists(st.booleans(), min_size=len(keys), max_size=len(keys)))
        extra = f", ascending={asc!r}"
    by = repr(keys[0]) if len(keys) == 1 and draw(st.booleans()) else repr(list(keys))
    return Step(f"df = df.sort_values({by}{extra})",
                lambda df: sort_oracle(df, list(keys), [not a for a in asc]))


def step_head(draw, schema, names) -> Step:
    if draw(st.integers(0, 5)) == 0:
        return Step("df = df.head()", lambda df: df.slice(0, 5))
    n = draw(st.integers(0, 70))
    return Step(f"df = df.head({n})", lambda df: df.slice(0, n))


def step_append(draw, schema, names) -> Step:
    return Step("df = df.append(df)", lambda df: pl.concat([df, df], how="vertical"))


STEPS = {
    "filter": step_filter, "assign": step_assign, "project": step_project, "drop": step_drop,
    "groupby": step_groupby, "agg": step_agg, "sort": step_sort, "head": step_head,
    "append": step_append,
}


def possible(kind: str, schema: dict[str, str], appends: int) -> bool:
    if kind == "drop":
        return len(schema) > 1
    if kind == "groupby":
        return any(k != "float" for k in schema.values())
    if kind == "append":
        return appends < 3  # keeps tables small (60 rows * 8)
    return True


@st.composite
def pipelines(draw):
    schema = dict(BASE)
    df = table(draw, BASE, draw(st.integers(0, 60)))
    names = Names()
    steps: list[Step] = []
    appends = 0
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from([k for k in STEPS if possible(k, schema, appends)]))
        appends += kind == "append"
        steps.append(STEPS[kind](draw, schema, names))
    return df, steps


def script(steps: list[Step], table_name: str = "t") -> str:
    lines = ["import px", f"df = px.DataFrame({table_name!r})"]
    lines += [s.pxl for s in steps]
    lines.append("px.display(df)")
    return "\n".join(lines) + "\n"


@SETTINGS
@given(pipelines())
def test_pipeline_matches_oracle(case):
    df, steps = case
    source = script(steps)
    want = df
    for s in steps:
        want = s.oracle(want)
    got = run_pxl(source, {"t": df})
    assert_same(got, want, source)


# ------------------------------------------------------------------------------------------------
# Merge

LEFT = {"a": "int", "b": "int", "s": "str", "t": "bool", "f": "float"}
RIGHT = {"a": "int", "c": "int", "s": "str", "t": "bool", "f": "float"}
SUFFIXES = [("_x", "_y"), ("_l", "_r"), ("", "_right")]


@st.composite
def merges(draw):
    def side(columns: dict[str, str], id_name: str) -> tuple[pl.DataFrame, dict[str, str]]:
        keep = draw(st.permutations(list(columns)))[:draw(st.integers(1, len(columns)))]
        cols = {c: columns[c] for c in keep}
        n = draw(st.integers(0, 30))
        frame = table(draw, cols, n)
        frame = frame.insert_column(draw(st.integers(0, frame.width)),
                                    pl.Series(id_name, range(n), dtype=pl.Int64))
        return frame, {c: ("int" if c == id_name else cols[c]) for c in frame.columns}

    pairs = []
    for _ in range(100):
        left, lschema = side(LEFT, "lid")
        right, rschema = side(RIGHT, "rid")
        pairs = [(lc, rc) for lc, lk in lschema.items() for rc, rk in rschema.items()
                 if lk == rk and lk != "float" and lc != "lid" and rc != "rid"]
        if pairs:
            break
    if not pairs:  # pragma: no cover - practically unreachable
        left, right = pl.DataFrame({"lid": [0], "a": [1]}), pl.DataFrame({"rid": [0], "a": [1]})
        pairs = [("a", "a")]
    chosen = draw(st.permutations(pairs))[:draw(st.integers(1, min(2, len(pairs))))]
    # each column at most once per side
    keys, used_l, used_r = [], set(), set()
    for lc, rc in chosen:
        if lc not in used_l and rc not in used_r:
            keys.append((lc, rc))
            used_l.add(lc)
            used_r.add(rc)
    how = draw(st.sampled_from(["inner", "left", "right", "outer"]))
    suffixes = draw(st.sampled_from(SUFFIXES))
    select = None
    if draw(st.booleans()):  # then keep only some columns of the result
        names = merged_names(left, right, suffixes)
        select = draw(st.permutations(names))[:draw(st.integers(1, len(names)))]
    return left, right, how, keys, suffixes, select


def merged_names(left: pl.DataFrame, right: pl.DataFrame, suffixes: tuple[str, str]) -> list[str]:
    common = set(left.columns) & set(right.columns)
    return ([c + suffixes[0] if c in common else c for c in left.columns]
            + [c + suffixes[1] if c in common else c for c in right.columns])


def merge_oracle(left: pl.DataFrame, right: pl.DataFrame, how: str,
                 keys: list[tuple[str, str]], suffixes: tuple[str, str]) -> pl.DataFrame:
    """A nested-loop join; a null key equals nothing."""
    lrows, rrows = left.rows(), right.rows()
    li = [left.columns.index(lc) for lc, _ in keys]
    ri = [right.columns.index(rc) for _, rc in keys]

    def match(lr, rr) -> bool:
        return all(lr[i] is not None and rr[j] is not None and lr[i] == rr[j]
                   for i, j in zip(li, ri, strict=True))

    lnull, rnull = (None,) * left.width, (None,) * right.width
    out = []
    if how == "right":
        for rr in rrows:
            hits = [lr for lr in lrows if match(lr, rr)]
            out += [lr + rr for lr in hits] or [lnull + rr]
    else:
        matched_r = set()
        for lr in lrows:
            hits = [(j, rr) for j, rr in enumerate(rrows) if match(lr, rr)]
            matched_r.update(j for j, _ in hits)
            if hits:
                out += [lr + rr for _, rr in hits]
            elif how in ("left", "outer"):
                out.append(lr + rnull)
        if how == "outer":
            out += [lnull + rr for j, rr in enumerate(rrows) if j not in matched_r]
    names = merged_names(left, right, suffixes)
    dtypes = list(left.dtypes) + list(right.dtypes)
    return pl.DataFrame(out, schema=list(zip(names, dtypes, strict=True)), orient="row")


@SETTINGS
@given(merges())
def test_merge_matches_oracle(case):
    left, right, how, keys, suffixes, select = case
    left_on = [lc for lc, _ in keys]
    right_on = [rc for _, rc in keys]
    source = ("import px\n"
              "l = px.DataFrame('l')\n"
              "r = px.DataFrame('r')\n"
              f"df = l.merge(r, how={how!r}, left_on={left_on!r}, right_on={right_on!r}, "
              f"suffixes={list(suffixes)!r})\n"
              + (f"df = df[{list(select)!r}]\n" if select is not None else "")
              + "px.display(df)\n")
    got = run_pxl(source, {"l": left, "r": right})
    want = merge_oracle(left, right, how, keys, suffixes)
    if select is not None:
        want = want.select(list(select))
    if how in ("inner", "left") and "lid" in want.columns:  # the left frame's order is kept
        assert got["lid"].to_list() == want["lid"].to_list(), source
    if how == "right" and "rid" in want.columns:
        assert got["rid"].to_list() == want["rid"].to_list(), source
    # several matches of one row have no defined order among themselves: compare as multisets
    assert got.columns == want.columns, source
    canon = want.columns
    assert_same(got.sort(canon, nulls_last=True, maintain_order=True),
                want.sort(canon, nulls_last=True, maintain_order=True), source)


# ------------------------------------------------------------------------------------------------
# Examples of the tricky semantics


def test_merge_suffixes_apply_to_keys_too():
    left = pl.DataFrame({"k": [1, 2], "v": ["a", "b"]})
    right = pl.DataFrame({"k": [2, 1, 3], "v": ["B", "A", "C"], "w": [20, 10, 30]})
    got = run_pxl("import px\n"
                  "df = px.DataFrame('l').merge(px.DataFrame('r'), how='inner', left_on='k',\n"
                  "    right_on='k', suffixes=['_l', '_r'])\n"
                  "px.display(df)\n", {"l": left, "r": right})
    want = pl.DataFrame({"k_l": [1, 2], "v_l": ["a", "b"], "k_r": [1, 2], "v_r": ["A", "B"],
                         "w": [10, 20]})
    assert_frame_equal(got, want)


def test_merge_default_suffixes():
    left = pl.DataFrame({"k": [1], "v": [1.5]})
    right = pl.DataFrame({"key": [1], "v": [2.5]})
    got = run_pxl("import px\n"
                  "df = px.DataFrame('l').merge(px.DataFrame('r'), left_on='k', right_on='key')\n"
                  "px.display(df)\n", {"l": left, "r": right})
    assert got.columns == ["k", "v_x", "key", "v_y"]
    assert got.row(0) == (1, 1.5, 1, 2.5)


def test_left_merge_keeps_left_order_and_fills_nulls():
    left = pl.DataFrame({"id": [5, 3, 9, 1, 3, None], "n": [0, 1, 2, 3, 4, 5]})
    right = pl.DataFrame({"rk": [3, 1, 7, None], "name": ["three", "one", "seven", "none"]})
    got = run_pxl("import px\n"
                  "df = px.DataFrame('l').merge(px.DataFrame('r'), how='left', left_on='id',\n"
                  "    right_on='rk')\n"
                  "px.display(df)\n", {"l": left, "r": right})
    want = pl.DataFrame({"id": [5, 3, 9, 1, 3, None], "n": [0, 1, 2, 3, 4, 5],
                         "rk": [None, 3, None, 1, 3, None],
                         "name": [None, "three", None, "one", "three", None]})
    assert_frame_equal(got, want)


def test_sort_is_stable_with_nulls_last_both_ways():
    df = pl.DataFrame({"k": [2, None, 1, 2, None, 1, 3], "i": [0, 1, 2, 3, 4, 5, 6]})
    src = "import px\ndf = px.DataFrame('t').sort_values('k', ascending={})\npx.display(df)\n"
    asc = run_pxl(src.format("True"), {"t": df})
    assert asc["i"].to_list() == [2, 5, 0, 3, 6, 1, 4]
    desc = run_pxl(src.format("False"), {"t": df})
    assert desc["i"].to_list() == [6, 0, 3, 2, 5, 1, 4]


def test_sort_two_keys_mixed_directions():
    df = pl.DataFrame({"a": [1, 2, 1, 2, 1], "s": ["b", "a", None, "a", "c"],
                       "i": [0, 1, 2, 3, 4]})
    got = run_pxl("import px\n"
                  "df = px.DataFrame('t').sort_values(['a', 's'], ascending=[False, True])\n"
                  "px.display(df)\n", {"t": df})
    assert got["i"].to_list() == [1, 3, 0, 4, 2]


def test_count_skips_nulls_and_groups_keep_first_appearance():
    df = pl.DataFrame({"g": ["b", "a", None, "b", "a", None],
                       "v": [1, None, None, 4, None, 6]})
    got = run_pxl("import px\n"
                  "df = px.DataFrame('t').groupby('g').agg(n=('v', px.count), s=('v', px.sum),\n"
                  "    m=('v', px.mean))\n"
                  "px.display(df)\n", {"t": df})
    want = pl.DataFrame({"g": ["b", "a", None], "n": [2, 0, 1], "s": [5, 0, 6],
                         "m": [2.5, None, 6.0]},
                        schema={"g": pl.String, "n": pl.Int64, "s": pl.Int64, "m": pl.Float64})
    assert_frame_equal(got, want)


def test_mean_and_quantile_of_ints_are_floats_and_division_is_float():
    df = pl.DataFrame({"a": [1, 2, 3, 4], "b": [2, 2, 0, 3]})
    got = run_pxl("import px\n"
                  "df = px.DataFrame('t')\n"
                  "df.r = df.a / df.b\n"
                  "df = df.agg(m=('a', px.mean), q=('a', px.quantile, 0.5), n=('a', px.count),\n"
                  "    top=('r', px.max), lo=('a', px.min))\n"
                  "px.display(df)\n", {"t": df})
    want = pl.DataFrame({"m": [2.5], "q": [2.5], "n": [4], "top": [math.inf], "lo": [1]},
                        schema={"m": pl.Float64, "q": pl.Float64, "n": pl.Int64,
                                "top": pl.Float64, "lo": pl.Int64})
    assert_frame_equal(got, want)


def test_quantile_interpolates_linearly():
    df = pl.DataFrame({"a": [10, 20, 30, 40, 50]})
    got = run_pxl("import px\n"
                  "df = px.DataFrame('t').agg(p=('a', px.quantile, 0.9), z=('a', px.quantile, 0.0))\n"
                  "px.display(df)\n", {"t": df})
    assert got.row(0) == pytest.approx((46.0, 10.0))


def test_whole_frame_agg_of_no_rows():
    df = pl.DataFrame({"a": [1, 2]})
    got = run_pxl("import px\n"
                  "df = px.DataFrame('t')\n"
                  "df = df[df.a > 5]\n"
                  "df = df.agg(n=('a', px.count), s=('a', px.sum), m=('a', px.mean),\n"
                  "    lo=('a', px.min))\n"
                  "px.display(df)\n", {"t": df})
    want = pl.DataFrame({"n": [0], "s": [0], "m": [None], "lo": [None]},
                        schema={"n": pl.Int64, "s": pl.Int64, "m": pl.Float64, "lo": pl.Int64})
    assert_frame_equal(got, want)


def test_assignment_replaces_in_place_and_appends_new():
    df = pl.DataFrame({"a": [1, 2], "b": [3, 4]})
    got = run_pxl("import px\n"
                  "df = px.DataFrame('t')\n"
                  "df.c = df.a * 10\n"
                  "df.a = df.b / 2\n"
                  "px.display(df)\n", {"t": df})
    want = pl.DataFrame({"a": [1.5, 2.0], "b": [3, 4], "c": [10, 20]})
    assert_frame_equal(got, want)


@pytest.mark.parametrize("engine", ["streaming", "in-memory"])
def test_top_k_is_stable_with_nulls_last_on_both_engines(engine):
    """sort + head over many tied rows: the first rows of a stable sort, nulls last, whichever
    Polars engine runs it (each gets its own formulation)."""
    rng = np.random.default_rng(11)
    n = 60_000
    k = rng.integers(0, 4, n).astype(float)
    k[rng.random(n) < 0.2] = np.nan
    df = pl.DataFrame({"k": k, "s": rng.integers(0, 3, n), "i": np.arange(n)}).with_columns(
        pl.col("k").fill_nan(None))
    for keys, asc, head in ((["k"], "False", 25), (["k"], "True", 7), (["s", "k"], "[True, False]", 40)):
        src = (f"import px\ndf = px.DataFrame('t').sort_values({keys!r}, ascending={asc})"
               f".head({head})\npx.display(df)\n")
        plan = pxl.compile(src, pxl.make_catalog(tables={"t": df}))
        got = execute(plan, pxl.make_catalog(tables={"t": df}), engine=engine)[0].frame
        flags = [a == "True" for a in asc.strip("[]").split(", ")]
        want = df.sort(keys, descending=[not f for f in flags], nulls_last=True,
                       maintain_order=True).head(head)
        assert got["i"].to_list() == want["i"].to_list(), (keys, asc)


def _sampled_top_k_table(n: int = 50_000) -> pl.DataFrame:
    """Floats with NaN, nulls, infinities and -0.0; heavy ties; a sorted time; row numbers."""
    rng = np.random.default_rng(5)
    x = rng.normal(size=n)
    x[rng.random(n) < 0.01] = np.nan
    x[rng.random(n) < 0.01] = np.inf
    x[rng.random(n) < 0.01] = -0.0
    x[rng.random(n) < 0.01] = 0.0
    nulls = rng.random(n) < 0.05
    return pl.DataFrame({
        "x": pl.Series(x).scatter(np.flatnonzero(nulls), None),
        "tie": rng.integers(0, 3, n),
        "few": pl.Series(rng.integers(0, 1000, n)).scatter(np.arange(30, n), None),
        "time_": NOW - (n - np.arange(n)) * 1_000_000,
        "i": np.arange(n),
    }).with_columns(pl.col("time_").cast(pl.Datetime("ns")))


@pytest.mark.parametrize("keys,ascending,head,where", [
    (["x"], "False", 10, ""), (["x"], "True", 10, ""), (["x"], "False", 500, ""),
    (["tie"], "True", 12, ""), (["tie", "x"], "[False, True]", 40, ""),
    (["time_"], "False", 10, ""), (["time_"], "True", 3, ""),
    (["few"], "False", 50, ""), (["few"], "True", 5, ""),  # fewer values than kept rows
    (["x"], "False", 10, "df = df[df.tie == 1]\n"), (["x"], "True", 0, ""),
])
def test_top_k_by_a_sampled_threshold_is_the_stable_top_k(keys, ascending, head, where):
    """Over many rows the in-memory engine drops the rows ranking after the k-th best value of a
    sample before sorting: the rows are still the first of a stable sort, nulls last, NaN as
    the largest number, ties in input order."""
    from engine.executor import lowering_for

    df = _sampled_top_k_table()
    src = (f"import px\ndf = px.DataFrame('t')\n{where}"
           f"df = df.sort_values({keys!r}, ascending={ascending}).head({head})\npx.display(df)\n")
    catalog = pxl.make_catalog(tables={"t": df})
    plan = pxl.compile(src, catalog, now=NOW)
    lowering, engine = lowering_for(plan, catalog)
    assert (engine == "in-memory" and lowering.many_rows) or head == 0
    got = execute(plan, catalog)[0].frame
    flags = [a == "True" for a in ascending.strip("[]").split(", ")]
    base = df.filter(pl.col("tie") == 1) if where else df
    want = base.sort(keys, descending=[not f for f in flags], nulls_last=True,
                     maintain_order=True).head(head)
    assert got["i"].to_list() == want["i"].to_list()


def test_literals_made_once_keep_their_sign_type_and_value():
    """Typed Polars literals are made once per (Python type, value, type) and shared: -0.0 and
    0.0, 1 and True, and NaN must each still come out as themselves."""
    from engine.executor import translate
    from engine.exprs import Literal as Lit
    from engine.types import ColumnType, DataType

    def value(v, dtype):
        return pl.select(translate(Lit(v, ColumnType(dtype)), None).alias("v"))["v"]

    for _ in range(2):  # the second time from the cache
        assert math.copysign(1, value(-0.0, DataType.FLOAT64)[0]) == -1
        assert math.copysign(1, value(0.0, DataType.FLOAT64)[0]) == 1
        assert math.isnan(value(float("nan"), DataType.FLOAT64)[0])
        assert value(True, DataType.BOOLEAN).dtype == pl.Boolean
        assert value(1, DataType.INT64).dtype == pl.Int64
        assert value(1, DataType.FLOAT64).to_list() == [1.0]
        assert value(NOW, DataType.TIME64NS).dtype == pl.Datetime("ns")

"""Script arguments: px.arg declarations, command-line values, vis.json variables and widgets."""

from __future__ import annotations

import json

import polars as pl
import pytest

import pxl
from pxl.args import ArgError, load_vis
from tests.conftest import DEMO_NOW

TABLES = {"t": pl.DataFrame({"time_": [DEMO_NOW - 10**9, DEMO_NOW - 10**6],
                             "svc": ["a", "b"], "n": [1, 2]})}
SCRIPT = """import px
svc = px.arg('svc', help='The service')
limit = px.arg('limit', type=int, default=10)
ratio = px.arg('ratio', type=float, default=0.5)
on = px.arg('on', type=bool, default=True)
df = px.DataFrame('t')
df = df[df.svc == svc]
df.r = df.n * ratio
px.display(df.head(limit))
"""


def run(args=None, source=SCRIPT, **kw):
    return pxl.run(source, tables=TABLES, now=DEMO_NOW, args=args, **kw)


def test_values_defaults_and_conversion() -> None:
    out = run({"svc": "b", "ratio": "2"})["output"]
    assert out["svc"].to_list() == ["b"] and out["r"].to_list() == [4.0]


def test_a_required_argument_must_be_given() -> None:
    with pytest.raises(pxl.CompileError, match="needs the argument --svc") as e:
        run()
    assert e.value.span.line == 2 and "--svc=" in e.value.hint


def test_wrong_type_and_unknown_names_are_argument_errors() -> None:
    with pytest.raises(ArgError, match="--limit needs a whole number"):
        run({"svc": "a", "limit": "ten"})
    with pytest.raises(ArgError, match="no argument 'lmit'"):
        run({"svc": "a", "lmit": 3})


def test_cli_arguments_and_help(cli, tmp_path) -> None:
    script = tmp_path / "s.pxl"
    script.write_text(SCRIPT.replace("px.DataFrame('t')", "px.DataFrame('http_events')")
                      .replace("df.svc == svc", "df.req_method == svc")
                      .replace("df.n * ratio", "df.latency * ratio"))
    r = cli("run", str(script), "--demo", "-o", "csv", "--", "--svc=POST", "--limit", "2")
    assert r.code == 0, r.err
    assert r.out.count("\n") == 3 and "POST" in r.out
    r = cli("run", str(script), "--", "--help")
    assert r.code == 0 and "--svc" in r.out and "required" in r.out and "default 10" in r.out
    r = cli("run", str(script), "--demo", "--", "--svc=GET", "--limit=x")
    assert r.code == 2 and "whole number" in r.err and "Traceback" not in r.err


def test_vis_json_variables_and_widgets(tmp_path) -> None:
    vis = tmp_path / "s.vis.json"
    vis.write_text(json.dumps({
        "variables": [{"name": "svc", "type": "PX_SERVICE", "defaultValue": "a"},
                      {"name": "k", "type": "PX_INT64", "defaultValue": "1"}],
        "widgets": [
            {"name": "Rows", "func": {"name": "rows", "args": [
                {"name": "svc", "variable": "svc"}, {"name": "k", "variable": "k"}]},
             "displaySpec": {"@type": "types.px.dev/px.vispb.TimeseriesChart"}},
            {"name": "All", "func": {"name": "rows", "args": [
                {"name": "svc", "value": "b"}, {"name": "k", "value": 5}]},
             "displaySpec": {"@type": "types.px.dev/px.vispb.Table"}},
        ]}))
    source = ("import px\ndef rows(svc: str, k: int):\n"
              "    df = px.DataFrame('t')\n    return df[df.svc == svc].head(k)\n")
    spec = load_vis(vis)
    res = pxl.run(source, tables=TABLES, now=DEMO_NOW, vis=spec, args={"svc": "b"})
    assert list(res) == ["Rows", "All"]
    assert res["Rows"]["svc"].to_list() == ["b"]
    assert res.outputs[0].options == (("chart_type", "line"),)


def test_bundled_script_by_name(cli) -> None:
    r = cli("run", "px/http_data", "--demo", "-o", "json", "--", "--max_rows=3")
    assert r.code == 0, r.err
    rows = [json.loads(line) for line in r.out.splitlines()]
    assert len(rows) == 3 and all(row["_tableName_"] == "http_data" for row in rows)
    assert all(row["service"].startswith(("shop/", "kube-system/")) for row in rows)
    r = cli("scripts", "list")
    assert r.code == 0 and "px/http_data" in r.out


def test_max_output_rows_pragma(cli, tmp_path) -> None:
    big = {"t": pl.DataFrame({"x": list(range(20))})}
    src = "import px\n#px:set max_output_rows_per_table=5\npx.display(px.DataFrame('t'))\n"
    res = pxl.run(src, tables=big)
    assert res["output"].height == 5 and res.outputs[0].truncated
    assert not pxl.run(src.replace("=5", "=20"), tables=big).outputs[0].truncated
    with pytest.raises(pxl.CompileError, match="unknown setting") as e:
        pxl.run("import px\n#px:set max_rows=5\n", tables=big)
    assert e.value.span.line == 2
    script = tmp_path / "s.pxl"
    script.write_text("import px\n#px:set max_output_rows_per_table=3\n"
                      "px.display(px.DataFrame('http_events'))\n")
    r = cli("run", str(script), "--demo", "-o", "csv")
    assert r.code == 0 and r.out.count("\n") == 4 and "only the first 3" in r.err

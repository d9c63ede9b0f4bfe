"""px.GetTables / px.GetSchemas as table sources; px.export (Prometheus) and px.debug outputs."""

from __future__ import annotations

import re

import pxl
from tests.conftest import DEMO_NOW


def test_get_tables_lists_every_table(demo_catalog) -> None:
    out = pxl.run("import px\npx.display(px.GetTables())", catalog=demo_catalog,
                  now=DEMO_NOW)["output"]
    assert sorted(out["table_name"].to_list()) == demo_catalog.table_names()
    http = out.filter(out["table_name"] == "http_events").row(0, named=True)
    assert http["num_rows"] == demo_catalog.frame("http_events").height and http["size_bytes"] > 0


def test_get_schemas_can_be_filtered(demo_catalog) -> None:
    src = ("import px\ns = px.GetSchemas()\n"
           "px.display(s[s.table_name == 'http_events'][['column_name', 'semantic_type']])")
    out = pxl.run(src, catalog=demo_catalog, now=DEMO_NOW)["output"]
    row = out.filter(out["column_name"] == "latency").row(0)
    assert row == ("latency", "duration_ns")


def test_prometheus_export(cli) -> None:
    src = ("import px\ndf = px.DataFrame('http_events')\n"
           "df = df.groupby('req_method').agg(n=('latency', px.count), "
           "p=('latency', px.quantile, 0.5))\npx.export(df, format='prometheus', name='http')\n")
    r = cli("run", "-", "--demo", stdin=src)
    assert r.code == 0, r.err
    lines = r.out.splitlines()
    assert "# TYPE pxl_http_n gauge" in lines and "# TYPE pxl_http_p_seconds gauge" in lines
    sample = re.compile(r'^pxl_http_(n|p_seconds)\{req_method="[A-Z]+"\} [0-9.e+-]+$')
    assert all(sample.match(line) for line in lines if not line.startswith("#"))


def test_debug_outputs_show_only_with_debug(cli) -> None:
    src = ("import px\ndf = px.DataFrame('http_events')\npx.display(df.head(1), name='main')\n"
           "px.debug(df.head(2), name='peek')\n")
    r = cli("run", "-", "--demo", "-o", "json", stdin=src)
    assert '"main"' in r.out and '"peek"' not in r.out
    r = cli("run", "-", "--demo", "-o", "json", "--debug", stdin=src)
    assert '"peek"' in r.out

"""Quick queries compile to the PxL they stand for, and point their errors into the query."""

from __future__ import annotations

import pytest

import pxl
from engine.errors import PxlSyntaxError
from pxl.quick import map_error, to_pxl
from tests.conftest import DEMO_NOW


def plan(source: str, catalog) -> str:
    return pxl.explain(source, catalog=catalog, now=DEMO_NOW)


@pytest.mark.parametrize("query, pxl_source", [
    ("http_events|filter:resp_status>=500|head:20",
     "import px\ndf = px.DataFrame(table='http_events')\ndf = df[df.resp_status >= 500]\n"
     "px.display(df.head(20))"),
    ("http_events|since:-5m|filter:service=shop/payment,latency>1000000|select:req_path,latency",
     "import px\ndf = px.DataFrame(table='http_events', start_time='-5m')\n"
     "df = df[df.service == 'shop/payment' and df.latency > 1000000]\n"
     "px.display(df[['req_path', 'latency']])"),
    ("http_events|groupby:req_path,req_method|agg:n=count(latency),p=quantile(latency,0.9)|sort:-n",
     "import px\ndf = px.DataFrame(table='http_events')\n"
     "df = df.groupby(['req_path', 'req_method']).agg(n=('latency', px.count), "
     "p=('latency', px.quantile, 0.9))\npx.display(df.sort_values('n', ascending=False))"),
    ("mysql_events|filter:req_body~SELECT|drop:req_body,resp_body|head:5",
     "import px\ndf = px.DataFrame(table='mysql_events')\n"
     "df = df[px.contains(df.req_body, 'SELECT')]\n"
     "px.display(df.drop(['req_body', 'resp_body']).head(5))"),
])
def test_same_plan_as_the_pxl_it_stands_for(query, pxl_source, demo_catalog) -> None:
    assert plan(to_pxl(query).text, demo_catalog) == plan(pxl_source, demo_catalog)


def test_results_match(demo_catalog) -> None:
    q = to_pxl("http_events|filter:resp_status>=500|groupby:service|agg:n=count(latency)|sort:-n")
    out = pxl.run(q.text, catalog=demo_catalog, now=DEMO_NOW)["output"]
    assert out.height > 0 and out["n"].is_sorted(descending=True)


@pytest.mark.parametrize("query, col, message", [
    ("http_events|filtr:x=1", 13, "unknown step 'filtr'"),
    ("http_events|filter:resp_status", 20, "cannot read"),
    ("http_events|head:x", 18, "head needs a number"),
    ("http_events|groupby:req_path", 13, "followed by agg"),
    ("http events", 1, "not a table name"),
    ("http_events|agg:n=median(latency)", 17, "agg: cannot read"),
])
def test_syntax_errors_point_into_the_query(query, col, message) -> None:
    with pytest.raises(PxlSyntaxError, match=message) as e:
        to_pxl(query)
    assert (e.value.span.file, e.value.span.line, e.value.span.col) == ("query", 1, col)
    assert "^" in e.value.render()


def test_compile_errors_map_back_to_the_step(demo_catalog) -> None:
    q = to_pxl("http_events|head:3|filter:resp_stats>=500")
    with pytest.raises(pxl.PxlError) as e:
        pxl.run(q.text, catalog=demo_catalog, now=DEMO_NOW)
    err = map_error(q, e.value)
    assert err.span.col == 20 and "resp_status" in err.hint
    assert err.render().splitlines()[1].strip() == q.query


def test_cli(cli) -> None:
    r = cli("query", "http_events|filter:resp_status>=500|head:3", "--demo", "-o", "csv")
    assert r.code == 0 and r.out.count("\n") == 4
    r = cli("query", "http_events|filter:resp_status>=500|head:3", "--explain")
    assert r.code == 0 and "df = df.head(3)" in r.out
    r = cli("query", "http_events|filter:nope>1", "--demo")
    assert r.code == 1 and "query:1:13" in r.err and "Traceback" not in r.err

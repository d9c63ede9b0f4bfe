"""pxl: an embeddable engine for PxL, the Python-like DataFrame language of Pixie.

>>> import pxl
>>> import polars as pl
>>> script = '''
... import px
... df = px.DataFrame(table='http_events')
... df = df[df.resp_status >= 500]
... px.display(df.groupby('req_path').agg(n=('req_path', px.count)))
... '''
>>> events = pl.DataFrame({"req_path": ["/a", "/a", "/b"], "resp_status": [500, 200, 503]})
>>> pxl.run(script, tables={"http_events": events})["output"].sort("req_path").rows()
[('/a', 1), ('/b', 1)]
"""

from __future__ import annotations

from engine.errors import (
    CompileError,
    DataError,
    ExecuteError,
    PlanError,
    PxlError,
    PxlSyntaxError,
    Span,
)
from pxl.api import MissingAgent, Results, compile, explain, make_catalog, run
from pxl.plancache import PLAN_CACHE as plan_cache
from pxl.remote import Remote, connect

__version__ = "0.1.0"

__all__ = [
    "run", "compile", "explain", "make_catalog", "plan_cache", "Results", "MissingAgent", "connect", "Remote", "PxlError", "PxlSyntaxError",
    "CompileError", "PlanError", "ExecuteError", "DataError", "Span", "__version__",
]

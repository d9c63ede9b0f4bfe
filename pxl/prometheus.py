"""Outputs in Prometheus' text exposition format (``px.export(df, format='prometheus')``).

Each numeric column becomes a gauge named ``pxl_<output>_<column>``; string and boolean
columns (and ports, HTTP statuses) become labels; ``time_`` becomes the sample's timestamp.
Durations are exported in seconds and sizes in bytes, as Prometheus names its base units.

>>> import polars as pl
>>> from engine.types import ColumnType, DataType, Schema, SemanticType
>>> schema = Schema.of([("path", ColumnType(DataType.STRING)),
...                     ("p99", ColumnType(DataType.FLOAT64, SemanticType.DURATION_NS))])
>>> print(to_text("http", pl.DataFrame({"path": ['/a"b'], "p99": [1.5e9]}), schema), end="")
# TYPE pxl_http_p99_seconds gauge
pxl_http_p99_seconds{path="/a\\"b"} 1.5
"""

from __future__ import annotations

import math
import re
from typing import IO, Any

import polars as pl

from engine.types import DataType, Schema, SemanticType

__all__ = ["to_text", "write_prometheus"]

_LABEL_SEMANTICS = {SemanticType.PORT, SemanticType.HTTP_RESP_STATUS, SemanticType.UPID}
_UNITS = {SemanticType.DURATION_NS: ("_seconds", 1e-9), SemanticType.BYTES: ("_bytes", 1.0)}


def _metric_name(*parts: str) -> str:
    name = "_".join(re.sub(r"[^a-zA-Z0-9_]", "_", p) for p in parts if p)
    return name if not name[0].isdigit() else f"_{name}"


def _escape(value: Any) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(v: Any) -> str | None:
    if v is None:
        return None
    if isinstance(v, bool):
        v = int(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "NaN"
        if math.isinf(v):
            return "+Inf" if v > 0 else "-Inf"
    return repr(v) if isinstance(v, float) else str(v)


def to_text(name: str, frame: pl.DataFrame, schema: Schema) -> str:
    labels, values = [], []
    for col, t in schema.columns:
        if col == "time_" and t.dtype is DataType.TIME64NS:
            continue
        if t.dtype in (DataType.INT64, DataType.FLOAT64) and t.semantic not in _LABEL_SEMANTICS:
            values.append((col, t.semantic))
        elif t.dtype is not DataType.QUANTILES:
            labels.append(col)
    stamps = (frame["time_"].dt.epoch("ms").to_list()
              if "time_" in frame.columns and schema.get("time_") is not None
              and schema["time_"].dtype is DataType.TIME64NS else None)
    lines = []
    label_rows = frame.select(labels).rows() if labels else [()] * frame.height
    for col, semantic in values:
        suffix, scale = _UNITS.get(semantic, ("", 1.0))
        metric = _metric_name("pxl", name, col) + suffix
        lines.append(f"# TYPE {metric} gauge")
        for i, v in enumerate(frame[col].to_list()):
            if v is not None and scale != 1.0:
                v = v * scale
            text = _number(v)
            if text is None:
                continue
            pairs = ",".join(f'{_metric_name(k)}="{_escape(x)}"'
                             for k, x in zip(labels, label_rows[i], strict=True) if x is not None)
            stamp = f" {stamps[i]}" if stamps and stamps[i] is not None else ""
            lines.append(f"{metric}{{{pairs}}} {text}{stamp}" if pairs else f"{metric} {text}{stamp}")
    return "\n".join(lines) + "\n" if lines else ""


def write_prometheus(outputs: list[Any], stream: IO[str]) -> None:
    for o in outputs:
        stream.write(to_text(o.name, o.frame, o.schema))

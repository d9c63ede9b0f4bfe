"""Semantic-type casts: ``px.DurationNanos(df.x)``, ``px.Service(df.s)``, ``px.Time(df.ns)`` …

Each keeps the values and marks what they mean, which drives human output ('1.2 ms', '3.4 MiB',
'12 /s') and charts' units. The names follow Pixie's type objects (Time, Container, Namespace,
Node, Pod, Service, Bytes, DurationNanos, UPID, Percent); ``Throughput`` and ``ThroughputBytes``
name the two rate types Pixie has as semantic types but not as casts. Every cast also works as
a parameter annotation of a PxL function (``def f(svc: px.Service)``), which accepts any value,
and as ``px.arg``'s type (a string argument).
"""

from __future__ import annotations

import polars as pl

from engine.registry import REGISTRY, CallArgs, ScalarFunction, sig
from engine.types import DataType, SemanticType

__all__ = ["CASTS"]

#: name → the semantic type it marks; filled below, in documentation order.
CASTS: dict[str, SemanticType] = {}


def _cast(name: str, semantic: SemanticType, types: str, doc: str, example: str) -> None:
    CASTS[name] = semantic
    REGISTRY.add(ScalarFunction(
        name, sig(*(f"{t} -> {t}" for t in types.split())), doc,
        semantic=lambda _types: semantic, category="semantic types", polars=lambda a: a[0],
        fold=lambda v: v, examples=(example,)))


# --- numbers -------------------------------------------------------------------------------------
_cast("DurationNanos", SemanticType.DURATION_NS, "INT64 FLOAT64",
      "Marks a number as a duration in nanoseconds (shown as '1.2 ms').",
      "df.latency = px.DurationNanos(df.latency)")
_cast("Bytes", SemanticType.BYTES, "INT64 FLOAT64", "Marks a number as a size in bytes ('3.4 MiB').",
      "df.resp_body_size = px.Bytes(df.resp_body_size)")
_cast("Percent", SemanticType.PERCENT, "INT64 FLOAT64", "Marks a number as a percentage.",
      "df.resp_status = px.Percent(df.resp_status)")
_cast("Throughput", SemanticType.THROUGHPUT_PER_NS, "INT64 FLOAT64",
      "Marks a number as a rate per nanosecond (events / ns; shown per second, e.g. '12.5/s'): "
      "px.Throughput(df.requests / window_ns).",
      "df.open_rate = px.Throughput(df.conn_open / px.minutes(1))")
_cast("ThroughputBytes", SemanticType.THROUGHPUT_BYTES_PER_NS, "INT64 FLOAT64",
      "Marks a number as bytes per nanosecond (shown per second, e.g. '3.4 MiB/s'): "
      "px.ThroughputBytes(df.bytes / window_ns).",
      "df.rate = px.ThroughputBytes(df.resp_body_size / px.seconds(10))")

# --- names of things -----------------------------------------------------------------------------
_cast("Service", SemanticType.SERVICE_NAME, "STRING",
      "Marks a string as a Kubernetes service name ('namespace/name').",
      "df.svc = px.Service(df.ctx['service'])")
_cast("Pod", SemanticType.POD_NAME, "STRING",
      "Marks a string as a Kubernetes pod name ('namespace/name').",
      "df.pod = px.Pod(df.ctx['pod'])")
_cast("Namespace", SemanticType.NAMESPACE_NAME, "STRING",
      "Marks a string as a Kubernetes namespace name.",
      "df.ns = px.Namespace(df.ctx['namespace'])")
_cast("Node", SemanticType.NODE_NAME, "STRING", "Marks a string as a node (host) name.",
      "df.node = px.Node(df.ctx['node'])")
_cast("Container", SemanticType.CONTAINER_NAME, "STRING", "Marks a string as a container name.",
      "df.container = px.Container(df.ctx['container'])")
_cast("UPID", SemanticType.UPID, "STRING",
      "Marks a string as a unique process id (asid-pid-start time, in hex).",
      "df.process = px.UPID(df.upid)")


# --- times ---------------------------------------------------------------------------------------
def _time(a: CallArgs) -> pl.Expr:
    if a.types[0].dtype is DataType.INT64:
        return a[0].cast(pl.Datetime("ns"))
    return a[0]


CASTS["Time"] = SemanticType.TIME
REGISTRY.add(ScalarFunction(
    "Time", sig("INT64 -> TIME64NS", "TIME64NS -> TIME64NS"),
    "Marks a value as a time: an int of nanoseconds since the epoch becomes a time "
    "(as px.int64_to_time); a time stays as it is.",
    semantic=lambda _types: SemanticType.TIME, category="semantic types", polars=_time,
    fold=lambda v: v, examples=("df.start = px.Time(px.time_to_int64(df.time_) - df.latency)",)))

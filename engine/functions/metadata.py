"""Process metadata by upid: what ``df.ctx['service']`` and ``px.upid_to_service_name`` read.

The table store keeps one row of metadata per upid (pid, cmdline, container, Kubernetes names…)
for longer than the rows that point at it. A upid the store knows nothing of resolves to an
empty string, never an error. ``upid_to_pid`` reads the pid out of the upid itself.
"""

from __future__ import annotations

import polars as pl

from engine.registry import REGISTRY, CallArgs, ScalarFunction, sig
from engine.types import SemanticType

__all__ = ["CTX_KEYS", "CtxKey", "METADATA_COLUMNS"]

St = SemanticType


class CtxKey:
    """One ``df.ctx`` key: the function that resolves it and the metadata column it reads."""

    def __init__(self, function: str, column: str, semantic: SemanticType) -> None:
        self.function, self.column, self.semantic = function, column, semantic


_KEYS = (
    # (keys, function, metadata column, semantic type)
    (("cmdline", "cmd"), "upid_to_cmdline", "cmdline", St.NONE),
    (("hostname", "host"), "upid_to_hostname", "hostname", St.NONE),
    (("container", "container_name"), "upid_to_container_name", "container_name",
     St.CONTAINER_NAME),
    (("container_id",), "upid_to_container_id", "container_id", St.NONE),
    (("pod", "pod_name"), "upid_to_pod_name", "pod", St.POD_NAME),
    (("service", "service_name"), "upid_to_service_name", "service", St.SERVICE_NAME),
    (("namespace", "namespace_name"), "upid_to_namespace", "namespace", St.NAMESPACE_NAME),
    (("node", "node_name"), "upid_to_node_name", "node", St.NODE_NAME),
    (("deployment", "deployment_name"), "upid_to_deployment_name", "deployment", St.NONE),
    (("replicaset", "replicaset_name"), "upid_to_replicaset_name", "replicaset", St.NONE),
)

CTX_KEYS: dict[str, CtxKey] = {}
METADATA_COLUMNS = ("upid",) + tuple(column for _, _, column, _ in _KEYS)


def _lookup(column: str):
    def build(a: CallArgs) -> pl.Expr:
        meta = a.metadata
        if meta is None or column not in meta.columns or meta.height == 0:
            found = pl.lit("", dtype=pl.String)
        else:
            found = a[0].replace_strict(meta["upid"], meta[column].fill_null(""), default="",
                                        return_dtype=pl.String)
        return pl.when(a[0].is_null()).then(None).otherwise(found)  # a null upid: null

    return build


for _keys, _function, _column, _semantic in _KEYS:
    REGISTRY.add(ScalarFunction(
        _function, sig("STRING -> STRING"),
        f"The {_column.replace('_', ' ')} of the process with this upid ('' if unknown). "
        f"Also df.ctx[{_keys[0]!r}].",
        semantic=(lambda s: lambda _types: s)(_semantic), category="metadata",
        polars=_lookup(_column), examples=(f"df.{_keys[0]} = df.ctx[{_keys[0]!r}]",)))
    for _key in _keys:
        CTX_KEYS[_key] = CtxKey(_function, _column, _semantic)

REGISTRY.add(ScalarFunction(
    "upid_to_pid", sig("STRING -> INT64"), "The pid inside a upid. Also df.ctx['pid'].",
    category="metadata",
    polars=lambda a: a[0].str.split("-").list.get(1, null_on_oob=True)
    .str.to_integer(base=16, strict=False),
    examples=("df.pid = df.ctx['pid']",)))
CTX_KEYS["pid"] = CtxKey("upid_to_pid", "pid", St.NONE)

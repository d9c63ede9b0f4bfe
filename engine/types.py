"""Data types and semantic types of plan columns.

A column has a *data type* (how its values are stored: ``INT64``, ``STRING`` …) and a *semantic
type* (what its values mean: a duration in nanoseconds, a byte count, an HTTP status …). Data types
decide what is legal in an expression; semantic types decide how a value is shown to a person and
travel through functions by each function's rule in the registry.

>>> DataType.INT64.polars
Int64
>>> SemanticType.DURATION_NS.value
'duration_ns'
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

import polars as pl

__all__ = ["DataType", "SemanticType", "ColumnType", "Schema", "NUMERIC", "from_polars"]


class DataType(enum.Enum):
    """Storage type of a column; the names follow Pixie's (BOOLEAN, INT64, FLOAT64, STRING, TIME64NS)."""

    BOOLEAN = "BOOLEAN"
    INT64 = "INT64"
    FLOAT64 = "FLOAT64"
    STRING = "STRING"
    TIME64NS = "TIME64NS"
    #: The result of ``px.quantiles``: p01 … p99 of a group (Pixie stores it as a JSON string).
    QUANTILES = "QUANTILES"

    @property
    def polars(self) -> pl.DataType:
        return _POLARS[self]

    def __str__(self) -> str:
        return self.value


QUANTILE_KEYS = ("p01", "p10", "p25", "p50", "p75", "p90", "p99")
QUANTILE_VALUES = (0.01, 0.10, 0.25, 0.50, 0.75, 0.90, 0.99)

_POLARS: dict[DataType, pl.DataType] = {
    DataType.BOOLEAN: pl.Boolean(),
    DataType.INT64: pl.Int64(),
    DataType.FLOAT64: pl.Float64(),
    DataType.STRING: pl.String(),
    DataType.TIME64NS: pl.Datetime("ns"),
    DataType.QUANTILES: pl.Struct({k: pl.Float64() for k in QUANTILE_KEYS}),
}

NUMERIC = frozenset({DataType.INT64, DataType.FLOAT64})


class SemanticType(enum.Enum):
    """What a column's values mean; drives human output ("1.2 ms", "3.4 MiB")."""

    NONE = "none"
    TIME = "time"
    DURATION_NS = "duration_ns"
    BYTES = "bytes"
    PERCENT = "percent"
    THROUGHPUT_PER_NS = "throughput_per_ns"
    THROUGHPUT_BYTES_PER_NS = "throughput_bytes_per_ns"
    IP_ADDRESS = "ip_address"
    PORT = "port"
    HTTP_RESP_STATUS = "http_resp_status"
    HTTP_REQ_METHOD = "http_req_method"
    HTTP_RESP_MESSAGE = "http_resp_message"
    UPID = "upid"
    SERVICE_NAME = "service_name"
    POD_NAME = "pod_name"
    NAMESPACE_NAME = "namespace_name"
    NODE_NAME = "node_name"
    CONTAINER_NAME = "container_name"
    QUANTILES = "quantiles"
    DURATION_NS_QUANTILES = "duration_ns_quantiles"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class ColumnType:
    """The type of one column: storage plus meaning."""

    dtype: DataType
    semantic: SemanticType = SemanticType.NONE

    def __str__(self) -> str:
        if self.semantic is SemanticType.NONE:
            return str(self.dtype)
        return f"{self.dtype}[{self.semantic}]"


@dataclass(frozen=True, slots=True)
class Schema:
    """An ordered list of named columns (the shape of a relation)."""

    columns: tuple[tuple[str, ColumnType], ...]
    #: name → type, for lookups in constant time (plans of long scripts carry ~100 columns)
    _by_name: dict[str, ColumnType] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name", dict(reversed(self.columns)))  # the first wins

    @classmethod
    def of(cls, pairs: dict[str, ColumnType] | list[tuple[str, ColumnType]]) -> Schema:
        items = pairs.items() if isinstance(pairs, dict) else pairs
        return cls(tuple((n, t) for n, t in items))

    @property
    def names(self) -> list[str]:
        return [n for n, _ in self.columns]

    def get(self, name: str) -> ColumnType | None:
        return self._by_name.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __getitem__(self, name: str) -> ColumnType:
        t = self.get(name)
        if t is None:
            raise KeyError(name)
        return t

    def __len__(self) -> int:
        return len(self.columns)

    def polars(self) -> dict[str, pl.DataType]:
        return {n: t.dtype.polars for n, t in self.columns}


def from_polars(dtype: pl.DataType) -> DataType | None:
    """The plan data type a Polars column is read as, or None if pxl cannot hold it."""
    if dtype == pl.Boolean:
        return DataType.BOOLEAN
    if dtype.is_integer() or dtype == pl.Duration:
        return DataType.INT64
    if dtype.is_float() or dtype.is_decimal():
        return DataType.FLOAT64
    if dtype in (pl.String, pl.Categorical, pl.Enum, pl.Utf8):
        return DataType.STRING
    if isinstance(dtype, pl.Datetime) or dtype == pl.Date:
        return DataType.TIME64NS
    if dtype == _POLARS[DataType.QUANTILES]:
        return DataType.QUANTILES
    return None

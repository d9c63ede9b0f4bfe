"""Frames with pxl column types ↔ Arrow, the form data takes in files and on the wire.

Each field carries its semantic type in its metadata (``pxl.semantic``), so types survive a
round trip. Frames are exported with the oldest Arrow compatibility level: Polars' newer string
layout would otherwise drag whole shared string buffers along with a few rows.

>>> import polars as pl
>>> from engine.types import ColumnType, DataType, Schema, SemanticType
>>> s = Schema.of([("latency", ColumnType(DataType.INT64, SemanticType.DURATION_NS))])
>>> frame, schema = from_arrow(to_arrow(pl.DataFrame({"latency": [5]}), s))
>>> schema["latency"].semantic
<SemanticType.DURATION_NS: 'duration_ns'>
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow as pa

from engine.types import ColumnType, DataType, Schema, SemanticType, from_polars

__all__ = ["SEMANTIC_KEY", "arrow_schema", "to_arrow", "from_arrow", "semantics_of",
           "buffer_values"]

SEMANTIC_KEY = b"pxl.semantic"


def arrow_schema(frame: pl.DataFrame, schema: Schema) -> pa.Schema:
    """The frame's Arrow schema with each field's semantic type in its metadata."""
    base = frame.head(0).to_arrow(compat_level=pl.CompatLevel.oldest()).schema
    fields = []
    for f in base:
        t = schema.get(f.name)
        semantic = t.semantic.value if t is not None else SemanticType.NONE.value
        fields.append(f.with_metadata({SEMANTIC_KEY: semantic.encode()}))
    return pa.schema(fields, metadata=base.metadata)


def to_arrow(frame: pl.DataFrame, schema: Schema) -> pa.Table:
    table = frame.to_arrow(compat_level=pl.CompatLevel.oldest())
    return table.cast(arrow_schema(frame, schema)) if table.num_columns else table


def semantics_of(schema: pa.Schema) -> dict[str, str]:
    out = {}
    for f in schema:
        if f.metadata and SEMANTIC_KEY in f.metadata:
            out[f.name] = f.metadata[SEMANTIC_KEY].decode("utf-8", "replace")
    return out


def from_arrow(table: pa.Table) -> tuple[pl.DataFrame, Schema]:
    """A frame and its pxl schema (semantic types from the metadata, else none).

    The metadata is read here and not handed to Polars, which panics on bytes that are not
    UTF-8 (metadata that crossed the network is not trusted)."""
    semantics = semantics_of(table.schema)
    bare = pa.schema([f.remove_metadata() for f in table.schema])
    frame = pl.from_arrow(table.cast(bare) if table.num_columns else table)
    assert isinstance(frame, pl.DataFrame)
    cols = []
    for name, dtype in frame.schema.items():
        plan_type = from_polars(dtype) or DataType.STRING
        try:
            semantic = SemanticType(semantics.get(name, "none"))
        except ValueError:
            semantic = SemanticType.NONE
        cols.append((name, ColumnType(plan_type, semantic)))
    return frame, Schema(tuple(cols))


def buffer_values(column: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """The values of a fixed-width Arrow column without nulls, as a numpy view of its buffer
    (one copy if it has several chunks). ``to_numpy`` would do, but it first asks pandas
    whether the input is one of its own, importing pandas when it is installed: ~0.5 s and
    ~50 MB, in the middle of a collector's first drain or a store's first append."""
    if isinstance(column, pa.ChunkedArray):
        column = column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()
    dtype = np.dtype(column.type.to_pandas_dtype())
    if not len(column):
        return np.zeros(0, dtype=dtype)
    data = np.frombuffer(column.buffers()[1], dtype=dtype)
    return data[column.offset:column.offset + len(column)]

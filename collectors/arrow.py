"""Arrow arrays from numpy columns and Python lists, built from their buffers.

``pyarrow.array`` checks whether its input is a pandas object, and to check it imports pandas
when pandas is installed: the first call in a process costs ~0.5 s of CPU and ~50 MB, which a
collector would pay in the middle of its first drain. These build the same arrays from buffers;
``values`` (engine.arrowio.buffer_values) reads one back the same way.

>>> ints(np.array([3, 4])).to_pylist(), strings(["a", "", "é"]).to_pylist()
([3, 4], ['a', '', 'é'])
>>> bools(np.array([True, False, True])).to_pylist(), times(np.array([5])).type
([True, False, True], TimestampType(timestamp[ns]))
>>> values(ints(np.array([1, 2, 3])).slice(1)).tolist()
[2, 3]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa

from engine.arrowio import buffer_values as values

__all__ = ["ints", "times", "bools", "strings", "column", "values", "take_views"]


def ints(values: np.ndarray) -> pa.Array:
    """An int64 array (no nulls)."""
    values = np.ascontiguousarray(values, dtype=np.int64)
    return pa.Array.from_buffers(pa.int64(), len(values), [None, pa.py_buffer(values)])


def times(ns: np.ndarray) -> pa.Array:
    """A timestamp[ns] array from int64 nanoseconds since the epoch."""
    values = np.ascontiguousarray(ns, dtype=np.int64)
    return pa.Array.from_buffers(pa.timestamp("ns"), len(values), [None, pa.py_buffer(values)])


def bools(values: np.ndarray) -> pa.Array:
    values = np.asarray(values, dtype=bool)
    bits = np.packbits(values, bitorder="little")
    return pa.Array.from_buffers(pa.bool_(), len(values), [None, pa.py_buffer(bits)])


def strings(values: Sequence[str]) -> pa.Array:
    """A string array (no nulls)."""
    encoded = [v.encode() for v in values]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    np.cumsum([len(e) for e in encoded], out=offsets[1:])
    small = offsets[-1] < 2**31
    return pa.Array.from_buffers(pa.string() if small else pa.large_string(), len(encoded), [
        None, pa.py_buffer(offsets.astype(np.int32) if small else offsets),
        pa.py_buffer(b"".join(encoded))])


def take_views(arr: pa.Array, idx: np.ndarray) -> pa.Array:
    """``arr.take(idx)`` for a view array with no nulls, without copying a string: the 16-byte
    views are gathered and the new array shares ``arr``'s data buffers (Arrow's own take has no
    kernel for view types). A column that repeats a few strings (a head's fields, a connection's
    address) costs 16 bytes a row, and Polars reads it as it stores strings, without a copy.

    >>> a = strings(["a long string, not inlined", "short"]).cast(pa.string_view())
    >>> take_views(a, np.array([1, 0, 0])).to_pylist()[:2]
    ['short', 'a long string, not inlined']
    """
    if arr.null_count:
        raise ValueError("take_views: nulls")
    bufs = arr.buffers()
    table = np.frombuffer(bufs[1], dtype=np.uint64).reshape(-1, 2)[arr.offset:arr.offset + len(arr)]
    picked = np.take(table, np.asarray(idx, dtype=np.int64), axis=0)
    return pa.Array.from_buffers(arr.type, len(picked), [None, pa.py_buffer(picked), *bufs[2:]])


def column(values: Sequence, type_: pa.DataType) -> pa.Array:
    """A column of Python values as an array of ``type_`` (int64, string, bool, timestamp)."""
    if type_ == pa.string():
        return strings(values)
    if type_ == pa.bool_():
        return bools(np.asarray(values, dtype=bool))
    if type_ == pa.timestamp("ns"):
        return times(np.asarray(values, dtype=np.int64))
    if type_ == pa.int64():
        return ints(np.asarray(values, dtype=np.int64))
    raise TypeError(f"no column of {type_}")


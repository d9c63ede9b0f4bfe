"""What a process that runs collectors for a long time sets up once they are started.

- ``gc.freeze()``: what startup made (modules, their objects) lives as long as the process;
  keep it out of every later garbage collection, which would walk it all (~40 ms a full one).
- Arrow allocates from the C library's allocator instead of mimalloc (pyarrow's default here).
  A drain allocates and frees the same few MiB every 200 ms; mimalloc hands freed pages back to
  the kernel within milliseconds, so each drain faulted them in (and zeroed them) again. At
  saturation this was most of the collector's system time: 1.2–1.7 → 0.45–0.6 µs per captured
  HTTP row (benchmarks/bench_capture.py, nginx + wrk).

Both change the whole process, which is why the agent (``pxl agent``, ``pxl capture``) calls
this and the collectors themselves do not: a program that embeds pxl keeps its own settings.
"""

from __future__ import annotations

import gc

__all__ = ["settle"]


def settle() -> None:
    gc.freeze()
    import pyarrow as pa

    if pa.default_memory_pool().backend_name != "system":
        pa.set_memory_pool(pa.system_memory_pool())

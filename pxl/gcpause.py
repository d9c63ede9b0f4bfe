"""Python's cyclic garbage collector held off while a script is parsed and compiled.

Parsing and compiling allocate tens of thousands of small objects (tokens, syntax nodes, plan
nodes, expressions) and free most of them by reference counting; they form no garbage cycles
worth collecting mid-way. Yet every 700 net allocations start a collection, and the older
generations' collections walk every object the process holds (Polars', DuckDB's, the
application's), so on a 300-line script the collector took ~4 ms of ~30 (docs/performance.md).
While paused, nothing is lost: objects are still freed by reference counting, and the
collector runs again, as usual, once the outermost pause ends.

>>> import gc
>>> with gc_paused():
...     gc.isenabled()
False
>>> gc.isenabled()
True
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["gc_paused"]

_lock = threading.Lock()
_depth = 0  # pauses in progress, across threads
_resume = False  # whether the collector was enabled when the first of them began


@contextmanager
def gc_paused() -> Iterator[None]:
    """Disable automatic garbage collection for the block; nested and concurrent pauses (other
    threads compiling) end together, and the collector is enabled again only if it was enabled
    when the first of them began."""
    global _depth, _resume
    with _lock:
        if _depth == 0:
            _resume = gc.isenabled()
            gc.disable()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _resume:
                gc.enable()

"""The store's background thread: flush, compact and evict, then expire process metadata."""

from __future__ import annotations

import logging
import threading
import time
import weakref
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engine.store.store import TableStore

__all__ = ["Maintainer"]

log = logging.getLogger(__name__)


class Maintainer:
    """The background thread: flushes, compacts and evicts every ``interval`` seconds or when
    woken by an append, and expires process metadata every ~10 s."""

    def __init__(self, store: TableStore, interval: float) -> None:
        self._store = weakref.ref(store)  # a store dropped without close() still stops it
        self.interval = interval
        self._wake = threading.Event()
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="pxl-store", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        if not self._wake.is_set():
            self._wake.set()

    def stop(self) -> None:
        self._stop = True
        self._wake.set()
        self._thread.join()

    def _run(self) -> None:
        last_meta = time.monotonic()
        while not self._stop:
            self._wake.wait(self.interval)
            self._wake.clear()
            store = self._store()
            if self._stop or store is None:
                break
            try:
                store.maintain()
                if time.monotonic() - last_meta > 10:
                    store.expire_metadata()
                    last_meta = time.monotonic()
            except Exception as exc:  # keep the store alive; the error is kept and logged
                log.exception("table store maintenance failed")
                store.errors.append(f"{type(exc).__name__}: {exc}")
                del store.errors[:-100]
            del store

"""The table store for live data: appends from collectors, a time index, retention, snapshots.

Modules: ``store`` (TableStore, the Catalog), ``view`` (scans, StoreView), ``maintainer``
(the background thread), ``table`` (one table's appends, flushes,
compaction and eviction), ``chunks`` (immutable time-ordered chunks and the time index),
``schema`` (batch checks, normalisation, dictionary columns), ``retention`` (budgets, ages,
spill to Parquet), ``metadata`` (process metadata by upid). See docs/store.md.
"""

from engine.store.metadata import ProcessMetadata
from engine.store.retention import DEFAULT_SHARES, default_budget
from engine.store.schema import DICTIONARY_COLUMNS
from engine.store.store import Limits, StoreView, TableStore

__all__ = ["TableStore", "StoreView", "Limits", "ProcessMetadata", "DEFAULT_SHARES",
           "DICTIONARY_COLUMNS", "default_budget"]

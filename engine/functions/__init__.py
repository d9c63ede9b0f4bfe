"""Every px.* function, registered into :data:`engine.registry.REGISTRY` on import.

One module per family; each entry is declared once, next to its Polars translation.
"""

from engine.functions import (
    aggregates,
    compile_time,
    json,
    logic,
    math,
    metadata,
    network,
    operators,
    protocols,
    redact,
    scalars,
    semantic,
    sql,
    strings,
    time,
)

__all__ = ["aggregates", "compile_time", "json", "logic", "math", "metadata", "network",
           "operators", "protocols", "redact", "scalars", "semantic", "sql", "strings", "time"]

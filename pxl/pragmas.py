"""``#px:set key=value`` lines: settings a script gives itself, as in Pixie.

>>> read_pragmas("import px\\n#px:set max_output_rows_per_table=500\\n", "s.pxl")
{'max_output_rows_per_table': 500}
"""

from __future__ import annotations

import re
from typing import Any

from engine.errors import CompileError, Span

__all__ = ["PRAGMAS", "read_pragmas", "DEFAULT_MAX_OUTPUT_ROWS"]

DEFAULT_MAX_OUTPUT_ROWS = 10_000
#: Known settings: name → (type, default, description)
PRAGMAS: dict[str, tuple[type, Any, str]] = {
    "max_output_rows_per_table": (int, DEFAULT_MAX_OUTPUT_ROWS,
                                  "rows kept per output; more are cut with a notice"),
}
_LINE = re.compile(r"^[ \t]*#px:set[ \t]+(.*?)[ \t]*$", re.M)


def read_pragmas(source: str, filename: str) -> dict[str, Any]:
    """The settings of every ``#px:set key=value`` line (later lines win)."""
    out: dict[str, Any] = {}
    for m in _LINE.finditer(source):
        line = source.count("\n", 0, m.start()) + 1
        col = m.start(1) - (source.rfind("\n", 0, m.start(1)) + 1) + 1
        span = Span(filename, line, col, line, col + len(m.group(1)))
        for item in m.group(1).split():
            key, eq, raw = item.partition("=")
            if key not in PRAGMAS:
                known = ", ".join(PRAGMAS)
                raise CompileError(f"unknown setting {key!r} in #px:set", span,
                                   hint=f"settings: {known}", source=source)
            kind = PRAGMAS[key][0]
            try:
                value = kind(raw)
                if kind is int and value < 0:
                    raise ValueError
            except ValueError:
                raise CompileError(f"#px:set {key} needs a {kind.__name__} of 0 or more, "
                                   f"not {raw!r}", span, hint=f"e.g. #px:set {key}=1000",
                                   source=source) from None
            if not eq:
                raise CompileError(f"#px:set {key} needs a value", span, source=source)
            out[key] = value
    return out

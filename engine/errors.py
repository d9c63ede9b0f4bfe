"""One exception hierarchy for everything a user can cause.

Every error carries a message, an optional source span and an optional hint (the next step). Its
``render()`` prints ``file:line:col``, the source line and a caret under the failing part:

>>> err = CompileError("unknown column 'stauts'", Span("q.pxl", 2, 9, 2, 15), hint="did you mean 'status'?")
>>> print(err.render("import px\\ndf = df[df.stauts > 1]\\n"))
q.pxl:2:9: error: unknown column 'stauts'
  df = df[df.stauts > 1]
          ^^^^^^
hint: did you mean 'status'?
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "Span",
    "PxlError",
    "PxlSyntaxError",
    "CompileError",
    "PlanError",
    "ExecuteError",
    "DataError",
]


@dataclass(frozen=True, slots=True)
class Span:
    """Where in a script something stands; lines and columns count from 1."""

    file: str
    line: int
    col: int
    end_line: int | None = None
    end_col: int | None = None

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


class PxlError(Exception):
    """Base of every error a user can cause. Subclasses name the stage that found it."""

    kind = "error"

    def __init__(self, message: str, span: Span | None = None, *, hint: str | None = None,
                 source: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.span = span
        self.hint = hint
        self.source = source

    def with_source(self, source: str, span: Span | None = None) -> PxlError:
        """Attach the script text (and a span if this error has none) for rendering."""
        if self.source is None:
            self.source = source
        if self.span is None and span is not None:
            self.span = span
        return self

    def __str__(self) -> str:
        where = f"{self.span}: " if self.span else ""
        text = f"{where}{self.kind}: {self.message}"
        if self.hint:
            text += f" (hint: {self.hint})"
        return text

    def render(self, source: str | None = None) -> str:
        """The message as a person should read it: place, source line, caret, hint."""
        source = source if source is not None else self.source
        head = f"{self.span}: " if self.span else ""
        lines = [f"{head}{self.kind}: {self.message}"]
        excerpt = _excerpt(source, self.span) if source is not None and self.span else None
        if excerpt:
            lines.extend(excerpt)
        if self.hint:
            lines.append(f"hint: {self.hint}")
        return "\n".join(lines)


class PxlSyntaxError(PxlError):
    """The text is not PxL: bad tokens, bad indentation, a Python construct PxL lacks."""

    kind = "syntax error"


class CompileError(PxlError):
    """The script is PxL but means nothing: unknown names, columns or tables, type errors."""

    kind = "error"


class PlanError(PxlError):
    """A plan node is inconsistent (raised by node constructors and the optimizer)."""

    kind = "plan error"


class ExecuteError(PxlError):
    """The plan failed while running; names the node that failed."""

    kind = "execution error"


class DataError(PxlError):
    """Input data cannot be read or does not fit a table (files, batches, bad schemas)."""

    kind = "data error"


def _excerpt(source: str, span: Span) -> list[str] | None:
    lines = source.splitlines()
    if not 1 <= span.line <= len(lines):
        return None
    text = lines[span.line - 1].expandtabs(1)
    if len(text) > 200:  # keep the caret readable on huge lines
        start = max(0, span.col - 80)
        text = text[start:start + 160]
        col = span.col - start
    else:
        col = span.col
    width = 1
    if span.end_line == span.line and span.end_col is not None and span.end_col > span.col:
        width = span.end_col - span.col
    width = max(1, min(width, len(text) - col + 2))
    return [f"  {text}", "  " + " " * (col - 1) + "^" * width]

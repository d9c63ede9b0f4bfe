"""What the REPL's editor needs to know about the text typed so far, without parsing it.

:func:`scan` walks the text once, tracking strings, comments and brackets. From it
:func:`is_complete` decides whether Enter submits the input or starts a new line, and
:func:`next_indent` how far that new line is indented:

>>> is_complete("df = px.DataFrame(table='http_events',")
False
>>> is_complete("def f(t: str):\\n    return px.DataFrame(table=t)")
False
>>> is_complete("def f(t: str):\\n    return px.DataFrame(table=t)\\n")
True
>>> next_indent("def f(t: str):")
4
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Scan", "scan", "is_complete", "next_indent", "INDENT"]

INDENT = 4
_OPEN, _CLOSE = "([{", ")]}"


@dataclass
class Scan:
    """Brackets still open (character, offset), the string the text ends inside (if any) and
    where each closed bracket was opened."""

    brackets: list[tuple[str, int]] = field(default_factory=list)
    string_start: int | None = None  # offset of the opening quote
    string_quote: str = ""
    in_comment: bool = False
    pairs: dict[int, int] = field(default_factory=dict)  # offset of a closer → of its opener

    @property
    def open_string(self) -> bool:
        return self.string_start is not None


def scan(text: str) -> Scan:
    """Strings, comments and brackets of ``text``; unbalanced closers are ignored."""
    state = Scan()
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if state.open_string:
            q = state.string_quote
            if ch == "\\":
                i += 2
                continue
            if text.startswith(q, i):
                state.string_start, state.string_quote = None, ""
                i += len(q)
                continue
            if ch == "\n" and len(q) == 1:  # an unterminated one-line string ends at the line
                state.string_start, state.string_quote = None, ""
            i += 1
            continue
        if ch == "#":
            end = text.find("\n", i)
            if end < 0:
                state.in_comment = True
                break
            i = end
            continue
        if ch in "'\"":
            quote = ch * 3 if text.startswith(ch * 3, i) else ch
            state.string_start, state.string_quote = i, quote
            i += len(quote)
            continue
        if ch in _OPEN:
            state.brackets.append((ch, i))
        elif ch in _CLOSE and state.brackets and _OPEN[_CLOSE.index(ch)] == state.brackets[-1][0]:
            state.pairs[i] = state.brackets.pop()[1]
        i += 1
    return state


def _code(line: str) -> str:
    """A line without its comment (a '#' inside a string is kept)."""
    state = scan(line)
    if state.in_comment:
        return line[: line.rfind("#")].rstrip()
    return line.rstrip()


def is_complete(text: str, *, cursor_at_end: bool = True) -> bool:
    """Whether Enter should submit ``text``: no open bracket or string, no line ending in ':',
    and after an indented block a blank last line (as in Python's REPL). With the cursor
    inside the text, an indented block needs no blank line (a recalled input edited in place)."""
    stripped = text.strip()
    if not stripped or stripped.startswith("."):
        return True
    state = scan(text)
    if state.brackets or (state.open_string and len(state.string_quote) == 3):
        return False
    lines = text.split("\n")
    last_code = next((_code(ln) for ln in reversed(lines) if _code(ln).strip()), "")
    if last_code.endswith((":", "\\")):
        return False
    if _opens_block(text) and cursor_at_end:
        return lines[-1].strip() == ""
    return True


def _opens_block(text: str) -> bool:
    """Whether a line of ``text`` (outside brackets) ends with ':' and so opens a block."""
    offset = 0
    for line in text.split("\n"):
        offset += len(line) + 1
        if _code(line).endswith(":") and not scan(text[:offset]).brackets:
            return True
    return False


def next_indent(text: str) -> int:
    """Indentation of a new line started after ``text``."""
    state = scan(text)
    line = text.rsplit("\n", 1)[-1]
    indent = len(line) - len(line.lstrip(" "))
    code = _code(line)
    if code.endswith(":") and not state.brackets:
        return indent + INDENT
    if state.brackets:
        _, at = state.brackets[-1]
        if at >= len(text) - len(line):  # opened on this line
            after = text[at + 1:].strip()
            if after:  # align with the first argument: f(a,\n  b)
                column = at - (len(text) - len(line)) + 1
                return column + len(text[at + 1:]) - len(text[at + 1:].lstrip())
            return indent + INDENT
        return indent
    if code.strip().split(" ", 1)[0] in ("return", "pass") and indent >= INDENT:
        return indent - INDENT
    return indent

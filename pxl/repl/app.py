"""The prompt_toolkit application of ``pxl repl``: editing keys, history, completion, toolbar.

Enter runs an input once it is complete (:func:`pxl.repl.editing.is_complete`) and otherwise
opens an indented new line; Esc Enter runs it at once. History is kept in
``$XDG_DATA_HOME/pxl/history`` (``~/.local/share/pxl/history``); ``PXL_HISTORY=FILE`` moves it
and ``PXL_NO_HISTORY=1`` keeps it in memory only. When standard input is not a terminal the
inputs are read from it line by line, without prompts (``echo .tables | pxl repl --demo``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from prompt_toolkit import PromptSession
from prompt_toolkit.completion import Completer, Completion
from prompt_toolkit.enums import EditingMode
from prompt_toolkit.filters import Condition
from prompt_toolkit.formatted_text import FormattedText
from prompt_toolkit.history import FileHistory, History, InMemoryHistory
from prompt_toolkit.key_binding import KeyBindings
from prompt_toolkit.shortcuts import print_formatted_text
from prompt_toolkit.styles import Style

from pxl.repl.completion import call_hint, candidates
from pxl.repl.editing import INDENT, is_complete, next_indent
from pxl.repl.session import Reply, Session

if TYPE_CHECKING:
    from prompt_toolkit.document import Document
    from prompt_toolkit.input import Input
    from prompt_toolkit.key_binding import KeyPressEvent
    from prompt_toolkit.output import Output

    from engine.catalog import Catalog

__all__ = ["run_repl", "build_prompt", "history_path", "PxlCompleter", "key_bindings"]

PROMPT, CONTINUATION = "px> ", "... "
TOOLBAR = " Tab complete · Enter run · Esc Enter run now · Ctrl-R search · .help · Ctrl-D quit"
STYLE = Style.from_dict({"bottom-toolbar": "noreverse bg:#303030 #c0c0c0", "error": "ansired"})


def history_path() -> Path | None:
    """Where inputs are remembered between sessions; None when history is switched off."""
    if os.environ.get("PXL_NO_HISTORY"):
        return None
    if os.environ.get("PXL_HISTORY"):
        return Path(os.environ["PXL_HISTORY"]).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "pxl" / "history"


def _history() -> History:
    path = history_path()
    if path is None:
        return InMemoryHistory()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(exist_ok=True)
    except OSError:
        return InMemoryHistory()
    return FileHistory(str(path))


class PxlCompleter(Completer):
    """prompt_toolkit's view of :func:`pxl.repl.completion.candidates`. Evaluations of a
    frame are cached until the session's names change."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._cache: dict[str, Any] = {}
        self._version = -1

    def evaluate(self, expr: str) -> Any:
        if self._version != self.session.version:
            self._cache.clear()
            self._version = self.session.version
        if expr not in self._cache:
            if len(self._cache) > 256:
                self._cache.clear()
            self._cache[expr] = self.session.value_of(expr)
        return self._cache[expr]

    def get_completions(self, document: Document, complete_event: Any):
        for c in candidates(self.session, document.text_before_cursor, self.evaluate):
            yield Completion(c.text, c.start, display=c.display, display_meta=c.meta)


def key_bindings(session: Session) -> KeyBindings:
    kb = KeyBindings()

    @Condition
    def in_indentation() -> bool:
        from prompt_toolkit.application import get_app

        return not get_app().current_buffer.document.current_line_before_cursor.strip()

    @kb.add("enter")
    def _enter(event: KeyPressEvent) -> None:
        buf = event.current_buffer
        state = buf.complete_state
        if state is not None and state.current_completion is not None:
            buf.complete_state = None  # Enter takes the highlighted completion
            return
        doc = buf.document
        at_end = not doc.text_after_cursor.strip()
        if is_complete(doc.text, cursor_at_end=at_end):
            buf.validate_and_handle()
        else:
            buf.insert_text("\n" + " " * next_indent(doc.text_before_cursor))

    @kb.add("escape", "enter")
    def _run_now(event: KeyPressEvent) -> None:
        event.current_buffer.validate_and_handle()

    @kb.add("tab", filter=in_indentation)
    def _indent(event: KeyPressEvent) -> None:
        event.current_buffer.insert_text(" " * INDENT)

    return kb


def _lexer() -> Any:
    try:
        from prompt_toolkit.lexers import PygmentsLexer
        from pygments.lexers.python import PythonLexer
    except ImportError:  # highlighting is a nicety
        return None
    return PygmentsLexer(PythonLexer)


def build_prompt(session: Session, *, input: Input | None = None,
                 output: Output | None = None) -> PromptSession:
    completer = PxlCompleter(session)

    def toolbar() -> str:
        from prompt_toolkit.application import get_app

        text = get_app().current_buffer.document.text_before_cursor
        hint = call_hint(session, text, completer.evaluate) if "(" in text else None
        return f" {hint}" if hint else TOOLBAR

    return PromptSession(
        PROMPT, multiline=True, prompt_continuation=lambda width, n, soft: CONTINUATION,
        history=_history(), completer=completer, complete_while_typing=True,
        complete_in_thread=False, key_bindings=key_bindings(session), lexer=_lexer(),
        bottom_toolbar=toolbar, style=STYLE, enable_history_search=False,
        editing_mode=EditingMode.VI if session.settings.vi else EditingMode.EMACS,
        input=input, output=output, include_default_pygments_style=True,
    )


def _show(reply: Reply) -> None:
    if not reply.text:
        return
    if reply.error and sys.stdout.isatty():
        print_formatted_text(FormattedText([("class:error", reply.text)]), style=STYLE)
    else:
        print(reply.text, flush=True)


def _banner(session: Session) -> str:
    from pxl import __version__

    n = len(session.catalog.table_names())
    tables = f"{n} table{'' if n == 1 else 's'} (.tables lists them)" if n else \
        "no tables (start with --demo or --data DIR)"
    return f"pxl {__version__} REPL: {tables}. .help for help, Ctrl-D to leave."


def run_repl(catalog: Catalog, *, now: int | None = None, vi: bool = False,
             stdin: TextIO | None = None, input: Input | None = None,
             output: Output | None = None) -> int:
    """Run the REPL until Ctrl-D or .quit; returns the exit code."""
    session = Session(catalog, now=now)
    session.settings.vi = vi
    stdin = stdin or sys.stdin
    if input is None and not stdin.isatty():
        return run_lines(session, stdin)
    prompt = build_prompt(session, input=input, output=output)
    print(_banner(session), flush=True)
    while not session.done:
        prompt.editing_mode = EditingMode.VI if session.settings.vi else EditingMode.EMACS
        try:
            text = prompt.prompt()
        except KeyboardInterrupt:
            continue
        except EOFError:
            break
        _show(_safely(session, text))
    return 0


def _safely(session: Session, text: str) -> Reply:
    """The reply to one input; Ctrl-C at any moment cancels it, a bug in pxl is reported."""
    try:
        return session.handle(text)
    except KeyboardInterrupt:
        return Reply("cancelled", error=True)
    except Exception as exc:  # a bug in pxl must not end the session
        return Reply(f"internal error: {type(exc).__name__}: {exc}\n"
                     "This is a bug in pxl; the session goes on.", error=True)


def run_lines(session: Session, stream: TextIO) -> int:
    """Inputs read from a pipe: each complete input runs as it would when typed; 1 if any
    input failed."""
    failed, pending = False, ""
    for line in stream:
        if pending.strip() and line[:1] not in " \t\n)]}" and \
                is_complete(pending.rstrip("\n"), cursor_at_end=False):
            reply = _safely(session, pending)  # a block ended without a blank line
            failed |= reply.error
            _print_plain(reply)
            pending = ""
        pending += line
        body = pending.rstrip("\n")
        if is_complete(body + ("\n" if pending.endswith("\n\n") else "")):
            reply = _safely(session, body)
            failed |= reply.error
            _print_plain(reply)
            pending = ""
        if session.done:
            return int(failed)
    if pending.strip():
        reply = _safely(session, pending)
        failed |= reply.error
        _print_plain(reply)
    return int(failed)


def _print_plain(reply: Reply) -> None:
    if reply.text:
        print(reply.text, file=sys.stderr if reply.error else sys.stdout, flush=True)

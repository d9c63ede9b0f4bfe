"""The interactive REPL: ``pxl repl``.

:mod:`pxl.repl.session` holds the evaluation state (and needs no terminal),
:mod:`pxl.repl.completion` the completion, :mod:`pxl.repl.commands` the dot-commands,
:mod:`pxl.repl.editing` what Enter and indentation do, and :mod:`pxl.repl.app` the
prompt_toolkit application around them.
"""

from __future__ import annotations

from pxl.repl.session import Reply, Session, Settings

__all__ = ["Session", "Settings", "Reply"]

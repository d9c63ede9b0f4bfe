"""Dot-commands of the REPL: ``.tables``, ``.schema http_events``, ``.mode csv`` …

Each command is a function ``(session, argument text) -> Reply`` listed once in
:data:`COMMANDS` with its usage and one line of help; ``.help`` and completion read that table.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from engine.errors import PxlError
from engine.explain import explain
from engine.timeutil import format_ns, now_ns
from pxl.repl.render import MODES, format_schema, format_tables

if TYPE_CHECKING:
    from pxl.repl.session import Reply, Session

__all__ = ["COMMANDS", "Command", "run_command", "parse_interval", "bundled_scripts"]


@dataclass(frozen=True)
class Command:
    run: Callable[[Session, str], Reply]
    usage: str
    help: str
    choices: tuple[str, ...] = ()  # completions of the argument, when they are fixed


def _reply(text: str, error: bool = False) -> Reply:
    from pxl.repl.session import Reply

    return Reply(text, error)


def run_command(session: Session, line: str) -> Reply:
    name, _, arg = line.strip().partition(" ")
    command = COMMANDS.get(name[1:])
    if command is None:
        from pxl.compiler import closest

        hint = closest(name[1:], list(COMMANDS))
        return _reply(f"no command {name}" + (f"; {hint}" if hint else "") +
                      " (.help lists them)", True)
    return command.run(session, arg.strip())


# --- data --------------------------------------------------------------------------------------
def _tables(s: Session, arg: str) -> Reply:
    return _reply(format_tables(s.catalog, s.terminal_width()))


def _schema(s: Session, arg: str) -> Reply:
    if not arg:
        return _reply("usage: .schema TABLE  (tables: " + ", ".join(s.catalog.table_names()) + ")",
                      True)
    text = format_schema(s.catalog, arg)
    if text is None:
        from pxl.compiler import closest

        hint = closest(arg, s.catalog.table_names())
        return _reply(f"no table {arg!r}" + (f"; {hint}" if hint else ""), True)
    return _reply(text)


# --- scripts -----------------------------------------------------------------------------------
def bundled_scripts() -> list[tuple[str, str]]:
    """(name, summary) of the bundled scripts; none if this pxl has no bundled scripts."""
    try:
        from pxl.scripts import bundled
    except ImportError:
        return []
    return [(b.name, b.summary) for b in bundled()]


def _scripts(s: Session, arg: str) -> Reply:
    found = bundled_scripts()
    if not found:
        return _reply("no bundled scripts")
    width = max(len(n) for n, _ in found) + 2
    return _reply("\n".join(f"{n:<{width}}{summary}".rstrip() for n, summary in found) +
                  "\n(.run NAME [arg=value ...] runs one)")


def _run(s: Session, arg: str) -> Reply:
    if not arg:
        return _reply("usage: .run NAME [arg=value ...]  (.scripts lists the names)", True)
    words = shlex.split(arg)
    try:
        from pxl.scripts import find
    except ImportError:
        return _reply("no bundled scripts", True)
    script = find(words[0])
    if script is None:
        return _reply(f"no bundled script {words[0]!r} (.scripts lists them)", True)
    argv = [w if w.startswith("--") else f"--{w}" for w in words[1:]]
    source = script.path.read_text(encoding="utf-8")

    def once() -> Reply:
        plan = _compile_script(s, source, script.name, script.path, argv)
        return s.run_plan(plan, f".run {arg}", rerun)

    def rerun() -> Reply:
        try:
            return once()
        except PxlError as exc:
            return _reply(exc.render(source), True)

    return rerun()


def _compile_script(s: Session, source: str, name: str, path: Path, argv: list[str]):
    from pxl.api import compile as compile_script
    from pxl.args import declared_args, load_vis, parse_cli_args
    from pxl.parser import parse
    from pxl.scripts import vis_path_for

    vis_path = vis_path_for(path)
    vis = load_vis(vis_path) if vis_path else None
    values = parse_cli_args(declared_args(parse(source, name), vis), argv) if argv else {}
    now = s.now if s.now is not None else now_ns()
    return compile_script(source, s.catalog, now=now, filename=name, args=values, vis=vis)


def _load(s: Session, arg: str) -> Reply:
    if not arg:
        return _reply("usage: .load FILE", True)
    path = Path(arg).expanduser()
    try:
        source = path.read_text(encoding="utf-8")
    except OSError as exc:
        return _reply(f"cannot read {arg}: {exc.strerror or exc}", True)
    return s.evaluate(source, filename=str(arg))


# --- settings ----------------------------------------------------------------------------------
def _on_off(value: str, what: str) -> bool | str:
    if value in ("on", "off"):
        return value == "on"
    return f"usage: .{what} on|off"


def _mode(s: Session, arg: str) -> Reply:
    if not arg:
        return _reply(f"mode: {s.settings.mode}")
    if arg not in MODES:
        return _reply(f"usage: .mode {'|'.join(MODES)}", True)
    s.settings.mode = arg
    return _reply(f"mode: {arg}")


def _maxrows(s: Session, arg: str) -> Reply:
    if not arg:
        return _reply(f"maxrows: {s.settings.max_rows}")
    if not arg.isdigit():
        return _reply("usage: .maxrows N  (rows shown per table)", True)
    s.settings.max_rows = int(arg)
    return _reply(f"maxrows: {arg}")


def _timer(s: Session, arg: str) -> Reply:
    value = _on_off(arg, "timer")
    if isinstance(value, str):
        return _reply(value, True)
    s.settings.timer = value
    return _reply(f"timer: {arg}")


def _vi(s: Session, arg: str) -> Reply:
    value = _on_off(arg, "vi")
    if isinstance(value, str):
        return _reply(value, True)
    s.settings.vi = value
    return _reply("vi keys" if value else "emacs keys")


# --- the last query ----------------------------------------------------------------------------
def _explain(s: Session, arg: str) -> Reply:
    if s.last is None:
        return _reply("no query yet: .explain shows the plan of the last query that displayed "
                      "something", True)
    return _reply(explain(s.last.plan))


def parse_interval(text: str) -> float | None:
    """Seconds in '2s', '500ms', '1m' or '3'; None if it is not an interval.

    >>> parse_interval('500ms'), parse_interval('2s'), parse_interval('1m'), parse_interval('x')
    (0.5, 2.0, 60.0, None)
    """
    text = text.strip() or "2s"
    for suffix, factor in (("ms", 1e-3), ("s", 1.0), ("m", 60.0)):
        if text.endswith(suffix):
            text, scale = text[: -len(suffix)], factor
            break
    else:
        scale = 1.0
    try:
        seconds = float(text) * scale
    except ValueError:
        return None
    return seconds if seconds > 0 else None


def _watch(s: Session, arg: str) -> Reply:
    from pxl.repl.session import Cancelled

    seconds = parse_interval(arg)
    if seconds is None:
        return _reply("usage: .watch INTERVAL  (e.g. .watch 2s, .watch 500ms)", True)
    if s.last is None:
        return _reply("no query yet: run one, then .watch re-runs it", True)
    last = s.last
    try:
        while True:
            reply = last.rerun()
            s.clear()
            s.echo(f"every {arg or '2s'}: {last.label}  [{format_ns(now_ns())[11:19]}]  "
                   "Ctrl-C stops\n")
            s.echo(reply.text)
            s.sleep(seconds)
    except (KeyboardInterrupt, Cancelled):
        return _reply("stopped watching")


# --- the session -------------------------------------------------------------------------------
def _help(s: Session, arg: str) -> Reply:
    width = max(len(c.usage) for c in COMMANDS.values()) + 3
    lines = ["Type PxL (import px is implicit); an expression that is a DataFrame shows its rows.",
             "Enter runs a complete input; an open bracket or block continues it (a blank line",
             "ends a block; Esc Enter runs at once). Tab completes; Ctrl-R searches history;",
             "help(px.fn) or px.fn? explains a function; Ctrl-C cancels; Ctrl-D leaves.", ""]
    lines += [f"  .{c.usage:<{width}}{c.help}" for c in COMMANDS.values()]
    return _reply("\n".join(lines))


def _quit(s: Session, arg: str) -> Reply:
    s.done = True
    return _reply("")


COMMANDS: dict[str, Command] = {
    "tables": Command(_tables, "tables", "list the tables, their rows and time ranges"),
    "schema": Command(_schema, "schema TABLE", "the columns of a table"),
    "scripts": Command(_scripts, "scripts", "list the bundled scripts"),
    "run": Command(_run, "run NAME [arg=value ...]", "run a bundled script"),
    "load": Command(_load, "load FILE", "run a PxL file here (its names stay)"),
    "mode": Command(_mode, "mode table|json|csv", "how results are shown", MODES),
    "maxrows": Command(_maxrows, "maxrows N", "rows shown per table"),
    "timer": Command(_timer, "timer on|off", "show row counts and run times", ("on", "off")),
    "vi": Command(_vi, "vi on|off", "vi or emacs editing keys", ("on", "off")),
    "explain": Command(_explain, "explain", "the plan of the last query"),
    "watch": Command(_watch, "watch [2s]", "re-run the last query every interval until Ctrl-C",
                     ("1s", "2s", "5s", "10s")),
    "help": Command(_help, "help", "this help"),
    "quit": Command(_quit, "quit", "leave (or Ctrl-D)"),
    "exit": Command(_quit, "exit", "leave (or Ctrl-D)"),
}

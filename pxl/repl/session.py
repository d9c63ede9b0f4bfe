"""The REPL's evaluation state: names that persist between inputs, settings, the last query.

A :class:`Session` takes one input at a time (PxL, a dot-command or a help request) and answers
with a :class:`Reply`. ``import px`` is implicit. An input is evaluated over the session's names
with :func:`pxl.compiler.compile_interactive`; when it ends in an expression that is a
DataFrame, that frame is displayed too. An input that fails — in the parser, the compiler or
while running — leaves the names as they were before it.

>>> import polars as pl
>>> from pxl.api import make_catalog
>>> s = Session(make_catalog(tables={"t": pl.DataFrame({"a": [1, 2, 3]})}), now=0, width=60)
>>> s.settings.timer = False
>>> s.handle("n = 2").text
''
>>> print(s.handle("df = px.DataFrame('t')\\ndf = df[df.a >= n]\\ndf").text)
df: 2 rows
┌───┐
│ a │
├───┤
│ 2 │
│ 3 │
└───┘
>>> s.handle("n").text
'2'
"""

from __future__ import annotations

import re
import shutil
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from engine.catalog import Catalog
from engine.errors import CompileError, PxlError
from engine.executor import execute
from engine.optimizer import optimize
from engine.relations import Plan, Sink
from engine.timeutil import now_ns
from pxl import syntax as S
from pxl.compiler import compile_interactive, new_env
from pxl.parser import parse
from pxl.repl.render import elapsed, format_outputs, format_value, help_text
from pxl.values import PxModule

__all__ = ["Session", "Settings", "Reply", "Cancelled", "LastQuery", "INPUT"]

INPUT = "<input>"
_HELP_CALL = re.compile(r"^help\((.*)\)$", re.S)


class Cancelled(Exception):  # noqa: N818 - a user's Ctrl-C, not a failure
    """The user pressed Ctrl-C while a query ran."""


@dataclass(frozen=True)
class Reply:
    """What the REPL prints for one input; ``error`` replies are shown as errors."""

    text: str
    error: bool = False


@dataclass
class Settings:
    mode: str = "table"  # table | json | csv
    max_rows: int = 40
    timer: bool = True
    vi: bool = False


@dataclass
class LastQuery:
    """The last input that displayed something: its text, plan and how to run it again."""

    label: str
    plan: Plan
    rerun: Callable[[], Reply]


@dataclass
class _Run:
    outputs: list[Any]
    plan: Plan
    seconds: float
    missing: tuple[Any, ...] = ()  # agents a broker's answer lacks


@dataclass
class Session:
    """Names, settings and history of one REPL.

    ``now`` pins relative times ('-5m') to an instant; None follows the clock (each input is
    compiled at its own now). ``width`` fixes the width tables are fitted to; None asks the
    terminal each time."""

    catalog: Catalog
    now: int | None = None
    width: int | None = None
    settings: Settings = field(default_factory=Settings)
    env: dict[str, Any] = field(default_factory=dict)
    last: LastQuery | None = None
    done: bool = False
    #: how .watch writes, clears the screen and waits (replaced in tests)
    echo: Callable[[str], None] = print
    clear: Callable[[], None] = lambda: print("\x1b[2J\x1b[H", end="")
    sleep: Callable[[float], None] = time.sleep
    version: int = 0  # bumped when names change, so completion can cache evaluations

    def __post_init__(self) -> None:
        if not self.env:
            self.env = new_env()
            self.env["px"] = PxModule()

    # --- inputs ---------------------------------------------------------------------------------
    def handle(self, text: str) -> Reply:
        """One input as typed: a dot-command, ``help(x)`` / ``x?``, or PxL."""
        from pxl.repl.commands import run_command

        stripped = text.strip()
        if not stripped:
            return Reply("")
        try:
            if stripped.startswith(".") and "\n" not in stripped:
                return run_command(self, stripped)
            if stripped.endswith("?") and "\n" not in stripped:
                return self.help(stripped[:-1].strip())
            match = _HELP_CALL.match(stripped)
            if match:
                return self.help(match.group(1).strip())
            return self.evaluate(text)
        except Cancelled:
            return Reply("cancelled", error=True)

    def evaluate(self, source: str, filename: str = INPUT) -> Reply:
        """Evaluate PxL over the session's names; show what it displays and its value."""
        snapshot = dict(self.env)
        try:
            run, value = self._run(source, self.env, filename)
        except PxlError as exc:
            self._restore(snapshot)
            return Reply(exc.render(source), error=True)
        except (Cancelled, KeyboardInterrupt):
            self._restore(snapshot)
            raise Cancelled() from None
        self.version += 1
        if run is None:
            return Reply(format_value(value))
        label = source.strip().splitlines()[0] if source.strip() else source
        self.last = LastQuery(label, run.plan,
                              lambda: self._rerun(source, snapshot, filename))
        return Reply(self.show(run))

    def _rerun(self, source: str, env: dict[str, Any], filename: str) -> Reply:
        """The same input over the names it first saw, at a new now; changes no names."""
        try:
            run, _ = self._run(source, dict(env), filename)
        except PxlError as exc:
            return Reply(exc.render(source), error=True)
        except KeyboardInterrupt:
            raise Cancelled() from None
        return Reply(self.show(run) if run else "")

    def _restore(self, snapshot: dict[str, Any]) -> None:
        # The same dict stays the globals of every function defined in the session.
        self.env.clear()
        self.env.update(snapshot)

    def _run(self, source: str, env: dict[str, Any], filename: str) -> tuple[_Run | None, Any]:
        started = time.perf_counter()
        module = parse(source, filename)
        now = self.now if self.now is not None else now_ns()
        try:
            plan, value = compile_interactive(module, env, self.catalog, now=now,
                                              filename=filename)
        except PxlError as exc:
            raise exc.with_source(source) from None
        plan = self._display_value(plan, value, module)
        if not plan.sinks:
            return None, value
        try:
            plan = optimize(plan)
            outputs, missing = run_interruptibly(lambda: self._execute(plan))
        except PxlError as exc:
            raise exc.with_source(source) from None
        return _Run(outputs, plan, time.perf_counter() - started, missing), None

    def _execute(self, plan: Plan) -> tuple[list[Any], tuple[Any, ...]]:
        """The plan's outputs, and the agents missing from them: run here, or where the tables
        are (a catalog with ``run_plan``: an agent or broker, ``pxl repl --connect``)."""
        remote = getattr(self.catalog, "run_plan", None)
        if remote is None:
            return execute(plan, self.catalog), ()
        results = remote(plan)
        return results.outputs, tuple(results.missing)

    @staticmethod
    def _display_value(plan: Plan, value: Any, module: S.Module) -> Plan:
        """An input ending in a DataFrame expression displays it (named after the variable)."""
        from pxl.dataframe import DataFrame

        if not isinstance(value, DataFrame):
            return plan
        last = module.body[-1]
        assert isinstance(last, S.ExprStmt)
        name = last.expr.id if isinstance(last.expr, S.Name) else "output"
        taken = {s.name for s in plan.sinks}
        unique, n = name, 1
        while unique in taken:
            unique, n = f"{name}_{n}", n + 1
        return Plan((*plan.sinks, Sink(value.rel, unique, (), span=last.span)))

    def run_plan(self, plan: Plan, label: str, rerun: Callable[[], Reply]) -> Reply:
        """Run an already compiled plan (bundled scripts) and remember it as the last query."""
        started = time.perf_counter()
        outputs, missing = run_interruptibly(lambda: self._execute(plan))
        self.last = LastQuery(label, plan, rerun)
        return Reply(self.show(_Run(outputs, plan, time.perf_counter() - started, missing)))

    # --- showing --------------------------------------------------------------------------------
    def terminal_width(self) -> int:
        return self.width or shutil.get_terminal_size().columns

    def show(self, run: _Run) -> str:
        s = self.settings
        text = format_outputs(run.outputs, mode=s.mode, max_rows=s.max_rows,
                              width=self.terminal_width())
        if s.timer:
            rows = sum(o.frame.height for o in run.outputs)
            footer = f"{rows:,} row{'' if rows == 1 else 's'} in {elapsed(run.seconds)}"
            text = f"{text}\n{footer}" if text else footer
        if run.missing:
            gap = "\n".join(f"  {m}" for m in run.missing)
            text += f"\nwarning: partial result: {len(run.missing)} agent(s) did not answer:\n{gap}"
        return text

    # --- help and evaluation without running -------------------------------------------------
    def help(self, expr: str) -> Reply:
        """``help(px.mean)`` / ``px.mean?``: the doc of a function, method, name or table."""
        from pxl.repl.commands import run_command
        from pxl.repl.render import format_schema

        if not expr or expr == "help":
            return run_command(self, ".help")
        if expr.strip("'\"") in self.catalog.table_names():
            return Reply(format_schema(self.catalog, expr.strip("'\"")) or "")
        try:
            value = self.value_of(expr, strict=True)
        except PxlError as exc:
            return Reply(exc.render(expr), error=True)
        return Reply(help_text(value, expr))

    def value_of(self, expr: str, *, strict: bool = False) -> Any:
        """The value of an expression over the session's names, evaluated without running
        anything or changing a name; None if it fails (or, with ``strict``, its error)."""
        try:
            module = parse(expr, INPUT)
            if len(module.body) != 1 or not isinstance(module.body[0], S.ExprStmt):
                raise CompileError("expected one expression", module.span)
            now = self.now if self.now is not None else now_ns()
            _, value = compile_interactive(module, dict(self.env), self.catalog, now=now)
        except PxlError:
            if strict:
                raise
            return None
        return value

    def names(self) -> Sequence[str]:
        """The names the user has bound (not the built-in ones)."""
        return [n for n in self.env if n not in new_env()]


def run_interruptibly(fn: Callable[[], Any]) -> Any:
    """Run ``fn`` in a worker thread so that Ctrl-C (KeyboardInterrupt in the main thread)
    cancels the wait at once; the abandoned query finishes in the background."""
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # handed to the waiting thread
            box["error"] = exc

    worker = threading.Thread(target=work, name="pxl-query", daemon=True)
    worker.start()
    try:
        while worker.is_alive():
            worker.join(0.05)
    except KeyboardInterrupt:
        raise Cancelled() from None
    if "error" in box:
        raise box["error"]
    return box["value"]

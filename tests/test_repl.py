"""The REPL: its session (names, display, errors, dot-commands), completion, editing keys, the
prompt_toolkit application on a pipe, and one real session in a pseudo-terminal."""

from __future__ import annotations

import doctest
import importlib
import os
import re
import signal
import sys
import threading
import time

import pytest

from pxl.repl.completion import call_hint, candidates, receiver
from pxl.repl.editing import is_complete, next_indent
from pxl.repl.session import Cancelled, Session, run_interruptibly
from tests.conftest import DEMO_NOW, ROOT

DF = "df = px.DataFrame(table='http_events', start_time='-5m')"


@pytest.fixture
def session(demo_catalog) -> Session:
    s = Session(demo_catalog, now=DEMO_NOW, width=100)
    assert s.handle(DF).text == ""
    return s


def texts(session: Session, typed: str) -> list[str]:
    return [c.text for c in candidates(session, typed)]


@pytest.mark.parametrize("name", ["pxl.repl.session", "pxl.repl.editing", "pxl.repl.render",
                                  "pxl.repl.completion", "pxl.repl.commands"])
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0


# --- the session -------------------------------------------------------------------------------
def test_names_and_functions_persist(session: Session) -> None:
    assert session.handle("def errors(d):\n    return d[d.resp_status >= limit]\n").text == ""
    session.handle("limit = 500")  # defined after the function that reads it, as in Python
    reply = session.handle("errors(df).head(2)")
    assert not reply.error, reply.text
    assert reply.text.startswith("output: 2 rows")
    assert "df" in session.names() and "errors" in session.names()
    assert session.handle("limit + 1").text == "501"


def test_dataframe_expression_displays_itself(session: Session) -> None:
    session.handle("top = df.groupby('req_method').agg(n=('latency', px.count))")
    reply = session.handle("top")
    assert reply.text.startswith("top: ") and "req_method" in reply.text
    assert re.search(r"\n\d+ rows? in [\d.]+ (ms|µs|s)$", reply.text)
    both = session.handle("px.display(df.head(1), name='first')\ndf.head(2)").text
    assert both.index("first: 1 row") < both.index("output: 2 rows")


def test_values_echo_without_running(session: Session) -> None:
    assert session.handle("x = 2\nx * 3").text == "6"
    assert session.handle("'a' + 'b'").text == "'ab'"
    assert "INT64[duration_ns]" in session.handle("df.latency").text
    assert "grouped by req_path" in session.handle("df.groupby('req_path')").text
    assert session.handle("px.mean").text.startswith("px.mean(")
    assert session.handle("w = px.arg('w', default='-5m')\nw").text == "'-5m'"  # its default


def test_an_error_leaves_the_names_as_they_were(session: Session) -> None:
    reply = session.handle("a = 1\nb = df[df.resp_stauts >= 500]")
    assert reply.error
    assert reply.text.splitlines()[1:3] == ["  b = df[df.resp_stauts >= 500]",
                                            "         ^^^^^^^^^^^^^^"]
    assert "did you mean 'resp_status'?" in reply.text
    assert "a" not in session.env and "b" not in session.env
    assert session.handle("df = df.head(1)\ndf = df.nope").error
    assert session.handle("df").text.startswith("df: ")  # still the whole table
    assert "df: 1 row" not in session.handle("df").text


def test_syntax_errors_point_into_the_input(session: Session) -> None:
    reply = session.handle("x = (1 +\n  2))")
    assert reply.error and "<input>:2:" in reply.text and "^" in reply.text


def test_ctrl_c_cancels_a_running_query(session: Session, monkeypatch) -> None:
    import pxl.repl.session as mod

    def slow(plan, catalog):
        time.sleep(5)

    monkeypatch.setattr(mod, "execute", slow)
    threading.Timer(0.2, lambda: os.kill(os.getpid(), signal.SIGINT)).start()
    started = time.monotonic()
    reply = session.handle("y = 1\ndf.head(1)")
    assert time.monotonic() - started < 3
    assert reply.error and reply.text == "cancelled"
    assert "y" not in session.env


def test_run_interruptibly_passes_results_and_errors() -> None:
    assert run_interruptibly(lambda: 42) == 42
    with pytest.raises(ZeroDivisionError):
        run_interruptibly(lambda: 1 / 0)
    assert issubclass(Cancelled, Exception)


def test_help(session: Session) -> None:
    assert "Arithmetic mean" in session.handle("px.mean?").text
    assert "px.DataFrame(table, select=None" in session.handle("help(px.DataFrame)").text
    assert "first n rows" in session.handle("df.head?").text
    assert "aggregates:" in session.handle("help(px)").text
    assert "resp_status" in session.handle("http_events?").text
    assert session.handle("help(px.nosuch)").error


# --- dot-commands --------------------------------------------------------------------------------
def test_tables_and_schema(session: Session) -> None:
    tables = session.handle(".tables").text
    assert "http_events" in tables and "rows" in tables
    schema = session.handle(".schema http_events").text
    assert re.search(r"latency\s+INT64\s+duration_ns\s+Time from request", schema)
    missing = session.handle(".schema http_event")
    assert missing.error and "did you mean 'http_events'?" in missing.text
    assert session.handle(".nosuch").error


def test_modes_maxrows_and_timer(session: Session) -> None:
    session.handle(".mode csv")
    assert session.handle("df[['req_method']].head(2)").text.splitlines()[0] == "req_method"
    session.handle(".mode json")
    assert session.handle("df[['req_method']].head(1)").text.startswith('{"_tableName_":"output"')
    assert session.handle(".mode xml").error
    session.handle(".mode table")
    session.handle(".maxrows 3")
    session.handle(".timer off")
    text = session.handle("df[['req_method']].head(10)").text
    assert "… 7 more rows not shown" in text and " in " not in text.splitlines()[-1]


def test_explain_shows_the_last_query(session: Session) -> None:
    assert session.handle(".explain").error
    session.handle("df[df.resp_status >= 500].head(3)")
    plan = session.handle(".explain").text
    assert plan.startswith("Sink[output]") and "Scan[http_events" in plan


def test_scripts_and_run(session: Session) -> None:
    listing = session.handle(".scripts").text
    if listing == "no bundled scripts":
        pytest.skip("this pxl has no bundled scripts")
    name = listing.split()[0]
    assert not session.handle(f".run {name}").error
    assert session.handle(".run px/nosuch").error


def test_load_keeps_the_file_names(session: Session, tmp_path) -> None:
    path = tmp_path / "lib.pxl"
    path.write_text("def slow(d, ms):\n    return d[d.latency > ms * 1000000]\n")
    assert session.handle(f".load {path}").text == ""
    assert not session.handle("slow(df, 100).head(1)").error
    assert session.handle(".load /no/such/file.pxl").error


def test_watch_reruns_until_ctrl_c(session: Session) -> None:
    shown: list[str] = []
    rounds = iter(range(3))

    def sleep(seconds: float) -> None:
        assert seconds == 0.5
        if next(rounds) == 2:
            raise KeyboardInterrupt

    session.echo, session.clear, session.sleep = shown.append, lambda: None, sleep
    assert session.handle(".watch 0.5s").error  # nothing to watch yet
    session.handle("df.head(1)")
    assert session.handle(".watch 500ms").text == "stopped watching"
    assert sum(s.startswith("output: 1 row") for s in shown) == 3
    assert session.handle(".watch soon").error


def test_help_vi_and_quit(session: Session) -> None:
    assert ".watch" in session.handle(".help").text
    session.handle(".vi on")
    assert session.settings.vi
    session.handle(".quit")
    assert session.done


# --- completion ----------------------------------------------------------------------------------
def test_completes_px_functions_with_signatures(session: Session) -> None:
    found = {c.text: c.meta for c in candidates(session, "px.me")}
    assert found["mean"].startswith("px.mean(") and "aggregate" in found["mean"]
    assert "DataFrame" in texts(session, "px.Data")
    in_agg = texts(session, "df.groupby('req_path').agg(n=('latency', px.")
    assert "count" in in_agg and "upid_to_pod_name" not in in_agg


def test_completes_columns_and_methods_of_the_frame(session: Session) -> None:
    assert texts(session, "df.resp_st") == ["resp_status"]
    assert "groupby" in texts(session, "df.gr")
    assert "req_path" in texts(session, "df[df.latency > 1].req_")
    assert texts(session, "df['lat") == ["latency"]
    assert "resp_status" in texts(session, "df[['req_path', 'resp_s")
    assert "req_path" in texts(session, "df.groupby('req_p")
    assert "service" in texts(session, "df.groupby(['req_path', 'serv")  # via df.ctx
    assert texts(session, "df.groupby('req_path').agg(n=('lat") == ["latency"]
    assert "agg" in texts(session, "df.groupby('req_path').a")
    assert texts(session, "nosuch.re") == []


def test_completes_tables_and_ctx_keys(session: Session) -> None:
    assert texts(session, "px.DataFrame(table='http_") == ["http_events"]
    assert texts(session, "px.DataFrame('mysql") == ["mysql_events"]
    assert {"pod", "pod_name"} <= set(texts(session, "df.ctx['po"))


def test_completes_names_keywords_and_arguments(session: Session) -> None:
    assert "df" in texts(session, "d")
    assert "def" in texts(session, "d")
    assert "start_time=" in texts(session, "px.DataFrame(table='http_events', sta")
    assert "ascending=" in texts(session, "df.sort_values('latency', asc")
    assert call_hint(session, "px.DataFrame(table='http_events', ").startswith("px.DataFrame(")


def test_completes_dot_commands(session: Session) -> None:
    assert texts(session, ".sch") == [".schema"]
    assert texts(session, ".schema http") == ["http_events"]
    assert texts(session, ".mode ") == ["table", "json", "csv"]
    assert texts(session, ".timer o") == ["on", "off"]


def test_receiver_spans_calls_and_subscripts() -> None:
    assert receiver("x = df[df.a > 1].groupby('b').agg") == "df[df.a > 1].groupby('b').agg"
    assert receiver("f(a, ") == ""


# --- editing -------------------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "complete"), [
    ("df.head()", True),
    ("df = px.DataFrame(table='http_events',", False),
    ("df = px.DataFrame(table='http_events',\n    start_time='-5m')", True),
    ("def f(d):", False),
    ("def f(d):\n    return d", False),
    ("def f(d):\n    return d\n", True),
    ("x = '''a", False),
    ("x = 1  # (", True),
    (".schema http_events", True),
])
def test_enter_submits_only_complete_inputs(text: str, complete: bool) -> None:
    assert is_complete(text) is complete


def test_a_recalled_block_runs_with_the_cursor_inside() -> None:
    assert is_complete("def f(d):\n    return d", cursor_at_end=False)


def test_new_lines_are_indented() -> None:
    assert next_indent("def f(d):") == 4
    assert next_indent("def f(d):\n    x = 1") == 4
    assert next_indent("def f(d):\n    return x") == 0
    assert next_indent("agg(") == 4
    assert next_indent("x = f(a,") == 6


# --- the application -----------------------------------------------------------------------------
def test_app_on_a_pipe(demo_catalog, monkeypatch, capsys) -> None:
    from prompt_toolkit.input import create_pipe_input
    from prompt_toolkit.output import DummyOutput

    from pxl.repl.app import run_repl

    monkeypatch.setenv("PXL_NO_HISTORY", "1")
    with create_pipe_input() as inp:
        inp.send_text("n = (1 +\r2)\r")  # Enter inside the bracket continues the input
        inp.send_text("def f(d):\rreturn d\r\r")  # a blank line ends the block
        inp.send_text("n * 10\r")
        inp.send_text("y = 1 +\x1b\r")  # Esc Enter runs at once: a syntax error
        inp.send_text("\x04")  # Ctrl-D
        code = run_repl(demo_catalog, now=DEMO_NOW, input=inp, output=DummyOutput())
    out = capsys.readouterr().out
    assert code == 0
    assert "30" in out.splitlines()
    assert "syntax error" in out


def test_piped_standard_input(demo_catalog, capsys) -> None:
    import io

    from pxl.repl.app import run_lines

    session = Session(demo_catalog, now=DEMO_NOW, width=80)
    code = run_lines(session, io.StringIO(
        "def f(d):\n    return d.head(2)\nx = f(px.DataFrame('http_events'))\nx[['req_path']]\n"))
    assert code == 0
    assert "output: 2 rows" in capsys.readouterr().out


def test_history_file_follows_xdg(monkeypatch, tmp_path) -> None:
    from pxl.repl.app import history_path

    monkeypatch.delenv("PXL_NO_HISTORY", raising=False)
    monkeypatch.delenv("PXL_HISTORY", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert history_path() == tmp_path / "pxl" / "history"
    monkeypatch.setenv("PXL_NO_HISTORY", "1")
    assert history_path() is None


def test_connect_to_nothing_says_so(cli) -> None:
    result = cli("repl", "--connect", "127.0.0.1:1")
    assert result.code == 1 and "cannot reach 127.0.0.1:1" in result.err
    assert "Traceback" not in result.err
    result = cli("repl", "--connect", "127.0.0.1:1", "--demo")
    assert result.code == 2 and "drop --demo" in result.err


# --- a real session in a pseudo-terminal ---------------------------------------------------------
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07]*\x07|\x1b[()][0-9A-B]|\x1b[=>78]")


class _Screen:
    """What a terminal shows, escape sequences removed, read as it comes."""

    def __init__(self, child) -> None:
        self.child, self.text, self.mark = child, "", 0

    def wait(self, pattern: str, timeout: float = 20) -> re.Match[str]:
        import pexpect

        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                self.text += _ANSI.sub("", self.child.read_nonblocking(65536, timeout=0.1))
            except pexpect.TIMEOUT:
                pass
            found = re.search(pattern, self.text[self.mark:])
            if found:
                self.mark += found.end()
                return found
        raise AssertionError(f"{pattern!r} not on the screen:\n{self.text[self.mark:][-1500:]}")


def test_a_session_in_a_terminal(tmp_path) -> None:
    pexpect = pytest.importorskip("pexpect")
    env = dict(os.environ, PXL_NO_HISTORY="1", PROMPT_TOOLKIT_NO_CPR="1", TERM="xterm-256color",
               XDG_DATA_HOME=str(tmp_path))
    child = pexpect.spawn(sys.executable, ["-m", "pxl.cli", "repl", "--demo", "--now",
                                           "2026-11-24T12:00:00Z"], env=env, cwd=str(ROOT),
                          dimensions=(40, 120), encoding="utf-8", timeout=30)
    screen = _Screen(child)
    try:
        screen.wait(r"9 tables[\s\S]*px>")

        def typed(text: str) -> None:  # as a person types: prompt_toolkit keeps up
            child.send(text)
            time.sleep(0.3)

        typed("df = px.DataFrame(table='http_events',\r")
        typed("start_time='-5m')\r")
        screen.wait(r"\.\.\.\s+start_time='-5m'\)[\s\S]*px>")
        typed("df[df.resp_stauts >= 500].groupby('req_path').agg(\r")
        typed("n=('latency', px.count))\r")
        error = screen.wait(r"error: no column 'resp_stauts'.*\n\s*(.*)\n(\s*)(\^+)")
        assert error.group(1).startswith("df[df.resp_stauts >= 500]")
        assert len(error.group(2)) - 2 == 3 and len(error.group(3)) == len("df.resp_stauts")
        screen.wait("px>")
        typed("df[df.resp_st")
        screen.wait(r"resp_status\s+INT64\[http_resp_status\]")  # the menu, while typing
        typed("\t")  # completes the column name
        typed(" >= 500].groupby('req_path').agg(n=('latency', px.count))\r")
        screen.wait(r"output: \d+ rows?\s*\n┌[─┬]+┐\s*\n│ req_path\s+│ +n │[\s\S]*rows? in ")
        screen.wait("px>")
        typed(".tables\r")
        screen.wait(r"http_events\s+[\d,]+ rows[\s\S]*stack_traces[\s\S]*px>")
        child.sendeof()
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 0

"""The ``pxl`` command.

Exit codes: 0 success, 1 a mistake in the script (or its run), 2 a usage mistake (bad option,
missing file, unreadable data).
"""

from __future__ import annotations

import logging
import os
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from engine.errors import DataError, PxlError
from engine.timeutil import TIME_FORMS, now_ns, parse_time

OUTPUT_FORMATS = ("table", "json", "csv", "arrow", "parquet")
EXIT_SCRIPT, EXIT_USAGE, EXIT_PARTIAL = 1, 2, 3


class _Usage(click.UsageError):
    exit_code = EXIT_USAGE


def _fail(error: PxlError, debug: bool) -> None:
    click.echo(error.render(), err=True)
    if debug and error.__cause__ is not None:
        traceback.print_exception(error.__cause__, file=sys.stderr)
    from pxl.args import ArgError

    sys.exit(EXIT_USAGE if isinstance(error, DataError | ArgError) else EXIT_SCRIPT)


def _guard(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn every user mistake into a message and an exit code, never a traceback."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        debug = bool(kwargs.get("debug"))
        try:
            return fn(*args, **kwargs)
        except PxlError as exc:
            _fail(exc, debug)
        except (click.ClickException, click.exceptions.Exit, SystemExit, KeyboardInterrupt):
            raise
        except BrokenPipeError:
            sys.exit(0)
        except Exception as exc:  # a bug in pxl: say so plainly
            if debug:
                traceback.print_exc()
            click.echo(f"internal error: {type(exc).__name__}: {exc}\n"
                       "This is a bug in pxl; run again with --debug for the details.", err=True)
            sys.exit(EXIT_SCRIPT)

    wrapper.__name__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    return wrapper


def _data_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed([
        click.option("--demo", is_flag=True, help="Use the built-in demo dataset."),
        click.option("--data", "data_dirs", multiple=True, type=click.Path(),
                     help="A directory of table files (parquet, arrow, csv, ndjson); repeatable."),
        click.option("--table", "table_specs", multiple=True, metavar="NAME=PATH",
                     help="Add one table from a file; repeatable."),
        click.option("--now", "now_text", metavar="TIME",
                     help="Anchor relative times ('-5m') at TIME instead of the clock."),
        click.option("--debug", is_flag=True, help="Show timings and tracebacks."),
    ]):
        fn = option(fn)
    return fn


def _now(now_text: str | None) -> int:
    if now_text is None:
        return now_ns()
    try:
        return parse_time(now_text, now_ns())
    except ValueError:
        raise _Usage(f"--now {now_text!r} is not a time; use {TIME_FORMS[1]}") from None


def _catalog(demo: bool, data_dirs: tuple[str, ...], table_specs: tuple[str, ...], now: int):
    from engine.catalog import MemoryCatalog

    catalog = MemoryCatalog()
    if demo:
        from pxl.demo import demo_metadata, demo_tables

        for name, frame in demo_tables(now).items():
            catalog.add(name, frame)
        catalog.set_metadata(demo_metadata(now))
    for d in data_dirs:
        catalog.add_dir(d)
    for spec in table_specs:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            raise _Usage(f"--table {spec!r}: expected NAME=PATH, e.g. --table http_events=ev.parquet")
        catalog.add(name, Path(path))
    for notice in catalog.notices:
        click.echo(f"note: {notice}", err=True)
    return catalog


@dataclass(frozen=True)
class _Script:
    source: str
    filename: str
    vis: Any = None  # pxl.args.VisSpec


def _read_script(script: str) -> _Script:
    """A script file, - for standard input, or a bundled script's name (px/http_data)."""
    from pxl.args import load_vis
    from pxl.parser import decode_source
    from pxl.scripts import find, vis_path_for

    if script == "-":
        return _Script(decode_source(sys.stdin.buffer.read(), "<stdin>"), "<stdin>")
    path = Path(script)
    if not path.is_file():
        found = find(script)
        if found is None:
            raise _Usage(f"no script file {script!r} (and no bundled script of that name; "
                         "see pxl scripts list)")
        path, script = found.path, found.name
    vis_path = vis_path_for(path)
    return _Script(decode_source(path.read_bytes(), script), script,
                   load_vis(vis_path) if vis_path else None)


def _script_args(script: _Script, argv: tuple[str, ...]) -> dict[str, Any]:
    """Script arguments given after --; ``-- --help`` lists them and exits."""
    from pxl.args import args_help, declared_args, parse_cli_args
    from pxl.parser import parse

    if not argv and script.vis is None:
        return {}
    declared = declared_args(parse(script.source, script.filename), script.vis)
    if "--help" in argv or "-h" in argv:
        click.echo(args_help(declared, script.filename))
        sys.exit(0)
    return parse_cli_args(declared, list(argv))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="pxl", prog_name="pxl")
def main() -> None:
    """pxl: run PxL scripts over observability tables."""


@main.command()
@click.argument("script")
@_data_options
@click.option("-o", "--output", "fmt", type=click.Choice(OUTPUT_FORMATS), default="table",
              show_default=True, help="How to show the results.")
@click.option("--out", "out_path", type=click.Path(), help="Write results to this file/directory.")
@click.option("--max-rows", default=100, show_default=True, type=click.IntRange(0),
              help="Rows shown per table with -o table.")
@click.option("--engine", type=click.Choice(["auto", "streaming", "in-memory"]), default="auto",
              help="Polars engine to run on.")
@click.option("--connect", "connect_to", metavar="HOST:PORT",
              help="Run on a pxl agent (or broker) instead of local tables.")
@click.option("--token", envvar="PXL_TOKEN", help="The agent's bearer token (or $PXL_TOKEN).")
@click.option("--tls-root", type=click.Path(exists=True, dir_okay=False),
              help="With --connect: talk TLS, checking the server with this CA certificate.")
@click.option("--deadline", "deadline_s", type=click.FloatRange(0, min_open=True), default=None,
              help="With --connect to a broker: seconds to wait for the agents (default: the "
                   "broker's).")
@click.option("--allow-partial", is_flag=True,
              help="Exit 0, not 3, when some agents did not answer (their rows are missing).")
@click.argument("script_args", nargs=-1, type=click.UNPROCESSED)
@_guard
def run(script: str, demo: bool, data_dirs: tuple[str, ...], table_specs: tuple[str, ...],
        now_text: str | None, debug: bool, fmt: str, out_path: str | None, max_rows: int,
        engine: str, connect_to: str | None, token: str | None, tls_root: str | None,
        deadline_s: float | None, allow_partial: bool, script_args: tuple[str, ...]) -> None:
    """Run SCRIPT (a .pxl file, - for standard input, or a bundled script such as px/http_data)
    and show its outputs. Script arguments go after --: pxl run s.pxl -- --start_time=-10m"""
    from pxl.api import run as run_script

    if debug:
        logging.basicConfig(level=logging.DEBUG, format="%(name)s: %(message)s")
    if fmt in ("arrow", "parquet") and not out_path:
        raise _Usage(f"-o {fmt} writes files: add --out PATH")
    loaded = _read_script(script)
    values = _script_args(loaded, script_args)
    now = _now(now_text)
    if connect_to:
        from pxl.remote import connect

        if demo or data_dirs or table_specs:
            raise _Usage("--connect runs on the agent's tables: drop --demo/--data/--table")
        root = Path(tls_root).read_bytes() if tls_root else None
        with connect(connect_to, token=token, tls_root=root) as remote:
            results = remote.run(loaded.source, args=values, now=now, filename=loaded.filename,
                                 deadline_s=deadline_s)
    else:
        catalog = _catalog(demo, data_dirs, table_specs, now)
        results = run_script(loaded.source, catalog=catalog, now=now, filename=loaded.filename,
                             engine=engine, args=values, vis=loaded.vis)  # type: ignore[arg-type]
    _emit(results.outputs, fmt, out_path, max_rows, debug)
    if results.missing:
        total = len(results.missing)
        click.echo(f"warning: partial result: {total} agent{'s' if total > 1 else ''} did not "
                   "answer, their rows are missing:", err=True)
        for m in results.missing:
            click.echo(f"  {m}", err=True)
        if not allow_partial:
            click.echo("(exit 3; pass --allow-partial to accept partial results)", err=True)
            sys.exit(EXIT_PARTIAL)


def _emit(outputs: list[Any], fmt: str, out_path: str | None, max_rows: int,
          debug: bool = False) -> None:
    """Show or write the outputs of a run, with a notice for each output whose rows were cut.
    px.export outputs go out in their format after the others; px.debug ones only with --debug."""
    import os

    from pxl import charts
    from pxl.output import format_results, write_csv, write_files, write_ndjson
    from pxl.prometheus import write_prometheus

    outputs = [o for o in outputs if debug or not dict(o.options).get("debug")]
    exported = [o for o in outputs if dict(o.options).get("export") == "prometheus"]
    outputs = [o for o in outputs if o not in exported]
    if exported and out_path is None and not outputs:
        write_prometheus(exported, sys.stdout)
        return
    for o in outputs:
        if o.truncated:
            click.echo(f"note: output {o.name} has more than {o.frame.height:,} rows; only the "
                       f"first {o.frame.height:,} are kept (raise #px:set "
                       "max_output_rows_per_table=N in the script)", err=True)
    chart_file = out_path is not None and charts.is_chart_path(out_path)
    if chart_file:
        # --out x.png/.svg/.html: the charts of the outputs that have a chart_type.
        if fmt != "table":
            raise _Usage(f"--out {out_path} writes charts; it does not go with -o {fmt} "
                         "(for a data file use another suffix, e.g. --out results.parquet)")
        try:
            written = charts.write_charts(outputs, out_path)
        except charts.ChartError as exc:
            raise _Usage(exc.message) from None
        for p in written:
            click.echo(f"wrote {p}", err=True)
    elif out_path:
        written = write_files(outputs, out_path, "json" if fmt == "table" else fmt)
        for p in written:
            click.echo(f"wrote {p}", err=True)
    elif fmt == "json":
        write_ndjson(outputs, sys.stdout)
    elif fmt == "csv":
        write_csv(outputs, sys.stdout)
    elif outputs:
        # Each table, with its chart drawn under it when px.display gave a chart_type.
        color = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
        shown = []
        for o in outputs:
            text = format_results([o], max_rows=max_rows)
            if charts.chart_type(o):
                text += "\n\n" + charts.render_terminal(o, color=color)
            shown.append(text)
        click.echo("\n\n".join(shown))
    if exported:
        if out_path is None or chart_file:
            click.echo("")
            write_prometheus(exported, sys.stdout)
        else:
            target = Path(out_path)
            target = target if target.suffix == ".prom" else target / "export.prom"
            target.parent.mkdir(parents=True, exist_ok=True)
            with target.open("w", encoding="utf-8") as fh:
                write_prometheus(exported, fh)
            click.echo(f"wrote {target}", err=True)


@main.command()
@click.argument("script")
@_data_options
@click.option("--physical", is_flag=True, help="Also print the Polars plan of each output.")
@click.option("--unoptimized", is_flag=True, help="The plan as compiled, before the optimizer.")
@click.option("--distributed", is_flag=True, help="The agent and broker fragments of the plan.")
@click.option("--connect", "connect_to", metavar="HOST:PORT",
              help="Plan against the tables of a pxl agent or broker (nothing runs).")
@click.option("--token", envvar="PXL_TOKEN", help="Its bearer token (or $PXL_TOKEN).")
@click.argument("script_args", nargs=-1, type=click.UNPROCESSED)
@_guard
def explain(script: str, demo: bool, data_dirs: tuple[str, ...], table_specs: tuple[str, ...],
            now_text: str | None, debug: bool, physical: bool, unoptimized: bool,
            distributed: bool, connect_to: str | None, token: str | None,
            script_args: tuple[str, ...]) -> None:
    """Print the optimized plan of SCRIPT (arguments after --, as for run)."""
    from pxl.api import explain as explain_script

    loaded = _read_script(script)
    values = _script_args(loaded, script_args)
    now = _now(now_text)
    if connect_to:
        from pxl.remote import RemoteCatalog, connect

        if demo or data_dirs or table_specs:
            raise _Usage("--connect plans against its tables: drop --demo/--data/--table")
        if physical:
            raise _Usage("--physical needs the tables here: drop --connect or --physical")
        with connect(connect_to, token=token) as remote:
            catalog: Any = RemoteCatalog(remote)
    else:
        catalog = _catalog(demo, data_dirs, table_specs, now)
    click.echo(explain_script(loaded.source, catalog=catalog, now=now, filename=loaded.filename,
                              optimized=not unoptimized, physical=physical, args=values,
                              vis=loaded.vis, distributed=distributed))


@main.group()
def scripts() -> None:
    """The bundled scripts (run them with pxl run px/NAME)."""


@scripts.command("list")
def scripts_list() -> None:
    """Name and summary of every bundled script."""
    from pxl.scripts import bundled

    found = bundled()
    width = max((len(s.name) for s in found), default=0) + 2
    for s in found:
        click.echo(f"{s.name:<{width}}{s.summary}")


@scripts.command("show")
@click.argument("name")
def scripts_show(name: str) -> None:
    """Print the source of bundled script NAME."""
    from pxl.scripts import find

    found = find(name)
    if found is None:
        raise _Usage(f"no bundled script {name!r}; see pxl scripts list")
    click.echo(found.path.read_text(encoding="utf-8"), nl=False)


@main.command()
@click.argument("query")
@_data_options
@click.option("-o", "--output", "fmt", type=click.Choice(OUTPUT_FORMATS), default="table",
              show_default=True, help="How to show the results.")
@click.option("--out", "out_path", type=click.Path(), help="Write results to this file/directory.")
@click.option("--max-rows", default=100, show_default=True, type=click.IntRange(0),
              help="Rows shown per table with -o table.")
@click.option("--explain", "show_pxl", is_flag=True, help="Print the PxL the query stands for.")
@_guard
def query(query: str, demo: bool, data_dirs: tuple[str, ...], table_specs: tuple[str, ...],
          now_text: str | None, debug: bool, fmt: str, out_path: str | None, max_rows: int,
          show_pxl: bool) -> None:
    """Run a one-line quick query, e.g. "http_events|filter:resp_status>=500|head:20"."""
    from pxl.api import run as run_script
    from pxl.quick import map_error, to_pxl

    quick = to_pxl(query)
    if show_pxl:
        click.echo(quick.text, nl=False)
        return
    if fmt in ("arrow", "parquet") and not out_path:
        raise _Usage(f"-o {fmt} writes files: add --out PATH")
    now = _now(now_text)
    catalog = _catalog(demo, data_dirs, table_specs, now)
    try:
        results = run_script(quick.text, catalog=catalog, now=now, filename="<query>")
    except PxlError as exc:
        raise map_error(quick, exc) from exc
    _emit(results.outputs, fmt, out_path, max_rows)


@main.command()
@_data_options
@_guard
def tables(demo: bool, data_dirs: tuple[str, ...], table_specs: tuple[str, ...],
           now_text: str | None, debug: bool) -> None:
    """List the tables there are, with their sizes and time ranges."""
    from engine.timeutil import format_ns

    catalog = _catalog(demo, data_dirs, table_specs, _now(now_text))
    for row in catalog.stats():
        span = ""
        if row["min_time"] is not None:
            span = f"  {format_ns(row['min_time'])} .. {format_ns(row['max_time'])}"
        click.echo(f"{row['table_name']:<16} {row['num_rows']:>10,} rows{span}")


@main.command()
@click.argument("table")
@_data_options
@_guard
def schema(table: str, demo: bool, data_dirs: tuple[str, ...], table_specs: tuple[str, ...],
           now_text: str | None, debug: bool) -> None:
    """The columns of TABLE: type, semantic type and description."""
    from engine.tables import TABLES
    from pxl.compiler import closest

    catalog = _catalog(demo, data_dirs, table_specs, _now(now_text))
    found = catalog.schema(table)
    if found is None and table in TABLES:
        found = TABLES[table].schema  # a built-in table this data lacks: its declared schema
    if found is None:
        hint = closest(table, catalog.table_names()) or ""
        raise _Usage(f"no table {table!r}. {hint} Tables: {', '.join(catalog.table_names())}")
    spec = TABLES.get(table)
    width = max(len(n) for n in found.names) + 2
    for name, t in found.columns:
        doc = spec.describe(name) if spec else ""
        click.echo(f"{name:<{width}}{t.dtype!s:<10}{t.semantic!s:<16}{doc}".rstrip())


@main.command()
@click.option("--out", "out_dir", required=True, type=click.Path(), help="Directory to write.")
@click.option("--connect", "connect_to", metavar="HOST:PORT",
              help="Snapshot a running agent's store (written on the agent's host).")
@click.option("--token", envvar="PXL_TOKEN", help="The agent's bearer token (or $PXL_TOKEN).")
@_data_options
@_guard
def snapshot(out_dir: str, connect_to: str | None, token: str | None, demo: bool,
             data_dirs: tuple[str, ...], table_specs: tuple[str, ...], now_text: str | None,
             debug: bool) -> None:
    """Write every table (and the process metadata) to Parquet, readable with --data."""
    if connect_to:
        from pxl.remote import connect

        with connect(connect_to, token=token) as remote:
            paths = remote.snapshot(out_dir)
    else:
        from engine.store import TableStore
        from pxl.agent.service import _load_tables

        catalog = _catalog(demo, data_dirs, table_specs, _now(now_text))
        with TableStore(background=False) as store:
            _load_tables(store, catalog)
            paths = [str(p) for p in store.snapshot(out_dir)]
    for p in paths:
        click.echo(f"wrote {p}")


@main.command()
@click.option("--listen", default="127.0.0.1:7070", show_default=True, metavar="HOST:PORT",
              help="Where to serve queries (Arrow Flight).")
@click.option("--node", default=None, help="This node's name (default: the host name).")
@click.option("--demo", is_flag=True, help="Serve the demo dataset (beside live collection).")
@click.option("--data", "data_dirs", multiple=True, type=click.Path(),
              help="Serve the tables in this directory too; repeatable.")
@click.option("--collect/--no-collect", default=True, show_default=True,
              help="Run the eBPF and /proc collectors.")
@click.option("--budget-mb", type=click.IntRange(16), default=None,
              help="Memory for stored rows (default: a tenth of the host's, at most 4 GiB).")
@click.option("--token", envvar="PXL_TOKEN", help="Require this bearer token (or $PXL_TOKEN).")
@click.option("--tls-cert", type=click.Path(exists=True), help="Serve TLS with this certificate.")
@click.option("--tls-key", type=click.Path(exists=True), help="… and this private key.")
@click.option("--broker", "broker_address", metavar="HOST:PORT",
              help="Register with this broker (every 2 s, so it always knows this agent).")
@click.option("--advertise", metavar="HOST:PORT",
              help="The address the broker should use for this agent (default: --listen).")
@click.option("--tls-root", type=click.Path(exists=True),
              help="CA certificate to check the broker's TLS certificate with.")
@click.option("--status", "show_status", is_flag=True,
              help="Print the status of the agent at --listen and exit.")
@click.option("--debug", is_flag=True, help="Show tracebacks and collector logs.")
@_guard
def agent(listen: str, node: str | None, demo: bool, data_dirs: tuple[str, ...], collect: bool,
          budget_mb: int | None, token: str | None, tls_cert: str | None, tls_key: str | None,
          broker_address: str | None, advertise: str | None, tls_root: str | None,
          show_status: bool, debug: bool) -> None:
    """Run the agent: collectors fill a table store on this host; queries come over Flight."""
    if show_status:
        return _show_status(listen, token)
    from pxl.agent.service import serve

    if debug:
        logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    serve(listen, node=node, demo=demo, data_dirs=data_dirs, collect=collect,
          budget_bytes=budget_mb << 20 if budget_mb else None, token=token,
          tls=_tls(tls_cert, tls_key), broker=broker_address, advertise=advertise,
          tls_root=Path(tls_root).read_bytes() if tls_root else None,
          echo=lambda text: click.echo(text, err=True))


@main.command()
@click.option("--listen", default="127.0.0.1:7071", show_default=True, metavar="HOST:PORT",
              help="Where to serve queries (Arrow Flight).")
@click.option("--agents", "agent_list", default="", metavar="HOST:PORT,...",
              help="Agents to query (more may register themselves with --broker).")
@click.option("--state", "state_file", type=click.Path(dir_okay=False),
              help="Keep the agents it knows in this file, for restarts "
                   "(default: $XDG_STATE_HOME/pxl/broker-PORT.json).")
@click.option("--deadline", "deadline_s", type=click.FloatRange(0, min_open=True),
              default=10.0, show_default=True,
              help="Seconds a query waits for the agents; the ones late are reported missing.")
@click.option("--token", envvar="PXL_TOKEN",
              help="Require this bearer token, and send it to the agents (or $PXL_TOKEN).")
@click.option("--tls-cert", type=click.Path(exists=True), help="Serve TLS with this certificate.")
@click.option("--tls-key", type=click.Path(exists=True), help="… and this private key.")
@click.option("--tls-root", type=click.Path(exists=True),
              help="CA certificate of the agents' TLS (talk TLS to them).")
@click.option("--status", "show_status", is_flag=True,
              help="Print the status of the broker at --listen and exit.")
@click.option("--debug", is_flag=True, help="Show tracebacks and logs.")
@_guard
def broker(listen: str, agent_list: str, state_file: str | None, deadline_s: float,
           token: str | None, tls_cert: str | None, tls_key: str | None, tls_root: str | None,
           show_status: bool, debug: bool) -> None:
    """Run the broker: answers scripts from every agent (pxl run --connect BROKER)."""
    if show_status:
        return _show_status(listen, token)
    from pxl.broker.service import serve_broker

    tls = _tls(tls_cert, tls_key)
    agents = tuple(a.strip() for a in agent_list.split(",") if a.strip())
    for a in agents:
        host, sep, port = a.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise _Usage(f"--agents: {a!r} is not HOST:PORT")
    if state_file is None:
        base = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
        state_file = str(base / "pxl" / f"broker-{listen.rpartition(':')[2]}.json")
    if debug:
        logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    serve_broker(listen, agents=agents, state_file=state_file, token=token,
                 tls=tls, tls_root=Path(tls_root).read_bytes() if tls_root else None,
                 deadline_s=deadline_s, echo=lambda text: click.echo(text, err=True))


def _tls(cert: str | None, key: str | None) -> tuple[bytes, bytes] | None:
    if bool(cert) != bool(key):
        raise _Usage("TLS needs both --tls-cert and --tls-key")
    return (Path(cert).read_bytes(), Path(key).read_bytes()) if cert and key else None


def _show_status(listen: str, token: str | None) -> None:
    from pxl.remote import connect

    with connect(listen, token=token) as remote:
        _print_status(remote.status())


def _print_status(status: dict[str, Any]) -> None:
    if status.get("role") == "broker":
        agents = status.get("agents", [])
        click.echo(f"broker, {len(agents)} agents, deadline {status.get('deadline_s')} s")
        for a in agents:
            age = a.get("last_heartbeat_ns")
            seen = "never heard" if age is None else f"heard {age / 1e9:.1f} s ago"
            click.echo(f"  {a['agent_id']:<20} {a['address']:<22} {a['agent_state']:<8} {seen}"
                       f"  tables: {a['tables'] or '-'}")
            if a.get("message"):
                click.echo(f"    last error: {a['message']}")
        return
    click.echo(f"node {status['node']}, up {status['uptime_s']} s")
    for t in status.get("tables", []):
        click.echo(f"  {t['table_name']:<22} {t['num_rows']:>10,} rows")
    for name, counters in status.get("collectors", {}).items():
        shown = ", ".join(f"{k}={v}" for k, v in counters.items())
        click.echo(f"  collector {name}: {shown}")
    for e in status.get("errors", []):
        click.echo(f"  error: {e}")


@main.command()
def doctor() -> None:
    """Check that this host can run the collectors, with the fix for each problem."""
    from pxl.agent.doctor import collectors_ready, format_checks, run_checks

    checks = run_checks()
    click.echo(format_checks(checks))
    sys.exit(0 if collectors_ready(checks) else 1)


@main.command()
@click.option("--duration", default="10s", show_default=True, help="How long to capture.")
@click.option("--out", "out_dir", required=True, type=click.Path(), help="Directory to write.")
@_guard
def capture(duration: str, out_dir: str) -> None:
    """Capture this host's tables for a while and write them as Parquet (for --data)."""
    from engine.timeutil import DURATION_FORMS, parse_duration
    from pxl.agent.service import capture as run_capture

    try:
        seconds = parse_duration(duration) / 1e9
    except ValueError:
        raise _Usage(f"--duration {duration!r}: use {DURATION_FORMS}") from None
    for path in run_capture(seconds, out_dir, echo=lambda t: click.echo(t, err=True)):
        click.echo(f"wrote {path}")


@main.command()
@click.option("--out", "out_dir", required=True, type=click.Path(), help="Directory to write.")
@click.option("--format", "fmt", type=click.Choice(["parquet", "arrow", "csv", "ndjson"]),
              default="parquet", show_default=True)
@click.option("--minutes", default=60, show_default=True, type=click.IntRange(1, 24 * 60))
@click.option("--debug", is_flag=True, hidden=True)
@_guard
def demo(out_dir: str, fmt: str, minutes: int, debug: bool) -> None:
    """Write the demo dataset (one file per table) to use with --data."""
    from pxl.demo import write_demo

    for path in write_demo(out_dir, fmt, minutes=minutes):
        click.echo(f"wrote {path}")


@main.command()
@_data_options
@click.option("--connect", metavar="HOST:PORT",
              help="Query an agent, or every agent through a broker.")
@click.option("--token", envvar="PXL_TOKEN", help="Its bearer token (or $PXL_TOKEN).")
@click.option("--tls-root", type=click.Path(exists=True, dir_okay=False),
              help="With --connect: talk TLS, checking the server with this CA certificate.")
@click.option("--vi", is_flag=True, help="Vi editing keys (default: emacs; .vi on|off switches).")
@_guard
def repl(demo: bool, data_dirs: tuple[str, ...], table_specs: tuple[str, ...],
         now_text: str | None, debug: bool, connect: str | None, token: str | None,
         tls_root: str | None, vi: bool) -> None:
    """Explore the tables and write PxL interactively (docs/repl.md)."""
    if debug:
        logging.basicConfig(level=logging.DEBUG, format="%(name)s: %(message)s")
    from pxl.repl.app import run_repl

    now = _now(now_text)
    if connect:
        from pxl.remote import RemoteCatalog
        from pxl.remote import connect as connect_to

        if demo or data_dirs or table_specs:
            raise _Usage("--connect uses the agents' tables: drop --demo/--data/--table")
        remote = connect_to(connect, token=token,
                            tls_root=Path(tls_root).read_bytes() if tls_root else None)
        sys.exit(run_repl(RemoteCatalog(remote), now=now if now_text else None, vi=vi))
    catalog = _catalog(demo, data_dirs, table_specs, now)
    # Static data (demo, or a fixed --now) keeps relative times anchored; else follow the clock.
    sys.exit(run_repl(catalog, now=now if (demo or now_text) else None, vi=vi))


if __name__ == "__main__":  # pragma: no cover
    main()

"""Time every ``examples/*.pxl`` through pxl against the same query written by hand in Polars.

    python benchmarks/bench_examples.py [--rows 1000000] [--repeat 5] [--only NAME ...]

The demo dataset (``pxl.demo.demo_tables``) is scaled so that http_events has about ``--rows``
rows (the other event tables grow with it; conn_stats, process_stats and stack_traces do not
depend on the traffic). The catalog is built once; each pxl timing is a whole ``pxl.run``
(parse, compile, optimize, execute), each Polars timing a call of the example's function in
``polars_oracles.py`` (the one the tests compare with). Before timing, each example's outputs are
checked equal to the oracle's at this size. The runs of the two sides are interleaved;
medians are printed and written, with the machine, to ``benchmarks/results/examples.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import polars as pl
from polars.testing import assert_frame_equal

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

from polars_oracles import ORACLES  # noqa: E402

import pxl  # noqa: E402
from engine.catalog import MemoryCatalog  # noqa: E402
from pxl.demo import demo_metadata, demo_tables  # noqa: E402

#: The same instant the tests use (2026-11-24T12:00:00Z).
NOW = 1_795_521_600_000_000_000
RESULTS = HERE / "results" / "examples.md"


def _ms(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return (time.perf_counter() - started) * 1e3


def _medians(fns: list[Callable[[], object]], repeat: int) -> list[float]:
    """Median ms of each function, the functions' runs interleaved so that a change of load on
    the machine hits every side alike."""
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeat):
        for fn, ts in zip(fns, times, strict=True):
            ts.append(_ms(fn))
    return [statistics.median(ts) for ts in times]


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def build(rows: int) -> tuple[dict[str, pl.DataFrame], pl.DataFrame, MemoryCatalog, float]:
    base = demo_tables(NOW, scale=1.0)["http_events"].height
    scale = rows / base
    frames = demo_tables(NOW, scale=scale)
    meta = demo_metadata(NOW)
    catalog = MemoryCatalog()
    for name, frame in frames.items():
        catalog.add(name, frame)
    catalog.set_metadata(meta)
    return frames, meta, catalog, scale


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000, help="http_events rows (approx.)")
    ap.add_argument("--repeat", type=int, default=5, help="timed runs per example and side")
    ap.add_argument("--only", nargs="*", default=None, help="example names to run")
    ap.add_argument("--out", type=Path, default=RESULTS, help="markdown file to write")
    args = ap.parse_args(argv)

    scripts = sorted((ROOT / "examples").glob("*.pxl"))
    if args.only:
        scripts = [s for s in scripts if s.stem in args.only]
    missing = [s.stem for s in scripts if s.stem not in ORACLES]
    if missing:
        print(f"no Polars version for: {', '.join(missing)}", file=sys.stderr)
        return 1

    started = time.perf_counter()
    frames, meta, catalog, scale = build(args.rows)
    sizes = {k: v.height for k, v in frames.items()}
    print(f"demo data at scale {scale:.2f} built in {time.perf_counter() - started:.1f} s: "
          + ", ".join(f"{k} {v:,}" for k, v in sizes.items()), file=sys.stderr)

    rows = []
    for script in scripts:
        source = script.read_text()
        oracle = ORACLES[script.stem]

        def run_pxl(source: str = source, name: str = script.name) -> pxl.Results:
            return pxl.run(source, catalog=catalog, now=NOW, filename=name)

        def run_polars(oracle=oracle) -> dict[str, pl.DataFrame]:
            return oracle(frames, meta, NOW)

        got, want = run_pxl(), run_polars()  # warm-up, and a check at this size
        assert list(got) == list(want), script.stem
        for name in want:
            assert_frame_equal(got[name], want[name], check_exact=False, rel_tol=1e-9,
                               abs_tol=1e-6)
        def compile_pxl(source: str = source, name: str = script.name) -> object:
            return pxl.compile(source, catalog, now=NOW, filename=name)

        compile_ms, pxl_ms, polars_ms = _medians([compile_pxl, run_pxl, run_polars],
                                                 args.repeat)
        rows.append((script.stem, compile_ms, pxl_ms, polars_ms, pxl_ms / polars_ms))
        print(f"{script.stem:<20} pxl {pxl_ms:9.1f} ms  polars {polars_ms:9.1f} ms  "
              f"ratio {pxl_ms / polars_ms:5.2f}", file=sys.stderr)

    table = _table(rows)
    print(table)
    _write(args.out, table, args, sizes, scale)
    print(f"wrote {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}",
          file=sys.stderr)
    return 0


def _table(rows: list[tuple[str, float, float, float, float]]) -> str:
    lines = ["| example | pxl compile (ms) | pxl run (ms) | Polars (ms) | pxl / Polars |",
             "|---|---:|---:|---:|---:|"]
    for name, comp, p, q, ratio in rows:
        lines.append(f"| {name} | {comp:.1f} | {p:.1f} | {q:.1f} | {ratio:.2f} |")
    total_p = sum(r[2] for r in rows)
    total_q = sum(r[3] for r in rows)
    if rows:
        lines.append(f"| **total** | {sum(r[1] for r in rows):.1f} | {total_p:.1f} | "
                     f"{total_q:.1f} | {total_p / total_q:.2f} |")
    return "\n".join(lines)


def _write(out: Path, table: str, args: argparse.Namespace, sizes: dict[str, int],
           scale: float) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    text = "\n".join([
        "# examples/*.pxl: pxl vs hand-written Polars",
        "",
        f"Command: `python benchmarks/bench_examples.py --rows {args.rows} "
        f"--repeat {args.repeat}`  ",
        f"Date: {when}  ",
        f"Machine: {os.cpu_count()} CPUs (nproc), {_cpu_model()}, {platform.system()} "
        f"{platform.release()}  ",
        f"Python {platform.python_version()}, Polars {pl.__version__}, pxl {pxl.__version__}  ",
        "Load average when it finished (1/5/15 min): "
        + " / ".join(f"{x:.2f}" for x in os.getloadavg()) + "  ",
        f"Data: demo_tables(scale={scale:.2f}): " + ", ".join(f"{k} {v:,}" for k, v in
                                                              sizes.items()),
        "",
        "Medians of the timed runs. *pxl run* is a whole `pxl.run` (parse, compile, optimize, "
        "execute on a catalog built once); *pxl compile* is `pxl.compile` alone (parse to "
        "optimized plan); *Polars* is the example's function in "
        "`benchmarks/polars_oracles.py`, which the tests check gives the same outputs.",
        "",
        table,
        "",
    ])
    out.write_text(text)


if __name__ == "__main__":
    sys.exit(main())

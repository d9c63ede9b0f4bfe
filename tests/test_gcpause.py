"""The garbage collector is held off while compiling, and left as it was found."""

from __future__ import annotations

import gc
import threading

import polars as pl
import pytest

import pxl
from pxl.gcpause import gc_paused


def test_nested_pauses_resume_once_and_a_disabled_collector_stays_disabled() -> None:
    assert gc.isenabled()
    with gc_paused():
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:
        with gc_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_concurrent_compiles_leave_the_collector_enabled() -> None:
    source = "import px\npx.display(px.DataFrame('t').head(1))\n"
    catalog = pxl.make_catalog(tables={"t": pl.DataFrame({"a": [1, 2]})})
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(30):
                pxl.compile(source, catalog)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert gc.isenabled()


def test_a_failing_compile_resumes_the_collector() -> None:
    with pytest.raises(pxl.PxlError):
        pxl.compile("import px\npx.display(px.DataFrame('nope'))\n", pxl.make_catalog())
    assert gc.isenabled()

"""Docs match the code: the generated reference is current, and docstring examples run."""

from __future__ import annotations

import doctest
import importlib

import pytest

from pxl import docs

MODULES = ["engine.errors", "engine.timeutil", "engine.exprs", "engine.registry", "engine.explain",
           "pxl.pragmas", "pxl.quick", "pxl.prometheus", "engine.arrowio",
           "engine.types", "engine.tables", "pxl.parser", "pxl.api", "pxl", "pxl.output",
           "pxl.gcpause", "pxl.plancache"]


def test_reference_is_current() -> None:
    assert docs.REFERENCE.read_text(encoding="utf-8") == docs.reference(), \
        "docs/reference.md is out of date: run python -m pxl.docs"


def test_reference_lists_every_function() -> None:
    from engine.registry import REGISTRY

    text = docs.reference()
    for name in REGISTRY.names():
        assert f"#### px.{name}\n" in text


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0

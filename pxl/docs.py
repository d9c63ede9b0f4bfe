"""Generates docs/reference.md from the function registry and the DataFrame methods.

``python -m pxl.docs`` rewrites the file; a test fails when the file and the code disagree.
"""

from __future__ import annotations

import inspect
import sys
from pathlib import Path

from engine.functions.metadata import CTX_KEYS
from engine.registry import REGISTRY
from engine.tables import TABLES

__all__ = ["reference", "main"]

REFERENCE = Path(__file__).resolve().parent.parent / "docs" / "reference.md"


def _dataframe_section() -> list[str]:
    from pxl.builtins import PX_BUILTINS
    from pxl.dataframe import METHODS, Ctx, DataFrame

    lines = ["## DataFrames", ""]
    for name, builtin in PX_BUILTINS.items():
        lines += [f"### px.{name}", "", inspect.cleandoc(builtin.doc), ""]
    lines += ["### Selecting, filtering and assigning", "",
              inspect.cleandoc(DataFrame.subscript.__doc__ or ""), "",
              inspect.cleandoc(DataFrame.with_column.__doc__ or ""), ""]
    for name, method in METHODS.items():
        lines += [f"### df.{name}", "", inspect.cleandoc(method.__doc__ or ""), ""]
    lines += ["### df.ctx", "", inspect.cleandoc(Ctx.__doc__ or ""), "",
              "| key | function |", "|---|---|"]
    lines += [f"| `{k}` | `px.{v.function}` |" for k, v in sorted(CTX_KEYS.items())]
    return lines + [""]


def _functions_section() -> list[str]:
    lines = ["## Functions", "",
             "Signatures list the accepted argument types; `T` stands for any one type, and an",
             "INT64 is accepted where a FLOAT64 is asked for.", ""]
    by_category: dict[str, list] = {}
    for fn in [*REGISTRY.scalars.values(), *REGISTRY.aggregates.values(),
               *REGISTRY.compile_time.values()]:
        by_category.setdefault(fn.category, []).append(fn)
    for category in sorted(by_category):
        lines += [f"### {category.capitalize()}", ""]
        for fn in sorted(by_category[category], key=lambda f: f.name):
            sigs = "; ".join(f"`{s}`" for s in fn.signatures)
            lines += [f"#### px.{fn.name}", "", fn.doc, "", f"Signatures: {sigs}", ""]
            symbol = getattr(fn, "symbol", None)
            if symbol:
                lines += [f"Operator: `{symbol.strip()}`", ""]
            params = getattr(fn, "params", ())
            if params:
                shown = ", ".join(f"{n} ({t.__name__})" for n, t in params)
                lines += [f"Parameters after the column: {shown}", ""]
            for example in fn.examples:
                lines += ["```python", example, "```", ""]
    return lines


def _tables_section() -> list[str]:
    lines = ["## Tables", ""]
    for spec in TABLES.values():
        lines += [f"### {spec.name}", "", spec.description, "",
                  "| column | type | semantic type | description |", "|---|---|---|---|"]
        lines += [f"| `{n}` | {d} | {s} | {doc} |" for n, d, s, doc in spec.columns]
        lines.append("")
    return lines


def reference() -> str:
    """The whole reference as Markdown."""
    head = ["# PxL reference", "",
            "Generated from the code by `python -m pxl.docs`; do not edit by hand.", ""]
    body = head + _dataframe_section() + _functions_section() + _tables_section()
    return "\n".join(body).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    text = reference()
    if argv == ["--check"]:
        current = REFERENCE.read_text(encoding="utf-8") if REFERENCE.exists() else ""
        if current != text:
            print(f"{REFERENCE} is out of date: run python -m pxl.docs", file=sys.stderr)
            return 1
        return 0
    REFERENCE.parent.mkdir(parents=True, exist_ok=True)
    REFERENCE.write_text(text, encoding="utf-8")
    print(f"wrote {REFERENCE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

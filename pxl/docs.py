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
            lines += [f"#### px.{fn.name}", "", fn.doc, "", f"Signatures: {sigs}", "",
                      f"Semantic type: {semantic_rule(fn)}", ""]
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


def semantic_rule(fn) -> str:
    """The function's semantic-type rule in words, found by asking it (the rules are code)."""
    from engine.types import ColumnType, DataType, SemanticType

    if not hasattr(fn, "resolve") or fn.__class__.__name__ == "CompileTimeFunction":
        return "a value known while compiling"
    for sig in fn.signatures:
        args = [DataType.INT64 if a in ("T", "ANY") else DataType[a] for a in sig.args]
        if sig.bind(args) is None:
            continue
        plain = [ColumnType(d) for d in args]
        try:
            base = fn.resolve(plain)
            probes = []
            for i, d in enumerate(args):
                marked = list(plain)
                marked[i] = ColumnType(d, SemanticType.DURATION_NS)
                probes.append(fn.resolve(marked).semantic)
        except Exception:  # a signature this probe cannot fill
            continue
        if any(p is SemanticType.DURATION_NS for p in probes):
            which = [i for i, p in enumerate(probes) if p is SemanticType.DURATION_NS]
            if len(which) == len(args) and len(args) > 1:
                return "the arguments' semantic type, when they agree"
            return f"that of argument {which[0] + 1}" if len(args) > 1 else "the argument's"
        changed = [p for p in probes if p is not base.semantic]
        if changed:
            return f"`{base.semantic}`; `{changed[0]}` for a duration_ns argument"
        if base.semantic is not SemanticType.NONE and base.semantic is not SemanticType.TIME:
            return f"always `{base.semantic}`"
        if all(p is base.semantic for p in probes):
            return "none" if base.semantic is SemanticType.NONE else f"`{base.semantic}`"
        return "depends on the arguments (see the description)"
    return "none"


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

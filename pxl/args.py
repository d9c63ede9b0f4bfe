"""Script arguments: declared in the script (or a Pixie vis.json beside it), given on the command
line or to ``pxl.run(args=...)``.

The single-file form is a compile-time call::

    start_time = px.arg('start_time', default='-5m', help='How far back to look')
    svc = px.arg('svc', type=px.Service, help='The service to show')   # no default: required

``pxl run s.pxl -- --start_time=-10m --svc=shop/cart`` sets them; ``pxl run s.pxl -- --help``
lists them. Pixie's vis.json ``variables`` are read the same way, and its ``widgets`` call the
script's functions with them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import CompileError, PxlError, Span
from pxl import syntax as S

__all__ = ["ScriptArg", "Widget", "VisSpec", "ArgError", "declared_args", "parse_cli_args",
           "convert", "args_help", "load_vis", "ARG_TYPES"]

#: Argument types: the name used in scripts → how a value is read. Semantic types (px.Service …)
#: are strings; 'duration' and 'time' stay strings for px.DataFrame and px.bin to read.
ARG_TYPES = {"str": str, "int": int, "float": float, "bool": bool}
_PIXIE_TYPES = {"PX_STRING": "str", "PX_INT64": "int", "PX_FLOAT64": "float",
                "PX_BOOLEAN": "bool", "PX_SERVICE": "str", "PX_POD": "str",
                "PX_NAMESPACE": "str", "PX_NODE": "str", "PX_CONTAINER": "str"}
_TRUE, _FALSE = {"true", "1", "yes", "on"}, {"false", "0", "no", "off"}


class ArgError(PxlError):
    """A script argument given on the command line (or to run(args=...)) is wrong."""

    kind = "argument error"


@dataclass(frozen=True)
class ScriptArg:
    name: str
    type: str = "str"  # a key of ARG_TYPES
    default: Any = None
    help: str = ""
    required: bool = False
    span: Span | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Widget:
    """One widget of a vis.json: call ``func`` with ``args`` and display it as ``name``."""

    name: str
    func: str
    args: tuple[tuple[str, str, Any], ...]  # (param, 'variable'|'value', variable name or value)
    chart_type: str | None = None


@dataclass(frozen=True)
class VisSpec:
    variables: tuple[ScriptArg, ...] = ()
    widgets: tuple[Widget, ...] = ()


def convert(arg: ScriptArg, raw: Any) -> Any:
    """A raw value (text from the command line, or a Python value) as the argument's type."""
    want = ARG_TYPES[arg.type]
    if isinstance(raw, want) and not (want is int and isinstance(raw, bool)):
        return raw
    if want is float and isinstance(raw, int) and not isinstance(raw, bool):
        return float(raw)
    if isinstance(raw, str):
        text = raw.strip()
        try:
            if want is bool:
                if text.lower() in _TRUE:
                    return True
                if text.lower() in _FALSE:
                    return False
                raise ValueError
            return want(text)
        except ValueError:
            pass
    raise ArgError(f"--{arg.name} needs {_type_words(arg.type)}, not {raw!r}",
                   hint=f"e.g. --{arg.name}={_example(arg)}")


def _type_words(t: str) -> str:
    return {"str": "a string", "int": "a whole number", "float": "a number",
            "bool": "true or false"}[t]


def _example(arg: ScriptArg) -> str:
    if arg.default is not None:
        return str(arg.default)
    return {"str": "value", "int": "10", "float": "0.5", "bool": "true"}[arg.type]


def parse_cli_args(declared: list[ScriptArg], argv: list[str]) -> dict[str, Any]:
    """``['--start_time=-10m', '--svc', 'cart']`` → converted values by name."""
    by_name = {a.name: a for a in declared}
    values: dict[str, Any] = {}
    i = 0
    while i < len(argv):
        token = argv[i]
        if not token.startswith("--") or token == "--":
            raise ArgError(f"unexpected script argument {token!r}",
                           hint="give script arguments as --name=value")
        name, eq, raw = token[2:].partition("=")
        if name not in by_name:
            from pxl.compiler import closest

            known = ", ".join(f"--{n}" for n in by_name) or "none"
            hint = closest(name, list(by_name))
            raise ArgError(f"the script has no argument --{name}",
                           hint=f"{hint + ' ' if hint else ''}arguments: {known}")
        if not eq:
            if by_name[name].type == "bool" and (i + 1 >= len(argv) or argv[i + 1].startswith("--")):
                raw = "true"
            elif i + 1 < len(argv):
                i += 1
                raw = argv[i]
            else:
                raise ArgError(f"--{name} needs a value", hint=f"--{name}={_example(by_name[name])}")
        values[name] = convert(by_name[name], raw)
        i += 1
    return values


def args_help(declared: list[ScriptArg], script: str) -> str:
    if not declared:
        return f"{script} takes no arguments."
    lines = [f"Arguments of {script} (give them after --, e.g. pxl run {script} -- --name=value):"]
    width = max(len(a.name) for a in declared) + 2
    for a in declared:
        default = "required" if a.required else f"default {a.default!r}"
        lines.append(f"  --{a.name:<{width}} {a.type:<6} {default}. {a.help}".rstrip())
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------
# Discovery


def declared_args(module: S.Module, vis: VisSpec | None = None) -> list[ScriptArg]:
    """Every px.arg(...) call in the script (found without running it), then vis.json's."""
    found: dict[str, ScriptArg] = {}
    aliases = _px_aliases(module)
    stack: list[Any] = list(module.body)
    while stack:
        node = stack.pop(0)
        if isinstance(node, S.Call) and _is_px_arg(node, aliases):
            arg = _static_arg(node, aliases)
            found.setdefault(arg.name, arg)
        stack.extend(S.children(node))
    for v in vis.variables if vis else ():
        found.setdefault(v.name, v)
    return list(found.values())


def _px_aliases(module: S.Module) -> set[str]:
    return {s.alias or "px" for s in module.body if isinstance(s, S.Import)}


def _is_px_arg(node: S.Call, aliases: set[str]) -> bool:
    f = node.func
    return (isinstance(f, S.Attribute) and f.attr == "arg" and isinstance(f.value, S.Name)
            and f.value.id in aliases)



def _static_arg(node: S.Call, aliases: set[str]) -> ScriptArg:
    params = ["name", "type", "default", "help"]
    given: dict[str, S.Expr] = dict(zip(params, node.args, strict=False))
    for k in node.keywords:
        if k.name not in params:
            raise CompileError(f"px.arg has no parameter {k.name!r}", k.span,
                               hint="px.arg(name, type=str, default=..., help='...')")
        given[k.name] = k.value
    if "name" not in given:
        raise CompileError("px.arg needs the argument's name", node.span,
                           hint="px.arg('start_time', default='-5m')")
    name = _constant(given["name"], "name")
    if not isinstance(name, str) or not name.isidentifier():
        raise CompileError("px.arg's name must be a string that is a valid name", given["name"].span)
    type_name = _type_name(given.get("type"), aliases)
    has_default = "default" in given
    default = _constant(given["default"], "default") if has_default else None
    if has_default and default is not None:
        default = convert(ScriptArg(name, type_name), default)
    help_text = _constant(given["help"], "help") if "help" in given else ""
    return ScriptArg(name, type_name, default, str(help_text), not has_default, node.span)


def _constant(e: S.Expr, what: str) -> Any:
    if isinstance(e, S.Const):
        return e.value
    if isinstance(e, S.UnaryOp) and e.op == "-" and isinstance(e.operand, S.Const) \
            and isinstance(e.operand.value, int | float):
        return -e.operand.value
    raise CompileError(f"px.arg's {what} must be a constant", e.span)


def _type_name(e: S.Expr | None, aliases: set[str]) -> str:
    if e is None:
        return "str"
    if isinstance(e, S.Name) and e.id in ARG_TYPES:
        return e.id
    if isinstance(e, S.Attribute) and isinstance(e.value, S.Name) and e.value.id in aliases:
        return "str"  # a semantic type such as px.Service: the value is a string
    raise CompileError("px.arg's type must be str, int, float, bool or a px semantic type",
                       e.span, hint="e.g. px.arg('n', type=int, default=10)")


# ----------------------------------------------------------------------------------------------
# Pixie's vis.json


def load_vis(path: str | Path) -> VisSpec:
    """Read a Pixie vis.json: its variables (arguments) and widgets (outputs)."""
    p = Path(path)
    try:
        spec = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ArgError(f"{p}: cannot read it as vis.json: {exc}") from None
    if not isinstance(spec, dict):
        raise ArgError(f"{p}: a vis.json holds a JSON object")
    variables = tuple(_vis_variable(v, p) for v in spec.get("variables") or ())
    widgets = tuple(_vis_widget(w, i) for i, w in enumerate(spec.get("widgets") or ())
                    if isinstance(w, dict) and isinstance(w.get("func"), dict))
    return VisSpec(variables, widgets)


def _vis_variable(v: Any, path: Path) -> ScriptArg:
    if not isinstance(v, dict) or not isinstance(v.get("name"), str):
        raise ArgError(f"{path}: each variable needs a name")
    t = _PIXIE_TYPES.get(str(v.get("type", "PX_STRING")), "str")
    arg = ScriptArg(v["name"], t, None, str(v.get("description", "")), "defaultValue" not in v)
    if "defaultValue" in v:
        arg = ScriptArg(arg.name, t, convert(arg, v["defaultValue"]), arg.help, False)
    return arg


_CHARTS = {"TimeseriesChart": "line", "BarChart": "bar", "HistogramChart": "histogram"}


def _vis_widget(w: dict[str, Any], index: int) -> Widget:
    func = w["func"]
    args = []
    for a in func.get("args") or ():
        if "variable" in a:
            args.append((a["name"], "variable", a["variable"]))
        else:
            args.append((a["name"], "value", a.get("value")))
    kind = str((w.get("displaySpec") or {}).get("@type", "")).rsplit(".", 1)[-1]
    name = w.get("name") or f"{func.get('name', 'widget')}_{index}"
    return Widget(name, str(func.get("name", "")), tuple(args), _CHARTS.get(kind))

"""The abstract syntax tree of a PxL script: what the parser makes and the compiler evaluates.

Every node carries the span it came from, so every later error can point at it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from engine.errors import Span

__all__ = [
    "Node", "Expr", "Stmt", "Module", "Import", "FromImport", "Assign", "ExprStmt", "Return",
    "Pass", "Param", "FunctionDef", "Name", "Attribute", "Subscript", "Keyword", "Call", "BinOp",
    "UnaryOp", "Compare", "BoolOp", "Not", "Const", "ListExpr", "TupleExpr", "DictExpr",
    "children", "maker",
]


@dataclass(frozen=True)
class Node:
    span: Span = field(compare=False, repr=False, kw_only=True)


class Expr(Node):
    pass


class Stmt(Node):
    pass


@dataclass(frozen=True)
class Module(Node):
    body: tuple[Stmt, ...]


@dataclass(frozen=True)
class Import(Stmt):
    module: str
    alias: str | None


@dataclass(frozen=True)
class FromImport(Stmt):
    module: str
    names: tuple[tuple[str, str | None], ...]


@dataclass(frozen=True)
class Assign(Stmt):
    target: Expr
    value: Expr


@dataclass(frozen=True)
class ExprStmt(Stmt):
    expr: Expr


@dataclass(frozen=True)
class Return(Stmt):
    value: Expr | None


@dataclass(frozen=True)
class Pass(Stmt):
    pass


@dataclass(frozen=True)
class Param(Node):
    name: str
    annotation: Expr | None
    default: Expr | None


@dataclass(frozen=True)
class FunctionDef(Stmt):
    name: str
    params: tuple[Param, ...]
    returns: Expr | None
    body: tuple[Stmt, ...]
    docstring: str | None


@dataclass(frozen=True)
class Name(Expr):
    id: str


@dataclass(frozen=True)
class Attribute(Expr):
    value: Expr
    attr: str


@dataclass(frozen=True)
class Subscript(Expr):
    value: Expr
    index: Expr


@dataclass(frozen=True)
class Keyword(Node):
    name: str
    value: Expr


@dataclass(frozen=True)
class Call(Expr):
    func: Expr
    args: tuple[Expr, ...]
    keywords: tuple[Keyword, ...]


@dataclass(frozen=True)
class BinOp(Expr):
    op: str  # one of + - * / %
    left: Expr
    right: Expr


@dataclass(frozen=True)
class UnaryOp(Expr):
    op: str  # - or +
    operand: Expr


@dataclass(frozen=True)
class Compare(Expr):
    op: str  # one of == != < <= > >=
    left: Expr
    right: Expr


@dataclass(frozen=True)
class BoolOp(Expr):
    op: str  # and / or
    left: Expr
    right: Expr


@dataclass(frozen=True)
class Not(Expr):
    operand: Expr


@dataclass(frozen=True)
class Const(Expr):
    value: Any  # int, float, str, bool or None


@dataclass(frozen=True)
class ListExpr(Expr):
    items: tuple[Expr, ...]


@dataclass(frozen=True)
class TupleExpr(Expr):
    items: tuple[Expr, ...]


@dataclass(frozen=True)
class DictExpr(Expr):
    pairs: tuple[tuple[Expr, Expr], ...]


N = TypeVar("N", bound="Node")


def maker(cls: type[N]) -> Callable[..., N]:
    """``make(span, *fields)``: the node ``cls(*fields, span=span)``, made 2–3× faster, for the
    parser (a node per name and operator). A frozen dataclass's __init__ sets each field
    through object.__setattr__; this fills the new instance's dict, in the same order."""
    names = [f.name for f in dataclasses.fields(cls)]
    if names[0] != "span" or len(names) > 4 or "__post_init__" in dir(cls):
        return lambda span, *values: cls(*values, span=span)
    new = object.__new__
    if len(names) == 2:
        _, a = names

        def make1(span: Span, x: Any) -> N:
            node = new(cls)
            d = node.__dict__
            d["span"] = span
            d[a] = x
            return node

        return make1
    if len(names) == 3:
        _, a, b = names

        def make2(span: Span, x: Any, y: Any) -> N:
            node = new(cls)
            d = node.__dict__
            d["span"] = span
            d[a] = x
            d[b] = y
            return node

        return make2
    if len(names) == 4:
        _, a, b, c = names

        def make3(span: Span, x: Any, y: Any, z: Any) -> N:
            node = new(cls)
            d = node.__dict__
            d["span"] = span
            d[a] = x
            d[b] = y
            d[c] = z
            return node

        return make3
    return lambda span: cls(span=span)


def children(node: Any) -> list[Any]:
    """The nodes (and pairs of nodes) directly inside ``node``, for walks without recursion."""
    if isinstance(node, Keyword):
        return [node.value]
    if not isinstance(node, Node):
        return [x for x in node if isinstance(x, Node | tuple)] if isinstance(node, tuple) else []
    out: list[Any] = []
    for value in node.__dict__.values():
        if isinstance(value, Node):
            out.append(value)
        elif isinstance(value, tuple):
            out.extend(v for v in value if isinstance(v, Node | tuple))
    return out

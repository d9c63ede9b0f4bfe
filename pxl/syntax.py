"""The abstract syntax tree of a PxL script: what the parser makes and the compiler evaluates.

Every node carries the span it came from, so every later error can point at it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from engine.errors import Span

__all__ = [
    "Node", "Expr", "Stmt", "Module", "Import", "FromImport", "Assign", "ExprStmt", "Return",
    "Pass", "Param", "FunctionDef", "Name", "Attribute", "Subscript", "Keyword", "Call", "BinOp",
    "UnaryOp", "Compare", "BoolOp", "Not", "Const", "ListExpr", "TupleExpr", "DictExpr",
    "children",
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

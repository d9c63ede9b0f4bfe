"""Every plan node type has an executor handler, an explain form and a column analysis; every
expression type has a translation. The handler registries are the capability list."""

from __future__ import annotations

import engine.relations as R
from engine import exprs as X
from engine.executor import lower, translate
from engine.explain import describe
from engine.optimizer import columns

ABSTRACT = {R.Relation, R.Unary}


def node_types() -> list[type]:
    found, stack = [], [R.Relation]
    while stack:
        cls = stack.pop()
        stack.extend(cls.__subclasses__())
        if cls not in ABSTRACT and cls.__module__ == "engine.relations":
            found.append(cls)
    return found


def test_every_node_type_is_handled() -> None:
    types = node_types()
    assert {t.__name__ for t in types} >= {"Scan", "Values", "Filter", "Map", "Project",
                                           "Aggregate", "Join", "Union", "Limit", "Sort", "Sink"}
    for t in types:
        assert lower.dispatch(t) is not lower.dispatch(R.Relation), f"no executor handler: {t}"
        assert describe.dispatch(t) is not describe.dispatch(R.Relation), f"no explain: {t}"
        assert t.__name__ in open(columns.__file__).read(), f"no column analysis: {t}"


def test_every_expression_type_is_translated() -> None:
    for t in (X.ColumnRef, X.Literal, X.Call):
        assert translate.dispatch(t) is not translate.dispatch(X.Expr)

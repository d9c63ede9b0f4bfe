"""Golden plans: each tests/golden/<suite>/NAME.pxl beside its expected NAME.plan.

- ``compiler/``: the plan as compiled, before any rule;
- ``optimized/``: after all of engine.optimizer.RULES;
- ``rules/<rule>/``: before and after that one rule alone.

Set PXL_UPDATE_GOLDEN=1 to rewrite the .plan files from the current code (then review the diff).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import pxl
from engine.explain import explain
from engine.optimizer import RULES, optimize
from tests.conftest import DEMO_NOW

RULES_BY_NAME = {r.__name__: r for r in RULES}

GOLDEN = Path(__file__).parent / "golden"
CASES = sorted(GOLDEN.glob("*/*.pxl")) + sorted(GOLDEN.glob("rules/*/*.pxl"))
UPDATE = os.environ.get("PXL_UPDATE_GOLDEN") == "1"


def _plan_text(path: Path, catalog) -> str:
    source = path.read_text()
    plan = pxl.compile(source, catalog, now=DEMO_NOW, filename=path.name, optimized=False)
    if path.parent.name == "compiler":
        return explain(plan) + "\n"
    if path.parent.name == "optimized":
        return explain(optimize(plan)) + "\n"
    rule = RULES_BY_NAME[path.parent.name]
    return f"-- before\n{explain(plan)}\n-- after {rule.__name__}\n{explain(rule(plan))}\n"


@pytest.mark.parametrize("case", CASES, ids=[f"{c.parent.name}/{c.stem}" for c in CASES])
def test_golden_plan(case: Path, demo_catalog) -> None:
    expected_file = case.with_suffix(".plan")
    actual = _plan_text(case, demo_catalog)
    if UPDATE or not expected_file.exists():
        expected_file.write_text(actual)
        if not UPDATE:
            pytest.fail(f"wrote missing golden file {expected_file.name}; review and commit it")
    assert actual == expected_file.read_text()


def test_golden_cases_exist() -> None:
    assert len(CASES) >= 5


def test_every_rule_has_a_golden_case() -> None:
    covered = {c.parent.name for c in CASES if c.parent.parent.name == "rules"}
    assert covered == set(RULES_BY_NAME)

"""Golden plans: each tests/golden/<suite>/NAME.pxl beside its expected NAME.plan.

Set PXL_UPDATE_GOLDEN=1 to rewrite the .plan files from the current code (then review the diff).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import pxl
from tests.conftest import DEMO_NOW

GOLDEN = Path(__file__).parent / "golden"
CASES = sorted(GOLDEN.glob("*/*.pxl"))
UPDATE = os.environ.get("PXL_UPDATE_GOLDEN") == "1"


def _plan_text(path: Path, catalog) -> str:
    optimized = path.parent.name != "compiler"
    return pxl.explain(path.read_text(), catalog=catalog, now=DEMO_NOW, filename=path.name,
                       optimized=optimized) + "\n"


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

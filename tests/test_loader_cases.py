"""Playbook cases as data: valid files load clean; each invalid file gives exactly its expected messages.

Expected messages live beside each case in NAME.expected (``line:col: rule: message (level)``).
Refresh them after a deliberate change with ``IRX_UPDATE_GOLDEN=1 pytest tests/test_loader_cases.py``
and review the diff.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from irx.loader import check_file, load_playbook
from irx.problems import Problem

CASES = Path(__file__).parent / "cases"
VALID = sorted((CASES / "valid").glob("*.yaml"))
INVALID = sorted((CASES / "invalid").glob("*.yaml"))


def _line(p: Problem) -> str:
    suffix = " (warning)" if p.level == "warning" else ""
    return f"{p.line}:{p.col}: {p.rule}: {p.message}{suffix}"


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.stem)
def test_valid_case_has_no_problems(path: Path) -> None:
    checked = check_file(path)
    assert [_line(p) for p in checked.problems] == []
    assert load_playbook(path).name == path.stem


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.stem)
def test_invalid_case_reports_exactly_the_expected_problems(path: Path) -> None:
    got = [_line(p) for p in sorted(check_file(path).problems)]
    expected_file = path.with_suffix(".expected")
    if os.environ.get("IRX_UPDATE_GOLDEN") == "1":
        expected_file.write_text("\n".join(got) + "\n", encoding="utf-8")
    assert expected_file.exists(), f"{expected_file} is missing: create it with IRX_UPDATE_GOLDEN=1"
    expected = expected_file.read_text(encoding="utf-8").splitlines()
    assert got == expected
    assert any(p.level == "error" for p in check_file(path).problems)

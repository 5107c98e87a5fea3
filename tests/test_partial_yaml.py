"""A YAML syntax error in one top-level section: ``irx validate`` still reports the schema problems of the
sections it could read, at their own positions, and nothing that only the missing text could settle."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

IRX = [sys.executable, "-m", "irx.cli"]

GOOD_TOP = """\
apiVersion: irx/v1
kind: Playbok
metadata: {name: broken, title: Broken, severity: SEV9}
params:
  service: {type: string, default: app}
targets:
  app: {hosts: app}
"""
VERIFY = """\
verify:
  - id: check
    "on": app
    timeout: forever
    command: [echo, "{{ params.service }}"]
"""


def problems(tmp_path: Path, text: str) -> list[tuple[int, int, str]]:
    (tmp_path / "broken.yaml").write_text(text)
    result = subprocess.run(
        [*IRX, "validate", "--format", "json", "broken.yaml"], cwd=tmp_path, capture_output=True, text=True,
        timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    return [(p["line"], p["column"], p["rule"]) for p in json.loads(result.stdout)["problems"]]


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def test_the_sections_around_a_syntax_error_are_still_checked(tmp_path: Path) -> None:
    diagnose = 'diagnose:\n  - id: one\n    "on": app\n    command: [echo]\n     bad: indent\n'
    text = GOOD_TOP + diagnose + VERIFY
    found = problems(tmp_path, text)
    assert found == [
        (2, 7, "schema-const"),  # before the broken section
        (3, GOOD_TOP.splitlines()[2].index("SEV9") + 1, "schema-enum"),
        (line_of(text, "bad: indent"), 6, "yaml-syntax"),  # where it always was
        (line_of(text, "timeout: forever"), 14, "schema-pattern"),  # after it
    ]


def test_an_unclosed_bracket_leaves_out_every_section_it_spans(tmp_path: Path) -> None:
    text = GOOD_TOP.replace("{name: broken, title: Broken, severity: SEV9}", "\n  name: broken\n  tags: [a, b") + VERIFY
    found = problems(tmp_path, text)
    assert (2, 7, "schema-const") in found
    assert found[-1] == (line_of(text, "timeout: forever"), 14, "schema-pattern")
    assert [rule for _, _, rule in found].count("yaml-syntax") == 1
    # metadata and params were left out: nothing about what they hold, and no "missing required key"
    assert not [p for p in found if p[2] in {"schema-required", "schema-enum", "unknown-param", "unused-param"}]


@pytest.mark.parametrize(
    "broken",
    [
        'apiVersion: irx/v1\nkind: Playbook\nmetadata: {name: x, title: "unterminated\n',  # runs to the end
        "apiVersion: irx/v1\nkind: Playbook\nmetadata:\n\tname: x\n",  # a tab in the last section
    ],
)
def test_no_absence_is_claimed_while_the_file_does_not_parse(tmp_path: Path, broken: str) -> None:
    found = problems(tmp_path, broken)
    assert len(found) == 1
    assert found[0][2] in {"yaml-syntax", "yaml-tab"}


def test_rules_wait_for_a_file_that_parses(tmp_path: Path) -> None:
    """Semantic rules look across sections (a param used in the broken one is not unused): none runs."""
    diagnose = 'diagnose:\n  - id: one\n    "on": app\n    command: [echo, "{{ params.service }}"\n'
    text = (
        GOOD_TOP.replace("Playbok", "Playbook").replace("SEV9", "SEV3")
        + diagnose
        + VERIFY.replace('"{{ params.service }}"', "nothing")
    )
    found = problems(tmp_path, text)
    assert [rule for _, _, rule in found] == ["yaml-syntax", "schema-pattern"]


def test_run_still_refuses_the_file_with_its_syntax_error(tmp_path: Path) -> None:
    diagnose = 'diagnose:\n  - id: one\n    "on": app\n    command: [echo]\n     bad: indent\n'
    (tmp_path / "broken.yaml").write_text(GOOD_TOP.replace("Playbok", "Playbook").replace("SEV9", "SEV3") + diagnose)
    result = subprocess.run(
        [*IRX, "plan", "broken.yaml"], cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 2
    assert "yaml-syntax" in result.stderr
    assert "Traceback" not in result.stderr

"""``irx validate`` as CI runs it: real subprocesses, every output format parsed back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

from irx.cli import main

CASES = Path(__file__).parent / "cases"
IRX = [sys.executable, "-m", "irx.cli"]


def run_irx(*args: str, cwd: Path | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*IRX, *args], capture_output=True, text=True, cwd=cwd, timeout=timeout, check=False)


def test_clean_directory_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(CASES / "valid")]) == 0
    assert capsys.readouterr().out.endswith("2 files checked: no problems\n")


def test_problems_exit_1_with_every_problem_on_its_own_line(capsys: pytest.CaptureFixture[str]) -> None:
    path = CASES / "invalid" / "schema-errors.yaml"
    assert main(["validate", str(path)]) == 1
    lines = capsys.readouterr().out.splitlines()
    expected = len((CASES / "invalid" / "schema-errors.expected").read_text().splitlines())
    assert len(lines) == expected + 1  # every problem, plus the summary
    shown = path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path
    assert lines[0] == f"{shown}:1:13: schema-const: apiVersion: must be 'irx/v1', got 'irx/v2'"


def test_warnings_pass_unless_strict(tmp_path: Path) -> None:
    playbook = tmp_path / "named-wrong.yaml"
    playbook.write_text((CASES / "valid" / "minimal.yaml").read_text())
    assert main(["validate", str(playbook)]) == 0  # name-mismatch is a warning
    assert main(["validate", "--strict", str(playbook)]) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["validate", "/no/such/dir"], "irx: error: /no/such/dir: no such file or directory"),
        (["validate", "--format", "xml", "x"], "Invalid value for '--format'"),
        (["frobnicate"], "No such command 'frobnicate'"),
    ],
)
def test_usage_errors_exit_2_with_one_line(args: list[str], message: str) -> None:
    result = run_irx(*args)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_empty_directory_is_a_usage_error(tmp_path: Path) -> None:
    result = run_irx("validate", str(tmp_path))
    assert result.returncode == 2
    assert result.stderr.strip() == f"irx: error: no playbook files (*.yaml, *.yml) in {tmp_path}"


def test_default_path_is_playbooks_dir(tmp_path: Path) -> None:
    (tmp_path / "playbooks").mkdir()
    (tmp_path / "playbooks" / "minimal.yaml").write_text((CASES / "valid" / "minimal.yaml").read_text())
    result = run_irx("validate", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "1 file checked: no problems\n"


def test_json_format(tmp_path: Path) -> None:
    result = run_irx("validate", "--format", "json", str(CASES / "invalid" / "params.yaml"))
    body = json.loads(result.stdout)
    assert result.returncode == 1
    assert body["errors"] == 7
    assert body["problems"][0] == {
        "path": str(CASES.relative_to(Path.cwd()) / "invalid" / "params.yaml")
        if CASES.is_relative_to(Path.cwd())
        else str(CASES / "invalid" / "params.yaml"),
        "line": 8,
        "column": 35,
        "rule": "param-default",
        "level": "error",
        "message": "param 'count': default '5' is not of type integer",
    }


def test_github_annotations(tmp_path: Path) -> None:
    result = run_irx("validate", "--format", "github", "invalid/references.yaml", cwd=CASES)
    lines = result.stdout.splitlines()
    assert lines[0] == (
        "::error file=invalid/references.yaml,line=14,col=12,title=irx forward-reference::"
        "shell: step 'first' reads 'later', which runs later (mitigate)"
    )
    assert any(line.startswith("::warning file=invalid/references.yaml,line=20,") for line in lines)
    assert lines[-1].startswith("irx validate: 1 file(s),")


def test_junit_xml_parses_with_one_case_per_file(tmp_path: Path) -> None:
    out = tmp_path / "junit.xml"
    result = run_irx("validate", "--format", "junit", "-o", str(out), "valid", "invalid/safety.yaml", cwd=CASES)
    assert result.returncode == 1
    root = ET.parse(out).getroot()
    suite = root.find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures")) == ("3", "1")
    failures = root.findall(".//testcase/failure")
    assert len(failures) == 1
    assert failures[0].get("type") == "approval-missing"
    assert "35:5: schema-required: missing required key 'reason'" in (failures[0].text or "")


def test_sarif_is_2_1_0_with_regions(tmp_path: Path) -> None:
    result = run_irx("validate", "--format", "sarif", "invalid/yaml-duplicate.yaml", cwd=CASES)
    sarif = json.loads(result.stdout)
    assert sarif["version"] == "2.1.0"
    run = sarif["runs"][0]
    rules = [r["id"] for r in run["tool"]["driver"]["rules"]]
    first = run["results"][0]
    assert first["ruleId"] == "yaml-duplicate-key"
    assert rules[first["ruleIndex"]] == "yaml-duplicate-key"
    location = first["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"] == "invalid/yaml-duplicate.yaml"
    assert location["region"] == {"startLine": 7, "startColumn": 3}
    assert first["level"] == "error"


def test_sarif_describes_every_rule_it_can_report(tmp_path: Path) -> None:
    """Each rule in tool.driver.rules (every rule a result names among them) says what it checks, in short
    and in full, and links to the section of the docs that lists it."""
    result = run_irx("validate", "--format", "sarif", "invalid", cwd=CASES)
    run = json.loads(result.stdout)["runs"][0]
    rules = {r["id"]: r for r in run["tool"]["driver"]["rules"]}
    reported = {r["ruleId"] for r in run["results"]}
    assert len(reported) > 30
    assert reported <= set(rules)
    repo = Path(__file__).resolve().parents[1]
    for rule_id, rule in rules.items():
        short, full = rule["shortDescription"]["text"], rule["fullDescription"]["text"]
        assert short, rule_id
        assert full, rule_id
        assert short != rule_id.replace("-", " "), f"{rule_id}: the short description only repeats the id"
        assert len(full) > len(short) or full.endswith("."), rule_id
        assert rule["helpUri"].startswith("https://github.com/irx-dev/irx/blob/main/docs/"), rule_id
        page, _, anchor = rule["helpUri"].removeprefix("https://github.com/irx-dev/irx/blob/main/").partition("#")
        text = (repo / page).read_text()
        assert not anchor or f"## {anchor.replace('-', ' ').capitalize()}" in text, rule["helpUri"]
    for rule_id in reported:  # the docs' rule table names every rule irx reports (the schema ones included)
        assert f"`{rule_id}`" in (repo / "docs" / "playbook-format.md").read_text(), rule_id
    assert rules["unknown-param"]["shortDescription"]["text"] == "params.NAME in a template names a declared param"
    assert "declare" in rules["unknown-param"]["fullDescription"]["text"]


def test_unwritable_output_is_a_usage_error(tmp_path: Path) -> None:
    result = run_irx("validate", "-o", str(tmp_path / "missing" / "out.xml"), str(CASES / "valid"))
    assert result.returncode == 2
    assert result.stderr.startswith(f"irx: error: cannot write {tmp_path / 'missing' / 'out.xml'}")


def test_schema_command_prints_the_shipped_schema() -> None:
    result = run_irx("schema")
    assert json.loads(result.stdout)["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    repo_schema = Path(__file__).parents[1] / "schemas" / "playbook.schema.json"
    assert result.stdout == repo_schema.read_text()


def test_help_imports_no_heavy_library() -> None:
    code = (
        "import sys\n"
        "from irx.cli import main\n"
        "main(['--help'])\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & "
        "{'ansible', 'ansible_runner', 'httpx', 'paramiko', 'jsonschema', 'jinja2', 'starlette', 'uvicorn'})\n"
        "print('HEAVY=' + ','.join(heavy))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True, env={**os.environ}
    )
    assert "Exit codes:" in result.stdout
    assert result.stdout.strip().endswith("HEAVY=")


ROUTES_OK = """\
apiVersion: irx/v1
kind: Routes  # which alerts start which playbook
routes:
  - name: pg-idle
    match: ['alertname="PgIdleSessionsHigh"']
    playbook: db-pool-exhausted
    params: {app_user: {label: usename}}
    mode: run
    approval_timeout: 45m
"""


def test_a_routes_file_is_checked_as_routes_not_as_a_playbook(tmp_path: Path) -> None:
    good = tmp_path / "routes.yaml"
    good.write_text(ROUTES_OK)
    ok = run_irx("validate", str(good), "playbooks", cwd=Path(__file__).parents[1])
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "files checked: no problems" in ok.stdout
    bad = tmp_path / "bad-routes.yaml"
    bad.write_text(
        ROUTES_OK.replace("usename}}", "usename}, nope: 1}").replace("45m", "soon")
        + "  - name: pg-idle\n    match: ['severity=~\"(page']\n    playbook: no-such-playbook\n"
    )
    found = run_irx("validate", "--format", "json", str(bad), cwd=Path(__file__).parents[1])
    assert found.returncode == 1, found.stdout + found.stderr
    problems = json.loads(found.stdout)["problems"]
    assert {p["rule"] for p in problems} == {"routes"}
    messages = [(p["line"], p["message"]) for p in problems]
    assert any(line == 9 and "approval_timeout: 'soon' does not match" in m for line, m in messages), messages
    assert any(line == 10 and "is not closed" in m for line, m in messages), messages
    # Schema problems first: the model's problems (names, playbooks) come once the file fits the schema.
    bad.write_text(bad.read_text().replace("soon", "45m"))
    again = run_irx("validate", str(bad), cwd=Path(__file__).parents[1])
    assert again.returncode == 1
    assert f"{bad}:10:1: routes: routes/1/name: 'pg-idle' is the name of an earlier route" in again.stdout
    assert "routes/1/playbook: no playbook named 'no-such-playbook'" in again.stdout
    assert "schema-" not in again.stdout  # never read as a playbook


def test_an_approvers_file_is_checked_as_approvers(tmp_path: Path) -> None:
    good = tmp_path / "approvers.yaml"
    good.write_text(
        "apiVersion: irx/v1\nkind: Approvers\nusers:\n  - {name: alice, groups: [dba]}\n"
        'policy:\n  default: {approvers: ["group:dba"], approvals: 2}\n'
    )
    ok = run_irx("validate", str(good), cwd=Path(__file__).parents[1])
    assert ok.returncode == 0, ok.stdout + ok.stderr
    bad = tmp_path / "bad-approvers.yaml"
    bad.write_text(good.read_text().replace("group:dba", "group:dbas").replace("alice, groups", "alice, group"))
    found = run_irx("validate", str(bad), cwd=Path(__file__).parents[1])
    assert found.returncode == 1, found.stdout + found.stderr
    assert (
        f"{bad}:4:5: approvers: users/0: Additional properties are not allowed ('group' was unexpected)" in found.stdout
    )
    assert "schema-" not in found.stdout  # never read as a playbook
    bad.write_text(good.read_text().replace("group:dba", "group:dbas"))
    again = run_irx("validate", str(bad), cwd=Path(__file__).parents[1])
    assert f"{bad}:6:25: approvers: policy/default/approvers/0: no user of this file is in group 'dbas'" in again.stdout

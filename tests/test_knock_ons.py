"""One mistake, one problem: ``irx validate`` folds a cause reported in many places, and what a misspelt step
key causes in its step, into the first report, listing the other places (real ``irx validate`` subprocesses)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

IRX = [sys.executable, "-m", "irx.cli"]

PLAYBOOK = """\
apiVersion: irx/v1
kind: Playbook
metadata: {name: knock, title: Knock-ons, severity: SEV3}
params:
  service: {type: string, default: app}
targets:
  app: {hosts: app}
diagnose:
  - id: one
    "on": app
    command: [systemctl, is-active, "{{ params.servce }}"]
  - id: two
    "on": app
    command: [systemctl, status, "{{ params.servce }}", "{{ params.other }}"]
    when: params.servce != ''
  - id: three
    "on": apps
    command: [echo, "{{ params.service }}"]
  - id: four
    "on": apps
    command: [echo, "{{ steps.nope.stdout }}", "{{ steps.nope.rc }}"]
  - id: five
    "on": app
    comand: [echo, hello]
  - id: six
    onn: app
    command: [echo, hello]
mitigate:
  - id: fix
    "on": app
    approval: required
    command: [echo, "{{ params.servce }}"]
"""


def validate(tmp_path: Path, fmt: str = "text") -> subprocess.CompletedProcess[str]:
    (tmp_path / "knock.yaml").write_text(PLAYBOOK)
    return subprocess.run(
        [*IRX, "validate", "--format", fmt, "knock.yaml"], cwd=tmp_path, capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip


def line_of(text: str, occurrence: int = 0) -> int:
    return [i for i, line in enumerate(PLAYBOOK.splitlines(), 1) if text in line][occurrence]


def test_the_same_cause_is_printed_once_with_its_other_places(tmp_path: Path) -> None:
    result = validate(tmp_path)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    servce = [line for line in lines if "unknown param 'servce'" in line]
    first, second, when, fix = (line_of("params.servce", i) for i in range(4))
    assert servce == [
        f"knock.yaml:{first}:37: unknown-param: command[2]: unknown param 'servce' (params: service) "
        f"(also: {second}:34, {when}:11, {fix}:21)"
    ]
    # another unknown param is another cause: its own line, nothing folded into it
    other = [line for line in lines if "unknown param 'other'" in line]
    col = PLAYBOOK.splitlines()[second - 1].index('"{{ params.other') + 1  # the template's own string
    assert other == [f"knock.yaml:{second}:{col}: unknown-param: command[3]: unknown param 'other' (params: service)"]
    targets = [line for line in lines if "unknown-target" in line]
    assert targets == [
        f"knock.yaml:{line_of('apps')}:11: unknown-target: step 'three' runs on unknown target 'apps' (targets: app) "
        f"(also: {line_of('apps', 1)}:11)"
    ]
    steps = [line for line in lines if "unknown-step" in line]
    assert steps == [
        f"knock.yaml:{line_of('nope')}:21: unknown-step: command[1]: no step 'nope' in this playbook "
        f"(also: {line_of('nope')}:48)"
    ]


def test_what_a_misspelt_key_causes_in_its_step_is_folded_into_it(tmp_path: Path) -> None:
    lines = validate(tmp_path).stdout.splitlines()
    five = line_of("id: five")
    typo = [line for line in lines if "'comand'" in line]
    assert typo == [
        f"knock.yaml:{five + 2}:5: schema-unknown-key: unknown key 'comand' in diagnose[4]; did you mean 'command'? "
        f"(also: {five}:5 schema-action, {five + 1}:5 ignored-on)"
    ]
    assert not any("diagnose[4] has no action" in line for line in lines)
    six = line_of("id: six")
    onn = [line for line in lines if "'onn'" in line]
    assert len(onn) == 1
    assert onn[0].startswith(f"knock.yaml:{six + 1}:5: schema-unknown-key: unknown key 'onn' in diagnose[5]")
    assert "did you mean 'on'?" in onn[0]
    assert onn[0].endswith(f"(also: {six + 2}:5 schema-required)")
    assert not any("add 'on: TARGET'" in line for line in lines)
    assert lines[-1] == "1 file checked: 6 error(s), 0 warning(s)"


def test_json_and_sarif_keep_every_place(tmp_path: Path) -> None:
    report = json.loads(validate(tmp_path, "json").stdout)
    servce = [p for p in report["problems"] if "'servce'" in p["message"]]
    assert len(servce) == 1
    assert [(a["line"], a["column"], a["rule"]) for a in servce[0]["also"]] == [
        (line_of("params.servce", 1), 34, "unknown-param"),
        (line_of("params.servce", 2), 11, "unknown-param"),
        (line_of("params.servce", 3), 21, "unknown-param"),
    ]
    sarif = json.loads(validate(tmp_path, "sarif").stdout)
    result = next(r for r in sarif["runs"][0]["results"] if "'servce'" in r["message"]["text"])
    assert result["locations"][0]["physicalLocation"]["region"] == {
        "startLine": line_of("params.servce"),
        "startColumn": 37,
    }
    related = [loc["physicalLocation"]["region"]["startLine"] for loc in result["relatedLocations"]]
    assert related == [line_of("params.servce", i) for i in (1, 2, 3)]

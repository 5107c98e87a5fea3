"""The shipped library: every playbook validates (irx and plain JSON Schema), lists and shows."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from irx.cli import main
from irx.loader import check_file

REPO = Path(__file__).resolve().parents[1]
PLAYBOOKS = sorted((REPO / "playbooks").glob("*.yaml"))
REQUIRED = {
    "db-pool-exhausted",
    "database-connection-failure",
    "site-outage",
    "high-memory",
    "high-cpu",
    "slow-responses",
    "high-error-rate",
    "redis-cache-failure",
    "ddos-traffic-spike",
    "auth-failures",
    "external-api-outage",
    "queue-backlog",
    "disk-space-exhausted",
    "security-breach-containment",
    "maintenance-mode",
    "scale-out",
    "restore-from-backup",
}


def test_library_has_every_required_playbook() -> None:
    assert {p.stem for p in PLAYBOOKS} >= REQUIRED


@pytest.mark.parametrize("path", PLAYBOOKS, ids=lambda p: p.stem)
def test_shipped_playbook_is_clean_even_strictly(path: Path) -> None:
    assert [str(p) for p in check_file(path).problems] == []
    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert first == "# yaml-language-server: $schema=../schemas/playbook.schema.json"


def test_shipped_playbooks_validate_with_plain_json_schema() -> None:
    """check-jsonschema (YAML 1.2, like editors) against the same schema file, independently of irx."""
    checker = Path(sys.executable).parent / "check-jsonschema"
    result = subprocess.run(
        [str(checker), "--schemafile", str(REPO / "schemas" / "playbook.schema.json"), *map(str, PLAYBOOKS)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_validate_library_strict_exit_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "--strict", str(REPO / "playbooks")]) == 0
    assert capsys.readouterr().out == f"{len(PLAYBOOKS)} files checked: no problems\n"


def test_list_json_has_every_playbook_with_counts(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list", "--format", "json", "-p", str(REPO / "playbooks")]) == 0
    body = json.loads(capsys.readouterr().out)
    names = {row["name"] for row in body["playbooks"]}
    assert names == {p.stem for p in PLAYBOOKS}
    pool = next(row for row in body["playbooks"] if row["name"] == "db-pool-exhausted")
    assert pool["severity"] == "SEV2"
    assert pool["steps"]["diagnose"] >= 2
    assert body["invalid"] == []


def test_list_text_columns(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list", "-p", str(REPO / "playbooks")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["NAME", "SEV", "STEPS", "(d/m/v/r)", "TITLE"]
    assert any(line.startswith("db-pool-exhausted ") and " SEV2 " in line for line in lines)


def test_list_reports_an_invalid_file_and_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "ok.yaml").write_text((REPO / "tests" / "cases" / "valid" / "minimal.yaml").read_text())
    (tmp_path / "broken.yaml").write_text("apiVersion: irx/v1\n")
    assert main(["list", "-p", str(tmp_path)]) == 1
    captured = capsys.readouterr()
    assert "minimal" in captured.out
    assert f"invalid: {tmp_path / 'broken.yaml'}:1:1: " in captured.err


def test_show_text_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["show", "db-pool-exhausted", "-p", str(REPO / "playbooks")]) == 0
    text = capsys.readouterr().out
    assert text.startswith("db-pool-exhausted — ")
    for heading in ("Symptoms:", "Params:", "Diagnose:", "Mitigate:", "Verify:"):
        assert heading in text
    assert main(["show", "db-pool-exhausted", "--format", "json", "-p", str(REPO / "playbooks")]) == 0
    body = json.loads(capsys.readouterr().out)
    assert body["params"]["pg_password"]["secret"] is True
    assert body["params"]["pg_password"]["default"] == "******"
    # The DSN holds no password (its pattern refuses one), so it is not a secret and is shown as it is.
    assert body["params"]["pg_dsn"]["secret"] is False
    assert body["params"]["pg_dsn"]["default"] == "postgresql://postgres@127.0.0.1:54329/postgres"
    assert [s["phase"] for s in body["phases"]["mitigate"]] == ["mitigate"] * len(body["phases"]["mitigate"])


def test_show_unknown_name_suggests(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["show", "db-pool-exhausted-typo", "-p", str(REPO / "playbooks")]) == 2
    assert "; did you mean db-pool-exhausted, " in capsys.readouterr().err


@pytest.mark.parametrize("args", [["list"], ["show", "db-pool-exhausted"], ["plan", "db-pool-exhausted"]])
def test_a_reader_that_goes_away_is_not_an_error(args: list[str]) -> None:
    """``irx list | head -1``: the pipe closed before irx wrote is the end of the output, exit 0, no noise."""
    read, write = os.pipe()
    os.close(read)  # the reader is gone before the first line
    proc = subprocess.run(
        [sys.executable, "-m", "irx", *args], cwd=REPO, stdout=write, stderr=subprocess.PIPE, text=True, check=False
    )
    os.close(write)
    assert (proc.returncode, proc.stderr) == (0, "")

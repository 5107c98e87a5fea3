"""A run with no notification channel says so once, at the start; a run with one does not."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

IRX = [sys.executable, "-m", "irx.cli"]
PLAYBOOK = """\
apiVersion: irx/v1
kind: Playbook
metadata: {name: quiet-check, title: A check that tells people, severity: SEV4}
diagnose:
  - id: look
    notify: {message: looked}
mitigate:
  - id: tell
    notify: {message: told}
verify:
  - id: fine
    assert: {that: "1 == 1"}
"""
CHANNEL_ENV = ("IRX_SLACK_WEBHOOK_URL", "IRX_WEBHOOK_URL", "IRX_NOTIFY_FILE")


def run(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "quiet-check.yaml").write_text(PLAYBOOK)
    environ = {k: v for k, v in os.environ.items() if k not in CHANNEL_ENV} | env
    return subprocess.run(
        [*IRX, "run", str(tmp_path / "quiet-check.yaml"), "-y", "--runs-dir", str(tmp_path / "runs"), *args],
        cwd=tmp_path, env=environ, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_no_channel_is_said_once_in_the_header(tmp_path: Path) -> None:
    result = run(tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    said = [i for i, line in enumerate(lines) if "no channel configured" in line]
    assert said == [2], result.stdout  # right after the run line and the plan line, and only there
    assert lines[2].startswith("notifications: no channel configured (irx_notify in the inventory")
    assert "nobody is told about this run" in lines[2]
    assert "notify: told" in result.stdout  # the notify steps still show on the terminal


def test_json_runs_say_it_on_stderr_with_the_progress(tmp_path: Path) -> None:
    result = run(tmp_path, "--format", "json")
    assert result.returncode == 0
    json.loads(result.stdout)  # stdout stays the machine-readable summary
    assert result.stderr.count("no channel configured") == 1


def test_a_configured_channel_is_not_warned_about(tmp_path: Path) -> None:
    sink = tmp_path / "messages.jsonl"
    result = run(tmp_path, IRX_NOTIFY_FILE=str(sink))
    assert result.returncode == 0, result.stderr
    assert "no channel configured" not in result.stdout + result.stderr
    kinds = [json.loads(line)["kind"] for line in sink.read_text().splitlines()]
    assert "initial" in kinds
    assert "resolved" in kinds

"""``irx history``: every run under the runs directory, newest first, as a table or JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from irx.cli import main
from irx.redact import Redactor
from irx.timeline import Journal
from test_report import Clock, clock, interrupted_run, rolled_back_run, start, verified_run

__all__ = ["clock"]  # the fixture, imported for these tests


def test_history_text_table(tmp_path: Path, clock: Clock, capsys: pytest.CaptureFixture[str]) -> None:
    runs = tmp_path / "runs"
    verified_run(runs, clock)
    rolled_back_run(runs, clock)
    interrupted_run(runs, clock)

    assert main(["history", "--runs-dir", str(runs)]) == 0
    columns = "RUN ID                   PLAYBOOK       INVENTORY  MODE  STATUS       OPERATOR      STARTED"
    assert capsys.readouterr().out.splitlines() == [
        f"{columns}               DURATION",
        "20261122T110944Z-cccccc  queue-backlog  prod       run   interrupted  alice@laptop  2026-11-22 11:11:05Z"
        "  6.0s",
        "20261122T110944Z-bbbbbb  queue-backlog  prod       run   rolled_back  alice@laptop  2026-11-22 11:10:22Z"
        "  42.5s",
        "20261122T110944Z-aaaaaa  queue-backlog  prod       run   verified     alice@laptop  2026-11-22 11:09:44Z"
        "  38.5s",
    ]


def test_history_json(tmp_path: Path, clock: Clock, capsys: pytest.CaptureFixture[str]) -> None:
    runs = tmp_path / "runs"
    verified_run(runs, clock)

    assert main(["history", "--format", "json", "--runs-dir", str(runs)]) == 0
    (run,) = json.loads(capsys.readouterr().out)
    assert {key: run[key] for key in ("run_id", "playbook", "inventory", "mode", "status", "operator")} == {
        "run_id": "20261122T110944Z-aaaaaa",
        "playbook": "queue-backlog",
        "inventory": "prod",
        "mode": "run",
        "status": "verified",
        "operator": "alice@laptop",
    }
    assert (run["started"], run["duration"]) == ("2026-11-22T11:09:44.000000Z", 38.5)


def test_history_empty_and_env_runs_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("IRX_RUNS_DIR", str(tmp_path / "none"))
    assert main(["history"]) == 0
    assert capsys.readouterr().out == "no runs recorded\n"
    assert main(["history", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_history_marks_journal_problems(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = tmp_path / "runs" / "20261122T110944Z-ffffff"
    run_dir.mkdir(parents=True)
    (run_dir / "timeline.jsonl").write_text('{"v":1,"seq":1,"type":"phase_started"}\n{"v":1,"se')

    assert main(["history", "--runs-dir", str(tmp_path / "runs")]) == 0
    assert (
        "20261122T110944Z-ffffff  -         -          -     interrupted (journal problems)" in capsys.readouterr().out
    )


def test_a_resumed_run_lasts_from_its_start_to_its_end_as_its_report_says(
    tmp_path: Path, clock: Clock, capsys: pytest.CaptureFixture[str]
) -> None:
    from irx.report.model import build_report
    from irx.timeline import read_journal

    runs = tmp_path / "runs"
    journal = start(runs, "20261122T110944Z-dddddd")
    clock.advance(2)
    journal.event("run_finished", status="awaiting_approval", exit_code=4, duration=2.0)
    journal.close()
    clock.advance(600)  # someone reviewed the gate, then resumed the run
    with Journal.reopen(runs / "20261122T110944Z-dddddd", Redactor()) as resumed:
        resumed.event("run_resumed", operator="bob@cn", after="awaiting_approval", plan_hash="sha256:aa", attempt=2)
        clock.advance(4.5)
        resumed.event("run_finished", status="verified", exit_code=0, duration=5.0)  # this attempt's own

    assert main(["history", "--format", "json", "--runs-dir", str(runs)]) == 0
    (run,) = json.loads(capsys.readouterr().out)
    assert run["duration"] == 606.5
    assert build_report(read_journal(runs / "20261122T110944Z-dddddd")).duration == 606.5
    verified_run(runs, clock)  # never resumed: its recorded duration, as before
    assert main(["history", "--format", "json", "--runs-dir", str(runs)]) == 0
    assert json.loads(capsys.readouterr().out)[1]["duration"] == 38.5

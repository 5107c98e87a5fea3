"""Approvals from another terminal: a real run started with ``--wait-approval`` waits at its gate on real
hosts while ``irx runs`` shows what it waits for and ``irx approve`` / ``irx deny`` answer it — bound to the
hash of what would run, recorded as the account that answered; a timeout, an interrupt and a forged
decision each stop the run without running the step."""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import re
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from journal_checks import check_journal, host_results, of_type
from jsonschema import Draft202012Validator

from irx.inbox import DECISIONS_DIR, WAITING_FILE
from irx.timeline import read_journal

if TYPE_CHECKING:
    from conftest import IrxCli  # tests/integration/conftest.py, which pytest loads as conftest

pytestmark = pytest.mark.integration

HOSTS = "localhost,web1"
ME = f"{pwd.getpwuid(os.getuid()).pw_name}@{socket.gethostname()}"


@pytest.fixture
def state(tmp_path: Path) -> Path:
    state = tmp_path / "state"
    state.mkdir()
    (state / "backlog").write_text("7\n")
    return state


def _start(irx_cli: IrxCli, state: Path, wait: str) -> subprocess.Popen[str]:
    return irx_cli.start("run-gated", "-l", HOSTS, "-e", f"state_dir={state}", "--wait-approval", wait)


def _waiting(irx_cli: IrxCli, proc: subprocess.Popen[str]) -> dict[str, Any]:
    requested = irx_cli.wait_for_event(proc, lambda e: e["type"] == "approval_requested", timeout=90)
    run_dir = irx_cli.journals()[-1].parent
    assert (run_dir / WAITING_FILE).is_file()
    return requested | {"run_id": run_dir.name, "run_dir": run_dir}


def _finish(proc: subprocess.Popen[str], timeout: float = 90) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


@contextlib.contextmanager
def _running(irx_cli: IrxCli, state: Path, wait: str) -> Iterator[subprocess.Popen[str]]:
    """A background run of run-gated with --wait-approval, killed if the test leaves it running."""
    proc = _start(irx_cli, state, wait)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_irx_approve_from_another_terminal_runs_exactly_what_was_shown(
    irx_cli: IrxCli, state: Path, timeline_validator: Draft202012Validator
) -> None:
    with _running(irx_cli, state, "90s") as proc:
        gate = _waiting(irx_cli, proc)
        run_id, full_hash = gate["run_id"], gate["approval_hash"]
        assert gate["step"] == "fix"
        assert sorted(gate["hosts"]) == sorted(HOSTS.split(","))

        listed = irx_cli.irx("runs")
        assert listed.rc == 0, listed.output
        row = next(line for line in listed.stdout.splitlines() if line.startswith(run_id))
        left = r"\((\d+m )?[\d.]+s left\)"
        assert re.search(rf"run-gated .* waiting\s+approval of fix@{full_hash[7:19]} {left}", row), row
        [active] = json.loads(irx_cli.irx("runs", "--format", "json").stdout)
        assert (active["state"], active["step"], active["approval_hash"]) == ("waiting", "fix", full_hash)
        assert "canary-$(hostname)" in active["shown"]

        # No terminal and no hash: nothing is approved blindly.
        blind = irx_cli.irx("approve", run_id[:15])
        assert blind.rc == 2, blind.output
        assert f"--hash {full_hash[7:19]}" in blind.stderr
        other = irx_cli.irx("approve", run_id, "probe", "--hash", full_hash[7:19])
        assert other.rc == 2, other.output
        assert "waits for approval of fix, not probe" in other.stderr
        stale = irx_cli.irx("approve", run_id, "fix", "--hash", "0" * 12)
        assert stale.rc == 2, stale.output
        assert "not the rendering you named" in stale.stderr
        hostile = irx_cli.irx("approve", run_id, "../../etc/passwd", "--hash", full_hash[7:19])
        assert hostile.rc == 2, hostile.output
        assert "is not a step id" in hostile.stderr
        assert not (gate["run_dir"] / DECISIONS_DIR).exists()  # none of these wrote a decision
        assert canaries(state) == []

        approved = irx_cli.irx("approve", run_id, "fix", "--hash", full_hash[7:19])
        assert approved.rc == 0, approved.output
        assert "echo fixed >" in approved.stdout  # what is approved is shown
        assert f"approved fix@{full_hash[7:19]} as {ME}: run {run_id} recorded it" in approved.stdout
        rc, out, err = _finish(proc)
    assert rc == 0, (out, err)
    assert canaries(state) == sorted(["canary-web1", f"canary-{socket.gethostname()}"])
    journal = read_journal(irx_cli.journals()[-1])
    check_journal(journal, timeline_validator)
    [approval] = of_type(journal, "approval", step="fix")
    assert (approval["approved"], approval["method"], approval["by"]) == (True, "cli", ME)
    assert approval["approval_hash"] == full_hash
    assert approval["seq"] > gate["seq"]
    assert set(host_results(journal, "fix")) == set(HOSTS.split(","))
    assert not (gate["run_dir"] / WAITING_FILE).exists()
    again = irx_cli.irx("approve", run_id, "fix", "--hash", full_hash[7:19])
    assert again.rc == 2, again.output
    assert "is not waiting for an approval: it ended verified" in again.stderr
    assert irx_cli.irx("runs").stdout == "no run is running or waiting for an approval\n"


def canaries(state: Path) -> list[str]:
    return sorted(p.name for p in state.glob("canary-*"))


def test_irx_deny_skips_the_step_and_records_why(
    irx_cli: IrxCli, state: Path, timeline_validator: Draft202012Validator
) -> None:
    with _running(irx_cli, state, "90s") as proc:
        gate = _waiting(irx_cli, proc)
        no_reason = irx_cli.irx("deny", gate["run_id"])
        assert no_reason.rc == 2, no_reason.output
        assert "--reason" in no_reason.stderr
        denied = irx_cli.irx("deny", gate["run_id"], "--reason", "the backlog drains by itself after 03:00")
        assert denied.rc == 0, denied.output
        assert f"refused fix@{gate['approval_hash'][7:19]} as {ME}" in denied.stdout
        rc, out, err = _finish(proc)
    assert canaries(state) == []
    journal = read_journal(irx_cli.journals()[-1])
    check_journal(journal, timeline_validator)
    [approval] = of_type(journal, "approval", step="fix")
    assert (approval["approved"], approval["method"], approval["by"]) == (False, "refused", ME)
    assert approval["reason"] == "the backlog drains by itself after 03:00"
    assert host_results(journal, "fix") == {}
    assert f"approval refused by {ME}: the backlog drains by itself after 03:00" in out
    assert rc == 0, (out, err)  # the run went on without the step and its verification passed


def test_a_gate_nobody_answers_stops_awaiting_approval_and_says_how_to_go_on(
    irx_cli: IrxCli, state: Path, timeline_validator: Draft202012Validator
) -> None:
    ran = irx_cli.run("run-gated", "-l", HOSTS, "-e", f"state_dir={state}", "--wait-approval", "2s")
    assert ran.rc == 4, ran.output
    assert canaries(state) == []
    journal = read_journal(irx_cli.journals()[-1])
    check_journal(journal, timeline_validator)
    [requested] = of_type(journal, "approval_requested", step="fix")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", requested["until"])
    [approval] = of_type(journal, "approval", step="fix")
    assert (approval["approved"], approval["method"]) == (False, "timeout")
    assert approval["reason"] == "nobody approved or refused fix within 2s"
    run_id = journal.events[0]["run_id"]
    assert not (irx_cli.runs_dir / run_id / WAITING_FILE).exists()
    listed = irx_cli.irx("runs")
    assert re.search(rf"^{run_id}\s+run-gated .* stopped\s+approval of fix@[0-9a-f]{{12}}", listed.stdout, re.M)
    late = irx_cli.irx("approve", run_id, "--yes")
    assert late.rc == 2, late.output
    assert "stopped awaiting approval of fix and is not waiting" in late.stderr


def test_an_interrupt_while_waiting_stops_the_run_cleanly(
    irx_cli: IrxCli, state: Path, timeline_validator: Draft202012Validator
) -> None:
    with _running(irx_cli, state, "90s") as proc:
        gate = _waiting(irx_cli, proc)
        proc.send_signal(signal.SIGINT)
        rc, out, err = _finish(proc)
    assert rc == 130, (out, err)
    assert canaries(state) == []
    journal = read_journal(irx_cli.journals()[-1])
    check_journal(journal, timeline_validator)
    [approval] = of_type(journal, "approval", step="fix")
    assert (approval["approved"], approval["method"]) == (False, "interrupted")
    assert journal.events[-1]["status"] == "interrupted"
    assert not (gate["run_dir"] / WAITING_FILE).exists()


def test_a_decision_for_another_rendering_runs_nothing(
    irx_cli: IrxCli, state: Path, timeline_validator: Draft202012Validator
) -> None:
    # Whoever can write into the run's directory can forge a decision; it still only approves the rendering
    # it names, and this one names another.
    with _running(irx_cli, state, "90s") as proc:
        gate = _waiting(irx_cli, proc)
        forged = {"step": "fix", "approve": True, "approval_hash": "sha256:" + "ab" * 32, "by": "mallory@elsewhere",
                  "via": "cli", "reason": "", "at": 0.0}  # fmt: skip
        folder = gate["run_dir"] / DECISIONS_DIR / "fix"
        folder.mkdir(parents=True)
        (folder / "1.json").write_text(json.dumps(forged))
        rc, out, err = _finish(proc)
    assert rc == 4, (out, err)
    assert canaries(state) == []
    journal = read_journal(irx_cli.journals()[-1])
    check_journal(journal, timeline_validator)
    [approval] = of_type(journal, "approval", step="fix")
    assert (approval["approved"], approval["method"], approval["by"]) == (False, "stale", "mallory@elsewhere")
    assert "not what would run" in approval["reason"]

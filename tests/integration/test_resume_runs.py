"""``irx resume``: a real run that stopped (a mitigation failed on one host, or was interrupted while it ran)
continues in its own journal on real hosts: completed steps do not run again, the step it stopped at runs
again only where it did not succeed, with the same params; a plan that renders differently is refused
until ``--replan``; a secret given with ``-e`` must be given again. Every step counts its executions per
host in the state directory, so the tests see what really ran where."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from journal_checks import check_journal, host_results, of_type
from jsonschema import Draft202012Validator

from conftest import RUN_PLAYBOOKS
from irx.report.markdown import render
from irx.report.model import build_report
from irx.timeline import read_journal

if TYPE_CHECKING:
    from conftest import IrxCli

pytestmark = pytest.mark.integration

LOCAL = socket.gethostname()
HOSTS = ["localhost", "web1", "web2"]
NAMES = {"localhost": LOCAL, "web1": "web1", "web2": "web2"}  # inventory name -> the host's hostname


@pytest.fixture
def state(tmp_path: Path) -> Path:
    state = tmp_path / "state"
    state.mkdir()
    (state / "backlog").write_text("7\n")
    return state


def runs_of(state: Path, step: str) -> dict[str, int]:
    """How many times ``step`` ran on each host (its lines in STEP-<hostname>)."""
    return {host: _lines(state / f"{step}-{name}") for host, name in NAMES.items()}


def _lines(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def test_a_mitigation_that_failed_on_one_host_runs_again_there_only(
    irx_cli: IrxCli, state: Path, timeline_validator: Draft202012Validator
) -> None:
    (state / "broken-web2").touch()
    first = irx_cli.run("run-resume", "-l", ",".join(HOSTS), "-e", f"state_dir={state}", "--yes")
    assert first.rc == 1, first.output
    assert runs_of(state, "fix") == {"localhost": 1, "web1": 1, "web2": 1}
    run_id = irx_cli.journals()[-1].parent.name

    (state / "broken-web2").unlink()  # the operator fixed what broke web2
    resumed = irx_cli.irx("resume", run_id[:17], "--yes")
    assert resumed.rc == 0, resumed.output
    assert f"irx resume (attempt 2) run-resume [SEV3] on {irx_cli.inventory}" in resumed.stdout
    assert runs_of(state, "probe") == {"localhost": 1, "web1": 1, "web2": 1}  # diagnosis not repeated
    assert runs_of(state, "fix") == {"localhost": 1, "web1": 1, "web2": 2}  # again on web2 only
    assert runs_of(state, "after") == {"localhost": 1, "web1": 1, "web2": 1}

    journal = read_journal(irx_cli.journals()[-1])
    assert len(irx_cli.journals()) == 1  # the same run, in the same journal
    check_journal(journal, timeline_validator)
    [resumed_event] = of_type(journal, "run_resumed")
    started = of_type(journal, "run_started")[0]
    assert resumed_event["after"] == "failed"
    assert (resumed_event["from_step"], resumed_event["rerun_hosts"], resumed_event["done"]) == (
        "fix",
        ["web2"],
        ["probe"],
    )
    assert resumed_event["plan_hash"] == started["plan_hash"]
    assert [e["status"] for e in of_type(journal, "run_finished")] == ["failed", "verified"]
    [again] = [e for e in of_type(journal, "step_started", step="fix") if e["seq"] > resumed_event["seq"]]
    assert again["hosts"] == ["web2"]
    # The second attempt's gate showed and hashed only what ran again.
    approvals = of_type(journal, "approval", step="fix")
    assert [a["hosts"] for a in approvals] == [HOSTS, ["web2"]]
    assert set(host_results(journal, "checked")) == set(HOSTS)

    report = render(build_report(journal))
    assert "resumed 1 time with irx resume" in report
    assert "Run resumed (attempt 2) by" in report
    assert "after it stopped failed: step fix again on web2 only" in report
    assert "**Status**: VERIFIED" in report

    again_done = irx_cli.irx("resume", run_id)
    assert again_done.rc == 2, again_done.output
    assert f"run {run_id} has nothing to resume: it verified" in again_done.stderr


def test_an_interrupted_mitigation_resumes_where_it_stopped(
    irx_cli: IrxCli, state: Path, timeline_validator: Draft202012Validator
) -> None:
    (state / "fix-delay").write_text("60\n")  # the fix hangs on every host until it is interrupted
    proc = irx_cli.start("run-resume", "-l", ",".join(HOSTS), "-e", f"state_dir={state}", "--yes")
    irx_cli.wait_for_event(proc, lambda e: e["type"] == "step_started" and e.get("step") == "fix", timeout=90)
    deadline = time.monotonic() + 30
    while sum(runs_of(state, "fix").values()) < len(HOSTS) and time.monotonic() < deadline:
        time.sleep(0.1)  # the command really runs on every host
    proc.send_signal(signal.SIGINT)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)  # the second interrupt stops the running step
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, (out, err)
    run_id = irx_cli.journals()[-1].parent.name
    assert read_journal(irx_cli.journals()[-1]).status == "interrupted"

    (state / "fix-delay").unlink()
    listed = irx_cli.irx("history")
    assert run_id in listed.stdout
    assert "interrupted" in listed.stdout
    resumed = irx_cli.irx("resume", "latest", "--yes")
    assert resumed.rc == 0, resumed.output
    assert runs_of(state, "probe") == {"localhost": 1, "web1": 1, "web2": 1}
    assert runs_of(state, "fix") == {"localhost": 2, "web1": 2, "web2": 2}  # no host had finished it
    journal = read_journal(irx_cli.journals()[-1])
    check_journal(journal, timeline_validator)
    [event] = of_type(journal, "run_resumed")
    assert (event["after"], event["from_step"], event["done"]) == ("interrupted", "fix", ["probe"])
    assert "rerun_hosts" not in event  # all of its hosts
    assert journal.status == "verified"


def test_a_plan_that_renders_differently_is_refused_until_replanned(
    irx_cli: IrxCli, state: Path, tmp_path: Path, timeline_validator: Draft202012Validator
) -> None:
    books = tmp_path / "books"
    books.mkdir()
    playbook = books / "run-resume.yaml"
    shutil.copy(RUN_PLAYBOOKS / "run-resume.yaml", playbook)
    secret = tmp_path / "secret.json"
    secret.write_text(json.dumps({"token": "hunter2-canary"}))
    secret.chmod(0o600)
    (state / "broken-web1").touch()
    common = ("-l", "localhost,web1", "-p", str(books))
    first = irx_cli.irx("run", "run-resume", "-i", str(irx_cli.inventory), *common, "-e", f"state_dir={state}",
                        "-e", f"@{secret}", "--yes")  # fmt: skip
    assert first.rc == 1, first.output
    run_id = irx_cli.journals()[-1].parent.name
    before = len(read_journal(irx_cli.journals()[-1]).events)
    (state / "broken-web1").unlink()

    no_secret = irx_cli.irx("resume", run_id, "-p", str(books), "--yes")
    assert no_secret.rc == 2, no_secret.output
    assert "param token is a secret given with -e when run" in no_secret.stderr
    other_value = irx_cli.irx("resume", run_id, "-p", str(books), "-e", "state_dir=/tmp", "--yes")
    assert other_value.rc == 2, other_value.output
    assert "-e state_dir: irx resume continues the run with the values it started with" in other_value.stderr

    playbook.write_text(
        playbook.read_text().replace(
            "echo x >> {{ params.state_dir }}/after-", "echo y >> {{ params.state_dir }}/after-"
        )
    )
    changed = irx_cli.irx("resume", run_id, "-p", str(books), "-e", f"@{secret}", "--yes")
    assert changed.rc == 2, changed.output
    assert "renders differently now:\n  - step after: summary was '$ echo x >>" in changed.stderr
    assert "resume with --replan to accept it" in changed.stderr
    assert len(read_journal(irx_cli.journals()[-1]).events) == before  # a refusal records nothing

    replanned = irx_cli.irx("resume", run_id, "-p", str(books), "-e", f"@{secret}", "--yes", "--replan")
    assert replanned.rc == 0, replanned.output
    assert "warning: replanned: step after: summary was" in replanned.stdout
    assert runs_of(state, "fix") == {"localhost": 1, "web1": 2, "web2": 0}
    assert (state / f"after-{LOCAL}").read_text() == "y\n"
    journal = read_journal(irx_cli.journals()[-1])
    check_journal(journal, timeline_validator)
    [event] = of_type(journal, "run_resumed")
    started = of_type(journal, "run_started")[0]
    assert event["replanned"] is True
    assert event["changes"][0].startswith("step after: summary was")
    assert event["plan_hash"] != started["plan_hash"]
    assert "hunter2-canary" not in irx_cli.journals()[-1].read_text()
    assert started["supplied"]["token"] == {
        "value": "******",
        "source": f"-e @{secret}",
        "text": False,
    }

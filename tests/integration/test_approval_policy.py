"""Who may approve, the two-person rule, and gates nobody answers in time, in real ``irx run --wait-approval``
processes on localhost: a second approver required and given (the same person twice, a non-approver and a
forged file do not count), a refusal, and timeouts that escalate to a real file channel and a real webhook,
then skip the step or stop the run."""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import pwd
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from journal_checks import check_journal, of_type
from jsonschema import Draft202012Validator

import irx
from irx.errors import UsageError
from irx.inbox import DECISIONS_DIR, Decision, read_waiting, submit
from irx.timeline import JournalRead, read_journal

pytestmark = pytest.mark.integration

PLAYBOOKS = Path(__file__).parent / "playbooks"
ME = pwd.getpwuid(os.getuid()).pw_name
IDENTITY = f"{ME}@{socket.gethostname()}"
APPROVERS = f"""\
apiVersion: irx/v1
kind: Approvers
users:
  - {{name: {ME}, groups: [oncall]}}
  - {{name: alice, groups: [oncall]}}
  - {{name: mallory, groups: [visitors]}}
policy:
  default: {{approvers: ["group:oncall"]}}
"""


@dataclass
class Irx:
    """The ``irx`` of this checkout in subprocesses, with its runs, locks and Ansible state in tmp_path."""

    cwd: Path
    env: dict[str, str]
    inventory: Path
    runs_dir: Path

    def cmd(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "irx", *args], cwd=self.cwd, env=self.env, stdin=subprocess.DEVNULL,
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip

    def start(self, playbook: str, *args: str) -> subprocess.Popen[str]:
        argv = [sys.executable, "-m", "irx", "run", playbook, "-p", str(PLAYBOOKS), "-i", str(self.inventory), *args]
        return subprocess.Popen(
            argv, cwd=self.cwd, env=self.env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True,
        )  # fmt: skip

    def journal(self) -> JournalRead:
        [path] = sorted(self.runs_dir.glob("*/timeline.jsonl"))
        return read_journal(path)

    def wait_for(self, proc: subprocess.Popen[str], kind: str, timeout: float = 90, **fields: Any) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            paths = sorted(self.runs_dir.glob("*/timeline.jsonl"))
            found = of_type(read_journal(paths[-1]), kind, **fields) if paths else []
            if found:
                return found[-1]
            if proc.poll() is not None:
                out, err = proc.communicate()
                pytest.fail(f"irx exited with {proc.returncode} before a {kind} event:\n{out}\n{err}")
            time.sleep(0.05)
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"no {kind} event within {timeout:g}s:\n{out}\n{err}")


class _Hook(http.server.BaseHTTPRequestHandler):
    received: list[dict[str, Any]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.received.append(json.loads(body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A real HTTP webhook receiver on 127.0.0.1: its URL and what it received."""
    received: list[dict[str, Any]] = []
    handler = type("Hook", (_Hook,), {"received": received})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def local(tmp_path: Path, webhook: tuple[str, list[dict[str, Any]]]) -> Irx:
    """localhost on a local connection, with a file channel ``leads`` and the webhook channel ``hook``."""
    inventory = tmp_path / "inventory.yml"
    hosts = {"localhost": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}}
    channels = [
        {"name": "leads", "kind": "file", "path": str(tmp_path / "leads.jsonl")},
        {"name": "hook", "kind": "webhook", "url": webhook[0]},
    ]
    inventory.write_text(yaml.safe_dump({"all": {"hosts": hosts, "vars": {"irx_notify": channels}}}))
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "backlog").write_text("7\n")
    (tmp_path / "home").mkdir()
    engine = str(Path(irx.__file__).resolve().parents[1])  # this checkout's irx, whatever the cwd
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([engine, *filter(None, [os.environ.get("PYTHONPATH", "")])]),
        "HOME": str(tmp_path / "home"),
        "IRX_RUNS_DIR": str(tmp_path / "runs"),
        "IRX_LOCK_DIR": str(tmp_path / "locks"),
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-local"),
        "PYTHONUNBUFFERED": "1",
    }
    return Irx(tmp_path, env, inventory, tmp_path / "runs")


@pytest.fixture
def approvers(tmp_path: Path) -> Path:
    path = tmp_path / "approvers.yaml"
    path.write_text(APPROVERS)
    path.chmod(0o600)
    return path


@contextlib.contextmanager
def running(local: Irx, playbook: str, *args: str) -> Iterator[subprocess.Popen[str]]:
    proc = local.start(playbook, "-e", f"state_dir={local.cwd / 'state'}", *args)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_two_people_must_approve_and_the_same_one_twice_or_a_non_approver_does_not_count(
    local: Irx, approvers: Path, timeline_validator: Draft202012Validator
) -> None:
    with running(local, "run-two-person", "--approvers", str(approvers), "--wait-approval", "90s") as proc:
        requested = local.wait_for(proc, "approval_requested", step="fix")
        assert (requested["needed"], requested["approvers"]) == (2, ["group:oncall"])
        run_dir = local.runs_dir / requested["run_id"]
        full = requested["approval_hash"]
        waiting = read_waiting(run_dir)
        assert waiting is not None
        assert (waiting.approvals, waiting.eligible, waiting.requester) == (2, ["alice", ME], IDENTITY)

        first = local.cmd("approve", requested["run_id"], "fix", "--hash", full[7:19])
        assert first.returncode == 0, first.stderr
        assert "needs 2 different approver(s) from group:oncall: 0 of 2 approvals" in first.stdout
        assert f"as {IDENTITY}: run {requested['run_id']} recorded it; 1 of 2 approvals" in first.stdout
        listed = local.cmd("runs")
        assert f"1 of 2 approvals ({IDENTITY})" in listed.stdout, listed.stdout
        twice = local.cmd("approve", requested["run_id"], "fix", "--hash", full[7:19])
        assert twice.returncode == 2
        assert twice.stderr == (
            f"irx: error: {ME} already approved fix: it needs 2 approvals from different people (1 given)\n"
        )
        with pytest.raises(UsageError) as refused:
            submit(run_dir, Decision("fix", True, full, "mallory", "web", at=time.time()))
        assert str(refused.value) == "mallory may not approve or refuse fix: its approvers are group:oncall"
        # Whoever can write into the run directory can forge a file; the run checks it against the rule.
        forged = {"step": "fix", "approve": True, "approval_hash": full, "by": "mallory", "via": "web", "reason": ""}
        (run_dir / DECISIONS_DIR / "fix" / "2.json").write_text(json.dumps(forged | {"at": 0.0}))
        ignored = local.wait_for(proc, "approval_given", by="mallory")
        assert (ignored["counted"], ignored["reason"]) == (False, "mallory is not an approver of fix (group:oncall)")
        assert proc.poll() is None  # still waiting for a second approver
        assert not (local.cwd / "state" / "canary").exists()

        submit(run_dir, Decision("fix", True, full, "alice", "web", at=time.time()))
        out, err = proc.communicate(timeout=90)
    assert proc.returncode == 0, (out, err)
    assert (local.cwd / "state" / "canary").read_text() == "fixed\n"
    journal = local.journal()
    check_journal(journal, timeline_validator)
    given = of_type(journal, "approval_given", step="fix")
    assert [(g["by"], g["via"], g["counted"], g["given"]) for g in given] == [
        (IDENTITY, "cli", True, 1),
        ("mallory", "web", False, 1),
        ("alice", "web", True, 2),
    ]
    [approval] = of_type(journal, "approval", step="fix")
    assert (approval["approved"], approval["method"], approval["approvers"], approval["needed"]) == (
        True, "web", [IDENTITY, "alice"], 2,
    )  # fmt: skip
    assert approval["by"] == f"{IDENTITY}, alice"
    report = local.cmd("report", requested["run_id"])
    assert report.returncode == 0, report.stderr
    assert f"approved by {IDENTITY}, alice (web)" in report.stdout
    assert f"Approval given: fix (Write the canary) by {IDENTITY} (cli), 1 of 2" in report.stdout
    assert "Approval not counted: fix (Write the canary) by mallory (web) — mallory is not an approver" in report.stdout
    assert "needs 2 approvals from group:oncall" in report.stdout


def test_one_refusal_by_an_approver_skips_the_step(
    local: Irx, approvers: Path, timeline_validator: Draft202012Validator
) -> None:
    with running(local, "run-two-person", "--approvers", str(approvers), "--wait-approval", "90s") as proc:
        requested = local.wait_for(proc, "approval_requested", step="fix")
        run_dir = local.runs_dir / requested["run_id"]
        with pytest.raises(UsageError, match=r"^mallory may not approve or refuse fix"):
            submit(run_dir, Decision("fix", False, requested["approval_hash"], "mallory", "web", "no", time.time()))
        submit(run_dir, Decision("fix", False, requested["approval_hash"], "alice", "web", "not at peak", time.time()))
        out, err = proc.communicate(timeout=90)
    assert proc.returncode == 0, (out, err)  # the run goes on without the step; verification passes
    assert not (local.cwd / "state" / "canary").exists()
    journal = local.journal()
    check_journal(journal, timeline_validator)
    [approval] = of_type(journal, "approval", step="fix")
    assert (approval["approved"], approval["method"], approval["by"]) == (False, "refused", "alice")
    assert "approval refused by alice: not at peak" in out
    late = local.cmd("approve", requested["run_id"], "fix", "--yes")
    assert late.returncode == 2


def test_gates_nobody_answers_escalate_then_skip_or_stop_the_run(
    local: Irx, webhook: tuple[str, list[dict[str, Any]]], timeline_validator: Draft202012Validator
) -> None:
    started = time.monotonic()
    with running(local, "run-escalate", "--wait-approval", "90s") as proc:
        out, err = proc.communicate(timeout=90)
    waited = time.monotonic() - started
    assert proc.returncode == 4, (out, err)  # fix_more: on_timeout abort stops the run awaiting approval
    assert waited < 60  # the steps' own timeouts (3s), not --wait-approval's 90s
    assert not (local.cwd / "state" / "canary").exists()
    assert not (local.cwd / "state" / "canary-more").exists()
    journal = local.journal()
    check_journal(journal, timeline_validator)
    escalated = of_type(journal, "approval_escalated")
    assert [(e["step"], e["channel"], e["given"], e["needed"]) for e in escalated] == [
        ("fix", "leads", 0, 1),
        ("fix_more", "hook", 0, 1),
    ]
    assert all(1.0 <= e["after"] < 3.0 for e in escalated)
    skipped, stopped = of_type(journal, "approval")
    assert (skipped["step"], skipped["approved"], skipped["method"]) == ("fix", False, "timeout-skip")
    assert skipped["reason"] == "nobody approved or refused fix within 3s; skipped (on_timeout: skip)"
    [finished] = of_type(journal, "step_finished", step="fix")
    assert (finished["status"], finished["reason"]) == ("skipped", skipped["reason"])
    assert (stopped["step"], stopped["method"]) == ("fix_more", "timeout")
    assert journal.events[-1]["status"] == "awaiting_approval"
    # Delivered for real: one line in the file channel, one POST to the webhook, each naming its gate.
    lines = [json.loads(line) for line in (local.cwd / "leads.jsonl").read_text().splitlines()]
    escalations = [line for line in lines if "still waits for approval" in line.get("message", "")]
    assert [e["step"] for e in escalations] == ["fix"], lines
    assert f"irx approve {journal.events[0]['run_id']} fix" in escalations[0]["message"]
    hooked = [body for body in webhook[1] if "still waits for approval" in json.dumps(body)]
    assert [body.get("step") for body in hooked] == ["fix_more"], webhook[1]
    notified = of_type(journal, "notification", step="fix_more")
    assert any(n["channel"] == "hook" and n["status"] == "sent" for n in notified), notified
    report = local.cmd("report")
    assert report.returncode == 0, report.stderr
    assert "Approval escalated: fix (Write the canary) still waiting after 1" in report.stdout
    assert "told leads" in report.stdout
    assert "Approval: fix on localhost not answered in time, so skipped (on_timeout: skip)" in report.stdout

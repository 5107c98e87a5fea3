"""irx run's parts that need no hosts: the approver, the terminal progress, and the import boundaries
(the run prints nothing; the orchestrator imports no concrete executor)."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

from irx.commands.run import Progress
from irx.executors.session import AnsibleSessions
from irx.inventory import Vault
from irx.loader import load_playbook
from irx.model import Step
from irx.results import HostResult, StepResult
from irx.run.approvals import approver

PLAYBOOK = """\
apiVersion: irx/v1
kind: Playbook
metadata: {name: tt, title: Test, severity: SEV3}
targets:
  db: {hosts: db}
mitigate:
  - {id: fix, name: Fix it, on: db, shell: fix, approval: required}
"""
GATE = "sha256:" + "ab12" * 16


class Gone(io.StringIO):
    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")


def gated(tmp_path: Path) -> Step:
    path = tmp_path / "tt.yaml"
    path.write_text(PLAYBOOK)
    (step,) = load_playbook(path).steps
    return step


def test_approvals_given_in_advance_come_first_and_a_stale_hash_is_refused(tmp_path: Path) -> None:
    step = gated(tmp_path)
    asked: list[str] = []

    def ask(step: Step, summary: str, gate_hash: str) -> bool:
        asked.append(f"{step.id}: {summary} {gate_hash}")
        return False

    assert approver(True, (), "op", ask)(step, ["db1"], "fix", GATE).method == "yes-flag"
    assert approver(False, ["fix"], "op", ask)(step, ["db1"], "fix", GATE).method == "approve-flag"
    assert approver(False, ["fix@ab12ab12ab12"], "op", ask)(step, ["db1"], "fix", GATE).approved
    stale = approver(False, ["fix@ffff0000ffff"], "op", ask)(step, ["db1"], "fix", GATE)
    assert (stale.approved, stale.method, stale.by) == (False, "stale", "op")
    assert stale.reason.startswith("--approve fix@ffff0000ffff does not match what fix would run now (fix@ab12")
    assert asked == []
    refused = approver(False, (), "op", ask)(step, ["db1"], "fix", GATE)
    assert (refused.approved, refused.method) == (False, "refused")
    assert asked == [f"fix: fix {GATE}"]
    assert approver(False, (), "op", lambda *_: True)(step, ["db1"], "fix", GATE).method == "tty"
    missing = approver(False, (), "op", None)(step, ["db1"], "fix", GATE)
    assert (missing.approved, missing.method) == (False, "missing")


def test_progress_shows_steps_and_hosts_redacted_and_survives_a_closed_reader(tmp_path: Path) -> None:
    step = gated(tmp_path)
    out = io.StringIO()
    progress = Progress(out, lambda text: text.replace("hunter2", "******"))
    progress.step(step, ["db1", "db2", "db3", "db4", "db5"])
    progress.host("fix", "db1", "ok", 0.25)
    failed = StepResult(
        "fix",
        "failed",
        hosts={"db1": HostResult("db1", "failed", msg="hunter2 refused")},
        reason="1 of 1 host(s) failed",
    )
    progress.step_done(step, failed)
    lines = [line[8:] for line in out.getvalue().splitlines()]  # without the clock ("   0.0s ")
    assert lines == [
        "! fix on db1, db2, db3 and 2 more",
        "    ✓ db1 ok (0.2s)",
        "  ✗ fix failed in 0.0s: 1 of 1 host(s) failed",
        "     db1: ****** refused",
    ]
    progress.stream = Gone()  # the reader is gone (a closed pipe): the run goes on, silently
    progress.note("still running")
    assert progress.stream is None


def test_the_session_wrapper_never_started_closes_twice_without_starting_ansible() -> None:
    sessions = AnsibleSessions("inventory.yaml", ["db1"], forks=5, exposes=lambda text: False, vault=Vault())
    sessions.close()
    sessions.close()
    sessions.abort()
    assert sessions._session is None  # closing never started Ansible to stop it
    assert not sessions._started


def test_the_run_prints_nothing_and_the_orchestrator_imports_no_concrete_executor() -> None:
    code = (
        "import sys, irx.orchestrator\n"
        "assert not any(m.startswith('irx.executors.') and m != 'irx.executors.base' for m in sys.modules), "
        "sorted(m for m in sys.modules if m.startswith('irx.executors'))\n"
        "import irx.run, irx.run.prepare, irx.run.comms, irx.run.leases, irx.run.approvals\n"
        "assert 'click' not in sys.modules and 'irx.commands' not in sys.modules and 'irx.cli' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_operators_own_approval_is_one_of_the_two_a_two_person_gate_needs(tmp_path: Path) -> None:
    import json
    import threading

    from irx.approvers import anyone
    from irx.errors import UsageError
    from irx.inbox import Decision, read_waiting, submit
    from irx.redact import Redactor
    from irx.run.approvals import Inbox, Policy
    from irx.timeline import Journal, read_journal

    path = tmp_path / "tt.yaml"
    path.write_text(PLAYBOOK.replace("approval: required", "approval: {required: true, approvals: 2}"))
    (step,) = load_playbook(path).steps
    policy = Policy(anyone(), "tt", "SEV3")
    alone = approver(True, (), "op@here", None, policy=policy)(step, ["db1"], "fix", GATE)
    assert (alone.approved, alone.method) == (False, "missing")
    assert alone.reason == (
        "step 'fix' needs 2 approvals from anyone: start the run with --wait-approval so that they can approve it "
        "with irx approve or on the approval page"
    )
    journal = Journal.create(tmp_path / "runs", "run1", Redactor())
    run_dir = journal.path.parent
    inbox = Inbox(run_dir, "run1", 30.0, journal, lambda _: None, threading.Event(), poll=0.05)

    def second() -> None:
        for _ in range(200):
            waiting = read_waiting(run_dir)
            if waiting is not None and waiting.approved_by == ["op@here"]:
                try:
                    submit(run_dir, Decision("fix", True, GATE, "op@elsewhere", "cli", "", 1.0))
                except UsageError as exc:
                    refused.append(str(exc))
                # Written by hand, past submit: the run checks it and does not count the same account twice.
                forged = {"step": "fix", "approve": True, "approval_hash": GATE, "by": "op@elsewhere", "via": "cli"}
                (run_dir / "decisions" / "fix").mkdir(parents=True, exist_ok=True)  # submit made it
                (run_dir / "decisions" / "fix" / "1.json").write_text(json.dumps(forged | {"reason": "", "at": 1.0}))
                break
            threading.Event().wait(0.05)

    refused: list[str] = []
    thread = threading.Thread(target=second)
    thread.start()
    try:
        waited = approver(True, (), "op@here", None, inbox, policy)
        # The same account from another host does not count twice: the gate is still open when time is up.
        inbox.timeout = 1.0
        answer = waited(step, ["db1"], "fix", GATE)
    finally:
        thread.join()
    assert refused == ["op already approved fix: it needs 2 approvals from different people (1 given)"]
    assert (answer.approved, answer.method) == (False, "timeout")
    assert answer.reason == "nobody approved or refused fix within 1s (1 of 2 approvals)"
    journal.close()
    given = [(e["by"], e["via"], e["counted"]) for e in read_journal(run_dir).events if e["type"] == "approval_given"]
    assert given == [("op@here", "yes-flag", True), ("op@elsewhere", "cli", False)]

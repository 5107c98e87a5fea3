"""The orchestrator's decisions, with an in-memory host runner written for the purpose (pure logic).

Real Ansible, SSH hosts and services are in tests/integration; here every host result is scripted so each
decision (when, until/retries, on_failure, rollback, dry run, approvals, serial, budgets, interrupts) is
checked exactly.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from irx.events import Event
from irx.executors.base import HostTask
from irx.executors.http import run_http
from irx.loader import load_playbook
from irx.model import Step
from irx.orchestrator import Orchestrator
from irx.outcome import Approval, Outcome
from irx.results import HostResult, StepResult

Script = Callable[[HostTask, str], HostResult]


class MemoryRunner:
    """Runs nothing: answers each host task from a script, and remembers what it was asked."""

    def __init__(self, scripts: dict[str, Script] | None = None) -> None:
        self.scripts = scripts or {}
        self.calls: list[tuple[str, tuple[str, ...], Any]] = []

    def run(self, tasks: Sequence[HostTask]) -> dict[str, HostResult]:
        out: dict[str, HostResult] = {}
        for task in tasks:
            self.calls.append((task.step_id, tuple(task.hosts), task.spec))
            script: Script = self.scripts.get(task.step_id, lambda t, h: HostResult(h, "ok", rc=0, stdout=""))
            for host in task.hosts:
                out[host] = script(task, host)
        return out

    def ran(self) -> list[str]:
        return [step for step, _, _ in self.calls]


class ListJournal:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def record(self, event: Event) -> dict[str, Any]:
        self.events.append({"type": event.type, **event.fields()})
        return self.events[-1]

    def of(self, type: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["type"] == type]


class Quiet:
    def phase(self, name: str) -> None: ...
    def step(self, step: Step, hosts: Sequence[str], note: str = "") -> None: ...
    def host(self, step_id: str, host: str, status: str, duration: float) -> None: ...
    def step_done(self, step: Step, result: StepResult) -> None: ...
    def note(self, text: str) -> None: ...


class Hosts:
    def __init__(self, groups: dict[str, list[str]], params: dict[str, Any] | None = None) -> None:
        self.groups = groups
        self.params = params or {}

    def hosts(self, target: str) -> list[str]:
        return self.groups[target]

    def context(self, host: str | None) -> dict[str, Any]:
        return {"params": self.params, "run": {"id": "r1"}, "host": {"name": host or "localhost"}, "vars": {}}


HEAD = """\
apiVersion: irx/v1
kind: Playbook
metadata: {name: tt, title: Test, severity: SEV3}
targets:
  db: {hosts: db}
  web: {hosts: web, serial: 1, max_fail_percentage: 50}
"""


def make(
    tmp_path: Path,
    body: str,
    runner: MemoryRunner,
    *,
    dry_run: bool = False,
    approver: Callable[[Step, Sequence[str], str, str], Approval] | None = None,
    groups: dict[str, list[str]] | None = None,
    params: dict[str, Any] | None = None,
) -> tuple[Orchestrator, ListJournal]:
    path = tmp_path / "tt.yaml"
    path.write_text(HEAD + body)
    journal = ListJournal()
    orch = Orchestrator(
        playbook=load_playbook(path),
        targeting=Hosts(groups or {"db": ["db1"], "web": ["w1", "w2", "w3", "w4"]}, params),
        journal=journal,
        progress=Quiet(),
        host_runner=runner,
        http_runner=run_http,
        approver=approver or (lambda step, hosts, summary, digest: Approval(True, "yes-flag", "tester@test")),
        dry_run=dry_run,
    )
    return orch, journal


def out(stdout: str, rc: int = 0) -> Script:
    return lambda task, host: HostResult(host, "ok" if rc == 0 else "failed", rc=rc, stdout=stdout)


def test_when_uses_parsed_diagnostics_to_run_or_skip(tmp_path: Path) -> None:
    runner = MemoryRunner({"count": out("7\n")})
    orch, journal = make(
        tmp_path,
        """
diagnose:
  - {id: count, on: db, shell: psql -c "select 1", parse: int}
mitigate:
  - {id: fix_big, on: db, shell: fix big, when: steps.count.data > 5}
  - {id: fix_small, on: db, shell: fix small, when: "{{ steps.count.total <= 5 }}"}
""",
        runner,
    )
    outcome = orch.run()
    assert (outcome.status, outcome.exit_code) == ("verified", 0)
    assert runner.ran() == ["count", "fix_big"]
    decisions = [(e["step"], e["decision"]) for e in journal.of("decision")]
    assert decisions == [("fix_big", "run"), ("fix_small", "skip")]
    assert outcome.results["count"].view()["data"] == 7


def test_until_retries_until_the_condition_holds(tmp_path: Path) -> None:
    answers = iter(["1", "2", "3"])
    runner = MemoryRunner({"poll": lambda t, h: HostResult(h, "ok", rc=0, stdout=next(answers))})
    orch, journal = make(
        tmp_path,
        """
verify:
  - {id: poll, on: db, shell: count, parse: int, until: "result.data >= 3", retries: 5, delay: 0}
""",
        runner,
    )
    outcome = orch.run()
    assert outcome.status == "verified"
    assert outcome.results["poll"].attempts == 3
    assert [e["attempt"] for e in journal.of("decision") if e["decision"] == "retry"] == [1, 2]


def test_until_never_met_fails_after_retries(tmp_path: Path) -> None:
    runner = MemoryRunner({"poll": out("0")})
    orch, _ = make(
        tmp_path,
        """
verify:
  - {id: poll, on: db, shell: count, parse: int, until: steps.poll.data > 0, retries: 2, delay: 0}
""",
        runner,
    )
    outcome = orch.run()
    assert outcome.status == "failed"
    assert runner.ran() == ["poll"] * 3
    assert "still false after 3 attempt(s)" in outcome.results["poll"].reason


def test_failing_diagnose_aborts_with_the_hosts_words(tmp_path: Path) -> None:
    runner = MemoryRunner({"read": lambda t, h: HostResult(h, "failed", rc=2, msg="rc 2: connection refused")})
    orch, _ = make(
        tmp_path,
        """
diagnose:
  - {id: read, on: db, shell: psql}
  - {id: never, on: db, shell: echo}
""",
        runner,
    )
    outcome = orch.run()
    assert outcome.status == "failed"
    assert outcome.reason == "diagnose step 'read' failed: rc 2: connection refused on db1"
    assert runner.ran() == ["read"]


def test_on_failure_continue_goes_on(tmp_path: Path) -> None:
    runner = MemoryRunner({"flaky": out("", rc=1)})
    orch, journal = make(
        tmp_path,
        """
diagnose:
  - {id: flaky, on: db, shell: "false", on_failure: continue}
  - {id: next, on: db, shell: echo}
""",
        runner,
    )
    assert orch.run().status == "verified"
    assert runner.ran() == ["flaky", "next"]
    assert journal.of("decision")[0]["decision"] == "continue"


def test_verify_failure_rolls_back_then_verifies_again(tmp_path: Path) -> None:
    runner = MemoryRunner({"check": out("", rc=1)})
    orch, journal = make(
        tmp_path,
        """
mitigate:
  - {id: change, on: db, shell: change}
verify:
  - {id: check, on: db, shell: check}
rollback:
  - {id: undo, on: db, shell: undo}
""",
        runner,
    )
    outcome = orch.run()
    assert (outcome.status, int(outcome.exit_code)) == ("rolled_back", 1)
    assert runner.ran() == ["change", "check", "undo", "check"]
    phases = [(e["phase"], e["again"]) for e in journal.of("phase_started")]
    assert phases == [("mitigate", False), ("verify", False), ("rollback", False), ("verify", True)]
    assert journal.of("decision")[-1]["decision"] == "rollback"


def test_on_failure_rollback_skips_the_rest_of_mitigate(tmp_path: Path) -> None:
    runner = MemoryRunner({"change": out("", rc=1)})
    orch, _ = make(
        tmp_path,
        """
mitigate:
  - {id: change, on: db, shell: change, on_failure: rollback}
  - {id: more, on: db, shell: more}
verify:
  - {id: check, on: db, shell: check}
rollback:
  - {id: undo, on: db, shell: undo}
""",
        runner,
    )
    outcome = orch.run()
    assert outcome.status == "rolled_back"
    assert runner.ran() == ["change", "undo", "check"]


def test_dry_run_never_executes_a_mutating_step(tmp_path: Path) -> None:
    runner = MemoryRunner({"count": out("9")})
    orch, journal = make(
        tmp_path,
        """
diagnose:
  - {id: count, on: db, shell: count, parse: int}
mitigate:
  - {id: fix, on: db, shell: rm -rf /canary, when: steps.count.data > 5}
  - {id: look, on: db, shell: ls, mutating: false}
verify:
  - {id: check, on: db, shell: check, when: steps.fix.ok}
""",
        runner,
        dry_run=True,
    )
    outcome = orch.run()
    assert outcome.status == "dry_run"
    assert runner.ran() == ["count", "look"]
    assert outcome.results["fix"].status == "would_run"
    assert [e["decision"] for e in journal.of("decision") if e["step"] == "fix"] == ["run", "would_run"]


def test_dry_run_with_failing_verification_rolls_nothing_back(tmp_path: Path) -> None:
    runner = MemoryRunner({"check": out("", rc=1)})
    orch, journal = make(
        tmp_path,
        """
mitigate:
  - {id: change, on: db, shell: change}
verify:
  - {id: check, on: db, shell: check, mutating: false}
rollback:
  - {id: undo, on: db, shell: undo}
""",
        runner,
        dry_run=True,
    )
    outcome = orch.run()
    assert (outcome.status, int(outcome.exit_code)) == ("dry_run", 0)
    assert runner.ran() == ["check"]
    assert "a real run would roll back (undo)" in outcome.reason
    assert journal.of("decision")[-1]["decision"] == "would_run"
    assert [e["phase"] for e in journal.of("phase_started")] == ["mitigate", "verify"]


def test_dry_run_passes_an_approve_gate_without_asking_anyone(tmp_path: Path) -> None:
    asked: list[str] = []

    def approver(step: Step, hosts: Sequence[str], summary: str, gate_hash: str) -> Approval:
        asked.append(step.id)
        return Approval(True, "approve-flag", "ann@laptop")

    runner = MemoryRunner({"count": out("9")})
    orch, journal = make(
        tmp_path,
        """
diagnose:
  - {id: count, on: db, shell: count, parse: int}
mitigate:
  - {id: engaged, approve: {message: "Is the security team engaged?"}}
  - {id: look, on: db, shell: ls, mutating: false, approval: required}
  - {id: fix, on: db, shell: fix, when: steps.count.data > 5}
""",
        runner,
        dry_run=True,
        approver=approver,
    )
    outcome = orch.run()
    # The gate guards only what a dry run does not change; a read-only step that asks really runs, so asks.
    assert asked == ["look"]
    assert outcome.results["engaged"].status == "would_run"
    assert outcome.results["fix"].status == "would_run"
    assert [e["decision"] for e in journal.of("decision") if e["step"] == "engaged"] == ["would_run"]


def test_a_step_that_did_not_run_has_every_field(tmp_path: Path) -> None:
    runner = MemoryRunner()
    orch, _ = make(
        tmp_path,
        """
diagnose:
  - {id: maybe, on: db, shell: x, when: false}
  - {id: after, on: db, shell: "echo {{ steps.maybe.data is none }} {{ steps.maybe.stdout == '' }}"}
""",
        runner,
    )
    orch.run()
    assert runner.calls == [("after", ("db1",), "echo true true")]  # booleans render bare, shell-style


def test_approval_missing_stops_the_run_awaiting_approval(tmp_path: Path) -> None:
    runner = MemoryRunner()
    orch, journal = make(
        tmp_path,
        """
mitigate:
  - {id: fix, on: db, shell: fix, approval: required}
""",
        runner,
        approver=lambda s, h, summary, digest: Approval(False, "missing", "ci@runner"),
    )
    outcome = orch.run()
    assert (outcome.status, int(outcome.exit_code)) == ("awaiting_approval", 4)
    assert runner.ran() == []
    approval = journal.of("approval")[0]
    assert (approval["approved"], approval["method"], approval["summary"]) == (
        False,
        "missing",
        "$ fix  [on db1]",
    )  # the plan's text for the same rendering
    assert "--approve fix" in outcome.reason


def test_approval_refused_skips_the_step_and_goes_on(tmp_path: Path) -> None:
    runner = MemoryRunner()
    orch, journal = make(
        tmp_path,
        """
params:
  level: {type: integer}
mitigate:
  - {id: fix, on: db, shell: "fix {{ params.level }}", approval: required}
  - {id: after, on: db, shell: after}
""",
        runner,
        approver=lambda s, h, summary, digest: Approval(False, "refused", "ann@laptop"),
        params={"level": 3},
    )
    outcome = orch.run()
    assert outcome.status == "verified"
    assert runner.ran() == ["after"]
    assert outcome.results["fix"].status == "skipped"
    assert journal.of("approval")[0]["summary"] == "$ fix 3  [on db1]"


BOUND = """
diagnose:
  - {id: probe, on: web, shell: probe}
mitigate:
  - {id: fix, on: web, shell: "fix {{ steps.probe.hosts[host.name].stdout }}", approval: required}
"""


def test_the_gate_hash_covers_each_hosts_rendering_and_is_recorded(tmp_path: Path) -> None:
    from irx.approval import digest, host_form

    seen: list[str] = []

    def approver(step: Step, hosts: Sequence[str], summary: str, gate_hash: str) -> Approval:
        seen.append(gate_hash)
        return Approval(True, "approve-flag", "ann@laptop")

    runner = MemoryRunner({"probe": lambda t, h: HostResult(h, "ok", rc=0, stdout=f"x-{h}")})
    orch, journal = make(tmp_path, BOUND, runner, approver=approver)
    assert orch.run().status == "verified"
    expected = digest((h, host_form("shell", {"shell": f"fix x-{h}"}, False, None)) for h in ("w1", "w2", "w3", "w4"))
    assert seen == [expected]
    assert journal.of("approval")[0]["approval_hash"] == expected
    assert runner.ran().count("fix") == 4  # serial 1 on web: four batches, each checked against the approval


def test_what_changed_after_the_approval_is_refused_and_never_dispatched(tmp_path: Path) -> None:
    """A diagnostic's output changes between the approval and the dispatch: the executor gets nothing."""
    runner = MemoryRunner({"probe": lambda t, h: HostResult(h, "ok", rc=0, stdout="approved")})
    holder: list[Orchestrator] = []

    def approver(step: Step, hosts: Sequence[str], summary: str, gate_hash: str) -> Approval:
        holder[0].results["probe"].hosts["w2"].stdout = "; rm -rf /"  # what the approver did not see
        return Approval(True, "tty", "ann@laptop")

    orch, journal = make(tmp_path, BOUND, runner, approver=approver)
    holder.append(orch)
    outcome = orch.run()
    assert outcome.status == "awaiting_approval"
    assert "what would run on w2 is not what was approved" in outcome.reason
    assert runner.ran().count("fix") == 1  # w1 (serial 1) matched and ran; w2 and after: nothing
    granted, refused = journal.of("approval")
    assert (granted["approved"], refused["approved"]) == (True, False)
    assert (refused["method"], refused["by"]) == ("binding", "irx")
    assert refused["approval_hash"] == granted["approval_hash"]


def test_serial_batches_stop_when_the_failure_budget_is_spent(tmp_path: Path) -> None:
    runner = MemoryRunner({"restart": lambda t, h: HostResult(h, "failed" if h in {"w1", "w2", "w3"} else "ok", rc=1)})
    orch, _ = make(
        tmp_path,
        """
mitigate:
  - {id: restart, on: web, shell: restart}
""",
        runner,
    )
    outcome = orch.run()
    assert outcome.status == "failed"
    assert [hosts for _, hosts, _ in runner.calls] == [("w1",), ("w2",), ("w3",)]  # serial: 1, budget 50%
    assert outcome.results["restart"].hosts["w4"].status == "skipped"


def test_failures_within_the_budget_pass(tmp_path: Path) -> None:
    runner = MemoryRunner({"read": lambda t, h: HostResult(h, "unreachable" if h == "w1" else "ok", msg="down")})
    orch, _ = make(
        tmp_path,
        """
diagnose:
  - {id: read, on: web, shell: uptime}
""",
        runner,
    )
    outcome = orch.run()
    assert outcome.status == "verified"
    assert [hosts for _, hosts, _ in runner.calls] == [("w1", "w2", "w3", "w4")]  # serial is for mutating steps


def test_hosts_dead_in_preflight_are_not_sent_work(tmp_path: Path) -> None:
    runner = MemoryRunner()
    orch, journal = make(
        tmp_path,
        """
diagnose:
  - {id: read, on: web, shell: uptime}
""",
        runner,
    )
    orch.unreachable = {"w2": "ssh: connection refused"}
    assert orch.run().status == "verified"
    assert runner.calls[0][1] == ("w1", "w3", "w4")
    assert {e["host"]: e["status"] for e in journal.of("host_result")}["w2"] == "unreachable"


def test_rendering_groups_hosts_with_the_same_command(tmp_path: Path) -> None:
    runner = MemoryRunner()
    orch, _ = make(
        tmp_path,
        """
diagnose:
  - {id: say, on: web, shell: "echo {{ host.name if host.name == 'w1' else 'other' }}"}
""",
        runner,
    )
    orch.run()
    assert sorted(runner.calls) == [("say", ("w1",), "echo w1"), ("say", ("w2", "w3", "w4"), "echo other")]


def test_shell_values_are_quoted_when_rendered(tmp_path: Path) -> None:
    runner = MemoryRunner()
    orch, _ = make(
        tmp_path,
        """
params:
  evil: {type: string}
diagnose:
  - {id: say, on: db, shell: "echo {{ params.evil }}"}
""",
        runner,
        params={"evil": "x; rm -rf / $(id)"},
    )
    orch.run()
    assert runner.calls[0][2] == "echo 'x; rm -rf / $(id)'"


def test_render_error_fails_the_step_naming_step_and_field(tmp_path: Path) -> None:
    runner = MemoryRunner()
    orch, journal = make(
        tmp_path,
        """
params:
  missing: {type: string}
diagnose:
  - {id: say, on: db, shell: "echo {{ params.missing }}"}
""",
        runner,
    )
    outcome = orch.run()
    assert outcome.status == "failed"
    assert "step 'say', field shell: " in outcome.results["say"].reason
    assert journal.of("error")[0]["where"] == "render"
    assert runner.calls == []


def test_interrupt_stops_before_the_next_step(tmp_path: Path) -> None:
    stop = threading.Event()

    def first(task: HostTask, host: str) -> HostResult:
        stop.set()  # the signal arrives while the first step runs
        return HostResult(host, "ok", rc=0)

    runner = MemoryRunner({"one": first})
    orch, journal = make(
        tmp_path,
        """
diagnose:
  - {id: one, on: db, shell: one}
  - {id: two, on: db, shell: two}
""",
        runner,
    )
    orch.stop_requested = stop
    outcome: Outcome = orch.run()
    assert (outcome.status, int(outcome.exit_code)) == ("interrupted", 130)
    assert runner.ran() == ["one"]
    assert journal.of("phase_finished")[0]["status"] == "interrupted"


def test_http_and_assert_steps_run_on_the_control_node(tmp_path: Path) -> None:
    runner = MemoryRunner({"count": out("3")})
    orch, _ = make(
        tmp_path,
        """
diagnose:
  - {id: count, on: db, shell: count, parse: int}
verify:
  - id: check
    assert: {that: ["steps.count.data == 3", "steps.count.total > 2"], message: "count is {{ steps.count.data }}"}
  - id: wrong
    assert: {that: "steps.count.data == 4", message: "count is {{ steps.count.data }}"}
""",
        runner,
    )
    outcome = orch.run()
    assert outcome.status == "failed"
    assert outcome.results["check"].status == "ok"
    assert outcome.reason == "verify step 'wrong' failed: count is 3; the playbook has no rollback steps"


@pytest.mark.parametrize(
    ("parse", "stdout", "expected"),
    [
        ("json", '{"a": [1, 2]}', {"a": [1, 2]}),
        ("lines", "a\n\n b \n", ["a", "b"]),
        ("int", " 42\n", 42),
        ("float", "0.5", 0.5),
        ("csv", "idle,3\nactive,1\n", [["idle", "3"], ["active", "1"]]),
        ("csv", 'a,b\rc,d\n"e\rf",g\n', [["a", "b"], ["c", "d"], ["e\rf", "g"]]),  # a \r is data, no crash
        ("{format: csv, columns: [state, n]}", "idle,3\n", [{"state": "idle", "n": "3"}]),
        ("{format: regex, pattern: 'nginx/(?P<v>[0-9.]+)'}", "nginx version: nginx/1.22.1", [{"v": "1.22.1"}]),
    ],
)
def test_parse_formats(tmp_path: Path, parse: str, stdout: str, expected: Any) -> None:
    runner = MemoryRunner({"read": out(stdout)})
    orch, _ = make(tmp_path, f"diagnose:\n  - {{id: read, on: db, shell: read, parse: {parse}}}\n", runner)
    outcome = orch.run()
    assert outcome.results["read"].view()["data"] == expected


@pytest.mark.parametrize(
    ("parse", "stdout", "message"),
    [
        ("int", "not a number", "parse int: output is not an integer: 'not a number'"),
        ("int", "", "parse int: output is empty; expected an integer"),
        ("int", " \n\n", "parse int: output is empty; expected an integer"),
        ("float", "", "parse float: output is empty; expected a number"),
        ("float", "nan", "parse float: output is not a number: 'nan'"),
        ("float", "1e999", "parse float: output is not a number: '1e999'"),
        ("json", "", "parse json: output is empty; expected JSON"),
    ],
)
def test_unparseable_output_fails_the_host(tmp_path: Path, parse: str, stdout: str, message: str) -> None:
    """Empty or non-numeric output is a failure quoting the output, never 0 (a failed `df | awk`)."""
    runner = MemoryRunner({"read": out(stdout)})
    orch, _ = make(tmp_path, f"diagnose:\n  - {{id: read, on: db, shell: read, parse: {parse}}}\n", runner)
    outcome = orch.run()
    assert outcome.status == "failed"
    assert outcome.results["read"].hosts["db1"].msg == message


def test_aggregates_over_hosts(tmp_path: Path) -> None:
    values = {"w1": "3", "w2": "5", "w3": "0", "w4": "2"}
    runner = MemoryRunner({"n": lambda t, h: HostResult(h, "ok", rc=0, stdout=values[h])})
    orch, _ = make(tmp_path, "diagnose:\n  - {id: n, on: web, shell: n, parse: int}\n", runner)
    view = orch.run().results["n"].view()
    assert (view["total"], view["max"], view["min"], view["count"], view["any"], view["all"]) == (
        10,
        5,
        0,
        4,
        True,
        False,
    )
    assert view["hosts"]["w2"]["data"] == 5


def test_dry_run_tries_verify_once_but_diagnose_keeps_its_retries(tmp_path: Path) -> None:
    runner = MemoryRunner({"probe": out("1"), "check": out("", rc=1)})
    orch, journal = make(
        tmp_path,
        """
diagnose:
  - {id: probe, on: db, shell: probe, parse: int, until: result.data > 1, retries: 2, delay: 0s, on_failure: continue}
verify:
  - {id: check, on: db, shell: check, mutating: false, retries: 5, delay: 0s}
""",
        runner,
        dry_run=True,
    )
    outcome = orch.run()
    assert outcome.status == "dry_run"
    assert runner.ran() == ["probe", "probe", "probe", "check"]
    assert outcome.results["check"].attempts == 1
    assert "dry run: no retries after a mitigation" in (outcome.results["check"].reason or "")
    assert [e["step"] for e in journal.of("decision") if e["decision"] == "retry"] == ["probe", "probe"]


LEASED = """
diagnose:
  - {id: count, on: db, shell: count, parse: int}
mitigate:
  - {id: fix_big, on: db, shell: fix big, when: steps.count.data > 5}
  - {id: fix_small, on: db, shell: fix small, when: steps.count.data <= 5}
  - {id: settle, on: web, shell: settle}
"""


def test_the_leases_are_taken_before_the_first_change_that_runs_not_before_the_diagnosis(tmp_path: Path) -> None:
    runner = MemoryRunner({"count": out("3\n")})
    orch, _ = make(tmp_path, LEASED, runner)
    taken: list[list[str]] = []
    orch.before_change = lambda: taken.append(runner.ran())
    assert orch.run().status == "verified"
    # count ran first; fix_big's condition was false (no lease for a step that does not run): fix_small's
    # turn took them, and so did settle's (the hook is HostLeases.ensure: only its first call takes them).
    assert taken == [["count"], ["count", "fix_small"]]


def test_a_refused_lease_ends_the_run_before_anything_changed(tmp_path: Path) -> None:
    from irx.lock import LockHeld, LockHolder

    runner = MemoryRunner({"count": out("3\n")})
    orch, journal = make(tmp_path, LEASED, runner)
    holder = LockHolder(run_id="r0", operator="bob@b", pid=7, started="now", playbook="tt", hosts=("db1",))

    def refuse() -> None:
        raise LockHeld(holder, host="db1")

    orch.before_change = refuse
    with pytest.raises(LockHeld):
        orch.run()
    assert runner.ran() == ["count"]  # the diagnosis ran; nothing that changes anything was sent
    finished = {e["step"]: e for e in journal.of("step_finished")}
    assert finished["fix_small"]["status"] == "not_run"
    assert "already being changed" in finished["fix_small"]["reason"]
    assert [(e["phase"], e["status"]) for e in journal.of("phase_finished")] == [
        ("diagnose", "ok"),
        ("mitigate", "failed"),
    ]

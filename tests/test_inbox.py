"""The approval inbox: decisions made once, bound to a hash, and files that are not what they claim."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest

from irx.errors import UsageError
from irx.inbox import (
    DECISIONS_DIR,
    Decision,
    Waiting,
    binds,
    check_step_id,
    clear_waiting,
    identity,
    read_decision,
    read_decisions,
    read_waiting,
    submit,
    write_waiting,
)

GATE = "sha256:" + "3f" * 32


def decision(approve: bool = True, approval_hash: str = GATE, by: str = "alice@ops") -> Decision:
    return Decision("restart_app", approve, approval_hash, by, "cli", "" if approve else "not now", 1.0)


def test_a_decision_is_made_once_and_the_first_one_stands(tmp_path: Path) -> None:
    submit(tmp_path, decision())
    with pytest.raises(UsageError, match="already approved by alice@ops"):
        submit(tmp_path, decision(approve=False, by="bob@ops"))
    assert read_decision(tmp_path, "restart_app") == decision()
    assert [p.name for p in (tmp_path / DECISIONS_DIR / "restart_app").iterdir()] == ["1.json"]  # no temp file left


def test_of_many_simultaneous_deciders_exactly_one_wins(tmp_path: Path) -> None:
    outcomes: list[str] = []
    start = threading.Barrier(12)

    def decide(index: int) -> None:
        start.wait()
        try:
            submit(tmp_path, decision(by=f"user{index}@ops"))
            outcomes.append("won")
        except UsageError:
            outcomes.append("refused")

    threads = [threading.Thread(target=decide, args=(i,)) for i in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["refused"] * 11 + ["won"]
    stored = read_decision(tmp_path, "restart_app")
    assert stored is not None
    assert stored.by.startswith("user")


def test_a_decision_binds_only_the_rendering_it_names() -> None:
    assert binds(decision(), GATE)
    assert binds(decision(approval_hash=GATE[:19]), GATE)  # the 12 hex digits people see
    assert not binds(decision(approval_hash="sha256:" + "3f" * 5), GATE)  # too short to name one rendering
    assert not binds(decision(approval_hash="sha256:" + "ab" * 32), GATE)
    assert decision().method == "cli"
    assert decision(approve=False).method == "refused"


@pytest.mark.parametrize("step", ["../../etc/passwd", "Restart", "", ".hidden", "a/b", "x" * 65, "fix\n"])
def test_a_step_id_that_could_leave_the_inbox_is_refused(step: str, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="is not a step id"):
        check_step_id(step)
    with pytest.raises(UsageError):
        submit(tmp_path, Decision(step, True, GATE, "mallory@x", "cli"))
    assert not (tmp_path / DECISIONS_DIR).exists() or list((tmp_path / DECISIONS_DIR).iterdir()) == []


@pytest.mark.parametrize("content", ["", "[]", "{", '{"step": "fix"}', '"text"', "\x00\xff"])
def test_files_that_are_not_records_count_as_none(content: str, tmp_path: Path) -> None:
    (tmp_path / "waiting.json").write_text(content, errors="surrogateescape")
    (tmp_path / DECISIONS_DIR / "fix").mkdir(parents=True)
    (tmp_path / DECISIONS_DIR / "fix" / "1.json").write_text(content, errors="surrogateescape")
    assert read_waiting(tmp_path) is None
    assert read_decision(tmp_path, "fix") is None


def test_what_a_gate_waits_for_is_written_whole_and_cleared(tmp_path: Path) -> None:
    waiting = Waiting("run1", "fix", "mitigate", "Fix it", ["web1"], "$ echo ******", GATE, 1.0, None, os.getpid())
    write_waiting(tmp_path, waiting)
    assert read_waiting(tmp_path) == waiting
    assert json.loads((tmp_path / "waiting.json").read_text())["approval_hash"] == GATE
    clear_waiting(tmp_path)
    clear_waiting(tmp_path)  # already gone: nothing to do
    assert read_waiting(tmp_path) is None


def test_who_decides_comes_from_the_uid_not_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import pwd

    monkeypatch.setenv("USER", "ceo")
    monkeypatch.setenv("LOGNAME", "ceo")
    assert identity().split("@")[0] == pwd.getpwuid(os.getuid()).pw_name


def two_person_gate(tmp_path: Path, requester_may_approve: bool = True) -> Waiting:
    gate = Waiting(
        "run1", "restart_app", "mitigate", "Restart", ["web1"], "$ systemctl restart app", GATE, 1.0, None,
        os.getpid(), ["group:oncall"], ["alice", "bob", "carol"], 2, "carol@ops", requester_may_approve,
    )  # fmt: skip
    write_waiting(tmp_path, gate)
    return gate


def test_a_two_person_gate_takes_two_different_approvers_and_no_third(tmp_path: Path) -> None:
    assert two_person_gate(tmp_path).progress() == "0 of 2 approvals"
    submit(tmp_path, decision(by="alice@ops"))
    with pytest.raises(UsageError) as twice:
        submit(tmp_path, decision(by="alice@elsewhere"))  # the same account from another host
    assert (
        str(twice.value) == "alice already approved restart_app: it needs 2 approvals from different people (1 given)"
    )
    submit(tmp_path, Decision("restart_app", True, GATE, "bob", "web", "", 2.0))
    with pytest.raises(UsageError) as third:
        submit(tmp_path, decision(by="carol@ops"))
    assert str(third.value) == "step 'restart_app' of this run was already approved by alice@ops, bob"
    assert [(d.by, d.via) for d in read_decisions(tmp_path, "restart_app")] == [("alice@ops", "cli"), ("bob", "web")]


def test_who_the_rule_does_not_allow_is_refused_with_the_reason(tmp_path: Path) -> None:
    two_person_gate(tmp_path, requester_may_approve=False)
    with pytest.raises(UsageError) as stranger:
        submit(tmp_path, decision(by="mallory@ops"))
    assert str(stranger.value) == "mallory may not approve or refuse restart_app: its approvers are group:oncall"
    with pytest.raises(UsageError) as requester:
        submit(tmp_path, decision(by="carol@ops"))
    assert str(requester.value) == (
        "carol started this run, so their approval of restart_app does not count: someone else must"
    )
    submit(tmp_path, decision(approve=False, by="carol@ops"))  # the requester may still stop their own step
    with pytest.raises(UsageError, match="already refused by carol@ops"):
        submit(tmp_path, decision(by="alice@ops"))


def test_of_many_simultaneous_approvers_of_a_two_person_gate_exactly_two_count(tmp_path: Path) -> None:
    gate = two_person_gate(tmp_path)
    write_waiting(tmp_path, Waiting(**{**gate.__dict__, "eligible": None}))  # anyone may approve
    outcomes: list[str] = []
    start = threading.Barrier(8)

    def decide(index: int) -> None:
        start.wait()
        try:
            submit(tmp_path, decision(by=f"user{index}@ops"))
            outcomes.append("won")
        except UsageError:
            outcomes.append("refused")

    threads = [threading.Thread(target=decide, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["refused"] * 6 + ["won"] * 2
    assert len({d.by for d in read_decisions(tmp_path, "restart_app")}) == 2


def test_a_reason_is_one_line_without_control_characters_written_or_forged(tmp_path: Path) -> None:
    hostile = "no\nway\x1b[2J\x1b]0;pwned\x07\r" + "x" * 5000
    submit(tmp_path, Decision("restart_app", False, GATE, "bob@ops", "cli", hostile, 1.0))
    written = json.loads((tmp_path / DECISIONS_DIR / "restart_app" / "1.json").read_text())["reason"]
    assert written.startswith("no way [2J ]0;pwned xxx")
    assert len(written) == 2000
    assert written.endswith("x...")
    folder = tmp_path / DECISIONS_DIR / "restart_app"
    (folder / "1.json").write_text(json.dumps(dict(json.loads((folder / "1.json").read_text()), reason=hostile)))
    [read] = read_decisions(tmp_path, "restart_app")  # a file written by hand is shown the same way
    assert read.reason == written


def test_a_forged_decision_with_fields_of_the_wrong_type_is_not_a_decision(tmp_path: Path) -> None:
    folder = tmp_path / DECISIONS_DIR / "restart_app"
    folder.mkdir(parents=True)
    good: dict[str, object] = {
        "step": "restart_app",
        "approve": True,
        "approval_hash": GATE,
        "by": "a@b",
        "via": "cli",
        "reason": "",
    }
    odd: list[dict[str, object]] = [
        {"approve": "no"},
        {"approve": 1},
        {"approval_hash": 5},
        {"approval_hash": None},
        {"reason": ["x"]},
    ]
    for number, change in enumerate(odd, start=1):
        (folder / f"{number}.json").write_text(json.dumps(good | change))
    (folder / "9.json").write_text(json.dumps(good))
    assert [d.approval_hash for d in read_decisions(tmp_path, "restart_app")] == [GATE]  # binds() would crash


@pytest.mark.parametrize(
    "change",
    [{"summary": 5}, {"hosts": "web1"}, {"hosts": [1]}, {"approvals": "2"}, {"approvals": True}, {"approvals": 0},
     {"since": "now"}, {"until": [1]}, {"eligible": "alice"}, {"requester_may_approve": "no"}, {"approval_hash": None},
     {"approved_by": [None]}, {"pid": 1.5}],
)  # fmt: skip
def test_a_waiting_record_with_a_field_of_the_wrong_type_is_no_gate(
    tmp_path: Path, change: dict[str, object], capsys: pytest.CaptureFixture[str]
) -> None:
    from irx.cli import main
    from irx.redact import Redactor
    from irx.timeline import Journal

    good = Waiting("run1", "fix", "mitigate", "Fix it", ["web1"], "$ echo ******", GATE, 1.0, None, os.getpid())
    with Journal.create(tmp_path, "run1", Redactor()) as journal:  # running: its journal is locked
        journal.event("run_started", playbook="p", mode="run", operator="alice@cn", plan_hash="sha256:aa")
        write_waiting(journal.run_dir, good)
        assert read_waiting(journal.run_dir) == good
        (journal.run_dir / "waiting.json").write_text(json.dumps(good.__dict__ | change))
        assert read_waiting(journal.run_dir) is None
        assert main(["runs", "--runs-dir", str(tmp_path)]) == 0  # was a TypeError, an internal error
        assert main(["deny", "run1", "fix", "--reason", "x", "--runs-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err == "irx: error: run run1 is running and not waiting for an approval (irx runs shows what waits)\n"


@pytest.mark.parametrize("reason", ["", "  ", "\x1b\r\n\x07"])
def test_irx_deny_needs_a_reason_that_is_more_than_control_characters(
    tmp_path: Path, reason: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from irx.cli import main

    assert main(["deny", "run1", "fix", "--reason", reason, "--runs-dir", str(tmp_path)]) == 2
    assert "say why the step must not run" in capsys.readouterr().err

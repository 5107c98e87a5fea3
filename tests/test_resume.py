"""Where ``irx resume`` continues a run, decided from its journal alone (irx.resume), and the journal reopened
for the continuation (``Journal.reopen``). The journals are written by the product's own ``Journal``."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from irx.errors import UsageError
from irx.journal_read import read_journal
from irx.loader import load_playbook
from irx.model import Playbook
from irx.redact import Redactor
from irx.resume import plan_changes, plan_resumption
from irx.timeline import Journal, JournalError

PLAYBOOK = Path(__file__).parent / "integration" / "playbooks" / "run-resume.yaml"
RUN_ID = "20261203T101500Z-abc123"


@pytest.fixture
def playbook() -> Playbook:
    return load_playbook(PLAYBOOK)


def _started(journal: Journal, mode: str = "run") -> None:
    journal.event(
        "run_started", playbook="run-resume", playbook_path=str(PLAYBOOK), title="t", severity="SEV3",
        inventory="local", mode=mode, operator="alice@cn", plan_hash="sha256:aa", params={}, hosts=["a", "b"],
        irx_version="0", forced_lock=False,
    )  # fmt: skip


def _step(journal: Journal, phase: str, step: str, hosts: dict[str, str], status: str | None = None) -> None:
    journal.event("step_started", phase=phase, step=step, hosts=list(hosts))
    for host, result in hosts.items():
        journal.event("host_result", phase=phase, step=step, host=host, status=result, stdout="7\n", data=7, rc=0)
    if status is not None:
        journal.event("step_finished", phase=phase, step=step, status=status, duration=0.1, attempts=1)


def _finished(journal: Journal, status: str) -> None:
    journal.event("run_finished", status=status, exit_code=1, duration=1.0)


def _journal(tmp_path: Path, write: Any, mode: str = "run") -> Path:
    with Journal.create(tmp_path, RUN_ID, Redactor()) as journal:
        _started(journal, mode)
        write(journal)
    return journal.path


def test_a_step_that_failed_on_one_host_runs_again_there_and_what_came_before_is_kept(
    tmp_path: Path, playbook: Playbook
) -> None:
    def write(journal: Journal) -> None:
        _step(journal, "diagnose", "probe", {"a": "ok", "b": "ok"}, "ok")
        _step(journal, "mitigate", "fix", {"a": "ok", "b": "failed"}, "failed")
        _finished(journal, "failed")

    resumption = plan_resumption(read_journal(_journal(tmp_path, write)), playbook)
    assert (resumption.run_id, resumption.after, resumption.attempt) == (RUN_ID, "failed", 2)
    assert list(resumption.done) == ["probe"]
    probe = resumption.done["probe"]
    assert (probe.status, probe.hosts["a"].data, probe.aggregates()["total"]) == ("ok", 7, 14)  # when: sees it
    assert resumption.from_step == "fix"
    assert list(resumption.kept) == ["a"]


def test_a_gate_nobody_answered_is_where_it_continues(tmp_path: Path, playbook: Playbook) -> None:
    def write(journal: Journal) -> None:
        _step(journal, "diagnose", "probe", {"a": "ok"}, "ok")
        _step(journal, "mitigate", "fix", {})  # started, then stopped at its gate: no result, no step_finished
        journal.event("approval", phase="mitigate", step="fix", approved=False, method="missing", plan_hash="x")
        _finished(journal, "awaiting_approval")

    resumption = plan_resumption(read_journal(_journal(tmp_path, write)), playbook)
    assert (resumption.after, resumption.from_step, dict(resumption.kept)) == ("awaiting_approval", "fix", {})


def test_a_failure_the_run_went_on_past_is_done_not_repeated(tmp_path: Path, playbook: Playbook) -> None:
    def write(journal: Journal) -> None:
        _step(journal, "diagnose", "probe", {"a": "failed"}, "failed")
        journal.event("decision", phase="diagnose", step="probe", decision="continue", reason="on_failure")
        _step(journal, "mitigate", "fix", {"a": "ok"}, "ok")
        journal.event("run_finished", status="interrupted", exit_code=130, duration=1.0)

    resumption = plan_resumption(read_journal(_journal(tmp_path, write)), playbook)
    assert list(resumption.done) == ["probe", "fix"]
    assert resumption.from_step == "after"


def test_a_second_continuation_counts_its_attempt_and_uses_the_latest_results(
    tmp_path: Path, playbook: Playbook
) -> None:
    def write(journal: Journal) -> None:
        _step(journal, "diagnose", "probe", {"a": "ok"}, "ok")
        _step(journal, "mitigate", "fix", {"a": "failed"}, "failed")
        _finished(journal, "failed")
        journal.event("run_resumed", operator="bob@cn", after="failed", plan_hash="sha256:aa", attempt=2)
        _step(journal, "mitigate", "fix", {"a": "ok"}, "ok")
        _step(journal, "mitigate", "after", {"a": "failed"}, "failed")
        _finished(journal, "failed")

    resumption = plan_resumption(read_journal(_journal(tmp_path, write)), playbook)
    assert resumption.attempt == 3
    assert list(resumption.done) == ["probe", "fix"]
    assert resumption.from_step == "after"


@pytest.mark.parametrize(
    ("status", "mode", "rollback", "message"),
    [
        ("verified", "run", False, f"run {RUN_ID} has nothing to resume: it verified"),
        ("rolled_back", "run", False, f"run {RUN_ID} has nothing to resume: it rolled back"),
        ("failed", "dry-run", False, f"run {RUN_ID} was a dry run: it changed nothing; start a real run instead"),
        ("failed", "run", True, f"run {RUN_ID} began its rollback before it stopped"),
    ],
)
def test_what_has_nothing_to_continue_is_refused_saying_why(
    tmp_path: Path, playbook: Playbook, status: str, mode: str, rollback: bool, message: str
) -> None:
    def write(journal: Journal) -> None:
        _step(journal, "diagnose", "probe", {"a": "ok"}, "ok")
        if rollback:
            journal.event("phase_started", phase="rollback")
        _finished(journal, status)

    with pytest.raises(UsageError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        plan_resumption(read_journal(_journal(tmp_path, write, mode)), playbook)


def test_a_run_still_being_written_is_refused(tmp_path: Path, playbook: Playbook) -> None:
    with Journal.create(tmp_path, RUN_ID, Redactor()) as journal:
        _started(journal)
        with pytest.raises(UsageError, match="is still running: stop it first"):
            plan_resumption(read_journal(journal.path), playbook)
        with pytest.raises(JournalError, match="the run is still running"):
            Journal.reopen(journal.run_dir, Redactor())


def test_a_continuation_under_way_is_running_and_once_killed_interrupted(tmp_path: Path, playbook: Playbook) -> None:
    def write(journal: Journal) -> None:
        _step(journal, "diagnose", "probe", {"a": "ok"}, "ok")
        _step(journal, "mitigate", "fix", {"a": "failed"}, "failed")
        _finished(journal, "failed")

    path = _journal(tmp_path, write)
    with Journal.reopen(path.parent, Redactor()) as resumed:  # irx resume, at work
        resumed.event("run_resumed", operator="bob@cn", after="failed", plan_hash="sha256:aa", attempt=2)
        assert read_journal(path).status == "running"  # not the earlier attempt's "failed"
        with pytest.raises(UsageError, match="is still running: stop it first"):  # before any host lock is taken
            plan_resumption(read_journal(path), playbook)
    assert read_journal(path).status == "interrupted"  # killed before its run_finished
    assert plan_resumption(read_journal(path), playbook).attempt == 3


def test_from_a_chosen_step_needs_every_step_before_it_completed(tmp_path: Path, playbook: Playbook) -> None:
    def write(journal: Journal) -> None:
        _step(journal, "diagnose", "probe", {"a": "ok", "b": "ok"}, "ok")
        _step(journal, "mitigate", "fix", {"a": "ok", "b": "failed"}, "failed")
        _finished(journal, "failed")

    read = read_journal(_journal(tmp_path, write))
    chosen = plan_resumption(read, playbook, "probe")
    assert (list(chosen.done), chosen.from_step, dict(chosen.kept)) == ([], "probe", {})  # all hosts again
    with pytest.raises(UsageError, match=r"--from checked: step\(s\) before it never completed .* \(after\)"):
        plan_resumption(read, playbook, "checked")
    with pytest.raises(UsageError, match=r"--from nope: .* has no such step"):
        plan_resumption(read, playbook, "nope")
    for odd, shown in [("a\nb", r"'a\\nb'"), ("x" * 5000, "'" + "x" * 40 + r"\.\.\.'"), ("../fix", r"'\.\./fix'")]:
        with pytest.raises(UsageError) as refused:
            plan_resumption(read, playbook, odd)
        assert "\n" not in str(refused.value)
        assert len(str(refused.value)) < 200
        assert re.fullmatch(
            rf"--from {shown}: not a step id \(.*; its steps: probe, fix, after, checked\)", str(refused.value)
        )


def test_the_reopened_journal_numbers_on_and_ends_a_torn_line_first(tmp_path: Path, playbook: Playbook) -> None:
    def write(journal: Journal) -> None:
        _step(journal, "diagnose", "probe", {"a": "ok"}, "ok")

    path = _journal(tmp_path, write)
    with path.open("ab") as torn:
        torn.write(b'{"v":1,"seq":5,"ts":"2026-')  # killed mid-write
    with Journal.reopen(path.parent, Redactor(["s3cret"])) as journal:
        event = journal.event("error", message="a s3cret value")
    assert event["seq"] == 5  # after the last intact event (4)
    read = read_journal(path)
    [problem] = read.problems  # the torn line stays a problem of its own; the new event is a line of its own
    assert problem.startswith("line 5: not valid JSON")
    assert read.events[-1]["message"] == "a ****** value"


def test_a_journal_another_resume_continued_after_it_was_read_is_not_reopened(
    tmp_path: Path, playbook: Playbook
) -> None:
    from irx.run.resume import continuation

    def write(journal: Journal) -> None:
        _step(journal, "diagnose", "probe", {"a": "ok"}, "ok")
        _step(journal, "mitigate", "fix", {"a": "failed"}, "failed")
        _finished(journal, "failed")

    path = _journal(tmp_path, write)
    mine, _ = continuation(path.parent, None, None)  # planned: fix runs again on a
    with Journal.reopen(path.parent, Redactor(), read_seq=mine.seq) as other:  # a second irx resume, quicker
        other.event("run_resumed", operator="bob@cn", after="failed", plan_hash="sha256:aa", attempt=2)
        _step(other, "mitigate", "fix", {"a": "ok"}, "ok")
    size = path.stat().st_size
    with pytest.raises(JournalError, match="the run changed while irx resume was starting"):
        Journal.reopen(path.parent, Redactor(), read_seq=mine.seq)
    assert path.stat().st_size == size  # nothing written by the stale continuation
    with Journal.reopen(path.parent, Redactor()):  # the refusal let the lock go
        pass


def test_decisions_set_aside_never_overwrite_an_earlier_attempts(tmp_path: Path) -> None:
    from irx.run.resume import clear_gate_files

    for folder in ("decisions/fix", "decisions.attempt-1/fix"):
        (tmp_path / folder).mkdir(parents=True)
        (tmp_path / folder / "1.json").write_text(f'{{"from": "{folder}"}}')
    (tmp_path / "waiting.json").write_text("{}")
    clear_gate_files(tmp_path, 2)  # attempt 2 again: an earlier attempt 2 stopped before its run_resumed
    assert sorted(p.name for p in tmp_path.iterdir()) == ["decisions.attempt-1", "decisions.attempt-1.2"]
    assert (tmp_path / "decisions.attempt-1.2/fix/1.json").read_text() == '{"from": "decisions/fix"}'
    assert (tmp_path / "decisions.attempt-1/fix/1.json").read_text() == '{"from": "decisions.attempt-1/fix"}'
    clear_gate_files(tmp_path, 3)  # nothing to set aside: fine
    assert sorted(p.name for p in tmp_path.iterdir()) == ["decisions.attempt-1", "decisions.attempt-1.2"]


def test_a_run_directory_that_is_a_link_or_writable_by_others_is_not_resumed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from irx.cli import main

    def write(journal: Journal) -> None:
        _step(journal, "diagnose", "probe", {"a": "ok"}, "ok")
        _finished(journal, "failed")

    runs = tmp_path / "runs"
    run_dir = _journal(runs, write).parent
    elsewhere = tmp_path / "elsewhere"
    run_dir.rename(elsewhere)
    run_dir.symlink_to(elsewhere)
    cases = [(run_dir, f"{run_dir} is a symbolic link: irx resume continues only a run directory irx wrote")]
    run_dir.unlink()
    elsewhere.rename(run_dir)
    for path, mode in ((run_dir, 0o770), (run_dir / "timeline.jsonl", 0o622)):
        path.chmod(mode)
        cases.append((path, f"{path} is writable by others (mode {mode:04o}): what it says would run is not only"))
        assert main(["resume", RUN_ID, "--runs-dir", str(runs), "--yes"]) == 2
        assert capsys.readouterr().err.startswith(f"irx: error: {cases[-1][1]}")
        path.chmod(0o700 if path == run_dir else 0o600)
    run_dir.rename(elsewhere)
    run_dir.symlink_to(elsewhere)
    assert main(["resume", RUN_ID, "--runs-dir", str(runs), "--yes"]) == 2
    err = capsys.readouterr().err
    assert err == f"irx: error: {cases[0][1]}\n"
    assert read_journal(elsewhere).events[-1]["type"] == "run_finished"  # nothing appended


def test_a_copied_run_directory_is_not_continued_as_another_run(tmp_path: Path, playbook: Playbook) -> None:
    def write(journal: Journal) -> None:
        _step(journal, "diagnose", "probe", {"a": "ok"}, "ok")
        _finished(journal, "failed")

    path = _journal(tmp_path, write)
    copy = tmp_path / "20261203T101500Z-copy01"
    copy.mkdir()
    (copy / "timeline.jsonl").write_bytes(path.read_bytes())
    with pytest.raises(UsageError) as refused:
        plan_resumption(read_journal(copy), playbook)
    assert str(refused.value) == (
        f"{copy}/timeline.jsonl is the journal of run '{RUN_ID}', not of 20261203T101500Z-copy01 (a copied or "
        "renamed run directory): continue the run where it is, or start a new run"
    )
    assert plan_resumption(read_journal(path), playbook).from_step == "fix"  # the original continues


def test_a_secret_the_run_started_without_is_refused_not_ignored(tmp_path: Path) -> None:
    from irx.params import Supplied
    from irx.run.resume import continuation, supplied_again

    def write(journal: Journal) -> None:
        journal.event(
            "run_started",
            playbook="run-resume",
            playbook_path=str(PLAYBOOK),
            mode="run",
            plan_hash="sha256:aa",
            supplied={"state_dir": {"value": "/s", "source": "-e", "text": True}},
        )
        _step(journal, "diagnose", "probe", {"a": "ok"}, "ok")
        _finished(journal, "failed")

    with Journal.create(tmp_path, RUN_ID, Redactor()) as journal:
        write(journal)
    cont, playbook = continuation(journal.run_dir, None, None)
    assert supplied_again(cont, playbook, {}, {})["state_dir"].value == "/s"
    given = {"token": Supplied("hunter2", "-e @token.json", text=False, strict=False)}
    with pytest.raises(UsageError) as refused:
        supplied_again(cont, playbook, given, {})
    assert str(refused.value) == (
        f"-e token: run {RUN_ID} started without it given (its default or the inventory's value was used); "
        "irx resume continues with the values it started with (start a new run to give it)"
    )


def test_what_renders_differently_is_named_per_step() -> None:
    before: list[dict[str, Any]] = [
        {"id": "a", "summary": "$ echo x", "hosts": ["h1"]},
        {"id": "b", "summary": "$ true"},
    ]
    after: list[dict[str, Any]] = [
        {"id": "a", "summary": "$ echo y", "hosts": ["h1", "h2"]},
        {"id": "c", "summary": "$ true"},
    ]
    assert plan_changes(before, after) == [
        "step c is new",
        "step b is gone",
        "step a: hosts was [h1], now [h1, h2]",
        "step a: summary was '$ echo x', now '$ echo y'",
    ]

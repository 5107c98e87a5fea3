"""Reports built from real journals (written with ``Journal``) on a fake clock: the model, the Markdown
post-mortem (exact timeline lines), the JSON report against its schema, and ``irx report`` end to end."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from irx import timeline
from irx.cli import main
from irx.incidents import Incident
from irx.redact import Redactor
from irx.report import html, json_report, markdown
from irx.report.model import SEVERITY_TARGETS, Ran, Report, build_report, format_duration, load_report
from irx.timeline import Journal, read_journal

SCHEMA = json.loads((Path(__file__).resolve().parents[1] / "schemas" / "report.schema.json").read_text())
VALIDATOR = Draft202012Validator(SCHEMA)
START = datetime(2026, 11, 22, 11, 9, 44, tzinfo=UTC)
HOLDER = {
    "run_id": "x",
    "operator": "alice@laptop",
    "pid": 1,
    "started": "2026-11-22T11:09:44.000000Z",
    "playbook": "queue-backlog",
    "hosts": ["web1", "web2"],
}


class Clock:
    """The journal's clock, moved by hand: every event is stamped with ``now``."""

    def __init__(self) -> None:
        self.now = START

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)

    def stamp(self, moment: datetime | None = None) -> str:
        return (moment or self.now).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(timeline, "utc_timestamp", fake.stamp)
    return fake


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    return tmp_path / "runs"


def start(
    runs: Path, run_id: str, *, severity: str = "SEV2", mode: str = "run", trigger: dict[str, Any] | None = None
) -> Journal:
    journal = Journal.create(runs, run_id, Redactor(["s3cret"]))
    journal.event(
        "run_started",
        trigger=trigger,
        playbook="queue-backlog",
        playbook_path="/p/queue-backlog.yaml",
        title="Queue backlog on web tier",
        severity=severity,
        inventory="prod",
        mode=mode,
        operator="alice@laptop",
        plan_hash="sha256:abc",
        params={"threshold": 10, "token": "s3cret"},
        hosts=["web1", "web2"],
        irx_version="0.1.0",
        forced_lock=False,
        summary="Drain the queue when it backs up.",
        plan=[
            {"id": "depth", "phase": "diagnose", "action": "shell"},
            {"id": "drain", "phase": "mitigate", "action": "shell"},
            {"id": "health", "phase": "verify", "action": "http"},
            {"id": "undrain", "phase": "rollback", "action": "shell"},
        ],
    )
    journal.event("lock", action="acquired", holder=HOLDER)
    return journal


def diagnose(journal: Journal, clock: Clock, seconds: float = 2) -> None:
    journal.event("phase_started", phase="diagnose", again=False)
    journal.event(
        "step_started", phase="diagnose", step="depth", action="shell", summary="cat /var/queue/depth",
        title="Queue depth", hosts=["web1", "web2"], mutating=False, approval_required=False,
    )  # fmt: skip
    clock.advance(seconds)
    journal.event("host_result", phase="diagnose", step="depth", host="web1", status="ok", rc=0, stdout="3\n", data=3)
    journal.event("host_result", phase="diagnose", step="depth", host="web2", status="ok", rc=0, stdout="21\n", data=21)
    journal.event(
        "step_finished", phase="diagnose", step="depth", status="ok", duration=seconds, attempts=1,
        aggregates={"total": 24, "max": 21, "min": 3, "count": 2, "any": True, "all": True},
    )  # fmt: skip
    journal.event("phase_finished", phase="diagnose", status="ok", duration=seconds)


def mitigate(journal: Journal, clock: Clock) -> None:
    journal.event("phase_started", phase="mitigate", again=False)
    journal.event(
        "decision", phase="mitigate", step="drain", decision="run", expression="steps.depth.total > 10",
        value=True, reason="when: steps.depth.total > 10 -> True",
    )  # fmt: skip
    clock.advance(5)
    journal.event(
        "approval", phase="mitigate", step="drain", approved=True, method="tty", by="alice@laptop",
        plan_hash="sha256:abc", hosts=["web1", "web2"], summary="queue-drain --all",
    )  # fmt: skip
    journal.event(
        "step_started", phase="mitigate", step="drain", action="shell", summary="queue-drain --all",
        title="Drain the queue", hosts=["web1", "web2"], mutating=True, approval_required=True,
    )  # fmt: skip
    clock.advance(30)
    for host in ("web1", "web2"):
        journal.event("host_result", phase="mitigate", step="drain", host=host, status="ok", rc=0, changed=True)
    journal.event("step_finished", phase="mitigate", step="drain", status="ok", duration=30.0, attempts=1)
    journal.event("phase_finished", phase="mitigate", status="ok", duration=35.0)


def verify(journal: Journal, clock: Clock, *, ok: bool = True, again: bool = False) -> None:
    journal.event("phase_started", phase="verify", again=again)
    journal.event(
        "step_started", phase="verify", step="health", action="http", summary="GET http://web/health",
        hosts=["web1", "web2"], mutating=False, approval_required=False,
    )  # fmt: skip
    clock.advance(1)
    journal.event("host_result", phase="verify", step="health", host="web1", status="ok", http_status=200)
    if ok:
        journal.event("host_result", phase="verify", step="health", host="web2", status="ok", http_status=200)
        journal.event("step_finished", phase="verify", step="health", status="ok", duration=1.0)
    else:
        journal.event(
            "host_result", phase="verify", step="health", host="web2", status="failed", http_status=503,
            msg="HTTP 503 from http://web/health",
        )  # fmt: skip
        journal.event(
            "step_finished", phase="verify", step="health", status="failed", duration=1.0,
            reason="1 of 2 host(s) failed",
        )  # fmt: skip
    journal.event("phase_finished", phase="verify", status="ok" if ok else "failed", duration=1.0, again=again)


def finish(journal: Journal, clock: Clock, status: str, exit_code: int, reason: str | None = None) -> None:
    clock.advance(0.5)
    started = timeline.parse_timestamp(json.loads(journal.path.read_text().splitlines()[0])["ts"])
    elapsed = (clock.now - started).total_seconds()
    journal.event("lock", action="released", holder=HOLDER)
    journal.event("run_finished", status=status, exit_code=exit_code, duration=elapsed, reason=reason)
    journal.close()


def verified_run(runs: Path, clock: Clock, run_id: str = "20261122T110944Z-aaaaaa") -> Path:
    journal = start(runs, run_id)
    diagnose(journal, clock)
    mitigate(journal, clock)
    verify(journal, clock)
    finish(journal, clock, "verified", 0)
    return runs / run_id


def rolled_back_run(runs: Path, clock: Clock, run_id: str = "20261122T110944Z-bbbbbb") -> Path:
    journal = start(runs, run_id)
    diagnose(journal, clock)
    mitigate(journal, clock)
    verify(journal, clock, ok=False)
    journal.event("decision", decision="rollback", reason="verification failed: health")
    journal.event("phase_started", phase="rollback", reason="verification failed: health", again=False)
    journal.event(
        "step_started", phase="rollback", step="undrain", action="shell", summary="queue-undrain",
        hosts=["web1", "web2"], mutating=True, approval_required=False,
    )  # fmt: skip
    clock.advance(3)
    for host in ("web1", "web2"):
        journal.event("host_result", phase="rollback", step="undrain", host=host, status="ok", rc=0)
    journal.event("step_finished", phase="rollback", step="undrain", status="ok", duration=3.0)
    journal.event("phase_finished", phase="rollback", status="ok", duration=3.0)
    verify(journal, clock, ok=True, again=True)
    finish(journal, clock, "rolled_back", 1, "verification failed; rolled back")
    return runs / run_id


def interrupted_run(runs: Path, clock: Clock, run_id: str = "20261122T110944Z-cccccc") -> Path:
    journal = start(runs, run_id, severity="SEV1")
    diagnose(journal, clock)
    journal.event("phase_started", phase="mitigate", again=False)
    journal.event(
        "step_started", phase="mitigate", step="drain", action="shell", summary="queue-drain --all",
        title="Drain the queue", hosts=["web1", "web2"], mutating=True, approval_required=False,
    )  # fmt: skip
    clock.advance(4)
    journal.event("host_result", phase="mitigate", step="drain", host="web1", status="ok", rc=0)
    journal.close()  # killed: no run_finished, and the lock went with the process
    return runs / run_id


# --- the model -------------------------------------------------------------------------------------


def test_verified_run_model(runs: Path, clock: Clock) -> None:
    report = load_report(verified_run(runs, clock))

    assert (report.status, report.finished, report.exit_code, report.severity) == ("verified", True, 0, "SEV2")
    assert report.params == {"threshold": 10, "token": "******"}
    assert [(p.name, p.status) for p in report.phases] == [("diagnose", "ok"), ("mitigate", "ok"), ("verify", "ok")]
    assert [(s.id, s.status) for s in report.steps] == [("depth", "ok"), ("drain", "ok"), ("health", "ok")]
    depth = report.step("depth")
    assert depth is not None
    assert {r.host: r.data for r in depth.results} == {"web1": 3, "web2": 21}
    assert report.not_reached == ("undrain",)
    assert [(a.step, a.by, a.method) for a in report.approvals] == [("drain", "alice@laptop", "tty")]
    metrics = {m.key: (m.seconds, m.target, m.over_target) for m in report.metrics}
    assert metrics == {
        "first_diagnostic": (2.0, 3600.0, False),
        "mitigation": (37.0, 14400.0, False),
        "verified_recovery": (38.0, 14400.0, False),
        "total": (38.5, 14400.0, False),
    }
    assert report.problems == ()


def test_a_run_an_alert_started_names_it_and_is_timed_from_the_alert(runs: Path, clock: Clock) -> None:
    from irx.serve.dispatch import trigger_of

    incident = Incident(
        id="3f2a-1", group_key='{}:{alertname="PgIdleSessionsHigh"}', receiver="irx", route="pg-idle",
        state="running", opened=(clock.now - timedelta(seconds=90)).timestamp(), updated=0.0,
        labels={"alertname": "PgIdleSessionsHigh", "usename": "app", "severity": "page"},
    )  # fmt: skip
    journal = start(runs, "20261122T110944Z-eeeeee", trigger=trigger_of(incident))
    diagnose(journal, clock)
    mitigate(journal, clock)
    verify(journal, clock)
    finish(journal, clock, "verified", 0)
    report = load_report(runs / "20261122T110944Z-eeeeee")

    assert report.trigger["alertname"] == "PgIdleSessionsHigh"
    metrics = {m.key: (m.label, m.seconds) for m in report.metrics}
    assert metrics["first_diagnostic"] == ("Time from alert to first diagnostic result", 92.0)
    assert metrics["verified_recovery"] == ("Time from alert to verified recovery", 128.0)
    assert metrics["total"] == ("Total run duration", 38.5)  # the run itself
    text = markdown.render(report)
    assert (
        "**Trigger**: alertmanager alert PgIdleSessionsHigh (incident 3f2a-1; route pg-idle; severity=page, "
        "usename=app) at 11:08:14 UTC"
    ) in text
    assert "| Time from alert to first diagnostic result | 1m 32s |" in text
    assert 'data-field="trigger"' in html.render(report)


def test_metrics_over_target_are_flagged(runs: Path, clock: Clock) -> None:
    journal = start(runs, "20261122T110944Z-dddddd", severity="SEV1")
    diagnose(journal, clock, seconds=20 * 60)  # the first result comes after the 15 min SEV1 response target
    finish(journal, clock, "failed", 1, "nothing to do")
    report = load_report(runs / "20261122T110944Z-dddddd")

    flagged = {m.key: m.over_target for m in report.metrics}
    assert flagged == {"first_diagnostic": True, "mitigation": False, "verified_recovery": False, "total": False}
    text = markdown.render(report)
    assert "| Time to first diagnostic result | 20m | 15m (respond) | **YES** |" in text
    assert "| Time to mitigation | — | 1h (resolve) | no |" in text


def test_severity_targets_follow_the_runbook_table() -> None:
    assert {sev: (t["respond"], t["resolve"]) for sev, t in SEVERITY_TARGETS.items()} == {
        "SEV1": (900, 3600), "SEV2": (3600, 14400), "SEV3": (14400, 86400), "SEV4": (None, None),
    }  # fmt: skip


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, "—"),
        (0.04, "0.0s"),
        (4.25, "4.2s"),
        (59.96, "1m"),
        (65, "1m 05s"),
        (900, "15m"),
        (3600, "1h"),
        (7384.6, "2h 03m"),
        (14400, "4h"),
        (90000, "1d 01h"),
        (172800, "2d"),
    ],
)
def test_format_duration(seconds: float | None, text: str) -> None:
    assert format_duration(seconds) == text


# --- Markdown --------------------------------------------------------------------------------------


def section(text: str, title: str) -> list[str]:
    """The non-empty lines of one ``## title`` section."""
    lines = text.splitlines()
    begin = lines.index(f"## {title}") + 1
    end = next((i for i in range(begin, len(lines)) if lines[i].startswith("## ")), len(lines))
    return [line for line in lines[begin:end] if line]


def test_markdown_verified_run(runs: Path, clock: Clock) -> None:
    text = markdown.render(load_report(verified_run(runs, clock)))

    assert text.splitlines()[:6] == [
        "# Post-Mortem: Queue backlog on web tier",
        "",
        "**Date**: 2026-11-22",
        "**Severity**: SEV2",
        "**Duration**: 38.5s (irx run, 11:09:44 to 11:10:22 UTC)",
        "**Status**: VERIFIED",
    ]
    assert section(text, "Timeline (all times in UTC)") == [
        "- 11:09:44 — Run started: queue-backlog (SEV2) on prod, run mode, by alice@laptop",
        "- 11:09:44 — Phase diagnose started",
        "- 11:09:46 — Step depth (Queue depth) ok on web1, web2",
        "- 11:09:46 — Phase diagnose finished: ok (2.0s)",
        "- 11:09:46 — Phase mitigate started",
        "- 11:09:46 — Decision: run drain — when: steps.depth.total > 10 -> True",
        "- 11:09:51 — Approval: drain on web1, web2 approved by alice@laptop (tty)",
        "- 11:10:21 — Step drain (Drain the queue) ok on web1, web2",
        "- 11:10:21 — Phase mitigate finished: ok (35.0s)",
        "- 11:10:21 — Phase verify started",
        "- 11:10:22 — Step health ok on web1, web2",
        "- 11:10:22 — Phase verify finished: ok (1.0s)",
        "- 11:10:22 — Run finished: VERIFIED (exit 0, 38.5s)",
    ]
    assert section(text, "Root Cause")[1:] == [
        "### Diagnostic findings that drove decisions",
        "- **Queue depth** (`depth`, ok)",
        "  - ran on web1, web2 (as dispatched): `cat /var/queue/depth`",
        "  - web1: ok — `3`",
        "  - web2: ok — `21`",
        '  - aggregate: {"count": 2, "max": 21, "min": 3, "total": 24}',
        "  - → decided **run drain**: when: steps.depth.total > 10 -> True",
    ]
    assert section(text, "Resolution") == [
        "- [mitigate] **Drain the queue** (`drain`): ok on web1, web2 in 30.0s; approved by alice@laptop (tty) "
        "at 11:09:51",
        "  - ran on web1, web2 (as shown for approval): `queue-drain --all`",
    ]
    assert section(text, "Verification") == ["- **health** (`health`): ok — web1 ok, web2 ok"]
    assert section(text, "Action Items") == [
        "- [ ] Steps never reached: undrain; decide whether to run them by hand - Owner: [Name] - Due: [Date]",
        "- [ ] [Action] - Owner: [Name] - Due: [Date]",
    ]
    assert "- **Users Affected**: [X users / Y%]" in section(text, "Impact")
    assert section(text, "Lessons Learned") == ["1. [Lesson 1]"]
    assert "s3cret" not in text


def test_markdown_rolled_back_run(runs: Path, clock: Clock) -> None:
    report = load_report(rolled_back_run(runs, clock))
    text = markdown.render(report)

    assert report.status == "rolled_back"
    assert [(p.name, p.status, p.again) for p in report.phases][-3:] == [
        ("verify", "failed", False), ("rollback", "ok", False), ("verify", "ok", True)
    ]  # fmt: skip
    assert section(text, "Timeline (all times in UTC)")[9:] == [
        "- 11:10:21 — Phase verify started",
        "- 11:10:22 — step health failed on web2: HTTP 503 from http://web/health",
        "- 11:10:22 — Step health failed on web2: 1 of 2 host(s) failed",
        "- 11:10:22 — Phase verify finished: failed (1.0s)",
        "- 11:10:22 — Decision: rollback — verification failed: health",
        "- 11:10:22 — Phase rollback started — verification failed: health",
        "- 11:10:25 — Step undrain ok on web1, web2",
        "- 11:10:25 — Phase rollback finished: ok (3.0s)",
        "- 11:10:25 — Phase verify started again",
        "- 11:10:26 — Step health ok on web1, web2",
        "- 11:10:26 — Phase verify finished: ok (1.0s)",
        "- 11:10:26 — Run finished: ROLLED_BACK (exit 1, 42.5s) — verification failed; rolled back",
    ]
    resolution = section(text, "Resolution")
    undrain = resolution.index("- [rollback] **undrain** (`undrain`): ok on web1, web2 in 3.0s")
    assert resolution[undrain + 1] == "  - ran on web1, web2 (as dispatched): `queue-undrain`"
    items = section(text, "Action Items")
    assert items[:2] == [
        "- [ ] Investigate why verify step `health` failed on web2: 1 of 2 host(s) failed"
        " - Owner: [Name] - Due: [Date]",
        "- [ ] Find out why the mitigation did not restore service (it was rolled back) - Owner: [Name] - Due: [Date]",
    ]


def test_a_continuation_killed_before_its_run_finished_ends_the_timeline_interrupted(runs: Path, clock: Clock) -> None:
    run_dir = verified_run(runs, clock)
    clock.advance(60)
    with Journal.reopen(run_dir, Redactor()) as resumed:  # irx resume, then kill -9
        resumed.event("run_resumed", operator="bob@cn", after="failed", plan_hash="sha256:aa", attempt=2)
    report = load_report(run_dir)
    assert (report.status, markdown.render(report).count("Journal ends here")) == ("interrupted", 1)
    assert section(markdown.render(report), "Timeline (all times in UTC)")[-1] == (
        "- 11:11:22 — Journal ends here: the run was killed before it could finish (INTERRUPTED)"
    )


def test_interrupted_run_keeps_everything_recorded(runs: Path, clock: Clock) -> None:
    report = load_report(interrupted_run(runs, clock))
    text = markdown.render(report)

    assert (report.status, report.finished, report.exit_code) == ("interrupted", False, None)
    assert report.phases[-1].name == "mitigate"
    assert report.phases[-1].status is None
    drain = report.step("drain")
    assert drain is not None
    assert (drain.status, [r.host for r in drain.results]) == ("interrupted", ["web1"])
    assert section(text, "Timeline (all times in UTC)")[-2:] == [
        "- 11:09:46 — Phase mitigate started",
        "- 11:09:50 — Journal ends here: the run was killed before it could finish (INTERRUPTED)",
    ]
    assert "**Status**: INTERRUPTED" in text
    assert "- [ ] Investigate why mitigate step `drain` interrupted - Owner: [Name] - Due: [Date]" in section(
        text, "Action Items"
    )


def test_truncated_and_corrupted_lines_are_reported_not_fatal(runs: Path, clock: Clock) -> None:
    run_dir = verified_run(runs, clock)
    path = run_dir / "timeline.jsonl"
    lines = path.read_bytes().split(b"\n")
    lines[3] = b'{"v":1,"seq":4,"ts":"garb'  # a corrupted line in the middle
    path.write_bytes(b"\n".join(lines[:-2]) + b'\n{"v":1,"seq":2')  # and a torn last line (run_finished lost)

    report = load_report(run_dir)
    text = markdown.render(report)

    assert report.problems == (
        "line 4: not valid JSON (Unterminated string starting at: line 1 column 21 (char 20)), skipped",
        "line 5: seq 5 follows 3 (1 event(s) missing)",
        "line 24: truncated event (the run was killed while writing)",
    )
    assert report.status == "interrupted"
    assert section(text, "Journal problems")[0].startswith("- line 4: not valid JSON")
    assert any("The journal has 3 problem(s)" in item for item in section(text, "Action Items"))
    VALIDATOR.validate(report.to_dict())


def test_dry_run_and_skip_and_refusal(runs: Path, clock: Clock) -> None:
    journal = start(runs, "20261122T110944Z-eeeeee", mode="dry-run")
    diagnose(journal, clock)
    journal.event("phase_started", phase="mitigate", again=False)
    journal.event(
        "approval", phase="mitigate", step="drain", approved=False, method="refused", by="bob@ops",
        plan_hash="sha256:abc", hosts=["web1"],
    )  # fmt: skip
    journal.event("step_finished", phase="mitigate", step="drain", status="skipped", reason="approval refused")
    journal.event("decision", phase="mitigate", step="kick", decision="would_run", hosts=["web2"], reason="dry run")
    journal.event("step_finished", phase="mitigate", step="kick", status="would_run")
    journal.event("error", message="notify: template broke\nsecond line", where="notify")
    journal.event("notification", channel="slack", status="failed", kind="update", error="HTTP 500", attempts=3)
    journal.event("phase_finished", phase="mitigate", status="ok")
    finish(journal, clock, "dry_run", 0)

    report = load_report(runs / "20261122T110944Z-eeeeee")
    lines = section(markdown.render(report), "Timeline (all times in UTC)")
    assert lines[5:11] == [
        "- 11:09:46 — Approval: drain on web1 refused by bob@ops",
        "- 11:09:46 — Step drain refused, not run: approval refused",
        "- 11:09:46 — Decision: would_run kick — dry run",
        "- 11:09:46 — Step kick would run on the control node (dry run)",
        "- 11:09:46 — Error: notify: template broke",
        "- 11:09:46 — Notification update to slack failed: HTTP 500",
    ]
    items = section(markdown.render(report), "Action Items")
    assert items[0].startswith("- [ ] Review the refused approval of `drain`")
    VALIDATOR.validate(report.to_dict())


def test_events_with_odd_fields_never_crash(tmp_path: Path) -> None:
    path = tmp_path / "timeline.jsonl"
    odd = [
        {"seq": 1, "type": "step_finished", "step": 5, "status": ["x"]},
        {"seq": 2, "type": "host_result", "step": "a", "host": None, "ts": "yesterday", "rc": "0"},
        {"seq": 3, "type": "phase_finished", "phase": "verify", "duration": "long"},
        {"seq": 4, "type": "approval", "approved": "yes"},
        {"seq": 5, "type": "run_finished", "status": "verified", "duration": True},
    ]
    path.write_text("".join(json.dumps(event) + "\n" for event in odd))

    report = build_report(read_journal(path))
    text = markdown.render(report)

    assert report.run_id == "unknown"
    assert "the journal does not start with run_started" in report.problems
    assert "- ??:??:?? — step a" not in text
    VALIDATOR.validate(report.to_dict())


# --- JSON ------------------------------------------------------------------------------------------


def test_schema_is_valid_2020_12() -> None:
    Draft202012Validator.check_schema(SCHEMA)
    assert json_report.schema() == SCHEMA


@pytest.mark.parametrize("make", [verified_run, rolled_back_run, interrupted_run])
def test_json_report_matches_schema(runs: Path, clock: Clock, make: Any) -> None:
    report: Report = load_report(make(runs, clock))
    data = json.loads(json_report.render(report))

    assert sorted(VALIDATOR.iter_errors(data), key=str) == []
    assert data["report_version"] == 1
    assert "events" not in data
    assert [entry["text"] for entry in data["timeline"]] == [entry.text for entry in report.timeline]


# --- irx report ------------------------------------------------------------------------------------


def test_cli_report_latest_markdown_and_json_to_file(
    runs: Path, clock: Clock, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    verified_run(runs, clock)
    rolled_back_run(runs, clock)

    assert main(["report", "--runs-dir", str(runs)]) == 0
    assert capsys.readouterr().out.startswith("# Post-Mortem: Queue backlog on web tier\n")
    assert main(["report", "20261122T110944Z-aa", "--runs-dir", str(runs), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "verified"
    out = tmp_path / "pm.md"
    assert main(["report", "latest", "--runs-dir", str(runs), "-o", str(out)]) == 0
    assert "**Status**: ROLLED_BACK" in out.read_text()


def test_cli_report_html_delegates_or_says_unavailable(
    runs: Path, clock: Clock, capsys: pytest.CaptureFixture[str]
) -> None:
    import importlib.util

    verified_run(runs, clock)
    code = main(["report", "--runs-dir", str(runs), "--format", "html"])
    captured = capsys.readouterr()
    if importlib.util.find_spec("irx.report.html") is None:
        assert (code, captured.err) == (2, "irx: error: html report not available yet\n")
    else:
        assert code == 0
        assert "<html" in captured.out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["report", "nope"], "irx: error: no run 'nope' in {runs}\n"),
        (["report", "20261122"], "irx: error: run id '20261122' is ambiguous: {ids}\n"),
        (["report", "-o", "{tmp}/missing/dir/pm.md"], "irx: error: cannot write the report to {tmp}/missing/dir/pm.md: "
         "No such file or directory\n"),
        (["report", "-o", "{tmp}/runs/20261122T110944Z-aaaaaa/timeline.jsonl/pm.md"],
         "irx: error: cannot write the report to {tmp}/runs/20261122T110944Z-aaaaaa/timeline.jsonl/pm.md: "
         "Not a directory\n"),
    ],
)  # fmt: skip
def test_cli_report_bad_input_is_one_line_exit_2(
    runs: Path, clock: Clock, tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    verified_run(runs, clock)
    rolled_back_run(runs, clock)
    ids = "20261122T110944Z-aaaaaa, 20261122T110944Z-bbbbbb"
    args = [arg.format(tmp=tmp_path) for arg in args]

    assert main([*args, "--runs-dir", str(runs)]) == 2
    captured = capsys.readouterr()
    assert captured.err == message.format(runs=runs, tmp=tmp_path, ids=ids)
    assert captured.out == ""


def test_cli_report_no_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "--runs-dir", str(tmp_path / "none")]) == 2
    assert capsys.readouterr().err == f"irx: error: no runs in {tmp_path / 'none'}\n"


def test_cli_report_corrupted_journal_warns_and_renders(
    runs: Path, clock: Clock, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = interrupted_run(runs, clock)
    with (run_dir / "timeline.jsonl").open("ab") as stream:
        stream.write(b'{"v":1,"seq":99,"ty')

    assert main(["report", "--runs-dir", str(runs)]) == 0
    captured = capsys.readouterr()
    assert "## Journal problems" in captured.out
    assert captured.err == (
        "irx: warning: the journal of 20261122T110944Z-cccccc has 1 problem(s), listed in the report; "
        "first: line 12: truncated event (the run was killed while writing)\n"
    )


# --- the headline finding, refusals, what ran, labels ------------------------------------------------


def test_the_post_mortem_leads_with_what_was_wrong_what_fixed_it_and_how_long(runs: Path, clock: Clock) -> None:
    report = load_report(verified_run(runs, clock))
    assert (report.finding.wrong_step, report.finding.fixed_step) == ("depth", "drain")
    text = markdown.render(report)
    assert text.index("## Finding") < text.index("## Summary")
    assert section(text, "Finding") == [
        "- **What was wrong**: Queue depth (`depth`) found web1: 3; web2: 21, which matched "
        "`steps.depth.total > 10` for Drain the queue (`drain`)",
        "- **What fixed it**: Drain the queue (`drain`) on web1, web2: queue-drain --all",
        "- **How long**: time to mitigation 37.0s, time to verified recovery 38.0s",
    ]


def test_a_run_without_a_matched_diagnosis_or_a_fix_says_so(runs: Path, clock: Clock) -> None:
    text = markdown.render(load_report(interrupted_run(runs, clock)))
    assert section(text, "Finding") == [
        "- **What was wrong**: no diagnosis matched the condition of a mitigation in this run",
        "- **What fixed it**: nothing: no mitigation changed anything",
        "- **How long**: time to mitigation not reached, time to verified recovery not reached",
    ]


def test_a_refused_step_reads_refused_in_every_section(runs: Path, clock: Clock) -> None:
    journal = start(runs, "20261122T110944Z-ffffff")
    diagnose(journal, clock)
    journal.event("phase_started", phase="mitigate", again=False)
    journal.event(
        "step_started", phase="mitigate", step="drain", action="shell", summary="Drain the queue",
        title="Drain the queue", hosts=["web1", "web2"], mutating=True, approval_required=True,
    )  # fmt: skip
    journal.event(
        "approval", phase="mitigate", step="drain", approved=False, method="refused", by="bob@ops",
        plan_hash="sha256:abc", hosts=["web1", "web2"], approval_hash="sha256:" + "ab" * 32,
        summary="queue-drain --all --token s3cret  [on web1, web2]",
    )  # fmt: skip
    journal.event("step_finished", phase="mitigate", step="drain", status="skipped", reason="approval refused by bob")
    finish(journal, clock, "failed", 1)

    report = load_report(runs / "20261122T110944Z-ffffff")
    drain = report.step("drain")
    assert drain is not None
    assert (drain.status, drain.state, drain.approval) == ("skipped", "refused", "refused")
    assert drain.ran == (Ran("queue-drain --all --token ******", ("web1", "web2"), "approval"),)
    text = markdown.render(report)
    assert "Steps: 1 ok, 1 refused, 2 never reached." in text
    (line, ran) = section(text, "Resolution")
    assert line.startswith("- [mitigate] **Drain the queue** (`drain`): refused on web1, web2")
    assert "; refused by bob@ops (refused) at 11:09:46 [abababababab]" in line
    assert ran == "  - would have run on web1, web2 (as shown for approval): `queue-drain --all --token ******`"
    assert "s3cret" not in text
    assert report.to_dict()["steps"][1]["approval"] == "refused"
    VALIDATOR.validate(report.to_dict())


def test_what_ran_falls_back_to_the_plan_when_the_journal_has_nothing_closer(runs: Path, clock: Clock) -> None:
    journal = Journal.create(runs, "20261122T110944Z-gggggg", Redactor(["s3cret"]))
    journal.event(
        "run_started", playbook="p", playbook_path="/p.yaml", title="t", severity="SEV3", inventory="i",
        mode="run", operator="o", plan_hash="h", params={}, hosts=["web1"], irx_version="0", forced_lock=False,
        plan=[{"id": "probe", "phase": "diagnose", "action": "shell", "hosts": ["web1"],
               "summary": "$ curl -H 'Authorization: s3cret' http://web1/queue"}],
    )  # fmt: skip
    journal.event(
        "step_started", phase="diagnose", step="probe", action="shell", summary="Probe", title="Probe",
        hosts=["web1"], mutating=False, approval_required=False,
    )  # fmt: skip
    journal.close()
    (probe,) = load_report(runs / "20261122T110944Z-gggggg").steps
    assert probe.ran == (Ran("$ curl -H 'Authorization: ******' http://web1/queue", ("web1",), "plan"),)


def test_long_labels_are_cut_at_a_word_boundary(runs: Path, clock: Clock) -> None:
    journal = start(runs, "20261122T110944Z-hhhhhh")
    words = " ".join(f"word{i:03d}" for i in range(60))  # 479 characters, no word cut fits
    journal.event("error", message=words)
    journal.event(
        "step_started", phase="diagnose", step="depth", action="shell", summary="x", hosts=["web1"],
        mutating=False, approval_required=False,
    )  # fmt: skip
    journal.event("host_result", phase="diagnose", step="depth", host="web1", status="ok", data={"note": words})
    journal.event("step_finished", phase="diagnose", step="depth", status="ok")
    finish(journal, clock, "failed", 1)
    report = load_report(runs / "20261122T110944Z-hhhhhh")
    (error,) = [entry.text for entry in report.timeline if entry.kind == "error"]
    assert error.endswith("…")
    assert error[len("Error: ") : -1].split(" ")[-1] in words.split(" ")  # ends on a whole word
    (finding,) = [line for line in section(markdown.render(report), "Root Cause") if "web1: ok" in line]
    last = finding.rstrip("`").removesuffix("…").split(" ")[-1]
    assert last in words.split(" ")

"""The run journal: durable, redacted, schema-valid events, read back whole after kill -9."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from irx.errors import UsageError
from irx.model import ACTIONS, PHASES
from irx.redact import MASK, Redactor
from irx.timeline import (
    EVENT_TYPES,
    HOST_STATUSES,
    RUN_STATUSES,
    STEP_STATUSES,
    TIMELINE_FILE,
    Journal,
    JournalError,
    cap_output,
    current_operator,
    default_runs_dir,
    list_runs,
    new_run_id,
    parse_timestamp,
    read_journal,
    resolve_run,
    utc_timestamp,
)

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "schemas" / "timeline.schema.json"
SCHEMA = json.loads(SCHEMA_PATH.read_text())
VALIDATOR = Draft202012Validator(SCHEMA)
TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
SECRET = "Sup3r-S3cret!"
HOLDER = {
    "run_id": "20261122T110944Z-aaaaaa",
    "operator": "alice@laptop",
    "pid": 4242,
    "started": "2026-11-22T11:09:44.000000Z",
    "playbook": "db-pool-exhausted",
    "hosts": ["db1", "db2"],
}

# Run in a subprocess: writes events forever (big outputs, so a kill is likely to land mid-write).
WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from irx.redact import Redactor
    from irx.timeline import Journal

    journal = Journal.create(Path(sys.argv[1]), sys.argv[2], Redactor(["hunter2"]))
    journal.event("run_started", playbook="p", playbook_path="p.yaml", title="T", severity="SEV2",
                  inventory="local", mode="run", operator="a@b", plan_hash="h", params={}, hosts=["h1"],
                  irx_version="0", forced_lock=False)
    n = 0
    while True:
        n += 1
        journal.event("host_result", phase="diagnose", step="s", host="h1", status="ok", rc=0,
                      stdout=f"{n} hunter2 " + "x" * (n % 5000) * 13, stderr="", duration=0.1)
        if n == 50:
            print("ready", flush=True)
    """
)

# Run in a subprocess: opens a journal, records run_started, waits for a line on stdin, then finishes.
HOLDER_SCRIPT = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from irx.redact import Redactor
    from irx.timeline import Journal

    journal = Journal.create(Path(sys.argv[1]), sys.argv[2], Redactor([]))
    journal.event("run_started", playbook="p", playbook_path="p.yaml", title="T", severity="SEV2",
                  inventory="local", mode="run", operator="a@b", plan_hash="h", params={}, hosts=["h1"],
                  irx_version="0", forced_lock=False)
    print("started", flush=True)
    sys.stdin.readline()
    journal.event("run_finished", status="verified", exit_code=0, duration=1.5)
    journal.close()
    """
)


def validate_events(events: list[dict[str, Any]]) -> None:
    for event in events:
        errors = sorted(VALIDATOR.iter_errors(event), key=str)
        assert not errors, f"{event['type']} event does not match the schema: {errors[0].message}"


def read_valid(path: Path) -> list[dict[str, Any]]:
    """Every event of a journal that must be whole: no problems, contiguous seq, all schema-valid."""
    read = read_journal(path)
    assert read.problems == []
    assert [event["seq"] for event in read.events] == list(range(1, len(read.events) + 1))
    validate_events(read.events)
    return read.events


@pytest.fixture(autouse=True)
def every_journal_written_is_schema_valid(tmp_path: Path) -> Iterator[None]:
    """After each test, every event of every journal it wrote must match the schema."""
    yield
    for path in tmp_path.rglob(TIMELINE_FILE):
        validate_events(read_journal(path).events)


@pytest.fixture
def runs_dir(tmp_path: Path) -> Path:
    return tmp_path / "runs"


@pytest.fixture
def journal(runs_dir: Path) -> Iterator[Journal]:
    with Journal.create(runs_dir, "20261122T110944Z-abcdef", Redactor([SECRET])) as journal:
        yield journal


def run_started(journal: Journal, **overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "playbook": "db-pool-exhausted",
        "playbook_path": "playbooks/db-pool-exhausted.yaml",
        "title": "Database connection pool exhausted",
        "severity": "SEV2",
        "inventory": "prod",
        "mode": "run",
        "operator": "alice@laptop",
        "plan_hash": "sha256:0f3a",
        "params": {"pg_dsn": MASK, "long_running_minutes": 5},
        "hosts": ["db1", "app1"],
        "irx_version": "0.1.0",
        "forced_lock": False,
    }
    return journal.event("run_started", **{**fields, **overrides})


def write_full_run(journal: Journal) -> None:
    """One event of every type, with every optional field a real run would record."""
    run_started(
        journal,
        limit="db*",
        pid=os.getpid(),
        targets={"db": ["db1"], "app": ["app1"]},
        approve=["terminate_long_running"],
        yes=False,
        summary="Too many connections",
        symptoms=["Timeouts"],
        tags=["database"],
        references=[{"title": "runbook", "url": "https://example.com"}],
        inventory_source="/etc/irx/inventories/prod.yml",
        supplied={"min_age": {"value": "120", "source": "-e", "text": True}},
        plan=[
            {
                "id": "connections",
                "phase": "diagnose",
                "action": "shell",
                "title": "connections",
                "target": "db",
                "hosts": ["db1"],
                "mutating": False,
                "approval_required": False,
                "summary": "psql -c ...",
            },
        ],
    )
    journal.event("lock", action="acquired", holder=HOLDER, stale={**HOLDER, "pid": 1}, path="/x.lock")
    journal.event("phase_started", phase="diagnose", steps=1)
    journal.event(
        "step_started",
        phase="diagnose",
        step="connections",
        action="shell",
        title="Connections by state",
        target="db",
        summary=f"psql {SECRET} -c 'select 1'",
        hosts=["db1"],
        mutating=False,
        approval_required=False,
        attempt=1,
        timeout=30.0,
    )
    journal.event(
        "host_result",
        phase="diagnose",
        step="connections",
        host="db1",
        status="ok",
        rc=0,
        stdout="active,3\nidle,40\n",
        stderr="",
        duration=0.25,
        changed=False,
        data=[{"state": "active", "count": 3}],
        msg="",
        attempt=1,
    )
    journal.event(
        "host_result",
        phase="diagnose",
        step="connections",
        host="db2",
        status="unreachable",
        msg="ssh: connect to host db2 port 22: Connection refused",
    )
    journal.event(
        "step_finished",
        phase="diagnose",
        step="connections",
        status="ok",
        duration=0.3,
        aggregates={"total": 43, "max": 40, "min": 3, "count": 2, "any": True, "all": True},
        counts={"ok": 1, "unreachable": 1},
        attempts=1,
        reason="",
    )
    journal.event("phase_finished", phase="diagnose", status="ok", duration=0.4)
    journal.event(
        "decision",
        phase="mitigate",
        step="terminate_long_running",
        decision="run",
        reason="when: steps.long_running.total > 0 was true",
        expression="steps.long_running.total > 0",
        value=True,
    )
    journal.event("decision", phase="verify", step="health", decision="retry", attempt=1, delay=3.0, reason="HTTP 503")
    journal.event("decision", phase="mitigate", step="restart_app", decision="continue", reason="failed")
    journal.event("decision", decision="rollback", reason="verify step 'health' failed")
    journal.event("phase_started", phase="verify", again=True)
    journal.event("phase_finished", phase="verify", status="ok", again=True)
    journal.event(
        "host_result",
        phase="preflight",
        host="db3",
        status="unreachable",
        msg="preflight: connection refused",
    )
    journal.event(
        "approval_requested",
        phase="mitigate",
        step="terminate_long_running",
        approval_hash="sha256:" + "ab" * 32,
        hosts=["db1"],
        until="2026-11-22T11:39:44Z",
        approvers=["group:dba"],
        needed=2,
        requester_may_approve=False,
        escalate_at="2026-11-22T11:14:44Z",
    )
    for by, counted in (("alice@laptop", True), ("mallory@laptop", False), ("bob", True)):
        journal.event(
            "approval_given",
            phase="mitigate",
            step="terminate_long_running",
            by=by,
            via="web" if by == "bob" else "cli",
            approve=True,
            approval_hash="sha256:" + "ab" * 32,
            counted=counted,
            reason=None if counted else "mallory is not an approver of terminate_long_running (group:dba)",
            given=1 if by != "bob" else 2,
            needed=2,
        )
    journal.event(
        "approval_escalated", phase="mitigate", step="terminate_long_running", channel="leads", after=300.0, given=1,
        needed=2,
    )  # fmt: skip
    journal.event(
        "approval",
        phase="mitigate",
        step="terminate_long_running",
        approved=True,
        by="alice@laptop, bob",
        method="web",
        plan_hash="sha256:0f3a",
        reason="kills sessions",
        hosts=["db1"],
        summary="psql ...",
        approvers=["alice@laptop", "bob"],
        needed=2,
    )
    journal.event(
        "approval", step="skip_me", approved=False, method="timeout-skip", plan_hash="sha256:0f3a",
        reason="nobody approved or refused skip_me within 30m; skipped (on_timeout: skip)",
    )  # fmt: skip
    journal.event("approval", step="restart_app", approved=False, method="missing", plan_hash="sha256:0f3a")
    journal.event(
        "notification",
        channel="slack-incidents",
        status="failed",
        kind="update",
        message="Mitigating",
        attempts=3,
        error="HTTP 500",
        http_status=500,
        duration=1.2,
    )
    journal.event(
        "error",
        message="template failed",
        where="playbook.yaml:12",
        exception="TemplateError",
        traceback_path="/tmp/irx-crash.log",
    )
    journal.event("lock", action="forced", holder=HOLDER, previous={**HOLDER, "operator": "bob@host"})
    journal.event("lock", action="released", holder=HOLDER)
    journal.event(
        "lease",
        host="db1",
        action="forced",
        file="/var/lib/irx/lease.json",
        expires="2026-11-22T11:24:44.123456Z",
        previous={"run_id": "20261122T110000Z-fedcba", "operator": "bob@cn2", "playbook": "high-cpu", "pid": 42},
    )
    journal.event("run_finished", status="failed", exit_code=1, duration=9.5, reason="mitigate step 'x' failed")
    journal.event(
        "run_resumed",
        operator="bob@cn2",
        after="failed",
        plan_hash="sha256:0f3a",
        attempt=2,
        pid=os.getpid(),
        from_step="terminate_long_running",
        rerun_hosts=["db1"],
        done=["connections"],
        replanned=True,
        changes=["step x: summary was 'a', now 'b'"],
        approve=["terminate_long_running"],
        yes=False,
    )
    journal.event("run_finished", status="verified", exit_code=0, duration=12.5, reason="health is 200")


def test_every_event_type_is_written_and_schema_valid(journal: Journal) -> None:
    write_full_run(journal)
    events = read_valid(journal.path)
    assert {event["type"] for event in events} == set(EVENT_TYPES)
    for event in events:
        assert list(event)[:5] == ["v", "seq", "ts", "run_id", "type"]
        assert event["v"] == 1
        assert event["run_id"] == "20261122T110944Z-abcdef"
        assert TS.match(event["ts"])
    timestamps = [parse_timestamp(event["ts"]) for event in events]
    assert timestamps == sorted(timestamps)


def test_event_returns_what_was_written(journal: Journal) -> None:
    returned = journal.event("phase_started", phase="verify", step=None, reason=f"because {SECRET}")
    assert returned == read_valid(journal.path)[0]
    assert returned["reason"] == f"because {MASK}"
    assert "step" not in returned  # None fields are left out
    assert journal.seq == 1


def test_schema_vocabulary_matches_the_code() -> None:
    defs = SCHEMA["$defs"]
    assert SCHEMA["properties"]["type"]["enum"] == list(EVENT_TYPES)
    assert set(EVENT_TYPES) <= set(defs)
    assert defs["run_finished"]["properties"]["status"]["enum"] == list(RUN_STATUSES)
    assert defs["host_result"]["properties"]["status"]["enum"] == list(HOST_STATUSES)
    assert defs["step_finished"]["properties"]["status"]["enum"] == list(STEP_STATUSES)
    assert SCHEMA["properties"]["phase"]["enum"] == ["preflight", *PHASES]
    assert defs["action"]["enum"] == list(ACTIONS)
    Draft202012Validator.check_schema(SCHEMA)


def test_shipped_schema_is_the_repository_schema() -> None:
    from importlib import resources

    shipped = resources.files("irx").joinpath("schemas/timeline.schema.json").read_text(encoding="utf-8")
    assert json.loads(shipped) == SCHEMA


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"type": "coffee_break"}, "is not one of"),
        ({"status": "meh"}, "is not one of"),
        ({"ts": "2026-11-22 11:09:44"}, "does not match"),
        ({"seq": 0}, "less than the minimum"),
        ({"surprise": 1}, "Additional properties are not allowed"),
        ({"v": 2}, "1 was expected"),
    ],
)
def test_schema_rejects_malformed_events(change: dict[str, Any], message: str) -> None:
    event = {
        "v": 1,
        "seq": 3,
        "ts": "2026-11-22T11:09:44.000001Z",
        "run_id": "r1",
        "type": "host_result",
        "step": "s",
        "host": "h",
        "status": "ok",
    }
    validate_events([event])
    errors = [error.message for error in VALIDATOR.iter_errors({**event, **change})]
    assert any(message in error for error in errors), errors


@pytest.mark.parametrize(
    "event",
    [
        {"type": "run_finished", "status": "verified"},  # no exit_code, duration
        {"type": "approval", "step": "s", "approved": True, "method": "tty", "plan_hash": "h"},  # no by
        {
            "type": "step_started",
            "step": "s",
            "phase": "mitigate",
            "action": "rm-rf",
            "summary": "",
            "hosts": [],
            "mutating": True,
            "approval_required": False,
        },
        {"type": "lock", "action": "acquired", "holder": {"run_id": "x"}},
        {
            "type": "host_result",
            "phase": "diagnose",
            "host": "h",
            "status": "ok",
        },  # no step outside preflight
    ],
)
def test_schema_requires_type_specific_fields(event: dict[str, Any]) -> None:
    header = {"v": 1, "seq": 1, "ts": "2026-11-22T11:09:44.000001Z", "run_id": "r1"}
    assert list(VALIDATOR.iter_errors({**header, **event}))


def test_secrets_never_reach_the_disk(journal: Journal) -> None:
    journal.event(
        "host_result",
        step="s",
        host="h",
        status="failed",
        rc=2,
        stdout=f"password is {SECRET}\n",
        stderr=f"FATAL: auth failed for {SECRET}",
        data={SECRET: [f"x{SECRET}x", {"k": SECRET}]},
        msg=f"rc=2 {SECRET}",
    )
    run_started(journal, params={"note": f"uses {SECRET}"}, playbook_path=f"/srv/{SECRET}/p.yaml")
    raw = journal.path.read_bytes()
    assert SECRET.encode() not in raw
    assert raw.count(MASK.encode()) == 8
    validate_events(read_valid(journal.path))


def test_fixed_vocabulary_is_not_masked_even_by_a_matching_secret(runs_dir: Path) -> None:
    with Journal.create(runs_dir, "r1", Redactor(["ok", "diagnose", "0"])) as journal:
        event = journal.event(
            "host_result", phase="diagnose", step="s", host="h", status="ok", rc=0, stdout="ok: diagnose done"
        )
    assert (event["status"], event["phase"], event["rc"]) == ("ok", "diagnose", 0)
    assert event["stdout"] == f"{MASK}: {MASK} done"


def test_output_is_capped_after_redaction_with_the_cap_recorded(runs_dir: Path) -> None:
    cap = 1024
    # The secret straddles the point where the head of the capped output ends: capping before
    # redacting would cut it in two and leak the half that was kept.
    head_end = (cap - 120) // 2
    stdout = "a" * (head_end - 5) + SECRET + "b" * 5000 + "THE END"
    with Journal.create(runs_dir, "r1", Redactor([SECRET]), output_cap=cap) as journal:
        event = journal.event("host_result", step="s", host="h", status="ok", stdout=stdout, stderr="short")
    assert event["stdout_truncated"] is True
    assert event["stderr_truncated"] is False
    assert event["cap"] == cap
    assert len(event["stdout"].encode()) <= cap
    assert event["stdout"].endswith("THE END")
    assert "bytes omitted by irx (output cap 1024 bytes)" in event["stdout"]
    assert not any(SECRET[:n] in event["stdout"] for n in range(4, len(SECRET)))
    assert event["stderr"] == "short"
    validate_events(read_valid(journal.path))


def test_cap_output_keeps_both_ends_and_never_splits_a_character() -> None:
    assert cap_output("short", 100) == ("short", False)
    text = "é" * 3000 + "€" * 3000
    capped, truncated = cap_output(text, 1000)
    assert truncated
    assert len(capped.encode()) <= 1000
    assert capped.startswith("é")
    assert capped.endswith("€")
    omitted = int(re.search(r"\[\.\.\. (\d+) bytes omitted", capped).group(1))  # type: ignore[union-attr]
    head, tail = capped.split("\n[...")[0], capped.split("...]\n")[1]
    assert len(head.encode()) + omitted + len(tail.encode()) == len(text.encode())


def test_values_are_made_json(journal: Journal) -> None:
    class Color(Enum):
        RED = "red"

    event = journal.event(
        "host_result",
        step="s",
        host="h",
        status="ok",
        msg=Path("/etc/irx"),
        data={
            "when": datetime(2026, 11, 22, 11, 9, 44, 5, tzinfo=UTC),
            "set": {3, 1, 2},
            "tuple": (1, "a"),
            "nan": float("nan"),
            "color": Color.RED,
            "bytes": b"\xffok",
            7: "int-key",
        },
    )
    assert event["msg"] == "/etc/irx"
    assert event["data"] == {
        "when": "2026-11-22T11:09:44.000005Z",
        "set": [1, 2, 3],
        "tuple": [1, "a"],
        "nan": "nan",
        "color": "red",
        "bytes": "\ufffdok",
        "7": "int-key",
    }
    assert read_journal(journal.path).events[0]["data"] == event["data"]


def test_undecodable_output_keeps_the_line_valid(journal: Journal) -> None:
    stdout = b"caf\xe9 \xff".decode("utf-8", errors="surrogateescape")
    journal.event("host_result", step="s", host="h", status="ok", stdout=stdout)
    (event,) = read_valid(journal.path)
    assert event["stdout"] == stdout


def test_misuse_is_a_programming_error(journal: Journal) -> None:
    with pytest.raises(ValueError, match="unknown timeline event type 'coffee'"):
        journal.event("coffee")
    with pytest.raises(ValueError, match="reserved timeline field"):
        journal.event("error", message="m", seq=5)
    journal.close()
    journal.close()  # idempotent
    assert journal.closed
    with pytest.raises(JournalError, match="the journal is closed"):
        journal.event("error", message="late")


# Run in a subprocess: a file size limit makes one write fail halfway, as a full disk would.
FULL_DISK = textwrap.dedent(
    """
    import os, resource, signal, sys
    from pathlib import Path
    from irx.redact import Redactor
    from irx.timeline import Journal, JournalError

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    journal = Journal.create(Path(sys.argv[1]), "r-full", Redactor())
    journal.event("error", message="before")
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (journal.path.stat().st_size + 40, hard))
    try:
        journal.event("error", message="x" * 500)
    except JournalError as exc:
        print(exc)
    resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    journal.event("error", message="after")
    """
)


def test_a_failed_write_loses_only_its_own_event(runs_dir: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", FULL_DISK, str(runs_dir)], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout == f"cannot write the journal {runs_dir / 'r-full' / TIMELINE_FILE}: File too large\n"
    read = read_journal(runs_dir / "r-full")
    assert [event["message"] for event in read.events] == ["before", "after"]
    assert len(read.problems) == 2
    assert read.problems[0].startswith("line 2: not valid JSON")
    assert read.problems[1] == "line 3: seq 3 follows 1 (1 event(s) missing)"


def test_a_run_directory_is_never_reused(runs_dir: Path) -> None:
    Journal.create(runs_dir, "r1", Redactor()).close()
    with pytest.raises(JournalError, match="r1: a run with this id already exists"):
        Journal.create(runs_dir, "r1", Redactor())


@pytest.mark.parametrize("run_id", ["", "../escape", "a/b", ".hidden", "spa ce", "ünï"])
def test_run_ids_are_plain_names(runs_dir: Path, run_id: str) -> None:
    with pytest.raises(UsageError, match="invalid run id"):
        Journal.create(runs_dir, run_id, Redactor())


def test_an_unusable_runs_dir_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(JournalError, match=r"cannot create the run directory .*file/r1: Not a directory"):
        Journal.create(blocker, "r1", Redactor())


def test_files_are_private(journal: Journal) -> None:
    assert journal.path.stat().st_mode & 0o777 == 0o600
    assert journal.run_dir.stat().st_mode & 0o777 == 0o700


def test_threads_record_concurrently_without_losing_or_mixing_events(journal: Journal) -> None:
    def record(worker: int) -> None:
        for number in range(60):
            journal.event("host_result", step=f"t{worker}", host="h", status="ok", stdout=f"{number}\n" * 50)

    threads = [threading.Thread(target=record, args=(worker,)) for worker in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    events = read_valid(journal.path)
    assert len(events) == 8 * 60
    for worker in range(8):
        mine = [event["stdout"] for event in events if event["step"] == f"t{worker}"]
        assert mine == [f"{number}\n" * 50 for number in range(60)]


def test_kill_9_mid_run_loses_no_recorded_event(runs_dir: Path) -> None:
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(runs_dir), "r-killed"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert writer.stdout is not None
        assert writer.stdout.readline() == "ready\n"
        time.sleep(0.3)
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait(timeout=10)
        assert writer.stdout is not None
        writer.stdout.close()
    assert writer.returncode == -signal.SIGKILL
    read = read_journal(runs_dir / "r-killed")
    # At most the line being written when the kill landed is lost, and then it is reported.
    assert read.problems in (
        [],
        [f"line {len(read.events) + 1}: truncated event (the run was killed while writing)"],
    )
    assert len(read.events) > 50
    assert [event["seq"] for event in read.events] == list(range(1, len(read.events) + 1))
    validate_events(read.events)
    assert all("hunter2" not in event.get("stdout", "") for event in read.events)
    assert read.running is False
    assert read.status == "interrupted"
    (summary,) = list_runs(runs_dir)
    assert (summary.status, summary.finished, summary.playbook) == ("interrupted", False, "p")
    assert summary.duration is not None
    assert summary.duration > 0


def test_a_live_run_is_running_and_its_end_is_read(runs_dir: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER_SCRIPT, str(runs_dir), "r-live"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdin is not None
    assert holder.stdout is not None
    try:
        assert holder.stdout.readline() == "started\n"
        (summary,) = list_runs(runs_dir)
        assert summary.status == "running"
        assert read_journal(runs_dir / "r-live").status == "running"
        holder.stdin.write("finish\n")
        holder.stdin.flush()
        assert holder.wait(timeout=30) == 0
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
        holder.stdin.close()
        holder.stdout.close()
    (summary,) = list_runs(runs_dir)
    assert (summary.status, summary.exit_code, summary.duration, summary.finished) == (
        "verified",
        0,
        1.5,
        True,
    )


def test_torn_last_line_is_reported_and_the_rest_kept(journal: Journal) -> None:
    write_full_run(journal)
    data = journal.path.read_bytes()
    journal.path.write_bytes(data[:-25])  # the final event, cut mid-line
    read = read_journal(journal.path)
    lines = data.count(b"\n")
    assert read.problems == [f"line {lines}: truncated event (the run was killed while writing)"]
    assert len(read.events) == lines - 1
    last = read.last("run_finished")  # the first attempt's: the torn one (verified) is not kept
    assert last is not None
    assert last["status"] == "failed"


def test_a_complete_last_line_without_newline_is_kept(journal: Journal) -> None:
    write_full_run(journal)
    journal.path.write_bytes(journal.path.read_bytes()[:-1])
    read = read_journal(journal.path)
    assert read.problems == []
    assert read.status == "verified"


def test_corrupted_lines_are_reported_skipped_never_silent(journal: Journal) -> None:
    for number in range(6):
        journal.event("error", message=f"e{number}")
    lines = journal.path.read_bytes().split(b"\n")
    lines[1] = b'{"v":1,"seq":2,"ts":"2026-'  # torn in the middle (a disk error, an editor)
    lines[2] = b"\xff\xfe garbage"
    lines[3] = b"[1, 2]"
    lines[4] = b""
    journal.path.write_bytes(b"\n".join(lines))
    read = read_journal(journal.path)
    assert [event["message"] for event in read.events] == ["e0", "e5"]
    assert read.problems == [
        "line 2: not valid JSON (Unterminated string starting at: line 1 column 21 (char 20)), skipped",
        "line 3: not valid UTF-8 at byte 0, skipped",
        "line 4: not a JSON object but list, skipped",
        "line 5: empty line",
        "line 6: seq 6 follows 1 (4 event(s) missing)",
    ]


def test_read_journal_accepts_the_run_directory_and_reports_a_missing_one(journal: Journal) -> None:
    journal.event("error", message="m")
    assert len(read_journal(journal.run_dir).events) == 1
    missing = journal.run_dir.parent / "nope"
    with pytest.raises(UsageError, match=f"^{re.escape(str(missing))}: no such run journal$"):
        read_journal(missing)


def test_list_runs_newest_first_with_summaries(runs_dir: Path) -> None:
    assert list_runs(runs_dir) == []
    with Journal.create(runs_dir, "20261122T100000Z-000001", Redactor()) as old:
        run_started(old, mode="dry-run", inventory="staging")
        old.event("run_finished", status="dry_run", exit_code=0, duration=3.25)
    with Journal.create(runs_dir, "20261122T110000Z-000002", Redactor()) as new:
        run_started(new)
        new.event("run_finished", status="failed", exit_code=1, duration=9.0)
    (runs_dir / "not-a-run").mkdir()
    newer, older = list_runs(runs_dir)
    assert newer.to_dict() == {
        "run_id": "20261122T110000Z-000002",
        "path": str(runs_dir / "20261122T110000Z-000002"),
        "status": "failed",
        "playbook": "db-pool-exhausted",
        "inventory": "prod",
        "mode": "run",
        "operator": "alice@laptop",
        "started": newer.started,
        "duration": 9.0,
        "exit_code": 1,
        "finished": True,
        "problems": [],
    }
    assert (older.status, older.mode, older.inventory, older.duration) == (
        "dry_run",
        "dry-run",
        "staging",
        3.25,
    )


def test_list_runs_survives_broken_journals(runs_dir: Path) -> None:
    broken = runs_dir / "20261122T100000Z-badbad"
    broken.mkdir(parents=True)
    (broken / TIMELINE_FILE).write_bytes(b'{"v":1,"se')
    (summary,) = list_runs(runs_dir)
    assert summary.status == "interrupted"
    assert summary.problems == ("the journal does not start with run_started",)


def test_list_runs_reads_the_end_of_a_large_journal(runs_dir: Path) -> None:
    with Journal.create(runs_dir, "big", Redactor(), output_cap=10**6) as journal:
        run_started(journal)
        for _ in range(5):
            journal.event("host_result", step="s", host="h", status="ok", stdout="x" * 300_000)
        journal.event("run_finished", status="rolled_back", exit_code=1, duration=4.0)
    (summary,) = list_runs(runs_dir)
    assert (summary.status, summary.duration) == ("rolled_back", 4.0)


def test_resolve_run(runs_dir: Path) -> None:
    with pytest.raises(UsageError, match="no runs in"):
        resolve_run(runs_dir, "latest")
    for run_id in ("20261122T100000Z-aaaaaa", "20261122T100000Z-abbbbb", "20261123T000000Z-cccccc"):
        Journal.create(runs_dir, run_id, Redactor()).close()
    assert resolve_run(runs_dir, "latest").name == "20261123T000000Z-cccccc"
    assert resolve_run(runs_dir, "20261122T100000Z-aaaaaa").name == "20261122T100000Z-aaaaaa"
    assert resolve_run(runs_dir, "20261122T100000Z-ab").name == "20261122T100000Z-abbbbb"
    with pytest.raises(UsageError, match="run id '20261122' is ambiguous"):
        resolve_run(runs_dir, "20261122")
    with pytest.raises(UsageError, match="no run 'zzz' in"):
        resolve_run(runs_dir, "zzz")


def test_run_ids_sort_by_time_and_are_unique() -> None:
    early = new_run_id(datetime(2026, 11, 22, 11, 9, 44, tzinfo=UTC))
    late = new_run_id(datetime(2026, 11, 22, 11, 9, 45, tzinfo=UTC))
    assert re.match(r"^20261122T110944Z-[0-9a-f]{6}$", early)
    assert early < late
    assert len({new_run_id() for _ in range(200)}) == 200


def test_default_runs_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert default_runs_dir() == Path(".irx/runs")
    monkeypatch.setenv("IRX_RUNS_DIR", str(tmp_path / "elsewhere"))
    assert default_runs_dir() == tmp_path / "elsewhere"


def test_timestamps_and_operator() -> None:
    moment = datetime(2026, 11, 22, 11, 9, 44, 123456, tzinfo=UTC)
    assert utc_timestamp(moment) == "2026-11-22T11:09:44.123456Z"
    assert parse_timestamp(utc_timestamp(moment)) == moment
    assert TS.match(utc_timestamp())
    user, _, host = current_operator().partition("@")
    assert user
    assert host

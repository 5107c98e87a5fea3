"""``irx run`` end to end on localhost (local connection) and three SSH hosts: the phases, decisions from
real diagnostics, rollback, and dry runs that never change anything."""

from __future__ import annotations

import json
import secrets
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg
import pytest
from journal_checks import check_journal, host_results, of_type
from jsonschema import Draft202012Validator

from irx_testenv import NginxServer, PostgresServer

if TYPE_CHECKING:
    from conftest import IrxCli  # tests/integration/conftest.py, which pytest loads as conftest

pytestmark = pytest.mark.integration

SSH_HOSTS = ("web1", "web2", "db1")
ALL_HOSTS = ("localhost", *SSH_HOSTS)
# What `hostname` says on each inventory host: the SSH hosts have their own UTS namespace.
MACHINE = socket.gethostname()
HOSTNAMES = {"localhost": MACHINE, **{name: name for name in SSH_HOSTS}}


def test_full_run_diagnose_conditional_mitigation_verify(
    irx_cli: IrxCli, nginx_server: NginxServer, tmp_path: Path, timeline_validator: Draft202012Validator
) -> None:
    state = tmp_path / "state"
    state.mkdir()
    depths = {"localhost": 1, "web1": 3, "web2": 20, "db1": 0}  # total 24 > threshold 10; max 20 < 1000
    for host, depth in depths.items():
        (state / f"depth-{HOSTNAMES[host]}").write_text(f"{depth}\n")

    ran = irx_cli.run("run-full", "-e", f"state_dir={state}", "-e", f"health_url={nginx_server.health_url}")

    assert ran.rc == 0, ran.output
    assert "VERIFIED" in ran.stdout
    journal = irx_cli.journal()
    check_journal(journal, timeline_validator)
    started, finished = journal.events[0], journal.events[-1]
    assert started["playbook"] == "run-full"
    assert started["mode"] == "run"
    assert started["hosts"] == list(ALL_HOSTS)
    assert (finished["status"], finished["exit_code"]) == ("verified", 0)
    # Ansible's own temporary files lived in irx's session directory, gone with it: none in the places
    # Ansible would use by itself (its strategy ends ansible-playbook without its teardown).
    ansible_temp = [tmp_path / "ansible-local", Path(irx_cli.env["HOME"]) / ".ansible" / "tmp"]
    assert [p for d in ansible_temp if d.exists() for p in d.iterdir()] == []
    assert list(Path(irx_cli.env["TMPDIR"]).glob("irx-ansible-*")) == []
    # Phases and steps in playbook order; restart is decided (skipped) but never executed.
    assert [(e["type"], e["phase"]) for e in journal.events if e["type"].startswith("phase_")] == [
        ("phase_started", "diagnose"), ("phase_finished", "diagnose"),
        ("phase_started", "mitigate"), ("phase_finished", "mitigate"),
        ("phase_started", "verify"), ("phase_finished", "verify"),
    ]  # fmt: skip
    assert [e["step"] for e in of_type(journal, "step_started")] == [
        "whoami", "depth", "backlog_log", "drain", "restart", "drained", "health"
    ]  # fmt: skip
    # Every host answered for itself: local connection and real SSH.
    whoami = host_results(journal, "whoami")
    assert {h: (r["status"], r["stdout"].strip()) for h, r in whoami.items()} == {
        h: ("ok", HOSTNAMES[h]) for h in ALL_HOSTS
    }
    assert {h: r["data"] for h, r in host_results(journal, "depth").items()} == depths
    depth_done = of_type(journal, "step_finished", step="depth")[0]
    assert (depth_done["aggregates"]["total"], depth_done["aggregates"]["max"]) == (24, 20)
    # A long output is parsed whole, and journaled capped, both ends kept, the cut recorded.
    for host, result in host_results(journal, "backlog_log").items():
        assert result["data"] == ["entry 20000"], host
        assert (result["stdout_truncated"], result["cap"]) == (True, 65536)
        assert len(result["stdout"].encode()) <= 65536
        assert result["stdout"].startswith("entry 1\nentry 2\n")
        assert result["stdout"].endswith("entry 19999\nentry 20000")
    # The decisions come from the parsed diagnostics.
    (drain_decision,) = of_type(journal, "decision", step="drain")
    assert (drain_decision["decision"], drain_decision["value"]) == ("run", True)
    (restart_decision,) = of_type(journal, "decision", step="restart")
    assert (restart_decision["decision"], restart_decision["value"]) == ("skip", False)
    assert of_type(journal, "step_finished", step="restart")[0]["status"] == "skipped"
    assert host_results(journal, "restart") == {}
    for step in ("drain", "drained"):
        assert {h: r["status"] for h, r in host_results(journal, step).items()} == dict.fromkeys(ALL_HOSTS, "ok")
    # ... and really happened on every host, and only what was decided.
    assert sorted(p.name for p in state.glob("drained-*")) == sorted(f"drained-{n}" for n in HOSTNAMES.values())
    assert list(state.glob("restarted-*")) == []
    # The HTTP check ran from the control node against the real server.
    health = host_results(journal, "health")["localhost"]
    assert (health["status"], health["data"]) == ("ok", {"status": "ok"})
    # Events were recorded in the order they happened.
    stamps = [e["ts"] for e in journal.events]
    assert stamps == sorted(stamps)


def test_verify_failure_rolls_back_and_verifies_again(
    irx_cli: IrxCli, tmp_path: Path, timeline_validator: Draft202012Validator
) -> None:
    state = tmp_path / "state"
    state.mkdir()

    ran = irx_cli.run("run-rollback", "-e", f"state_dir={state}")

    assert ran.rc == 1, ran.output
    assert "ROLLED BACK" in ran.stdout
    journal = irx_cli.journal()
    check_journal(journal, timeline_validator)
    finished = journal.events[-1]
    assert (finished["status"], finished["exit_code"]) == ("rolled_back", 1)
    assert "verify step 'healthy' failed" in finished["reason"]
    assert [(e["phase"], e["status"]) for e in of_type(journal, "phase_finished")] == [
        ("mitigate", "ok"),
        ("verify", "failed"),
        ("rollback", "ok"),
        ("verify", "ok"),
    ]
    (rollback,) = of_type(journal, "decision", decision="rollback")
    phases = [e["phase"] for e in of_type(journal, "phase_started")]
    assert journal.events.index(rollback) < journal.events.index(of_type(journal, "phase_started")[2])
    assert phases == ["mitigate", "verify", "rollback", "verify"]
    assert [e["step"] for e in of_type(journal, "step_started")] == ["change", "healthy", "undo", "healthy"]
    first_verify, second_verify = (
        [e for e in of_type(journal, "host_result", step="healthy") if e["seq"] < rollback["seq"]],
        [e for e in of_type(journal, "host_result", step="healthy") if e["seq"] > rollback["seq"]],
    )
    assert {e["host"]: (e["status"], e["rc"]) for e in first_verify} == dict.fromkeys(ALL_HOSTS, ("failed", 1))
    assert {e["host"]: e["status"] for e in second_verify} == dict.fromkeys(ALL_HOSTS, "ok")
    # The rollback really undid the change on every host.
    assert list(state.glob("changed-*")) == []
    assert sorted(p.name for p in state.glob("healthy-*")) == sorted(f"healthy-{n}" for n in HOSTNAMES.values())


def test_a_dry_run_whose_verification_fails_says_so_everywhere(
    irx_cli: IrxCli, tmp_path: Path, timeline_validator: Draft202012Validator
) -> None:
    """Console, channel message, journal, Markdown and HTML agree: verification failed, nothing resolved."""
    state = tmp_path / "state"
    state.mkdir()
    (state / "backlog").write_text("5\n")
    args = ("--dry-run", "-e", f"state_dir={state}", "-e", "verify_file=missing", "-l", "localhost")

    ran = irx_cli.run("run-gated", *args, env={"IRX_NOTIFY_FILE": str(tmp_path / "messages.log")})

    assert ran.rc == 0, ran.output
    assert "DRY RUN: VERIFICATION FAILED in " in ran.stdout
    assert "message failed (not sent in a dry run): [DRY RUN] 🧪 VERIFICATION FAILED - SEV2" in ran.stdout
    journal = irx_cli.journal()
    check_journal(journal, timeline_validator)
    finished = journal.events[-1]
    assert (finished["status"], finished["verdict"]) == ("dry_run", "verification_failed")
    (final,) = [e for e in of_type(journal, "notification") if e["kind"] == "failed"]
    assert final["message"].startswith("[DRY RUN] 🧪 VERIFICATION FAILED - SEV2 - A mitigation that needs an approval")
    assert "a real run would not resolve this" in final["message"]
    markdown = irx_cli.irx("report", "latest", "--runs-dir", str(irx_cli.runs_dir))
    assert markdown.rc == 0, markdown.output
    assert "**Status**: DRY_RUN (VERIFICATION FAILED)" in markdown.stdout
    assert "verification (or a step before it) failed, so a real run would roll back" in markdown.stdout
    html = irx_cli.irx("report", "latest", "--runs-dir", str(irx_cli.runs_dir), "--format", "html")
    assert html.rc == 0, html.output
    assert "<dt>Outcome</dt><dd>DRY RUN: VERIFICATION FAILED</dd>" in html.stdout
    for text in (ran.stdout, markdown.stdout, html.stdout, json.dumps(journal.events, ensure_ascii=False)):
        assert "RESOLVED" not in text


def test_dry_run_runs_read_only_steps_and_never_mutates(
    irx_cli: IrxCli, tmp_path: Path, timeline_validator: Draft202012Validator
) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / "backlog").write_text("5\n")

    messages = tmp_path / "messages.log"
    ran = irx_cli.run("run-gated", "--dry-run", "-e", f"state_dir={state}", env={"IRX_NOTIFY_FILE": str(messages)})

    assert ran.rc == 0, ran.output
    assert "DRY RUN: WOULD RESOLVE in " in ran.stdout
    assert "message resolved (not sent in a dry run): [DRY RUN] 🧪 WOULD RESOLVE - SEV2" in ran.stdout
    assert not messages.exists()  # rendered, never sent
    assert "message initial (not sent in a dry run): [DRY RUN]" in ran.stdout  # shown, never sent
    journal = irx_cli.journal()
    check_journal(journal, timeline_validator)
    assert journal.events[0]["mode"] == "dry-run"
    assert (journal.events[-1]["status"], journal.events[-1]["exit_code"]) == ("dry_run", 0)
    assert journal.events[-1]["verdict"] == "would_resolve"
    assert "RESOLVED" not in json.dumps(journal.events, ensure_ascii=False)  # a dry run never reads as resolved
    # The read-only diagnostic really ran on every host, and its parsed result drove the decision.
    probe = host_results(journal, "probe")
    assert {h: (r["status"], r["data"]) for h, r in probe.items()} == {
        h: ("ok", [{"host": HOSTNAMES[h], "backlog": "5"}]) for h in ALL_HOSTS
    }
    assert [(e["decision"], e.get("value")) for e in of_type(journal, "decision", step="fix")] == [
        ("run", True),
        ("would_run", None),
    ]
    # The gated, mutating step would run (the journal says so, with its hosts), but did not: no approval was
    # asked, nothing ran, and its canary is absent on every host.
    (fix_started,) = of_type(journal, "step_started", step="fix")
    assert (fix_started["mutating"], fix_started["hosts"]) == (True, list(ALL_HOSTS))
    assert of_type(journal, "step_finished", step="fix")[0]["status"] == "would_run"
    assert host_results(journal, "fix") == {}
    assert of_type(journal, "approval") == []
    assert list(state.glob("canary-*")) == []
    assert "fix: would run (dry run: mutating steps never run)" in ran.stdout
    # The read-only verification ran for real.
    assert {h: r["status"] for h, r in host_results(journal, "checked").items()} == dict.fromkeys(ALL_HOSTS, "ok")
    # A dry run takes no run lock.
    assert not (tmp_path / "locks").exists() or list((tmp_path / "locks").iterdir()) == []


def test_db_pool_exhausted_is_remediated_on_a_real_postgresql(
    irx_cli: IrxCli,
    pg_server: PostgresServer,
    nginx_server: NginxServer,
    repo: Path,
    timeline_validator: Draft202012Validator,
) -> None:
    """The shipped playbook, the default inventory (this machine), a real pool exhausted by idle sessions."""
    role = f"irxpool{secrets.token_hex(3)}"  # the server is shared by the session: a role of our own
    app_dsn = pg_server.create_role_and_db(role, "pool-password")
    held: list[psycopg.Connection[Any]] = []
    try:
        refusal = ""
        while not refusal and len(held) < 30:  # until PostgreSQL refuses the role: the pool is exhausted
            try:
                held.append(psycopg.connect(app_dsn))
            except psycopg.OperationalError as exc:
                refusal = str(exc)
        assert "reserved" in refusal
        assert len(held) >= 10

        ran = irx_cli.irx(
            "run", "db-pool-exhausted", "-p", str(repo / "playbooks"), "--yes",
            "-e", f"pg_dsn={pg_server.dsn}", "-e", f"app_user={role}", "-e", "restart_app=false",
            "-e", f"health_url={nginx_server.health_url}",
        )  # fmt: skip

        assert ran.rc == 0, ran.output
        journal = irx_cli.journal()
        check_journal(journal, timeline_validator)
        assert journal.events[0]["inventory"] == "local"
        assert journal.events[0]["params"]["pg_dsn"] == pg_server.dsn  # holds no password: not a secret
        assert journal.events[0]["params"]["pg_password"] == "******"
        assert journal.events[-1]["status"] == "verified"
        assert host_results(journal, "app_idle")["localhost"]["data"] == len(held)
        assert [(e["decision"], e["value"]) for e in of_type(journal, "decision", step="terminate_idle")] == [
            ("run", True)
        ]
        terminated = host_results(journal, "terminate_idle")["localhost"]
        assert (terminated["status"], terminated["data"]) == ("ok", len(held))
        assert of_type(journal, "step_finished", step="restart_app")[0]["status"] == "skipped"
        # The application can connect again.
        with psycopg.connect(app_dsn) as conn:
            assert conn.execute("SELECT current_user").fetchone() == (role,)
    finally:
        for conn in held:
            conn.close()

"""The on-call loop end to end, every piece real: a leaking application → alert → ``irx serve`` → a run.

A real PostgreSQL, ``postgres_exporter`` scraping it, Prometheus evaluating an alert rule on
``pg_stat_activity_count``, Alertmanager delivering its webhook with a bearer token to a real
``irx serve``, which routes the group to the shipped ``db-pool-exhausted`` playbook in dry-run mode
(real read-only diagnostics with psql against the test cluster, nothing changed). The fault is an
application role holding three times the threshold of idle sessions; closing them resolves the alert.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from alert_loop import SESSIONS, THRESHOLD, idle_rule, incidents, poll, serving

from conftest import IrxCli
from irx.timeline import read_journal
from irx_testenv import AlertmanagerServer, PostgresExporter, PostgresServer, PrometheusServer, leftovers

pytestmark = pytest.mark.integration

TOKEN = "a1b2c3d4e5f60718293a4b5c6d7e8f90"
APP_ROLE = "leaky"
RULE = idle_rule(APP_ROLE)


def _ts(event: dict[str, Any]) -> float:
    return datetime.fromisoformat(str(event["ts"]).replace("Z", "+00:00")).timestamp()


@pytest.fixture
def irx_serve(irx_cli: IrxCli, pg_server: PostgresServer, tmp_path: Path) -> Iterator[tuple[str, Path, Path]]:
    """``irx serve`` on a loopback port routing the alert to db-pool-exhausted (dry-run): (url, state, log)."""
    with serving(irx_cli, pg_server, tmp_path, TOKEN, {"mode": "dry-run"}) as served:
        yield served


def test_leaking_sessions_alert_reaches_irx_serve_and_start_one_run(
    irx_serve: tuple[str, Path, Path], irx_cli: IrxCli, pg_server: PostgresServer, tmp_path: Path
) -> None:
    url, state, log = irx_serve
    app_dsn = pg_server.create_role_and_db(APP_ROLE, "leak-pw")
    with (
        PostgresExporter(pg_server, base_dir=tmp_path) as exporter,
        AlertmanagerServer(f"{url}/alerts/alertmanager", TOKEN, base_dir=tmp_path, uid=exporter.uid,
                           repeat_interval="4s") as alertmanager,
        PrometheusServer({"postgres": [exporter.address]}, [RULE], [alertmanager.address], base_dir=tmp_path,
                         uid=exporter.uid) as prometheus,
    ):  # fmt: skip
        poll("Prometheus to scrape the exporter", prometheus.targets_up, 60, log)
        assert incidents(state) == []  # no fault, no alert

        # The leaking application: sessions opened and left idle.
        opened = time.time()
        sessions = [psycopg.connect(app_dsn, autocommit=True) for _ in range(SESSIONS)]
        try:
            [incident] = poll("the webhook to open an incident", lambda: incidents(state), 90, log)
            webhook_s = incident["opened"] - opened
            assert incident["labels"]["alertname"] == "PgIdleSessionsHigh"
            assert incident["labels"]["usename"] == APP_ROLE
            assert incident["labels"]["datname"] == APP_ROLE
            assert incident["labels"]["instance"] == exporter.address
            assert incident["route"] == "pg-idle-sessions"

            first_step = poll("the run's first step result", lambda: _first_step(irx_cli), 120, log)
            step_s = _ts(first_step) - opened

            # Alertmanager repeats the firing group (repeat_interval 4s): still one incident.
            repeated = poll("a repeated notification", lambda: _with(state, lambda i: i["notifications"] >= 2),
                             60, log)  # fmt: skip
            assert len(repeated) == 1
            finished = poll("the dry run to finish", lambda: _with(state, lambda i: i["state"] == "finished"),
                             180, log)  # fmt: skip
            # A dry run changes nothing: every leaked session is still there after it.
            still = pg_server.psql(f"SELECT count(*) FROM pg_stat_activity WHERE usename = '{APP_ROLE}'")
            assert int(still) == SESSIONS
        finally:
            for session in sessions:
                session.close()
        closed = time.time()
        [resolved] = poll("the resolution", lambda: _with(state, lambda i: i["status"] == "resolved"), 90, log)
        resolved_s = resolved["resolved_at"] - closed
        assert resolved["id"] == incident["id"] == finished[0]["id"]
        assert resolved["resolved_at"] is not None
        assert len(incidents(state)) == 1
    assert leftovers(exporter.uid) == []

    [journal] = irx_cli.journals()
    events = read_journal(journal).events
    started = events[0]
    assert started["type"] == "run_started"
    assert started["run_id"] == resolved["run_id"] == journal.parent.name
    assert started["params"]["app_user"] == APP_ROLE  # the alert's label, as a plain value
    assert started["params"]["pg_dsn"].endswith(f":{pg_server.port}/postgres")
    assert started["params"]["idle_threshold"] == THRESHOLD
    assert started["mode"] == "dry-run"
    trigger = started["trigger"]  # the post-mortem names the alert and times the incident from it
    assert (trigger["source"], trigger["incident"], trigger["route"]) == (
        "alertmanager",
        incident["id"],
        "pg-idle-sessions",
    )
    assert trigger["alertname"] == "PgIdleSessionsHigh"
    assert trigger["labels"]["usename"] == APP_ROLE
    report = irx_cli.irx("report", started["run_id"], "--runs-dir", str(irx_cli.runs_dir))
    assert report.rc == 0, report.output
    assert "**Trigger**: alertmanager alert PgIdleSessionsHigh (incident " in report.stdout
    assert "| Time from alert to first diagnostic result |" in report.stdout
    # The real diagnostics saw the leak; the mitigation that would end it never ran.
    idle = [e for e in events if e["type"] == "host_result" and e["step"] == "app_idle"]
    assert [e["data"] for e in idle] == [SESSIONS]
    assert not [e for e in events if e["type"] == "host_result" and e["step"].startswith("terminate")]
    assert events[-1]["type"] == "run_finished"
    assert events[-1]["status"] == "dry_run"
    assert resolved["outcome"] == "dry_run"  # the journal's status: a dry run never reads as verified
    print(
        f"\nalert loop: sessions opened -> webhook (incident opened) {webhook_s:.2f}s, "
        f"-> first step result {step_s:.2f}s; sessions closed -> resolved {resolved_s:.2f}s; "
        f"notifications {resolved['notifications']}; run outcome {resolved['outcome']!r}"
    )


def _with(state: Path, predicate: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
    found = incidents(state)
    return found if found and all(predicate(i) for i in found) else []


def _first_step(irx_cli: IrxCli) -> dict[str, Any] | None:
    for path in irx_cli.journals():
        for event in read_journal(path).events:
            if event["type"] in ("host_result", "step_finished"):
                return event
    return None

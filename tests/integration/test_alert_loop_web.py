"""The on-call loop closed by a person on the approval page, every piece real: a leaking application → a
real PostgreSQL → ``postgres_exporter`` → Prometheus → Alertmanager → ``irx serve --approvers`` → a run of
the shipped ``db-pool-exhausted`` in ``mode: run`` that waits at its gate ``terminate_idle`` → an approver
in headless Chromium logs in, reads the exact psql it would run, approves → the idle sessions are
terminated, verification passes, and the alert resolves.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml
from alert_loop import SESSIONS, idle_rule, incidents, poll, serving
from browser import Browser

from conftest import IrxCli
from irx.approvers import hash_password
from irx.timeline import read_journal
from irx_testenv import AlertmanagerServer, PostgresExporter, PostgresServer, PrometheusServer

pytestmark = pytest.mark.integration

TOKEN = "f0e1d2c3b4a5968778695a4b3c2d1e0f"
APP_ROLE = "leakyweb"  # its own role: test_alert_loop.py uses "leaky" on the same PostgreSQL
PASSWORD = "on-call pager duty"
RULE = idle_rule(APP_ROLE)
ROUTE = {"mode": "run", "approval_timeout": "5m", "params": {"restart_app": False}}


def _approvers(tmp_path: Path) -> Path:
    approvers = tmp_path / "approvers.yaml"
    approvers.write_text(yaml.safe_dump({"apiVersion": "irx/v1", "kind": "Approvers", "users": [
        {"name": "carol", "groups": ["dba"], "password": hash_password(PASSWORD)}]}))  # fmt: skip
    approvers.chmod(0o600)
    return approvers


def _waiting_gate(irx_cli: IrxCli) -> dict[str, Any] | None:
    for path in irx_cli.journals():
        for event in read_journal(path).events:
            if event["type"] == "approval_requested":
                return event
    return None


def test_an_alert_run_waits_at_its_gate_until_an_approver_approves_it_in_chromium(
    irx_cli: IrxCli, pg_server: PostgresServer, tmp_path: Path
) -> None:
    app_dsn = pg_server.create_role_and_db(APP_ROLE, "leak-pw")
    with (
        serving(irx_cli, pg_server, tmp_path, TOKEN, ROUTE, ["--approvers", str(_approvers(tmp_path))]) as (
            url, state, log),
        PostgresExporter(pg_server, base_dir=tmp_path) as exporter,
        AlertmanagerServer(f"{url}/alerts/alertmanager", TOKEN, base_dir=tmp_path, uid=exporter.uid,
                           repeat_interval="4s") as alertmanager,
        PrometheusServer({"postgres": [exporter.address]}, [RULE], [alertmanager.address], base_dir=tmp_path,
                         uid=exporter.uid) as prometheus,
    ):  # fmt: skip
        poll("Prometheus to scrape the exporter", prometheus.targets_up, 60, log)
        sessions = [psycopg.connect(app_dsn, autocommit=True) for _ in range(SESSIONS)]
        try:
            gate = poll("the alert's run to wait at its gate", lambda: _waiting_gate(irx_cli), 180, log)
            assert gate["step"] == "terminate_idle"
            with Browser(tmp_path / "chromium") as browser:
                tab = browser.tab()
                tab.open(f"{url}/runs")
                tab.type("#name", "carol")
                tab.type("#password", PASSWORD)
                tab.click("#submit")
                tab.wait_for(f'!!document.querySelector(\'tr[data-run="{gate["run_id"]}"][data-state="waiting"]\')')
                tab.click(f'tr[data-run="{gate["run_id"]}"] a')
                tab.wait_for(f"location.pathname === '/runs/{gate['run_id']}' && !!document.querySelector('#gate')")
                assert tab.text("#gate-hash") == gate["approval_hash"]
                assert "pg_terminate_backend(pid)" in tab.text("#gate-summary")
                assert f"-v app_user={APP_ROLE}" in tab.text("#gate-summary")
                tab.click("#approve")
                tab.wait_for("document.querySelector('#status')?.dataset.status === 'verified'", timeout=180)
            left = pg_server.psql(f"SELECT count(*) FROM pg_stat_activity WHERE usename = '{APP_ROLE}'")
            assert int(left) == 0  # the approved mitigation ended every idle session of the leak
        finally:
            for session in sessions:
                with contextlib.suppress(psycopg.Error):
                    session.close()
        [incident] = poll("the incident to finish", lambda: [i for i in incidents(state) if i["state"] == "finished"],
                           60, log)  # fmt: skip
        assert incident["outcome"] == "verified"
        poll("the resolution", lambda: [i for i in incidents(state) if i["status"] == "resolved"], 120, log)
    [journal] = irx_cli.journals()
    events = read_journal(journal).events
    [approval] = [e for e in events if e["type"] == "approval" and e["step"] == "terminate_idle"]
    assert (approval["approved"], approval["method"], approval["by"]) == (True, "web", "carol")
    assert approval["approval_hash"] == gate["approval_hash"]
    terminated = [e for e in events if e["type"] == "host_result" and e["step"] == "terminate_idle"]
    assert [e["data"] for e in terminated] == [SESSIONS]
    assert events[-1]["status"] == "verified"

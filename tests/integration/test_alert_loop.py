"""The on-call loop end to end, every piece real: a leaking application → alert → ``irx serve`` → a run.

A real PostgreSQL, ``postgres_exporter`` scraping it, Prometheus evaluating an alert rule on
``pg_stat_activity_count``, Alertmanager delivering its webhook with a bearer token to a real
``irx serve``, which routes the group to the shipped ``db-pool-exhausted`` playbook in dry-run mode
(real read-only diagnostics with psql against the test cluster, nothing changed). The fault is an
application role holding three times the threshold of idle sessions; closing them resolves the alert.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import yaml

from conftest import VENV_BIN, IrxCli
from irx.timeline import read_journal
from irx_testenv import AlertmanagerServer, PostgresExporter, PostgresServer, PrometheusServer, free_port, leftovers

pytestmark = pytest.mark.integration

TOKEN = "a1b2c3d4e5f60718293a4b5c6d7e8f90"
APP_ROLE = "leaky"
THRESHOLD = 5
SESSIONS = 3 * THRESHOLD  # the fault dominates: three times the threshold
SHIPPED_PLAYBOOKS = Path(__file__).resolve().parents[2] / "playbooks"
RULE = {
    "alert": "PgIdleSessionsHigh",
    "expr": f'sum by (instance, datname) (pg_stat_activity_count{{datname="{APP_ROLE}", state="idle"}}) > {THRESHOLD}',
    "labels": {"severity": "page", "usename": APP_ROLE},
    "annotations": {"summary": "{{ $value }} idle sessions on {{ $labels.datname }} at {{ $labels.instance }}"},
}


def _poll(what: str, probe: Callable[[], Any], timeout: float, log: Path) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(0.1)
    pytest.fail(f"timed out after {timeout:g}s waiting for {what}\n--- irx serve log\n{log.read_text()}")


def _incidents(state: Path) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted((state / "incidents").glob("*/[0-9]*.json"))]


def _ts(event: dict[str, Any]) -> float:
    return datetime.fromisoformat(str(event["ts"]).replace("Z", "+00:00")).timestamp()


@pytest.fixture
def irx_serve(irx_cli: IrxCli, pg_server: PostgresServer, tmp_path: Path) -> Iterator[tuple[str, Path, Path]]:
    """``irx serve`` on a loopback port routing the alert to db-pool-exhausted (dry-run): (url, state, log)."""
    inventory = tmp_path / "db-inventory.yml"
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    inventory.write_text(yaml.safe_dump({"all": {
        "hosts": {"localhost": local},
        "children": {"dbservers": {"hosts": {"localhost": {}}}, "app": {"hosts": {"localhost": {}}}},
    }}))  # fmt: skip
    routes = {
        "apiVersion": "irx/v1",
        "kind": "Routes",
        "routes": [
            {
                "name": "pg-idle-sessions",
                "match": ['alertname="PgIdleSessionsHigh"', 'severity="page"'],
                "playbook": "db-pool-exhausted",
                "inventory": str(inventory),
                "params": {
                    "pg_dsn": f"postgresql://{pg_server.superuser}@{pg_server.host}:{pg_server.port}/postgres",
                    "app_user": {"label": "usename"},
                    "idle_threshold": THRESHOLD,
                    "check_health": False,
                },
                "mode": "dry-run",
            }
        ],
    }
    routes_path = tmp_path / "routes.yaml"
    routes_path.write_text(yaml.safe_dump(routes, sort_keys=False))
    tokens = tmp_path / "tokens"
    tokens.write_text(f"# Alertmanager\n{TOKEN}\n")
    tokens.chmod(0o600)
    port, state, log = free_port(), tmp_path / "serve", tmp_path / "serve.log"
    argv = [str(VENV_BIN / "irx"), "serve", "--routes", str(routes_path), "--token-file", str(tokens),
            "--port", str(port), "-p", str(SHIPPED_PLAYBOOKS), "--state-dir", str(state)]  # fmt: skip
    with open(log, "a") as out:
        proc = subprocess.Popen(argv, cwd=irx_cli.cwd, env=irx_cli.env, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, text=True)  # fmt: skip
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        assert proc.poll() is None, log.read_text()
        try:
            return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    try:
        _poll("irx serve to answer", healthy, 30, log)
        yield url, state, log
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        assert "Traceback" not in log.read_text(), log.read_text()


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
        _poll("Prometheus to scrape the exporter", prometheus.targets_up, 60, log)
        assert _incidents(state) == []  # no fault, no alert

        # The leaking application: sessions opened and left idle.
        opened = time.time()
        sessions = [psycopg.connect(app_dsn, autocommit=True) for _ in range(SESSIONS)]
        try:
            [incident] = _poll("the webhook to open an incident", lambda: _incidents(state), 90, log)
            webhook_s = incident["opened"] - opened
            assert incident["labels"]["alertname"] == "PgIdleSessionsHigh"
            assert incident["labels"]["usename"] == APP_ROLE
            assert incident["labels"]["datname"] == APP_ROLE
            assert incident["labels"]["instance"] == exporter.address
            assert incident["route"] == "pg-idle-sessions"

            first_step = _poll("the run's first step result", lambda: _first_step(irx_cli), 120, log)
            step_s = _ts(first_step) - opened

            # Alertmanager repeats the firing group (repeat_interval 4s): still one incident.
            repeated = _poll("a repeated notification", lambda: _with(state, lambda i: i["notifications"] >= 2),
                             60, log)  # fmt: skip
            assert len(repeated) == 1
            finished = _poll("the dry run to finish", lambda: _with(state, lambda i: i["state"] == "finished"),
                             180, log)  # fmt: skip
            # A dry run changes nothing: every leaked session is still there after it.
            still = pg_server.psql(f"SELECT count(*) FROM pg_stat_activity WHERE usename = '{APP_ROLE}'")
            assert int(still) == SESSIONS
        finally:
            for session in sessions:
                session.close()
        closed = time.time()
        [resolved] = _poll("the resolution", lambda: _with(state, lambda i: i["status"] == "resolved"), 90, log)
        resolved_s = resolved["resolved_at"] - closed
        assert resolved["id"] == incident["id"] == finished[0]["id"]
        assert resolved["resolved_at"] is not None
        assert len(_incidents(state)) == 1
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
    found = _incidents(state)
    return found if found and all(predicate(i) for i in found) else []


def _first_step(irx_cli: IrxCli) -> dict[str, Any] | None:
    for path in irx_cli.journals():
        for event in read_journal(path).events:
            if event["type"] in ("host_result", "step_finished"):
                return event
    return None

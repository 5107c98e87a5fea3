"""What the alert-loop tests share: a real ``irx serve`` routing a PostgreSQL idle-session alert to the
shipped ``db-pool-exhausted`` on a local inventory, the alert rule, and polling its incident book."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from conftest import VENV_BIN, IrxCli
from irx_testenv import PostgresServer, free_port

SHIPPED_PLAYBOOKS = Path(__file__).resolve().parents[2] / "playbooks"
THRESHOLD = 5
SESSIONS = 3 * THRESHOLD  # the fault dominates: three times the threshold


def idle_rule(app_role: str) -> dict[str, Any]:
    """The Prometheus rule: more than THRESHOLD idle sessions of ``app_role``'s database."""
    return {
        "alert": "PgIdleSessionsHigh",
        "expr": f'sum by (instance, datname) (pg_stat_activity_count{{datname="{app_role}", state="idle"}}) '
        f"> {THRESHOLD}",
        "labels": {"severity": "page", "usename": app_role},
        "annotations": {"summary": "{{ $value }} idle sessions on {{ $labels.datname }} at {{ $labels.instance }}"},
    }


def poll(what: str, probe: Callable[[], Any], timeout: float, log: Path) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(0.1)
    pytest.fail(f"timed out after {timeout:g}s waiting for {what}\n--- irx serve log\n{log.read_text()}")


def incidents(state: Path) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted((state / "incidents").glob("*/[0-9]*.json"))]


@contextlib.contextmanager
def serving(
    irx_cli: IrxCli, pg_server: PostgresServer, tmp_path: Path, token: str, route: Mapping[str, Any],
    extra: Sequence[str] = (),
) -> Iterator[tuple[str, Path, Path]]:  # fmt: skip
    """``irx serve`` on a loopback port with one route to db-pool-exhausted on this machine (``route`` adds
    its mode and params to the shared ones): (url, state dir, log). Stopped with SIGTERM; no traceback."""
    inventory = tmp_path / "db-inventory.yml"
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    inventory.write_text(yaml.safe_dump({"all": {
        "hosts": {"localhost": local},
        "children": {"dbservers": {"hosts": {"localhost": {}}}, "app": {"hosts": {"localhost": {}}}},
    }}))  # fmt: skip
    params = {
        "pg_dsn": f"postgresql://{pg_server.superuser}@{pg_server.host}:{pg_server.port}/postgres",
        "app_user": {"label": "usename"},
        "idle_threshold": THRESHOLD,
        "check_health": False,
    }
    full = {
        "name": "pg-idle-sessions",
        "match": ['alertname="PgIdleSessionsHigh"', 'severity="page"'],
        "playbook": "db-pool-exhausted",
        "inventory": str(inventory),
        **route,
        "params": {**params, **route.get("params", {})},
    }
    routes = tmp_path / "routes.yaml"
    routes.write_text(yaml.safe_dump({"apiVersion": "irx/v1", "kind": "Routes", "routes": [full]}, sort_keys=False))
    tokens = tmp_path / "tokens"
    tokens.write_text(f"# Alertmanager\n{token}\n")
    tokens.chmod(0o600)
    port, state, log = free_port(), tmp_path / "serve", tmp_path / "serve.log"
    argv = [str(VENV_BIN / "irx"), "serve", "--routes", str(routes), "--token-file", str(tokens), "--port", str(port),
            "-p", str(SHIPPED_PLAYBOOKS), "--state-dir", str(state), *extra]  # fmt: skip
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
        poll("irx serve to answer", healthy, 30, log)
        yield url, state, log
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        assert "Traceback" not in log.read_text(), log.read_text()

"""The alerting services of the test environment: they start, answer, deliver, and leave nothing behind."""

from __future__ import annotations

import http.server
import json
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from irx_testenv import (
    AlertmanagerServer,
    PostgresExporter,
    PostgresServer,
    PrometheusServer,
    TestEnvError,
    leftovers,
)
from irx_testenv._proc import port_open

pytestmark = pytest.mark.integration


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[tuple[str | None, dict[str, Any]]]]]:
    """A webhook receiver on a loopback port: (url, [(Authorization header, JSON body), ...])."""
    got: list[tuple[str | None, dict[str, Any]]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            got.append((self.headers.get("Authorization"), json.loads(body)))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/hook", got
    finally:
        server.shutdown()
        server.server_close()


def _listening(pid: int) -> set[str]:
    out = subprocess.run(["ss", "-Hltnp"], capture_output=True, text=True, timeout=10, check=True).stdout
    return {line.split()[3] for line in out.splitlines() if f"pid={pid}," in line}


def test_the_chain_starts_delivers_with_the_token_and_stops_clean(
    pg_server: PostgresServer, tmp_path: Path, receiver: tuple[str, list[tuple[str | None, dict[str, Any]]]]
) -> None:
    url, got = receiver
    rule = {"alert": "ExporterSeesPostgres", "expr": "pg_up == 1", "labels": {"team": "irx"}}
    exporter = PostgresExporter(pg_server, base_dir=tmp_path)
    alertmanager = AlertmanagerServer(url, "secret-token", base_dir=tmp_path, uid=exporter.uid)
    prometheus = PrometheusServer(
        {"pg": [exporter.address]}, [rule], [alertmanager.address], base_dir=tmp_path, uid=exporter.uid
    )
    with exporter, alertmanager, prometheus:
        assert "pg_stat_activity_count" in exporter.metrics()
        assert oct(alertmanager.config_path.stat().st_mode & 0o777) == "0o600"
        # Only loopback listeners: in particular no gossip port on 0.0.0.0:9094.
        for service in (exporter, alertmanager, prometheus):
            assert service.running
            assert service._proc is not None
            assert _listening(service._proc.pid) == {service.address}
        deadline = time.monotonic() + 60
        while not got and time.monotonic() < deadline:
            time.sleep(0.1)
        assert got, f"no webhook within 60s; Prometheus alerts: {prometheus.alerts()}"
        authorization, body = got[0]
        assert authorization == "Bearer secret-token"
        assert body["version"] == "4"
        assert body["status"] == "firing"
        labels = {"alertname": "ExporterSeesPostgres", "team": "irx", "instance": exporter.address, "job": "pg"}
        assert body["commonLabels"] == labels
        assert [a["labels"]["alertname"] for a in alertmanager.alerts()] == ["ExporterSeesPostgres"]
        assert prometheus.query("pg_up")[0]["value"][1] == "1"
    for service in (exporter, alertmanager, prometheus):
        assert not service.running
        assert not port_open("127.0.0.1", service.port)
    assert leftovers(exporter.uid) == []


def test_a_bad_rule_fails_start_loudly_and_leaves_nothing(tmp_path: Path) -> None:
    prometheus = PrometheusServer(rules=[{"alert": "Broken", "expr": "sum(("}], base_dir=tmp_path)
    with pytest.raises(TestEnvError, match="prometheus exited"):
        prometheus.start()
    assert not port_open("127.0.0.1", prometheus.port)
    assert leftovers(prometheus.uid) == []

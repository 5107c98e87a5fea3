"""What the person paged is told, and a storm of alerts, through a real ``irx serve`` on the control node.

Real processes throughout: ``irx serve`` on a loopback port, the ``irx run`` processes it starts (Ansible on
``localhost``, no SSH), a webhook channel that is an HTTP server started by the test and records what it is
sent. The alerts are Alertmanager's webhook v4 bodies, POSTed with the bearer token.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from test_serve import TOKEN, Server, _free_port, notification, stop_server

from conftest import RUN_PLAYBOOKS, VENV_BIN
from irx.timeline import read_journal

pytestmark = pytest.mark.integration
PUBLIC = "https://irx.example.test:8443"  # scheme and host (the page is served at the root)


class Channel(ThreadingHTTPServer):
    """A webhook channel: records each POSTed JSON body with the time it arrived."""

    daemon_threads = True
    block_on_close = False

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _ChannelHandler)
        self.received: list[tuple[float, dict[str, Any]]] = []
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}/hook"

    def messages(self) -> list[dict[str, Any]]:
        with self.lock:
            return [body for _, body in self.received]


class _ChannelHandler(BaseHTTPRequestHandler):
    server: Channel

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
        with self.server.lock:
            self.server.received.append((time.time(), body))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def channel() -> Iterator[Channel]:
    server = Channel()
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), name="channel", daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@dataclass
class Local:
    """Where the runs of these tests live: their environment, inventory (localhost only) and journals."""

    tmp: Path
    env: dict[str, str]
    inventory: Path
    runs_dir: Path

    def journals(self) -> list[Path]:
        return sorted(self.runs_dir.glob("*/timeline.jsonl"))

    def irx(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(VENV_BIN / "irx"), *args], cwd=self.tmp, env=self.env, capture_output=True,
                              text=True, timeout=60, check=False, stdin=subprocess.DEVNULL)  # fmt: skip


@pytest.fixture
def local(tmp_path: Path, channel: Channel) -> Local:
    for name in ("home", "t"):
        (tmp_path / name).mkdir()
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(yaml.safe_dump({"all": {
        "hosts": {"localhost": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}},
        "vars": {"irx_notify": [{"name": "oncall", "kind": "webhook", "url": channel.url}]},
    }}))  # fmt: skip
    env = {
        **os.environ,  # already cleaned and pinned by the autouse clean_env fixture
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
        "HOME": str(tmp_path / "home"),
        "TMPDIR": str(tmp_path / "t"),
        "IRX_RUNS_DIR": str(tmp_path / "runs"),
        "IRX_LOCK_DIR": str(tmp_path / "locks"),
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-local"),
        "PYTHONUNBUFFERED": "1",
    }
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        env.pop(name, None)  # the channel is on loopback: no proxy in between
    return Local(tmp_path, env, inventory, tmp_path / "runs")


def serve(local: Local, mode: str, max_concurrent: int, *args: str) -> Server:
    """``irx serve`` with one route (alertname QueueBacklog*) to serve-diagnose on the local inventory."""
    route = {"name": "queue", "match": ['alertname=~"QueueBacklog.*"'], "playbook": "serve-diagnose",
             "inventory": str(local.inventory), "params": {"queue": {"label": "queue"}}, "mode": mode}  # fmt: skip
    if mode == "run":
        route["approval_timeout"] = "90s"
    routes = local.tmp / "routes.yaml"
    routes.write_text(yaml.safe_dump({"apiVersion": "irx/v1", "kind": "Routes", "max_concurrent": max_concurrent,
                                      "routes": [route]}))  # fmt: skip
    tokens = local.tmp / "tokens"
    tokens.write_text(TOKEN + "\n")
    tokens.chmod(0o600)
    port = _free_port()
    log = local.tmp / "serve.log"
    argv = [str(VENV_BIN / "irx"), "serve", "--routes", str(routes), "--token-file", str(tokens), "--port", str(port),
            "-p", str(RUN_PLAYBOOKS), "--state-dir", str(local.tmp / "serve"), *args]  # fmt: skip
    with open(log, "a") as out:
        proc = subprocess.Popen(argv, cwd=local.tmp, env=local.env, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, text=True)  # fmt: skip
    server = Server(proc, f"http://127.0.0.1:{port}", log, local.tmp / "serve")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()
        try:
            if httpx.get(f"{server.url}/healthz", timeout=2).status_code == 200:
                return server
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    pytest.fail(f"irx serve did not answer within 30s:\n{log.read_text()}")


def test_the_first_message_carries_the_diagnosis_and_the_approval_link(local: Local, channel: Channel) -> None:
    server = serve(local, "run", 2, "--public-url", PUBLIC + "/")
    try:
        answer = server.post(notification("QueueBacklog", {"queue": "billing"}))
        assert (answer.status_code, answer.json()["received"]) == (202, "new")
        deadline = time.monotonic() + 90
        while not channel.messages() and time.monotonic() < deadline:
            time.sleep(0.1)
        [journal] = local.journals()
        run_id = journal.parent.name
        first = channel.messages()[0]
        assert (first["kind"], first["run_id"], first["status"]) == ("initial", run_id, "mitigating")
        assert first["url"] == f"{PUBLIC}/runs/{run_id}"
        text = first["message"]
        assert "Diagnosis (2 of 2 diagnose steps ok):\n" in text
        assert "✓ depth (Queue depth): 42 on localhost\n✓ workers (Workers by state): 3 rows on localhost\n" in text
        assert f"\nApprove or deny, and follow the run: {PUBLIC}/runs/{run_id}\n" in text
        denied = local.irx("deny", run_id, "drain", "--reason", "the queue drains by itself")
        assert denied.returncode == 0, denied.stderr
        [incident] = server.wait_for(lambda found: found and found[0]["state"] == "finished")
        assert (incident["run_id"], incident["outcome"]) == (run_id, "verified")
    finally:
        stop_server(server)
    events = read_journal(journal).events
    kinds = [e["type"] for e in events]
    sent = [e for e in events if e["type"] == "notification"]
    assert [(e["channel"], e["kind"], e["status"]) for e in sent] == [
        ("oncall", "initial", "sent"), ("oncall", "update", "sent"), ("oncall", "resolved", "sent"),
    ]  # fmt: skip
    assert sent[0]["message"] == text  # the journal holds what the channel got
    diagnosed = max(i for i, e in enumerate(events) if e["type"] == "step_finished" and e["step"] == "workers")
    assert diagnosed < events.index(sent[0]) < kinds.index("approval_requested")
    assert [m["kind"] for m in channel.messages()] == ["initial", "update", "resolved"]

"""``irx serve`` for real: the server process, Alertmanager-shaped requests over HTTP, real ``irx run``s.

The server is the real command in a subprocess on a loopback port; runs go to the SSH namespace hosts.
What is asserted is what irx promises: who gets in, what a bad request is told, one incident per alert
group however many notifications arrive, and that an alert's labels reach a run only as data.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from conftest import RUN_PLAYBOOKS, VENV_BIN, IrxCli
from irx.timeline import read_journal

pytestmark = pytest.mark.integration
TOKEN = "0123456789abcdef0123456789abcdef"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Server:
    proc: subprocess.Popen[str]
    url: str
    log: Path
    state: Path

    def post(self, body: Any, token: str | None = TOKEN, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        return httpx.post(f"{self.url}/alerts/alertmanager", content=content, timeout=30,
                          headers={"Content-Type": "application/json", **headers, **kwargs.pop("headers", {})},
                          **kwargs)  # fmt: skip

    def incidents(self) -> list[dict[str, Any]]:
        return [json.loads(p.read_text()) for p in sorted((self.state / "incidents").glob("*/[0-9]*.json"))]

    def wait_for(self, predicate: Any, timeout: float = 90) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.incidents()
            if predicate(found):
                return found
            assert self.proc.poll() is None, self.log.read_text()
            time.sleep(0.2)
        pytest.fail(f"incidents never reached the expected state: {self.incidents()}\n{self.log.read_text()}")


def notification(group: str, labels: dict[str, str] | None = None, status: str = "firing") -> dict[str, Any]:
    common = {"alertname": group, **(labels or {})}
    return {
        "version": "4",
        "groupKey": "{}:" + json.dumps({"alertname": group}),
        "status": status,
        "receiver": "irx",
        "groupLabels": {"alertname": group},
        "commonLabels": common,
        "commonAnnotations": {"summary": f"{group} fired"},
        "externalURL": "http://alertmanager.invalid:9093",
        "alerts": [
            {
                "status": status,
                "labels": common,
                "annotations": {},
                "startsAt": "2026-12-02T09:52:26.739266876Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "fingerprint": "1a30ba71cca2921f",
            }
        ],
        "truncatedAlerts": 0,
    }


def _routes(irx_cli: IrxCli, state_dir: Path) -> dict[str, Any]:
    return {
        "apiVersion": "irx/v1",
        "kind": "Routes",
        "max_concurrent": 2,
        "routes": [
            {
                "name": "queue-stuck",
                "match": ['alertname="QueueStuck"'],
                "playbook": "run-report",
                "inventory": str(irx_cli.inventory),
                "limit": {"label": "instance"},
                "params": {"state_dir": str(state_dir)},
                "mode": "run",
            },
            {
                "name": "slow",
                "match": ['alertname="Slow"'],
                "playbook": "run-pause",
                "inventory": str(irx_cli.inventory),
                "limit": "web2",
                "params": {"state_dir": str(state_dir), "probe_seconds": 1},
                "mode": "run",
            },
        ],
    }


def start_server(irx_cli: IrxCli, tmp_path: Path) -> Server:
    """``irx serve`` on a free loopback port, its state in tmp_path/serve (kept across restarts)."""
    shared = tmp_path / "shared"
    shared.mkdir(exist_ok=True)
    shared.chmod(0o777)
    routes = tmp_path / "routes.yaml"
    routes.write_text(yaml.safe_dump(_routes(irx_cli, shared), sort_keys=False))
    tokens = tmp_path / "tokens"
    tokens.write_text(f"# Alertmanager\n{TOKEN}\n")
    tokens.chmod(0o600)
    port = _free_port()
    log = tmp_path / "serve.log"
    argv = [str(VENV_BIN / "irx"), "serve", "--routes", str(routes), "--token-file", str(tokens),
            "--port", str(port), "-p", str(RUN_PLAYBOOKS), "--state-dir", str(tmp_path / "serve")]  # fmt: skip
    with open(log, "a") as out:
        proc = subprocess.Popen(argv, cwd=irx_cli.cwd, env=irx_cli.env, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, text=True)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return Server(proc, url, log, tmp_path / "serve")
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    pytest.fail(f"irx serve did not answer within 30s:\n{log.read_text()}")


def stop_server(server: Server) -> float:
    """SIGTERM, as a service manager stops it; how long it took to exit."""
    started = time.monotonic()
    server.proc.send_signal(signal.SIGTERM)
    try:
        server.proc.wait(30)
    except subprocess.TimeoutExpired:
        server.proc.kill()
        raise
    assert server.proc.returncode == 0, server.log.read_text()
    assert "Traceback" not in server.log.read_text()
    return time.monotonic() - started


@pytest.fixture
def server(irx_cli: IrxCli, tmp_path: Path) -> Iterator[Server]:
    running = start_server(irx_cli, tmp_path)
    try:
        yield running
    finally:
        if running.proc.poll() is None:
            stop_server(running)


@pytest.mark.parametrize(
    ("token", "headers"),
    [(None, {}), ("wrong-token-wrong-token-wrong-token", {}), (None, {"Authorization": f"Basic {TOKEN}"})],
)
def test_without_the_bearer_token_nothing_is_recorded(
    server: Server, token: str | None, headers: dict[str, str]
) -> None:
    answer = server.post(notification("QueueStuck", {"instance": "web1:9100"}), token=token, headers=headers)
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"].startswith("Bearer")
    assert answer.json() == {"error": "a valid bearer token is required"}
    assert server.incidents() == []


def test_bad_requests_get_a_clear_4xx_never_a_500(server: Server) -> None:
    cases = [
        (server.post(b"{not json"), 400, "body is not JSON"),
        (server.post({**notification("X"), "version": "3"}), 400, 'version is "3"'),
        (server.post({**notification("X"), "alerts": [{"status": "firing", "labels": {"a-b": "x"}}]}), 400,
         '"a-b" is not a label name'),
        (server.post(b"{" + b" " * (2 << 20) + b"}"), 413, "at most 1048576"),
        (server.post(notification("X"), headers={"Content-Type": "text/plain"}), 415, "must be JSON"),
    ]  # fmt: skip
    for answer, status, message in cases:
        assert answer.status_code == status, answer.text
        assert message in answer.json()["error"]
    chunked = httpx.post(f"{server.url}/alerts/alertmanager", content=iter([b" " * 65536] * 20), timeout=30,
                         headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})  # fmt: skip
    assert chunked.status_code == 413
    assert httpx.get(f"{server.url}/alerts/alertmanager").status_code == 405
    assert httpx.get(f"{server.url}/nowhere").status_code == 404
    assert server.incidents() == []
    log = server.log.read_text()
    assert log.count(" POST /alerts/alertmanager 4") == 6  # one line per request, the status in it


def test_an_alert_starts_one_real_run_and_repeats_update_it(server: Server, irx_cli: IrxCli) -> None:
    alert = notification("QueueStuck", {"instance": "web1:9100"})
    first = server.post(alert)
    assert first.status_code == 202
    assert first.json()["received"] == "new"
    repeats = [server.post(alert).json() for _ in range(3)]
    assert {r["incident"] for r in repeats} == {first.json()["incident"]}
    assert {r["received"] for r in repeats} == {"repeat"}
    # run-report waits at its gate for a person (the route pre-approved nothing): one approves it from a
    # terminal of the control node, bound to what the gate shows.
    gate = _poll_journal(irx_cli, "approval_requested")
    assert gate["step"] == "gated_fix"
    [journal] = irx_cli.journals()
    approved = irx_cli.irx("approve", journal.parent.name, "gated_fix", "--hash", gate["approval_hash"][7:19])
    assert approved.rc == 0, approved.output
    [incident] = server.wait_for(lambda found: found and found[0]["state"] == "finished")
    assert incident["notifications"] == 4
    logs = "".join(p.read_text() for p in (server.state / "runs").glob("*/run.log"))
    assert incident["outcome"] == "verified", logs  # the journal's status, not the exit code
    [approval] = [e for e in read_journal(journal).events if e["type"] == "approval"]
    assert (approval["approved"], approval["method"]) == (True, "cli")
    started = read_journal(journal).events[0]
    assert incident["run_id"] == started["run_id"] == journal.parent.name
    assert started["limit"] == "web1"  # the label's host, without its port
    assert started["params"]["state_dir"].endswith("shared")
    assert started["hosts"] == ["web1"]
    resolved = server.post(notification("QueueStuck", {"instance": "web1:9100"}, status="resolved")).json()
    assert resolved == {"incident": incident["id"], "received": "resolved", "state": "finished"}


def _poll_journal(irx_cli: IrxCli, kind: str, timeout: float = 90) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for path in irx_cli.journals():
            found = [e for e in read_journal(path).events if e["type"] == kind]
            if found:
                return found[0]
        time.sleep(0.1)
    raise AssertionError(f"no {kind} event within {timeout:g}s in {irx_cli.runs_dir}")


@pytest.mark.parametrize("instance", ["web1,db1", "all", "web*", "!web1", "nowhere:9100"])
def test_a_label_cannot_widen_the_run(server: Server, irx_cli: IrxCli, instance: str) -> None:
    answer = server.post(notification("QueueStuck", {"instance": instance}))
    assert answer.status_code == 202
    assert answer.json()["state"] == "refused"
    assert "host" in answer.json()["reason"]
    time.sleep(1.5)  # three dispatcher rounds: a refused incident never starts a run
    assert irx_cli.journals() == []
    assert not (server.state / "runs").exists() or not any((server.state / "runs").iterdir())


def test_a_storm_opens_one_incident_per_group_and_loses_none(server: Server, irx_cli: IrxCli) -> None:
    groups, per_group = 30, 10
    bodies = [notification(f"Storm{g}", {"instance": "web1"}) for g in range(groups) for _ in range(per_group)]
    started = time.monotonic()
    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(server.post, bodies))
    seconds = time.monotonic() - started
    assert [a.status_code for a in answers] == [202] * len(bodies)
    incidents = server.incidents()
    assert len(incidents) == groups
    assert sum(i["notifications"] for i in incidents) == groups * per_group
    assert {i["state"] for i in incidents} == {"refused"}  # no route for Storm*: recorded, nothing run
    assert irx_cli.journals() == []
    print(f"storm: {len(bodies)} notifications in {seconds:.2f}s ({len(bodies) / seconds:.0f}/s)")


def test_bad_configuration_is_one_line_and_exit_2(irx_cli: IrxCli, tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text(TOKEN + "\n")
    routes = tmp_path / "routes.yaml"
    data = _routes(irx_cli, tmp_path)
    data["routes"][0]["approve"] = ["no_such_step"]
    data["routes"][0]["match"] = ['alertname=~"(unclosed"']
    routes.write_text(yaml.safe_dump(data, sort_keys=False))

    def serve(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(VENV_BIN / "irx"), "serve", "--routes", str(routes), "--token-file", str(tokens),
                               "-p", str(RUN_PLAYBOOKS), "--port", str(_free_port()), *args], cwd=irx_cli.cwd,
                              env=irx_cli.env, capture_output=True, text=True, timeout=60, check=False)  # fmt: skip

    tokens.chmod(0o644)
    refused = serve()
    assert (refused.returncode, refused.stderr) == (2, f"irx: error: {tokens}: the token file is readable by "
                                                       f"others; chmod 600 {tokens}\n")  # fmt: skip
    tokens.chmod(0o600)
    refused = serve()
    assert refused.returncode == 2
    assert refused.stderr.startswith(f"irx: error: {routes}:")
    assert "the regex does not compile" in refused.stderr
    assert refused.stderr.count("\n") == 1
    data["routes"][0]["match"] = ['alertname="QueueStuck"']
    routes.write_text(yaml.safe_dump(data, sort_keys=False))
    refused = serve()
    assert refused.returncode == 2
    assert "routes/0/approve: 'no_such_step' is not a step of run-report with an approval gate" in refused.stderr
    assert "gated steps: gated_fix" in refused.stderr


def test_a_run_outlives_a_restart_of_the_server_and_is_taken_over(irx_cli: IrxCli, tmp_path: Path) -> None:
    first = start_server(irx_cli, tmp_path)
    assert first.post(notification("Slow")).json()["received"] == "new"
    [incident] = first.wait_for(lambda found: found and found[0].get("pid"))
    pid = incident["pid"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not any(
        e.get("step") == "pause" for j in irx_cli.journals() for e in read_journal(j).events
    ):
        time.sleep(0.2)
    seconds = stop_server(first)
    assert seconds < 15
    os.kill(pid, 0)  # the run goes on: stopping irx serve is not stopping a remediation halfway
    second = start_server(irx_cli, tmp_path)
    try:
        assert second.incidents()[0]["state"] == "running"
        os.killpg(pid, signal.SIGTERM)  # now stop the run itself: it records the interruption
        [done] = second.wait_for(lambda found: found[0]["state"] == "finished", timeout=60)
        [journal] = irx_cli.journals()
        assert done["run_id"] == journal.parent.name
        assert done["outcome"] == "interrupted"
        assert read_journal(journal).events[-1]["type"] == "run_finished"
    finally:
        stop_server(second)
    assert "continues after irx serve stops" in first.log.read_text()


def test_tls_with_the_given_certificate(irx_cli: IrxCli, tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)  # fmt: skip
    tokens = tmp_path / "tokens"
    tokens.write_text(TOKEN + "\n")
    tokens.chmod(0o600)
    routes = tmp_path / "routes.yaml"
    routes.write_text(yaml.safe_dump(_routes(irx_cli, tmp_path), sort_keys=False))
    port = _free_port()
    log = tmp_path / "serve.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([str(VENV_BIN / "irx"), "serve", "--routes", str(routes), "--token-file", str(tokens),
                                 "-p", str(RUN_PLAYBOOKS), "--port", str(port), "--tls-cert", str(cert),
                                 "--tls-key", str(key), "--state-dir", str(tmp_path / "serve")],
                                cwd=irx_cli.cwd, env=irx_cli.env, stdout=out, stderr=subprocess.STDOUT,
                                text=True)  # fmt: skip
    server = Server(proc, f"https://127.0.0.1:{port}", log, tmp_path / "serve")
    try:
        deadline = time.monotonic() + 30
        while "listening on https://" not in log.read_text():
            assert time.monotonic() < deadline, log.read_text()
            assert proc.poll() is None, log.read_text()
            time.sleep(0.1)
        trusted = ssl.create_default_context(cafile=str(cert))
        assert httpx.get(f"{server.url}/healthz", verify=trusted, timeout=10).json() == {"ok": True}
        with pytest.raises(httpx.TransportError):  # plain HTTP on the TLS port gets nothing
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10).raise_for_status()
    finally:
        stop_server(server)

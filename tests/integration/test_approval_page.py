"""The approval page end to end: a real ``irx serve --approvers``, a real ``irx run --wait-approval`` waiting at
its gate on localhost, and a real headless Chromium in which an approver logs in, reads the rendered command
and its hash, and clicks Approve (or types a reason and clicks Refuse). The run acts on exactly that, and
its journal says who decided, via the web; the page follows the run live until it is verified.
"""

from __future__ import annotations

import contextlib
import re
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml
from browser import Browser, Tab
from journal_checks import check_journal, host_results, of_type
from jsonschema import Draft202012Validator

from conftest import RUN_PLAYBOOKS, VENV_BIN, IrxCli
from irx.approvers import hash_password
from irx.inbox import DECISIONS_DIR
from irx.timeline import read_journal

pytestmark = pytest.mark.integration
TOKEN = "0123456789abcdef0123456789abcdef"
PASSWORD = "correct horse battery staple"


@dataclass
class Served:
    proc: subprocess.Popen[str]
    url: str
    log: Path


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def serving(
    irx_cli: IrxCli, tmp_path: Path, *extra: str, page: bool = True, verify: ssl.SSLContext | None = None
) -> Iterator[Served]:
    """``irx serve`` with an approvers file (alice, bob) on a free loopback port; stopped with SIGTERM.
    ``page=False``: without --approvers; ``verify``: the server's TLS (``extra`` has --tls-cert, --tls-key)."""
    approvers = tmp_path / "approvers.yaml"
    approvers.write_text(yaml.safe_dump({"apiVersion": "irx/v1", "kind": "Approvers", "users": [
        {"name": "alice", "groups": ["dba"], "password": hash_password(PASSWORD)},
        {"name": "bob", "groups": ["ops"], "password": hash_password("another one")},
    ]}))  # fmt: skip
    approvers.chmod(0o600)
    routes = tmp_path / "routes.yaml"
    routes.write_text(yaml.safe_dump({"apiVersion": "irx/v1", "kind": "Routes", "routes": [  # no alert is sent here
        {"name": "gated", "match": ['alertname="Gated"'], "playbook": "run-gated", "inventory": str(irx_cli.inventory),
         "limit": "localhost", "params": {"state_dir": str(tmp_path)}, "mode": "run"},
    ]}))  # fmt: skip
    tokens = tmp_path / "tokens"
    tokens.write_text(TOKEN + "\n")
    tokens.chmod(0o600)
    port, log = _free_port(), tmp_path / "serve.log"
    argv = [str(VENV_BIN / "irx"), "serve", "--routes", str(routes), "--token-file", str(tokens), "--port", str(port),
            "-p", str(RUN_PLAYBOOKS), "--state-dir", str(tmp_path / "serve"),
            *(["--approvers", str(approvers)] if page else []), *extra]  # fmt: skip
    with open(log, "w") as out:
        proc = subprocess.Popen(argv, cwd=irx_cli.cwd, env=irx_cli.env, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, text=True)  # fmt: skip
    served = Served(proc, f"{'https' if verify else 'http'}://127.0.0.1:{port}", log)
    try:
        _wait_healthy(served, verify)
        yield served
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, log.read_text()
    assert "Traceback" not in log.read_text()


def _wait_healthy(served: Served, verify: ssl.SSLContext | None) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert served.proc.poll() is None, served.log.read_text()
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{served.url}/healthz", timeout=2, verify=verify or True).status_code == 200:
                return
        time.sleep(0.1)
    pytest.fail(f"irx serve did not answer within 30s:\n{served.log.read_text()}")


@pytest.fixture
def state(tmp_path: Path) -> Path:
    state = tmp_path / "state"
    state.mkdir()
    (state / "backlog").write_text("7\n")
    return state


@contextlib.contextmanager
def waiting_run(irx_cli: IrxCli, state: Path) -> Iterator[tuple[subprocess.Popen[str], dict[str, str]]]:
    """run-gated on localhost with --wait-approval, waiting at its gate ``fix``; killed if the test leaves it."""
    proc = irx_cli.start("run-gated", "-l", "localhost", "-e", f"state_dir={state}", "--wait-approval", "120s")
    try:
        gate = irx_cli.wait_for_event(proc, lambda e: e["type"] == "approval_requested", timeout=90)
        yield proc, {"run_id": gate["run_id"], "hash": gate["approval_hash"], "step": gate["step"]}
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def log_in(tab: Tab, served: Served, run_id: str, name: str, password: str) -> None:
    """Open the run's page, get sent to the login form, log in, and land back on the run's page."""
    tab.open(f"{served.url}/runs/{run_id}")
    tab.wait_for("location.pathname === '/login' && !!document.querySelector('#login')")
    tab.type("#name", name)
    tab.type("#password", password)
    tab.click("#submit")
    tab.wait_for(f"location.pathname === '/runs/{run_id}' && document.readyState === 'complete'")


def test_an_approver_approves_in_chromium_and_the_run_runs_exactly_that(
    irx_cli: IrxCli, tmp_path: Path, state: Path, timeline_validator: Draft202012Validator
) -> None:
    started = time.monotonic()
    with serving(irx_cli, tmp_path) as served, waiting_run(irx_cli, state) as (proc, gate):
        assert "approval page at http://127.0.0.1:" in served.log.read_text()
        with Browser(tmp_path / "chromium") as browser:
            tab = browser.tab()
            tab.open(f"{served.url}/runs")
            assert tab.evaluate("location.pathname") == "/login"  # nothing without a login
            tab.type("#name", "alice")
            tab.type("#password", "not the password")
            tab.click("#submit")
            tab.wait_for("document.querySelector('#message')?.textContent === 'Wrong name or password.'")
            log_in(tab, served, gate["run_id"], "alice", PASSWORD)

            assert tab.text("#gate-hash") == gate["hash"]
            summary = tab.text("#gate-summary")
            assert f"echo fixed > {state}/canary-$(hostname)" in summary  # the exact rendered command
            assert tab.text("#gate-hosts") == "localhost"
            assert tab.evaluate("document.querySelectorAll('table.results tr[data-host=\"localhost\"]').length") == 1
            assert f"{socket.gethostname()} 7" in tab.text("table.results[data-step='probe']")  # the output
            assert tab.evaluate("document.querySelectorAll('#timeline li').length") > 3
            assert not list(state.glob("canary-*"))

            tab.click("#approve")
            # The page follows the run: it reloads when the run moves on and shows it verified.
            tab.wait_for("document.querySelector('#status')?.dataset.status === 'verified'", timeout=90)
            timeline = tab.text("#timeline")
            assert "alice" in timeline
        out, err = proc.communicate(timeout=90)
    assert proc.returncode == 0, (out, err)
    assert [p.name for p in state.glob("canary-*")] == [f"canary-{socket.gethostname()}"]
    journal = read_journal(irx_cli.journals()[-1])
    check_journal(journal, timeline_validator)
    [approval] = of_type(journal, "approval", step="fix")
    assert (approval["approved"], approval["method"], approval["by"]) == (True, "web", "alice")
    assert approval["approval_hash"] == gate["hash"]
    assert set(host_results(journal, "fix")) == {"localhost"}
    assert (journal.last("run_finished") or {}).get("status") == "verified"
    log = served.log.read_text()
    assert "login failed for 'alice'" in log
    assert f"decision: alice approved fix@{gate['hash'][7:19]} via web" in log
    print(f"approval in chromium, end to end: {time.monotonic() - started:.1f}s")


def test_an_approver_refuses_in_chromium_with_a_reason_and_the_step_never_runs(
    irx_cli: IrxCli, tmp_path: Path, state: Path, timeline_validator: Draft202012Validator
) -> None:
    with serving(irx_cli, tmp_path) as served, waiting_run(irx_cli, state) as (proc, gate):
        with Browser(tmp_path / "chromium") as browser:
            tab = browser.tab()
            log_in(tab, served, gate["run_id"], "bob", "another one")
            tab.click("#refuse")  # no reason yet: the browser's own check keeps the form from going out
            time.sleep(0.5)
            assert not (irx_cli.runs_dir / gate["run_id"] / DECISIONS_DIR).exists()
            tab.type("#reason", "the backlog drains by itself <after 03:00>")
            tab.click("#refuse")
            tab.wait_for("document.querySelector('#status')?.dataset.status === 'verified'", timeout=90)
        out, err = proc.communicate(timeout=90)
    assert proc.returncode == 0, (out, err)  # the run went on without the step, and verification passed
    assert list(state.glob("canary-*")) == []
    journal = read_journal(irx_cli.journals()[-1])
    check_journal(journal, timeline_validator)
    [approval] = of_type(journal, "approval", step="fix")
    assert (approval["approved"], approval["method"], approval["by"]) == (False, "refused", "bob")
    assert approval["reason"] == "the backlog drains by itself <after 03:00>"
    assert host_results(journal, "fix") == {}


def test_without_an_approvers_file_the_page_is_off_and_says_so(irx_cli: IrxCli, tmp_path: Path) -> None:
    with serving(irx_cli, tmp_path, page=False) as served:
        for path in ("/runs", "/login", "/"):
            assert httpx.get(f"{served.url}{path}", timeout=10).status_code == 404
        deadline = time.monotonic() + 10
        while "approval page off" not in served.log.read_text():
            assert time.monotonic() < deadline, served.log.read_text()
            time.sleep(0.1)
    assert "approval page off: no --approvers file" in served.log.read_text()


def test_under_tls_the_login_cookies_are_secure(irx_cli: IrxCli, tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)  # fmt: skip
    trusted = ssl.create_default_context(cafile=str(cert))
    with (
        serving(irx_cli, tmp_path, "--tls-cert", str(cert), "--tls-key", str(key), verify=trusted) as served,
        httpx.Client(base_url=served.url, verify=trusted, timeout=10) as client,
    ):
        form = client.get("/login")
        assert "Secure" in form.headers["set-cookie"]
        token = re.search(r'name="csrf" value="([^"]+)"', form.text)
        assert token is not None
        answer = client.post("/login", data={"csrf": token[1], "name": "alice", "password": PASSWORD})
        assert answer.status_code == 303
        [session] = [c for c in answer.headers.get_list("set-cookie") if c.startswith("irx_session=")]
        assert "Secure" in session
        assert "HttpOnly" in session
        assert "SameSite=strict" in session
    assert f"approval page at https://127.0.0.1:{served.url.rsplit(':', 1)[1]}/runs" in served.log.read_text()


@pytest.mark.parametrize(
    ("content", "mode", "message"),
    [
        ("apiVersion: irx/v1\nkind: Approvers\nusers: [{name: alice}]\n", 0o644, "readable by others; chmod 600"),
        ("apiVersion: irx/v1\nkind: Approvers\nusers: [{name: alice}]\n", 0o600, "no user has a password"),
        ("apiVersion: irx/v1\nkind: Approvers\nusers: [{name: alice, password: plain}]\n", 0o600, "approvers.yaml:3"),
    ],
)
def test_a_bad_approvers_file_stops_irx_serve_with_one_line(
    irx_cli: IrxCli, tmp_path: Path, content: str, mode: int, message: str
) -> None:
    approvers = tmp_path / "approvers.yaml"
    approvers.write_text(content)
    approvers.chmod(mode)
    routes, tokens = tmp_path / "routes.yaml", tmp_path / "tokens"
    routes.write_text(yaml.safe_dump({"apiVersion": "irx/v1", "kind": "Routes", "routes": [
        {"name": "gated", "match": ['alertname="Gated"'], "playbook": "run-gated", "mode": "run"}]}))  # fmt: skip
    tokens.write_text(TOKEN + "\n")
    tokens.chmod(0o600)
    ran = irx_cli.irx("serve", "--routes", str(routes), "--token-file", str(tokens), "-p", str(RUN_PLAYBOOKS),
                      "--port", str(_free_port()), "--approvers", str(approvers), timeout=60)  # fmt: skip
    assert ran.rc == 2, ran.output
    assert message in ran.stderr
    assert len(ran.stderr.strip().splitlines()) == 1, ran.stderr
    assert "Traceback" not in ran.stderr


def test_the_page_shows_a_secret_only_masked_and_the_approved_step_gets_the_real_one(
    irx_cli: IrxCli, tmp_path: Path, state: Path, timeline_validator: Draft202012Validator
) -> None:
    secret = "s3cr3t-canary-7f1d2a"
    args = ("-l", "localhost", "-e", f"state_dir={state}", "-e", f"api_token={secret}", "--wait-approval", "120s")
    with serving(irx_cli, tmp_path) as served:
        proc = irx_cli.start("run-gated-secret", *args)
        try:
            gate = irx_cli.wait_for_event(proc, lambda e: e["type"] == "approval_requested", timeout=90)
            with Browser(tmp_path / "chromium") as browser:
                tab = browser.tab()
                log_in(tab, served, gate["run_id"], "alice", PASSWORD)
                summary = tab.text("#gate-summary")
                assert "TOKEN=******" in summary
                assert "MODE=fix" in summary
                shown = tab.evaluate("document.documentElement.outerHTML")
                assert secret not in shown  # not in the gate, not in the diagnostic output, nowhere
                assert "token=******" in tab.text("table.results[data-step='probe']")
                events = tab.evaluate(f"fetch('/runs/{gate['run_id']}/events?after=0').then(r => r.text())")
                assert secret not in events
                tab.click("#approve")
                tab.wait_for("document.querySelector('#status')?.dataset.status === 'verified'", timeout=90)
                assert secret not in tab.evaluate("document.documentElement.outerHTML")
            out, err = proc.communicate(timeout=90)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert proc.returncode == 0, (out, err)
    assert (state / "canary").read_text() == secret  # the approved step ran with the real value
    journal = read_journal(irx_cli.journals()[-1])
    check_journal(journal, timeline_validator)
    [approval] = of_type(journal, "approval", step="fix")
    assert (approval["approved"], approval["method"], approval["by"]) == (True, "web", "alice")
    assert secret not in served.log.read_text()


def test_a_two_person_gate_is_approved_by_two_people_logging_in_one_after_the_other(
    irx_cli: IrxCli, tmp_path: Path, state: Path, timeline_validator: Draft202012Validator
) -> None:
    with serving(irx_cli, tmp_path) as served:
        args = ("-l", "localhost", "-e", f"state_dir={state}", "--wait-approval", "120s")
        proc = irx_cli.start("run-two-person", *args, "--approvers", str(tmp_path / "approvers.yaml"))
        try:
            gate = irx_cli.wait_for_event(proc, lambda e: e["type"] == "approval_requested", timeout=90)
            with Browser(tmp_path / "chromium") as browser:
                tab = browser.tab()
                log_in(tab, served, gate["run_id"], "alice", PASSWORD)
                assert "0 of 2 approvals" in tab.text("#gate-progress")
                tab.click("#approve")
                tab.wait_for("!!document.querySelector('#decided')")
                assert tab.text("#decided") == "You approved it; it needs 1 more approval from someone else."
                assert tab.evaluate("document.querySelector('#approve')") is None
                assert not (state / "canary").exists()
                tab.click(".logout button")  # a POST with the session's CSRF token
                tab.wait_for("location.pathname === '/login'")
                log_in(tab, served, gate["run_id"], "bob", "another one")
                assert "1 of 2 approvals (alice)" in tab.text("#gate-progress")
                tab.click("#approve")
                tab.wait_for("document.querySelector('#status')?.dataset.status === 'verified'", timeout=90)
            out, err = proc.communicate(timeout=90)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert proc.returncode == 0, (out, err)
    assert (state / "canary").read_text() == "fixed\n"
    journal = read_journal(irx_cli.journals()[-1])
    check_journal(journal, timeline_validator)
    given = of_type(journal, "approval_given", step="fix")
    assert [(g["by"], g["via"], g["counted"]) for g in given] == [("alice", "web", True), ("bob", "web", True)]
    [approval] = of_type(journal, "approval", step="fix")
    assert (approval["approved"], approval["method"], approval["approvers"]) == (True, "web", ["alice", "bob"])
    assert "logout: alice" in served.log.read_text()

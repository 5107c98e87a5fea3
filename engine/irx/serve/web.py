"""The approval page of ``irx serve``: the active runs, a run's live timeline and diagnostics, and the gate
it waits at with Approve / Refuse, for approvers who logged in (``irx.approvers``).

Everything from HTTP is data: a run id from the URL names a run only if it is exactly one in the runs dir,
a step id is checked, form bodies are small and url-encoded, and every page is a Jinja2 template with
autoescape on, served with a CSP that allows no inline script. No GET changes anything. Every POST carries
the session's CSRF token (the login form a token of its own, in a cookie) and, when the browser says where
it comes from (``Origin``), must come from this site. A decision names the approval hash the page showed
and is recorded only while the run waits for exactly that rendering, as the logged-in approver, via web.
"""

from __future__ import annotations

import hmac
import logging
import re
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import anyio
import anyio.to_thread
import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from irx.approval import short
from irx.errors import UsageError
from irx.serve import run_view
from irx.serve.sessions import LoginLimiter, Session, Sessions

if TYPE_CHECKING:
    from irx.approvers import Approvers, Rule

log = logging.getLogger("irx.serve")
HERE = Path(__file__).parent
SESSION_COOKIE = "irx_session"
LOGIN_COOKIE = "irx_login"  # the login form's CSRF token, before there is a session
MAX_FORM_BYTES = 16 * 1024
MAX_REASON = 2000
PASSWORD_CHECKS = 4  # scrypt checks at once
NEXT_PAGE = re.compile(r"/runs(/[A-Za-z0-9][A-Za-z0-9._-]{0,99})?\Z")
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",  # no-referrer would make Chromium send Origin: null
    "Cache-Control": "no-store",
}
JSON_HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
STATIC = {"page.css": "text/css; charset=utf-8", "run.js": "text/javascript; charset=utf-8"}


@dataclass(frozen=True)
class WebSettings:
    approvers: Approvers
    runs_dir: Path
    secure_cookies: bool = False  # under TLS (or behind a TLS proxy): cookies only over HTTPS
    public_origin: str | None = None  # scheme://host[:port] browsers reach the page at, for the Origin check
    sessions: Sessions = field(default_factory=Sessions)
    limiter: LoginLimiter = field(default_factory=LoginLimiter)


class _Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


_templates = jinja2.Environment(
    loader=jinja2.FileSystemLoader(HERE / "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_templates.filters["short"] = short
_templates.filters["clock"] = lambda ts: (ts or "")[11:19]


def web_routes(web: WebSettings) -> list[BaseRoute]:
    """The page's routes, for ``irx.serve.app.create_app``."""
    pages = _Pages(web)
    return [
        Route("/", pages.root, methods=["GET"]),
        Route("/login", pages.login_form, methods=["GET"]),
        Route("/login", pages.login, methods=["POST"]),
        Route("/logout", pages.logout, methods=["POST"]),
        Route("/runs", pages.runs, methods=["GET"]),
        Route("/runs/{run_id}", pages.run, methods=["GET"]),
        Route("/runs/{run_id}/events", pages.events, methods=["GET"]),
        Route("/runs/{run_id}/decision", pages.decision, methods=["POST"]),
        Route("/static/{name}", pages.static, methods=["GET"]),
    ]


class _Pages:
    def __init__(self, web: WebSettings) -> None:
        self.web = web
        self._checks = anyio.CapacityLimiter(PASSWORD_CHECKS)

    async def root(self, request: Request) -> Response:
        return RedirectResponse("/runs", 303)

    async def static(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name not in STATIC:
            return Response("not found\n", 404, media_type="text/plain")
        body = (HERE / "static" / name).read_bytes()
        return Response(body, headers={**HEADERS, "Cache-Control": "max-age=300"}, media_type=STATIC[name])

    async def login_form(self, request: Request) -> Response:
        if self._session(request) is not None:
            return RedirectResponse(_next_page(request.query_params.get("next")), 303)
        return self._login_page(request, None, 200)

    async def login(self, request: Request) -> Response:
        try:
            form = await _form(request)
            _same_origin(request, self.web.public_origin)
            _check_token(request.cookies.get(LOGIN_COOKIE, ""), form.get("csrf", ""))
        except _Refused as refused:
            return _refused(request, refused)
        name, password = form.get("name", "")[:128], form.get("password", "")[:1024]
        client = request.client.host if request.client else "-"
        wait = self.web.limiter.wait_for(name, client)
        if wait > 0:
            log.info("%s login refused for %r: too many failed logins", client, name)
            return self._login_page(request, f"Too many failed logins: try again in {wait:.0f} s.", 429, form)
        # Counted as failed until it succeeds, so a burst of simultaneous guesses meets the limit too; scrypt
        # costs 16 MiB and ~50 ms, so only a few checks run at once.
        self.web.limiter.failed(name, client)
        check = self.web.approvers.verify_password
        user = await anyio.to_thread.run_sync(check, name, password, limiter=self._checks)
        if user is None:
            log.info("%s login failed for %r", client, name)
            return self._login_page(request, "Wrong name or password.", 401, form)
        self.web.limiter.succeeded(name, client)
        session_id, _ = self.web.sessions.create(user.name)
        log.info("%s login: %s", client, user.name)
        response = RedirectResponse(_next_page(form.get("next")), 303)
        self._cookie(response, SESSION_COOKIE, session_id)
        response.delete_cookie(LOGIN_COOKIE, path="/login")
        return response

    async def logout(self, request: Request) -> Response:
        session = self._session(request)
        if session is not None:
            try:
                _same_origin(request, self.web.public_origin)
                _check_token(session.csrf, (await _form(request)).get("csrf", ""))
            except _Refused as refused:
                return _refused(request, refused)
            self.web.sessions.end(request.cookies.get(SESSION_COOKIE))
            log.info("logout: %s", session.name)
        response = RedirectResponse("/login", 303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    async def runs(self, request: Request) -> Response:
        session = self._session(request)
        if session is None:
            return _to_login(request)
        from irx.history import active_runs

        found = await anyio.to_thread.run_sync(active_runs, self.web.runs_dir)
        return _page("runs.html.j2", session, 200, runs=found, now=time.time())

    async def run(self, request: Request) -> Response:
        session = self._session(request)
        if session is None:
            return _to_login(request)
        return await self._run_page(request, session, [], 200)

    async def events(self, request: Request) -> Response:
        if self._session(request) is None:
            return JSONResponse({"error": "log in first"}, 401)
        run_dir = run_view.find_run(self.web.runs_dir, request.path_params["run_id"])
        after = request.query_params.get("after", "0")
        if run_dir is None:
            return JSONResponse({"error": "no such run"}, 404)
        if not after.isdigit() or len(after) > 7:
            return JSONResponse({"error": "after must be a count of events"}, 400)
        try:
            view = await anyio.to_thread.run_sync(run_view.load_run, run_dir)
        except UsageError as exc:
            return JSONResponse({"error": str(exc)}, 404)
        return JSONResponse(run_view.events_after(view, int(after)), headers=JSON_HEADERS)

    async def decision(self, request: Request) -> Response:
        session = self._session(request)
        if session is None:
            return _refused(request, _Refused(401, "log in first"))
        try:
            form = await _form(request)
            _same_origin(request, self.web.public_origin)
            _check_token(session.csrf, form.get("csrf", ""))
        except _Refused as refused:
            return _refused(request, refused)
        run_dir = run_view.find_run(self.web.runs_dir, request.path_params["run_id"])
        if run_dir is None:
            return _refused(request, _Refused(404, "no such run"))
        try:
            recorded = await anyio.to_thread.run_sync(_decide, run_dir, form, session.name, self.web.approvers)
        except UsageError as exc:
            log.info("decision refused: %s on %s: %s", session.name, run_dir.name, exc)
            return await self._run_page(request, session, [str(exc)], 409)
        log.info("decision: %s %s via web", session.name, recorded)
        session.flash.append(f"{recorded} as {session.name}: recorded; the run picks it up within a second")
        return RedirectResponse(f"/runs/{run_dir.name}", 303)

    async def _run_page(self, request: Request, session: Session, messages: list[str], status: int) -> Response:
        run_dir = run_view.find_run(self.web.runs_dir, request.path_params["run_id"])
        if run_dir is None:
            return _page("message.html.j2", session, 404, message="No such run.")
        try:
            view = await anyio.to_thread.run_sync(run_view.load_run, run_dir)
        except UsageError as exc:
            return _page("message.html.j2", session, 404, message=str(exc))
        gate: dict[str, Any] = {"rule": None, "allowed": False, "closed": "", "approved": []}
        if view.waiting is not None:
            rule = _rule(self.web.approvers, view.report.playbook, view.report.severity, view.waiting.step)
            eligible = view.waiting.eligible  # the run's own rule, when it was given one
            allowed = self.web.approvers.may_approve(rule, session.name) and (
                eligible is None or session.name in eligible
            )
            approved = [d.by for d in view.decisions if d.approve]
            gate = {"rule": rule, "allowed": allowed, "closed": view.closed(session.name), "approved": approved}
        return _page("run.html.j2", session, status, view=view, now=time.time(), extra=messages, **gate)

    def _session(self, request: Request) -> Session | None:
        return self.web.sessions.get(request.cookies.get(SESSION_COOKIE))

    def _login_page(
        self, request: Request, message: str | None, status: int, form: dict[str, str] | None = None
    ) -> Response:
        token = secrets.token_urlsafe(32)
        wanted = form.get("next") if form is not None else request.query_params.get("next")
        response = _page("login.html.j2", None, status, token=token, message=message, next=_next_page(wanted))
        self._cookie(response, LOGIN_COOKIE, token, path="/login", max_age=900)
        return response

    def _cookie(self, response: Response, name: str, value: str, path: str = "/", max_age: int | None = None) -> None:
        response.set_cookie(
            name, value, max_age=max_age, path=path, secure=self.web.secure_cookies, httponly=True, samesite="strict"
        )


def _rule(approvers: Approvers, playbook: str | None, severity: str | None, step: str) -> Rule:
    return approvers.rule_for(playbook or "", severity or "", step)


def _decide(run_dir: Path, form: dict[str, str], by: str, approvers: Approvers) -> str:
    """Record the decision the form asks for, if the run waits for exactly what the page showed and the
    approvers file lets ``by`` decide that step."""
    from irx.inbox import Decision, check_step_id, one_line, read_waiting, submit
    from irx.journal_read import RUNNING, read_journal, summarize_run

    step = check_step_id(form.get("step", ""))
    shown = form.get("approval_hash", "")
    answer = form.get("decision", "")
    reason = one_line(form.get("reason", ""))[:MAX_REASON]  # as it is recorded: control characters are no reason
    if answer not in {"approve", "refuse"}:
        raise UsageError("the decision is approve or refuse")
    if answer == "refuse" and not reason:
        raise UsageError("a refusal needs a reason")
    waiting = read_waiting(run_dir) if summarize_run(run_dir).status == RUNNING else None
    if waiting is None:
        raise UsageError(f"run {run_dir.name} is not waiting for an approval: nothing recorded")
    if waiting.step != step or not hmac.compare_digest(waiting.approval_hash.encode(), shown.encode()):
        raise UsageError(
            f"run {run_dir.name} now waits for {waiting.step}@{short(waiting.approval_hash)}, not the rendering "
            f"you were shown ({step}@{short(shown) if shown else '-'}): nothing recorded; review it again"
        )
    started = read_journal(run_dir).first("run_started") or {}
    rule = _rule(approvers, started.get("playbook"), started.get("severity"), step)
    if not approvers.may_approve(rule, by):
        raise UsageError(f"{by} may not decide {step} of this run: it takes {rule.describe()}; nothing recorded")
    approve = answer == "approve"
    submit(run_dir, Decision(step, approve, waiting.approval_hash, by, "web", reason, time.time()))
    return f"{'approved' if approve else 'refused'} {step}@{short(waiting.approval_hash)}"


async def _form(request: Request) -> dict[str, str]:
    """A small url-encoded form body, first value per field."""
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/x-www-form-urlencoded":
        raise _Refused(415, "the body must be a form (application/x-www-form-urlencoded)")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_FORM_BYTES:
            raise _Refused(413, f"the form is over {MAX_FORM_BYTES} bytes")
        chunks.append(chunk)
    try:
        fields = parse_qs(b"".join(chunks).decode("utf-8"), keep_blank_values=True, max_num_fields=20)
    except (UnicodeDecodeError, ValueError):
        raise _Refused(400, "the form is not url-encoded UTF-8") from None
    return {key: values[0] for key, values in fields.items()}


def _same_origin(request: Request, public_origin: str | None) -> None:
    origin = request.headers.get("origin")
    if origin is None:
        return  # not a browser's cross-site request (browsers send Origin on every cross-site POST)
    if public_origin is not None:
        ok = origin.rstrip("/") == public_origin.rstrip("/")
    else:  # behind a proxy the scheme may differ; the host must not
        ok = urlsplit(origin).netloc == request.headers.get("host", "")
    if not ok:
        raise _Refused(403, "the request comes from another site (Origin); nothing recorded")


def _check_token(expected: str, given: str) -> None:
    if not expected or not hmac.compare_digest(expected.encode(), given.encode()):
        raise _Refused(403, "the form's CSRF token is missing or wrong (reload the page); nothing recorded")


def _next_page(wanted: str | None) -> str:
    return wanted if wanted and NEXT_PAGE.fullmatch(wanted) else "/runs"


def _to_login(request: Request) -> Response:
    target = _next_page(request.url.path)
    return RedirectResponse(f"/login?next={target}" if target != "/runs" else "/login", 303)


def _refused(request: Request, refused: _Refused) -> Response:
    client = request.client.host if request.client else "-"
    log.info("%s %s %s %d %s", client, request.method, request.url.path, refused.status, refused)
    return _page("message.html.j2", None, refused.status, message=str(refused))


def _page(template: str, session: Session | None, status: int, **context: Any) -> HTMLResponse:
    messages = list(context.pop("extra", []))
    if session is not None:
        messages = [*session.flash, *messages]
        session.flash.clear()
    body = _templates.get_template(template).render(
        user=session.name if session else None, csrf=session.csrf if session else "", messages=messages, **context
    )
    return HTMLResponse(body, status, headers=HEADERS)

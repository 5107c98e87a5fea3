"""The HTTP side of ``irx serve``: Alertmanager's webhook in, incidents recorded, a clear 4xx for anything else.

Every request is answered in JSON and logged in one line (never its body: a label can carry anything);
nothing a client sends can produce a 500 with a traceback. Authentication is a bearer token (Alertmanager's
``http_config.authorization``) compared in constant time against the digests of the configured tokens.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio.to_thread
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute
from starlette.routing import Route as HttpRoute

from irx.alerts import MAX_BODY_BYTES, AlertError, Notification, parse_notification
from irx.incidents import Incident, IncidentBook
from irx.routes import Route, Routes

if TYPE_CHECKING:
    from irx.serve.web import WebSettings

log = logging.getLogger("irx.serve")
ALERTS_PATH = "/alerts/alertmanager"


def token_digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


@dataclass(frozen=True)
class Settings:
    routes: Routes
    book: IncidentBook
    token_digests: tuple[bytes, ...]
    hosts_of: Callable[[str | None], Sequence[str]]  # the hosts of a route's inventory, for a limit from a label
    max_body: int = MAX_BODY_BYTES
    web: WebSettings | None = None  # the approval page (irx.serve.web); None: off


class _Refused(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers or {}


def create_app(settings: Settings, wake: Callable[[], None] = lambda: None, lifespan: Any = None) -> Starlette:
    """The ASGI app; ``wake`` tells the dispatcher an incident may be waiting."""

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    async def alerts(request: Request) -> JSONResponse:
        started = time.monotonic()
        try:
            _authenticate(request, settings.token_digests)
            note = parse_notification(await _body(request, settings.max_body))
        except _Refused as refused:
            _log(request, refused.status, started, error=str(refused))
            return JSONResponse({"error": str(refused)}, refused.status, headers=refused.headers)
        except AlertError as exc:
            _log(request, 400, started, error=str(exc))
            return JSONResponse({"error": str(exc)}, 400)
        incident, received = await anyio.to_thread.run_sync(_receive, settings, note)
        wake()
        _log(
            request,
            202,
            started,
            incident=incident.id,
            received=received,
            state=incident.state,
            route=incident.route or "-",
            reason=incident.reason or "",
        )
        body = {"incident": incident.id, "received": received, "state": incident.state}
        if incident.reason:
            body["reason"] = incident.reason
        return JSONResponse(body, 202)

    routes: list[BaseRoute] = [
        HttpRoute("/healthz", health, methods=["GET"]),
        HttpRoute(ALERTS_PATH, alerts, methods=["POST"]),
    ]
    if settings.web is not None:
        from irx.serve.web import web_routes

        routes += web_routes(settings.web)
    return Starlette(
        routes=routes,
        exception_handlers={Exception: _internal},
        lifespan=lifespan,
    )


def _authenticate(request: Request, digests: Sequence[bytes]) -> None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    given = token_digest(token.strip())
    # Compare against every configured token, always all of them: the time taken says nothing about which.
    matched = [hmac.compare_digest(given, digest) for digest in digests]
    if scheme.lower() != "bearer" or not token.strip() or not any(matched):
        raise _Refused(401, "a valid bearer token is required", {"WWW-Authenticate": 'Bearer realm="irx"'})


async def _body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _Refused(413, f"body is {declared} bytes; at most {limit} are accepted")
    if "json" not in request.headers.get("content-type", "application/json"):
        raise _Refused(415, "the body must be JSON (Content-Type: application/json)")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:  # a chunked body has no Content-Length: count as it comes
            raise _Refused(413, f"body is over {limit} bytes, the limit")
        chunks.append(chunk)
    return b"".join(chunks)


def _receive(settings: Settings, note: Notification) -> tuple[Incident, str]:
    route = settings.routes.route_for(note)
    params: dict[str, Any] = {}
    limit = refused = None
    if route is not None and note.status == "firing":
        try:
            params, limit = _inputs(route, note, settings)
        except AlertError as exc:
            refused = str(exc)
    return settings.book.receive(
        note, route.name if route else None, time.time(), params=params, limit=limit, refused=refused
    )


def _inputs(route: Route, note: Notification, settings: Settings) -> tuple[dict[str, Any], str | None]:
    params = route.params_for(note)
    hosts = settings.hosts_of(route.inventory) if route.limit is not None and route.limit.kind == "label" else ()
    return params, route.limit_for(note, hosts)


async def _internal(request: Request, exc: Exception) -> JSONResponse:
    log.exception("internal error answering %s %s", request.method, request.url.path)
    return JSONResponse({"error": "internal error in irx serve (logged)"}, 500)


def _log(request: Request, status: int, started: float, **fields: Any) -> None:
    client = request.client.host if request.client else "-"
    extra = " ".join(f"{k}={v!r}" if isinstance(v, str) and " " in v else f"{k}={v}" for k, v in fields.items() if v)
    log.info(
        "%s %s %s %d %.0fms %s",
        client,
        request.method,
        request.url.path,
        status,
        (time.monotonic() - started) * 1000,
        extra,
    )

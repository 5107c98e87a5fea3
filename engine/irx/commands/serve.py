"""``irx serve``: receive Alertmanager's webhook and start the routed playbooks (see irx.serve)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import signal
import stat
import sys
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from irx.errors import ExitCode, UsageError

if TYPE_CHECKING:
    from irx.model import Playbook


@dataclass(frozen=True)
class ServeOptions:
    routes: Path
    token_file: Path
    bind: str = "127.0.0.1"
    port: int = 9095
    tls_cert: Path | None = None
    tls_key: Path | None = None
    state_dir: Path = Path(".irx/serve")
    runs_dir: Path | None = None
    playbook_dir: Path | None = None
    stop_runs: bool = False
    approvers: Path | None = None  # the approval page's users (irx.approvers); None: the page is off
    public_url: str | None = None  # where browsers reach irx serve, e.g. https://irx.example.com


def read_tokens(path: Path) -> tuple[str, ...]:
    """The bearer tokens in ``path``, one per line (# comments), from a file only its owner can read."""
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"{path}: cannot read the token file: {exc.strerror or exc}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise UsageError(f"{path}: the token file is readable by others; chmod 600 {path}")
    tokens = tuple(line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#"))
    if not tokens:
        raise UsageError(f"{path}: the token file holds no token (one per line)")
    short = [t for t in tokens if len(t) < 16]
    if short:
        raise UsageError(f"{path}: a token is shorter than 16 characters; use e.g. `openssl rand -hex 32`")
    return tokens


def main(options: ServeOptions) -> int:
    import uvicorn

    from irx.incidents import IncidentBook
    from irx.routes import check_playbooks, load_routes
    from irx.serve.app import Settings, create_app, token_digest
    from irx.serve.dispatch import Dispatcher, Launch
    from irx.timeline import default_runs_dir

    if (options.tls_cert is None) != (options.tls_key is None):
        raise UsageError("--tls-cert and --tls-key go together")
    public_origin(options)  # a bad --public-url is refused before anything starts
    tokens = read_tokens(options.token_file)
    routes = load_routes(options.routes)
    problems = check_playbooks(routes, functools.partial(_playbook, options.playbook_dir))
    if problems:
        line, col, message = problems[0]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise UsageError(f"{options.routes}:{line}:{col}: {message}{more}")
    book = IncidentBook(options.state_dir / "incidents")
    launch = Launch(
        command=(sys.executable, "-m", "irx"),
        runs_dir=(options.runs_dir or default_runs_dir()).resolve(),
        work_dir=(options.state_dir / "runs").resolve(),
        playbook_dir=options.playbook_dir.resolve() if options.playbook_dir else None,
        public_url=public_origin(options),  # the runs' messages link to BASE/runs/RUN_ID
        approvers=options.approvers.resolve() if options.approvers else None,
    )
    dispatcher = Dispatcher(book, routes, launch)
    web = _web_settings(options, launch.runs_dir)
    settings = Settings(routes, book, tuple(token_digest(t) for t in tokens), hosts_of=_hosts_of, web=web)

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        task = asyncio.create_task(dispatcher.run())
        announce = asyncio.create_task(_announce_when_listening(server, options, len(routes.routes), launch))
        yield
        announce.cancel()
        await dispatcher.stop(options.stop_runs)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="irx serve: %(asctime)s %(message)s")
    config = uvicorn.Config(
        create_app(settings, dispatcher.wake, lifespan),
        host=options.bind,
        port=options.port,
        ssl_certfile=str(options.tls_cert) if options.tls_cert else None,
        ssl_keyfile=str(options.tls_key) if options.tls_key else None,
        access_log=False,
        log_config=None,  # uvicorn's own messages in irx serve's one log format
        log_level="warning",
        lifespan="on",
        timeout_graceful_shutdown=10,
        server_header=False,
    )
    server = uvicorn.Server(config)
    stopped: list[int] = []
    # uvicorn shuts down gracefully on SIGTERM / SIGINT, then raises the signal again for the handler it found:
    # SIGTERM (a service manager stopping irx serve) is then a clean stop, exit 0; Ctrl-C stays 130.
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: stopped.append(signum))
    try:
        server.run()
    except SystemExit:  # uvicorn exits when it cannot start (the port is taken, a bad certificate)
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
    if not server.started:
        raise UsageError(f"irx serve could not listen on {options.bind}:{options.port} (see the message above)")
    return ExitCode.OK


def public_origin(options: ServeOptions) -> str:
    """``scheme://host[:port]`` browsers reach irx serve at: --public-url, else the bind address. The page's
    links, the Origin check and the runs' messages (their link to BASE/runs/RUN_ID) all use it."""
    from urllib.parse import urlsplit

    if options.public_url is None:
        host = f"[{options.bind}]" if ":" in options.bind else options.bind
        return f"{'https' if options.tls_cert else 'http'}://{host}:{options.port}"
    url = urlsplit(options.public_url)
    if (
        url.scheme not in {"http", "https"}
        or not url.hostname
        or url.path not in {"", "/"}
        or url.query
        or url.username
    ):
        raise UsageError(
            f"--public-url {options.public_url!r}: give scheme and host only, e.g. https://irx.example.com"
        )
    return f"{url.scheme}://{url.netloc}"


def _web_settings(options: ServeOptions, runs_dir: Path) -> Any:
    if options.approvers is None:
        return None
    from irx.approvers import load_approvers
    from irx.serve.web import WebSettings

    approvers = load_approvers(options.approvers)
    if not any(user.password_hash for user in approvers.users.values()):
        raise UsageError(f"{options.approvers}: no user has a password: nobody could log in to the approval page")
    origin = public_origin(options)
    return WebSettings(approvers, runs_dir, secure_cookies=origin.startswith("https:"), public_origin=origin)


async def _announce_when_listening(server: Any, options: ServeOptions, routes: int, launch: Any) -> None:
    while not server.started:
        await asyncio.sleep(0.05)
    scheme = "https" if options.tls_cert else "http"
    log = logging.getLogger("irx.serve")
    log.info(
        "listening on %s://%s:%d/alerts/alertmanager, %d route(s), runs in %s",
        scheme,
        options.bind,
        options.port,
        routes,
        launch.runs_dir,
    )
    if options.approvers is None:
        log.info("approval page off: no --approvers file (approve with irx approve on this machine)")
    else:
        log.info("approval page at %s/runs, approvers from %s", public_origin(options), options.approvers)


def _playbook(playbook_dir: Path | None, name: str) -> Playbook:
    from irx.library import find_playbook
    from irx.loader import load_playbook

    return load_playbook(find_playbook(name, playbook_dir))


_HOSTS_TTL = 60.0
_hosts_cache: dict[str | None, tuple[float, tuple[str, ...]]] = {}


def _hosts_of(inventory: str | None) -> Sequence[str]:
    """The hosts of an inventory, read again after a minute (an edited inventory is seen without a restart)."""
    from irx.inventory import load_inventory

    cached = _hosts_cache.get(inventory)
    if cached is None or time.monotonic() - cached[0] > _HOSTS_TTL:
        cached = (time.monotonic(), load_inventory(inventory).hosts("all"))
        _hosts_cache[inventory] = cached
    return cached[1]

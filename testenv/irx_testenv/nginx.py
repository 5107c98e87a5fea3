"""A private nginx on 127.0.0.1 with a JSON /health endpoint and a JSON-lines access log."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Mapping
from pathlib import Path

from irx_testenv import _proc
from irx_testenv._proc import TestEnvError
from irx_testenv._service import _ProcessService

HEALTH_BODY = '{"status":"ok"}'

# One JSON object per request: tests and drills parse the access log instead of scraping it.
_LOG_FORMAT = (
    'log_format irx escape=json \'{"time":"$time_iso8601","method":"$request_method",'
    '"uri":"$request_uri","status":$status,"request_time":$request_time,'
    '"upstream_status":"$upstream_status"}\';'
)


class NginxServer(_ProcessService):
    """A throw-away nginx listening on ``127.0.0.1:port``.

    Args:
        port: TCP port on 127.0.0.1; ``None`` picks a free one.
        base_dir: where its directory ``irxt-<uid>-nginx`` (config, logs, temp paths) is made.
        locations: extra ``location`` blocks, ``{matcher: body}``, e.g.
            ``{"/": "return 200 'hi';", "= /api": "proxy_pass http://127.0.0.1:9000;"}``; the body is nginx
            text placed inside ``location <matcher> { ... }``. ``= /health`` is always present and
            answers 200 ``{"status":"ok"}``.
        uid: the six-hex-digit id in every name; random when ``None``.
    """

    kind = "nginx"
    host = "127.0.0.1"

    def __init__(
        self,
        port: int | None = None,
        base_dir: Path | str | None = None,
        locations: Mapping[str, str] | None = None,
        *,
        uid: str | None = None,
        start_timeout: float = 10.0,
        stop_timeout: float = 10.0,
    ) -> None:
        super().__init__(base_dir, uid)
        self.port = port if port is not None else _proc.free_port()
        self.locations = dict(locations or {})
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Base URL, ``http://127.0.0.1:<port>``."""
        return f"http://{self.host}:{self.port}"

    @property
    def health_url(self) -> str:
        """URL of the JSON health endpoint."""
        return f"{self.url}/health"

    @property
    def config_path(self) -> Path:
        """The generated nginx.conf."""
        return self.workdir / "nginx.conf"

    @property
    def access_log(self) -> Path:
        """Access log, one JSON object per line (time, method, uri, status, request_time, upstream_status)."""
        return self.workdir / "access.log"

    @property
    def error_log(self) -> Path:
        """nginx's error log."""
        return self.workdir / "error.log"

    def render_config(self) -> str:
        """The nginx.conf text for this server."""
        work = self.workdir
        temp = "\n".join(
            f"    {name}_temp_path {work / 'tmp' / name};"
            for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        extra = "\n".join(
            f"        location {matcher} {{\n            {body}\n        }}" for matcher, body in self.locations.items()
        )
        # As root, workers would default to "nobody", who cannot write our root-owned temp dirs.
        user = "user root root;\n" if os.geteuid() == 0 else ""
        return f"""{user}daemon off;
master_process on;
worker_processes 1;
pid {work / "nginx.pid"};
error_log {self.error_log} info;
events {{ worker_connections 256; }}
http {{
    {_LOG_FORMAT}
    access_log {self.access_log} irx;
{temp}
    server {{
        listen {self.host}:{self.port};
        location = /health {{
            default_type application/json;
            return 200 '{HEALTH_BODY}';
        }}
{extra}
    }}
}}
"""

    def _start(self) -> None:
        (self.workdir / "tmp").mkdir(exist_ok=True)
        self.config_path.write_text(self.render_config())
        argv = self._argv()
        # Check the config first: a syntax error then reads as one, not as a start timeout.
        _proc.run([*argv, "-t", "-q"], timeout=self.start_timeout)
        self._proc = _proc.spawn(argv, log_path=self.workdir / "stderr.log", cwd=self.workdir)
        try:
            _proc.wait_for(self._ready, timeout=self.start_timeout, what=f"nginx on port {self.port}")
        except TestEnvError as exc:
            raise TestEnvError(f"{exc}\n{_proc.log_tail(self.error_log)}") from exc

    def _ready(self) -> bool:
        if self._proc is not None and self._proc.poll() is not None:
            raise TestEnvError(f"nginx exited with {self._proc.returncode}:\n{_proc.log_tail(self.error_log)}")
        return _proc.port_open(self.host, self.port)

    def reload(self, locations: Mapping[str, str] | None = None) -> None:
        """Rewrite the config (with new ``locations`` if given) and reload it (SIGHUP, like ``-s reload``)."""
        if self._proc is None or self._proc.poll() is not None:
            raise TestEnvError("nginx is not running")
        if locations is not None:
            self.locations = dict(locations)
        self.config_path.write_text(self.render_config())
        _proc.run([*self._argv(), "-t", "-q"])
        self._proc.send_signal(signal.SIGHUP)

    def _argv(self) -> list[str]:
        binary = _proc.find_binary("nginx", "/usr/sbin/nginx")
        return [binary, "-p", str(self.workdir), "-c", str(self.config_path), "-e", str(self.error_log)]

    def _stop(self) -> None:
        if self._proc is not None:
            # SIGTERM is nginx's fast shutdown; the master waits for its workers before exiting.
            _proc.stop_child(self._proc, sig=signal.SIGTERM, grace=self.stop_timeout, what="nginx")
            self._proc = None
        _proc.wait_for(
            lambda: not _proc.port_open(self.host, self.port, timeout=0.2),
            timeout=self.stop_timeout,
            what=f"port {self.port} to close",
        )

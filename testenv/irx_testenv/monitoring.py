"""The alerting chain on 127.0.0.1: postgres_exporter, Prometheus with rules, Alertmanager with a webhook.

Debian's binaries (``prometheus``, ``prometheus-alertmanager``, ``prometheus-postgres-exporter``) run as
our foreground children on loopback ports. Configs are written as JSON, which is YAML, so nothing here
needs a YAML writer. Intervals are short (1 s scrape and evaluation, 1 s group_wait) so that an alert
reaches its webhook within seconds of the fault.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from irx_testenv import _proc
from irx_testenv._proc import TestEnvError
from irx_testenv._service import _ProcessService
from irx_testenv.postgres import PostgresServer

# No proxy from the environment: everything here is on the loopback.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _get(url: str, timeout: float = 2.0) -> tuple[int, str]:
    """GET ``url``: (status, body); (0, reason) when nothing answers."""
    try:
        with _OPENER.open(url, timeout=timeout) as answer:
            return int(answer.status), answer.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read().decode(errors="replace")
    except (OSError, ValueError) as exc:
        return 0, str(exc)


def _write_json(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path


class _HttpService(_ProcessService):
    """One HTTP server process on ``127.0.0.1:port``, ready when ``ready_path`` answers 200."""

    host = "127.0.0.1"
    binary = ""
    ready_path = "/-/ready"

    def __init__(
        self, port: int | None, base_dir: Path | str | None, uid: str | None, start_timeout: float, stop_timeout: float
    ) -> None:
        super().__init__(base_dir, uid)
        self.port = port if port is not None else _proc.free_port()
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Base URL, ``http://127.0.0.1:<port>``."""
        return f"http://{self.host}:{self.port}"

    @property
    def address(self) -> str:
        """``127.0.0.1:<port>``, as Prometheus targets are written."""
        return f"{self.host}:{self.port}"

    @property
    def log_path(self) -> Path:
        """The server's stdout and stderr."""
        return self.workdir / f"{self.kind}.log"

    def _argv(self) -> list[str]:
        raise NotImplementedError

    def _env(self) -> dict[str, str] | None:
        return None

    def _start(self) -> None:
        binary = _proc.find_binary(self.binary, f"/usr/bin/{self.binary}")
        self._proc = _proc.spawn([binary, *self._argv()], log_path=self.log_path, cwd=self.workdir, env=self._env())
        try:
            _proc.wait_for(
                self._ready, timeout=self.start_timeout, what=f"{self.kind} on port {self.port}", interval=0.1
            )
        except TestEnvError as exc:
            raise TestEnvError(f"{exc}\n{_proc.log_tail(self.log_path)}") from exc

    def _ready(self) -> bool:
        if self._proc is not None and self._proc.poll() is not None:
            raise TestEnvError(f"{self.kind} exited with {self._proc.returncode}:\n{_proc.log_tail(self.log_path)}")
        return _get(self.url + self.ready_path)[0] == 200 and self._answers()

    def _answers(self) -> bool:
        return True

    def _stop(self) -> None:
        if self._proc is not None:
            # SIGTERM is a clean shutdown for all three; they exit within a second or two.
            _proc.stop_child(self._proc, sig=signal.SIGTERM, grace=self.stop_timeout, what=self.kind)
            self._proc = None
        _proc.wait_for(
            lambda: not _proc.port_open(self.host, self.port, timeout=0.2),
            timeout=self.stop_timeout,
            what=f"port {self.port} to close",
        )

    def get_json(self, path: str, timeout: float = 5.0) -> Any:
        """GET ``path`` on this server and decode the JSON answer; raise ``TestEnvError`` unless 200."""
        status, body = _get(self.url + path, timeout=timeout)
        if status != 200:
            raise TestEnvError(f"GET {self.url}{path}: {status or 'no answer'}: {body[:500]}")
        return json.loads(body)


class PostgresExporter(_HttpService):
    """``prometheus-postgres-exporter`` for a :class:`PostgresServer`, on ``127.0.0.1:port``.

    Connects as the server's superuser to its ``postgres`` database (``DATA_SOURCE_NAME`` in its
    environment only). Ready once ``/metrics`` reports ``pg_up 1``. Among its default metrics is
    ``pg_stat_activity_count{datname, state}``: sessions per database and state.
    """

    kind = "pgexporter"
    binary = "prometheus-postgres-exporter"
    ready_path = "/metrics"

    def __init__(
        self,
        pg: PostgresServer,
        port: int | None = None,
        base_dir: Path | str | None = None,
        *,
        uid: str | None = None,
        start_timeout: float = 30.0,
        stop_timeout: float = 10.0,
    ) -> None:
        super().__init__(port, base_dir, uid, start_timeout, stop_timeout)
        self.pg = pg

    @property
    def data_source_name(self) -> str:
        """The exporter's connection URI (superuser, no password: the test cluster trusts loopback)."""
        return f"postgresql://{self.pg.superuser}@{self.pg.host}:{self.pg.port}/postgres?sslmode=disable"

    def _argv(self) -> list[str]:
        return [f"--web.listen-address={self.address}"]

    def _env(self) -> dict[str, str]:
        return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "DATA_SOURCE_NAME": self.data_source_name}

    def _answers(self) -> bool:
        return any(line.strip() == "pg_up 1" for line in self.metrics().splitlines())

    def metrics(self) -> str:
        """The exporter's current ``/metrics`` text (empty if it does not answer)."""
        status, body = _get(self.url + "/metrics", timeout=10.0)
        return body if status == 200 else ""


class PrometheusServer(_HttpService):
    """A throw-away Prometheus on ``127.0.0.1:port``: 1 s scrape and evaluation, rules, one Alertmanager.

    Args:
        scrape_jobs: ``{job_name: ["127.0.0.1:PORT", ...]}``, each scraped every ``interval``.
        rules: Prometheus alerting/recording rules (dicts as in a rule file's ``rules:``), one group
            evaluated every ``interval``.
        alertmanagers: ``127.0.0.1:PORT`` addresses to send alerts to.
        interval: scrape and evaluation interval, e.g. ``"1s"``.
        base_dir / uid / start_timeout / stop_timeout: as for the other services.
    """

    kind = "prometheus"
    binary = "prometheus"

    def __init__(
        self,
        scrape_jobs: Mapping[str, Sequence[str]] | None = None,
        rules: Sequence[Mapping[str, Any]] = (),
        alertmanagers: Sequence[str] = (),
        port: int | None = None,
        base_dir: Path | str | None = None,
        *,
        interval: str = "1s",
        uid: str | None = None,
        start_timeout: float = 30.0,
        stop_timeout: float = 15.0,
    ) -> None:
        super().__init__(port, base_dir, uid, start_timeout, stop_timeout)
        self.scrape_jobs = {name: list(targets) for name, targets in (scrape_jobs or {}).items()}
        self.rules = [dict(rule) for rule in rules]
        self.alertmanagers = list(alertmanagers)
        self.interval = interval

    @property
    def config_path(self) -> Path:
        """The generated prometheus.yml."""
        return self.workdir / "prometheus.yml"

    @property
    def rules_path(self) -> Path:
        """The generated rule file."""
        return self.workdir / "rules.yml"

    def _argv(self) -> list[str]:
        _write_json(
            self.rules_path, {"groups": [{"name": "irx-testenv", "interval": self.interval, "rules": self.rules}]}
        )
        config: dict[str, Any] = {
            "global": {"scrape_interval": self.interval, "evaluation_interval": self.interval},
            "rule_files": [str(self.rules_path)],
            "scrape_configs": [
                {"job_name": name, "static_configs": [{"targets": targets}]}
                for name, targets in self.scrape_jobs.items()
            ],
        }
        if self.alertmanagers:
            config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": self.alertmanagers}]}]}
        _write_json(self.config_path, config)
        return [
            f"--config.file={self.config_path}",
            f"--storage.tsdb.path={self.workdir / 'tsdb'}",
            f"--web.listen-address={self.address}",
        ]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query's result vector (``/api/v1/query``)."""
        answer = self.get_json("/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
        result: list[dict[str, Any]] = answer["data"]["result"]
        return result

    def alerts(self) -> list[dict[str, Any]]:
        """Pending and firing alerts (``/api/v1/alerts``)."""
        alerts: list[dict[str, Any]] = self.get_json("/api/v1/alerts")["data"]["alerts"]
        return alerts

    def targets_up(self) -> bool:
        """True once every scrape target has been scraped successfully."""
        active = self.get_json("/api/v1/targets")["data"]["activeTargets"]
        return bool(active) and all(target["health"] == "up" for target in active)


class AlertmanagerServer(_HttpService):
    """A throw-away Alertmanager on ``127.0.0.1:port`` with one webhook receiver and no gossip cluster.

    Args:
        webhook_url: where notifications are POSTed (Alertmanager webhook v4 JSON).
        bearer_token: sent as ``Authorization: Bearer`` (``http_config.authorization``); ``None``: none.
        receiver: the receiver's name (it appears in the payload's ``receiver``).
        group_by: labels that make an alert group.
        group_wait / group_interval / repeat_interval: the route's timings.
        send_resolved: also notify when a group resolves.
        base_dir / uid / start_timeout / stop_timeout: as for the other services.

    Runs with ``--cluster.listen-address=`` (empty): the default would bind a gossip port on 0.0.0.0.
    """

    kind = "alertmanager"
    binary = "prometheus-alertmanager"

    def __init__(
        self,
        webhook_url: str,
        bearer_token: str | None = None,
        port: int | None = None,
        base_dir: Path | str | None = None,
        *,
        receiver: str = "irx",
        group_by: Sequence[str] = ("alertname", "instance"),
        group_wait: str = "1s",
        group_interval: str = "2s",
        repeat_interval: str = "1m",
        send_resolved: bool = True,
        uid: str | None = None,
        start_timeout: float = 30.0,
        stop_timeout: float = 15.0,
    ) -> None:
        super().__init__(port, base_dir, uid, start_timeout, stop_timeout)
        self.webhook_url = webhook_url
        self.bearer_token = bearer_token
        self.receiver = receiver
        self.group_by = list(group_by)
        self.route_timings = {"group_wait": group_wait, "group_interval": group_interval,
                              "repeat_interval": repeat_interval}  # fmt: skip
        self.send_resolved = send_resolved

    @property
    def config_path(self) -> Path:
        """The generated alertmanager.yml (mode 0600: it holds the bearer token)."""
        return self.workdir / "alertmanager.yml"

    def _argv(self) -> list[str]:
        webhook: dict[str, Any] = {"url": self.webhook_url, "send_resolved": self.send_resolved}
        if self.bearer_token is not None:
            webhook["http_config"] = {"authorization": {"type": "Bearer", "credentials": self.bearer_token}}
        config = {
            "route": {"receiver": self.receiver, "group_by": self.group_by, **self.route_timings},
            "receivers": [{"name": self.receiver, "webhook_configs": [webhook]}],
        }
        self.config_path.touch(mode=0o600)
        self.config_path.chmod(0o600)
        _write_json(self.config_path, config)
        return [
            f"--config.file={self.config_path}",
            f"--storage.path={self.workdir / 'data'}",
            f"--web.listen-address={self.address}",
            "--cluster.listen-address=",
        ]

    def alerts(self) -> list[dict[str, Any]]:
        """The alerts Alertmanager holds (``/api/v2/alerts``)."""
        alerts: list[dict[str, Any]] = self.get_json("/api/v2/alerts")
        return alerts

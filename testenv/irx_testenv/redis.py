"""A private Redis server on 127.0.0.1 with persistence off."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

from irx_testenv import _proc
from irx_testenv._proc import TestEnvError
from irx_testenv._service import _ProcessService


class RedisServer(_ProcessService):
    """A throw-away ``redis-server`` listening on ``127.0.0.1:port``, no RDB or AOF.

    Args:
        port: TCP port on 127.0.0.1; ``None`` picks a free one.
        base_dir: where its directory ``irxt-<uid>-redis`` (config, log) is made.
        maxmemory: Redis ``maxmemory`` (e.g. ``"8mb"`` or bytes); ``None`` leaves it unlimited.
        maxmemory_policy: applied with ``maxmemory``; ``noeviction`` makes writes fail when full,
            which is the incident the drills need.
        uid: the six-hex-digit id in every name; random when ``None``.
    """

    kind = "redis"
    host = "127.0.0.1"

    def __init__(
        self,
        port: int | None = None,
        base_dir: Path | str | None = None,
        maxmemory: int | str | None = None,
        *,
        maxmemory_policy: str = "noeviction",
        uid: str | None = None,
        start_timeout: float = 10.0,
        stop_timeout: float = 10.0,
    ) -> None:
        super().__init__(base_dir, uid)
        self.port = port if port is not None else _proc.free_port()
        self.maxmemory = maxmemory
        self.maxmemory_policy = maxmemory_policy
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<port>/0``."""
        return f"redis://{self.host}:{self.port}/0"

    @property
    def config_path(self) -> Path:
        """The generated redis.conf."""
        return self.workdir / "redis.conf"

    @property
    def log_path(self) -> Path:
        """The server log."""
        return self.workdir / "redis.log"

    def _start(self) -> None:
        binary = _proc.find_binary("redis-server", "/usr/bin/redis-server")
        lines = [
            f"port {self.port}",
            f"bind {self.host}",
            "daemonize no",
            'save ""',
            "appendonly no",
            f"dir {self.workdir}",
            f"pidfile {self.workdir / 'redis.pid'}",
            'logfile ""',
            # Put the config path (which carries the uid) into the process title, so leftovers() sees it.
            'proc-title-template "{title} {listen-addr} {config-file}"',
        ]
        if self.maxmemory is not None:
            lines += [f"maxmemory {self.maxmemory}", f"maxmemory-policy {self.maxmemory_policy}"]
        self.config_path.write_text("\n".join(lines) + "\n")
        self._proc = _proc.spawn([binary, str(self.config_path)], log_path=self.log_path, cwd=self.workdir)
        try:
            _proc.wait_for(self._ready, timeout=self.start_timeout, what=f"redis on port {self.port}")
        except TestEnvError as exc:
            raise TestEnvError(f"{exc}\n{_proc.log_tail(self.log_path)}") from exc

    def _ready(self) -> bool:
        if self._proc is not None and self._proc.poll() is not None:
            raise TestEnvError(f"redis exited with {self._proc.returncode}:\n{_proc.log_tail(self.log_path)}")
        return _proc.port_open(self.host, self.port)

    def _stop(self) -> None:
        if self._proc is not None:
            # SIGTERM is redis's clean shutdown; with save "" it writes nothing.
            _proc.stop_child(self._proc, sig=signal.SIGTERM, grace=self.stop_timeout, what="redis")
            self._proc = None
        _proc.wait_for(
            lambda: not _proc.port_open(self.host, self.port, timeout=0.2),
            timeout=self.stop_timeout,
            what=f"port {self.port} to close",
        )

    def cli(self, *args: str, timeout: float = 10.0) -> str:
        """Run ``redis-cli`` against this server with ``args``; return its stripped stdout."""
        binary = _proc.find_binary("redis-cli", "/usr/bin/redis-cli")
        proc = _proc.run([binary, "-h", self.host, "-p", str(self.port), *args], timeout=timeout)
        return proc.stdout.strip()

"""A private PostgreSQL cluster on 127.0.0.1, made with initdb and run as the postgres user."""

from __future__ import annotations

import glob
import os
import re
import shutil
import signal
import subprocess
from pathlib import Path

from irx_testenv import _names, _proc
from irx_testenv._proc import TestEnvError
from irx_testenv._service import _ProcessService

_IDENT_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_SERVICE_USER = "postgres"


def find_pg_bin() -> Path:
    """The newest ``/usr/lib/postgresql/<major>/bin`` with an initdb (``IRX_PG_BIN`` overrides)."""
    override = os.environ.get("IRX_PG_BIN")
    if override:
        return Path(override)
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0,
    )
    if not found:
        raise TestEnvError(
            "PostgreSQL not found (no /usr/lib/postgresql/*/bin/initdb); run scripts/install-system-deps.sh"
        )
    return Path(found[-1]).parent


def _ident(name: str) -> str:
    # Role and database names go into SQL unquoted: accept only plain identifiers.
    if not _IDENT_RE.match(name):
        raise ValueError(f"not a plain SQL identifier: {name!r}")
    return name


def _literal(text: str) -> str:
    # SQL string literal (standard_conforming_strings is on): double the quotes.
    return "'" + text.replace("'", "''") + "'"


def _conninfo_value(text: str) -> str:
    # libpq conninfo quoting differs from SQL: backslash-escape quotes and backslashes.
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


class PostgresServer(_ProcessService):
    """A throw-away PostgreSQL cluster listening on ``127.0.0.1:port`` with trust authentication.

    Args:
        port: TCP port on 127.0.0.1; ``None`` picks a free one.
        max_connections: the server's ``max_connections``; 3 of them stay reserved for the superuser.
        base_dir: where ``irxt-<uid>-pg`` with the server log is made. The cluster itself (data and
            socket) lives in ``/tmp/irxt-<uid>-pg`` (``runtime_dir``), owned by the postgres user.
        uid: the six-hex-digit id in every name; random when ``None``.
        start_timeout / stop_timeout: bounds in seconds for each phase.

    Runs with ``fsync=off`` (speed; the data is disposable). The postmaster is our child process and
    runs as the ``postgres`` user when we are root, since initdb and postgres refuse to run as root.
    ``stop()`` deletes the cluster unless called with ``keep_data=True`` (then ``start()`` resumes it).
    """

    kind = "pg"

    def __init__(
        self,
        port: int | None = None,
        max_connections: int = 20,
        base_dir: Path | str | None = None,
        *,
        uid: str | None = None,
        start_timeout: float = 30.0,
        stop_timeout: float = 15.0,
    ) -> None:
        super().__init__(base_dir, uid)
        self.port = port if port is not None else _proc.free_port()
        self.max_connections = max_connections
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self._user = _SERVICE_USER if os.geteuid() == 0 else None

    host = "127.0.0.1"
    superuser = "postgres"

    @property
    def runtime_dir(self) -> Path:
        """The cluster's own directory, outside ``base_dir``.

        The postgres user must traverse every parent of its data directory, and pytest's
        ``/tmp/pytest-of-root`` is 0700 and gets reset to 0700 by every pytest session that starts,
        so a cluster under ``tmp_path`` breaks whenever another session starts beside it.
        """
        return _names.RUNTIME_ROOT / f"{_names.marker(self.uid)}-{self.kind}"

    @property
    def data_dir(self) -> Path:
        """The cluster's data directory."""
        return self.runtime_dir / "data"

    @property
    def socket_dir(self) -> Path:
        """Directory of the unix socket (private, so two clusters never share ``/var/run/postgresql``)."""
        return self.runtime_dir

    @property
    def log_path(self) -> Path:
        """The server log (stderr of the postmaster)."""
        return self.workdir / "postgres.log"

    @property
    def dsn(self) -> str:
        """libpq DSN of the superuser over TCP."""
        return self.dsn_for(self.superuser, "postgres")

    def dsn_for(self, user: str, dbname: str, password: str | None = None) -> str:
        """libpq DSN for ``user`` on ``dbname`` over TCP (``connect_timeout`` 5 s so clients never hang)."""
        parts = [f"host={self.host}", f"port={self.port}", f"user={user}", f"dbname={dbname}"]
        if password is not None:
            parts.append(f"password={_conninfo_value(password)}")
        parts.append("connect_timeout=5")
        return " ".join(parts)

    def _start(self) -> None:
        pg_bin = find_pg_bin()
        initdb, postgres = pg_bin / "initdb", pg_bin / "postgres"
        for binary in (initdb, postgres):
            if not os.access(binary, os.X_OK):
                raise TestEnvError(f"{binary} missing or not executable")
        work = self.runtime_dir
        work.mkdir(mode=0o700, exist_ok=True)
        if self._user is not None:
            shutil.chown(work, self._user, self._user)
        if not (self.data_dir / "PG_VERSION").exists():
            _proc.run(
                [str(initdb), "-D", str(self.data_dir), "-U", self.superuser, "--auth=trust",
                 "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"],
                user=self._user,
                timeout=self.start_timeout,
                cwd=work,  # the caller's cwd may be closed to the postgres user
            )  # fmt: skip
        settings = {
            "listen_addresses": self.host,
            "port": str(self.port),
            "unix_socket_directories": str(self.socket_dir),
            "max_connections": str(self.max_connections),
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "logging_collector": "off",
        }
        argv = [str(postgres), "-D", str(self.data_dir)]
        for key, value in settings.items():
            argv += ["-c", f"{key}={value}"]
        self._proc = _proc.spawn(argv, log_path=self.log_path, cwd=work, user=self._user)
        try:
            _proc.wait_for(self._ready, timeout=self.start_timeout, what=f"postgres on port {self.port}")
        except TestEnvError as exc:
            raise TestEnvError(f"{exc}\n{_proc.log_tail(self.log_path)}") from exc

    def _ready(self) -> bool:
        if self._proc is not None and self._proc.poll() is not None:
            raise TestEnvError(f"postgres exited with {self._proc.returncode}:\n{_proc.log_tail(self.log_path)}")
        # postmaster.pid's 8th line turns to "ready" once connections are accepted (what pg_ctl -w reads).
        try:
            lines = (self.data_dir / "postmaster.pid").read_text().splitlines()
        except OSError:
            return False
        return len(lines) >= 8 and lines[7].strip() == "ready" and _proc.port_open(self.host, self.port)

    def _stop(self) -> None:
        if self._proc is not None:
            # SIGQUIT is postgres's immediate shutdown: no checkpoint, backends killed; fine for
            # throw-away data and fast.
            _proc.stop_child(self._proc, sig=signal.SIGQUIT, grace=self.stop_timeout, what="postgres")
            self._proc = None
        _proc.wait_for(
            lambda: not _proc.port_open(self.host, self.port, timeout=0.2),
            timeout=self.stop_timeout,
            what=f"port {self.port} to close",
        )

    def stop(self, *, keep_data: bool = False) -> None:
        """Stop the server (immediate shutdown); delete the cluster unless ``keep_data``."""
        super().stop()
        if not keep_data:
            shutil.rmtree(self.runtime_dir, ignore_errors=True)

    def psql(self, sql: str, *, dbname: str = "postgres", timeout: float = 30.0) -> str:
        """Run ``sql`` as the superuser with psql (stop on the first error); return its unaligned output.

        Each statement runs on its own (``-c`` per statement is the caller's job for CREATE DATABASE,
        which refuses a transaction block).
        """
        psql = find_pg_bin() / "psql"
        proc = _proc.run(
            [str(psql), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
             "-h", self.host, "-p", str(self.port), "-U", self.superuser, "-d", dbname, "-c", sql],
            timeout=timeout,
            env={**os.environ, "PGCONNECT_TIMEOUT": "5"},
        )  # fmt: skip
        return proc.stdout.strip()

    def create_role_and_db(
        self, role: str, password: str, *, dbname: str | None = None, connection_limit: int | None = None
    ) -> str:
        """Create login role ``role`` and database ``dbname`` (default: same name) owned by it.

        Returns the DSN for that role. ``connection_limit`` sets the role's own limit (``-1`` = none).
        """
        db = _ident(dbname if dbname is not None else role)
        limit = "" if connection_limit is None else f" CONNECTION LIMIT {int(connection_limit)}"
        self.psql(f"CREATE ROLE {_ident(role)} LOGIN PASSWORD {_literal(password)}{limit}")
        self.psql(f"CREATE DATABASE {db} OWNER {_ident(role)}")
        return self.dsn_for(role, db, password)

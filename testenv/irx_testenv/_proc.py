"""Subprocess and process-tree helpers shared by the test services.

Every call here is bounded in time: a test environment that hangs is worse than one that fails, because a
hung CI run says nothing about what went wrong.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any


class TestEnvError(RuntimeError):
    """A test service could not be started, queried or stopped; the message carries the command's stderr."""

    __test__ = False  # its name starts with "Test": keep pytest from trying to collect it


def find_binary(name: str, *candidates: str) -> str:
    """Return an absolute path to ``name``: the first existing candidate, else a PATH lookup.

    Candidates come first because ``/usr/sbin`` is often missing from a non-login PATH.
    """
    for cand in candidates:
        if os.access(cand, os.X_OK):
            return cand
    found = shutil.which(name)
    if found is None:
        raise TestEnvError(
            f"{name} not found (looked in {', '.join(candidates) or 'PATH'}); "
            "run scripts/install-system-deps.sh as root"
        )
    return os.path.abspath(found)


def run(
    argv: Sequence[str],
    *,
    timeout: float = 30.0,
    check: bool = True,
    user: str | None = None,
    input_text: str | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` to completion within ``timeout`` seconds and return its result.

    ``user`` switches to that account with ``runuser`` (root only). With ``check`` a non-zero exit raises
    ``TestEnvError`` quoting stderr; a timeout always raises.
    """
    full = list(argv)
    if user is not None and os.geteuid() == 0:
        full = [find_binary("runuser", "/usr/sbin/runuser", "/sbin/runuser"), "-u", user, "--", *full]
    try:
        proc = subprocess.run(
            full,
            capture_output=True,
            text=True,
            timeout=timeout,
            input=input_text,
            stdin=None if input_text is not None else subprocess.DEVNULL,
            env=None if env is None else dict(env),
            cwd=cwd,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise TestEnvError(f"timed out after {timeout:g}s: {_quote(full)}") from exc
    except OSError as exc:
        raise TestEnvError(f"cannot run {_quote(full)}: {exc}") from exc
    if check and proc.returncode != 0:
        detail = (proc.stderr.strip() or proc.stdout.strip())[-2000:]
        raise TestEnvError(f"exit {proc.returncode}: {_quote(full)}: {detail}")
    return proc


def spawn(
    argv: Sequence[str],
    *,
    log_path: Path,
    cwd: Path,
    user: str | None = None,
    env: Mapping[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """Start a long-running server in the foreground of its own session, output appended to ``log_path``.

    Servers run as our children (no self-daemonizing) so that stopping them can ``wait()`` and reap: a
    daemon reparented to a PID 1 that does not reap leaves zombies that look alive. The new session keeps
    a terminal Ctrl-C from reaching them before our own teardown does. ``env`` replaces the environment.
    """
    ids: dict[str, Any] = {}
    if user is not None and os.geteuid() == 0:
        # Drop supplementary groups too: Popen(user=...) alone would keep root's.
        account = pwd.getpwnam(user)
        ids = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}
    with open(log_path, "ab") as log:
        try:
            return subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=cwd,
                env=None if env is None else dict(env),
                start_new_session=True,
                **ids,
            )
        except OSError as exc:
            raise TestEnvError(f"cannot start {_quote(argv)}: {exc}") from exc


def wait_for(predicate: Callable[[], bool], *, timeout: float, what: str, interval: float = 0.05) -> None:
    """Poll ``predicate`` until it is true; raise ``TestEnvError`` naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return
        if time.monotonic() >= deadline:
            raise TestEnvError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """True if a TCP connection to ``host:port`` succeeds within ``timeout`` seconds."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``host`` right now (the kernel's pick, so unlikely to be reused soon)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def pid_alive(pid: int) -> bool:
    """True if ``pid`` exists and is not a zombie (a zombie holds no ports or files)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    # The state letter follows the parenthesised command name, which may itself contain ") ".
    return stat[stat.rindex(")") + 2] not in "ZX"


def _parents() -> dict[int, int]:
    table: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        table[int(entry.name)] = int(stat[stat.rindex(")") + 2 :].split()[1])
    return table


def descendants(pid: int) -> list[int]:
    """All live descendants of ``pid``, found by walking /proc (children first found, deepest last)."""
    parents = _parents()
    found: list[int] = []
    frontier = [pid]
    while frontier:
        current = frontier.pop()
        kids = [child for child, parent in parents.items() if parent == current]
        found.extend(kids)
        frontier.extend(kids)
    return found


def kill_tree(pid: int, *, timeout: float = 5.0) -> None:
    """SIGKILL ``pid`` and every descendant, then wait until none is alive.

    Descendants are collected before the kill because afterwards they are reparented and untraceable.
    """
    victims = [pid, *descendants(pid)]
    for victim in victims:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(victim, signal.SIGKILL)
    wait_for(lambda: not any(pid_alive(v) for v in victims), timeout=timeout, what=f"process tree {pid} to die")


def stop_child(
    proc: subprocess.Popen[bytes], *, sig: signal.Signals, grace: float, what: str, kill_timeout: float = 5.0
) -> None:
    """Stop a child from :func:`spawn`: send ``sig``, wait ``grace`` s, then SIGKILL it and its tree."""
    if proc.poll() is None:
        kids = descendants(proc.pid)
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            kill_tree(proc.pid, timeout=kill_timeout)
        # Children that outlived a graceful stop (e.g. nginx workers of a killed master) go too.
        for kid in kids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(kid, signal.SIGKILL)
    try:
        proc.wait(timeout=kill_timeout)
    except subprocess.TimeoutExpired as exc:
        raise TestEnvError(f"{what} (pid {proc.pid}) did not exit after SIGKILL") from exc


def log_tail(path: Path, limit: int = 2000) -> str:
    """The last ``limit`` characters of a log file, for error messages; empty if unreadable."""
    try:
        return path.read_text(errors="replace")[-limit:].strip()
    except OSError:
        return ""


def _quote(argv: Sequence[str]) -> str:
    return " ".join(argv)

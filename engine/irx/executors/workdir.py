"""The private directory of an Ansible session (batch files, artifacts: they may hold secrets), claimed by
the irx process that made it, and swept by the next run when that process died without removing it."""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
from pathlib import Path

SESSION_PREFIX = "irx-ansible-"
_OWNER = ".owner"  # flock'd by the irx process that owns a session directory, for as long as it lives


def claim(directory: Path) -> int:
    """Lock a new session directory for this process; the kernel drops the lock when it dies, however."""
    pending = directory / f"{_OWNER}.new"
    fd = os.open(pending, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    os.rename(pending, directory / _OWNER)  # visible to sweepers only once locked
    return fd


def sweep_leftovers(base: Path | None = None) -> list[Path]:
    """Remove the session directories of irx runs that died without cleaning up (``kill -9``).

    They hold rendered commands and Ansible's output, which may contain secrets. A directory whose owner
    still lives (its ``.owner`` is locked) is left alone, as is anything not made by this user.
    """
    removed: list[Path] = []
    for directory in Path(base or tempfile.gettempdir()).glob(f"{SESSION_PREFIX}*"):
        try:
            if directory.is_symlink() or directory.stat().st_uid != os.getuid():
                continue
            fd = os.open(directory / _OWNER, os.O_RDWR | os.O_CLOEXEC | os.O_NOFOLLOW)
        except OSError:  # not a session directory, or one being made
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # its run is alive
            os.close(fd)
            continue
        try:
            shutil.rmtree(directory, ignore_errors=True)
            removed.append(directory)
        finally:
            os.close(fd)
    return removed

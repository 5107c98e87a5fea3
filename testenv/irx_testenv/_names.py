"""Names of everything a test environment creates, all derived from one short unique id.

Every directory, namespace and network link carries ``irxt`` plus the id, so two test sessions on one
machine never collide and :func:`irx_testenv.leftovers` can find exactly what was left behind.
"""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path

PREFIX = "irxt"
# For what must live outside the caller's base_dir (see PostgresServer.runtime_dir). Not TMPDIR: it
# must be traversable by the postgres user, and /tmp always is.
RUNTIME_ROOT = Path(os.environ.get("IRX_TESTENV_RUNTIME", "/tmp"))  # noqa: S108
_UID_RE = re.compile(r"^[0-9a-f]{6}$")


def new_uid() -> str:
    """Six random hex digits: short enough for 15-character interface names, wide enough not to clash."""
    return secrets.token_hex(3)


def check_uid(uid: str) -> str:
    """Return ``uid`` if it has the shape :func:`new_uid` produces, else raise ``ValueError``."""
    if not _UID_RE.match(uid):
        raise ValueError(f"uid must be 6 lowercase hex digits, got {uid!r}")
    return uid


def marker(uid: str) -> str:
    """The string that appears in the paths (and so the command lines) of everything made for ``uid``."""
    return f"{PREFIX}-{uid}"


def workdir(base_dir: Path | str, uid: str, kind: str) -> Path:
    """Create and return ``base_dir/irxt-<uid>-<kind>``, the private directory of one service."""
    path = Path(base_dir).resolve() / f"{marker(uid)}-{kind}"
    path.mkdir(parents=True, exist_ok=True)
    return path

"""irx's host lease, shared by the ``irx_lease`` module and ``irx_command`` (which takes the lease beside the
step before a run's first change, in the same module run: one Ansible round less). See ``irx_lease``.

``lease_action(params)`` returns ``(failed, result)``: what the module answers, with ``outcome`` (the
lease's answer) or, when the file cannot be used, ``failed`` and ``msg``.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import stat
import time
from datetime import datetime, timezone
from typing import Any

ARGUMENT_SPEC: dict[str, dict[str, Any]] = {
    "action": {"type": "str", "required": True, "choices": ["acquire", "renew", "release"]},
    "path": {"type": "str", "required": True},
    "run_id": {"type": "str", "required": True},
    "holder": {"type": "dict", "default": {}},
    "ttl": {"type": "float", "default": 900.0},
    "force": {"type": "bool", "default": False},
    # A run irx knows is dead (its process on this same control node is gone): its lease is taken
    # as expired, only if it still is the one recorded (compare and swap, under the flock).
    "dead_run_id": {"type": "str", "default": ""},
}

_RECORD_MAX = 64 * 1024


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")  # noqa: UP017 (hosts may run Python < 3.11)


class NotALease(Exception):
    """The file at the lease path holds something else: it is never overwritten."""


def _read(fd: int) -> dict[str, Any] | None:
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        raise NotALease("is not a regular file")
    raw = os.pread(fd, _RECORD_MAX + 1, 0)
    if not raw.strip():
        return None
    try:
        data = json.loads(raw.decode("utf-8"))
    except ValueError:
        data = None
    if len(raw) > _RECORD_MAX or not isinstance(data, dict) or not isinstance(data.get("run_id"), str):
        raise NotALease("holds something that is not an irx lease record")
    return data


def _write(fd: int, record: dict[str, Any] | None) -> None:
    data = b"" if record is None else json.dumps(record, indent=2, sort_keys=True).encode("utf-8") + b"\n"
    os.ftruncate(fd, 0)
    if data:
        os.pwrite(fd, data, 0)
    os.fsync(fd)


def _alive(record: dict[str, Any] | None, now: float) -> bool:
    if record is None:
        return False
    try:
        return float(record.get("expires_at") or 0) > now
    except (TypeError, ValueError):
        return False


def _open(path: str) -> int:
    parent = os.path.dirname(path) or "."
    if not os.path.isdir(parent):
        os.makedirs(parent, mode=0o755, exist_ok=True)
    # O_NOFOLLOW: a symlink planted at the lease path never redirects the write elsewhere.
    return os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)


def lease_action(p: dict[str, Any]) -> tuple[bool, dict[str, Any]]:
    """One lease action on this host (``ARGUMENT_SPEC``'s parameters): (failed, what the module answers)."""
    path = os.path.expanduser(p["path"])
    if not os.path.isabs(path):
        return True, dict(failed=True, msg=f"the lease file must be an absolute path, not {path!r} (irx_lease_file)")
    try:
        fd = _open(path)
    except OSError as exc:
        who = os.environ.get("USER") or str(os.geteuid())
        hint = " (as root: declare become, or set irx_lease_file to a path this user can write)"
        return True, dict(
            failed=True,
            msg=f"cannot open the lease file {path} as {who}: {exc.strerror}"
            + (hint if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS) else ""),
            path=path,
            errno=exc.errno,
        )
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # held for microseconds by each acquirer: wait, do not fail
        now = time.time()
        current = _read(fd)
        ours = current is not None and current.get("run_id") == p["run_id"]
        dead = bool(p["dead_run_id"]) and current is not None and current.get("run_id") == p["dead_run_id"]
        other_alive = not ours and not dead and _alive(current, now)
        result: dict[str, Any] = {"path": path, "now": _iso(now), "current": current}
        action = p["action"]
        if action == "release":
            if ours:
                _write(fd, None)
            return False, dict(changed=ours, outcome="released" if ours else "not_ours", **result)
        if other_alive and not (action == "acquire" and p["force"]):
            return False, dict(outcome="held" if action == "acquire" else "lost", **result)
        record = dict(p["holder"])
        record.update(
            run_id=p["run_id"],
            since=current.get("since", _iso(now)) if ours and current else _iso(now),
            renewed=_iso(now),
            expires=_iso(now + p["ttl"]),
            expires_at=now + p["ttl"],
            ttl=p["ttl"],
        )
        _write(fd, record)
        if action == "renew":
            outcome = "renewed" if ours else "reacquired"
        else:
            outcome = "forced" if other_alive else "acquired" if ours or current is None else "stale"
        return False, dict(changed=True, outcome=outcome, lease=record, **result)
    except NotALease as exc:  # irx_lease_file pointed at another file: refuse, never clobber it
        return True, dict(
            failed=True, msg=f"the lease file {path} {exc}: refusing to overwrite it (check irx_lease_file)", path=path
        )
    except OSError as exc:
        return True, dict(failed=True, msg=f"lease file {path}: {exc.strerror or exc}", path=path)
    finally:
        os.close(fd)

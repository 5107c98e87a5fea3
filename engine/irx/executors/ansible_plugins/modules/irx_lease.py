#!/usr/bin/python
"""Ansible module ``irx_lease``: the lease a mutating irx run holds on each host it may change.

The control node's host lock (``irx.lock``) only meets runs started on the same machine. The lease lives
on the target host itself, so two operators on two control nodes meet there: a small JSON record (who,
run id, playbook, control node, since, expiry) in one file per host, read and replaced under ``flock`` so
two acquirers on the host never both win.

Times are the host's own clock: ``expires_at`` is the host's ``time.time()`` plus the run's ttl when it
last renewed, so control nodes with skewed clocks still agree on whether a lease is alive. A run that dies
without releasing (``kill -9``, a lost control node) leaves a record that expires by itself.

Actions (``action``):

- ``acquire``: take the lease. Held by another run and not expired: ``held`` (unless ``force``: then
  ``forced``, the displaced record in ``current``). An expired record of another run: ``stale``, taken.
- ``renew``: extend this run's lease (``renewed``). Taken by a live other run meanwhile: ``lost``. Expired
  or released meanwhile and nobody else holds it: taken again (``reacquired``).
- ``release``: clear the record if it is still this run's (``released``); otherwise leave it (``not_ours``).

The answer is in ``outcome`` (the module fails only when the file cannot be used), with the record found
in ``current`` and the one written in ``lease``.
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

from ansible.module_utils.basic import AnsibleModule

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


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "action": {"type": "str", "required": True, "choices": ["acquire", "renew", "release"]},
            "path": {"type": "str", "required": True},
            "run_id": {"type": "str", "required": True},
            "holder": {"type": "dict", "default": {}},
            "ttl": {"type": "float", "default": 900.0},
            "force": {"type": "bool", "default": False},
            # A run irx knows is dead (its process on this same control node is gone): its lease is taken
            # as expired, only if it still is the one recorded (compare and swap, under the flock).
            "dead_run_id": {"type": "str", "default": ""},
        },
        supports_check_mode=False,
    )
    p = module.params
    path = os.path.expanduser(p["path"])
    if not os.path.isabs(path):
        module.fail_json(msg=f"the lease file must be an absolute path, not {path!r} (irx_lease_file)")
    try:
        fd = _open(path)
    except OSError as exc:
        who = os.environ.get("USER") or str(os.geteuid())
        hint = " (as root: declare become, or set irx_lease_file to a path this user can write)"
        module.fail_json(
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
            module.exit_json(changed=ours, outcome="released" if ours else "not_ours", **result)
        if other_alive and not (action == "acquire" and p["force"]):
            module.exit_json(outcome="held" if action == "acquire" else "lost", **result)
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
        module.exit_json(changed=True, outcome=outcome, lease=record, **result)
    except NotALease as exc:  # irx_lease_file pointed at another file: refuse, never clobber it
        module.fail_json(msg=f"the lease file {path} {exc}: refusing to overwrite it (check irx_lease_file)", path=path)
    except OSError as exc:
        module.fail_json(msg=f"lease file {path}: {exc.strerror or exc}", path=path)
    finally:
        os.close(fd)


if __name__ == "__main__":
    main()

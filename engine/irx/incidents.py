"""The incident book: one incident per alert group, durable, shared by every ``irx serve`` worker.

Alertmanager sends a group's state again and again (every group_interval while it changes, every
repeat_interval while it does not, and once more when it resolves), and during a storm hundreds of groups at
once. The book turns that stream into incidents: the first firing notification of a group opens one
(queued), repeats and the resolution are recorded on it, and a new incident opens only after the previous
one of the group resolved — so a group that keeps firing after its run finished is not remediated in a
loop. A cap on concurrent runs turns the rest into a queue, oldest first.

Layout under ``root``: one directory per group (``<sha256 of receiver and groupKey, 16 hex>/``) holding
``group.json`` and the group's incidents ``0001.json``, ``0002.json``...; every change happens under one
``flock`` on ``root/.lock`` and is written to a temporary file and renamed, so a reader or a crash never
sees half a record and two workers never open two incidents for one group.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from irx.alerts import Notification

State = Literal["queued", "running", "finished", "refused"]
Received = Literal["new", "repeat", "resolved"]


@dataclass(frozen=True)
class Incident:
    id: str  # <group digest>-<number>: stable, safe as a path segment and in a URL
    group_key: str
    receiver: str
    route: str | None
    state: State
    opened: float
    updated: float
    notifications: int = 1
    status: str = "firing"  # the alert group's last status: firing or resolved
    resolved_at: float | None = None
    fingerprints: tuple[str, ...] = ()
    labels: dict[str, str] = dataclasses.field(default_factory=dict)
    params: dict[str, Any] = dataclasses.field(default_factory=dict)  # from the route, read at the first firing
    limit: str | None = None
    run_id: str | None = None
    pid: int | None = None
    outcome: str | None = None
    reason: str | None = None

    @property
    def open(self) -> bool:
        """Still the group's current incident: its alert has not resolved, or its run has not ended."""
        return self.status != "resolved" or self.state in ("queued", "running")


class IncidentBook:
    def __init__(self, root: Path) -> None:
        self.root = root

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(self.root / ".lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def receive(
        self,
        note: Notification,
        route: str | None,
        now: float,
        *,
        params: dict[str, Any] | None = None,
        limit: str | None = None,
        refused: str | None = None,
    ) -> tuple[Incident, Received]:
        """Record ``note`` on its group's open incident, or open one.

        A new incident is queued, or refused (with the reason) when no route matches, when the route could
        not use the alert (``refused``: a missing label, a limit that is no host), or when it already resolved.
        """
        digest = hashlib.sha256(f"{note.receiver}\0{note.group_key}".encode()).hexdigest()[:16]
        with self._locked():
            group = self.root / digest
            current = self._current(group)
            if current is not None and current.open:
                resolved = note.status == "resolved"
                changed = dataclasses.replace(
                    current,
                    updated=now,
                    notifications=current.notifications + 1,
                    status=note.status,
                    resolved_at=now if resolved and current.resolved_at is None else current.resolved_at,
                    fingerprints=tuple(sorted(set(current.fingerprints) | set(note.fingerprints))),
                )
                self._write(group, changed)
                return changed, "resolved" if resolved else "repeat"
            number = int(current.id.rsplit("-", 1)[1]) + 1 if current else 1
            group.mkdir(exist_ok=True, mode=0o700)
            _atomic(group / "group.json", {"group_key": note.group_key, "receiver": note.receiver})
            incident = Incident(
                id=f"{digest}-{number:04d}",
                group_key=note.group_key,
                receiver=note.receiver,
                route=route,
                state="queued" if route and note.status == "firing" and not refused else "refused",
                opened=now,
                updated=now,
                status=note.status,
                resolved_at=now if note.status == "resolved" else None,
                fingerprints=note.fingerprints,
                labels=dict(note.common_labels),
                params=dict(params or {}),
                limit=limit,
                reason=_refusal(route, note, refused),
            )
            self._write(group, incident)
            return incident, "new"

    def claim(self, max_running: int, now: float) -> list[Incident]:
        """Move the oldest queued incidents to running while fewer than ``max_running`` run; return them."""
        with self._locked():
            every = self._all()
            running = sum(1 for i in every if i.state == "running")
            queued = sorted((i for i in every if i.state == "queued"), key=lambda i: (i.opened, i.id))
            claimed = []
            for incident in queued[: max(0, max_running - running)]:
                changed = dataclasses.replace(incident, state="running", updated=now)
                self._write(self.root / _parts(incident.id)[0], changed)
                claimed.append(changed)
            return claimed

    def update(self, incident_id: str, now: float, **fields: Any) -> Incident:
        """Set fields of one incident (run_id, state, outcome, reason) and return it."""
        digest, number = _parts(incident_id)
        with self._locked():
            group = self.root / digest
            try:
                current = self._read(group / f"{number}.json")
            except FileNotFoundError:
                raise KeyError(f"no incident {incident_id!r}") from None
            changed = dataclasses.replace(current, updated=now, **fields)
            self._write(group, changed)
            return changed

    def incidents(self) -> list[Incident]:
        """Every incident, newest first."""
        with self._locked():
            return sorted(self._all(), key=lambda i: (i.opened, i.id), reverse=True)

    def _all(self) -> list[Incident]:
        if not self.root.is_dir():
            return []
        return [self._read(p) for p in sorted(self.root.glob("*/[0-9][0-9][0-9][0-9].json"))]

    def _current(self, group: Path) -> Incident | None:
        files = sorted(group.glob("[0-9][0-9][0-9][0-9].json")) if group.is_dir() else []
        return self._read(files[-1]) if files else None

    @staticmethod
    def _read(path: Path) -> Incident:
        data = json.loads(path.read_text(encoding="utf-8"))
        data["fingerprints"] = tuple(data.get("fingerprints", ()))
        return Incident(**data)

    @staticmethod
    def _write(group: Path, incident: Incident) -> None:
        _atomic(group / f"{_parts(incident.id)[1]}.json", dataclasses.asdict(incident))


def _refusal(route: str | None, note: Notification, refused: str | None) -> str | None:
    if route is None:
        return "no route matches the alert group's labels"
    if refused:
        return refused
    if note.status == "resolved":
        return "the group resolved before irx saw it firing"
    return None


def _parts(incident_id: str) -> tuple[str, str]:
    """The group digest and number of an incident id, checked: no path is ever built from an unchecked id."""
    digest, _, number = incident_id.rpartition("-")
    if len(digest) != 16 or any(c not in "0123456789abcdef" for c in digest):
        raise KeyError(f"no incident {incident_id!r}")
    if len(number) != 4 or any(c not in "0123456789" for c in number):
        raise KeyError(f"no incident {incident_id!r}")
    return digest, number


def _atomic(path: Path, data: dict[str, Any]) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(temporary, "w", encoding="utf-8") as handle:
        json.dump(data, handle, sort_keys=True)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)

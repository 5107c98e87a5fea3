"""Who is logged in to the approval page: server-side sessions, their CSRF tokens, and a login rate limit.

A session is a random id (256 bits) in an HttpOnly, SameSite=Strict cookie (Secure under TLS); the server
keeps, per id, the approver's name, a CSRF token bound to that session, and when it expires (idle and
absolute). Nothing is stored in the cookie itself, so logging out ends the session for good, and a restart
of ``irx serve`` logs everyone out. The tables are bounded: a flood of logins cannot grow them without end.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field

IDLE_SECONDS = 60 * 60  # a session nobody used for an hour ends
MAX_SECONDS = 12 * 60 * 60  # and every session ends after 12 hours
MAX_SESSIONS = 10_000
FAILED_WINDOW = 300.0  # seconds over which failed logins are counted
MAX_FAILED_PER_NAME = 5
MAX_FAILED_PER_CLIENT = 20
MAX_TRACKED = 10_000  # names and clients the limiter remembers


@dataclass
class Session:
    """One logged-in approver."""

    name: str
    csrf: str
    created: float
    used: float
    flash: list[str] = field(default_factory=list)  # messages for the next page this session sees

    def csrf_ok(self, given: str) -> bool:
        return hmac.compare_digest(self.csrf.encode(), given.encode())


def _key(session_id: str) -> str:
    # The table is keyed by a digest: a timing side channel in dict lookups says nothing about a live id.
    return hashlib.sha256(session_id.encode()).hexdigest()


class Sessions:
    """The live sessions of this process; safe to use from several threads."""

    def __init__(self, idle: float = IDLE_SECONDS, most: float = MAX_SECONDS) -> None:
        self._table: dict[str, Session] = {}
        self._lock = threading.Lock()
        self.idle, self.most = idle, most

    def create(self, name: str, now: float | None = None) -> tuple[str, Session]:
        """A new session for ``name``: its id (for the cookie) and the session."""
        now = time.time() if now is None else now
        session_id = secrets.token_urlsafe(32)
        session = Session(name=name, csrf=secrets.token_urlsafe(32), created=now, used=now)
        with self._lock:
            self._expire(now)
            if len(self._table) >= MAX_SESSIONS:  # drop the least recently used one
                oldest = min(self._table, key=lambda key: self._table[key].used)
                del self._table[oldest]
            self._table[_key(session_id)] = session
        return session_id, session

    def get(self, session_id: str | None, now: float | None = None) -> Session | None:
        """The live session of ``session_id`` (and it counts as used), or None."""
        if not session_id or len(session_id) > 100:
            return None
        now = time.time() if now is None else now
        with self._lock:
            session = self._table.get(_key(session_id))
            if session is None:
                return None
            if now - session.used > self.idle or now - session.created > self.most:
                del self._table[_key(session_id)]
                return None
            session.used = now
            return session

    def end(self, session_id: str | None) -> None:
        if session_id:
            with self._lock:
                self._table.pop(_key(session_id), None)

    def _expire(self, now: float) -> None:
        gone = [k for k, s in self._table.items() if now - s.used > self.idle or now - s.created > self.most]
        for key in gone:
            del self._table[key]


class LoginLimiter:
    """Failed logins per name and per client over the last few minutes; past the limit, logins wait."""

    def __init__(
        self,
        per_name: int = MAX_FAILED_PER_NAME,
        per_client: int = MAX_FAILED_PER_CLIENT,
        window: float = FAILED_WINDOW,
    ) -> None:
        self.per_name, self.per_client, self.window = per_name, per_client, window
        self._failed: dict[tuple[str, str], deque[float]] = {}
        self._lock = threading.Lock()

    def wait_for(self, name: str, client: str, now: float | None = None) -> float:
        """Seconds until ``name`` may try again from ``client``; 0: now."""
        now = time.time() if now is None else now
        with self._lock:
            waits = [
                self._wait(("name", name), self.per_name, now),
                self._wait(("client", client), self.per_client, now),
            ]
        return max(waits)

    def failed(self, name: str, client: str, now: float | None = None) -> None:
        now = time.time() if now is None else now
        with self._lock:
            if len(self._failed) >= MAX_TRACKED:
                self._forget(now)
            for key in (("name", name), ("client", client)):
                self._failed.setdefault(key, deque(maxlen=max(self.per_name, self.per_client))).append(now)

    def succeeded(self, name: str, client: str) -> None:
        """A login counted as failed before its check succeeded: forget the name's failures and this
        attempt of the client's."""
        with self._lock:
            self._failed.pop(("name", name), None)
            times = self._failed.get(("client", client))
            if times:
                times.pop()

    def _wait(self, key: tuple[str, str], limit: int, now: float) -> float:
        times = self._failed.get(key)
        if not times:
            return 0.0
        recent = [t for t in times if now - t < self.window]
        if len(recent) < limit:
            return 0.0
        return recent[-limit] + self.window - now

    def _forget(self, now: float) -> None:
        stale = [key for key, times in self._failed.items() if not times or now - times[-1] >= self.window]
        for key in stale:
            del self._failed[key]
        while len(self._failed) >= MAX_TRACKED:  # all recent: drop the oldest
            oldest = min(self._failed, key=lambda key: self._failed[key][-1])
            del self._failed[oldest]

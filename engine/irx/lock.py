"""One mutating run per playbook and target host set at a time.

Two on-call engineers paged by the same alert must not both restart the same service. ``RunLock.acquire``
takes an exclusive ``flock`` on a file named by the SHA-256 of (playbook, sorted hosts) under the lock
directory, and writes who holds it into the file. ``flock`` is the point: the kernel releases it when the
holder dies, however it dies, so a ``kill -9``'d run never leaves a stale lock and nobody is ever told to
delete a lock file by hand. Lock files are left in place after release (removing them would race with the
next acquirer); they are a few hundred bytes each, one per playbook and host set.

A second run is refused with ``LockHeld``, naming the holder. ``force=True`` takes over: the lock file is
atomically replaced by a new one locked by the forcing run, the previous holder keeps a lock on a file
nobody else will open, and the returned ``RunLock`` says it was forced and whom it displaced, for the
timeline. Locks are advisory and local to the machine (and to filesystems where ``flock`` works).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import tempfile
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from irx import events
from irx.errors import ExitCode, IrxError, UsageError
from irx.timeline import utc_timestamp


class LockHeld(IrxError):
    """Another live run holds the lock for this playbook and host set.

    Exit code 2 (usage), like every refusal before anything ran: nothing was changed, and the operator
    acts on the message -- wait for the other run, talk to its owner, or rerun with ``--force``.
    """

    exit_code = ExitCode.USAGE

    def __init__(self, holder: LockHolder, host: str | None = None, until: str = "") -> None:
        if host is None:
            what = f"playbook {holder.playbook} on {_count(len(holder.hosts), 'host')} is already being run by"
        else:
            what = f"host {host} is already being changed by playbook {holder.playbook}, run by"
        # until: the holder's lease on the host itself (irx.lease), which ends then unless renewed.
        lease = f"; its lease on the host runs until {until} unless renewed" if until else ""
        super().__init__(
            f"{what} {holder.operator} (run {holder.run_id}, pid {holder.pid}, since {holder.started}{lease}); "
            "use --force to override"
        )
        self.holder = holder
        self.host = host


@dataclass(frozen=True)
class LockHolder:
    """Who holds (or held) a lock, as written into the lock file."""

    run_id: str
    operator: str
    pid: int
    started: str  # UTC timestamp
    playbook: str
    hosts: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["hosts"] = list(self.hosts)
        return data

    @classmethod
    def from_text(cls, text: str) -> LockHolder | None:
        """The holder recorded in a lock file, or ``None`` for an empty or unreadable record."""
        try:
            data = json.loads(text)
            return cls(
                run_id=str(data["run_id"]),
                operator=str(data["operator"]),
                pid=int(data["pid"]),
                started=str(data["started"]),
                playbook=str(data["playbook"]),
                hosts=tuple(str(host) for host in data["hosts"]),
            )
        except (ValueError, TypeError, KeyError):
            return None


def default_lock_dir() -> Path:
    """``$IRX_LOCK_DIR`` if set, else ``$XDG_STATE_HOME/irx/locks`` (``~/.local/state/irx/locks``): the same
    for every directory irx is started from, so a run from another checkout meets the same locks."""
    configured = os.environ.get("IRX_LOCK_DIR", "")
    if configured:
        return Path(configured).expanduser()
    state = os.environ.get("XDG_STATE_HOME", "") or str(Path.home() / ".local" / "state")
    return Path(state).expanduser() / "irx" / "locks"


def lock_key(playbook: str, hosts: Iterable[str]) -> str:
    """The identity of a lock: the playbook and its target hosts, order and duplicates ignored."""
    return json.dumps({"playbook": playbook, "hosts": sorted(set(hosts))}, separators=(",", ":"))


def lock_path(lock_dir: Path, playbook: str, hosts: Iterable[str]) -> Path:
    digest = hashlib.sha256(lock_key(playbook, hosts).encode("utf-8")).hexdigest()
    return Path(lock_dir) / f"{digest}.lock"


class RunLock:
    """A held run lock. ``forced``: it was taken over from ``previous``; ``stale``: the last holder died
    without releasing it (its record was still in the file). Release with ``release()`` or ``with``."""

    def __init__(
        self,
        path: Path,
        fd: int,
        holder: LockHolder,
        *,
        forced: bool = False,
        previous: LockHolder | None = None,
        stale: LockHolder | None = None,
    ) -> None:
        self.path = path
        self.holder = holder
        self.forced = forced
        self.previous = previous
        self.stale = stale
        self._fd: int | None = fd

    @classmethod
    def acquire(
        cls,
        lock_dir: Path,
        playbook: str,
        hosts: Iterable[str],
        run_id: str,
        operator: str,
        force: bool = False,
    ) -> RunLock:
        """Take the lock for ``playbook`` on ``hosts``, or raise ``LockHeld`` naming its live holder.

        With ``force``, a held lock is taken over and the result has ``forced=True`` and ``previous``.
        """
        host_list = tuple(sorted(set(hosts)))
        path = lock_path(lock_dir, playbook, host_list)
        holder = LockHolder(run_id, operator, os.getpid(), utc_timestamp(), playbook, host_list)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            return cls._acquire(path, holder, force)
        except OSError as exc:
            raise UsageError(f"cannot take the run lock {path}: {exc.strerror or exc}") from None

    @classmethod
    def _acquire(cls, path: Path, holder: LockHolder, force: bool) -> RunLock:
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                current = _read_holder(fd, wait=True)
                os.close(fd)
                if not force:
                    raise LockHeld(current or _unknown_holder(holder)) from None
                return cls._take_over(path, holder, current)
            except BaseException:
                os.close(fd)
                raise
            # A forcing run may have replaced the file between our open and our flock: then we locked an
            # orphan, and must start again on the file the path names now.
            if _same_file(fd, path):
                stale = _read_holder(fd, wait=False)
                _write_holder(fd, holder)
                return cls(path, fd, holder, stale=stale)
            os.close(fd)

    @classmethod
    def _take_over(cls, path: Path, holder: LockHolder, previous: LockHolder | None) -> RunLock:
        fd, temp = tempfile.mkstemp(prefix=".force-", suffix=".lock", dir=path.parent)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            _write_holder(fd, holder)
            os.chmod(temp, 0o644)
            os.replace(temp, path)
        except BaseException:
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise
        return cls(path, fd, holder, forced=True, previous=previous)

    def lock_event(self, *, released: bool = False, host: str | None = None) -> events.Lock:
        """The timeline ``lock`` event for this lock: ``journal.record(lock.lock_event())``."""
        action = "released" if released else "forced" if self.forced else "acquired"
        return events.Lock(
            host=host,
            action=action,
            holder=self.holder.to_dict(),
            path=str(self.path),
            previous=self.previous.to_dict() if not released and self.previous is not None else None,
            stale=self.stale.to_dict() if not released and self.stale is not None else None,
        )

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        """Clear the holder record and drop the lock; idempotent."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)  # while still locked: nobody reads a half-cleared record
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()


def _write_holder(fd: int, holder: LockHolder) -> None:
    data = json.dumps(holder.to_dict(), indent=2).encode("utf-8") + b"\n"
    os.ftruncate(fd, 0)
    os.pwrite(fd, data, 0)
    os.fsync(fd)


def _read_holder(fd: int, *, wait: bool) -> LockHolder | None:
    """The record in a lock file; with ``wait``, give a holder that just locked it a moment to write it."""
    for _ in range(20 if wait else 1):
        text = os.pread(fd, 64 * 1024, 0).decode("utf-8", errors="replace")
        holder = LockHolder.from_text(text)
        if holder is not None:
            return holder
        if wait:
            time.sleep(0.01)
    return None


def _unknown_holder(ours: LockHolder) -> LockHolder:
    return LockHolder("unknown", "an unknown operator", 0, "an unknown time", ours.playbook, ours.hosts)


def _same_file(fd: int, path: Path) -> bool:
    try:
        by_path = os.stat(path)
    except FileNotFoundError:
        return False
    by_fd = os.fstat(fd)
    return (by_fd.st_dev, by_fd.st_ino) == (by_path.st_dev, by_path.st_ino)


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def host_lock_path(lock_dir: Path, identity: str) -> Path:
    """The lock file of one target host, named by what identifies the machine (irx.run: address and port,
    or ``local``), so the same host reached under two inventory names shares one lock."""
    digest = hashlib.sha256(json.dumps({"host": identity}).encode("utf-8")).hexdigest()
    return Path(lock_dir) / "hosts" / f"{digest}.lock"


class HostLocks:
    """One lock per target host a mutating run may change, whatever the playbook or ``--limit``: a second
    run that would change any of them is refused naming that host's holder. Taken in a fixed order (no
    two runs wait on each other), all or none; ``force`` takes over every held one, recorded per host."""

    def __init__(self, locks: list[tuple[str, RunLock]]) -> None:
        self.locks = locks  # (host name, its lock)

    @classmethod
    def acquire(
        cls,
        lock_dir: Path,
        playbook: str,
        hosts: Mapping[str, str],  # inventory name -> machine identity
        run_id: str,
        operator: str,
        force: bool = False,
    ) -> HostLocks:
        names = tuple(sorted(hosts))
        holder = LockHolder(run_id, operator, os.getpid(), utc_timestamp(), playbook, names)
        taken: list[tuple[str, RunLock]] = []
        by_identity: dict[str, str] = {}
        for name in names:
            by_identity.setdefault(hosts[name], name)
        try:
            for identity in sorted(by_identity):
                path = host_lock_path(lock_dir, identity)
                try:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    taken.append((by_identity[identity], RunLock._acquire(path, holder, force)))
                except LockHeld as exc:
                    raise LockHeld(exc.holder, host=by_identity[identity]) from None
                except OSError as exc:
                    raise UsageError(f"cannot take the host lock {path}: {exc.strerror or exc}") from None
        except BaseException:
            for _, lock in taken:
                lock.release()
            raise
        return cls(taken)

    @property
    def forced(self) -> bool:
        return any(lock.forced for _, lock in self.locks)

    def lock_events(self, *, released: bool = False) -> list[events.Lock]:
        """One timeline ``lock`` event per host."""
        return [lock.lock_event(released=released, host=host) for host, lock in self.locks]

    def release(self) -> None:
        for _, lock in self.locks:
            lock.release()

    def __enter__(self) -> HostLocks:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()

"""The run journal: one directory per run, holding ``timeline.jsonl``, one JSON event per line.

Durability is the point. Each event is serialised to one line and written with a single ``os.write`` on an
``O_APPEND`` descriptor, then ``fsync``'d before ``Journal.event`` returns: when irx is killed with
``kill -9``, every event already recorded is on disk and intact, and at most the line being written is torn.
``read_journal`` (``irx.journal_read``, re-exported here) reads such a file back without losing anything: a
torn last line and corrupted lines are reported as problems, every intact event is kept.

Secrets never reach the disk: every string in an event, keys included, goes through the run's ``Redactor``
first, and command output is redacted before it is capped, so a cap cannot cut a secret in two and leak
half of it. The event format is described by ``schemas/timeline.schema.json`` (``"v": 1``); reports are
rendered from the journal alone.

While a run is being written, its journal holds an exclusive ``flock``; the kernel drops it when the process
dies, however it dies. A journal without ``run_finished`` is therefore told apart reliably: still locked, the
run is ``running``; unlocked, it was killed (``interrupted``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import fcntl
import getpass
import json
import math
import os
import secrets
import socket
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path, PurePath
from typing import Any

from irx.errors import IrxError, UsageError
from irx.events import Event
from irx.journal_read import (
    INCOMPLETE,
    RUNNING,
    TIMELINE_FILE,
    JournalRead,
    RunSummary,
    default_runs_dir,
    list_runs,
    parse_timestamp,
    read_journal,
    resolve_run,
    summarize_run,
)
from irx.redact import Redactor

# The write side, and the read side (irx.journal_read) re-exported: `from irx.timeline import read_journal` works.
__all__ = [
    "EVENT_TYPES",
    "FORMAT_VERSION",
    "HOST_STATUSES",
    "INCOMPLETE",
    "OUTPUT_CAP",
    "RUNNING",
    "RUN_STATUSES",
    "STEP_STATUSES",
    "TIMELINE_FILE",
    "Journal",
    "JournalError",
    "JournalRead",
    "RunSummary",
    "cap_output",
    "current_operator",
    "default_runs_dir",
    "list_runs",
    "new_run_id",
    "parse_timestamp",
    "read_journal",
    "resolve_run",
    "summarize_run",
    "utc_timestamp",
]

FORMAT_VERSION = 1
OUTPUT_CAP = 64 * 1024  # bytes of UTF-8 kept per stdout/stderr of one host result

EVENT_TYPES: tuple[str, ...] = (
    "run_started",
    "run_resumed",
    "phase_started",
    "phase_finished",
    "step_started",
    "host_result",
    "step_finished",
    "decision",
    "approval_requested",
    "approval_given",
    "approval_escalated",
    "approval",
    "notification",
    "error",
    "lock",
    "lease",
    "run_finished",
)
RUN_STATUSES: tuple[str, ...] = (
    "verified",
    "failed",
    "rolled_back",
    "awaiting_approval",
    "interrupted",
    "dry_run",
    "aborted",
)
HOST_STATUSES: tuple[str, ...] = ("ok", "failed", "skipped", "unreachable", "timed_out")
STEP_STATUSES: tuple[str, ...] = (
    "ok",
    "failed",
    "skipped",
    "timed_out",
    "would_run",
    "not_run",
    "interrupted",
)

_HEADER = ("v", "seq", "ts", "run_id", "type")
_OUTPUT_FIELDS = ("stdout", "stderr")
# Fields irx fills from its own vocabulary, never from user data: redacting them could only break the
# format (a secret "ok" would mask every status). Top-level numbers and booleans (rc, seq, duration,
# exit_code, flags) are irx's own counters and codes and are not redacted either.
_VOCABULARY = frozenset({"phase", "status", "action", "decision", "method", "mode", "severity", "kind"})
_TRUNCATION_MARK = "\n[... {omitted} bytes omitted by irx (output cap {cap} bytes) ...]\n"


class JournalError(IrxError):
    """The journal cannot be created or written: its directory is unwritable, the disk is full.

    Exit code 2 (usage): nothing about the playbook is wrong, the operator must fix the runs directory
    (``--runs-dir`` / ``IRX_RUNS_DIR``) or free space, and rerun.
    """


def new_run_id(now: datetime | None = None) -> str:
    """A run id that sorts by start time: ``20261122T110944Z-3fa9c1`` (UTC second, then 6 random hex)."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    return f"{moment:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def utc_timestamp(moment: datetime | None = None) -> str:
    """UTC ISO-8601 with microseconds and ``Z``: ``2026-11-22T11:09:44.123456Z``."""
    moment = (moment or datetime.now(UTC)).astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def current_operator() -> str:
    """Who is running irx, as recorded in the journal, locks and approvals: ``user@host``."""
    try:
        user = getpass.getuser()
    except (OSError, KeyError):  # no passwd entry and no LOGNAME/USER (minimal containers)
        user = f"uid{os.getuid()}"
    return f"{user}@{socket.gethostname()}"


def cap_output(text: str, limit: int = OUTPUT_CAP) -> tuple[str, bool]:
    """``text`` cut to at most ``limit`` bytes of UTF-8, and whether it was cut.

    Both ends are kept, the middle is replaced by one line saying how much was omitted: the start of an
    output shows what ran, its end usually shows why it failed. Characters are never split.
    """
    data = text.encode("utf-8", errors="surrogatepass")
    if len(data) <= limit:
        return text, False
    mark = _TRUNCATION_MARK.format(omitted=len(data), cap=limit)  # the longest it can be
    room = max(limit - len(mark.encode()), 0)
    head = _char_boundary(data, room - room // 2)
    tail = _char_boundary(data, len(data) - room // 2, forward=True)
    mark = _TRUNCATION_MARK.format(omitted=tail - head, cap=limit)
    kept = data[:head].decode("utf-8", "surrogatepass"), data[tail:].decode("utf-8", "surrogatepass")
    return kept[0] + mark + kept[1], True


def _char_boundary(data: bytes, index: int, *, forward: bool = False) -> int:
    """``index`` moved off any UTF-8 continuation byte: back to its character's start, or forward past it."""
    step = 1 if forward else -1
    while 0 < index < len(data) and data[index] & 0xC0 == 0x80:
        index += step
    return index


class Journal:
    """The append-only, fsync'd writer of one run's ``timeline.jsonl``. Thread-safe.

    Create it with ``Journal.create``; record with ``event``; ``close`` when the run ends (also a context
    manager). Every event gets ``v``, ``seq`` (1, 2, ...), ``ts``, ``run_id`` and ``type``; fields whose
    value is ``None`` are left out.
    """

    def __init__(self, run_dir: Path, run_id: str, fd: int, redactor: Redactor, output_cap: int) -> None:
        self.run_dir = run_dir
        self.run_id = run_id
        self.path = run_dir / TIMELINE_FILE
        self.redactor = redactor
        self.output_cap = output_cap
        self._fd: int | None = fd
        self._seq = 0
        self._lock = threading.Lock()
        self._torn = False  # a failed write may have left part of a line: end it before the next one

    @classmethod
    def create(cls, runs_dir: Path, run_id: str, redactor: Redactor, *, output_cap: int = OUTPUT_CAP) -> Journal:
        """Make ``<runs_dir>/<run_id>/`` and its empty ``timeline.jsonl``, locked for this process.

        Refuses a run id that is not a plain name and a run directory that already exists: a journal is
        never appended to by a second run.
        """
        if not _valid_run_id(run_id):
            raise UsageError(f"invalid run id {run_id!r}: use letters, digits, '.', '_' and '-'")
        run_dir = Path(runs_dir) / run_id
        try:
            run_dir.parent.mkdir(parents=True, exist_ok=True)
        except FileExistsError:  # exist_ok still refuses a file in the way
            raise JournalError(f"cannot create the run directory {run_dir}: Not a directory") from None
        except OSError as exc:
            raise JournalError(f"cannot create the run directory {run_dir}: {exc.strerror}") from None
        try:
            run_dir.mkdir(mode=0o700)
        except FileExistsError:
            raise JournalError(f"{run_dir}: a run with this id already exists") from None
        except OSError as exc:
            raise JournalError(f"cannot create the run directory {run_dir}: {exc.strerror}") from None
        path = run_dir / TIMELINE_FILE
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC
        try:
            fd = os.open(path, flags, 0o600)
        except OSError as exc:
            raise JournalError(f"cannot create the journal {path}: {exc.strerror}") from None
        # Held until close or death; blocking, because a reader may hold a shared lock for a moment.
        with contextlib.suppress(OSError):  # a filesystem without flock only loses "running" detection
            fcntl.flock(fd, fcntl.LOCK_EX)
        # The new directory entries must survive a crash too, not only the lines written into the file.
        for directory in (run_dir, run_dir.parent):
            _fsync_directory(directory)
        return cls(run_dir, run_id, fd, redactor, output_cap)

    @classmethod
    def reopen(
        cls, run_dir: Path, redactor: Redactor, *, output_cap: int = OUTPUT_CAP, read_seq: int | None = None
    ) -> Journal:
        """Open the journal of a run that ended, to append its continuation (``irx resume``): locked for
        this process, numbering on from its last event. Refused while another process holds it, and, given
        ``read_seq`` (the last seq when the continuation was planned), when it grew since: another
        ``irx resume`` continued the run in between, and this plan is stale."""
        path = Path(run_dir) / TIMELINE_FILE
        try:
            fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CLOEXEC)
        except OSError as exc:
            raise JournalError(f"cannot open the journal {path}: {exc.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise JournalError(f"{path}: the run is still running (its journal is locked)") from None
        except OSError:
            pass  # a filesystem without flock only loses "running" detection
        read = read_journal(path)
        journal = cls(Path(run_dir), Path(run_dir).name, fd, redactor, output_cap)
        journal._seq = max((int(e.get("seq", 0)) for e in read.events), default=0)
        if read_seq is not None and journal._seq != read_seq:
            journal.close()
            raise JournalError(
                f"{path}: the run changed while irx resume was starting (another irx resume continued it): "
                "look at it again (irx runs, irx report) before resuming it"
            )
        size = os.fstat(fd).st_size
        journal._torn = size > 0 and os.pread(fd, 1, size - 1) != b"\n"  # end a torn last line first
        return journal

    def record(self, event: Event) -> dict[str, Any]:
        """Record a typed event (irx.events): the way the run writes its journal."""
        return self.event(event.type, **event.fields())

    def event(self, type: str, /, **fields: Any) -> dict[str, Any]:
        """Record one event and return it as written (redacted, capped); on disk when this returns.

        Common optional fields: ``phase``, ``step``, ``host``, ``status``; the others depend on ``type``
        (see ``schemas/timeline.schema.json``). ``stdout``/``stderr`` are redacted, then capped to
        ``output_cap`` bytes, with ``stdout_truncated``/``stderr_truncated`` and ``cap`` recorded.
        """
        if type not in EVENT_TYPES:
            raise ValueError(f"unknown timeline event type {type!r}")
        reserved = set(_HEADER) & fields.keys()
        if reserved:
            raise ValueError(f"reserved timeline field(s): {', '.join(sorted(reserved))}")
        body = {name: _jsonable(value) for name, value in fields.items() if value is not None}
        for name, value in body.items():
            if name not in _VOCABULARY and not isinstance(value, bool | int | float):
                body[name] = self.redactor.redact(value)
        self._cap_outputs(body)
        with self._lock:
            if self._fd is None:
                raise JournalError(f"{self.path}: the journal is closed")
            self._seq += 1
            record: dict[str, Any] = {
                "v": FORMAT_VERSION,
                "seq": self._seq,
                "ts": utc_timestamp(),
                "run_id": self.run_id,
                "type": type,
                **body,
            }
            line = json.dumps(record, ensure_ascii=False, separators=(",", ":"), allow_nan=False) + "\n"
            if self._torn:
                line = "\n" + line
            try:
                # A lone surrogate (undecodable output bytes) becomes its JSON escape, keeping the line valid.
                self._write(line.encode("utf-8", errors="backslashreplace"))
            except OSError as exc:
                # The seq stays used: if the line did not make it, the reader reports the gap.
                self._torn = True
                raise JournalError(f"cannot write the journal {self.path}: {exc.strerror}") from None
            self._torn = False
        return record

    def _cap_outputs(self, body: dict[str, Any]) -> None:
        present = [name for name in _OUTPUT_FIELDS if isinstance(body.get(name), str)]
        for name in present:
            body[name], body[f"{name}_truncated"] = cap_output(body[name], self.output_cap)
        if present:
            body["cap"] = self.output_cap

    def _write(self, data: bytes) -> None:
        assert self._fd is not None
        # One write of the whole line: O_APPEND puts it at the end in one piece. A regular file only takes
        # less than everything when the disk fills up or a signal lands mid-write; finish the line then.
        written = os.write(self._fd, data)
        while written < len(data):
            written += os.write(self._fd, data[written:])
        os.fsync(self._fd)

    @property
    def closed(self) -> bool:
        return self._fd is None

    @property
    def seq(self) -> int:
        """The sequence number of the last event written (0 before the first)."""
        return self._seq

    def close(self) -> None:
        """Close the file and drop its lock; idempotent."""
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _valid_run_id(run_id: str) -> bool:
    return (
        bool(run_id)
        and run_id[0].isascii()
        and run_id[0].isalnum()
        and all(char.isascii() and (char.isalnum() or char in "._-") for char in run_id)
    )


def _fsync_directory(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):  # some filesystems refuse fsync on directories
            os.fsync(fd)
    finally:
        os.close(fd)


def _jsonable(value: Any) -> Any:
    """``value`` as plain JSON data: paths, datetimes, enums, sets, dataclasses, bytes and non-finite
    floats are converted, anything else unknown becomes its ``str()`` (and is redacted like any text)."""
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Mapping):
        return {str(_jsonable(key)): _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    if isinstance(value, set | frozenset):
        return sorted((_jsonable(item) for item in value), key=str)
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, datetime):
        return utc_timestamp(value) if value.tzinfo is not None else value.isoformat()
    if isinstance(value, enum.Enum):
        return _jsonable(value.value)
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", errors="replace")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _jsonable(dataclasses.asdict(value))
    return str(value)

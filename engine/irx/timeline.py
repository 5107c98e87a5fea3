"""The run journal: one directory per run, holding ``timeline.jsonl``, one JSON event per line.

Durability is the point. Each event is serialised to one line and written with a single ``os.write`` on an
``O_APPEND`` descriptor, then ``fsync``'d before ``Journal.event`` returns: when irx is killed with
``kill -9``, every event already recorded is on disk and intact, and at most the line being written is torn.
``read_journal`` reads such a file back without losing anything: a torn last line and corrupted lines are
reported as problems, every intact event is kept.

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
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePath
from typing import Any, BinaryIO

from irx.errors import IrxError, UsageError
from irx.events import Event
from irx.redact import Redactor

FORMAT_VERSION = 1
TIMELINE_FILE = "timeline.jsonl"
DEFAULT_RUNS_DIR = Path(".irx/runs")
OUTPUT_CAP = 64 * 1024  # bytes of UTF-8 kept per stdout/stderr of one host result

EVENT_TYPES: tuple[str, ...] = (
    "run_started",
    "phase_started",
    "phase_finished",
    "step_started",
    "host_result",
    "step_finished",
    "decision",
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
# Status of a run read back from its journal, beyond RUN_STATUSES: still being written, or undecidable.
RUNNING = "running"
INCOMPLETE = "incomplete"

_HEADER = ("v", "seq", "ts", "run_id", "type")
_OUTPUT_FIELDS = ("stdout", "stderr")
# Fields irx fills from its own vocabulary, never from user data: redacting them could only break the
# format (a secret "ok" would mask every status). Top-level numbers and booleans (rc, seq, duration,
# exit_code, flags) are irx's own counters and codes and are not redacted either.
_VOCABULARY = frozenset({"phase", "status", "action", "decision", "method", "mode", "severity", "kind"})
_TRUNCATION_MARK = "\n[... {omitted} bytes omitted by irx (output cap {cap} bytes) ...]\n"
_TORN = "truncated event (the run was killed while writing)"


class JournalError(IrxError):
    """The journal cannot be created or written: its directory is unwritable, the disk is full.

    Exit code 2 (usage): nothing about the playbook is wrong, the operator must fix the runs directory
    (``--runs-dir`` / ``IRX_RUNS_DIR``) or free space, and rerun.
    """


def default_runs_dir() -> Path:
    """``$IRX_RUNS_DIR`` if set, else ``.irx/runs`` (relative to the working directory)."""
    configured = os.environ.get("IRX_RUNS_DIR", "")
    return Path(configured).expanduser() if configured else DEFAULT_RUNS_DIR


def new_run_id(now: datetime | None = None) -> str:
    """A run id that sorts by start time: ``20261122T110944Z-3fa9c1`` (UTC second, then 6 random hex)."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    return f"{moment:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def utc_timestamp(moment: datetime | None = None) -> str:
    """UTC ISO-8601 with microseconds and ``Z``: ``2026-11-22T11:09:44.123456Z``."""
    moment = (moment or datetime.now(UTC)).astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_timestamp(text: str) -> datetime:
    """The aware datetime of a journal timestamp."""
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


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


@dataclass(frozen=True)
class JournalRead:
    """A journal read back: every intact event in file order, and what was wrong with the rest."""

    path: Path
    events: list[dict[str, Any]]
    problems: list[str]
    running: bool | None = None  # True: its writer still holds the lock; None: the lock cannot be checked

    def first(self, type: str) -> dict[str, Any] | None:
        """The first event of ``type``, if any."""
        return next((event for event in self.events if event.get("type") == type), None)

    def last(self, type: str) -> dict[str, Any] | None:
        """The last event of ``type``, if any."""
        return next((event for event in reversed(self.events) if event.get("type") == type), None)

    @property
    def status(self) -> str:
        """``run_finished``'s status; else ``running`` while the writer lives, ``interrupted`` if it was
        killed, ``incomplete`` when that cannot be told (a filesystem without locks)."""
        finished = self.last("run_finished")
        if finished is not None:
            return str(finished.get("status", INCOMPLETE))
        return _unfinished_status(self.running)


def read_journal(path: Path) -> JournalRead:
    """Read a journal (the ``timeline.jsonl`` file or its run directory); never raises on bad content.

    A torn last line (``kill -9`` mid-write) and corrupted lines are skipped and reported in ``problems``
    with their line numbers, as are gaps in ``seq``. A missing or unreadable file is a ``UsageError``.
    """
    path = Path(path)
    if path.is_dir():
        path = path / TIMELINE_FILE
    try:
        with path.open("rb") as stream:
            running = _writer_alive(stream.fileno())
            lines = stream.read().split(b"\n")
    except FileNotFoundError:
        raise UsageError(f"{path}: no such run journal") from None
    except OSError as exc:
        raise UsageError(f"cannot read the run journal {path}: {exc.strerror}") from None
    events: list[dict[str, Any]] = []
    problems: list[str] = []
    torn = lines.pop()  # after the final newline: empty, unless the last write was cut short
    last_seq = 0
    for number, raw in enumerate(lines, start=1):
        event, problem = _parse_line(raw)
        if problem is not None:
            problems.append(f"line {number}: {problem}")
            continue
        assert event is not None
        last_seq = _check_seq(event, number, last_seq, problems)
        events.append(event)
    if torn:
        number = len(lines) + 1
        event, problem = _parse_line(torn)
        if event is not None:  # complete but for its newline: the data is whole, keep it
            _check_seq(event, number, last_seq, problems)
            events.append(event)
        else:
            problems.append(f"line {number}: {_TORN}")
    return JournalRead(path=path, events=events, problems=problems, running=running)


def _parse_line(raw: bytes) -> tuple[dict[str, Any] | None, str | None]:
    if not raw.strip():
        return None, "empty line"
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, f"not valid UTF-8 at byte {exc.start}, skipped"
    try:
        event = json.loads(text)
    except ValueError as exc:
        return None, f"not valid JSON ({exc}), skipped"
    if not isinstance(event, dict):
        return None, f"not a JSON object but {type(event).__name__}, skipped"
    if not isinstance(event.get("type"), str) or not isinstance(event.get("seq"), int):
        return None, "not a timeline event (no type or seq), skipped"
    return event, None


def _check_seq(event: Mapping[str, Any], number: int, last_seq: int, problems: list[str]) -> int:
    seq: int = event["seq"]
    if seq != last_seq + 1:
        if seq > last_seq + 1:
            missing = seq - last_seq - 1
            problems.append(f"line {number}: seq {seq} follows {last_seq} ({missing} event(s) missing)")
        else:
            problems.append(f"line {number}: seq {seq} follows {last_seq} (out of order or repeated)")
    return max(seq, last_seq)


def _writer_alive(fd: int) -> bool | None:
    """Whether a live process still holds the journal's writer lock; ``None`` if locks do not work here."""
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return None
    fcntl.flock(fd, fcntl.LOCK_UN)
    return False


def _unfinished_status(running: bool | None) -> str:
    if running is None:
        return INCOMPLETE
    return RUNNING if running else "interrupted"


@dataclass(frozen=True)
class RunSummary:
    """One line of ``irx history``, read from a run's journal."""

    run_id: str
    path: Path
    status: str  # a RUN_STATUSES value, or running / interrupted (killed) / incomplete
    playbook: str | None = None
    inventory: str | None = None
    mode: str | None = None
    operator: str | None = None
    started: str | None = None  # UTC timestamp of run_started
    duration: float | None = None  # seconds; for an unfinished run, up to its last event
    exit_code: int | None = None
    finished: bool = False  # the journal ends with run_finished
    problems: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["path"] = str(self.path)
        data["problems"] = list(self.problems)
        return data


def list_runs(runs_dir: Path) -> list[RunSummary]:
    """A summary of every run under ``runs_dir``, newest first; an absent directory holds no runs.

    Only the first event and the last ones are read, so history stays fast with large journals.
    """
    runs_dir = Path(runs_dir)
    try:
        candidates = [entry for entry in runs_dir.iterdir() if (entry / TIMELINE_FILE).is_file()]
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise UsageError(f"cannot list the runs in {runs_dir}: {exc.strerror}") from None
    return [summarize_run(entry) for entry in sorted(candidates, key=lambda entry: entry.name, reverse=True)]


def summarize_run(run_dir: Path) -> RunSummary:
    """The ``RunSummary`` of one run directory, from its first and last events; never raises on content."""
    path = run_dir / TIMELINE_FILE
    problems: list[str] = []
    try:
        with path.open("rb") as stream:
            running = _writer_alive(stream.fileno())
            first = _parse_line(stream.readline().rstrip(b"\n"))[0]
            last = _last_event(stream)
    except OSError as exc:
        return RunSummary(run_id=run_dir.name, path=run_dir, status=INCOMPLETE, problems=(exc.strerror or "",))
    started = first if first is not None and first.get("type") == "run_started" else None
    if started is None and not (running and last is None):  # a run just created has no event yet
        problems.append("the journal does not start with run_started")
    finished = last if last is not None and last.get("type") == "run_finished" else None
    status = str(finished.get("status", INCOMPLETE)) if finished is not None else _unfinished_status(running)
    duration: float | None = None
    if finished is not None and isinstance(finished.get("duration"), int | float):
        duration = float(finished["duration"])
    elif started is not None and last is not None:
        with contextlib.suppress(KeyError, TypeError, ValueError):
            elapsed = parse_timestamp(last["ts"]) - parse_timestamp(started["ts"])
            duration = elapsed.total_seconds()
    info = started or {}
    return RunSummary(
        run_id=str(info.get("run_id", run_dir.name)),
        path=run_dir,
        status=status,
        playbook=info.get("playbook"),
        inventory=info.get("inventory"),
        mode=info.get("mode"),
        operator=info.get("operator"),
        started=info.get("ts"),
        duration=duration,
        exit_code=finished.get("exit_code") if finished is not None else None,
        finished=finished is not None,
        problems=tuple(problems),
    )


def _last_event(stream: BinaryIO, block: int = 256 * 1024) -> dict[str, Any] | None:
    """The last intact event of a journal, read backwards from its end in growing blocks."""
    size = stream.seek(0, os.SEEK_END)
    window = block
    while True:
        start = max(size - window, 0)
        stream.seek(start)
        lines = stream.read(size - start).split(b"\n")
        if start > 0:
            lines = lines[1:]  # the first piece may be the tail of a longer line
        for raw in reversed(lines):
            event = _parse_line(raw)[0] if raw.strip() else None
            if event is not None:
                return event
        if start == 0:
            return None
        window *= 4


def resolve_run(runs_dir: Path, ref: str) -> Path:
    """The run directory named by ``ref``: ``latest``, a run id, or an unambiguous prefix of one."""
    runs_dir = Path(runs_dir)
    try:
        ids = sorted(entry.name for entry in runs_dir.iterdir() if (entry / TIMELINE_FILE).is_file())
    except FileNotFoundError:
        ids = []
    except OSError as exc:
        raise UsageError(f"cannot list the runs in {runs_dir}: {exc.strerror}") from None
    if ref == "latest":
        if not ids:
            raise UsageError(f"no runs in {runs_dir}")
        return runs_dir / ids[-1]
    if ref in ids:
        return runs_dir / ref
    matches = [run_id for run_id in ids if run_id.startswith(ref)]
    if len(matches) == 1:
        return runs_dir / matches[0]
    if matches:
        raise UsageError(f"run id {ref!r} is ambiguous: {', '.join(matches[:5])}")
    raise UsageError(f"no run {ref!r} in {runs_dir}")


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

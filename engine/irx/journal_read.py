"""Reading run journals back: ``read_journal`` (every intact event, and what was wrong with the rest),
``list_runs`` and ``summarize_run`` for ``irx history``, ``resolve_run`` for ``irx report RUN_ID``.

The write side, ``irx.timeline.Journal``, appends one fsync'd line per event and holds an exclusive
``flock`` while the run lives. This side never raises on bad content: a torn last line (``kill -9``
mid-write), corrupted lines and gaps in ``seq`` become problems with their line numbers, and a journal
without ``run_finished`` is ``running`` while its writer's lock is held, ``interrupted`` once it is not.
``irx.timeline`` re-exports these names.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from irx.errors import UsageError

TIMELINE_FILE = "timeline.jsonl"
DEFAULT_RUNS_DIR = Path(".irx/runs")
# Status of a run read back from its journal, beyond the run statuses: still being written, or undecidable.
RUNNING = "running"
INCOMPLETE = "incomplete"
_TORN = "truncated event (the run was killed while writing)"


def default_runs_dir() -> Path:
    """``$IRX_RUNS_DIR`` if set, else ``.irx/runs`` (relative to the working directory)."""
    configured = os.environ.get("IRX_RUNS_DIR", "")
    return Path(configured).expanduser() if configured else DEFAULT_RUNS_DIR


def parse_timestamp(text: str) -> datetime:
    """The aware datetime of a journal timestamp."""
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


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
        # A run_resumed after it: a continuation (irx resume) is under way or was killed, and the earlier
        # attempt's status no longer says anything about the run.
        ends = (event for event in reversed(self.events) if event.get("type") in ("run_finished", "run_resumed"))
        finished = next(ends, None)
        if finished is not None and finished.get("type") == "run_finished":
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
    if started is not None and last is not None:
        with contextlib.suppress(KeyError, TypeError, ValueError):
            elapsed = parse_timestamp(last["ts"]) - parse_timestamp(started["ts"])
            duration = elapsed.total_seconds()
    if finished is not None and isinstance(finished.get("duration"), int | float):
        # The recorded duration is the last attempt's: a resumed run (irx resume) is one incident from its
        # start to its end, as its report says, so the longer of the two (they agree for a run never resumed).
        duration = max(float(finished["duration"]), duration or 0.0)
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

"""A run's approval inbox: what its gate waits for, and the decisions given from elsewhere.

A run started with ``--wait-approval`` does not stop at a gate it cannot answer itself: it writes what it
waits for and polls for a decision that ``irx approve`` / ``irx deny`` (or the approval page) writes. Both
sides meet in the run's own directory, next to its journal:

    <runs>/<run_id>/waiting.json            what the gate shows: step, hosts, rendered actions, approval hash
    <runs>/<run_id>/decisions/<step>.json   one decision per step, made once (the first one stands)

A decision names the approval hash its giver was shown; the run acts on it only if that is the hash of
what it would run, so an approval given for one rendering never runs another. Who decided is the account
that wrote it (``irx approve`` records its own user, not a name it is told).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from irx.approval import matches, short
from irx.errors import UsageError

WAITING_FILE = "waiting.json"
DECISIONS_DIR = "decisions"
STEP_ID = re.compile(r"[a-z][a-z0-9_]{0,63}")  # what a step id may be (the playbook schema's)


@dataclass(frozen=True)
class Waiting:
    """What a gate waits for: the step, its hosts, what the approver is shown and the hash of it."""

    run_id: str
    step: str
    phase: str
    title: str
    hosts: list[str]
    summary: str  # the rendered actions, secrets masked, as the terminal prompt shows them
    approval_hash: str
    since: float  # epoch seconds
    until: float | None  # when the gate stops waiting (epoch seconds), None: no limit
    pid: int


@dataclass(frozen=True)
class Decision:
    """An answer to a gate: approve or refuse, for the rendering whose hash it names, by whom, how."""

    step: str
    approve: bool
    approval_hash: str
    by: str
    via: str  # cli (irx approve / deny) | web (the approval page)
    reason: str = ""
    at: float = 0.0

    @property
    def method(self) -> str:
        """The journal's approval method for this decision."""
        return self.via if self.approve else "refused"


def check_step_id(step: str) -> str:
    if not STEP_ID.fullmatch(step):
        raise UsageError(f"{step!r} is not a step id (lower-case letters, digits and _)")
    return step


def identity() -> str:
    """Who decides, as recorded: this process's account (from its uid, not from $USER), ``user@host``."""
    import pwd
    import socket

    try:
        user = pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        user = f"uid{os.getuid()}"
    return f"{user}@{socket.gethostname()}"


def write_waiting(run_dir: Path, waiting: Waiting) -> None:
    _write_atomic(run_dir / WAITING_FILE, asdict(waiting))


def clear_waiting(run_dir: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        (run_dir / WAITING_FILE).unlink()


def read_waiting(run_dir: Path) -> Waiting | None:
    """What the run in ``run_dir`` waits for, or None (not waiting, or the file is not a waiting record)."""
    try:
        data = json.loads((run_dir / WAITING_FILE).read_text())
        return Waiting(**data) if isinstance(data, dict) else None
    except (OSError, ValueError, TypeError):
        return None


def submit(run_dir: Path, decision: Decision) -> Path:
    """Record ``decision`` for its step; refused (``UsageError``) when the step already has one."""
    check_step_id(decision.step)
    folder = run_dir / DECISIONS_DIR
    folder.mkdir(mode=0o700, exist_ok=True)
    target = folder / f"{decision.step}.json"
    body = asdict(decision) | {"at": decision.at or time.time()}
    temp = _write_temp(folder, body)
    try:
        os.link(temp, target)  # atomic and exclusive: a second decision for the step fails here
    except FileExistsError:
        existing = read_decision(run_dir, decision.step)
        what = f"{'approved' if existing.approve else 'refused'} by {existing.by}" if existing else "decided"
        raise UsageError(f"step {decision.step!r} of this run was already {what}") from None
    finally:
        temp.unlink()
    return target


def read_decision(run_dir: Path, step: str) -> Decision | None:
    """The decision given for ``step``, or None; a file that is not a decision counts as none."""
    try:
        data = json.loads((run_dir / DECISIONS_DIR / f"{check_step_id(step)}.json").read_text())
        return Decision(**data) if isinstance(data, dict) else None
    except (OSError, ValueError, TypeError):
        return None


def binds(decision: Decision, gate_hash: str) -> bool:
    """Whether ``decision`` was given for exactly the rendering hashed as ``gate_hash``."""
    wanted = decision.approval_hash.removeprefix("sha256:")
    return len(wanted) >= len(short(gate_hash)) and matches(gate_hash, wanted)


def _write_temp(folder: Path, body: dict[str, Any]) -> Path:
    fd, name = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".json")
    with os.fdopen(fd, "w") as out:
        json.dump(body, out, indent=2)
        out.write("\n")
        out.flush()
        os.fsync(out.fileno())
    return Path(name)


def _write_atomic(path: Path, body: dict[str, Any]) -> None:
    temp = _write_temp(path.parent, body)
    os.replace(temp, path)

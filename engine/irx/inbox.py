"""A run's approval inbox: what its gate waits for, and the decisions given from elsewhere.

A run started with ``--wait-approval`` does not stop at a gate it cannot answer itself: it writes what it
waits for and polls for decisions that ``irx approve`` / ``irx deny`` (or the approval page) write. Both
sides meet in the run's own directory, next to its journal:

    <runs>/<run_id>/waiting.json                what the gate shows: step, hosts, rendered actions, approval
                                                hash, and its rule (who may approve, how many, given so far)
    <runs>/<run_id>/decisions/<step>/<n>.json   the step's decisions in the order given: 1.json, 2.json, ...

Each decision takes the next free number with ``os.link`` (atomic, exclusive), then checks again what came
before it: so of two people deciding at once exactly one is first, the same person never counts twice, and
nobody adds to a step that is already refused or has all its approvals. A decision names the approval hash
its giver was shown; the run acts on it only if that is the hash of what it would run, and it checks every
decision against the rule again itself (a file is not trusted because it exists). Who decided is the
account that wrote it (``irx approve`` records its own user, not a name it is told).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from irx.approval import matches, short
from irx.errors import UsageError

WAITING_FILE = "waiting.json"
DECISIONS_DIR = "decisions"
STEP_ID = re.compile(r"[a-z][a-z0-9_]{0,63}")  # what a step id may be (the playbook schema's)
_SLOT = re.compile(r"([1-9][0-9]{0,3})\.json")
MAX_DECISIONS = 100  # per step: more is not people deciding
MAX_REASON = 2000  # characters of a decision's reason
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


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
    # The gate's rule (irx.approvers.Rule), for irx approve, irx runs and the approval page, and checked by
    # submit; the run checks every decision against its own copy again.
    approvers: list[str] = field(default_factory=list)  # "alice", "group:dba"; empty: anyone
    eligible: list[str] | None = None  # the accounts that may approve (groups resolved); None: anyone
    approvals: int = 1  # how many different people must approve
    requester: str = ""  # the run's operator (user@host)
    requester_may_approve: bool = True
    approved_by: list[str] = field(default_factory=list)  # approvals counted so far, in order
    escalate_at: float | None = None  # when the gate escalates (epoch seconds), None: it does not

    def progress(self) -> str:
        """``1 of 2 approvals (alice)``: what the gate has so far."""
        names = f" ({', '.join(self.approved_by)})" if self.approved_by else ""
        return f"{len(self.approved_by)} of {self.approvals} approval{'s' if self.approvals != 1 else ''}{names}"


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
        waiting = Waiting(**data) if isinstance(data, dict) else None
    except (OSError, ValueError, TypeError):
        return None
    return waiting if waiting is not None and _well_typed(waiting) else None


def _well_typed(waiting: Waiting) -> bool:
    """Whether every field has the type the run writes: irx runs, irx approve and the page use them as such."""

    def number(value: object, optional: bool = False) -> bool:
        return (value is None and optional) or (isinstance(value, int | float) and not isinstance(value, bool))

    def texts(value: object, optional: bool = False) -> bool:
        return (value is None and optional) or (isinstance(value, list) and all(isinstance(v, str) for v in value))

    w = waiting
    return (
        all(isinstance(v, str) for v in (w.run_id, w.step, w.phase, w.title, w.summary, w.approval_hash, w.requester))
        and texts(w.hosts) and texts(w.approvers) and texts(w.approved_by) and texts(w.eligible, optional=True)
        and number(w.since) and number(w.until, optional=True) and number(w.escalate_at, optional=True)
        and isinstance(w.pid, int) and isinstance(w.requester_may_approve, bool)
        and isinstance(w.approvals, int) and not isinstance(w.approvals, bool) and w.approvals >= 1
    )  # fmt: skip


def account_of(identity: str) -> str:
    """The account an identity names: ``alice@db-admin-1`` -> ``alice``; a login name is itself."""
    return identity.partition("@")[0]


def submit(run_dir: Path, decision: Decision) -> Path:
    """Record ``decision`` for its step; ``UsageError`` saying why when it is refused: not an approver of
    the step, the run's requester where the rule forbids it, the same person twice, or a step already
    refused or fully approved. The rule is the one the run wrote into waiting.json (without one: anyone,
    once)."""
    check_step_id(decision.step)
    decision = replace(decision, reason=one_line(decision.reason))
    waiting = read_waiting(run_dir)
    gate = waiting if waiting is not None and waiting.step == decision.step else None
    if gate is not None and (why := _not_allowed(gate, decision)) is not None:
        raise UsageError(why)
    folder = run_dir / DECISIONS_DIR / decision.step
    folder.parent.mkdir(mode=0o700, exist_ok=True)
    folder.mkdir(mode=0o700, exist_ok=True)
    temp = _write_temp(folder, asdict(decision) | {"at": decision.at or time.time()})
    try:
        while True:
            slots = _slots(folder)
            # What counts is what the run counts: a file by someone the rule does not allow is not a decision.
            given = [d for _, d in slots if d is not None and (gate is None or _not_allowed(gate, d) is None)]
            _check_open(decision, given, gate.approvals if gate else 1, gate.approved_by if gate else [])
            number = max((n for n, _ in slots), default=0) + 1
            if number > MAX_DECISIONS:
                raise UsageError(f"step {decision.step!r} of this run has {MAX_DECISIONS} decisions already")
            target = folder / f"{number}.json"
            try:
                os.link(temp, target)  # atomic and exclusive: of two deciders one is first, the other looks again
            except FileExistsError:
                continue
            return target
    finally:
        temp.unlink()


def _not_allowed(gate: Waiting, decision: Decision) -> str | None:
    account, step = account_of(decision.by), decision.step
    if gate.eligible is not None and account not in gate.eligible:
        return f"{account} may not approve or refuse {step}: its approvers are {', '.join(gate.approvers)}"
    if decision.approve and not gate.requester_may_approve and account == account_of(gate.requester):
        return f"{account} started this run, so their approval of {step} does not count: someone else must"
    return None


def _check_open(decision: Decision, given: list[Decision], needed: int, counted: list[str]) -> None:
    """``counted``: the approvals the run has counted (the operator's own --yes among them, which is no file)."""
    step, account = decision.step, account_of(decision.by)
    refused = next((d for d in given if not d.approve), None)
    if refused is not None:
        raise UsageError(f"step {step!r} of this run was already refused by {refused.by}")
    approvals = list(dict.fromkeys([*counted, *(d.by for d in given if d.approve)]))
    if len(approvals) >= needed:
        raise UsageError(f"step {step!r} of this run was already approved by {', '.join(approvals)}")
    if any(account_of(by) == account for by in approvals):
        raise UsageError(
            f"{account} already approved {step}: it needs {needed} approvals from different people "
            f"({len(approvals)} given)"
        )


def read_decisions(run_dir: Path, step: str) -> list[Decision]:
    """The decisions given for ``step``, in the order given; files that are not decisions are left out."""
    return [d for _, d in _slots(run_dir / DECISIONS_DIR / check_step_id(step)) if d is not None]


def read_decision(run_dir: Path, step: str) -> Decision | None:
    """The first decision given for ``step``, or None."""
    found = read_decisions(run_dir, step)
    return found[0] if found else None


def _slots(folder: Path) -> list[tuple[int, Decision | None]]:
    """Every numbered decision file in ``folder``, in order, each read (None: not a decision)."""
    try:
        names = [m for m in map(_SLOT.fullmatch, os.listdir(folder)) if m is not None]
    except OSError:
        return []
    return [(int(m.group(1)), _read(folder / m.group(0), folder.name)) for m in sorted(names, key=lambda m: int(m[1]))]


def _read(path: Path, step: str) -> Decision | None:
    try:
        data = json.loads(path.read_text())
        decision = Decision(**data) if isinstance(data, dict) else None
    except (OSError, ValueError, TypeError):
        return None
    if (
        decision is None
        or decision.step != step
        or not isinstance(decision.approve, bool)  # "no" is truthy: only JSON's true approves
        or not all(isinstance(v, str) for v in (decision.approval_hash, decision.by, decision.via, decision.reason))
    ):
        return None
    return replace(decision, reason=one_line(decision.reason))


def one_line(text: str) -> str:
    """A reason as the run's terminal, the journal and the page show it: one line, no control characters
    (a terminal escape in a refusal would reach the operator's screen), at most MAX_REASON characters."""
    flat = " ".join(_CONTROL.sub(" ", text).split())
    return flat if len(flat) <= MAX_REASON else flat[: MAX_REASON - 3] + "..."


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

"""The journal's event contract: one typed constructor per event type, used by the run and the tests alike.

Each class is one ``type`` of schemas/timeline.schema.json: its fields are that event's properties, the
ones without a default are the schema's required ones (tests/test_events.py holds the two together). A
writer builds an event (``StepFinished(step="x", status="ok", ...)``) and hands it to ``Journal.record``;
a field left ``None`` is not written. ``phase``, ``step``, ``host`` and ``status``, which every event may
carry, are fields only where the event type gives them a meaning.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar


@dataclass(frozen=True, kw_only=True)
class Event:
    """Base of every journal event: ``type`` names it, ``fields()`` is what the journal writes."""

    type: ClassVar[str]

    def fields(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for item in dataclasses.fields(self):
            value = getattr(self, item.name)
            if value is None:
                continue
            if isinstance(value, tuple):
                value = list(value)
            out[item.name] = value
        return out


@dataclass(frozen=True, kw_only=True)
class RunStarted(Event):
    type: ClassVar[str] = "run_started"
    playbook: str
    playbook_path: str
    title: str
    severity: str
    inventory: str
    mode: str
    operator: str
    plan_hash: str
    params: Mapping[str, Any]
    hosts: Sequence[str]
    irx_version: str
    forced_lock: bool
    limit: str | None = None
    pid: int | None = None
    targets: Mapping[str, Sequence[str]] | None = None
    approve: Sequence[str] | None = None
    yes: bool | None = None
    summary: str | None = None
    symptoms: Sequence[str] | None = None
    tags: Sequence[str] | None = None
    references: Sequence[Mapping[str, Any]] | None = None
    plan: Sequence[Mapping[str, Any]] | None = None
    trigger: Mapping[str, Any] | None = None
    inventory_source: str | None = None  # what --inventory resolved to (the file Ansible read)
    supplied: Mapping[str, Any] | None = None  # the -e values (secrets masked): irx resume gives them again


@dataclass(frozen=True, kw_only=True)
class RunResumed(Event):
    """``irx resume``: the same run continues in the same journal, from where it stopped."""

    type: ClassVar[str] = "run_resumed"
    operator: str
    after: str  # the status the run had stopped with
    plan_hash: str
    attempt: int  # 2 for the first resumption
    pid: int | None = None
    from_step: str | None = None  # the first step that runs again
    rerun_hosts: Sequence[str] | None = None  # that step's hosts that run it again (the others were ok)
    done: Sequence[str] | None = None  # steps completed before, not run again
    replanned: bool | None = None  # the plan renders differently and --replan accepted it
    changes: Sequence[str] | None = None  # what renders differently (with --replan)
    approve: Sequence[str] | None = None
    yes: bool | None = None


@dataclass(frozen=True, kw_only=True)
class PhaseStarted(Event):
    type: ClassVar[str] = "phase_started"
    phase: str
    reason: str | None = None
    steps: int | None = None
    again: bool | None = None


@dataclass(frozen=True, kw_only=True)
class PhaseFinished(Event):
    type: ClassVar[str] = "phase_finished"
    phase: str
    status: str
    duration: float | None = None
    again: bool | None = None


@dataclass(frozen=True, kw_only=True)
class StepStarted(Event):
    type: ClassVar[str] = "step_started"
    step: str
    phase: str
    action: str
    summary: str
    hosts: Sequence[str]
    mutating: bool
    approval_required: bool
    title: str | None = None
    target: str | None = None
    attempt: int | None = None
    timeout: float | None = None


@dataclass(frozen=True, kw_only=True)
class HostResultEvent(Event):
    type: ClassVar[str] = "host_result"
    host: str
    status: str
    phase: str | None = None
    step: str | None = None
    rc: int | None = None
    stdout: str | None = None
    stderr: str | None = None
    stdout_truncated: bool | None = None
    stderr_truncated: bool | None = None
    cap: int | None = None
    duration: float | None = None
    changed: bool | None = None
    data: Any = None
    msg: str | None = None
    attempt: int | None = None
    pipefail: Any = None
    http_status: int | None = None


@dataclass(frozen=True, kw_only=True)
class StepFinished(Event):
    type: ClassVar[str] = "step_finished"
    step: str
    status: str
    phase: str | None = None
    duration: float | None = None
    aggregates: Mapping[str, Any] | None = None
    counts: Mapping[str, int] | None = None
    attempts: int | None = None
    reason: str | None = None


@dataclass(frozen=True, kw_only=True)
class Decision(Event):
    type: ClassVar[str] = "decision"
    decision: str
    phase: str | None = None
    step: str | None = None
    hosts: Sequence[str] | None = None
    delay: float | None = None
    reason: str | None = None
    expression: str | None = None
    value: Any = None
    attempt: int | None = None


@dataclass(frozen=True, kw_only=True)
class ApprovalRequested(Event):
    type: ClassVar[str] = "approval_requested"
    step: str
    approval_hash: str
    phase: str | None = None
    hosts: Sequence[str] | None = None
    until: str | None = None
    approvers: Sequence[str] | None = None
    needed: int | None = None
    requester_may_approve: bool | None = None
    escalate_at: str | None = None


@dataclass(frozen=True, kw_only=True)
class Approval(Event):
    type: ClassVar[str] = "approval"
    step: str
    approved: bool
    method: str
    plan_hash: str
    phase: str | None = None
    by: str | None = None
    approval_hash: str | None = None
    reason: str | None = None
    hosts: Sequence[str] | None = None
    summary: str | None = None
    approvers: Sequence[str] | None = None
    needed: int | None = None


@dataclass(frozen=True, kw_only=True)
class ApprovalGiven(Event):
    type: ClassVar[str] = "approval_given"
    step: str
    by: str
    via: str
    approve: bool
    counted: bool
    phase: str | None = None
    approval_hash: str | None = None
    reason: str | None = None
    given: int | None = None
    needed: int | None = None


@dataclass(frozen=True, kw_only=True)
class ApprovalEscalated(Event):
    type: ClassVar[str] = "approval_escalated"
    step: str
    after: float
    phase: str | None = None
    channel: str | None = None
    given: int | None = None
    needed: int | None = None


@dataclass(frozen=True, kw_only=True)
class Notification(Event):
    type: ClassVar[str] = "notification"
    channel: str
    status: str
    phase: str | None = None
    step: str | None = None
    kind: str | None = None
    message: str | None = None
    attempts: int | None = None
    error: str | None = None
    http_status: int | None = None
    duration: float | None = None


@dataclass(frozen=True, kw_only=True)
class Error(Event):
    type: ClassVar[str] = "error"
    message: str
    phase: str | None = None
    step: str | None = None
    host: str | None = None
    where: str | None = None
    exception: str | None = None
    traceback_path: str | None = None


@dataclass(frozen=True, kw_only=True)
class Lock(Event):
    type: ClassVar[str] = "lock"
    action: str
    holder: Mapping[str, Any]
    host: str | None = None
    previous: Mapping[str, Any] | None = None
    stale: Mapping[str, Any] | None = None
    path: str | None = None


@dataclass(frozen=True, kw_only=True)
class Lease(Event):
    type: ClassVar[str] = "lease"
    action: str
    host: str | None = None
    file: str | None = None
    expires: str | None = None
    previous: Mapping[str, Any] | None = None
    holder: Mapping[str, Any] | None = None
    msg: str | None = None


@dataclass(frozen=True, kw_only=True)
class RunFinished(Event):
    type: ClassVar[str] = "run_finished"
    status: str
    exit_code: int
    duration: float
    verdict: str | None = None
    reason: str | None = None


EVENTS: tuple[type[Event], ...] = (
    RunStarted,
    RunResumed,
    PhaseStarted,
    PhaseFinished,
    StepStarted,
    HostResultEvent,
    StepFinished,
    Decision,
    ApprovalRequested,
    ApprovalGiven,
    ApprovalEscalated,
    Approval,
    Notification,
    Error,
    Lock,
    Lease,
    RunFinished,
)

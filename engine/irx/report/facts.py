"""What a report says, as frozen dataclasses: the run's facts, phases, steps with per-host results and what
each ran, decisions, approvals, timeline entries, metrics and the headline finding.

``irx.report.model`` builds a ``Report`` from a journal; the Markdown, JSON and HTML renderers read it and
nothing else. The helpers at the end read one journal value with a default (a report never raises on
odd content) and format durations and clock times the one way every report shows them.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from irx import humanize
from irx.journal_read import parse_timestamp

REPORT_VERSION = 1
MINUTE = 60.0
HOUR = 60 * MINUTE

# Response and resolution targets per severity, from the runbooks' severity table (shared/seeds: "Incident
# Response Procedures", SEV1 < 15 min ... SEV4 next business day) and their resolution goals. SEV4's "next
# business day" depends on a calendar irx does not know: it is shown, never flagged (None).
SEVERITY_TARGETS: dict[str, dict[str, float | None]] = {
    "SEV1": {"respond": 15 * MINUTE, "resolve": 1 * HOUR},
    "SEV2": {"respond": 1 * HOUR, "resolve": 4 * HOUR},
    "SEV3": {"respond": 4 * HOUR, "resolve": 24 * HOUR},
    "SEV4": {"respond": None, "resolve": None},
}
TARGET_LABELS = {"SEV4": "next business day"}
FAILED_HOST = frozenset({"failed", "unreachable", "timed_out"})
BAD_STEP = frozenset({"failed", "timed_out", "interrupted"})
# Approval methods that are a refusal: a person said no, an --approve hash no longer matched, or what was
# about to be dispatched was not what had been approved. "missing" is no answer at all (awaiting approval).
REFUSALS = frozenset({"refused", "stale", "binding"})


@dataclass(frozen=True)
class HostResult:
    host: str
    status: str
    ts: str | None = None
    rc: int | None = None
    duration: float | None = None
    changed: bool | None = None
    msg: str | None = None
    data: Any = None
    stdout: str | None = None
    stderr: str | None = None
    attempt: int | None = None
    step: str | None = None  # None: a run-wide result (preflight)
    phase: str | None = None
    since: str | None = None  # when the step (attempt) it answers started: a bar never starts before it
    stdout_truncated: bool = False
    stderr_truncated: bool = False


@dataclass(frozen=True)
class Ran:
    """What a step ran on some hosts, rendered and masked as the journal recorded it."""

    text: str
    hosts: tuple[str, ...] = ()
    source: str = "plan"  # approval: as its approver saw it; step: as dispatched; plan: the first planned rendering

    @property
    def how(self) -> str:
        """Where this rendering comes from, in the words the report uses."""
        return _RAN_SOURCES.get(self.source, self.source)


_RAN_SOURCES = {"approval": "as shown for approval", "step": "as dispatched", "plan": "as planned: its first rendering"}


@dataclass(frozen=True)
class Step:
    id: str
    phase: str
    action: str | None = None
    title: str | None = None
    summary: str | None = None
    hosts: tuple[str, ...] = ()
    mutating: bool = False
    approval_required: bool = False
    started: str | None = None
    finished: str | None = None
    status: str = "not_run"  # not_run until a step_finished says otherwise; interrupted if cut short
    duration: float | None = None
    attempts: int | None = None
    reason: str | None = None
    aggregates: dict[str, Any] | None = None
    results: tuple[HostResult, ...] = ()  # the last result per host
    outcomes: tuple[str, ...] = ()  # the status of each step_finished: a step reruns in verify after rollback
    failed_hosts: tuple[str, ...] = ()  # hosts that failed, were unreachable or timed out in any attempt
    failure_reason: str | None = None  # the reason of its last failed, timed_out or interrupted outcome
    ran: tuple[Ran, ...] = ()  # the rendered action per host group, when the journal recorded it
    approval: str | None = None  # approved | refused | awaiting: its last approval's answer
    errors: tuple[str, ...] = ()  # the messages of error events about this step

    @property
    def name(self) -> str:
        return self.title or self.id

    @property
    def state(self) -> str:
        """The status a person reads: ``refused`` for a step its approval refused (the journal says skipped,
        or nothing when the run stopped there), ``awaiting_approval`` for one nobody answered."""
        if self.approval == "refused" and self.status in ("skipped", "interrupted"):
            return "refused"
        if self.approval == "awaiting" and self.status == "interrupted":
            return "awaiting_approval"
        return self.status

    def hosts_with(self, *statuses: str) -> list[str]:
        return [result.host for result in self.results if result.status in statuses]

    @property
    def ran_verb(self) -> str:
        """How the report introduces what the step ran: ``ran``, or ``would have run`` for a step that
        did not (refused, awaiting approval, a dry run's would_run, skipped)."""
        return "ran" if self.results else "would have run"


@dataclass(frozen=True)
class Phase:
    name: str
    started: str | None = None
    finished: str | None = None
    status: str | None = None  # None: the journal ends inside the phase
    duration: float | None = None
    again: bool = False
    reason: str | None = None


@dataclass(frozen=True)
class Decision:
    ts: str | None
    decision: str
    phase: str | None = None
    step: str | None = None
    reason: str | None = None
    expression: str | None = None
    value: Any = None
    hosts: tuple[str, ...] = ()


@dataclass(frozen=True)
class Approval:
    ts: str | None
    step: str
    approved: bool
    method: str
    by: str | None = None
    reason: str | None = None
    hosts: tuple[str, ...] = ()
    summary: str | None = None
    approval_hash: str | None = None  # what exactly was approved or refused (irx.approval)

    @property
    def refused(self) -> bool:
        return not self.approved and self.method in REFUSALS


@dataclass(frozen=True)
class TimelineEntry:
    ts: str | None
    kind: str  # the event type, or journal_end for a journal that stops without run_finished
    text: str
    phase: str | None = None
    step: str | None = None
    status: str | None = None


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    seconds: float | None  # None: the run never reached that point
    target: float | None  # None: no target (SEV4, unknown severity)
    target_kind: str  # respond or resolve
    over_target: bool


@dataclass(frozen=True)
class Finding:
    """The headline: what was wrong, what fixed it, how long it took."""

    wrong: str | None = None  # the diagnosis a mitigation's condition matched, with its evidence
    wrong_step: str | None = None
    fixed: str | None = None  # the first mitigation that changed something, and what it ran
    fixed_step: str | None = None
    time_to_mitigation: float | None = None
    time_to_resolution: float | None = None  # to verified recovery


@dataclass(frozen=True)
class Report:
    run_id: str
    path: str
    status: str
    finished: bool
    playbook: str | None = None
    title: str | None = None
    severity: str | None = None
    summary: str | None = None
    symptoms: tuple[str, ...] = ()
    inventory: str | None = None
    limit: str | None = None
    mode: str | None = None
    operator: str | None = None
    plan_hash: str | None = None
    irx_version: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    trigger: dict[str, Any] = field(default_factory=dict)  # what started the run (an alert), when recorded
    hosts: tuple[str, ...] = ()
    started: str | None = None
    ended: str | None = None
    duration: float | None = None
    attempts: int = 1  # 1 + the times irx resume continued the run (its duration is then from start to end)
    exit_code: int | None = None
    reason: str | None = None
    verdict: str | None = None  # a dry run's (irx.verdict): would_resolve | verification_failed
    phases: tuple[Phase, ...] = ()
    steps: tuple[Step, ...] = ()
    not_reached: tuple[str, ...] = ()  # planned step ids never started
    decisions: tuple[Decision, ...] = ()
    approvals: tuple[Approval, ...] = ()
    errors: tuple[str, ...] = ()
    notifications: tuple[dict[str, Any], ...] = ()
    timeline: tuple[TimelineEntry, ...] = ()
    metrics: tuple[Metric, ...] = ()
    finding: Finding = field(default_factory=Finding)
    results: tuple[HostResult, ...] = ()  # every host result in journal order, every attempt, preflight too
    problems: tuple[str, ...] = ()

    @property
    def trigger_text(self) -> str | None:
        """What started the run, in a line: ``alertmanager alert PgIdleSessionsHigh (incident …, route …)``."""
        trigger = self.trigger
        if not trigger:
            return None
        what = f"{trigger.get('source') or 'external'} alert {trigger.get('alertname') or '(unnamed)'}"
        about = [f"{key} {trigger[key]}" for key in ("incident", "route") if trigger.get(key)]
        labels = trigger.get("labels")
        if isinstance(labels, Mapping) and labels:
            shown = ", ".join(f"{k}={v}" for k, v in sorted(labels.items()) if k != "alertname")
            about += [humanize.shorten(shown, 160)] if shown else []
        at = f" at {clock(as_str(trigger.get('fired_at')))} UTC" if trigger.get("fired_at") else ""
        return what + (f" ({'; '.join(about)})" if about else "") + at

    def step(self, step_id: str) -> Step | None:
        return next((step for step in self.steps if step.id == step_id), None)

    def steps_in(self, phase: str) -> list[Step]:
        return [step for step in self.steps if step.phase == phase]

    def approvals_for(self, step_id: str) -> list[Approval]:
        return [approval for approval in self.approvals if approval.step == step_id]

    def decisions_for(self, step_id: str) -> list[Decision]:
        return [decision for decision in self.decisions if decision.step == step_id]

    def metric(self, key: str) -> Metric | None:
        return next((metric for metric in self.metrics if metric.key == key), None)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data, as described by ``schemas/report.schema.json``."""
        data = dataclasses.asdict(self)
        # Through JSON once: tuples become lists, anything odd from the journal becomes plain data.
        plain: dict[str, Any] = json.loads(json.dumps({"report_version": REPORT_VERSION, **data}, default=str))
        return plain


def format_duration(seconds: float | None) -> str:
    """A duration in the report (irx.humanize.duration): ``4.2s``, ``1m 05s``, ``4h``; ``—`` for None."""
    return humanize.duration(seconds)


def format_target(severity: str | None, kind: str) -> str:
    target = SEVERITY_TARGETS.get(severity or "", {}).get(kind)
    if target is not None:
        return format_duration(target)
    return TARGET_LABELS.get(severity or "", "—")


def clock(ts: str | None) -> str:
    """``HH:MM:SS`` (UTC) of a journal timestamp; ``??:??:??`` when it is missing or malformed."""
    moment = moment_of(ts)
    return moment.strftime("%H:%M:%S") if moment else "??:??:??"


def moment_of(ts: str | None) -> datetime | None:
    """The datetime of a journal timestamp, None when it is missing or malformed."""
    if not ts:
        return None
    try:
        return parse_timestamp(ts)
    except ValueError:
        return None


def elapsed(start: str | None, end: str | None) -> float | None:
    """Seconds from ``start`` to ``end`` (never negative), None when either cannot be placed."""
    begin, stop = moment_of(start), moment_of(end)
    if begin is None or stop is None:
        return None
    return round(max((stop - begin).total_seconds(), 0.0), 3)


def one_line(text: str, limit: int = 200) -> str:
    """The first line of ``text``, shortened at a word boundary to ``limit`` characters."""
    first = text.strip().splitlines()[0] if text.strip() else ""
    return humanize.shorten(first, limit)


def as_ts(value: Any) -> str | None:
    """A well-formed journal timestamp, else None: a report never carries a time it cannot place."""
    return value if isinstance(value, str) and moment_of(value) is not None else None


def as_str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def as_num(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def as_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def as_strs(value: Any) -> tuple[str, ...]:
    return tuple(str(item) for item in as_list(value))

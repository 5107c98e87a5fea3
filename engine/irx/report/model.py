"""The report of one run, built from its journal alone.

``build_report`` turns the events of a ``timeline.jsonl`` into frozen dataclasses: the run's facts, its
phases, its steps with per-host results, decisions, approvals, a timeline of the events a person would
write down (not one line per host unless it failed), and incident metrics against the severity targets.
Bad content never raises: events with missing or odd fields are read with defaults, and the journal's own
problems (torn or corrupted lines, gaps) are carried into the report.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from irx import humanize
from irx.journal_read import JournalRead, parse_timestamp, read_journal

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

# Which target each metric is held to: the first diagnostic result is the response, the rest resolution.
METRICS: tuple[tuple[str, str, str], ...] = (
    ("first_diagnostic", "Time to first diagnostic result", "respond"),
    ("mitigation", "Time to mitigation", "resolve"),
    ("verified_recovery", "Time to verified recovery", "resolve"),
    ("total", "Total run duration", "resolve"),
)
_FAILED_HOST = frozenset({"failed", "unreachable", "timed_out"})
_BAD_STEP = frozenset({"failed", "timed_out", "interrupted"})
_STEP_REF = re.compile(r"\bsteps\.([A-Za-z0-9_]+)")


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

    @property
    def name(self) -> str:
        return self.title or self.id

    def hosts_with(self, *statuses: str) -> list[str]:
        return [result.host for result in self.results if result.status in statuses]


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
    hosts: tuple[str, ...] = ()
    started: str | None = None
    ended: str | None = None
    duration: float | None = None
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
    problems: tuple[str, ...] = ()
    # The journal's intact events, as read: for renderers that draw from them (HTML); not in to_dict.
    events: tuple[dict[str, Any], ...] = field(default=(), repr=False)

    def step(self, step_id: str) -> Step | None:
        return next((step for step in self.steps if step.id == step_id), None)

    def steps_in(self, phase: str) -> list[Step]:
        return [step for step in self.steps if step.phase == phase]

    def approvals_for(self, step_id: str) -> list[Approval]:
        return [approval for approval in self.approvals if approval.step == step_id]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data, as described by ``schemas/report.schema.json``."""
        data = dataclasses.asdict(dataclasses.replace(self, events=()))
        del data["events"]
        # Through JSON once: tuples become lists, anything odd from the journal becomes plain data.
        plain: dict[str, Any] = json.loads(json.dumps({"report_version": REPORT_VERSION, **data}, default=str))
        return plain


# Lease events worth a line in the timeline (irx.lease); acquired/released are routine.
_LEASE_TEXT = {
    "forced": "taken over with --force from {who}",
    "stale": "taken over from {who}, whose lease had expired",
    "lost": "lost to {who}: that host was not changed after this",
    "expired": "expired while the host could not be reached",
    "reacquired": "had lapsed and was taken again",
    "release_failed": "not released (it expires by itself)",
}


def load_report(run_dir: Path) -> Report:
    """Read a run directory's journal and build its report (``UsageError`` if it cannot be read)."""
    return build_report(read_journal(run_dir))


def build_report(journal: JournalRead) -> Report:
    """The ``Report`` of a journal read back; tolerant of any event content."""
    events = journal.events
    started = journal.first("run_started") or {}
    finished = journal.last("run_finished")
    steps = _steps(events)
    start_ts = _ts(started.get("ts")) or (_ts(events[0].get("ts")) if events else None)
    end_ts = _ts(events[-1].get("ts")) if events else None
    duration = _num(finished.get("duration")) if finished else None
    if duration is None:
        duration = _elapsed(start_ts, end_ts)
    planned = [_str(item.get("id")) for item in _list(started.get("plan")) if isinstance(item, Mapping)]
    seen = {step.id for step in steps}
    problems = list(journal.problems)
    if events and events[0].get("type") != "run_started":
        problems.append("the journal does not start with run_started")
    report = Report(
        run_id=_str(started.get("run_id")) or (_str(events[0].get("run_id")) if events else None) or "unknown",
        path=str(journal.path),
        status=journal.status,
        finished=finished is not None,
        playbook=_str(started.get("playbook")),
        title=_str(started.get("title")),
        severity=_str(started.get("severity")),
        summary=_str(started.get("summary")),
        symptoms=tuple(str(item) for item in _list(started.get("symptoms"))),
        inventory=_str(started.get("inventory")),
        limit=_str(started.get("limit")),
        mode=_str(started.get("mode")),
        operator=_str(started.get("operator")),
        plan_hash=_str(started.get("plan_hash")),
        irx_version=_str(started.get("irx_version")),
        params=dict(started["params"]) if isinstance(started.get("params"), Mapping) else {},
        hosts=_strs(started.get("hosts")),
        started=start_ts,
        ended=end_ts,
        duration=duration,
        exit_code=finished.get("exit_code") if finished and isinstance(finished.get("exit_code"), int) else None,
        reason=_str(finished.get("reason")) if finished else None,
        verdict=_str(finished.get("verdict")) if finished else None,
        phases=tuple(_phases(events)),
        steps=tuple(steps),
        not_reached=tuple(step_id for step_id in planned if step_id and step_id not in seen),
        decisions=tuple(_decision(event) for event in events if event.get("type") == "decision"),
        approvals=tuple(_approval(event) for event in events if event.get("type") == "approval"),
        errors=tuple(_str(e.get("message")) or "error" for e in events if e.get("type") == "error"),
        notifications=tuple(_notification(event) for event in events if event.get("type") == "notification"),
        problems=tuple(problems),
        events=tuple(events),
    )
    return dataclasses.replace(
        report, timeline=tuple(_timeline(report, events, journal)), metrics=tuple(_metrics(report, events))
    )


def _steps(events: list[dict[str, Any]]) -> list[Step]:
    """One Step per step id, in the order they first started (a retried step stays one step)."""
    order: list[str] = []
    fields: dict[str, dict[str, Any]] = {}
    results: dict[str, list[HostResult]] = {}
    for event in events:
        kind, step_id = event.get("type"), _str(event.get("step"))
        if step_id is None or kind not in ("step_started", "host_result", "step_finished"):
            continue
        if step_id not in fields:
            order.append(step_id)
            fields[step_id] = {"id": step_id, "phase": _str(event.get("phase")) or "unknown"}
            results[step_id] = []
        info = fields[step_id]
        if kind == "step_started":
            info.setdefault("started", _ts(event.get("ts")))
            info.update(
                action=_str(event.get("action")),
                title=_str(event.get("title")),
                summary=_str(event.get("summary")),
                hosts=_strs(event.get("hosts")),
                mutating=event.get("mutating") is True,
                approval_required=event.get("approval_required") is True,
                status="interrupted",  # until its step_finished arrives
            )
        elif kind == "host_result":
            result = _host_result(event)
            _replace_result(results[step_id], result)
            if result.status in _FAILED_HOST and result.host not in info.setdefault("failed_hosts", ()):
                info["failed_hosts"] += (result.host,)
        else:
            outcome = _str(event.get("status")) or "unknown"
            info["outcomes"] = (*info.get("outcomes", ()), outcome)
            if outcome in _BAD_STEP:
                info["failure_reason"] = _str(event.get("reason"))
            info.update(
                finished=_ts(event.get("ts")),
                status=_str(event.get("status")) or "unknown",
                duration=_num(event.get("duration")),
                attempts=event.get("attempts") if isinstance(event.get("attempts"), int) else None,
                reason=_str(event.get("reason")),
                aggregates=dict(event["aggregates"]) if isinstance(event.get("aggregates"), Mapping) else None,
            )
    return [Step(**fields[step_id], results=tuple(results[step_id])) for step_id in order]


def _replace_result(results: list[HostResult], result: HostResult) -> None:
    """Keep the last attempt's result per host."""
    for index, existing in enumerate(results):
        if existing.host == result.host:
            results[index] = result
            return
    results.append(result)


def _host_result(event: Mapping[str, Any]) -> HostResult:
    return HostResult(
        host=_str(event.get("host")) or "?",
        status=_str(event.get("status")) or "unknown",
        ts=_ts(event.get("ts")),
        rc=event.get("rc") if isinstance(event.get("rc"), int) else None,
        duration=_num(event.get("duration")),
        changed=event.get("changed") if isinstance(event.get("changed"), bool) else None,
        msg=_str(event.get("msg")),
        data=event.get("data"),
        stdout=_str(event.get("stdout")),
        stderr=_str(event.get("stderr")),
        attempt=event.get("attempt") if isinstance(event.get("attempt"), int) else None,
    )


def _phases(events: list[dict[str, Any]]) -> list[Phase]:
    phases: list[Phase] = []
    for event in events:
        name = _str(event.get("phase"))
        if name is None:
            continue
        if event.get("type") == "phase_started":
            phases.append(
                Phase(
                    name=name,
                    started=_ts(event.get("ts")),
                    again=event.get("again") is True,
                    reason=_str(event.get("reason")),
                )
            )
        elif event.get("type") == "phase_finished":
            index = next((i for i in range(len(phases) - 1, -1, -1) if phases[i].name == name), None)
            finished, status = _ts(event.get("ts")), _str(event.get("status")) or "unknown"
            duration = _num(event.get("duration"))
            if index is None or phases[index].status is not None:  # finished without a start: keep it anyway
                phases.append(Phase(name=name, finished=finished, status=status, duration=duration))
            else:
                phase = phases[index]
                if duration is None:
                    duration = _elapsed(phase.started, finished)
                phases[index] = dataclasses.replace(phase, finished=finished, status=status, duration=duration)
    return phases


def _decision(event: Mapping[str, Any]) -> Decision:
    return Decision(
        ts=_ts(event.get("ts")),
        decision=_str(event.get("decision")) or "unknown",
        phase=_str(event.get("phase")),
        step=_str(event.get("step")),
        reason=_str(event.get("reason")),
        expression=_str(event.get("expression")),
        value=event.get("value"),
        hosts=_strs(event.get("hosts")),
    )


def _approval(event: Mapping[str, Any]) -> Approval:
    return Approval(
        ts=_ts(event.get("ts")),
        step=_str(event.get("step")) or "?",
        approved=event.get("approved") is True,
        method=_str(event.get("method")) or "unknown",
        by=_str(event.get("by")),
        reason=_str(event.get("reason")),
        hosts=_strs(event.get("hosts")),
        summary=_str(event.get("summary")),
        approval_hash=_str(event.get("approval_hash")),
    )


def _notification(event: Mapping[str, Any]) -> dict[str, Any]:
    keys = ("ts", "channel", "kind", "status", "attempts", "error", "http_status")
    return {key: event[key] for key in keys if key in event}


def driving_steps(report: Report) -> list[Step]:
    """Diagnose steps whose results a decision's expression or reason names: the root-cause evidence."""
    named: list[str] = []
    for decision in report.decisions:
        for text in (decision.expression, decision.reason):
            for step_id in _STEP_REF.findall(text or ""):
                if step_id not in named:
                    named.append(step_id)
    return [step for step in report.steps_in("diagnose") if step.id in named]


def _hosts_text(hosts: list[str] | tuple[str, ...]) -> str:
    return humanize.hosts(hosts, shown=len(hosts))  # the report names every host


def _timeline(report: Report, events: list[dict[str, Any]], journal: JournalRead) -> list[TimelineEntry]:
    entries: list[TimelineEntry] = []
    failing: dict[str, list[str]] = {}  # per step, the hosts that failed since its last step_started
    for event in events:
        step_id, host = str(event.get("step")), str(event.get("host"))
        if event.get("type") == "step_started":
            failing[step_id] = []
        elif event.get("type") == "host_result" and event.get("status") in _FAILED_HOST:
            failing.setdefault(step_id, []).append(host)
        text = _timeline_text(report, event, failing.get(step_id, []))
        if text is not None:
            entries.append(
                TimelineEntry(
                    ts=_ts(event.get("ts")),
                    kind=str(event.get("type")),
                    text=text,
                    phase=_str(event.get("phase")),
                    step=_str(event.get("step")),
                    status=_str(event.get("status")) or _str(event.get("decision")),
                )
            )
    if journal.last("run_finished") is None:
        last_ts = _ts(events[-1].get("ts")) if events else None
        text = {
            "running": "Journal ends here: the run is still in progress",
            "interrupted": "Journal ends here: the run was killed before it could finish (INTERRUPTED)",
        }.get(journal.status, "Journal ends here without run_finished (status unknown)")
        entries.append(TimelineEntry(ts=last_ts, kind="journal_end", text=text, status=journal.status))
    return entries


def _timeline_text(report: Report, event: Mapping[str, Any], failing: list[str]) -> str | None:
    kind = event.get("type")
    phase, step_id, status = _str(event.get("phase")), _str(event.get("step")), _str(event.get("status"))
    step = report.step(step_id) if step_id else None
    label = f"{step_id} ({step.title})" if step and step.title and step.title != step_id else str(step_id)
    if kind == "run_started":
        where = report.inventory or "?"
        if report.limit:
            where += f" (limit {report.limit})"
        return (
            f"Run started: {report.playbook or '?'} ({report.severity or 'severity unknown'}) on {where}, "
            f"{report.mode or '?'} mode, by {report.operator or 'unknown'}"
        )
    if kind == "phase_started":
        again = " again" if event.get("again") is True else ""
        cause = f" — {event['reason']}" if _str(event.get("reason")) else ""
        return f"Phase {phase} started{again}{cause}"
    if kind == "phase_finished":
        took = _num(event.get("duration"))
        return f"Phase {phase} finished: {status}" + (f" ({format_duration(took)})" if took is not None else "")
    if kind == "host_result" and status in _FAILED_HOST:
        where = f"step {label}" if step_id else f"{phase or 'run'}"
        msg = _str(event.get("msg"))
        return f"{where} {status} on {event.get('host')}" + (f": {_one_line(msg)}" if msg else "")
    if kind == "step_finished":
        return _step_text(step, label, status, event, failing)
    if kind == "decision":
        subject = f" {step_id}" if step_id else ""
        why = _str(event.get("reason"))
        return f"Decision: {event.get('decision')}{subject}" + (f" — {_one_line(why)}" if why else "")
    if kind == "approval":
        hosts = _strs(event.get("hosts"))
        on = f" on {', '.join(hosts)}" if hosts else ""
        if event.get("approved") is True:
            return f"Approval: {step_id}{on} approved by {event.get('by')} ({event.get('method')})"
        if event.get("method") == "missing":
            return f"Approval: {step_id}{on} awaiting approval (no terminal and no --approve/--yes)"
        who = f" by {event['by']}" if _str(event.get("by")) else ""
        return f"Approval: {step_id}{on} refused{who}"
    if kind == "notification":
        channel, note = event.get("channel"), _str(event.get("kind")) or "message"
        if status == "failed":
            return f"Notification {note} to {channel} failed: {_one_line(_str(event.get('error')) or 'unknown')}"
        return f"Notification {note} {status} to {channel}"
    if kind == "error":
        return f"Error: {_one_line(_str(event.get('message')) or '?')}"
    if kind == "lease" and event.get("action") in _LEASE_TEXT:
        other = event.get("previous") or event.get("holder")
        who = f"run {other.get('run_id')} of {other.get('operator')}" if isinstance(other, Mapping) else "another run"
        where = f" on {event.get('host')}" if _str(event.get("host")) else ""
        return f"Host lease{where} {_LEASE_TEXT[str(event['action'])].format(who=who)}"
    if kind == "lock" and event.get("action") == "forced":
        previous = event.get("previous")
        held = previous.get("run_id") if isinstance(previous, Mapping) else "another run"
        return f"Run lock taken over with --force from {held}"
    if kind == "run_finished":
        took = _num(event.get("duration"))
        text = f"Run finished: {str(status).upper()} (exit {event.get('exit_code')}"
        text += f", {format_duration(took)})" if took is not None else ")"
        why = _str(event.get("reason"))
        return text + (f" — {_one_line(why)}" if why else "")
    return None


def _step_text(step: Step | None, label: str, status: str | None, event: Mapping[str, Any], failing: list[str]) -> str:
    hosts = list(step.hosts) if step else []
    reason = _str(event.get("reason"))
    if status == "ok":
        return f"Step {label} ok on {_hosts_text(hosts)}"
    if status == "skipped":
        return f"Step {label} skipped" + (f": {_one_line(reason)}" if reason else "")
    if status == "would_run":
        return f"Step {label} would run on {_hosts_text(hosts)} (dry run)"
    if status == "not_run":
        return f"Step {label} not run" + (f": {_one_line(reason)}" if reason else "")
    where = f" on {', '.join(dict.fromkeys(failing))}" if failing else ""
    return f"Step {label} {status}{where}" + (f": {_one_line(reason)}" if reason else "")


def _metrics(report: Report, events: list[dict[str, Any]]) -> list[Metric]:
    start = report.started
    first_diag = next(
        (_ts(e.get("ts")) for e in events if e.get("type") == "host_result" and e.get("phase") == "diagnose"),
        None,
    )
    # Mitigated: the first mitigation that changed something (a mutating step, not a message), done.
    changing = {
        e.get("step")
        for e in events
        if e.get("type") == "step_started" and e.get("mutating") is True and e.get("action") != "notify"
    }
    mitigated = next(
        (
            _ts(e.get("ts"))
            for e in events
            if e.get("type") == "step_finished"
            and e.get("phase") == "mitigate"
            and e.get("status") == "ok"
            and e.get("step") in changing
        ),
        None,
    )
    verified = None
    if report.status == "verified":
        verified = next(
            (
                _ts(e.get("ts"))
                for e in reversed(events)
                if e.get("type") == "phase_finished" and e.get("phase") == "verify" and e.get("status") == "ok"
            ),
            report.ended,
        )
    values = {
        "first_diagnostic": _elapsed(start, first_diag),
        "mitigation": _elapsed(start, mitigated),
        "verified_recovery": _elapsed(start, verified),
        "total": report.duration,
    }
    targets = SEVERITY_TARGETS.get(report.severity or "", {})
    metrics = []
    for key, label, kind in METRICS:
        seconds, target = values[key], targets.get(kind)
        over = seconds is not None and target is not None and seconds > target
        metrics.append(Metric(key, label, seconds, target, kind, over))
    return metrics


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
    moment = _time(ts)
    return moment.strftime("%H:%M:%S") if moment else "??:??:??"


def _time(ts: str | None) -> datetime | None:
    if not ts:
        return None
    try:
        return parse_timestamp(ts)
    except ValueError:
        return None


def _elapsed(start: str | None, end: str | None) -> float | None:
    begin, stop = _time(start), _time(end)
    if begin is None or stop is None:
        return None
    return round(max((stop - begin).total_seconds(), 0.0), 3)


def _one_line(text: str) -> str:
    first = text.strip().splitlines()[0] if text.strip() else ""
    return first if len(first) <= 200 else first[:199] + "…"


def _ts(value: Any) -> str | None:
    """A well-formed journal timestamp, else None: a report never carries a time it cannot place."""
    return value if isinstance(value, str) and _time(value) is not None else None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _strs(value: Any) -> tuple[str, ...]:
    return tuple(str(item) for item in _list(value))

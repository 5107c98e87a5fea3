"""The report of one run, built from its journal alone.

``build_report`` turns the events of a ``timeline.jsonl`` into the frozen dataclasses of
``irx.report.facts`` (re-exported here): the run's facts, its phases, its steps with per-host results and
what each ran, decisions, approvals, a timeline of the events a person would write down, incident metrics
against the severity targets, and the headline finding. Every renderer (Markdown, JSON, HTML) reads this
model and nothing else. Bad content never raises: events with missing or odd fields are read with
defaults, and the journal's own problems (torn or corrupted lines, gaps) are carried into the report.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from irx.journal_read import JournalRead, read_journal
from irx.report import findings, story
from irx.report.facts import (
    BAD_STEP,
    FAILED_HOST,
    HOUR,
    MINUTE,
    REFUSALS,
    REPORT_VERSION,
    SEVERITY_TARGETS,
    TARGET_LABELS,
    Approval,
    Decision,
    Finding,
    HostResult,
    Metric,
    Phase,
    Ran,
    Report,
    Step,
    TimelineEntry,
    as_int,
    as_list,
    as_num,
    as_str,
    as_strs,
    as_ts,
    clock,
    elapsed,
    format_duration,
    format_target,
)
from irx.report.findings import METRICS, driving_steps

__all__ = [
    "HOUR",
    "METRICS",
    "MINUTE",
    "REPORT_VERSION",
    "SEVERITY_TARGETS",
    "TARGET_LABELS",
    "Approval",
    "Decision",
    "Finding",
    "HostResult",
    "Metric",
    "Phase",
    "Ran",
    "Report",
    "Step",
    "TimelineEntry",
    "build_report",
    "clock",
    "driving_steps",
    "format_duration",
    "format_target",
    "load_report",
]
# One task of an approval's summary: the rendered action, then the hosts it was shown for (irx.orchestrator).
_SHOWN_ON = re.compile(r"  \[on ([^\]\n]*)\](?:\n|$)")


def load_report(run_dir: Path) -> Report:
    """Read a run directory's journal and build its report (``UsageError`` if it cannot be read)."""
    return build_report(read_journal(run_dir))


def build_report(journal: JournalRead) -> Report:
    """The ``Report`` of a journal read back; tolerant of any event content."""
    events = journal.events
    started = journal.first("run_started") or {}
    finished = journal.last("run_finished")
    approvals = tuple(_approval(event) for event in events if event.get("type") == "approval")
    plan = {as_str(item.get("id")): item for item in as_list(started.get("plan")) if isinstance(item, Mapping)}
    steps = _steps(events, approvals, plan)
    start_ts = as_ts(started.get("ts")) or (as_ts(events[0].get("ts")) if events else None)
    end_ts = as_ts(events[-1].get("ts")) if events else None
    attempts = 1 + sum(1 for event in events if event.get("type") == "run_resumed")
    # A resumed run is one incident: its duration is from its start to its end, the waits between included.
    duration = as_num(finished.get("duration")) if finished and attempts == 1 else None
    if duration is None:
        duration = elapsed(start_ts, end_ts)
    seen = {step.id for step in steps}
    problems = list(journal.problems)
    if events and events[0].get("type") != "run_started":
        problems.append("the journal does not start with run_started")
    report = Report(
        run_id=as_str(started.get("run_id")) or (as_str(events[0].get("run_id")) if events else None) or "unknown",
        path=str(journal.path),
        status=journal.status,
        finished=finished is not None,
        playbook=as_str(started.get("playbook")),
        title=as_str(started.get("title")),
        severity=as_str(started.get("severity")),
        summary=as_str(started.get("summary")),
        symptoms=tuple(str(item) for item in as_list(started.get("symptoms"))),
        inventory=as_str(started.get("inventory")),
        limit=as_str(started.get("limit")),
        mode=as_str(started.get("mode")),
        operator=as_str(started.get("operator")),
        plan_hash=as_str(started.get("plan_hash")),
        irx_version=as_str(started.get("irx_version")),
        params=dict(started["params"]) if isinstance(started.get("params"), Mapping) else {},
        trigger=dict(started["trigger"]) if isinstance(started.get("trigger"), Mapping) else {},
        hosts=as_strs(started.get("hosts")),
        started=start_ts,
        ended=end_ts,
        duration=duration,
        attempts=attempts,
        exit_code=as_int(finished.get("exit_code")) if finished else None,
        reason=as_str(finished.get("reason")) if finished else None,
        verdict=as_str(finished.get("verdict")) if finished else None,
        phases=tuple(_phases(events)),
        steps=tuple(steps),
        not_reached=tuple(step_id for step_id in plan if step_id and step_id not in seen),
        decisions=tuple(_decision(event) for event in events if event.get("type") == "decision"),
        approvals=approvals,
        errors=tuple(as_str(e.get("message")) or "error" for e in events if e.get("type") == "error"),
        notifications=tuple(_notification(event) for event in events if event.get("type") == "notification"),
        results=tuple(_results(events)),
        problems=tuple(problems),
    )
    report = dataclasses.replace(report, timeline=tuple(story.timeline(report, journal)))
    report = dataclasses.replace(report, metrics=tuple(findings.metrics(report)))
    return dataclasses.replace(report, finding=findings.finding(report))


def _steps(
    events: list[dict[str, Any]], approvals: tuple[Approval, ...], plan: Mapping[str | None, Mapping[str, Any]]
) -> list[Step]:
    """One Step per step id, in the order they first started (a retried step stays one step)."""
    order: list[str] = []
    fields: dict[str, dict[str, Any]] = {}
    results: dict[str, list[HostResult]] = {}
    for event in events:
        kind, step_id = event.get("type"), as_str(event.get("step"))
        if step_id is None or kind not in ("step_started", "host_result", "step_finished", "error"):
            continue
        if step_id not in fields:
            if kind == "error":
                continue  # an error about a step that never started (a when: of a later step, say)
            order.append(step_id)
            fields[step_id] = {"id": step_id, "phase": as_str(event.get("phase")) or "unknown"}
            results[step_id] = []
        info = fields[step_id]
        if kind == "step_started":
            _started(info, event)
        elif kind == "host_result":
            result = _host_result(event, info.get("attempt_ts"))
            _replace_result(results[step_id], result)
            if result.status in FAILED_HOST and result.host not in info.setdefault("failed_hosts", ()):
                info["failed_hosts"] += (result.host,)
        elif kind == "error":
            info["errors"] = (*info.get("errors", ()), as_str(event.get("message")) or "error")
        else:
            _finished(info, event)
    steps = []
    for step_id in order:
        info = fields[step_id]
        info.pop("attempt_ts", None)
        planned = plan.get(step_id) or {}
        if info.get("title") is None:  # a run's step_started names the step in the plan only
            info["title"] = as_str(planned.get("title"))
        asked = [approval for approval in approvals if approval.step == step_id]
        step = Step(**info, results=tuple(results[step_id]), approval=_answer(asked[-1]) if asked else None)
        steps.append(dataclasses.replace(step, ran=_ran(step, asked, planned)))
    return steps


def _started(info: dict[str, Any], event: Mapping[str, Any]) -> None:
    info.setdefault("started", as_ts(event.get("ts")))
    info["attempt_ts"] = as_ts(event.get("ts"))
    info.update(
        action=as_str(event.get("action")),
        title=as_str(event.get("title")),
        summary=as_str(event.get("summary")),
        hosts=as_strs(event.get("hosts")),
        mutating=event.get("mutating") is True,
        approval_required=event.get("approval_required") is True,
        status="interrupted",  # until its step_finished arrives
    )


def _finished(info: dict[str, Any], event: Mapping[str, Any]) -> None:
    outcome = as_str(event.get("status")) or "unknown"
    info["outcomes"] = (*info.get("outcomes", ()), outcome)
    if outcome in BAD_STEP:
        info["failure_reason"] = as_str(event.get("reason"))
    info.update(
        finished=as_ts(event.get("ts")),
        status=outcome,
        duration=as_num(event.get("duration")),
        attempts=as_int(event.get("attempts")),
        reason=as_str(event.get("reason")),
        aggregates=dict(event["aggregates"]) if isinstance(event.get("aggregates"), Mapping) else None,
    )


def _answer(approval: Approval) -> str:
    if approval.approved:
        return "approved"
    return "refused" if approval.method in REFUSALS else "awaiting"


def _ran(step: Step, asked: list[Approval], planned: Mapping[str, Any]) -> tuple[Ran, ...]:
    """What the step ran, from the most exact record the journal has of it: the rendering its approver was
    shown (per host), else step_started's rendered action (when it is not just the title), else the plan's."""
    shown = next((approval.summary for approval in reversed(asked) if approval.summary), None)
    if shown is not None:
        return _shown(shown, step.hosts)
    if step.summary and step.summary != step.title:
        return (Ran(step.summary, step.hosts, "step"),)
    text = as_str(planned.get("summary"))
    if text is not None:
        return (Ran(text, as_strs(planned.get("hosts")) or step.hosts, "plan"),)
    return ()


def _shown(summary: str, hosts: tuple[str, ...]) -> tuple[Ran, ...]:
    """An approval's summary, one ``Ran`` per rendering: ``ACTION  [on h1, h2]`` per task, or one text."""
    pieces = _SHOWN_ON.split(summary)
    found = [
        Ran(text.strip("\n"), tuple(h.strip() for h in on.split(",") if h.strip()), "approval")
        for text, on in zip(pieces[0::2], pieces[1::2], strict=False)
    ]
    rest = pieces[-1].strip("\n") if len(pieces) % 2 else ""
    if rest:
        found.append(Ran(rest, hosts, "approval"))
    return tuple(found)


def _replace_result(results: list[HostResult], result: HostResult) -> None:
    """Keep the last attempt's result per host."""
    for index, existing in enumerate(results):
        if existing.host == result.host:
            results[index] = result
            return
    results.append(result)


def _results(events: list[dict[str, Any]]) -> list[HostResult]:
    """Every host result in journal order, each with the start of the step attempt it belongs to."""
    attempt: dict[str, str | None] = {}
    found = []
    for event in events:
        step_id = as_str(event.get("step"))
        if event.get("type") == "step_started" and step_id:
            attempt[step_id] = as_ts(event.get("ts"))
        elif event.get("type") == "host_result":
            found.append(_host_result(event, attempt.get(step_id) if step_id else None))
    return found


def _host_result(event: Mapping[str, Any], since: str | None) -> HostResult:
    return HostResult(
        host=as_str(event.get("host")) or "?",
        status=as_str(event.get("status")) or "unknown",
        ts=as_ts(event.get("ts")),
        rc=as_int(event.get("rc")),
        duration=as_num(event.get("duration")),
        changed=event.get("changed") if isinstance(event.get("changed"), bool) else None,
        msg=as_str(event.get("msg")),
        data=event.get("data"),
        stdout=as_str(event.get("stdout")),
        stderr=as_str(event.get("stderr")),
        attempt=as_int(event.get("attempt")),
        step=as_str(event.get("step")),
        phase=as_str(event.get("phase")),
        since=since,
        stdout_truncated=event.get("stdout_truncated") is True,
        stderr_truncated=event.get("stderr_truncated") is True,
    )


def _phases(events: list[dict[str, Any]]) -> list[Phase]:
    phases: list[Phase] = []
    for event in events:
        name = as_str(event.get("phase"))
        if name is None:
            continue
        if event.get("type") == "phase_started":
            phases.append(
                Phase(
                    name=name,
                    started=as_ts(event.get("ts")),
                    again=event.get("again") is True,
                    reason=as_str(event.get("reason")),
                )
            )
        elif event.get("type") == "phase_finished":
            index = next((i for i in range(len(phases) - 1, -1, -1) if phases[i].name == name), None)
            finished, status = as_ts(event.get("ts")), as_str(event.get("status")) or "unknown"
            duration = as_num(event.get("duration"))
            if index is None or phases[index].status is not None:  # finished without a start: keep it anyway
                phases.append(Phase(name=name, finished=finished, status=status, duration=duration))
            else:
                phase = phases[index]
                if duration is None:
                    duration = elapsed(phase.started, finished)
                phases[index] = dataclasses.replace(phase, finished=finished, status=status, duration=duration)
    return phases


def _decision(event: Mapping[str, Any]) -> Decision:
    return Decision(
        ts=as_ts(event.get("ts")),
        decision=as_str(event.get("decision")) or "unknown",
        phase=as_str(event.get("phase")),
        step=as_str(event.get("step")),
        reason=as_str(event.get("reason")),
        expression=as_str(event.get("expression")),
        value=event.get("value"),
        hosts=as_strs(event.get("hosts")),
    )


def _approval(event: Mapping[str, Any]) -> Approval:
    return Approval(
        ts=as_ts(event.get("ts")),
        step=as_str(event.get("step")) or "?",
        approved=event.get("approved") is True,
        method=as_str(event.get("method")) or "unknown",
        by=as_str(event.get("by")),
        reason=as_str(event.get("reason")),
        hosts=as_strs(event.get("hosts")),
        summary=as_str(event.get("summary")),
        approval_hash=as_str(event.get("approval_hash")),
    )


def _notification(event: Mapping[str, Any]) -> dict[str, Any]:
    keys = ("ts", "channel", "kind", "status", "attempts", "error", "http_status")
    return {key: event[key] for key in keys if key in event}

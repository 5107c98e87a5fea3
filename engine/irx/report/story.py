"""The report's timeline: the events a person would write down, one line each (not one line per host
unless it failed), built from the journal's events and the steps of a ``Report``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from irx import humanize
from irx.journal_read import JournalRead
from irx.report.facts import (
    FAILED_HOST,
    Report,
    Step,
    TimelineEntry,
    as_num,
    as_str,
    as_strs,
    as_ts,
    format_duration,
    one_line,
)

# Lease events worth a line in the timeline (irx.lease); acquired/released are routine.
_LEASE_TEXT = {
    "forced": "taken over with --force from {who}",
    "stale": "taken over from {who}, whose lease had expired",
    "lost": "lost to {who}: that host was not changed after this",
    "expired": "expired while the host could not be reached",
    "reacquired": "had lapsed and was taken again",
    "release_failed": "not released (it expires by itself)",
}
_JOURNAL_END = {
    "running": "Journal ends here: the run is still in progress",
    "interrupted": "Journal ends here: the run was killed before it could finish (INTERRUPTED)",
}


def timeline(report: Report, journal: JournalRead) -> list[TimelineEntry]:
    entries: list[TimelineEntry] = []
    failing: dict[str, list[str]] = {}  # per step, the hosts that failed since its last step_started
    for event in journal.events:
        step_id, host = str(event.get("step")), str(event.get("host"))
        if event.get("type") == "step_started":
            failing[step_id] = []
        elif event.get("type") == "host_result" and event.get("status") in FAILED_HOST:
            failing.setdefault(step_id, []).append(host)
        text = _text(report, event, failing.get(step_id, []))
        if text is not None:
            entries.append(
                TimelineEntry(
                    ts=as_ts(event.get("ts")),
                    kind=str(event.get("type")),
                    text=text,
                    phase=as_str(event.get("phase")),
                    step=as_str(event.get("step")),
                    status=as_str(event.get("status")) or as_str(event.get("decision")),
                )
            )
    ends = [event.get("type") for event in journal.events if event.get("type") in ("run_finished", "run_resumed")]
    if not ends or ends[-1] != "run_finished":  # never finished, or a continuation (irx resume) did not
        last_ts = as_ts(journal.events[-1].get("ts")) if journal.events else None
        text = _JOURNAL_END.get(journal.status, "Journal ends here without run_finished (status unknown)")
        entries.append(TimelineEntry(ts=last_ts, kind="journal_end", text=text, status=journal.status))
    return entries


def _text(report: Report, event: Mapping[str, Any], failing: list[str]) -> str | None:
    kind = event.get("type")
    phase, step_id, status = as_str(event.get("phase")), as_str(event.get("step")), as_str(event.get("status"))
    step = report.step(step_id) if step_id else None
    label = f"{step_id} ({step.title})" if step and step.title and step.title != step_id else str(step_id)
    if kind == "run_started":
        return _run_started(report)
    if kind == "phase_started":
        again = " again" if event.get("again") is True else ""
        cause = f" — {event['reason']}" if as_str(event.get("reason")) else ""
        return f"Phase {phase} started{again}{cause}"
    if kind == "phase_finished":
        took = as_num(event.get("duration"))
        return f"Phase {phase} finished: {status}" + (f" ({format_duration(took)})" if took is not None else "")
    if kind == "host_result" and status in FAILED_HOST:
        where = f"step {label}" if step_id else f"{phase or 'run'}"
        msg = as_str(event.get("msg"))
        return f"{where} {status} on {event.get('host')}" + (f": {one_line(msg)}" if msg else "")
    if kind == "step_finished":
        return _step_text(step, label, status, event, failing)
    if kind == "decision":
        subject = f" {step_id}" if step_id else ""
        why = as_str(event.get("reason"))
        return f"Decision: {event.get('decision')}{subject}" + (f" — {one_line(why)}" if why else "")
    if kind == "approval":
        return _approval_text(event, step_id)
    if kind == "approval_requested":
        hosts = as_strs(event.get("hosts"))
        until = as_str(event.get("until"))
        limit = f", until {until[11:19]}" if until else ""
        where = f" on {', '.join(hosts)}" if hosts else ""
        return f"Approval requested: {label}{where}{_needs(event)} (irx approve / deny{limit})"
    if kind == "approval_given":
        return _given_text(event, label)
    if kind == "approval_escalated":
        after = as_num(event.get("after"))
        waited = f" after {format_duration(after)}" if after is not None else ""
        count = f" ({event.get('given')} of {event.get('needed')} approvals)" if event.get("needed") else ""
        return (
            f"Approval escalated: {label} still waiting{waited}{count}; told {event.get('channel') or 'every channel'}"
        )
    if kind == "notification":
        channel, note = event.get("channel"), as_str(event.get("kind")) or "message"
        if status == "failed":
            return f"Notification {note} to {channel} failed: {one_line(as_str(event.get('error')) or 'unknown')}"
        return f"Notification {note} {status} to {channel}"
    if kind == "error":
        return f"Error: {one_line(as_str(event.get('message')) or '?')}"
    if kind in ("lease", "lock"):
        return _hold_text(event)
    if kind == "run_finished":
        return _run_finished(event, status)
    if kind == "run_resumed":
        return _run_resumed(event)
    return None


def _run_resumed(event: Mapping[str, Any]) -> str:
    done, again = as_strs(event.get("done")), as_str(event.get("from_step"))
    text = (
        f"Run resumed (attempt {event.get('attempt')}) by {event.get('operator')} after it stopped {event.get('after')}"
    )
    if again:
        hosts = as_strs(event.get("rerun_hosts"))
        text += f": step {again} again" + (f" on {', '.join(hosts)} only" if hosts else "")
    text += f"; {len(done)} completed step(s) not run again" if done else ""
    changes = as_strs(event.get("changes"))
    return text + (f"; replanned: {one_line('; '.join(changes))}" if changes else "")


def _run_started(report: Report) -> str:
    where = report.inventory or "?"
    if report.limit:
        where += f" (limit {report.limit})"
    return (
        f"Run started: {report.playbook or '?'} ({report.severity or 'severity unknown'}) on {where}, "
        f"{report.mode or '?'} mode, by {report.operator or 'unknown'}"
    )


def _needs(event: Mapping[str, Any]) -> str:
    """`` — needs 2 approvals from group:dba, not the requester`` for a gate with a rule beyond one approval."""
    needed, who = event.get("needed"), as_strs(event.get("approvers"))
    if not isinstance(needed, int) or (needed <= 1 and not who and event.get("requester_may_approve") is not False):
        return ""
    others = ", not the requester" if event.get("requester_may_approve") is False else ""
    return f" — needs {needed} approval{'s' if needed != 1 else ''} from {', '.join(who) or 'anyone'}{others}"


def _given_text(event: Mapping[str, Any], label: str) -> str | None:
    by, via, why = event.get("by"), event.get("via"), as_str(event.get("reason"))
    if event.get("counted") is not True:
        return f"Approval not counted: {label} by {by} ({via})" + (f" — {one_line(why)}" if why else "")
    if event.get("approve") is not True:
        return None  # the approval event that follows says it was refused, and by whom
    needed = event.get("needed")
    if not isinstance(needed, int) or needed <= 1:
        return None  # one approval: the approval event says it all
    return f"Approval given: {label} by {by} ({via}), {event.get('given')} of {needed}"


def _approval_text(event: Mapping[str, Any], step_id: str | None) -> str:
    hosts = as_strs(event.get("hosts"))
    on = f" on {', '.join(hosts)}" if hosts else ""
    if event.get("approved") is True:
        return f"Approval: {step_id}{on} approved by {event.get('by')} ({event.get('method')})"
    method, why = event.get("method"), as_str(event.get("reason"))
    if method == "missing":
        return f"Approval: {step_id}{on} awaiting approval (no terminal and no --approve/--yes)"
    if method in _UNANSWERED:
        return f"Approval: {step_id}{on} {_UNANSWERED[str(method)]}" + (f" — {one_line(why)}" if why else "")
    who = f" by {event['by']}" if as_str(event.get("by")) else ""
    return f"Approval: {step_id}{on} refused{who}"  # why: the step's own line says (its reason)


_UNANSWERED = {
    "timeout": "not answered in time",
    "timeout-skip": "not answered in time, so skipped (on_timeout: skip)",
    "interrupted": "interrupted while waiting",
    "stale": "not given for what would run",
    "binding": "refused by irx",
}


def _hold_text(event: Mapping[str, Any]) -> str | None:
    if event.get("type") == "lease" and event.get("action") in _LEASE_TEXT:
        other = event.get("previous") or event.get("holder")
        who = f"run {other.get('run_id')} of {other.get('operator')}" if isinstance(other, Mapping) else "another run"
        where = f" on {event.get('host')}" if as_str(event.get("host")) else ""
        return f"Host lease{where} {_LEASE_TEXT[str(event['action'])].format(who=who)}"
    if event.get("type") == "lock" and event.get("action") == "forced":
        previous = event.get("previous")
        held = previous.get("run_id") if isinstance(previous, Mapping) else "another run"
        return f"Run lock taken over with --force from {held}"
    return None


def _run_finished(event: Mapping[str, Any], status: str | None) -> str:
    took = as_num(event.get("duration"))
    text = f"Run finished: {str(status).upper()} (exit {event.get('exit_code')}"
    text += f", {format_duration(took)})" if took is not None else ")"
    why = as_str(event.get("reason"))
    return text + (f" — {one_line(why)}" if why else "")


def _step_text(step: Step | None, label: str, status: str | None, event: Mapping[str, Any], failing: list[str]) -> str:
    hosts = list(step.hosts) if step else []
    reason = as_str(event.get("reason"))
    why = f": {one_line(reason)}" if reason else ""
    if status == "ok":
        return f"Step {label} ok on {humanize.hosts(hosts, shown=len(hosts))}"
    if status == "skipped" and step is not None and step.state == "refused":
        return f"Step {label} refused, not run{why}"
    if status == "skipped":
        return f"Step {label} skipped{why}"
    if status == "would_run":
        return f"Step {label} would run on {humanize.hosts(hosts, shown=len(hosts))} (dry run)"
    if status == "not_run":
        return f"Step {label} not run{why}"
    where = f" on {', '.join(dict.fromkeys(failing))}" if failing else ""
    return f"Step {label} {status}{where}{why}"

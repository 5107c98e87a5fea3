"""The post-mortem draft in Markdown, following the runbooks' template.

Sections: title, facts (date, duration, severity), the headline finding (what was wrong, what fixed it,
how long), summary, impact, timeline (UTC ``HH:MM:SS — event``),
root-cause evidence, resolution, verification, metrics against the severity targets, action items,
lessons learned. What irx cannot know (impact, lessons, owners) is left as ``[placeholders]``.
"""

from __future__ import annotations

import json
from typing import Any

from irx import humanize
from irx.approval import short
from irx.report.model import Ran, Report, Step, clock, driving_steps, format_duration, format_target
from irx.verdict import VERIFICATION_FAILED, outcome_text

_STATUS_WORDS = {
    "verified": "recovery was verified",
    "failed": "the run failed",
    "rolled_back": "verification failed and the mitigation was rolled back",
    "awaiting_approval": "the run stopped at an approval gate nobody answered",
    "interrupted": "the run was interrupted before it could finish",
    "dry_run": "this was a dry run: no mutating step was executed, and nothing failed",
    "dry_run/verification_failed": "this was a dry run: no mutating step was executed, and verification (or a "
    "step before it) failed, so a real run would roll back",
    "aborted": "the run was aborted",
    "running": "the run is still in progress",
    "incomplete": "the journal ends without a final status",
}
_DATA_LIMIT = 300  # characters of one host's parsed data shown inline


def _status_words(report: Report) -> str:
    if report.status == "dry_run" and report.verdict == VERIFICATION_FAILED:
        return _STATUS_WORDS["dry_run/verification_failed"]
    return _STATUS_WORDS.get(report.status, report.status)


def render(report: Report) -> str:
    """The Markdown post-mortem draft of ``report``."""
    lines: list[str] = []
    lines += _header(report)
    lines += _headline(report)
    lines += _summary(report)
    lines += _impact()
    lines += _timeline(report)
    lines += _root_cause(report)
    lines += _resolution(report)
    lines += _verification(report)
    lines += _metrics(report)
    lines += _action_items(report)
    lines += _lessons()
    if report.problems:
        lines += ["## Journal problems", ""]
        lines += [f"- {problem}" for problem in report.problems]
        lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"


def _resumed(report: Report) -> str:
    resumed = report.attempts - 1
    return f", resumed {resumed} time{'s' if resumed > 1 else ''} with irx resume" if resumed else ""


def _header(report: Report) -> list[str]:
    title = report.title or report.playbook or report.run_id
    date = (report.started or "")[:10] or "unknown"
    mode = f"{report.mode}" + (" (nothing was changed)" if report.mode == "dry-run" else "")
    return [
        f"# Post-Mortem: {title}",
        "",
        f"**Date**: {date}",
        f"**Severity**: {report.severity or 'unknown'}",
        f"**Duration**: {format_duration(report.duration)} (irx run{_resumed(report)}, {clock(report.started)} to "
        f"{clock(report.ended)} UTC)",
        f"**Status**: {report.status.upper()}"
        + (f" ({outcome_text(report.status, report.verdict)})" if report.status == "dry_run" else ""),
        "**Incident Commander**: [Name]",
        f"**Operator**: {report.operator or 'unknown'}",
        f"**Playbook**: {report.playbook or '?'} · **Inventory**: {report.inventory or '?'}"
        + (f" (limit {report.limit})" if report.limit else "")
        + f" · **Mode**: {mode}",
        f"**Run**: {report.run_id}" + (f" · **Plan**: {report.plan_hash}" if report.plan_hash else ""),
        *([f"**Trigger**: {report.trigger_text}"] if report.trigger_text else []),
        "",
    ]


def _headline(report: Report) -> list[str]:
    """The headline: what was wrong (the diagnosis a mitigation's condition matched), what fixed it (the
    first mitigation that changed something), how long."""
    finding = report.finding
    if report.mode == "dry-run":
        fixed = "nothing: a dry run changes nothing"
    else:
        fixed = finding.fixed or "nothing: no mitigation changed anything"
    return [
        "## Finding",
        "",
        f"- **What was wrong**: {finding.wrong or 'no diagnosis matched the condition of a mitigation in this run'}",
        f"- **What fixed it**: {fixed}",
        f"- **How long**: time to mitigation {_reached(finding.time_to_mitigation)}, "
        f"time to verified recovery {_reached(finding.time_to_resolution)}",
        "",
    ]


def _reached(seconds: float | None) -> str:
    return "not reached" if seconds is None else format_duration(seconds)


def _ran(ran: Ran, verb: str) -> str:
    on = f" on {humanize.hosts(ran.hosts, shown=len(ran.hosts))}" if ran.hosts else ""
    text = " / ".join(line.strip() for line in ran.text.splitlines() if line.strip()).replace("`", "'")
    return f"  - {verb}{on} ({ran.how}): `{text}`"


def _summary(report: Report) -> list[str]:
    sentences = []
    what = report.title or report.playbook or "an incident"
    hosts = f" on {len(report.hosts)} host(s) ({', '.join(report.hosts)})" if report.hosts else ""
    sentences.append(
        f"irx ran the {report.playbook or '?'} playbook ({what}){hosts} for {format_duration(report.duration)}: "
        f"{_status_words(report)}."
    )
    counts = _counts(report)
    if counts:
        sentences.append(f"Steps: {counts}.")
    mitigations = [step for step in report.steps_in("mitigate") if step.status == "ok"]
    if mitigations:
        sentences.append(f"Mitigation applied: {', '.join(step.name for step in mitigations)}.")
    if report.reason:
        sentences.append(f"Final reason: {report.reason}.".replace("..", "."))
    lines = ["## Summary", "", " ".join(sentences)]
    if report.summary:
        lines += ["", f"Playbook: {report.summary}"]
    if report.symptoms:
        lines += ["", "Symptoms the playbook addresses:", ""] + [f"- {symptom}" for symptom in report.symptoms]
    return [*lines, ""]


def _counts(report: Report) -> str:
    tally: dict[str, int] = {}
    for step in report.steps:
        tally[step.state] = tally.get(step.state, 0) + 1
    parts = [f"{count} {status}" for status, count in tally.items()]
    if report.not_reached:
        parts.append(f"{len(report.not_reached)} never reached")
    return ", ".join(parts)


def _impact() -> list[str]:
    return [
        "## Impact",
        "",
        "- **Users Affected**: [X users / Y%]",
        "- **Services Affected**: [list]",
        "- **Revenue Impact**: [$X, if applicable]",
        "- **Data Loss**: [Yes/No]",
        "",
    ]


def _timeline(report: Report) -> list[str]:
    lines = ["## Timeline (all times in UTC)", ""]
    lines += [f"- {clock(entry.ts)} — {entry.text}" for entry in report.timeline]
    if not report.timeline:
        lines.append("- (the journal holds no events)")
    return [*lines, ""]


def _root_cause(report: Report) -> list[str]:
    lines = ["## Root Cause", "", "[Detailed explanation of what caused the incident]", ""]
    evidence = driving_steps(report)
    heading = "Diagnostic findings that drove decisions"
    if not evidence:
        evidence = [step for step in report.steps_in("diagnose") if step.results]
        heading = "Diagnostic findings"
    lines += [f"### {heading}", ""]
    if not evidence:
        return [*lines, "- No diagnostic result was recorded.", ""]
    for step in evidence:
        lines.append(f"- **{step.name}** (`{step.id}`, {step.state})")
        lines += [_ran(ran, step.ran_verb) for ran in step.ran]
        for result in step.results:
            lines.append(f"  - {result.host}: {result.status}{_finding(result.data, result.msg)}")
        if step.aggregates:
            shown = {k: v for k, v in step.aggregates.items() if k in ("total", "max", "min", "count")}
            lines.append(f"  - aggregate: {_compact(shown)}")
        for decision in report.decisions:
            if f"steps.{step.id}" in (decision.expression or "") + (decision.reason or ""):
                target = f" {decision.step}" if decision.step else ""
                lines.append(f"  - → decided **{decision.decision}{target}**: {decision.reason or ''}".rstrip(": "))
    return [*lines, ""]


def _finding(data: Any, msg: str | None) -> str:
    if data is not None:
        return f" — `{_compact(data)}`"
    return f" — {msg}" if msg else ""


def _compact(data: Any) -> str:
    text = json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(", ", ": "), default=str)
    return humanize.shorten(text, _DATA_LIMIT)


def _resolution(report: Report) -> list[str]:
    lines = ["## Resolution", ""]
    acted = [step for step in report.steps if step.phase in ("mitigate", "rollback") and step.status != "not_run"]
    if not acted:
        lines.append("- No mitigation step ran.")
    for step in acted:
        lines.append(_step_line(report, step))
    return [*lines, ""]


def _step_line(report: Report, step: Step) -> str:
    hosts = ", ".join(step.hosts) or "the control node"
    line = f"- [{step.phase}] **{step.name}** (`{step.id}`): {step.state.replace('_', ' ')} on {hosts}"
    if step.duration is not None:
        line += f" in {format_duration(step.duration)}"
    for approval in report.approvals_for(step.id):
        bound = f" [{short(approval.approval_hash)}]" if approval.approval_hash else ""
        if approval.approved:
            line += f"; approved by {approval.by} ({approval.method}) at {clock(approval.ts)}{bound}"
        elif approval.method == "missing":
            line += f"; approval never given{bound}"
        elif approval.method in {"timeout", "timeout-skip"}:
            skipped = ", skipped (on_timeout: skip)" if approval.method == "timeout-skip" else ""
            line += f"; not approved in time{skipped} at {clock(approval.ts)}{bound}"
        else:
            why = f": {approval.reason}" if approval.method in {"stale", "binding"} and approval.reason else ""
            line += f"; refused{' by ' + approval.by if approval.by else ''} ({approval.method}) at "
            line += f"{clock(approval.ts)}{bound}{why}"
    failed = step.hosts_with("failed", "unreachable", "timed_out")
    if failed:
        line += f"; failed on {', '.join(failed)}"
    return "\n".join([line, *(_ran(ran, step.ran_verb) for ran in step.ran)])


def _verification(report: Report) -> list[str]:
    lines = ["## Verification", ""]
    checks = report.steps_in("verify")
    if not checks:
        lines.append("- No verification step ran.")
    for step in checks:
        line = f"- **{step.name}** (`{step.id}`): {step.status}"
        if step.results:
            line += " — " + ", ".join(f"{r.host} {r.status}" for r in step.results)
        if step.reason and step.status != "ok":
            line += f" ({step.reason})"
        lines.append(line)
    return [*lines, ""]


def _metrics(report: Report) -> list[str]:
    lines = [
        "## Metrics",
        "",
        f"Measured from the start of the irx run (the incident began earlier); targets for {report.severity or '?'}.",
        "",
        "| Metric | Value | Target | Over target |",
        "|---|---|---|---|",
    ]
    for metric in report.metrics:
        flag = "**YES**" if metric.over_target else "no"
        target = format_target(report.severity, metric.target_kind)
        lines.append(
            f"| {metric.label} | {format_duration(metric.seconds)} | {target} ({metric.target_kind}) | {flag} |"
        )
    return [*lines, ""]


def _action_items(report: Report) -> list[str]:
    items: list[str] = []
    for step in report.steps:
        refused = [a for a in report.approvals_for(step.id) if not a.approved]
        bad = [status for status in (*step.outcomes, step.status) if status in ("failed", "timed_out", "interrupted")]
        if bad:
            where = f" on {', '.join(step.failed_hosts)}" if step.failed_hosts else ""
            why = f": {step.failure_reason}" if step.failure_reason else ""
            items.append(f"Investigate why {step.phase} step `{step.id}` {bad[-1].replace('_', ' ')}{where}{why}")
        elif step.state == "refused" and refused:
            items.append(f"Review the refused approval of `{step.id}` and whether it must run next time")
    for approval in report.approvals:
        if approval.method == "missing":
            items.append(f"Get an approver for `{approval.step}`: the run stopped waiting for one")
    if report.status == "rolled_back":
        items.append("Find out why the mitigation did not restore service (it was rolled back)")
    if report.not_reached:
        items.append(f"Steps never reached: {', '.join(report.not_reached)}; decide whether to run them by hand")
    if report.problems:
        items.append(f"The journal has {len(report.problems)} problem(s) (see below): check nothing is missing")
    lines = ["## Action Items", ""]
    lines += [f"- [ ] {item} - Owner: [Name] - Due: [Date]" for item in items]
    lines.append("- [ ] [Action] - Owner: [Name] - Due: [Date]")
    return [*lines, ""]


def _lessons() -> list[str]:
    return [
        "## What Went Well",
        "",
        "- [...]",
        "",
        "## What Went Wrong",
        "",
        "- [...]",
        "",
        "## Lessons Learned",
        "",
        "1. [Lesson 1]",
        "",
    ]

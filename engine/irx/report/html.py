"""The HTML report: one self-contained page with a visual timeline of a run, rendered from its ``Report``.

The page needs nothing but itself: styles are inline, there is no script, and each step's output sits in a
``<details>`` element, so the file can be attached to a ticket or opened offline. Every piece of journal
text is HTML-escaped here; the journal is already redacted, this module only has to keep it inert.

The page leads with the headline finding (what was wrong, what fixed it, how long). The timeline has one
lane per phase (a bar per step, from its start to its end) and one lane per host (a bar per host result,
ending when the result arrived and as long as its ``duration``), on a common time axis; decisions and
approvals are markers on that axis. Bars carry stable classes and ``data-`` attributes
(``lane``/``data-lane``, ``bar``/``data-step``/``data-host``/``data-status``, ``marker``/``data-kind``) so
that tests and people can find them. Each step shows what it ran (rendered, masked) and its results.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import datetime

from irx import humanize
from irx.approval import short
from irx.report.facts import (
    TARGET_LABELS,
    Approval,
    Decision,
    HostResult,
    Metric,
    Ran,
    Report,
    Step,
    format_duration,
    format_target,
    moment_of,
)
from irx.report.style import CSS
from irx.verdict import headline

PHASES = ("preflight", "diagnose", "mitigate", "verify", "rollback")
# Step states that never produce host results: the step is drawn on its hosts' lanes anyway.
_NO_RESULT_STATES = frozenset({"skipped", "would_run", "not_run", "refused", "awaiting_approval"})
_LEGEND = (
    "ok",
    "failed",
    "timed_out",
    "unreachable",
    "skipped",
    "refused",
    "awaiting_approval",
    "would_run",
    "not_run",
    "interrupted",
)
_TICK_STEPS = (0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 43200, 86400)
_MIN_SPAN = 0.001  # seconds: a run whose events share one timestamp still gets an axis


@dataclass(frozen=True)
class Bar:
    """One bar on a lane: a step (phase lanes) or a step's result on one host (host lanes)."""

    step: str
    host: str
    status: str
    start: float  # seconds from the start of the run
    end: float
    label: str
    tooltip: str


@dataclass(frozen=True)
class Marker:
    """A decision or an approval at one instant of the run."""

    kind: str
    at: float
    label: str
    tooltip: str
    status: str


def render(report: Report) -> str:
    """The HTML page of ``report``."""
    axis = _Axis(report)
    phase_lanes, host_lanes = _lanes(report, axis)
    title = report.title or report.playbook or "irx run"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)} — irx run {_e(report.run_id)}</title>",
        f"<style>{CSS}</style>",
        "</head><body>",
        _header(report, title),
        _finding(report),
        _problems(list(report.problems)),
        _metrics(report),
        _chart(axis, phase_lanes, host_lanes, _markers(report, axis)),
        _steps(report),
        "</body></html>",
    ]
    return "\n".join(part for part in parts if part) + "\n"


class _Axis:
    """The report's moments placed on a time axis: seconds from the first of them."""

    def __init__(self, report: Report) -> None:
        stamps = [report.started, report.ended]
        stamps += [ts for step in report.steps for ts in (step.started, step.finished)]
        stamps += [result.ts for result in report.results]
        stamps += [decision.ts for decision in report.decisions]
        stamps += [approval.ts for approval in report.approvals]
        known = [moment for moment in map(moment_of, stamps) if moment is not None]
        self.origin: datetime | None = min(known) if known else None
        last = max(known) if known else None
        self.span = max((last - self.origin).total_seconds(), _MIN_SPAN) if last and self.origin else _MIN_SPAN

    def at(self, ts: str | None) -> float | None:
        """Seconds from the start of the run to ``ts``; None when it cannot be placed."""
        moment = moment_of(ts)
        if moment is None or self.origin is None:
            return None
        return (moment - self.origin).total_seconds()

    def percent(self, seconds: float) -> float:
        return min(max(seconds / self.span * 100, 0.0), 100.0)


def _state(report: Report, step: Step) -> str:
    """A step's state on the page: ``running`` rather than ``interrupted`` while its run is alive."""
    if step.state == "interrupted" and not step.outcomes and report.status == "running":
        return "running"
    return step.state


def _lanes(report: Report, axis: _Axis) -> tuple[dict[str, list[Bar]], dict[str, list[Bar]]]:
    """Phase lanes (in phase order) and host lanes (the run's hosts, then in order of first result)."""
    phase_lanes: dict[str, list[Bar]] = {phase.name: [] for phase in report.phases}
    host_lanes: dict[str, list[Bar]] = {host: [] for host in report.hosts}
    answered: dict[str, set[str]] = {}  # per step, the hosts with a result
    for result in report.results:
        bar = _result_bar(result, axis)
        if bar is not None:
            host_lanes.setdefault(result.host, []).append(bar)
            answered.setdefault(bar.step, set()).add(result.host)
    for step in report.steps:
        start = axis.at(step.started)
        if start is None:
            continue
        end = axis.at(step.finished)
        end = axis.span if end is None else end
        state = _state(report, step)
        tip = f"{step.phase} / {step.name}: {_words(state)}{_seconds_text(end - start)}"
        phase_lanes.setdefault(step.phase, []).append(Bar(step.id, "", state, start, end, step.id, tip))
        if state in _NO_RESULT_STATES:
            for host in step.hosts:
                if host not in answered.get(step.id, set()):
                    tip = f"{step.id} on {host}: {_words(state)}"
                    host_lanes.setdefault(host, []).append(Bar(step.id, host, state, start, end, step.id, tip))
    ordered = {phase: phase_lanes[phase] for phase in sorted(phase_lanes, key=_phase_order)}
    return ordered, host_lanes


def _result_bar(result: HostResult, axis: _Axis) -> Bar | None:
    at = axis.at(result.ts)
    if at is None:
        return None
    floor = axis.at(result.since)
    floor = at if floor is None else floor
    start = max(at - result.duration, floor) if result.duration is not None else floor
    label = result.step or result.phase or "result"
    rc = f", rc {result.rc}" if result.rc is not None else ""
    tip = f"{label} on {result.host}: {result.status}{rc}{_seconds_text(result.duration)}"
    return Bar(result.step or "", result.host, result.status, start, at, label, tip)


def _markers(report: Report, axis: _Axis) -> list[Marker]:
    """Decisions and approvals in time order (a decision before an approval at the same instant)."""
    placed: list[tuple[float, int, Marker]] = []
    for decision in report.decisions:
        at = axis.at(decision.ts)
        if at is not None:
            placed.append((at, 0, _decision_marker(at, decision)))
    for approval in report.approvals:
        at = axis.at(approval.ts)
        if at is not None:
            placed.append((at, 1, _approval_marker(at, approval)))
    return [marker for _, _, marker in sorted(placed, key=lambda item: (item[0], item[1]))]


def _decision_marker(at: float, decision: Decision) -> Marker:
    step, what = decision.step or "run", decision.decision
    reason = f": {decision.reason}" if decision.reason else ""
    return Marker("decision", at, f"{what} {step}", f"decision: {what} ({step}){reason}", what)


def _approval_marker(at: float, approval: Approval) -> Marker:
    answer = "approved" if approval.approved else "refused" if approval.refused else "awaiting"
    words = {"approved": "approved", "refused": "refused", "awaiting": "awaiting approval"}[answer]
    who = f" by {approval.by}" if approval.by and answer != "awaiting" else ""
    tip = f"approval of {approval.step}: {words}{who} ({approval.method})"
    return Marker("approval", at, f"{words} {approval.step}", tip, answer)


def _phase_order(phase: str) -> tuple[int, str]:
    return (PHASES.index(phase) if phase in PHASES else len(PHASES), phase)


def _words(status: str) -> str:
    return status.replace("_", " ")


def _seconds_text(seconds: float | None) -> str:
    return f", {format_duration(seconds)}" if seconds is not None else ""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _header(report: Report, title: str) -> str:
    origin = moment_of(report.started)
    outcome = (
        headline(report.status, report.verdict or "", dry_run=report.mode == "dry-run") if report.finished else "—"
    )
    fields = [
        ("Playbook", report.playbook or "—"),
        ("Severity", report.severity or "—"),
        ("Status", report.status),
        ("Outcome", outcome),
        ("Run id", report.run_id),
        ("Operator", report.operator or "—"),
        ("Started", f"{origin:%Y-%m-%d %H:%M:%S} UTC" if origin else "—"),
        ("Duration", format_duration(report.duration) + ("" if report.finished else " (so far)")),
        *([("Attempts", f"{report.attempts} (resumed with irx resume)")] if report.attempts > 1 else []),
        ("Mode", report.mode or "—"),
        ("Inventory", report.inventory or "—"),
        *([("Trigger", report.trigger_text)] if report.trigger_text else []),
    ]
    cells = "".join(
        f'<div class="field" data-field="{_e(name.lower().replace(" ", "_"))}"><dt>{_e(name)}</dt>'
        f"<dd{_status_attr(value) if name == 'Status' else ''}>{_e(value)}</dd></div>"
        for name, value in fields
    )
    extra = "".join(
        f'<p class="{cls}">{_e(text)}</p>'
        for cls, text in (("summary", report.summary), ("reason", report.reason))
        if text
    )
    return f'<header><h1>{_e(title)}</h1><dl class="fields">{cells}</dl>{extra}</header>'


def _finding(report: Report) -> str:
    """The headline: what was wrong, what fixed it, how long."""
    finding = report.finding
    if report.mode == "dry-run":
        fixed = "Nothing: a dry run changes nothing."
    else:
        fixed = finding.fixed or "Nothing: no mitigation changed anything."
    lines = (
        ("wrong", "What was wrong", finding.wrong or "No diagnosis matched the condition of a mitigation in this run."),
        ("fixed", "What fixed it", fixed),
        (
            "how_long",
            "How long",
            f"time to mitigation {_reached(finding.time_to_mitigation)}, "
            f"time to verified recovery {_reached(finding.time_to_resolution)}",
        ),
    )
    items = "".join(
        f'<div class="headline" data-headline="{key}"><dt>{_e(label)}</dt><dd>{_e(text)}</dd></div>'
        for key, label, text in lines
    )
    return f'<section class="finding"><h2>Finding</h2><dl>{items}</dl></section>'


def _reached(seconds: float | None) -> str:
    return "not reached" if seconds is None else format_duration(seconds)


def _status_attr(status: object) -> str:
    return f' class="status st-{_e(status)}" data-status="{_e(status)}"'


def _problems(problems: list[str]) -> str:
    if not problems:
        return ""
    items = "".join(f"<li>{_e(problem)}</li>" for problem in problems)
    return f'<section class="problems"><h2>Journal problems</h2><ul>{items}</ul></section>'


def _metrics(report: Report) -> str:
    """Incident metrics against the severity's targets (the report model computes them), over-target flagged."""
    if not report.metrics:
        return ""
    rows = "".join(_metric_row(report, metric) for metric in report.metrics)
    head = "<tr><th>metric</th><th>time</th><th>severity target</th><th></th></tr>"
    return f'<section class="metrics"><h2>Metrics</h2><table>{head}{rows}</table></section>'


def _metric_row(report: Report, metric: Metric) -> str:
    if metric.target is not None:
        target = f"{metric.target_kind} ≤ {format_duration(metric.target)}"
    else:
        target = TARGET_LABELS.get(report.severity or "", "—")
        target = (
            target if target == "—" else f"{metric.target_kind}: {format_target(report.severity, metric.target_kind)}"
        )
    classes, over = ("metric over", "true") if metric.over_target else ("metric", "false")
    return (
        f'<tr class="{classes}" data-metric="{_e(metric.key)}" data-over="{over}"><td>{_e(metric.label)}</td>'
        f"<td>{_e(_reached(metric.seconds))}</td><td>{_e(target)}</td>"
        f"<td>{'OVER TARGET' if metric.over_target else 'ok'}</td></tr>"
    )


def _chart(
    axis: _Axis, phase_lanes: dict[str, list[Bar]], host_lanes: dict[str, list[Bar]], markers: list[Marker]
) -> str:
    ticks = _ticks(axis)
    labels = "".join(
        f'<span class="tick" style="left:{left:.3f}%{";transform:translateX(-100%)" if left > 96 else ""}">'
        f"+{_tick_label(seconds)}</span>"
        for seconds, left in ticks
    )
    grid = "".join(f'<span class="gridline" style="left:{left:.3f}%"></span>' for _, left in ticks[1:])
    rows = [
        f'<div class="grid">{grid}</div>',
        f'<div class="row axis"><div class="name">time</div><div class="track">{labels}</div></div>',
        _marker_lane(axis, markers),
        '<div class="group">Phases</div>',
        *(_lane(axis, f"phase:{phase}", phase, bars) for phase, bars in phase_lanes.items()),
        '<div class="group">Hosts</div>',
        *(_lane(axis, f"host:{host}", host, bars) for host, bars in host_lanes.items()),
    ]
    legend = "".join(
        f'<span class="key" data-key="{status}"><span class="swatch st-{status}"></span>{_words(status)}</span>'
        for status in _LEGEND
    )
    return (
        f'<section class="timeline"><h2>Timeline</h2><div class="chart" data-span="{axis.span:.6f}">'
        + "".join(rows)
        + f'</div><div class="legend">{legend}<span class="key"><span class="mk decision"></span>decision</span>'
        '<span class="key"><span class="mk approval"></span>approval</span>'
        '<span class="key"><span class="mk approval refused"></span>approval refused</span></div></section>'
    )


def _ticks(axis: _Axis) -> list[tuple[float, float]]:
    """Round instants along the axis, at most 11 of them: (seconds from the start, percent of the width)."""
    step = next((tick for tick in _TICK_STEPS if axis.span / tick <= 10), _TICK_STEPS[-1])
    count = int(axis.span / step + 1e-9)
    return [(index * step, axis.percent(index * step)) for index in range(count + 1)]


def _tick_label(seconds: float) -> str:
    return f"{seconds:g}s" if seconds < 60 else humanize.duration(seconds)


def _marker_lane(axis: _Axis, markers: list[Marker]) -> str:
    items = "".join(
        f'<span class="marker {_e(marker.kind)}" data-kind="{_e(marker.kind)}" data-status="{_e(marker.status)}" '
        f'style="left:{axis.percent(marker.at):.3f}%" title="{_e(marker.tooltip)}"></span>'
        for marker in markers
    )
    return f'<div class="row markers"><div class="name">decisions</div><div class="track">{items}</div></div>'


def _lane(axis: _Axis, key: str, name: str, bars: list[Bar]) -> str:
    items = "".join(_bar(axis, bar) for bar in bars)
    kind = key.split(":", 1)[0]
    return (
        f'<div class="row lane lane-{kind}" data-lane="{_e(key)}"><div class="name" title="{_e(name)}">{_e(name)}</div>'
        f'<div class="track">{items}</div></div>'
    )


def _bar(axis: _Axis, bar: Bar) -> str:
    left = axis.percent(bar.start)
    width = max(axis.percent(bar.end) - left, 0.0)
    return (
        f'<a class="bar st-{_e(bar.status)}" href="#step-{_e(bar.step)}" data-step="{_e(bar.step)}" '
        f'data-host="{_e(bar.host)}" data-status="{_e(bar.status)}" data-start="{bar.start:.6f}" '
        f'data-end="{bar.end:.6f}" style="left:{left:.3f}%;width:{width:.3f}%" title="{_e(bar.tooltip)}">'
        f"<span>{_e(bar.label)}</span></a>"
    )


def _steps(report: Report) -> str:
    if not report.steps:
        return '<section class="steps"><h2>Steps</h2><p>No step started.</p></section>'
    blocks = "".join(_step_block(report, step) for step in report.steps)
    return f'<section class="steps"><h2>Steps</h2>{blocks}</section>'


def _step_block(report: Report, step: Step) -> str:
    state = _state(report, step)
    ident = "" if step.name == step.id else f"<code>{_e(step.id)}</code> "
    head = (
        f'<summary><span class="badge st-{_e(state)}">{_e(_words(state))}</span> '
        f'<span class="step-phase">{_e(step.phase)}</span> <strong>{_e(step.name)}</strong> '
        f'{ident}<span class="dur">{_e(format_duration(step.duration))}</span></summary>'
    )
    lines = [_ran(item, step.ran_verb) for item in step.ran]
    if step.reason:
        lines.append(f'<p class="reason">{_e(step.reason)}</p>')
    lines += [
        f'<p class="note decision">Decision: {_e(d.decision)} — {_e(d.reason or "")}</p>'
        for d in report.decisions_for(step.id)
    ]
    lines += [_approval_note(approval) for approval in report.approvals_for(step.id)]
    lines += [f'<p class="note error">Error: {_e(message)}</p>' for message in step.errors]
    lines += [_result(result) for result in report.results if result.step == step.id]
    return (
        f'<details class="step" id="step-{_e(step.id)}" data-step="{_e(step.id)}" data-state="{_e(state)}">'
        f"{head}{''.join(lines)}</details>"
    )


def _ran(ran: Ran, verb: str) -> str:
    on = f" on {humanize.hosts(ran.hosts, shown=len(ran.hosts))}" if ran.hosts else ""
    return (
        f'<div class="ran" data-source="{_e(ran.source)}" data-hosts="{_e(",".join(ran.hosts))}">'
        f'<div class="ran-head">{_e(verb + on)} <span class="muted">({_e(ran.how)})</span>'
        f'</div><pre class="action">{_e(ran.text)}</pre></div>'
    )


def _approval_note(approval: Approval) -> str:
    verdict = "approved" if approval.approved else "refused" if approval.refused else "awaiting approval"
    if approval.method == "timeout-skip":
        verdict = "not approved in time, skipped"
    who = f" by {approval.by}" if approval.by and (approval.approved or approval.refused) else ""
    bound = f" [{short(approval.approval_hash)}]" if approval.approval_hash else ""
    why = f": {approval.reason}" if approval.method in {"stale", "binding"} and approval.reason else ""
    state = "approved" if approval.approved else "refused" if approval.refused else "awaiting"
    return (
        f'<p class="note approval" data-approved="{str(approval.approved).lower()}" data-answer="{state}">Approval: '
        f"{_e(verdict + who)} ({_e(approval.method)}){_e(bound + why)}</p>"
    )


def _result(result: HostResult) -> str:
    facts = [result.status]
    if result.rc is not None:
        facts.append(f"rc {result.rc}")
    if result.duration is not None:
        facts.append(format_duration(result.duration))
    if result.attempt is not None:
        facts.append(f"attempt {result.attempt}")
    outputs = []
    for name, text, cut in (
        ("msg", result.msg, False),
        ("stdout", result.stdout, result.stdout_truncated),
        ("stderr", result.stderr, result.stderr_truncated),
    ):
        if text:
            note = " (middle omitted by the output cap)" if cut else ""
            outputs.append(
                f'<details class="output {name}"{" open" if name == "msg" else ""}><summary>{name}{note}</summary>'
                f"<pre>{_e(text)}</pre></details>"
            )
    return (
        f'<div class="result" data-host="{_e(result.host)}" data-status="{_e(result.status)}">'
        f'<div class="rhead"><span class="badge st-{_e(result.status)}">{_e(result.host)}</span> '
        f"{_e(', '.join(facts))}</div>{''.join(outputs)}</div>"
    )

"""The HTML report: one self-contained page with a visual timeline of a run, rendered from its journal.

The page needs nothing but itself: styles are inline, there is no script, and each step's output sits in a
``<details>`` element, so the file can be attached to a ticket or opened offline. Every piece of journal
text is HTML-escaped here; the journal is already redacted, this module only has to keep it inert.

The timeline has one lane per phase (a bar per step, from ``step_started`` to ``step_finished``) and one
lane per host (a bar per ``host_result``, ending when the result arrived and as long as its ``duration``),
on a common time axis; decisions and approvals are markers on that axis. Bars carry stable classes and
``data-`` attributes (``lane``/``data-lane``, ``bar``/``data-step``/``data-host``/``data-status``,
``marker``/``data-kind``) so that tests and people can find them.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from irx import humanize
from irx.journal_read import parse_timestamp
from irx.verdict import headline

PHASES = ("preflight", "diagnose", "mitigate", "verify", "rollback")
# Step statuses that never produce host results: the step is drawn on its hosts' lanes anyway.
_NO_RESULT_STATUSES = frozenset({"skipped", "would_run", "not_run"})
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


def render(report: Any) -> str:
    """The HTML page of a report: anything with ``events`` (journal event dicts) and ``problems``."""
    return render_events(
        list(report.events),
        list(getattr(report, "problems", []) or []),
        status=getattr(report, "status", None),
        metrics=getattr(report, "metrics", ()),
    )


def render_events(
    events: Sequence[Mapping[str, Any]],
    problems: Iterable[str] = (),
    *,
    status: str | None = None,
    metrics: Iterable[Any] = (),
) -> str:
    """The HTML page of a run from its journal events (in file order) and the problems met reading them.

    ``status`` overrides the run status shown in the header (a reader that can tell ``running`` from
    ``interrupted``); by default it is ``run_finished``'s, or ``unfinished`` when the journal has none.
    """
    timeline = _Timeline(events)
    started = timeline.first("run_started") or {}
    finished = timeline.last("run_finished")
    run_status = status or (str(finished.get("status", "unfinished")) if finished else "unfinished")
    title = str(started.get("title") or started.get("playbook") or "irx run")
    phase_lanes, host_lanes, markers, steps = _collect(timeline)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)} — irx run {_e(timeline.run_id)}</title>",
        f"<style>{_CSS}</style>",
        "</head><body>",
        _header(timeline, started, finished, run_status, title),
        _problems(list(problems)),
        _metrics(list(metrics)),
        _chart(timeline, phase_lanes, host_lanes, markers),
        _steps(timeline, steps),
        "</body></html>",
    ]
    return "\n".join(part for part in parts if part) + "\n"


def _metrics(metrics: list[Any]) -> str:
    """Incident metrics against the severity's targets (the report model computes them), over-target flagged."""
    if not metrics:
        return ""
    rows = []
    for metric in metrics:
        seconds = "not reached" if metric.seconds is None else f"{metric.seconds:.1f}s"
        target = "—" if metric.target is None else f"{metric.target_kind} ≤ {metric.target:.0f}s"
        classes, over = ("metric over", "true") if metric.over_target else ("metric", "false")
        rows.append(
            f'<tr class="{classes}" data-metric="{_e(metric.key)}" data-over="{over}"><td>{_e(metric.label)}</td>'
            f"<td>{_e(seconds)}</td><td>{_e(target)}</td><td>{'OVER TARGET' if metric.over_target else 'ok'}</td></tr>"
        )
    head = "<tr><th>metric</th><th>time</th><th>severity target</th><th></th></tr>"
    return f'<section class="metrics"><h2>Metrics</h2><table>{head}{"".join(rows)}</table></section>'


class _Timeline:
    """The journal's events placed on a time axis: seconds from the first timestamped event."""

    def __init__(self, events: Sequence[Mapping[str, Any]]) -> None:
        self.events = [event for event in events if isinstance(event, Mapping)]
        moments = [_moment(event) for event in self.events]
        known = [moment for moment in moments if moment is not None]
        self.origin: datetime | None = min(known) if known else None
        last = max(known) if known else None
        self.span = max((last - self.origin).total_seconds(), _MIN_SPAN) if last and self.origin else _MIN_SPAN
        self.run_id = next((str(event["run_id"]) for event in self.events if event.get("run_id")), "")

    def first(self, type: str) -> Mapping[str, Any] | None:
        return next((event for event in self.events if event.get("type") == type), None)

    def last(self, type: str) -> Mapping[str, Any] | None:
        return next((event for event in reversed(self.events) if event.get("type") == type), None)

    def at(self, event: Mapping[str, Any]) -> float | None:
        """Seconds from the start of the run to ``event``; None when it has no usable timestamp."""
        moment = _moment(event)
        if moment is None or self.origin is None:
            return None
        return (moment - self.origin).total_seconds()

    def percent(self, seconds: float) -> float:
        return min(max(seconds / self.span * 100, 0.0), 100.0)


def _moment(event: Mapping[str, Any]) -> datetime | None:
    try:
        return parse_timestamp(str(event.get("ts", "")))
    except ValueError:
        return None


@dataclass
class _Step:
    """What the journal says about one step: its start (first attempt), end, hosts and results."""

    id: str
    phase: str
    start: float
    started: Mapping[str, Any]
    end: float | None = None
    finished: Mapping[str, Any] | None = None
    attempt_start: float = 0.0

    @property
    def status(self) -> str:
        return str(self.finished.get("status", "unknown")) if self.finished else "unfinished"


def _collect(timeline: _Timeline) -> tuple[dict[str, list[Bar]], dict[str, list[Bar]], list[Marker], list[_Step]]:
    """Phase lanes, host lanes (each in order of first appearance), markers, and steps in start order."""
    phase_lanes: dict[str, list[Bar]] = {}
    host_lanes: dict[str, list[Bar]] = {}
    started = timeline.first("run_started") or {}
    for host in started.get("hosts") or ():
        host_lanes.setdefault(str(host), [])
    markers: list[Marker] = []
    steps: dict[str, _Step] = {}
    hosts_with_results: dict[str, set[str]] = {}
    for event in timeline.events:
        kind, at = event.get("type"), timeline.at(event)
        if at is None:
            continue
        step_id = str(event.get("step", ""))
        if kind == "phase_started" and event.get("phase"):
            phase_lanes.setdefault(str(event["phase"]), [])
        elif kind == "step_started" and step_id:
            step = steps.get(step_id)
            if step is None:
                step = steps[step_id] = _Step(step_id, str(event.get("phase", "")), at, event)
            step.attempt_start = at
            phase_lanes.setdefault(step.phase, [])
        elif kind == "step_finished" and step_id in steps:
            steps[step_id].end, steps[step_id].finished = at, event
        elif kind == "host_result" and event.get("host"):
            host = str(event["host"])
            step = steps.get(step_id)
            floor = step.attempt_start if step else at
            duration = _number(event.get("duration"))
            start = max(at - duration, floor) if duration is not None else floor
            label = step_id or str(event.get("phase", "result"))
            tip = f"{label} on {host}: {event.get('status', '')}{_rc_text(event)}{_seconds_text(duration)}"
            bar = Bar(step_id, host, str(event.get("status", "unknown")), start, at, label, tip)
            host_lanes.setdefault(host, []).append(bar)
            hosts_with_results.setdefault(step_id, set()).add(host)
        elif kind in {"decision", "approval"}:
            markers.append(_marker(str(kind), at, event))
    end_of_run = timeline.span
    for step in steps.values():
        end = step.end if step.end is not None else end_of_run
        title = str(step.started.get("title") or step.id)
        tip = f"{step.phase} / {title}: {step.status}{_seconds_text(end - step.start)}"
        phase_lanes.setdefault(step.phase, []).append(Bar(step.id, "", step.status, step.start, end, step.id, tip))
        if step.status in _NO_RESULT_STATUSES:
            for host in step.started.get("hosts") or ():
                if str(host) not in hosts_with_results.get(step.id, set()):
                    bar = Bar(
                        step.id, str(host), step.status, step.start, end, step.id, f"{step.id} on {host}: {step.status}"
                    )
                    host_lanes.setdefault(str(host), []).append(bar)
    ordered = {phase: phase_lanes[phase] for phase in sorted(phase_lanes, key=_phase_order)}
    return ordered, host_lanes, markers, list(steps.values())


def _marker(kind: str, at: float, event: Mapping[str, Any]) -> Marker:
    step = str(event.get("step", "")) or "run"
    if kind == "decision":
        what = str(event.get("decision", ""))
        reason = str(event.get("reason", ""))
        return Marker(kind, at, f"{what} {step}", f"decision: {what} ({step}){': ' + reason if reason else ''}", what)
    approved = event.get("approved") is True
    verdict = "approved" if approved else "not approved"
    who = f" by {event['by']}" if event.get("by") else ""
    tip = f"approval of {step}: {verdict}{who} ({event.get('method', '')})"
    return Marker(kind, at, f"{verdict} {step}", tip, "approved" if approved else "refused")


def _phase_order(phase: str) -> tuple[int, str]:
    return (PHASES.index(phase) if phase in PHASES else len(PHASES), phase)


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _rc_text(event: Mapping[str, Any]) -> str:
    return f", rc {event['rc']}" if isinstance(event.get("rc"), int) else ""


def _seconds_text(seconds: float | None) -> str:
    return f", {_duration(seconds)}" if seconds is not None else ""


def _duration(seconds: float | None) -> str:
    return humanize.duration(seconds)


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _header(
    timeline: _Timeline,
    started: Mapping[str, Any],
    finished: Mapping[str, Any] | None,
    status: str,
    title: str,
) -> str:
    duration = _number(finished.get("duration")) if finished else None
    if duration is None and timeline.origin is not None and len(timeline.events) > 1:
        duration = timeline.span
    start = f"{timeline.origin:%Y-%m-%d %H:%M:%S} UTC" if timeline.origin else "—"
    fields = [
        ("Playbook", started.get("playbook", "—")),
        ("Severity", started.get("severity", "—")),
        ("Status", status),
        (
            "Outcome",
            headline(status, str(finished.get("verdict") or ""), dry_run=started.get("mode") == "dry-run")
            if finished
            else "—",
        ),
        ("Run id", timeline.run_id or "—"),
        ("Operator", started.get("operator", "—")),
        ("Started", start),
        ("Duration", _duration(duration) + ("" if finished else " (so far)")),
        ("Mode", started.get("mode", "—")),
        ("Inventory", started.get("inventory", "—")),
    ]
    cells = "".join(
        f'<div class="field" data-field="{_e(name.lower().replace(" ", "_"))}"><dt>{_e(name)}</dt>'
        f"<dd{_status_attr(value) if name == 'Status' else ''}>{_e(value)}</dd></div>"
        for name, value in fields
    )
    reason = finished.get("reason") if finished else None
    summary = started.get("summary")
    extra = "".join(
        f'<p class="{cls}">{_e(text)}</p>' for cls, text in (("summary", summary), ("reason", reason)) if text
    )
    return f'<header><h1>{_e(title)}</h1><dl class="fields">{cells}</dl>{extra}</header>'


def _status_attr(status: object) -> str:
    return f' class="status st-{_e(status)}" data-status="{_e(status)}"'


def _problems(problems: list[str]) -> str:
    if not problems:
        return ""
    items = "".join(f"<li>{_e(problem)}</li>" for problem in problems)
    return f'<section class="problems"><h2>Journal problems</h2><ul>{items}</ul></section>'


def _chart(
    timeline: _Timeline, phase_lanes: dict[str, list[Bar]], host_lanes: dict[str, list[Bar]], markers: list[Marker]
) -> str:
    ticks = _ticks(timeline)
    labels = "".join(
        f'<span class="tick" style="left:{left:.3f}%{";transform:translateX(-100%)" if left > 96 else ""}">'
        f"+{_tick_label(seconds)}</span>"
        for seconds, left in ticks
    )
    grid = "".join(f'<span class="gridline" style="left:{left:.3f}%"></span>' for _, left in ticks[1:])
    rows = [
        f'<div class="grid">{grid}</div>',
        f'<div class="row axis"><div class="name">time</div><div class="track">{labels}</div></div>',
        _marker_lane(timeline, markers),
    ]
    rows.append('<div class="group">Phases</div>')
    rows += [_lane(timeline, f"phase:{phase}", phase, bars) for phase, bars in phase_lanes.items()]
    rows.append('<div class="group">Hosts</div>')
    rows += [_lane(timeline, f"host:{host}", host, bars) for host, bars in host_lanes.items()]
    legend = "".join(
        f'<span class="key"><span class="swatch st-{status}"></span>{status.replace("_", " ")}</span>'
        for status in ("ok", "failed", "timed_out", "unreachable", "skipped", "would_run", "not_run", "unfinished")
    )
    return (
        f'<section class="timeline"><h2>Timeline</h2><div class="chart" data-span="{timeline.span:.6f}">'
        + "".join(rows)
        + f'</div><div class="legend">{legend}<span class="key"><span class="mk decision"></span>decision</span>'
        '<span class="key"><span class="mk approval"></span>approval</span></div></section>'
    )


def _ticks(timeline: _Timeline) -> list[tuple[float, float]]:
    """Round instants along the axis, at most 11 of them: (seconds from the start, percent of the width)."""
    step = next((tick for tick in _TICK_STEPS if timeline.span / tick <= 10), _TICK_STEPS[-1])
    count = int(timeline.span / step + 1e-9)
    return [(index * step, timeline.percent(index * step)) for index in range(count + 1)]


def _tick_label(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:g}s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes}m{rest:02d}s" if rest else f"{minutes}m"


def _marker_lane(timeline: _Timeline, markers: list[Marker]) -> str:
    items = "".join(
        f'<span class="marker {_e(marker.kind)}" data-kind="{_e(marker.kind)}" data-status="{_e(marker.status)}" '
        f'style="left:{timeline.percent(marker.at):.3f}%" title="{_e(marker.tooltip)}"></span>'
        for marker in markers
    )
    return f'<div class="row markers"><div class="name">decisions</div><div class="track">{items}</div></div>'


def _lane(timeline: _Timeline, key: str, name: str, bars: list[Bar]) -> str:
    items = "".join(_bar(timeline, bar) for bar in bars)
    kind = key.split(":", 1)[0]
    return (
        f'<div class="row lane lane-{kind}" data-lane="{_e(key)}"><div class="name" title="{_e(name)}">{_e(name)}</div>'
        f'<div class="track">{items}</div></div>'
    )


def _bar(timeline: _Timeline, bar: Bar) -> str:
    left = timeline.percent(bar.start)
    width = max(timeline.percent(bar.end) - left, 0.0)
    return (
        f'<a class="bar st-{_e(bar.status)}" href="#step-{_e(bar.step)}" data-step="{_e(bar.step)}" '
        f'data-host="{_e(bar.host)}" data-status="{_e(bar.status)}" data-start="{bar.start:.6f}" '
        f'data-end="{bar.end:.6f}" style="left:{left:.3f}%;width:{width:.3f}%" title="{_e(bar.tooltip)}">'
        f"<span>{_e(bar.label)}</span></a>"
    )


def _steps(timeline: _Timeline, steps: list[_Step]) -> str:
    if not steps:
        return '<section class="steps"><h2>Steps</h2><p>No step started.</p></section>'
    by_step: dict[str, list[Mapping[str, Any]]] = {}
    for event in timeline.events:
        if event.get("type") in {"host_result", "decision", "approval", "error"} and event.get("step"):
            by_step.setdefault(str(event["step"]), []).append(event)
    blocks = [_step_block(step, by_step.get(step.id, [])) for step in steps]
    return f'<section class="steps"><h2>Steps</h2>{"".join(blocks)}</section>'


def _step_block(step: _Step, events: list[Mapping[str, Any]]) -> str:
    title = str(step.started.get("title") or step.id)
    duration = _number(step.finished.get("duration")) if step.finished else None
    ident = "" if title == step.id else f"<code>{_e(step.id)}</code> "
    head = (
        f'<summary><span class="badge st-{_e(step.status)}">{_e(step.status.replace("_", " "))}</span> '
        f'<span class="step-phase">{_e(step.phase)}</span> <strong>{_e(title)}</strong> '
        f'{ident}<span class="dur">{_e(_duration(duration))}</span></summary>'
    )
    lines = []
    if step.started.get("summary"):
        lines.append(f'<pre class="action">{_e(step.started["summary"])}</pre>')
    if step.finished and step.finished.get("reason"):
        lines.append(f'<p class="reason">{_e(step.finished["reason"])}</p>')
    for event in events:
        lines.append(_step_event(event))
    return f'<details class="step" id="step-{_e(step.id)}" data-step="{_e(step.id)}">{head}{"".join(lines)}</details>'


def _step_event(event: Mapping[str, Any]) -> str:
    kind = event.get("type")
    if kind == "decision":
        return f'<p class="note decision">Decision: {_e(event.get("decision", ""))} — {_e(event.get("reason", ""))}</p>'
    if kind == "approval":
        verdict = "approved" if event.get("approved") is True else "refused"
        who = f" by {event['by']}" if event.get("by") else ""
        bound = f" [{str(event['approval_hash'])[7:19]}]" if event.get("approval_hash") else ""
        why = f": {event['reason']}" if event.get("method") in {"stale", "binding"} and event.get("reason") else ""
        return (
            f'<p class="note approval" data-approved="{str(event.get("approved") is True).lower()}">Approval: '
            f"{_e(verdict + who)} ({_e(event.get('method', ''))}){_e(bound + why)}</p>"
        )
    if kind == "error":
        return f'<p class="note error">Error: {_e(event.get("message", ""))}</p>'
    status = str(event.get("status", "unknown"))
    facts = [f"{status}"]
    if isinstance(event.get("rc"), int):
        facts.append(f"rc {event['rc']}")
    if _number(event.get("duration")) is not None:
        facts.append(_duration(_number(event.get("duration"))))
    if isinstance(event.get("attempt"), int):
        facts.append(f"attempt {event['attempt']}")
    outputs = []
    for name in ("msg", "stdout", "stderr"):
        text = event.get(name)
        if isinstance(text, str) and text:
            cut = " (middle omitted by the output cap)" if event.get(f"{name}_truncated") else ""
            outputs.append(
                f'<details class="output {name}"{" open" if name == "msg" else ""}><summary>{name}{cut}</summary>'
                f"<pre>{_e(text)}</pre></details>"
            )
    return (
        f'<div class="result" data-host="{_e(event.get("host", ""))}" data-status="{_e(status)}">'
        f'<div class="rhead"><span class="badge st-{_e(status)}">{_e(event.get("host", ""))}</span> '
        f"{_e(', '.join(facts))}</div>{''.join(outputs)}</div>"
    )


_CSS = """
.metrics table { border-collapse: collapse; margin: 0.5em 0 1em; }
.metrics td, .metrics th { padding: 2px 10px; text-align: left; border-bottom: 1px solid #ddd; }
.metrics tr.over td { color: #b00020; font-weight: bold; }
:root{--ok:#2f9e5a;--failed:#d64545;--timed_out:#e0861e;--unreachable:#8b4fd8;--skipped:#9aa3ad;
--would_run:#4a7fd6;--not_run:#c9ced4;--unfinished:#b58b00;--ink:#1f2933;--muted:#66717d;--line:#e3e7eb}
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--ink);margin:0;
padding:24px 32px;background:#f7f8fa}
h1{font-size:22px;margin:0 0 12px}h2{font-size:16px;margin:28px 0 10px}
header,section{background:#fff;border:1px solid var(--line);border-radius:8px;padding:16px 20px;margin-bottom:16px}
section h2{margin-top:0}
.fields{display:grid;grid-template-columns:repeat(auto-fill,minmax(170px,1fr));gap:8px 20px;margin:0}
.field dt{font-size:11px;text-transform:uppercase;letter-spacing:.05em;color:var(--muted)}
.field dd{margin:0;font-weight:600;word-break:break-all}
.status{display:inline-block;padding:0 8px;border-radius:10px;color:#fff;background:var(--muted)}
.summary,.reason{color:var(--muted);margin:10px 0 0}
.problems{border-color:#e0861e;background:#fff8ef}
.chart{position:relative}
.row{display:flex;align-items:center;min-height:30px;border-top:1px solid var(--line)}
.row.axis{border-top:0;min-height:22px}
.name{flex:0 0 150px;padding-right:10px;font-size:12px;color:var(--muted);white-space:nowrap;overflow:hidden;
text-overflow:ellipsis}
.lane .name{color:var(--ink);font-weight:600}
.track{position:relative;flex:1;height:24px}
.grid{position:absolute;left:150px;right:0;top:22px;bottom:0;pointer-events:none}
.gridline{position:absolute;top:0;bottom:0;border-left:1px dashed var(--line)}
.group{font-size:11px;text-transform:uppercase;letter-spacing:.05em;color:var(--muted);padding:10px 0 4px}
.tick{position:absolute;top:2px;font-size:11px;color:var(--muted);transform:translateX(-50%);white-space:nowrap}
.tick:first-child{transform:none}
.bar{position:absolute;top:3px;height:18px;min-width:4px;border-radius:3px;background:var(--muted);color:#fff;
font-size:11px;line-height:18px;padding:0 4px;overflow:hidden;white-space:nowrap;text-decoration:none}
.bar span{pointer-events:none}
.bar.st-would_run{background:repeating-linear-gradient(135deg,var(--would_run) 0 6px,#7aa2e6 6px 12px)}
.bar:hover{outline:2px solid var(--ink)}
.marker{position:absolute;top:2px;width:11px;height:11px;margin-left:-5px;transform:rotate(45deg);
border:1px solid #fff;background:#334e68}
.marker.approval{top:12px;background:#e0a800;border-radius:50%;transform:none}
.marker[data-status=refused]{background:var(--failed)}
.legend{display:flex;flex-wrap:wrap;gap:6px 16px;margin-top:12px;font-size:12px;color:var(--muted)}
.key{display:inline-flex;align-items:center;gap:5px}
.swatch{display:inline-block;width:14px;height:10px;border-radius:2px}
.mk{display:inline-block;width:10px;height:10px;background:#334e68;transform:rotate(45deg)}
.mk.approval{background:#e0a800;border-radius:50%;transform:none}
.badge{display:inline-block;min-width:64px;text-align:center;padding:0 6px;border-radius:4px;color:#fff;
font-size:12px;background:var(--muted)}
.st-ok{background:var(--ok)}.st-failed{background:var(--failed)}.st-timed_out{background:var(--timed_out)}
.st-unreachable{background:var(--unreachable)}.st-skipped{background:var(--skipped)}
.st-would_run{background:var(--would_run)}.st-not_run{background:var(--not_run);color:var(--ink)}
.st-unfinished,.st-interrupted,.st-running{background:var(--unfinished)}
.st-verified,.st-dry_run{background:var(--ok)}.st-rolled_back,.st-awaiting_approval{background:var(--timed_out)}
.st-aborted{background:var(--failed)}
details.step{border-top:1px solid var(--line);padding:8px 0}
details.step>summary{cursor:pointer}
.step-phase{color:var(--muted);font-size:12px;text-transform:uppercase}
.dur{color:var(--muted);font-size:12px}
pre{background:#f1f3f5;border-radius:4px;padding:8px 10px;overflow:auto;max-height:360px;margin:6px 0;
white-space:pre-wrap;word-break:break-word;font:12px/1.4 ui-monospace,Menlo,Consolas,monospace}
.result{margin:8px 0 8px 16px}.rhead{font-size:13px}
details.output{margin-left:16px}details.output>summary{cursor:pointer;color:var(--muted);font-size:12px}
.note{margin:6px 0 6px 16px;font-size:13px}.note.error{color:var(--failed)}
"""

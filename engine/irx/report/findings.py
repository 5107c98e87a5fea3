"""The report's measures: incident metrics against the severity targets, and the headline finding (what was
wrong, what fixed it, how long), both from a ``Report`` whose steps and decisions are built."""

from __future__ import annotations

import json
import re
from typing import Any

from irx import humanize
from irx.report.facts import SEVERITY_TARGETS, Finding, HostResult, Metric, Report, Step, as_str, elapsed

# Which target each metric is held to: the first diagnostic result is the response, the rest resolution.
METRICS: tuple[tuple[str, str, str], ...] = (
    ("first_diagnostic", "Time to first diagnostic result", "respond"),
    ("mitigation", "Time to mitigation", "resolve"),
    ("verified_recovery", "Time to verified recovery", "resolve"),
    ("total", "Total run duration", "resolve"),
)
_STEP_REF = re.compile(r"\bsteps\.([A-Za-z0-9_]+)")
_EVIDENCE = 160  # characters of one host's finding in the headline


def driving_steps(report: Report) -> list[Step]:
    """Diagnose steps whose results a decision's expression or reason names: the root-cause evidence."""
    named: list[str] = []
    for decision in report.decisions:
        for text in (decision.expression, decision.reason):
            for step_id in _STEP_REF.findall(text or ""):
                if step_id not in named:
                    named.append(step_id)
    return [step for step in report.steps_in("diagnose") if step.id in named]


def first_fix(report: Report) -> Step | None:
    """The first mitigation that changed something: a mutating step (not a message) that finished ok."""
    done = [step for step in report.steps_in("mitigate") if "ok" in step.outcomes]
    changing = [step for step in done if step.mutating and step.action != "notify"]
    return min(changing, key=lambda step: step.finished or "", default=None)


def metrics(report: Report) -> list[Metric]:
    first_diag = next((r.ts for r in report.results if r.phase == "diagnose" and r.ts), None)
    fix = first_fix(report)
    verified = None
    if report.status == "verified":
        verified = next(
            (phase.finished for phase in reversed(report.phases) if phase.name == "verify" and phase.status == "ok"),
            report.ended,
        )
    # With an alert behind the run, its clock starts when the alert arrived, not when the run began.
    origin = as_str(report.trigger.get("fired_at")) or report.started
    values = {
        "first_diagnostic": elapsed(origin, first_diag),
        "mitigation": elapsed(origin, fix.finished if fix else None),
        "verified_recovery": elapsed(origin, verified),
        "total": report.duration,
    }
    targets = SEVERITY_TARGETS.get(report.severity or "", {})
    found = []
    for key, label, kind in METRICS:
        seconds, target = values[key], targets.get(kind)
        over = seconds is not None and target is not None and seconds > target
        if key != "total" and origin != report.started:
            label = label.replace("Time to", "Time from alert to")
        found.append(Metric(key, label, seconds, target, kind, over))
    return found


def finding(report: Report) -> Finding:
    """The headline finding of a report whose metrics are computed."""
    wrong, wrong_step = _diagnosis(report)
    fix = first_fix(report)
    fixed = None
    if fix is not None:
        on = humanize.hosts(fix.hosts)
        what = f": {humanize.shorten(fix.ran[0].text, 120)}" if fix.ran else ""
        fixed = f"{fix.name} (`{fix.id}`) on {on}{what}"
    mitigation, resolution = report.metric("mitigation"), report.metric("verified_recovery")
    return Finding(
        wrong=wrong,
        wrong_step=wrong_step,
        fixed=fixed,
        fixed_step=fix.id if fix else None,
        time_to_mitigation=mitigation.seconds if mitigation else None,
        time_to_resolution=resolution.seconds if resolution else None,
    )


def _diagnosis(report: Report) -> tuple[str | None, str | None]:
    """The diagnose step named by the first decision that ran a mitigation or rollback, with its evidence."""
    for decision in report.decisions:
        step = report.step(decision.step) if decision.step else None
        if decision.decision != "run" or step is None or step.phase not in ("mitigate", "rollback"):
            continue
        named = _STEP_REF.findall(decision.expression or decision.reason or "")
        diagnosed = [s for s in (report.step(n) for n in named) if s is not None and s.phase == "diagnose"]
        if not diagnosed:
            continue
        first = diagnosed[0]
        evidence = "; ".join(f"{r.host}: {_evidence(r)}" for r in first.results if _evidence(r))
        text = f"{first.name} (`{first.id}`)"
        if evidence:
            text += f" found {humanize.shorten(evidence, 2 * _EVIDENCE)}"
        text += f", which matched `{decision.expression or decision.reason}` for {step.name} (`{step.id}`)"
        return text, first.id
    return None, None


def _evidence(result: HostResult) -> str:
    if result.data is not None:
        return humanize.shorten(_compact(result.data), _EVIDENCE)
    for text in (result.stdout, result.msg):
        if text and text.strip():
            return humanize.shorten(" ".join(text.split()), _EVIDENCE)
    return ""


def _compact(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(", ", ": "), default=str)

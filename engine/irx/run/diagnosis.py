"""The diagnosis in a few lines, for the first message a person paged reads.

Per diagnose step: ok or what went wrong, the parsed value where the playbook asked for one (``parse:``),
and on which hosts. Host output is data from the incident (a client may choose its own
``application_name``): only numbers and booleans are shown as they are, a string is cut short on one line,
a list or table is counted, never quoted row by row. The Redactor masks secrets after this, in the Notifier.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from irx.batches import first_problem
from irx.model import Step
from irx.results import StepResult

MAX_STEPS = 12  # a longer diagnosis ends with "... and N more steps": the run page has them all
MAX_HOSTS = 4
MAX_TEXT = 40
_MARK = {"ok": "✓", "skipped": "-", "would_run": "-", "not_run": "-"}
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]+")


def diagnosis_text(steps: Sequence[Step], results: Mapping[str, StepResult]) -> str:
    """One line per diagnose step, in playbook order; steps that never ran (the run stopped) say so."""
    lines = [_step_line(step, results.get(step.id)) for step in steps[:MAX_STEPS]]
    if len(steps) > MAX_STEPS:
        lines.append(f"... and {len(steps) - MAX_STEPS} more steps")
    return "\n".join(lines)


def diagnosis_headline(steps: Sequence[Step], results: Mapping[str, StepResult]) -> str:
    """``3 of 3 diagnose steps ok`` (or how many failed): the line above the list."""
    ran = [results[s.id] for s in steps if s.id in results]
    ok = sum(1 for r in ran if r.status == "ok")
    failed = sum(1 for r in ran if r.status not in {"ok", "skipped", "would_run", "not_run"})
    text = f"{ok} of {len(steps)} diagnose steps ok"
    if failed:
        text += f", {failed} failed"
    if len(ran) < len(steps):
        text += f", {len(steps) - len(ran)} not reached"
    return text


def _step_line(step: Step, result: StepResult | None) -> str:
    # The name is the playbook's (reviewed) text: it gets more room than a host's value.
    label = step.id if not step.name or step.name == step.id else f"{step.id} ({_short(step.name, 60)})"
    if result is None:
        return f"· {label}: not reached"
    mark = _MARK.get(result.status, "✗")
    if result.status == "ok":
        return f"{mark} {label}: {_values(step, result)}"
    if result.status in {"skipped", "would_run", "not_run"}:
        return f"{mark} {label}: {result.status.replace('_', ' ')}{_why(result.reason)}"
    return f"{mark} {label}: {result.status.replace('_', ' ')}: {_short(first_problem(result), 120)}"


def _values(step: Step, result: StepResult) -> str:
    hosts = list(result.hosts)
    if step.parse is None or step.parse.format == "text":  # no value the playbook named: where it ran
        return f"ok on {_hosts(hosts)}"
    values = {host: _value(r.data) for host, r in result.hosts.items() if r.status == "ok"}
    if not values:
        return f"ok on {_hosts(hosts)}"
    if len(set(values.values())) == 1:  # the same everywhere (or one host): say it once
        return f"{next(iter(values.values()))} on {_hosts(hosts)}"
    shown = [f"{host}={value}" for host, value in values.items()]
    more = f" and {len(shown) - MAX_HOSTS} more" if len(shown) > MAX_HOSTS else ""
    return ", ".join(shown[:MAX_HOSTS]) + more


def _value(data: Any) -> str:
    if isinstance(data, bool):
        return "true" if data else "false"
    if isinstance(data, int | float):
        return str(data)
    if data is None:
        return "none"
    if isinstance(data, str):
        return repr(_short(data))
    if isinstance(data, Mapping):
        return f"{len(data)} field" + ("" if len(data) == 1 else "s")
    if isinstance(data, list):
        return f"{len(data)} row" + ("" if len(data) == 1 else "s")
    return type(data).__name__


def _hosts(hosts: Sequence[str]) -> str:
    if not hosts:
        return "no host"
    if len(hosts) <= MAX_HOSTS:
        return ", ".join(hosts)
    return f"{', '.join(hosts[: MAX_HOSTS - 1])} and {len(hosts) - MAX_HOSTS + 1} more"


def _why(reason: str) -> str:
    return f" ({_short(reason, 80)})" if reason else ""


def _short(text: str, limit: int = MAX_TEXT) -> str:
    flat = " ".join(_CONTROL.sub(" ", text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"

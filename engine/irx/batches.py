"""A step's hosts and their results: batches (``serial``), the failure budget, the step's status, and each
host result as the journal records it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from irx import events
from irx.executors.base import LOCAL_HOST
from irx.model import Step
from irx.results import HostResult, ParseError, StepResult, parse_output


def parse_into(step: Step, result: HostResult) -> None:
    if result.status != "ok":
        return
    if step.parse is None and "module" in result.extra:
        result.data = result.extra["module"]
        return
    try:
        result.data = parse_output(step.parse, result.stdout)
    except ParseError as exc:
        result.status = "failed"
        result.msg = f"parse {step.parse.format if step.parse else 'text'}: {exc}"


def batches(hosts: Sequence[str], serial: int | str | None) -> list[list[str]]:
    if not hosts:
        return []
    if serial is None:
        return [list(hosts)]
    if isinstance(serial, str) and serial.endswith("%"):
        size = max(1, int(len(hosts) * int(serial[:-1]) / 100))
    else:
        size = max(1, int(serial))
    return [list(hosts[i : i + size]) for i in range(0, len(hosts), size)]


def over_budget(results: Mapping[str, HostResult], total: int, budget: float) -> bool:
    failed = sum(r.status not in {"ok", "skipped"} for r in results.values())
    return total > 0 and failed * 100.0 / total > budget


def step_status(results: Mapping[str, HostResult], total: int, budget: float) -> str:
    """A step status (timeline STEP_STATUSES): unreachable is a host status; over its hosts, a step failed."""
    if over_budget(results, total, budget):
        statuses = {r.status for r in results.values() if r.status not in {"ok", "skipped"}}
        if statuses == {"timed_out"}:
            return "timed_out"
        return "failed"
    return "ok"


def first_problem(result: StepResult) -> str:
    for host, r in result.hosts.items():
        if r.status not in {"ok", "skipped"}:
            last_error_line = (r.stderr.strip().splitlines() or [""])[-1]
            detail = r.msg or last_error_line or f"rc {r.rc}"
            where = f" on {host}" if host != LOCAL_HOST else ""
            return f"{detail}{where}"
    return result.reason or result.status


def host_event(step: Step, result: HostResult) -> events.HostResultEvent:
    # stdout/stderr are capped by the journal itself, which records stdout_truncated/stderr_truncated and cap.
    return events.HostResultEvent(
        phase=step.phase,
        step=step.id,
        host=result.host,
        status=result.status,
        rc=result.rc,
        stdout=result.stdout,
        stderr=result.stderr,
        msg=result.msg,
        changed=result.changed,
        duration=round(result.duration, 3),
        data=jsonable(result.data),
        http_status=result.extra.get("status_code"),
        pipefail=False if result.extra.get("pipefail") is False else None,
    )


def jsonable(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return str(value)

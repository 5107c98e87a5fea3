"""The run history as a table: one line per recorded run, newest first (``irx history`` prints it)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from irx import humanize
from irx.journal_read import RunSummary

COLUMNS = ("RUN ID", "PLAYBOOK", "INVENTORY", "MODE", "STATUS", "OPERATOR", "STARTED", "DURATION")


def format_table(runs: list[RunSummary]) -> str:
    """The runs as an aligned text table, or a one-line note when there are none."""
    if not runs:
        return "no runs recorded\n"
    return _table([COLUMNS, *(_row(run) for run in runs)])


def _table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(row[index]) for row in rows) for index in range(len(rows[0]))]
    return "".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() + "\n" for row in rows
    )


def _row(run: RunSummary) -> tuple[str, ...]:
    started = run.started.replace("T", " ")[:19] + "Z" if run.started else "-"
    status = run.status + (" (journal problems)" if run.problems else "")
    return (
        run.run_id,
        run.playbook or "-",
        run.inventory or "-",
        run.mode or "-",
        status,
        run.operator or "-",
        started,
        humanize.duration(run.duration, missing="-"),
    )


ACTIVE_COLUMNS = ("RUN ID", "PLAYBOOK", "INVENTORY", "STATE", "WAITS FOR", "SINCE")


@dataclass(frozen=True)
class ActiveRun:
    """A run that is not over: still running (perhaps waiting at a gate), or stopped awaiting approval."""

    summary: RunSummary
    state: str  # running | waiting | stopped (ended awaiting approval: rerun it with --approve)
    step: str | None = None  # the gate it waits (or stopped) at
    approval_hash: str | None = None
    shown: str = ""  # what the gate shows, secrets masked
    hosts: tuple[str, ...] = ()
    since: float | None = None  # epoch seconds the gate has waited since
    until: float | None = None
    approvals: str | None = None  # a gate needing several: "1 of 2 approvals (alice)"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["summary"] = self.summary.to_dict()
        data["hosts"] = list(self.hosts)
        return data


def active_runs(runs_dir: Path) -> list[ActiveRun]:
    """The runs under ``runs_dir`` that are running or stopped at a gate, newest first."""
    from irx.inbox import read_waiting
    from irx.journal_read import RUNNING, list_runs, read_journal

    found: list[ActiveRun] = []
    for run in list_runs(runs_dir):
        if run.status == RUNNING:
            waiting = read_waiting(run.path)
            if waiting is None:
                found.append(ActiveRun(run, "running"))
            else:
                hosts = tuple(waiting.hosts)
                shown = (waiting.step, waiting.approval_hash, waiting.summary, hosts, waiting.since, waiting.until)
                progress = waiting.progress() if waiting.approvals > 1 else None
                found.append(ActiveRun(run, "waiting", *shown, approvals=progress))
        elif run.status == "awaiting_approval":
            gate = read_journal(run.path).last("approval") or {}
            shown_at_gate = (gate.get("step"), gate.get("approval_hash"), str(gate.get("summary", "")))
            found.append(ActiveRun(run, "stopped", *shown_at_gate, tuple(gate.get("hosts") or ())))
    return found


def format_active(runs: list[ActiveRun], now: float) -> str:
    """The active runs as an aligned table, or a one-line note when there are none."""
    from irx.approval import short

    if not runs:
        return "no run is running or waiting for an approval\n"
    rows: list[tuple[str, ...]] = [ACTIVE_COLUMNS]
    for run in runs:
        waits = f"approval of {run.step}@{short(run.approval_hash)}" if run.step and run.approval_hash else "-"
        if run.state == "waiting" and run.approvals:
            waits += f", {run.approvals}"
        if run.state == "waiting" and run.until is not None:
            waits += f" ({humanize.duration(max(run.until - now, 0))} left)"
        since = humanize.duration(now - run.since) + " ago" if run.since is not None else "-"
        summary = run.summary
        rows.append((summary.run_id, summary.playbook or "-", summary.inventory or "-", run.state, waits, since))
    return _table(rows)

"""The run history as a table: one line per recorded run, newest first (``irx history`` prints it)."""

from __future__ import annotations

from irx import humanize
from irx.journal_read import RunSummary

COLUMNS = ("RUN ID", "PLAYBOOK", "INVENTORY", "MODE", "STATUS", "OPERATOR", "STARTED", "DURATION")


def format_table(runs: list[RunSummary]) -> str:
    """The runs as an aligned text table, or a one-line note when there are none."""
    if not runs:
        return "no runs recorded\n"
    rows = [COLUMNS, *(_row(run) for run in runs)]
    widths = [max(len(row[index]) for row in rows) for index in range(len(COLUMNS))]
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

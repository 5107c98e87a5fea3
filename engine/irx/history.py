"""``irx history``: one line per recorded run, newest first, from the journals under the runs directory."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from irx import humanize
from irx.errors import ExitCode, UsageError
from irx.timeline import RunSummary, default_runs_dir, list_runs

COLUMNS = ("RUN ID", "PLAYBOOK", "INVENTORY", "MODE", "STATUS", "OPERATOR", "STARTED", "DURATION")


def history_command(*, fmt: str = "text", runs_dir: Path | None = None) -> int:
    """Print the run history as a text table or JSON (a list of run summaries). Exit 0, 2 on usage errors."""
    runs = list_runs(runs_dir if runs_dir is not None else default_runs_dir())
    if fmt == "json":
        sys.stdout.write(json.dumps([run.to_dict() for run in runs], indent=2, ensure_ascii=False) + "\n")
    elif fmt == "text":
        sys.stdout.write(format_table(runs))
    else:
        raise UsageError(f"unknown history format {fmt!r}: use text or json")
    return ExitCode.OK


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
        _duration(run.duration),
    )


def _duration(seconds: float | None) -> str:
    return humanize.duration(seconds, missing="-")

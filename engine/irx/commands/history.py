"""``irx history``: one line per recorded run, newest first, as a text table or JSON."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from irx.errors import ExitCode, UsageError


def main(*, fmt: str = "text", runs_dir: Path | None = None) -> int:
    """Print the run history as a text table or JSON (a list of run summaries). Exit 0, 2 on usage errors."""
    from irx.history import format_table
    from irx.journal_read import default_runs_dir, list_runs

    if fmt not in ("text", "json"):
        raise UsageError(f"unknown history format {fmt!r}: use text or json")
    runs = list_runs(runs_dir if runs_dir is not None else default_runs_dir())
    if fmt == "json":
        sys.stdout.write(json.dumps([run.to_dict() for run in runs], indent=2, ensure_ascii=False) + "\n")
    else:
        sys.stdout.write(format_table(runs))
    return ExitCode.OK

"""``irx resume``: continue a stopped run from its journal, with ``irx run``'s terminal and exit codes."""

from __future__ import annotations

import dataclasses

from irx.run import RunOptions


def main(run_ref: str, options: RunOptions) -> int:
    """Continue run ``run_ref`` (a run id, a unique prefix, or latest) with ``options``; exit as irx run."""
    from irx.commands.run import main as run_main
    from irx.journal_read import default_runs_dir, resolve_run

    runs_dir = options.runs_dir if options.runs_dir is not None else default_runs_dir()
    run_dir = resolve_run(runs_dir, run_ref)
    return run_main(run_dir.name, dataclasses.replace(options, resume=run_dir, runs_dir=runs_dir))

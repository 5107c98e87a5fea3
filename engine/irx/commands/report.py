"""``irx report``: render a run's report from its journal to stdout or a file; warn about journal problems."""

from __future__ import annotations

import sys
from pathlib import Path

from irx.errors import ExitCode, UsageError


def main(run_id: str, *, fmt: str, output: Path | None = None, runs_dir: Path | None = None) -> int:
    """Render the report of run ``run_id`` (``latest``, an id or a unique prefix) to stdout or ``output``.

    Exit 0 when written, even for a journal with torn or corrupted lines (they are listed in the report and
    as a warning on stderr); ``UsageError`` (exit 2) for an unknown run, an unknown format or an
    unwritable output file.
    """
    from irx.journal_read import default_runs_dir, resolve_run
    from irx.report import renderer
    from irx.report.model import load_report

    render = renderer(fmt)
    run_dir = resolve_run(runs_dir if runs_dir is not None else default_runs_dir(), run_id)
    report = load_report(run_dir)
    text = render(report)
    if output is None:
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        try:
            output.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"cannot write the report to {output}: {exc.strerror or exc}") from None
    if report.problems:
        sys.stderr.write(
            f"irx: warning: the journal of {report.run_id} has {len(report.problems)} problem(s), "
            f"listed in the report; first: {report.problems[0]}\n"
        )
    return ExitCode.OK

"""Reports of a run, rendered from its journal alone: Markdown post-mortem draft, JSON, HTML.

``report_command`` is what ``irx report`` calls. The renderers are imported on demand so that the CLI
stays fast; ``irx.report.html`` is optional (``render(report) -> str``).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path

from irx.errors import ExitCode, UsageError

FORMATS = ("markdown", "json", "html")


def report_command(ref: str, *, fmt: str, output: Path | None = None, runs_dir: Path | None = None) -> int:
    """Render the report of run ``ref`` (``latest``, an id or a unique prefix) to stdout or ``output``.

    Exit 0 when written, even for a journal with torn or corrupted lines (they are listed in the report and
    as a warning on stderr); ``UsageError`` (exit 2) for an unknown run, an unknown format or an
    unwritable output file.
    """
    from irx.report.model import load_report
    from irx.timeline import default_runs_dir, resolve_run

    renderer = _renderer(fmt)
    run_dir = resolve_run(runs_dir if runs_dir is not None else default_runs_dir(), ref)
    report = load_report(run_dir)
    text = renderer(report)
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


def _renderer(fmt: str) -> Callable[..., str]:
    if fmt == "html":
        if importlib.util.find_spec("irx.report.html") is None:
            raise UsageError("html report not available yet")
        module = importlib.import_module("irx.report.html")
    elif fmt == "markdown":
        module = importlib.import_module("irx.report.markdown")
    elif fmt == "json":
        module = importlib.import_module("irx.report.json_report")
    else:
        raise UsageError(f"unknown report format {fmt!r}: use one of {', '.join(FORMATS)}")
    render: Callable[..., str] = module.render
    return render

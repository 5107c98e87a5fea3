"""``irx validate``: check playbook files, write the report (stdout or a file), exit 1 when something fails."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from irx.errors import ExitCode, UsageError


def main(paths: Sequence[Path], *, fmt: str = "text", strict: bool = False, output: Path | None = None) -> int:
    """Check every playbook under ``paths``; 0 clean, 1 problems (warnings too with ``strict``)."""
    from irx.validate import FORMATTERS, check_paths, failing

    files, problems = check_paths(paths)
    report = FORMATTERS[fmt](files, problems, strict)
    if output is None:
        sys.stdout.write(report)
    else:
        try:
            output.write_text(report, encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"cannot write {output}: {exc.strerror or exc}") from exc
    return ExitCode.FAILED if failing(problems, strict) else ExitCode.OK

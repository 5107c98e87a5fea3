"""Reports of a run, rendered from its journal alone: Markdown post-mortem draft, JSON, HTML.

Every format renders the same ``irx.report.model.Report``. ``renderer(fmt)`` picks one; the renderers are
imported on demand so that the CLI stays fast. ``irx report`` is ``irx.commands.report``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING

from irx.errors import UsageError

if TYPE_CHECKING:
    from irx.report.model import Report

FORMATS = ("markdown", "json", "html")
_MODULES = {"markdown": "irx.report.markdown", "json": "irx.report.json_report", "html": "irx.report.html"}


def renderer(fmt: str) -> Callable[[Report], str]:
    """The ``render(report) -> str`` of format ``fmt``; ``UsageError`` for an unknown format."""
    if fmt not in _MODULES:
        raise UsageError(f"unknown report format {fmt!r}: use one of {', '.join(FORMATS)}")
    render: Callable[[Report], str] = importlib.import_module(_MODULES[fmt]).render
    return render

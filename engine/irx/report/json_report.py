"""The JSON report: ``Report.to_dict()``, described by ``schemas/report.schema.json``."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from irx.report.model import Report


def render(report: Report) -> str:
    """The report as indented JSON text, ending with a newline."""
    return json.dumps(report.to_dict(), indent=2, ensure_ascii=False, default=str) + "\n"


def schema() -> dict[str, Any]:
    """The report JSON Schema (draft 2020-12)."""
    text = resources.files("irx").joinpath("schemas/report.schema.json").read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data

"""Step results: per-host outcomes, ``parse:`` of their output, and the aggregated ``steps.ID`` view.

``steps.ID`` in templates is a plain mapping built by ``StepResult.view()``: the fields listed in
``rules.RESULT_FIELDS``. Aggregates are over hosts: ``total`` sums numbers (or row counts for lists),
``max``/``min`` likewise, ``any``/``all`` test the truth of each host's data, ``count`` counts hosts
that produced data.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from irx.model import ParseSpec

HostStatus = str  # ok | failed | skipped | unreachable | timed_out


class ParseError(ValueError):
    """Output that does not parse as the step says it should."""


def parse_output(spec: ParseSpec | None, text: str) -> Any:
    """Turn a step's output into data; ``None`` spec keeps the text (stripped)."""
    if spec is None or spec.format == "text":
        return text.strip()
    fmt = spec.format
    stripped = text.strip()
    if fmt in {"json", "int", "float"} and not stripped:
        # Empty output is no number: `df /missing | awk ...` must not read as 0 % used.
        raise ParseError(f"output is empty; expected {_EXPECTED[fmt]}")
    try:
        if fmt == "json":
            return json.loads(stripped)
        if fmt == "int":
            return int(stripped.splitlines()[0].strip())
        if fmt == "float":
            number = float(stripped.splitlines()[0].strip())
            if not math.isfinite(number):
                raise ValueError("not finite")
            return number
    except ValueError as exc:
        raise ParseError(f"output is not {_EXPECTED[fmt]}: {_preview(stripped)}") from exc
    if fmt == "lines":
        return [line for line in (raw.strip() for raw in text.splitlines()) if line]
    if fmt == "csv":
        return _parse_csv(spec, text)
    if fmt == "regex":
        return _parse_regex(spec, text)
    raise ParseError(f"unknown parse format {fmt}")  # pragma: no cover - the schema prevents it


_EXPECTED = {"json": "JSON", "int": "an integer", "float": "a number"}


def _preview(text: str) -> str:
    return repr(text[:80] + ("..." if len(text) > 80 else ""))


def _parse_csv(spec: ParseSpec, text: str) -> list[dict[str, str]] | list[list[str]]:
    try:  # newline="": the csv module's own line handling, so a \r inside a quoted field is data
        rows = [row for row in csv.reader(io.StringIO(text.strip(), newline=""), delimiter=spec.delimiter) if row]
    except csv.Error as exc:
        raise ParseError(f"output is not CSV: {exc}: {_preview(text.strip())}") from None
    if spec.columns:
        names = list(spec.columns)
        return [dict(zip(names, row + [""] * (len(names) - len(row)), strict=False)) for row in rows]
    return rows


def _parse_regex(spec: ParseSpec, text: str) -> list[dict[str, str]] | list[str]:
    pattern = re.compile(spec.pattern or "", re.MULTILINE)
    if pattern.groupindex:
        return [match.groupdict() for match in pattern.finditer(text)]
    return [match.group(0) for match in pattern.finditer(text)]


@dataclass
class HostResult:
    host: str
    status: HostStatus
    rc: int | None = None
    stdout: str = ""
    stderr: str = ""
    msg: str = ""
    changed: bool = False
    duration: float = 0.0
    data: Any = None
    extra: dict[str, Any] = field(default_factory=dict)  # http: status_code, json, body, elapsed

    @property
    def ok(self) -> bool:
        return self.status in {"ok", "skipped"}

    def view(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "ok": self.status == "ok",
            "failed": self.status in {"failed", "timed_out", "unreachable"},
            "skipped": self.status == "skipped",
            "timed_out": self.status == "timed_out",
            "unreachable": self.status == "unreachable",
            "changed": self.changed,
            "rc": self.rc,
            "stdout": self.stdout,
            "stderr": self.stderr,
            "data": self.data,
            "duration": round(self.duration, 3),
            **self.extra,
        }


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, list | tuple | dict):
        return float(len(value))
    return None


def _tidy(value: float | None) -> int | float | None:
    return int(value) if value is not None and float(value).is_integer() else value


@dataclass
class StepResult:
    """What one step did on every host it ran on (or on the control node, host ``localhost``)."""

    step_id: str
    status: str  # ok | failed | skipped | timed_out | would_run | not_run | interrupted
    hosts: dict[str, HostResult] = field(default_factory=dict)
    duration: float = 0.0
    attempts: int = 1
    reason: str = ""

    def aggregates(self) -> dict[str, Any]:
        data = [h.data for h in self.hosts.values() if h.status == "ok" and h.data is not None]
        numbers = [n for n in (_number(d) for d in data) if n is not None]
        return {
            "total": _tidy(sum(numbers)) if numbers else 0,
            "max": _tidy(max(numbers)) if numbers else None,
            "min": _tidy(min(numbers)) if numbers else None,
            "count": len(data),
            "any": any(bool(d) for d in data),
            "all": bool(data) and all(bool(d) for d in data),
        }

    def view(self) -> dict[str, Any]:
        """The ``steps.ID`` mapping for templates."""
        first = next(iter(self.hosts.values()), None)
        # A step that did not run still has every field, so `steps.x.data is none` works without guards.
        base = first.view() if first is not None else HostResult("", self.status).view()
        rcs = [h.rc for h in self.hosts.values() if h.rc is not None]
        return {
            **base,
            "status": self.status,
            "ok": self.status == "ok",
            "failed": self.status in {"failed", "timed_out", "unreachable"},
            "skipped": self.status in {"skipped", "would_run", "not_run"},
            "timed_out": self.status == "timed_out",
            "changed": any(h.changed for h in self.hosts.values()),
            "rc": max(rcs) if rcs else None,
            "values": [h.data for h in self.hosts.values()],
            "hosts": {name: h.view() for name, h in self.hosts.items()},
            "attempts": self.attempts,
            "duration": round(self.duration, 3),
            **self.aggregates(),
        }


def step_views(results: Mapping[str, StepResult]) -> dict[str, Any]:
    return {step_id: result.view() for step_id, result in results.items()}

"""What every semantic rule works on: a playbook's steps as raw data, their templated fields, and where to report.

Rules read the raw data (so they still run when the schema found errors: every problem at once) and report
through ``Context.report``, which points into the user's file with the document's positions.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from irx.document import Document, Path_
from irx.model import PHASES


@dataclass(frozen=True)
class Field:
    """One templated field of a step: where it is, its text, and how it is rendered."""

    path: Path_
    text: str
    kind: str  # "template", "shell" or "expression"
    name: str  # for messages: 'shell', 'http.url', 'when'


@dataclass(frozen=True)
class StepInfo:
    phase: str
    index: int
    order: int  # position in execution order
    raw: Mapping[str, Any]

    @property
    def path(self) -> Path_:
        return (self.phase, self.index)

    @property
    def id(self) -> str | None:
        value = self.raw.get("id")
        return value if isinstance(value, str) else None


def steps_of(data: Mapping[str, Any]) -> list[StepInfo]:
    out: list[StepInfo] = []
    for phase in PHASES:
        raw_steps = data.get(phase)
        if isinstance(raw_steps, list):
            for index, raw in enumerate(raw_steps):
                if isinstance(raw, Mapping):
                    out.append(StepInfo(phase, index, len(out), raw))
    return out


def strings_in(value: Any, path: Path_, name: str) -> Iterator[tuple[Path_, str, str]]:
    """Every string inside ``value`` (args, json bodies), with its path."""
    if isinstance(value, str):
        yield path, value, name
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from strings_in(item, (*path, key), f"{name}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from strings_in(item, (*path, index), f"{name}[{index}]")


def step_fields(step: StepInfo) -> Iterator[Field]:
    raw, base = step.raw, step.path
    if isinstance(raw.get("shell"), str):
        yield Field((*base, "shell"), raw["shell"], "shell", "shell")
    for key in ("command", "args", "env", "chdir"):
        for path, text, name in strings_in(raw.get(key), (*base, key), key):
            yield Field(path, text, "template", name)
    http = raw.get("http")
    if isinstance(http, Mapping):
        for key in ("url", "headers", "body", "json"):
            for path, text, name in strings_in(http.get(key), (*base, "http", key), f"http.{key}"):
                yield Field(path, text, "template", name)
    for action in ("assert", "approve", "notify"):
        spec = raw.get(action)
        if isinstance(spec, Mapping) and isinstance(spec.get("message"), str):
            yield Field((*base, action, "message"), spec["message"], "template", f"{action}.message")
    for key in ("when", "until"):
        if isinstance(raw.get(key), str):
            yield Field((*base, key), raw[key], "expression", key)
    spec = raw.get("assert")
    if isinstance(spec, Mapping):
        that = spec.get("that")
        exprs = [(0, that)] if isinstance(that, str) else list(enumerate(that)) if isinstance(that, list) else []
        for index, expr in exprs:
            if isinstance(expr, str):
                sub: Path_ = (*base, "assert", "that") if isinstance(that, str) else (*base, "assert", "that", index)
                yield Field(sub, expr, "expression", "assert.that")


class Context:
    """Shared state of one playbook's rule run."""

    def __init__(self, doc: Document) -> None:
        self.doc = doc
        self.data: Mapping[str, Any] = doc.data
        self.steps = steps_of(self.data)
        self.order: dict[str, StepInfo] = {}
        for step in self.steps:  # the first definition wins; later ones are duplicate-step-id errors
            if step.id is not None:
                self.order.setdefault(step.id, step)
        params = self.data.get("params")
        targets = self.data.get("targets")
        self.params: Mapping[str, Any] = params if isinstance(params, Mapping) else {}
        self.targets: Mapping[str, Any] = targets if isinstance(targets, Mapping) else {}
        self.used_params: set[str] = set()
        self.used_targets: set[str] = set()

    def report(self, path: Path_, rule: str, message: str, level: str = "error", key: bool = False) -> None:
        self.doc.problem(self.doc.position(path, key=key), rule, message, level)

    def report_in(self, field: Field, lineno: int, rule: str, message: str, level: str = "error") -> None:
        """Report inside a template, on the template's own line when it spans several."""
        line, col = self.doc.position(field.path)
        if lineno > 1 or field.path in self.doc.block_scalars:
            line, col = line + lineno - (0 if field.path in self.doc.block_scalars else 1), 1
        self.doc.problem((line, col), rule, message, level)

"""The playbook model: frozen dataclasses built once from schema-valid data.

Nothing downstream re-checks input shape: ``build_playbook`` only runs on data that passed the JSON Schema,
so it may index freely. Defaults that depend on context (``mutating`` by phase and action) are resolved
here, in one place.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

# The action kinds live in irx.actions (one table); these names stay importable from here.
from irx.actions import ACTIONS as ACTIONS
from irx.actions import HOST_ACTIONS as HOST_ACTIONS
from irx.actions import KINDS
from irx.actions import READ_ONLY_HTTP_METHODS as READ_ONLY_HTTP_METHODS
from irx.actions import default_mutating as default_mutating
from irx.humanize import parse_duration as parse_duration

PHASES: tuple[str, ...] = ("diagnose", "mitigate", "verify", "rollback")
SEVERITIES: tuple[str, ...] = ("SEV1", "SEV2", "SEV3", "SEV4")
# P0..P3 (used by several of the source runbooks) map onto SEV1..SEV4.
PRIORITY_TO_SEVERITY: Mapping[str, str] = {"P0": "SEV1", "P1": "SEV2", "P2": "SEV3", "P3": "SEV4"}

Phase = Literal["diagnose", "mitigate", "verify", "rollback"]
OnFailure = Literal["abort", "continue", "rollback"]


def normalize_severity(value: str) -> str:
    """SEV1..SEV4 as given, P0..P3 mapped to them."""
    return PRIORITY_TO_SEVERITY.get(value, value)


@dataclass(frozen=True)
class Param:
    name: str
    type: str
    description: str = ""
    default: Any = None
    has_default: bool = False
    required: bool = False
    secret: bool = False
    env: str | None = None
    choices: tuple[Any, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    pattern: str | None = None
    format: str | None = None


@dataclass(frozen=True)
class Target:
    name: str
    hosts: str
    description: str = ""
    serial: int | str | None = None
    max_fail_percentage: float = 0.0


@dataclass(frozen=True)
class ParseSpec:
    format: str
    pattern: str | None = None
    columns: tuple[str, ...] | None = None
    delimiter: str = ","


@dataclass(frozen=True)
class Step:
    id: str
    phase: Phase
    action: str  # one of ACTIONS
    spec: Any  # the action's value: str (shell), list (command), dict (http, assert, ...), duration (wait)
    name: str = ""
    on: str | None = None
    args: Mapping[str, Any] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict)
    chdir: str | None = None
    become: bool = False
    when: str | bool | None = None
    until: str | bool | None = None
    retries: int = 0
    delay: float = 0.0
    timeout: float | None = None
    on_failure: OnFailure = "abort"
    mutating: bool = False
    approval_required: bool = False
    approval_reason: str | None = None
    gate: GateSpec = field(default_factory=lambda: GateSpec())
    parse: ParseSpec | None = None
    line: int = 0

    @property
    def runs_on_hosts(self) -> bool:
        return self.action in HOST_ACTIONS

    @property
    def title(self) -> str:
        return self.name or self.id


@dataclass(frozen=True)
class GateSpec:
    """What a step's ``approval:`` says beyond required: how many must approve, escalation, timeout."""

    approvals: int = 1
    escalate_after: float | None = None
    escalate_to: str | None = None
    timeout: float | None = None
    on_timeout: Literal["abort", "skip"] = "abort"

    @classmethod
    def of(cls, raw: Mapping[str, Any]) -> GateSpec:
        def seconds(key: str) -> float | None:
            return parse_duration(raw[key]) if key in raw else None

        return cls(
            raw.get("approvals", 1), seconds("escalate_after"), raw.get("escalate_to"), seconds("timeout"),
            raw.get("on_timeout", "abort"),
        )  # fmt: skip


@dataclass(frozen=True)
class Playbook:
    name: str
    title: str
    severity: str  # always SEV1..SEV4
    declared_severity: str  # as written (may be P0..P3)
    path: Path
    summary: str = ""
    tags: tuple[str, ...] = ()
    symptoms: tuple[str, ...] = ()
    references: tuple[Mapping[str, str], ...] = ()
    params: Mapping[str, Param] = field(default_factory=dict)
    targets: Mapping[str, Target] = field(default_factory=dict)
    phases: Mapping[str, tuple[Step, ...]] = field(default_factory=dict)
    messages: Mapping[str, str] = field(default_factory=dict)

    @property
    def steps(self) -> tuple[Step, ...]:
        """All steps in execution order: diagnose, mitigate, verify, rollback."""
        return tuple(step for phase in PHASES for step in self.phases.get(phase, ()))

    def step_counts(self) -> dict[str, int]:
        return {phase: len(self.phases.get(phase, ())) for phase in PHASES}


def _build_parse(raw: Any) -> ParseSpec | None:
    if raw is None:
        return None
    if isinstance(raw, str):
        return ParseSpec(format=raw)
    columns = raw.get("columns")
    return ParseSpec(
        format=raw["format"],
        pattern=raw.get("pattern"),
        columns=tuple(columns) if columns is not None else None,
        delimiter=raw.get("delimiter", ","),
    )


def build_step(phase: Phase, raw: Mapping[str, Any], line: int = 0) -> Step:
    action = next(name for name in ACTIONS if name in raw)
    spec = raw[action]
    approval = raw.get("approval")
    gate = GateSpec()
    if approval == "required":
        approval_required, approval_reason = True, None
    elif isinstance(approval, Mapping):
        approval_required, approval_reason = bool(approval["required"]), approval.get("reason")
        gate = GateSpec.of(approval)
    else:
        approval_required, approval_reason = KINDS[action].gated, None
    mutating = raw.get("mutating")
    return Step(
        id=raw["id"],
        phase=phase,
        action=action,
        spec=spec,
        name=raw.get("name", ""),
        on=raw.get("on"),
        args=raw.get("args", {}),
        env=raw.get("env", {}),
        chdir=raw.get("chdir"),
        become=raw.get("become", False),
        when=raw.get("when"),
        until=raw.get("until"),
        retries=raw.get("retries", 0),
        delay=parse_duration(raw["delay"]) if "delay" in raw else 0.0,
        timeout=parse_duration(raw["timeout"]) if "timeout" in raw else None,
        on_failure=raw.get("on_failure", "abort"),
        mutating=default_mutating(phase, action, spec) if mutating is None else bool(mutating),
        approval_required=approval_required,
        approval_reason=approval_reason,
        gate=gate,
        parse=_build_parse(raw.get("parse")),
        line=line,
    )


def build_playbook(data: Mapping[str, Any], path: Path, step_lines: Mapping[tuple[str, int], int]) -> Playbook:
    """The model of schema-valid ``data``; ``step_lines`` maps (phase, index) to the step's line."""
    meta = data["metadata"]
    params = {
        name: Param(
            name=name,
            type=raw["type"],
            description=raw.get("description", ""),
            default=raw.get("default"),
            has_default="default" in raw,
            required=raw.get("required", False),
            secret=raw.get("secret", False),
            env=raw.get("env"),
            choices=tuple(raw["choices"]) if "choices" in raw else None,
            minimum=raw.get("minimum"),
            maximum=raw.get("maximum"),
            pattern=raw.get("pattern"),
            format=raw.get("format"),
        )
        for name, raw in data.get("params", {}).items()
    }
    targets = {
        name: Target(
            name=name,
            hosts=raw["hosts"],
            description=raw.get("description", ""),
            serial=raw.get("serial"),
            max_fail_percentage=float(raw.get("max_fail_percentage", 0)),
        )
        for name, raw in data.get("targets", {}).items()
    }
    phases: dict[str, tuple[Step, ...]] = {}
    for phase in PHASES:
        raw_steps = data.get(phase) or []
        phases[phase] = tuple(
            build_step(phase, raw, step_lines.get((phase, index), 0))  # type: ignore[arg-type]
            for index, raw in enumerate(raw_steps)
        )
    return Playbook(
        name=meta["name"],
        title=meta["title"],
        severity=normalize_severity(meta["severity"]),
        declared_severity=meta["severity"],
        path=path,
        summary=meta.get("summary", ""),
        tags=tuple(meta.get("tags", ())),
        symptoms=tuple(meta.get("symptoms", ())),
        references=tuple(meta.get("references", ())),
        params=params,
        targets=targets,
        phases=phases,
        messages=data.get("messages", {}),
    )

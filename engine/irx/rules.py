"""Semantic rules: what JSON Schema cannot say about a playbook.

Each rule is one small function over the raw data (so rules still run when the schema found errors:
every problem at once). Rules read data defensively and report through ``Document.problem`` with their
own id. The ids are listed in ``RULES`` (shown by docs and tests).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from irx.document import Document
from irx.model import ACTIONS, Playbook, default_mutating, normalize_severity
from irx.rule_context import Context, StepInfo
from irx.rules_templates import RESULT_FIELDS as RESULT_FIELDS
from irx.rules_templates import secrets_off_command_lines, templates

RULES: Mapping[str, str] = {
    "duplicate-step-id": "step ids are unique within a playbook",
    "unknown-target": "a step's on: names a target defined under targets:",
    "unknown-param": "params.NAME in a template names a declared param",
    "unknown-step": "steps.ID in a template names a step of the playbook",
    "forward-reference": "a step reads only results of steps that run before it",
    "template-syntax": "every templated field is valid Jinja2",
    "unknown-filter": "filters and tests used in templates exist",
    "unknown-name": "templates use only params, steps, run, host, vars (and result in until)",
    "unsafe-attribute": "no attribute or key starting with _ (the sandbox refuses them)",
    "mutating-in-diagnose": "diagnose steps are read-only",
    "approval-missing": "in SEV1/SEV2 playbooks a mutating step declares its approval",
    "approval-timing": "a gate escalates before its timeout; escalate_to needs escalate_after; only gates have them",
    "no-rollback-steps": "on_failure: rollback needs a rollback phase",
    "param-default": "a param's default matches its type, choices and bounds",
    "duplicate-playbook-name": "playbook names are unique across files",
    "unknown-result-field": "steps.ID.FIELD uses a known result field (warning)",
    "unused-param": "every declared param is used (warning)",
    "unused-target": "every declared target is used (warning)",
    "name-mismatch": "the file is named after metadata.name (warning)",
    "until-without-retries": "until: needs retries: to repeat (warning)",
    "ignored-on": "on: on a step that runs on the control node is ignored (warning)",
    "diagnose-may-mutate": "a diagnose command or module that looks like it changes the host (warning)",
    "pipe-reader-stops-early": "no grep -q or head reading a pipe in a shell step, which runs under pipefail (warning)",
    "secret-on-command-line": "a secret param, or an env var carrying one, never becomes part of a command line",
    "env-on-module": "env: is for shell and command steps (a module takes its settings as args)",
    "shell-module": "host commands are shell: or command: steps, not Ansible's command/shell/raw/script modules",
    "routes": "a routes file (kind: Routes) matches its schema, its matchers parse, its playbooks have what it names",
    "approvers": "an approvers file (kind: Approvers) matches its schema; its rules name its users and groups",
}

_READ_ONLY_MODULES = frozenset(
    f"ansible.builtin.{m}"
    for m in (
        "stat",
        "slurp",
        "setup",
        "service_facts",
        "package_facts",
        "find",
        "wait_for",
        "ping",
        "debug",
        "assert",
        "getent",
        "command",
        "shell",
        "uri",
        "fail",
        "set_fact",
    )
)
_MUTATING_SHELL = re.compile(
    r"\b(systemctl\s+(restart|stop|start|reload|kill|disable)|service\s+\S+\s+(restart|stop|start)|"
    r"kill|pkill|killall|rm\s+-|truncate|reboot|shutdown|iptables\s+-[AID]|pg_terminate_backend|FLUSHALL|FLUSHDB)\b",
    re.IGNORECASE,
)


# A reader that stops at its first line or match, on the far end of a pipe. Shell steps run under pipefail, so
# the writer it leaves behind may die of SIGPIPE and fail the step, or not, by timing.
_EARLY_READER = re.compile(
    r"(?<![|])[|](?![|])\s*(grep(?:\s+-[A-Za-z]+)*?\s+(?:-[A-Za-z]*q[A-Za-z]*|--quiet|--silent)\b|head\b)"
)
_QUOTED_OR_COMMENT = re.compile(r"'[^']*'|\"(?:[^\"\\]|\\.)*\"|(?:^|(?<=\s))#[^\n]*", re.MULTILINE)


def check_rules(doc: Document, playbook: Playbook | None) -> None:
    """Run every rule over ``doc`` (whose data is a mapping), adding problems to it."""
    ctx = Context(doc)
    for rule in (
        _duplicate_ids,
        _targets,
        templates,
        _mutating,
        _approvals,
        _gate_timing,
        _rollback,
        _params,
        _controls,
        _name,
        _host_commands,
        _pipes,
        secrets_off_command_lines,
    ):
        rule(ctx)
    _unused(ctx)


def _duplicate_ids(ctx: Context) -> None:
    first: dict[str, StepInfo] = {}
    for step in ctx.steps:
        if step.id is None:
            continue
        if step.id in first:
            seen = first[step.id]
            line = ctx.doc.position((*seen.path, "id"))[0]
            ctx.report((*step.path, "id"), "duplicate-step-id", f"step id '{step.id}' is already used on line {line}")
        else:
            first[step.id] = step


def _targets(ctx: Context) -> None:
    for step in ctx.steps:
        on = step.raw.get("on")
        if not isinstance(on, str):
            continue
        ctx.used_targets.add(on)
        if on not in ctx.targets:
            known = ", ".join(sorted(ctx.targets)) or "none are defined"
            ctx.report(
                (*step.path, "on"),
                "unknown-target",
                f"step '{step.id}' runs on unknown target '{on}' (targets: {known})",
            )
        if not any(action in step.raw for action in ("shell", "command", "module")):
            ctx.report(
                (*step.path, "on"),
                "ignored-on",
                f"step '{step.id}' runs on the control node; on: is ignored",
                "warning",
                key=True,
            )


def _is_mutating(step: StepInfo) -> bool:
    explicit = step.raw.get("mutating")
    if isinstance(explicit, bool):
        return explicit
    action = next((a for a in ACTIONS if a in step.raw), None)
    if action is None:
        return False
    spec = step.raw[action]
    return default_mutating(step.phase, action, spec if isinstance(spec, Mapping) else {})


def _mutating(ctx: Context) -> None:
    for step in ctx.steps:
        if step.phase != "diagnose":
            continue
        if step.raw.get("mutating") is True:
            ctx.report(
                (*step.path, "mutating"),
                "mutating-in-diagnose",
                f"step '{step.id}' is mutating; diagnose steps must be read-only (move it to mitigate)",
            )
            continue
        module = step.raw.get("module")
        shell = step.raw.get("shell")
        command = step.raw.get("command")
        text = shell if isinstance(shell, str) else " ".join(map(str, command)) if isinstance(command, list) else ""
        if isinstance(module, str) and module not in _READ_ONLY_MODULES:
            ctx.report(
                (*step.path, "module"),
                "diagnose-may-mutate",
                f"module {module} in diagnose may change the host; irx runs diagnose steps even in a dry run",
                "warning",
            )
        elif text and (match := _MUTATING_SHELL.search(text)):
            ctx.report(
                (*step.path, "shell" if shell else "command"),
                "diagnose-may-mutate",
                f"'{match.group(0)}' in diagnose looks like it changes the host; "
                "irx runs diagnose steps even in a dry run",
                "warning",
            )


def _approvals(ctx: Context) -> None:
    meta = ctx.data.get("metadata")
    severity = meta.get("severity") if isinstance(meta, Mapping) else None
    if not isinstance(severity, str) or normalize_severity(severity) not in {"SEV1", "SEV2"}:
        return
    for step in ctx.steps:
        if _is_mutating(step) and "approval" not in step.raw and "approve" not in step.raw:
            ctx.report(
                step.path,
                "approval-missing",
                f"step '{step.id}' is mutating in a {normalize_severity(severity)} playbook: add 'approval: required' "
                "or 'approval: {required: false, reason: ...}'",
            )


def _gate_timing(ctx: Context) -> None:
    from irx.humanize import parse_duration

    for step in ctx.steps:
        gate = step.raw.get("approval")
        if not isinstance(gate, Mapping):
            continue
        at = (*step.path, "approval")
        extra = [key for key in ("approvals", "escalate_after", "escalate_to", "timeout", "on_timeout") if key in gate]
        if gate.get("required") is False and extra:
            ctx.report(at, "approval-timing", f"step '{step.id}' needs no approval: {', '.join(extra)} has no effect")
        if "escalate_to" in gate and "escalate_after" not in gate:
            ctx.report((*at, "escalate_to"), "approval-timing", f"step '{step.id}': escalate_to needs escalate_after")
        try:
            after, limit = (parse_duration(gate[k]) if k in gate else None for k in ("escalate_after", "timeout"))
        except (TypeError, ValueError):  # the schema reports a malformed duration
            continue
        if after is not None and limit is not None and after >= limit:
            ctx.report(
                (*at, "escalate_after"),
                "approval-timing",
                f"step '{step.id}': escalate_after ({gate['escalate_after']}) must be shorter than timeout "
                f"({gate['timeout']}), or the escalation never happens",
            )


def _rollback(ctx: Context) -> None:
    if ctx.data.get("rollback"):
        return
    for step in ctx.steps:
        if step.raw.get("on_failure") == "rollback":
            ctx.report(
                (*step.path, "on_failure"),
                "no-rollback-steps",
                f"step '{step.id}' says on_failure: rollback but the playbook has no rollback steps",
            )


_PY_TYPES: Mapping[str, Callable[[Any], bool]] = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "list": lambda v: isinstance(v, list),
}


def _params(ctx: Context) -> None:
    for name, spec in ctx.params.items():
        if not isinstance(spec, Mapping) or not isinstance(spec.get("type"), str) or spec["type"] not in _PY_TYPES:
            continue
        kind = spec["type"]
        if kind not in {"integer", "number"} and ("minimum" in spec or "maximum" in spec):
            ctx.report(
                ("params", name, "minimum" if "minimum" in spec else "maximum"),
                "param-default",
                f"param '{name}': minimum/maximum apply only to integer and number params",
                key=True,
            )
        if "default" not in spec:
            continue
        default = spec["default"]
        path = ("params", name, "default")
        shown = "******" if spec.get("secret") else repr(default)
        if not _PY_TYPES[kind](default):
            ctx.report(path, "param-default", f"param '{name}': default {shown} is not of type {kind}")
            continue
        choices = spec.get("choices")
        if isinstance(choices, list) and default not in choices:
            ctx.report(path, "param-default", f"param '{name}': default {shown} is not one of the choices")
        low, high = spec.get("minimum"), spec.get("maximum")
        if kind in {"integer", "number"}:
            if isinstance(low, int | float) and default < low:
                ctx.report(path, "param-default", f"param '{name}': default {shown} is below the minimum {low}")
            if isinstance(high, int | float) and default > high:
                ctx.report(path, "param-default", f"param '{name}': default {shown} is above the maximum {high}")
        pattern = spec.get("pattern")
        if kind == "string" and isinstance(pattern, str):
            try:
                if not re.fullmatch(pattern, default):
                    ctx.report(path, "param-default", f"param '{name}': default {shown} does not match its pattern")
            except re.error as exc:
                ctx.report(("params", name, "pattern"), "param-default", f"param '{name}': invalid pattern: {exc}")


def _controls(ctx: Context) -> None:
    for step in ctx.steps:
        if "until" in step.raw and not step.raw.get("retries"):
            ctx.report(
                (*step.path, "until"),
                "until-without-retries",
                f"step '{step.id}' has until: but no retries:, so it runs once",
                "warning",
                key=True,
            )


def _name(ctx: Context) -> None:
    meta = ctx.data.get("metadata")
    name = meta.get("name") if isinstance(meta, Mapping) else None
    stem = ctx.doc.path.name.rsplit(".", 1)[0]
    if isinstance(name, str) and name != stem:
        ctx.report(
            ("metadata", "name"),
            "name-mismatch",
            f"playbook '{name}' is in a file named {ctx.doc.path.name}; name the file {name}.yaml",
            "warning",
        )


def _unused(ctx: Context) -> None:
    if ctx.doc.ok:  # only meaningful when the templates parsed
        for name in ctx.params:
            if name not in ctx.used_params:
                ctx.report(
                    ("params", name), "unused-param", f"param '{name}' is declared but never used", "warning", key=True
                )
    for name in ctx.targets:
        if name not in ctx.used_targets:
            ctx.report(
                ("targets", name),
                "unused-target",
                f"target '{name}' is declared but no step runs on it",
                "warning",
                key=True,
            )


# Modules that run a command line of their own, outside irx_command: ansible.builtin.command expands $VARS
# in argv, and all of them get a step's env only through Ansible's environment: keyword, which puts every
# value on the host's /bin/sh -c command line.
_COMMAND_MODULES = frozenset(
    f"{prefix}{name}"
    for prefix in ("", "ansible.builtin.", "ansible.legacy.")
    for name in ("command", "shell", "raw", "script", "expect")
)


def _host_commands(ctx: Context) -> None:
    for step in ctx.steps:
        module = step.raw.get("module")
        if not isinstance(module, str):
            continue
        if module in _COMMAND_MODULES:
            ctx.report(
                (*step.path, "module"),
                "shell-module",
                f"step '{step.id}': module {module} runs a command outside irx's own executor (it may expand "
                "$VARS and put env: values on the host's command line); write it as shell: or command:",
            )
        if step.raw.get("env"):
            ctx.report(
                (*step.path, "env"),
                "env-on-module",
                f"step '{step.id}': env: is for shell and command steps; pass the module its settings as args",
                key=True,
            )


def _pipes(ctx: Context) -> None:
    for step in ctx.steps:
        shell = step.raw.get("shell")
        if isinstance(shell, str) and (match := _EARLY_READER.search(_QUOTED_OR_COMMENT.sub("''", shell))):
            ctx.report(
                (*step.path, "shell"),
                "pipe-reader-stops-early",
                f"step '{step.id}': '| {match.group(1)}' stops reading early, and shell steps run under pipefail: "
                "the command before it may die of SIGPIPE and fail the step, by timing. Read to the end "
                "(grep -c PATTERN >/dev/null, sed -n 1p), or capture the output first",
                "warning",
            )

"""Semantic rules: what JSON Schema cannot say about a playbook.

Each rule is one small function over the raw data (so rules still run when the schema found errors:
every problem at once). Rules read data defensively and report through ``Document.problem`` with their
own id. The ids are listed in ``RULES`` (shown by docs and tests).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Set
from dataclasses import dataclass
from typing import Any

from jinja2 import TemplateSyntaxError, nodes

from irx import templating
from irx.commandline import exposures
from irx.loader import Document, Path_
from irx.model import ACTIONS, PHASES, Playbook, default_mutating, normalize_severity

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
    "secret-on-command-line": "a secret param, or an env var carrying one, never becomes part of a command line",
    "env-on-module": "env: is for shell and command steps (a module takes its settings as args)",
    "shell-module": "host commands are shell: or command: steps, not Ansible's command/shell/raw/script modules",
}

RESULT_FIELDS = frozenset(
    {
        "status",
        "ok",
        "failed",
        "skipped",
        "changed",
        "timed_out",
        "unreachable",
        "rc",
        "stdout",
        "stderr",
        "data",
        "values",
        "total",
        "max",
        "min",
        "count",
        "any",
        "all",
        "hosts",
        "duration",
        "status_code",
        "json",
        "body",
        "elapsed",
        "attempts",
    }
)
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
_JINJA_GLOBALS = frozenset(templating.environment().globals) | {"true", "false", "none", "True", "False", "None"}


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


def _steps(data: Mapping[str, Any]) -> list[StepInfo]:
    out: list[StepInfo] = []
    for phase in PHASES:
        raw_steps = data.get(phase)
        if isinstance(raw_steps, list):
            for index, raw in enumerate(raw_steps):
                if isinstance(raw, Mapping):
                    out.append(StepInfo(phase, index, len(out), raw))
    return out


def _strings(value: Any, path: Path_, name: str) -> Iterator[tuple[Path_, str, str]]:
    """Every string inside ``value`` (args, json bodies), with its path."""
    if isinstance(value, str):
        yield path, value, name
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _strings(item, (*path, key), f"{name}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, (*path, index), f"{name}[{index}]")


def step_fields(step: StepInfo) -> Iterator[Field]:
    raw, base = step.raw, step.path
    if isinstance(raw.get("shell"), str):
        yield Field((*base, "shell"), raw["shell"], "shell", "shell")
    for key in ("command", "args", "env", "chdir"):
        for path, text, name in _strings(raw.get(key), (*base, key), key):
            yield Field(path, text, "template", name)
    http = raw.get("http")
    if isinstance(http, Mapping):
        for key in ("url", "headers", "body", "json"):
            for path, text, name in _strings(http.get(key), (*base, "http", key), f"http.{key}"):
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


class _Context:
    """Shared state of one playbook's rule run."""

    def __init__(self, doc: Document) -> None:
        self.doc = doc
        self.data: Mapping[str, Any] = doc.data
        self.steps = _steps(self.data)
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


def check_rules(doc: Document, playbook: Playbook | None) -> None:
    """Run every rule over ``doc`` (whose data is a mapping), adding problems to it."""
    ctx = _Context(doc)
    for rule in (
        _duplicate_ids,
        _targets,
        _templates,
        _mutating,
        _approvals,
        _rollback,
        _params,
        _controls,
        _name,
        _host_commands,
        _secrets_off_command_lines,
    ):
        rule(ctx)
    _unused(ctx)


def _duplicate_ids(ctx: _Context) -> None:
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


def _targets(ctx: _Context) -> None:
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


def _templates(ctx: _Context) -> None:
    for step in ctx.steps:
        for field in step_fields(step):
            tree = _parse(ctx, field)
            if tree is not None:
                _check_names(ctx, step, field, tree)
    messages = ctx.data.get("messages")
    if isinstance(messages, Mapping):
        for key, text in messages.items():
            if isinstance(text, str):
                field = Field(("messages", key), text, "template", f"messages.{key}")
                tree = _parse(ctx, field)
                if tree is not None:
                    _check_names(ctx, None, field, tree)


def _parse(ctx: _Context, field: Field) -> nodes.Template | None:
    env = templating.shell_environment() if field.kind == "shell" else templating.environment()
    if field.kind != "expression" and "{" not in field.text:
        return None  # plain text: nothing to parse or check
    source = "{{ (" + templating.expression_source(field.text) + ") }}" if field.kind == "expression" else field.text
    try:
        tree = env.parse(source)
    except TemplateSyntaxError as exc:
        ctx.report_in(field, exc.lineno or 1, "template-syntax", f"{field.name}: {exc.message}")
        return None
    # Unknown filters and tests, as Jinja's compiler would report them (without paying for compiling).
    for node in tree.find_all((nodes.Filter, nodes.Test)):
        known, kind = (env.filters, "filter") if isinstance(node, nodes.Filter) else (env.tests, "test")
        if node.name not in known:
            ctx.report_in(field, node.lineno, "unknown-filter", f"{field.name}: No {kind} named '{node.name}'.")
            return None
    return tree


_BINDING_NODES = (nodes.Assign, nodes.AssignBlock, nodes.For, nodes.Macro, nodes.CallBlock, nodes.With)


def _undeclared(tree: nodes.Template) -> set[str]:
    """Names a template reads from its context; the cheap walk unless it binds names of its own."""
    if any(True for _ in tree.find_all(_BINDING_NODES)):
        from jinja2 import meta

        return set(meta.find_undeclared_variables(tree))
    return {n.name for n in tree.find_all(nodes.Name) if n.ctx == "load"}


def _ref(node: nodes.Node, root: str) -> tuple[str, nodes.Node] | None:
    """(name, node) for ``root.name`` or ``root['name']``."""
    if isinstance(node, nodes.Getattr) and isinstance(node.node, nodes.Name) and node.node.name == root:
        return node.attr, node
    if (
        isinstance(node, nodes.Getitem)
        and isinstance(node.node, nodes.Name)
        and node.node.name == root
        and isinstance(node.arg, nodes.Const)
        and isinstance(node.arg.value, str)
    ):
        return node.arg.value, node
    return None


def _check_names(ctx: _Context, step: StepInfo | None, field: Field, tree: nodes.Template) -> None:
    allowed = templating.CONTEXT_NAMES | ({"result"} if field.name == "until" else set())
    for name in sorted(_undeclared(tree) - allowed - _JINJA_GLOBALS):
        lineno = next((n.lineno for n in tree.find_all(nodes.Name) if n.name == name), 1)
        known = ", ".join(sorted(allowed))
        ctx.report_in(field, lineno, "unknown-name", f"{field.name}: unknown name '{name}' (known: {known})")
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        attr = getattr(node, "attr", None) or getattr(getattr(node, "arg", None), "value", None)
        if isinstance(attr, str) and attr.startswith("_"):
            ctx.report_in(
                field,
                node.lineno,
                "unsafe-attribute",
                f"{field.name}: attribute '{attr}' starts with _; the sandbox refuses it",
            )
        param = _ref(node, "params")
        if param is not None:
            ctx.used_params.add(param[0])
            if param[0] not in ctx.params:
                known = ", ".join(sorted(ctx.params)) or "none are declared"
                ctx.report_in(
                    field, node.lineno, "unknown-param", f"{field.name}: unknown param '{param[0]}' (params: {known})"
                )
        ref = _ref(node, "steps")
        if ref is not None and step is not None:
            _check_step_ref(ctx, step, field, ref[0], node)
        field_name = getattr(node, "attr", None)
        inner = _ref(node.node, "steps") if isinstance(node, nodes.Getattr) else None
        if inner is not None and field_name not in RESULT_FIELDS:  # steps.ID.FIELD
            ctx.report_in(
                field,
                node.lineno,
                "unknown-result-field",
                f"{field.name}: steps.{inner[0]}.{field_name} is not a result field "
                f"(known: {', '.join(sorted(RESULT_FIELDS))})",
                "warning",
            )


def _check_step_ref(ctx: _Context, step: StepInfo, field: Field, target: str, node: nodes.Node) -> None:
    other = ctx.order.get(target)
    if other is None:
        ctx.report_in(field, node.lineno, "unknown-step", f"{field.name}: no step '{target}' in this playbook")
        return
    if other.order > step.order or (other.order == step.order and field.name != "until"):
        when = "its own result" if other.order == step.order else f"'{target}', which runs later ({other.phase})"
        ctx.report_in(field, node.lineno, "forward-reference", f"{field.name}: step '{step.id}' reads {when}")


def _is_mutating(step: StepInfo) -> bool:
    explicit = step.raw.get("mutating")
    if isinstance(explicit, bool):
        return explicit
    action = next((a for a in ACTIONS if a in step.raw), None)
    if action is None:
        return False
    spec = step.raw[action]
    return default_mutating(step.phase, action, spec if isinstance(spec, Mapping) else {})


def _mutating(ctx: _Context) -> None:
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


def _approvals(ctx: _Context) -> None:
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


def _rollback(ctx: _Context) -> None:
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


def _params(ctx: _Context) -> None:
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


def _controls(ctx: _Context) -> None:
    for step in ctx.steps:
        if "until" in step.raw and not step.raw.get("retries"):
            ctx.report(
                (*step.path, "until"),
                "until-without-retries",
                f"step '{step.id}' has until: but no retries:, so it runs once",
                "warning",
                key=True,
            )


def _name(ctx: _Context) -> None:
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


def _unused(ctx: _Context) -> None:
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


def _host_commands(ctx: _Context) -> None:
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


def _secret_refs(text: str, secrets: Set[str]) -> list[tuple[str, int]]:
    """(param, line) of every secret param a template reads."""
    if "{" not in text:
        return []
    try:
        tree = templating.shell_environment().parse(text)
    except TemplateSyntaxError:  # reported by template-syntax
        return []
    found = []
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        ref = _ref(node, "params")
        if ref is not None and ref[0] in secrets:
            found.append((ref[0], node.lineno))
    return found


def _secrets_off_command_lines(ctx: _Context) -> None:
    secrets = {name for name, spec in ctx.params.items() if isinstance(spec, Mapping) and spec.get("secret") is True}
    if not secrets:
        return
    for step in ctx.steps:
        env = step.raw.get("env")
        carriers = {
            str(key)
            for key, value in (env.items() if isinstance(env, Mapping) else ())
            if isinstance(value, str) and _secret_refs(value, secrets)
        }
        for field in step_fields(step):
            if field.path[2] not in {"shell", "command"}:
                continue
            for param, lineno in _secret_refs(field.text, secrets):
                ctx.report_in(
                    field,
                    lineno,
                    "secret-on-command-line",
                    f"{field.name}: secret param '{param}' would be on the host's command line, readable by every "
                    "user there (ps); pass it in env: under the name the tool reads (PGPASSWORD, REDISCLI_AUTH, ...)",
                )
            if not carriers:
                continue
            if field.kind == "shell":
                hits = [(e.name, e.line, e.command) for e in exposures(field.text, carriers)]
            else:  # an argv item is not expanded, but sh -c '... $VAR' would be
                hits = [(name, 1, "") for name in sorted(carriers) if re.search(rf"\$\{{?{name}\b", field.text)]
            for name, lineno, command in hits:
                used = f" as an argument of {command}" if command else ""
                ctx.report_in(
                    field,
                    lineno,
                    "secret-on-command-line",
                    f"{field.name}: ${name} carries a secret param and is expanded{used}: every user of the "
                    "host can read it there (ps); let the tool read it from its environment, or pipe it to the "
                    "tool's stdin from printf (a shell builtin)",
                )

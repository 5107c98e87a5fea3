"""The rules about templates: syntax, the names a template may use, forward references, secrets on command lines."""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Mapping, Set

from jinja2 import TemplateSyntaxError, nodes

from irx import templating
from irx.commandline import exposures
from irx.rule_context import Context, Field, StepInfo, step_fields

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
_JINJA_GLOBALS = frozenset(templating.environment().globals) | {"true", "false", "none", "True", "False", "None"}


def templates(ctx: Context) -> None:
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


@dataclasses.dataclass(frozen=True)
class _Parsed:
    """What the rules need from one template source, found once per distinct source (a library repeats the
    same ``{{ params.x }}`` in many steps and files): its problem, or the names it reads (with the first
    line of each) and its attribute accesses, in source order."""

    problem: tuple[int, str, str] | None = None  # (line, rule, message without the field name)
    names: Mapping[str, int] = dataclasses.field(default_factory=dict)
    accesses: tuple[nodes.Node, ...] = ()


def _parse(ctx: Context, field: Field) -> _Parsed | None:
    if field.kind != "expression" and "{" not in field.text:
        return None  # plain text: nothing to parse or check
    source = "{{ (" + templating.expression_source(field.text) + ") }}" if field.kind == "expression" else field.text
    parsed = _parsed(field.kind == "shell", source)
    if parsed.problem is not None:
        lineno, rule, message = parsed.problem
        ctx.report_in(field, lineno, rule, f"{field.name}: {message}")
        return None
    return parsed


@functools.lru_cache(maxsize=8192)
def _parsed(shell: bool, source: str) -> _Parsed:
    env = templating.shell_environment() if shell else templating.environment()
    try:
        tree = env.parse(source)
    except TemplateSyntaxError as exc:
        return _Parsed(problem=(exc.lineno or 1, "template-syntax", exc.message or "syntax error"))
    # Unknown filters and tests, as Jinja's compiler would report them (without paying for compiling).
    for node in tree.find_all((nodes.Filter, nodes.Test)):
        known, kind = (env.filters, "filter") if isinstance(node, nodes.Filter) else (env.tests, "test")
        if node.name not in known:
            return _Parsed(problem=(node.lineno, "unknown-filter", f"No {kind} named '{node.name}'."))
    lines: dict[str, int] = {}
    for name in tree.find_all(nodes.Name):
        lines.setdefault(name.name, name.lineno)
    names = {name: lines.get(name, 1) for name in sorted(_undeclared(tree))}
    return _Parsed(names=names, accesses=tuple(tree.find_all((nodes.Getattr, nodes.Getitem))))


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


def _check_names(ctx: Context, step: StepInfo | None, field: Field, tree: _Parsed) -> None:
    allowed = templating.CONTEXT_NAMES | ({"result"} if field.name == "until" else set())
    for name, lineno in tree.names.items():
        if name in allowed or name in _JINJA_GLOBALS:
            continue
        known = ", ".join(sorted(allowed))
        ctx.report_in(field, lineno, "unknown-name", f"{field.name}: unknown name '{name}' (known: {known})")
    for node in tree.accesses:
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


def _check_step_ref(ctx: Context, step: StepInfo, field: Field, target: str, node: nodes.Node) -> None:
    other = ctx.order.get(target)
    if other is None:
        ctx.report_in(field, node.lineno, "unknown-step", f"{field.name}: no step '{target}' in this playbook")
        return
    if other.order > step.order or (other.order == step.order and field.name != "until"):
        when = "its own result" if other.order == step.order else f"'{target}', which runs later ({other.phase})"
        ctx.report_in(field, node.lineno, "forward-reference", f"{field.name}: step '{step.id}' reads {when}")


def _secret_refs(text: str, secrets: Set[str]) -> list[tuple[str, int]]:
    """(param, line) of every secret param a template reads."""
    if "{" not in text:
        return []
    parsed = _parsed(True, text)  # a template that does not parse is reported by template-syntax
    found = []
    for node in parsed.accesses:
        ref = _ref(node, "params")
        if ref is not None and ref[0] in secrets:
            found.append((ref[0], node.lineno))
    return found


def secrets_off_command_lines(ctx: Context) -> None:
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

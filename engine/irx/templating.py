"""Sandboxed Jinja2 for playbook templates and expressions.

One ``SandboxedEnvironment`` with ``StrictUndefined``. Shell steps are rendered with every ``{{ }}`` output
that is a string shell-quoted (numbers and booleans cannot inject and are written bare), so a parameter or
a step's output can never become shell syntax, whether or not the author remembered ``| quote``.
"""

from __future__ import annotations

import functools
import shlex
from typing import Any

from jinja2 import StrictUndefined, nodes
from jinja2.sandbox import SandboxedEnvironment

# Top-level names a template may use. ``result`` exists only in ``until`` (the step's own result).
CONTEXT_NAMES: frozenset[str] = frozenset({"params", "steps", "run", "host", "vars"})


class ShellQuoted(str):
    """A string already quoted for the shell; ``finalize`` leaves it alone."""

    __slots__ = ()


def shell_quote(value: Any) -> ShellQuoted:
    """The ``quote`` filter: one shell word, whatever the value holds."""
    if isinstance(value, ShellQuoted):
        return value
    if isinstance(value, list | tuple):
        return ShellQuoted(" ".join(shlex.quote(str(item)) for item in value))
    return ShellQuoted(shlex.quote(_plain(value)))


def _plain(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _finalize_shell(value: Any) -> Any:
    if isinstance(value, ShellQuoted) or isinstance(value, bool | int | float) or value is None:
        return _plain(value) if isinstance(value, bool) else value
    return shell_quote(value)


def _to_seconds(value: Any) -> float:
    from irx.model import parse_duration

    return parse_duration(value)


def _install(env: SandboxedEnvironment) -> SandboxedEnvironment:
    env.filters.update(
        quote=shell_quote,
        shell_quote=shell_quote,
        seconds=_to_seconds,
    )
    return env


@functools.cache
def environment() -> SandboxedEnvironment:
    """The environment for plain templates (http URLs, messages, module args) and expressions."""
    return _install(SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True))


@functools.cache
def shell_environment() -> SandboxedEnvironment:
    """The environment for ``shell`` steps: every interpolated string is shell-quoted."""
    return _install(
        SandboxedEnvironment(
            undefined=StrictUndefined,
            autoescape=False,
            keep_trailing_newline=True,
            finalize=_finalize_shell,
        )
    )


def expression_source(expr: str) -> str:
    """A bare expression from ``x > 0`` or ``{{ x > 0 }}`` (both forms are accepted, as in Ansible)."""
    text = expr.strip()
    if text.startswith("{{") and text.endswith("}}") and text.count("{{") == 1:
        return text[2:-2].strip()
    return text


def parse_expression(expr: str) -> nodes.Template:
    """The AST of an expression, wrapped so it parses as a template."""
    return environment().parse("{{ (" + expression_source(expr) + ") }}")

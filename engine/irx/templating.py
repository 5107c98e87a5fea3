"""Sandboxed Jinja2 for playbook templates and expressions.

One ``SandboxedEnvironment`` with ``StrictUndefined``. Shell steps are rendered with every ``{{ }}`` output
that is a string shell-quoted (numbers and booleans cannot inject and are written bare), so a parameter or
a step's output can never become shell syntax, whether or not the author remembered ``| quote``.

Rendering happens in a context of five names: ``params``, ``vars`` (the host's inventory variables),
``host`` (name, groups), ``run`` (id, started_at, severity, operator) and ``steps`` (earlier results).
Before a run, ``steps`` and the run's identity do not exist: :func:`template_refs` finds which names a
template reads, and :func:`render_partial` renders what is known and keeps the rest as its source, so a
plan shows a runtime decision as such instead of guessing it.
"""

from __future__ import annotations

import functools
import shlex
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from jinja2 import StrictUndefined, nodes
from jinja2.exceptions import SecurityError, TemplateSyntaxError, UndefinedError
from jinja2.sandbox import SandboxedEnvironment

from irx.errors import TemplateError

# Top-level names a template may use. ``result`` exists only in ``until`` (the step's own result).
CONTEXT_NAMES: frozenset[str] = frozenset({"params", "steps", "run", "host", "vars"})
# Names whose values exist only once the run is under way.
RUNTIME_ROOTS: frozenset[str] = frozenset({"steps", "result"})
RUNTIME_RUN_FIELDS: frozenset[str] = frozenset({"id", "started_at", "operator"})


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
    if isinstance(value, ShellQuoted | bool | int | float) or value is None:
        return _plain(value) if isinstance(value, bool) else value
    return shell_quote(value)


def _to_seconds(value: Any) -> float:
    from irx.model import parse_duration

    return parse_duration(value)


class Namespace(dict[str, Any]):
    """A top-level context mapping (``params``, ``vars``, ...) that names itself in undefined errors.

    ``hints`` explains, for a missing key, why it is missing (a param with no value, a param whose hosts
    disagree), so the error tells the engineer what to do rather than only what is absent.
    """

    __slots__ = ("_irx_hints", "_irx_path")

    def __init__(self, path: str, data: Mapping[str, Any], hints: Mapping[str, str] | None = None) -> None:
        super().__init__(data)
        self._irx_path = path
        self._irx_hints = {} if hints is None else hints


class IrxUndefined(StrictUndefined):
    """``StrictUndefined`` whose message says ``params.x is undefined`` rather than ``'dict object' ...``."""

    __slots__ = ()

    @property
    def _undefined_message(self) -> str:
        obj, name = self._undefined_obj, self._undefined_name
        if self._undefined_hint:
            return str(self._undefined_hint)
        if isinstance(obj, Namespace):
            hint = obj._irx_hints.get(name) if isinstance(name, str) else None
            return hint or f"{obj._irx_path}.{name} is undefined"
        if obj is not None and isinstance(name, str) and not _is_missing(obj):
            # jinja2's text quotes a type repr ("'dict object' has no attribute 'x'"); say which attribute.
            return f"{name!r} is undefined (no such key or attribute)"
        return str(super()._undefined_message)


def _is_missing(obj: Any) -> bool:
    from jinja2.utils import missing

    return obj is missing


class _Sandbox(SandboxedEnvironment):
    """The sandbox, where ``params.items`` or ``steps.x.values`` mean the data, not the dict method."""

    def getattr(self, obj: Any, attribute: str) -> Any:
        if isinstance(obj, dict) and attribute in obj:
            return obj[attribute]
        return super().getattr(obj, attribute)


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
    return _install(_Sandbox(undefined=IrxUndefined, autoescape=False, keep_trailing_newline=True))


@functools.cache
def shell_environment() -> SandboxedEnvironment:
    """The environment for ``shell`` steps: every interpolated string is shell-quoted."""
    return _install(
        _Sandbox(
            undefined=IrxUndefined,
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


# --- what a template reads ------------------------------------------------------------------------------


Ref = tuple[str, ...]  # ("params", "x"), ("host", "name"), or ("vars",) when the whole mapping is used


@dataclass(frozen=True)
class Refs:
    """The context paths one template or expression reads."""

    paths: frozenset[Ref]

    @property
    def runtime(self) -> bool:
        """Whether the value depends on something that exists only during a run."""
        return any(is_runtime_ref(path) for path in self.paths)

    def __or__(self, other: Refs) -> Refs:
        return Refs(self.paths | other.paths)

    def roots(self) -> frozenset[str]:
        return frozenset(path[0] for path in self.paths)


NO_REFS = Refs(frozenset())


def is_runtime_ref(path: Ref) -> bool:
    if path[0] in RUNTIME_ROOTS:
        return True
    return path[0] == "run" and (len(path) == 1 or path[1] in RUNTIME_RUN_FIELDS)


def _collect(node: nodes.Node, found: set[Ref]) -> None:
    roots = CONTEXT_NAMES | RUNTIME_ROOTS
    if isinstance(node, nodes.Getattr) and isinstance(node.node, nodes.Name) and node.node.name in roots:
        found.add((node.node.name, node.attr))
        return
    if (
        isinstance(node, nodes.Getitem)
        and isinstance(node.node, nodes.Name)
        and node.node.name in roots
        and isinstance(node.arg, nodes.Const)
        and isinstance(node.arg.value, str)
    ):
        found.add((node.node.name, node.arg.value))
        return
    if isinstance(node, nodes.Name) and node.name in roots:
        found.add((node.name,))
        return
    for child in node.iter_child_nodes():
        _collect(child, found)


@functools.lru_cache(maxsize=4096)
def template_refs(source: str) -> Refs:
    """The context paths a template reads (``{{ params.x }}`` -> ``("params", "x")``); syntax errors raise."""
    found: set[Ref] = set()
    _collect(_parse(source), found)
    return Refs(frozenset(found))


@functools.lru_cache(maxsize=4096)
def expression_refs(expr: str) -> Refs:
    """The context paths an expression (bare or in ``{{ }}``) reads."""
    found: set[Ref] = set()
    try:
        tree = parse_expression(expr)
    except TemplateSyntaxError as exc:
        raise TemplateError(f"syntax error: {exc.message}") from None
    _collect(tree, found)
    return Refs(frozenset(found))


def value_refs(value: Any) -> Refs:
    """The refs of every string template inside a value (str, list, dict), recursively."""
    found: set[Ref] = set()
    for text in iter_strings(value):
        found |= template_refs(text).paths
    return Refs(frozenset(found))


def iter_strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from iter_strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from iter_strings(item)


# --- rendering ------------------------------------------------------------------------------------------


def _parse(source: str) -> nodes.Template:
    try:
        return environment().parse(source)
    except TemplateSyntaxError as exc:
        raise TemplateError(f"syntax error on line {exc.lineno}: {exc.message}") from None


@functools.lru_cache(maxsize=4096)
def _compiled(source: str, shell: bool) -> Any:
    env = shell_environment() if shell else environment()
    try:
        return env.from_string(source)
    except TemplateSyntaxError as exc:
        raise TemplateError(f"syntax error on line {exc.lineno}: {exc.message}") from None


def _reason(exc: Exception) -> str:
    """One line saying why rendering failed."""
    if isinstance(exc, UndefinedError):
        return exc.message or "undefined value"
    if isinstance(exc, SecurityError):
        return f"refused by the sandbox: {exc}"
    text = " ".join(str(exc).split()) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"


def render(source: str, context: Mapping[str, Any], *, shell: bool = False) -> str:
    """``source`` rendered in ``context``; with ``shell`` (shell steps) every interpolated string is
    shell-quoted.

    Failures raise :class:`TemplateError` with a one-line reason; the caller prefixes step and field.
    """
    if "{" not in source:  # nothing to render: the common case for literal args
        return source
    template = _compiled(source, shell)
    try:
        return str(template.render(context))
    except TemplateError:
        raise
    except Exception as exc:  # any failure inside the sandbox is the template's, not irx's
        raise TemplateError(_reason(exc)) from None


def evaluate(expr: str | bool, context: Mapping[str, Any]) -> Any:
    """The value of an expression (bare or in ``{{ }}``); booleans are returned as they are."""
    if isinstance(expr, bool):
        return expr
    source = expression_source(expr)
    try:
        compiled = environment().compile_expression(source, undefined_to_none=False)
    except TemplateSyntaxError as exc:
        raise TemplateError(f"syntax error: {exc.message}") from None
    try:
        value = compiled(**context)
        if isinstance(value, StrictUndefined):
            value._fail_with_undefined_error()
    except TemplateError:
        raise
    except Exception as exc:
        raise TemplateError(_reason(exc)) from None
    return value


def truthy(value: Any) -> bool:
    """Ansible's reading of a condition's value: strings such as "false" and "no" are false."""
    if isinstance(value, str):
        return value.strip().lower() not in {"", "false", "no", "off", "0", "n", "f"}
    return bool(value)


@dataclass(frozen=True)
class Partial:
    """A rendering that may keep parts for run time: ``text`` with those parts as ``{{ source }}``."""

    text: str
    runtime: tuple[str, ...] = ()  # the expressions left for run time, as written


def render_partial(source: str, context: Mapping[str, Any], *, shell: bool = False) -> Partial:
    """Render what is known now; keep each part that needs run-time data as its source.

    The parts are the template's top-level ``{{ expr }}`` and whole ``{% if %}...{% endif %}`` (or
    ``for``...) regions: a region that reads run-time data is kept whole, since its output cannot be split
    into known and unknown pieces. A template that assigns variables (``{% set %}``) is kept whole too.
    """
    refs = template_refs(source)
    if not refs.runtime:
        return Partial(render(source, context, shell=shell))
    chunks = _chunks(source)
    if chunks is None:
        return Partial(source, (source,))
    out: list[str] = []
    runtime: list[str] = []
    for kind, text in chunks:
        if kind == "data":
            out.append(text)
            continue
        piece = "{{" + text + "}}" if kind == "expr" else text
        if not template_refs(piece).runtime:
            out.append(render(piece, context, shell=shell))
        elif kind == "expr":
            out.append("{{ " + text.strip() + " }}")
            runtime.append(text.strip())
        else:
            out.append(text)
            runtime.append(text)
    return Partial("".join(out), tuple(runtime))


# Block tags that open a region closed by their end tag; other tags (set, do, include...) are not split.
_REGION_TAGS = frozenset({"if", "for", "filter", "with", "autoescape", "call", "macro", "block"})


def _chunks(source: str) -> list[tuple[str, str]] | None:
    """``source`` as ("data", text), ("expr", inner text) and ("block", region source) pieces.

    None when the template cannot be split safely (``{% set %}`` and other statements, ``{% raw %}``).
    The lexer applies whitespace control (``{{-``) to the data tokens, so the pieces render as the whole.
    """
    pieces: list[tuple[str, str]] = []
    expr: list[str] | None = None
    region: list[str] | None = None
    depth = 0
    expect_tag = False
    for _, kind, value in environment().lexer.tokeniter(source, None):
        if region is not None:
            region.append(value)
            if kind == "block_begin":
                expect_tag = True
            elif expect_tag and kind == "name":
                expect_tag = False
                depth += 1 if value in _REGION_TAGS else -1 if value.startswith("end") else 0
            elif kind == "block_end" and depth == 0:
                pieces.append(("block", "".join(region)))
                region = None
            continue
        if kind == "data":
            pieces.append(("data", value))
        elif kind == "variable_begin":
            expr = []
        elif kind == "variable_end":
            pieces.append(("expr", "".join(expr or ())))
            expr = None
        elif expr is not None:
            expr.append(value)
        elif kind == "block_begin":
            region, depth, expect_tag = [value], 0, True
        elif kind in {"comment_begin", "comment", "comment_end", "linecomment"}:
            continue
        else:
            return None
    if region is not None:
        return None
    if any(kind == "block" and not _is_region(text) for kind, text in pieces):
        return None
    return pieces


def _is_region(text: str) -> bool:
    """Whether a block piece is a whole region (``{% if %}...{% endif %}``), not a lone statement."""
    for _, kind, value in environment().lexer.tokeniter(text, None):
        if kind == "name":
            return value in _REGION_TAGS
    return False


def render_value(value: Any, context: Mapping[str, Any]) -> tuple[Any, tuple[str, ...]]:
    """Every string in ``value`` (str, list, dict) rendered partially; the run-time expressions found."""
    runtime: list[str] = []

    def walk(item: Any) -> Any:
        if isinstance(item, str):
            part = render_partial(item, context)
            runtime.extend(part.runtime)
            return part.text
        if isinstance(item, Mapping):
            return {str(key): walk(val) for key, val in item.items()}
        if isinstance(item, list | tuple):
            return [walk(val) for val in item]
        return item

    return walk(value), tuple(runtime)


def unique(items: Iterable[str]) -> tuple[str, ...]:
    """``items`` without repeats, first occurrence first."""
    return tuple(dict.fromkeys(items))

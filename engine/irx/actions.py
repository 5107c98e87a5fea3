"""Every action kind in one table: what it renders, where it runs, whether it mutates, how people read it.

A step's action is rendered once into its *shown* form -- ``{"shell": "..."}``, ``{"http": {...}}``,
``{"module": "...", "args": {...}}`` plus ``env``/``chdir`` -- and that form is what everybody uses: the plan
shows it and hashes it (irx.approval), the run's gate shows and hashes the same form built from the same
rendering, the executors take their input from it, and ``lines`` is the one way it is described to a
person (plan text and Markdown, the approval prompt, the journal's plan summary, ``irx show``).

How a field renders is the caller's business (a plan renders with run-time parts kept as source, a run
renders everything, ``irx show`` renders nothing): it passes a ``Fields`` that knows. Adding an action
kind means adding one ``Kind`` to ``KINDS`` (and its schema).
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from irx.humanize import parse_duration, short_duration

RUN_TIME = "decided at run time"
READ_ONLY_HTTP_METHODS: frozenset[str] = frozenset({"GET", "HEAD", "OPTIONS"})


class StepLike(Protocol):
    """What rendering reads of a step (irx.model.Step)."""

    @property
    def id(self) -> str: ...
    @property
    def action(self) -> str: ...
    @property
    def spec(self) -> Any: ...
    @property
    def args(self) -> Mapping[str, Any]: ...
    @property
    def env(self) -> Mapping[str, str]: ...
    @property
    def chdir(self) -> str | None: ...


TextFn = Callable[[str, str, bool], str]  # (field name, template source, shell-quoted) -> text
ConditionFn = Callable[[str, "str | bool"], dict[str, Any]]  # (field name, expression) -> {"expr", ...}


def _bare_condition(name: str, expr: str | bool) -> dict[str, Any]:
    return {"expr": str(expr).lower() if isinstance(expr, bool) else str(expr)}


class Fields:
    """Renders the template fields of one step: ``text`` for one template, ``tree`` for data whose strings are
    templates, ``condition`` for an expression (by default only shown, not decided)."""

    def __init__(
        self,
        text: TextFn,
        condition: ConditionFn = _bare_condition,
        leaf: Callable[[Any], Any] = lambda value: value,
    ) -> None:
        self._text = text
        self._condition = condition
        self._leaf = leaf

    def text(self, name: str, source: str, *, shell: bool = False) -> str:
        return self._text(name, source, shell)

    def tree(self, name: str, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(name, value)
        if isinstance(value, Mapping):
            return {str(k): self.tree(f"{name}.{k}" if name else str(k), v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.tree(f"{name}[{i}]", v) for i, v in enumerate(value)]
        return self._leaf(value)

    def condition(self, name: str, expr: str | bool) -> dict[str, Any]:
        return self._condition(name, expr)


AS_WRITTEN = Fields(lambda name, source, shell: source)  # ``irx show``: the action as the playbook has it


@dataclass(frozen=True)
class Kind:
    """One action kind. ``render`` gives the shown form (without env/chdir, which every kind takes alike);
    ``lines`` reads a shown form to a person; ``payload`` is a control-node executor's input, from the shown
    form (host kinds: the HostTask takes ``shown[name]`` and ``args``); ``shown`` is the shown form again from
    a payload (what a run's gate describes); ``mutating`` the default outside diagnose, from the spec;
    ``gated`` whether it asks for approval by default."""

    name: str
    on_hosts: bool
    render: Callable[[StepLike, Fields], dict[str, Any]]
    lines: Callable[[Mapping[str, Any]], list[str]]
    mutating: Callable[[Any], bool]
    payload: Callable[[StepLike, Mapping[str, Any]], Any] | None = None
    shown: Callable[[StepLike, Any], dict[str, Any]] | None = None
    gated: bool = False  # needs approval unless the step says otherwise


def value_text(value: Any) -> str:
    """A value as one readable word: strings bare (an empty or blank one quoted), the rest as JSON."""
    if isinstance(value, str) and value.strip():
        return value
    return json.dumps(value, ensure_ascii=False)


def condition_text(condition: Mapping[str, Any]) -> str:
    if condition.get("decided") == "run time":
        return f"{condition['expr']}  [{RUN_TIME}]"
    if "value" in condition:
        return f"{condition['expr']}  [now: {str(condition['value']).lower()}]"
    return str(condition["expr"])


# -- the kinds: render, lines ------------------------------------------------------------------------------


def _shell_lines(action: Mapping[str, Any]) -> list[str]:
    body = str(action["shell"]).rstrip("\n").split("\n")
    return ["$ " + body[0], *("  " + line for line in body[1:])]


def _module_lines(action: Mapping[str, Any]) -> list[str]:
    args = " ".join(f"{k}={value_text(v)}" for k, v in (action.get("args") or {}).items())
    return [f"{action['module']} {args}".rstrip()]


def _render_http(step: StepLike, fields: Fields) -> dict[str, Any]:
    spec = step.spec
    http: dict[str, Any] = {"method": spec.get("method", "GET"), "url": fields.text("http.url", spec["url"])}
    if "headers" in spec:
        http["headers"] = fields.tree("http.headers", dict(spec["headers"]))
    if "body" in spec:
        http["body"] = fields.text("http.body", spec["body"])
    if "json" in spec:
        http["json"] = fields.tree("http.json", spec["json"])
    if "expect" in spec:  # not a template: what the answer must be, as written
        http["expect"] = _plain(spec["expect"])
    if "timeout" in spec:
        http["timeout"] = parse_duration(spec["timeout"])
    if "verify_tls" in spec:
        http["verify_tls"] = spec["verify_tls"]
    return {"http": http}


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _http_lines(action: Mapping[str, Any]) -> list[str]:
    http = action["http"]
    expect = http.get("expect", {})
    line = f"{http['method']} {http['url']}"
    if "status" in expect:
        line += f" -> expect {value_text(expect['status'])}"
    lines = [line, *(f"  {name}: {value}" for name, value in http.get("headers", {}).items())]
    if "body" in http:
        lines.append("  body: " + http["body"].replace("\n", " "))
    if "json" in http:
        lines.append("  json: " + json.dumps(http["json"], ensure_ascii=False))
    lines.extend(f"  expect {key}: {value_text(expect[key])}" for key in ("json", "body") if key in expect)
    return lines


def _render_assert(step: StepLike, fields: Fields) -> dict[str, Any]:
    spec = step.spec
    that = spec["that"] if isinstance(spec["that"], list) else [spec["that"]]
    action: dict[str, Any] = {"assert": [fields.condition(f"assert.that[{i}]", e) for i, e in enumerate(that)]}
    if "message" in spec:
        action["message"] = fields.text("assert.message", spec["message"])
    return action


def _assert_lines(action: Mapping[str, Any]) -> list[str]:
    lines = ["assert " + condition_text(condition) for condition in action["assert"]]
    if "message" in action:
        lines.append("  else: " + action["message"])
    return lines


def _assert_shown(step: StepLike, spec: Any) -> dict[str, Any]:
    """An assert's conditions are decided when it runs, after its gate: the gate shows them as written."""
    that = spec["that"] if isinstance(spec["that"], list) else [spec["that"]]
    shown: dict[str, Any] = {"assert": [_bare_condition("", expr) for expr in that]}
    if "message" in spec:
        shown["message"] = spec["message"]
    return shown


def _render_notify(step: StepLike, fields: Fields) -> dict[str, Any]:
    action = {"notify": fields.text("notify.message", step.spec["message"])}
    if "channel" in step.spec:
        action["channel"] = step.spec["channel"]
    return action


def _notify_lines(action: Mapping[str, Any]) -> list[str]:
    channel = f" #{action['channel']}" if "channel" in action else ""
    return [f"notify{channel}: " + action["notify"].strip().replace("\n", " / ")]


def _always(value: bool) -> Callable[[Any], bool]:
    return lambda spec: value


KINDS: Mapping[str, Kind] = {
    kind.name: kind
    for kind in (
        Kind(
            "shell",
            on_hosts=True,
            render=lambda step, f: {"shell": f.text("shell", step.spec, shell=True)},
            lines=_shell_lines,
            mutating=_always(True),
        ),
        Kind(
            "command",
            on_hosts=True,
            render=lambda step, f: {"command": [f.text(f"command[{i}]", a) for i, a in enumerate(step.spec)]},
            lines=lambda action: ["argv: " + shlex.join(action["command"])],
            mutating=_always(True),
        ),
        Kind(
            "module",
            on_hosts=True,
            render=lambda step, f: {"module": step.spec, "args": f.tree("args", dict(step.args))},
            lines=_module_lines,
            mutating=_always(True),
        ),
        Kind(
            "http",
            on_hosts=False,
            render=_render_http,
            lines=_http_lines,
            mutating=lambda spec: str(spec.get("method", "GET")).upper() not in READ_ONLY_HTTP_METHODS,
            payload=lambda step, shown: shown["http"],
            shown=lambda step, payload: {"http": payload},
        ),
        Kind(
            "wait",
            on_hosts=False,
            render=lambda step, f: {"wait": parse_duration(step.spec)},
            lines=lambda action: [f"wait {short_duration(action['wait'])}"],
            mutating=_always(False),
            payload=lambda step, shown: shown["wait"],
            shown=lambda step, payload: {"wait": parse_duration(payload)},
        ),
        Kind(
            "assert",
            on_hosts=False,
            render=_render_assert,
            lines=_assert_lines,
            mutating=_always(False),
            payload=lambda step, shown: step.spec,  # decided, and its message rendered, only when it runs
            shown=_assert_shown,
        ),
        Kind(
            "approve",
            on_hosts=False,
            render=lambda step, f: {"approve": f.text("approve.message", step.spec["message"])},
            lines=lambda action: ["approve: " + action["approve"].strip()],
            mutating=_always(False),
            payload=lambda step, shown: {**step.spec, "message": shown["approve"]},
            shown=lambda step, payload: {"approve": payload["message"]},
            gated=True,
        ),
        Kind(
            "notify",
            on_hosts=False,
            render=_render_notify,
            lines=_notify_lines,
            mutating=_always(False),
            payload=lambda step, shown: {**step.spec, "message": shown["notify"]},
            shown=lambda step, payload: {**_render_notify(step, AS_WRITTEN), "notify": payload["message"]},
        ),
    )
}
ACTIONS: tuple[str, ...] = tuple(KINDS)
HOST_ACTIONS: frozenset[str] = frozenset(name for name, kind in KINDS.items() if kind.on_hosts)


# -- using the table ---------------------------------------------------------------------------------------------


def render(step: StepLike, fields: Fields) -> dict[str, Any]:
    """The shown form of ``step``'s action, its templates rendered by ``fields``."""
    action = KINDS[step.action].render(step, fields)
    if step.env:
        action["env"] = fields.tree("env", dict(step.env))
    if step.chdir is not None:
        action["chdir"] = fields.text("chdir", step.chdir)
    return action


def payload(step: StepLike, action: Mapping[str, Any]) -> Any:
    """What a control-node executor takes for this rendered action."""
    make = KINDS[step.action].payload
    assert make is not None, f"{step.action} runs on hosts"
    return make(step, action)


def shown(step: StepLike, payload: Any) -> dict[str, Any]:
    """The shown form of a control-node action from its executor's input (``payload``)."""
    make = KINDS[step.action].shown
    assert make is not None, f"{step.action} runs on hosts"
    return make(step, payload)


def host_action(
    kind: str, spec: Any, args: Mapping[str, Any], env: Mapping[str, Any], chdir: str | None
) -> dict[str, Any]:
    """The shown form of a host action from its executor's input (a HostTask's fields)."""
    action: dict[str, Any] = {kind: list(spec) if isinstance(spec, list | tuple) else spec}
    if kind == "module" or args:
        action["args"] = dict(args)
    if env:
        action["env"] = dict(env)
    if chdir is not None:
        action["chdir"] = chdir
    return action


def lines(action: Mapping[str, Any]) -> list[str]:
    """An action as the lines an engineer reads: ``$ command``, ``GET url``, ``module k=v``, then env and chdir."""
    kind = next((name for name in ACTIONS if name in action), None)
    out = KINDS[kind].lines(action) if kind is not None else []
    if action.get("env"):
        out.append("env " + " ".join(f"{k}={value_text(v)}" for k, v in action["env"].items()))
    if action.get("chdir") is not None:
        out.append("in " + action["chdir"])
    return out


def text(action: Mapping[str, Any]) -> str:
    """The action as a block of lines: what an approver reads."""
    return "\n".join(lines(action))


def one_line(action: Mapping[str, Any] | None, limit: int = 300) -> str:
    """The action in one line (a journal's plan summary, ``irx show``): its lines joined, cut at ``limit``."""
    joined = " / ".join(line.strip() for line in lines(action or {}) if line.strip())
    return joined if len(joined) <= limit else joined[: limit - 1] + "…"


def default_mutating(phase: str, action: str, spec: Any) -> bool:
    """Whether a step mutates when it does not say: never in diagnose, else as its kind says."""
    return phase != "diagnose" and KINDS[action].mutating(spec)

"""One plan step: its when decided or left for run time, its action rendered once per distinct set of inputs
(irx.actions), hosts with the same rendering grouped."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from irx import actions, templating
from irx.errors import TemplateError
from irx.inventory import Inventory
from irx.model import Playbook, Step, Target
from irx.params import REDACTED, ParamSet, freeze
from irx.params import plain_data as _plain
from irx.redact import Redactor
from irx.templating import Namespace, Refs

WHEN_HINT = "when: is decided once per step, on the control node: host and vars are not available in it"
CONTROL_NODE = "control node"


def _is_set(value: Any) -> bool:
    return value is not None and (not isinstance(value, str) or bool(value.strip()))


class _AnyHint(Mapping[str, str]):
    """The same hint for every missing name (``host.*`` in a step on the control node)."""

    def __init__(self, text: str) -> None:
        self._text = text

    def __getitem__(self, key: str) -> str:
        return self._text

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


class _Planner:
    """Renders the steps of one plan; holds what all steps share."""

    def __init__(
        self,
        playbook: Playbook,
        inv: Inventory,
        params: ParamSet,
        targets: Mapping[str, tuple[Target, tuple[str, ...]]],
        redactor: Redactor,
    ) -> None:
        self.playbook = playbook
        self.inv = inv
        self.params = params
        self.targets = targets
        self.redactor = redactor
        self.unlimited = {name: inv.hosts(t.hosts, limited=False) for name, (t, _) in targets.items()}
        self.secret_names = frozenset(name for name, p in playbook.params.items() if p.secret)
        self.run = Namespace(
            "run",
            {"severity": playbook.severity},
            {key: f"run.{key} is known only when the run starts" for key in templating.RUNTIME_RUN_FIELDS},
        )

    # contexts

    def _params(self, values: Mapping[str, Any], hints: Mapping[str, str], shown: bool) -> Namespace:
        if shown and self.secret_names:
            # An empty secret is no secret (the Redactor leaves it too): shown as it is, so that what the plan
            # shows, and its approval hashes, are what a run's gate shows and hashes.
            values = {k: (REDACTED if k in self.secret_names and _is_set(v) else v) for k, v in values.items()}
        return Namespace("params", values, hints)

    def control_context(self, *, shown: bool, where: str = "") -> dict[str, Any]:
        where = where or "this step runs on the control node: host and vars exist only in steps with on:"
        return {
            "params": self._params(self.params.for_run(), self.params.hints, shown),
            "run": self.run,
            "host": Namespace("host", {}, _AnyHint(where)),
            "vars": Namespace("vars", {}, _AnyHint(where)),
        }

    def host_context(self, host: str, refs: Refs, *, shown: bool) -> dict[str, Any]:
        hostvars = self.inv.host_vars(host)
        names = {path[1] for path in refs.paths if path[0] == "vars" and len(path) > 1}
        values = dict(hostvars) if ("vars",) in refs.paths else {}
        for name in names:
            if name in hostvars:
                values[name] = self.inv.value(host, name)
        return {
            "params": self._params(self.params.for_host(host), self.params.host_hints(), shown),
            "run": self.run,
            "host": Namespace("host", {"name": host, "groups": list(self.inv.host_groups(host))}),
            "vars": Namespace("vars", values, {}),
        }

    def _shown_context(self, host: str, refs: Refs, shown: bool) -> dict[str, Any]:
        return self.host_context(host, refs, shown=shown)

    def host_key(self, host: str, refs: Refs) -> tuple[Any, ...]:
        """What a host contributes to a step's rendering: hosts with equal keys render the same."""
        key: list[Any] = []
        for path in sorted(refs.paths):
            root, rest = path[0], path[1:]
            if root == "params":
                names = [rest[0]] if rest else sorted(self.params.per_host)
                for name in names:
                    if self.params.varies(name):
                        found = self.params.host_value(name, host)
                        key.append(None if found is None else freeze(found.value))
            elif root == "vars" and rest:
                hostvars = self.inv.host_vars(host)
                key.append(freeze(self.inv.value(host, rest[0])) if rest[0] in hostvars else ("undefined",))
            elif root == "host" and rest == ("groups",):
                key.append(self.inv.host_groups(host))
            elif root in {"vars", "host"}:
                return (host,)  # the host's name or all its variables: unique to it
        return tuple(key)

    # steps

    def step(self, index: int, step: Step) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "index": index,
            "id": step.id,
            "name": step.name,
            "phase": step.phase,
            "action": step.action,
            "mutating": step.mutating,
            "approval": {"required": step.approval_required, "reason": step.approval_reason},
            "controls": _controls(step, self.targets.get(step.on) if step.on else None),
            "when": _condition(step.when),
            "until": _condition(step.until),
        }
        on_hosts = step.runs_on_hosts and step.on is not None
        if on_hosts:
            target, hosts = self.targets[step.on]  # type: ignore[index]
            entry["on"] = step.on
            entry["target"] = {"name": step.on, "pattern": target.hosts, "hosts": len(hosts)}
        else:
            hosts = ()
            entry["on"] = CONTROL_NODE
            entry["target"] = None
        runtime: tuple[str, ...] = ()
        if not self._runs(step, entry):
            entry["renderings"] = []
            entry["skipped"] = [{"hosts": list(hosts) if on_hosts else None, "reason": _skip_reason(step)}]
        elif on_hosts:
            runtime = self._host_step(step, hosts, entry)
        else:
            action, runtime = self._action(step, lambda shown: self.control_context(shown=shown))
            entry["renderings"] = [{"hosts": None, "action": action}]
            entry["skipped"] = []
        found = [c["expr"] for c in (entry["until"], entry["when"]) if c is not None and c["decided"] == "run time"]
        entry["runtime"] = list(templating.unique([*found, *runtime]))
        return entry

    def _host_step(self, step: Step, hosts: tuple[str, ...], entry: dict[str, Any]) -> tuple[str, ...]:
        """Render a host step once per distinct set of inputs; group the hosts by rendering."""
        if not hosts:
            entry["renderings"] = []
            entry["skipped"] = [{"hosts": [], "reason": "no host of the target is within --limit"}]
            return ()
        refs = _step_refs(step)
        by_key: dict[tuple[Any, ...], list[str]] = {}
        for host in hosts:
            by_key.setdefault(self.host_key(host, refs), []).append(host)
        renderings: dict[Any, dict[str, Any]] = {}
        runtime: list[str] = []
        for members in by_key.values():
            action, found = self._action(step, functools.partial(self._shown_context, members[0], refs))
            runtime.extend(found)
            group = renderings.setdefault(freeze(action), {"hosts": [], "action": action})
            group["hosts"].extend(members)
        order = {host: position for position, host in enumerate(hosts)}
        groups = sorted(renderings.values(), key=lambda g: order[g["hosts"][0]])
        for group in groups:
            group["hosts"].sort(key=order.__getitem__)
        entry["renderings"] = groups
        entry["skipped"] = []
        return tuple(runtime)

    def _runs(self, step: Step, entry: dict[str, Any]) -> bool:
        """Whether ``when`` lets the step run; True when it is decided at run time.

        As at run time, ``when`` is evaluated once per step on the control node (run-level params, no
        ``host`` or ``vars``), not per host: see docs/design.md.
        """
        condition = entry["when"]
        if condition is None or condition["decided"] == "run time":
            return True
        try:
            context = self.control_context(shown=False, where=WHEN_HINT)
            value = templating.truthy(templating.evaluate(step.when, context))  # type: ignore[arg-type]
        except TemplateError as exc:
            raise TemplateError(f"step {step.id}: when: {exc}") from None
        condition["value"] = value
        return value

    def _action(self, step: Step, context: Callable[[bool], dict[str, Any]]) -> tuple[dict[str, Any], tuple[str, ...]]:
        """The rendered action with secrets shown as ******, and the expressions left for run time.

        Rendered with secret params replaced by ****** first, so no filter can turn a secret into
        something the redactor would not recognise. A template that cannot render with the stand-in (an
        ``| int`` on a secret) is rendered with the real value and redacted instead.
        """
        try:
            return render_action(step, context(True))
        except TemplateError:
            if not self.secret_names:
                raise
        action, runtime = render_action(step, context(False))
        return self.redactor.redact(action), runtime


def _step_refs(step: Step) -> Refs:
    """What a host step's action reads (``when`` is decided once for all hosts, so it is not here)."""
    refs = templating.value_refs([step.spec] if step.action != "wait" else [])
    return refs | templating.value_refs([dict(step.args), dict(step.env), step.chdir or ""])


def _condition(expr: str | bool | None) -> dict[str, Any] | None:
    if expr is None:
        return None
    if isinstance(expr, bool):
        return {"expr": str(expr).lower(), "decided": "now"}
    refs = templating.expression_refs(expr)
    source = templating.expression_source(expr)
    return {"expr": source, "decided": "run time" if refs.runtime else "now"}


def _skip_reason(step: Step) -> str:
    source = step.when if isinstance(step.when, bool) else templating.expression_source(str(step.when))
    return f"when: {str(source).lower() if isinstance(source, bool) else source} is false"


def _controls(step: Step, target: tuple[Target, tuple[str, ...]] | None) -> dict[str, Any]:
    controls: dict[str, Any] = {"on_failure": step.on_failure}
    if step.retries:
        controls["retries"] = step.retries
    if step.delay:
        controls["delay"] = step.delay
    if step.timeout is not None:
        controls["timeout"] = step.timeout
    if step.become:
        controls["become"] = True
    if step.parse is not None:
        controls["parse"] = step.parse.format
    if target is not None:
        if target[0].serial is not None:
            controls["serial"] = target[0].serial
        if target[0].max_fail_percentage:
            controls["max_fail_percentage"] = target[0].max_fail_percentage
    return controls


# --- rendering one action -------------------------------------------------------------------------------


class _Rendering:
    """Renders the fields of one step for a plan (irx.actions.Fields): run-time parts kept as source and
    collected, step and field named in every error."""

    def __init__(self, step: Step, context: Mapping[str, Any]) -> None:
        self.step = step
        self.context = context
        self.runtime: list[str] = []
        self.fields = actions.Fields(self.text, self.condition, _plain)

    def text(self, name: str, source: str, shell: bool) -> str:
        try:
            part = templating.render_partial(source, self.context, shell=shell)
        except TemplateError as exc:
            raise TemplateError(f"step {self.step.id}: {name}: {exc}") from None
        self.runtime.extend(part.runtime)
        return part.text

    def condition(self, name: str, expr: str | bool) -> dict[str, Any]:
        if isinstance(expr, bool):
            return {"expr": str(expr).lower(), "value": expr}
        source = templating.expression_source(expr)
        if templating.expression_refs(expr).runtime:
            self.runtime.append(source)
            return {"expr": source, "decided": "run time"}
        try:
            value = templating.truthy(templating.evaluate(expr, self.context))
        except TemplateError as exc:
            raise TemplateError(f"step {self.step.id}: {name}: {exc}") from None
        return {"expr": source, "value": value}


def render_action(step: Step, context: Mapping[str, Any]) -> tuple[dict[str, Any], tuple[str, ...]]:
    """The shown form of ``step``'s action rendered in ``context`` (irx.actions), and the expressions left
    for run time."""
    rendering = _Rendering(step, context)
    return actions.render(step, rendering.fields), tuple(rendering.runtime)

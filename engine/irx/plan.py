"""The plan: every step of a playbook, in order, rendered for the hosts it would run on -- and its hash.

A plan is what irx *would* do, computed without touching any host: the inventory resolves each target,
params are resolved per host, and every action is rendered in the sandbox. What only a run can know --
earlier steps' results (``steps.*``), the run's id, start time and operator -- is not guessed: conditions
that read it are marked "decided at run time" and the template parts that read it are kept as source.
As in a run, ``when`` is decided once per step on the control node; a ``when`` that needs no run-time data
is decided now, and a step it rules out is shown as skipped.

Hosts whose inputs are the same render the same, so rendering is done once per distinct set of inputs a
step actually reads (the values of the params and variables it names), not once per host: a step that
reads only run-wide params renders once for 10,000 hosts. Hosts with identical renderings are grouped.

The plan hash is ``sha256`` over the canonical JSON (sorted keys, no spaces, UTF-8) of the plan body:
the secrets in it are already ``******``, so the hash reveals nothing and changing a secret does not
change it (the approver never sees a secret either). File paths and warnings sit outside the body, so
the same playbook, inventory content, limit and params give the same hash on any machine.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from irx import actions, templating
from irx.actions import RUN_TIME, condition_text, value_text
from irx.approval import short
from irx.errors import ExitCode, InventoryError, IrxError, TemplateError
from irx.humanize import short_duration
from irx.inventory import Inventory, Vault, vaulted_values
from irx.model import PHASES, Playbook, Step, Target
from irx.params import ANSIBLE_SECRET_VARS, REDACTED, ParamSet, Supplied, freeze
from irx.params import plain_data as _plain
from irx.redact import Redactor
from irx.templating import Namespace, Refs

FORMATS: tuple[str, ...] = ("text", "json", "markdown")
# Distinct renderings of one step shown in text and markdown; JSON always has them all.
TEXT_GROUPS = 4
MARKDOWN_GROUPS = 10
WHEN_HINT = "when: is decided once per step, on the control node: host and vars are not available in it"
CONTROL_NODE = "control node"
action_line = actions.one_line  # a rendered action in one line (the journal's plan summary)


def plan_command(
    name: str,
    *,
    inventory: str | None = None,
    limit: str | None = None,
    extra_vars: Sequence[str] = (),
    fmt: str = "text",
    playbook_dir: Path | None = None,
    environ: Mapping[str, str] | None = None,
    vault: Vault | None = None,
) -> int:
    """``irx plan``: load the playbook, the inventory and the params, print the plan."""
    import click

    from irx.inventory import load_inventory
    from irx.library import find_playbook
    from irx.loader import load_playbook
    from irx.params import parse_extra_vars

    playbook = load_playbook(find_playbook(name, playbook_dir))
    supplied = parse_extra_vars(extra_vars)  # cheap mistakes first, before Ansible's start-up
    inv = load_inventory(inventory, limit, vault)
    plan = build_plan(playbook, inv, supplied, os.environ if environ is None else environ)
    for warning in plan.warnings:
        click.echo(f"irx: warning: {warning}", err=True)
    click.echo(render(plan, fmt), nl=False)
    return ExitCode.OK


# --- the plan -------------------------------------------------------------------------------------------


@dataclass
class Plan:
    """A plan body (the hashed part), its hash, and what is shown beside it.

    ``params`` and ``targets`` are what the plan was computed from (not serialized): a run executes
    with exactly these instead of resolving them a second time.
    """

    body: dict[str, Any]
    hash: str
    sources: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    params: ParamSet | None = None
    targets: dict[str, tuple[str, ...]] = field(default_factory=dict)
    secrets: list[Any] = field(default_factory=list)

    def to_json_data(self) -> dict[str, Any]:
        return {
            "apiVersion": "irx/v1",
            "kind": "Plan",
            "hash": self.hash,
            "sources": self.sources,
            "warnings": self.warnings,
            "plan": self.body,
        }


def canonical_json(data: Any) -> bytes:
    """The bytes a plan hash is taken over: sorted keys, no whitespace, UTF-8."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def plan_hash(body: Mapping[str, Any]) -> str:
    return "sha256:" + hashlib.sha256(canonical_json(body)).hexdigest()


def build_plan(
    playbook: Playbook,
    inv: Inventory,
    supplied: Mapping[str, Supplied],
    environ: Mapping[str, str],
    targets: Mapping[str, tuple[Target, tuple[str, ...]]] | None = None,
) -> Plan:
    """The plan of ``playbook`` on ``inv`` (with its ``--limit``) and the given params; ``targets`` when the
    caller has already resolved them (``resolve_targets``)."""
    from irx.params import resolve

    targets = dict(targets) if targets is not None else resolve_targets(playbook, inv)
    # The hosts this plan touches: its targets' (a playbook without targets: the whole, limited inventory).
    targeted = _union(hosts for _, hosts in targets.values()) if targets else inv.hosts("all")

    def lookup(host: str, var: str) -> tuple[bool, Any]:
        if var not in inv.host_vars(host):
            return False, None
        return True, inv.value(host, var)

    params = resolve(playbook, supplied, targeted, lookup, environ)
    secrets = [*params.secret_values(), *_connection_secrets(inv, targeted, environ)]
    redactor = Redactor(secrets)
    try:
        planner = _Planner(playbook, inv, params, targets, redactor)
        steps = [planner.step(index, step) for index, step in enumerate(playbook.steps, start=1)]
    except IrxError as exc:
        raise type(exc)(redactor.redact_text(str(exc))) from None
    body = {
        "playbook": {"name": playbook.name, "title": playbook.title, "severity": playbook.severity},
        "inventory": {"name": inv.name, "limit": inv.limit, "hosts": len(targeted)},
        "params": _params_section(playbook, params),
        "targets": {
            name: _target_section(target, hosts, planner.unlimited[name]) for name, (target, hosts) in targets.items()
        },
        "steps": steps,
    }
    body = redactor.redact(body)
    _approval_hashes(playbook, body["steps"])
    return Plan(
        body=body,
        hash=plan_hash(body),
        sources={"playbook": str(playbook.path), "inventory": inv.source},
        warnings=[
            *(f"inventory: {redactor.redact_text(text)}" for text in inv.warnings),
            *_inline_secret_warnings(playbook, supplied),
        ],
        params=params,
        targets={name: hosts for name, (_, hosts) in targets.items()},
        secrets=secrets,
    )


def _approval_hashes(playbook: Playbook, steps: list[dict[str, Any]]) -> None:
    """The approval hash of each gated host step whose rendering is known before the run (no run-time
    values): the hash its gate will show, which ``--approve STEP@HASH`` may carry (irx.approval)."""
    from irx.approval import digest, host_form

    for step, entry in zip(playbook.steps, steps, strict=True):
        if not (step.approval_required and step.runs_on_hosts and entry["renderings"]) or _step_refs(step).runtime:
            continue  # (a when: decided at run time does not change what the step would run)
        forms = [
            (host, host_form(step.action, group["action"], step.become, step.timeout))
            for group in entry["renderings"]
            for host in group["hosts"]
        ]
        entry["approval"]["hash"] = digest(forms)


def _inline_secret_warnings(playbook: Playbook, supplied: Mapping[str, Supplied]) -> list[str]:
    """A secret given as ``-e NAME=VALUE`` sits in irx's own command line, which ``ps`` shows to every user
    of the control node: say so, and how to pass it instead."""
    warnings = []
    for name, item in supplied.items():
        param = playbook.params.get(name)
        if param is not None and param.secret and item.source == "-e":
            instead = f"the environment variable {param.env} or " if param.env else ""
            warnings.append(
                f"param {name} is secret, and -e puts it in irx's command line, visible to every user of this "
                f"machine (ps); pass it in {instead}a file (-e @FILE)"
            )
    return warnings


def resolve_targets(playbook: Playbook, inv: Inventory) -> dict[str, tuple[Target, tuple[str, ...]]]:
    targets: dict[str, tuple[Target, tuple[str, ...]]] = {}
    for name, target in playbook.targets.items():
        if not inv.hosts(target.hosts, limited=False):
            raise InventoryError(
                f"target {name} ({target.hosts}) matches no host in inventory {inv.name}; "
                f"its groups: {inv.groups_summary()}"
            )
        targets[name] = (target, inv.hosts(target.hosts))
    return targets


def _union(groups: Iterable[tuple[str, ...]]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for hosts in groups:
        seen.update(dict.fromkeys(hosts))
    return tuple(seen)


def _connection_secrets(inv: Inventory, hosts: Sequence[str], environ: Mapping[str, str]) -> list[Any]:
    """Connection and become passwords, every vault-encrypted value of the hosts, the vault and become
    passwords the operator gave: masked wherever they appear."""
    found: list[Any] = []
    for host in hosts:
        hostvars = inv.host_vars(host)
        found.extend(hostvars[name] for name in ANSIBLE_SECRET_VARS if name in hostvars)
    return [*found, *vaulted_values(inv, hosts), *inv.vault.secrets(environ)]


def _params_section(playbook: Playbook, params: ParamSet) -> dict[str, Any]:
    section: dict[str, Any] = {}
    for name, param in playbook.params.items():
        entry: dict[str, Any] = {"type": param.type, "secret": param.secret}
        run = params.run.get(name)
        if run is not None:
            entry["value"] = REDACTED if param.secret else _plain(run.value)
            entry["source"] = run.source
        else:
            entry["value"] = None
            entry["source"] = None
        own = params.per_host.get(name)
        if own:
            groups: dict[Any, dict[str, Any]] = {}
            for host, item in own.items():
                key = freeze(item.value)
                if key not in groups:
                    value = REDACTED if param.secret else _plain(item.value)
                    groups[key] = {"hosts": [], "value": value, "source": item.source}
                groups[key]["hosts"].append(host)
            entry["per_host"] = list(groups.values())
        section[name] = entry
    return section


def _target_section(target: Target, hosts: tuple[str, ...], all_hosts: tuple[str, ...]) -> dict[str, Any]:
    section: dict[str, Any] = {"pattern": target.hosts, "hosts": list(hosts)}
    if len(all_hosts) != len(hosts):
        section["excluded_by_limit"] = len(all_hosts) - len(hosts)
    if target.serial is not None:
        section["serial"] = target.serial
    if target.max_fail_percentage:
        section["max_fail_percentage"] = target.max_fail_percentage
    return section


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


# --- output ---------------------------------------------------------------------------------------------


def render(plan: Plan, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(plan.to_json_data(), indent=2, ensure_ascii=False) + "\n"
    if fmt == "markdown":
        return _Markdown(plan).render()
    return _Text(plan).render()


_NUMBERED = re.compile(r"^(.*?)(\d+)(\D*)$")


def compress_hosts(hosts: Sequence[str]) -> list[str]:
    """Host names with numbered runs folded into Ansible ranges: web01..web20 -> ``web[01:20]``.

    A run folds only what Ansible's range would expand back to exactly: ``[01:20]`` (zero-padded, every
    number of that width) or ``[9:12]`` (no padding). Names keep the order their shape first appears in.
    """
    shapes: dict[tuple[str, str], list[str]] = {}
    order: list[tuple[str, str] | str] = []
    for host in hosts:
        match = _NUMBERED.match(host)
        if match is None:
            order.append(host)
            continue
        prefix, digits, suffix = match.groups()
        if (prefix, suffix) not in shapes:
            shapes[(prefix, suffix)] = []
            order.append((prefix, suffix))
        shapes[(prefix, suffix)].append(digits)
    out: list[str] = []
    for item in order:
        if isinstance(item, str):
            out.append(item)
            continue
        prefix, suffix = item
        for first, last in _runs(sorted(set(shapes[item]), key=lambda d: (int(d), d))):
            out.append(f"{prefix}{first}{suffix}" if first == last else f"{prefix}[{first}:{last}]{suffix}")
    return out


def _runs(numbers: list[str]) -> Iterator[tuple[str, str]]:
    """(first, last) of each run of consecutive numbers written the way one Ansible range writes them."""
    first = previous = numbers[0]
    padded = len(first) > 1 and first.startswith("0")
    for digits in numbers[1:]:
        same_style = len(digits) == len(first) if padded else not (len(digits) > 1 and digits.startswith("0"))
        if int(digits) == int(previous) + 1 and same_style:
            previous = digits
            continue
        yield first, previous
        first = previous = digits
        padded = len(first) > 1 and first.startswith("0")
    yield first, previous


def _hosts_text(hosts: Sequence[str], cache: dict[tuple[Any, ...], str], shown: int = 4) -> str:
    key = (shown, *hosts)
    text = cache.get(key)
    if text is None:
        parts = compress_hosts(hosts)
        text = ", ".join(parts[:shown])
        if len(parts) > shown:
            text += f", +{len(parts) - shown} more"
        if len(hosts) > 1:
            text += f" ({len(hosts)} hosts)"
        cache[key] = text
    return text


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def _controls_text(step: Mapping[str, Any]) -> str:
    controls = step["controls"]
    parts: list[str] = []
    if "retries" in controls:
        parts.append(f"retries {controls['retries']}")
    if "delay" in controls:
        parts.append(f"delay {short_duration(controls['delay'])}")
    if "timeout" in controls:
        parts.append(f"timeout {short_duration(controls['timeout'])}")
    if controls.get("on_failure", "abort") != "abort":
        parts.append(f"on failure {controls['on_failure']}")
    if "serial" in controls:
        parts.append(f"serial {controls['serial']}")
    if "max_fail_percentage" in controls:
        parts.append(f"max fail {controls['max_fail_percentage']:g}%")
    if controls.get("become"):
        parts.append("become")
    if "parse" in controls:
        parts.append(f"parse {controls['parse']}")
    return " · ".join(parts)


class _Text:
    """The phone-sized text form: grouped by phase, ``!`` before steps that change a system."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.body = plan.body
        self.cache: dict[tuple[Any, ...], str] = {}

    def render(self) -> str:
        body = self.body
        book, inv = body["playbook"], body["inventory"]
        lines = [
            f"PLAN {book['name']} · {book['severity']} · {book['title']}",
            f"inventory {inv['name']} · limit {inv['limit'] or 'none'} · {_count(inv['hosts'], 'host')} targeted",
            f"hash {self.plan.hash}",
        ]
        lines.extend(self._params())
        steps = body["steps"]
        for phase in PHASES:
            in_phase = [step for step in steps if step["phase"] == phase]
            if not in_phase:
                continue
            lines.append("")
            lines.append(phase.upper())
            for step in in_phase:
                lines.extend(self._step(step))
        lines.append("")
        lines.append(f"! changes a system · APPROVAL asks first · [{RUN_TIME}] needs earlier results")
        return "\n".join(lines) + "\n"

    def _params(self) -> list[str]:
        params = self.body["params"]
        if not params:
            return []
        lines = ["", "PARAMS"]
        for name, entry in params.items():
            if entry["value"] is None and "per_host" not in entry:
                lines.append(f"  {name} = (no value)")
                continue
            if entry["value"] is not None:
                lines.append(f"  {name} = {value_text(entry['value'])}  ({entry['source']})")
            else:
                lines.append(f"  {name}: per host")
            for group in entry.get("per_host", ()):
                hosts = _hosts_text(group["hosts"], self.cache)
                lines.append(f"    {hosts}: {value_text(group['value'])}  ({group['source']})")
        return lines

    def _step(self, step: Mapping[str, Any]) -> list[str]:
        mark = "!" if step["mutating"] else " "
        head = f"{mark} {step['index']:>2} {step['id']}"
        if step["approval"]["required"] and step["action"] != "approve":
            head += " · APPROVAL"
        target = step["target"]
        renderings = step["renderings"]
        if target is None:
            head += f" · {CONTROL_NODE}"
        else:
            head += f" · {target['name']}"
            if len(renderings) == 1 and not step["skipped"]:
                head += ": " + _hosts_text(renderings[0]["hosts"], self.cache, shown=2)
            else:
                head += f" ({_count(target['hosts'], 'host')})"
        lines = [head]
        indent = "     "
        if step["name"]:
            lines.append(indent + step["name"])
        if step["when"] is not None:
            lines.append(indent + "when " + condition_text(step["when"]))
        shown = renderings if len(renderings) <= TEXT_GROUPS else renderings[: TEXT_GROUPS - 1]
        for group in shown:
            action_lines = actions.lines(group["action"])
            if target is not None and (len(renderings) > 1 or step["skipped"]):
                lines.append(indent + _hosts_text(group["hosts"], self.cache) + ":")
                lines.extend(indent + "  " + line for line in action_lines)
            else:
                lines.extend(indent + line for line in action_lines)
        if len(shown) < len(renderings):
            rest = renderings[len(shown) :]
            hosts = sum(len(group["hosts"]) for group in rest)
            lines.append(
                indent + f"... {len(rest)} more renderings on {_count(hosts, 'host')} (--format json lists all)"
            )
        for skip in step["skipped"]:
            hosts = skip["hosts"]
            who = "" if hosts is None else (_hosts_text(hosts, self.cache) + ": " if hosts else "")
            lines.append(indent + f"skipped: {who}{skip['reason']}")
        if step["until"] is not None:
            lines.append(indent + "until " + condition_text(step["until"]))
        controls = _controls_text(step)
        if controls:
            lines.append(indent + controls)
        if step["approval"]["reason"]:
            lines.append(indent + "no approval: " + step["approval"]["reason"])
        if step["approval"].get("hash"):
            lines.append(indent + f"approve with --approve {step['id']}@{short(step['approval']['hash'])}")
        return lines


class _Markdown:
    """The plan for a review or a ticket: one section per phase, commands in code blocks."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.body = plan.body
        self.cache: dict[tuple[Any, ...], str] = {}

    def render(self) -> str:
        body = self.body
        book, inv = body["playbook"], body["inventory"]
        out = [
            f"# Plan: {book['name']} ({book['severity']})",
            "",
            f"**{_md(book['title'])}**",
            "",
            f"- Inventory: `{inv['name']}` · limit: `{inv['limit'] or 'none'}` · hosts targeted: {inv['hosts']}",
            f"- Plan hash: `{self.plan.hash}`",
        ]
        if body["params"]:
            out += ["", "## Params", "", "| param | value | source |", "|---|---|---|"]
            for name, entry in body["params"].items():
                value = "(no value)" if entry["value"] is None else value_text(entry["value"])
                out.append(f"| `{name}` | `{_md(value)}` | {entry['source'] or ''} |")
                for group in entry.get("per_host", ()):
                    hosts = _hosts_text(group["hosts"], self.cache)
                    out.append(f"| ↳ {_md(hosts)} | `{_md(value_text(group['value']))}` | {group['source']} |")
        if body["targets"]:
            out += ["", "## Targets", "", "| target | pattern | hosts |", "|---|---|---|"]
            for name, target in body["targets"].items():
                hosts = _hosts_text(target["hosts"], self.cache) if target["hosts"] else "(none within limit)"
                out.append(f"| `{name}` | `{_md(target['pattern'])}` | {_md(hosts)} |")
        for phase in PHASES:
            steps = [step for step in body["steps"] if step["phase"] == phase]
            if not steps:
                continue
            out += ["", f"## {phase.capitalize()}"]
            for step in steps:
                out += self._step(step)
        out += ["", f"Conditions marked *{RUN_TIME}* depend on results of earlier steps."]
        return "\n".join(out) + "\n"

    def _step(self, step: Mapping[str, Any]) -> list[str]:
        title = f" — {_md(step['name'])}" if step["name"] else ""
        out = ["", f"### {step['index']}. `{step['id']}`{title}", ""]
        target = step["target"]
        where = CONTROL_NODE if target is None else f"`{target['name']}` ({_count(target['hosts'], 'host')})"
        flags = ["**mutating**" if step["mutating"] else "read-only"]
        if step["approval"]["required"]:
            flags.append("**approval required**")
            if step["approval"].get("hash"):
                flags.append(f"`--approve {step['id']}@{short(step['approval']['hash'])}`")
        elif step["approval"]["reason"]:
            flags.append(f"no approval: {_md(step['approval']['reason'])}")
        out.append(f"- Runs on: {where} · " + " · ".join(flags))
        if step["when"] is not None:
            out.append(f"- When: `{_md(step['when']['expr'])}` — {self._decided(step['when'])}")
        if step["until"] is not None:
            out.append(f"- Until: `{_md(step['until']['expr'])}` — {self._decided(step['until'])}")
        controls = _controls_text(step)
        if controls:
            out.append(f"- Controls: {controls}")
        renderings = step["renderings"]
        shown = renderings if len(renderings) <= MARKDOWN_GROUPS else renderings[: MARKDOWN_GROUPS - 1]
        for group in shown:
            if target is not None:
                out.append(f"- On {_md(_hosts_text(group['hosts'], self.cache))}:")
            out += ["", "```" + ("sh" if "shell" in group["action"] else "")]
            out += actions.lines(group["action"])
            out += ["```"]
        if len(shown) < len(renderings):
            rest = renderings[len(shown) :]
            hosts = sum(len(group["hosts"]) for group in rest)
            out.append(f"- ... {len(rest)} more renderings on {_count(hosts, 'host')} (`--format json` lists all)")
        for skip in step["skipped"]:
            hosts = skip["hosts"]
            who = f"{_md(_hosts_text(hosts, self.cache))}: " if hosts else ""
            out.append(f"- Skipped: {who}{_md(skip['reason'])}")
        return out

    @staticmethod
    def _decided(condition: Mapping[str, Any]) -> str:
        if condition.get("decided") == "run time":
            return f"*{RUN_TIME}*"
        if "value" in condition:
            return "now: " + str(condition["value"]).lower()
        return "now"


def _md(text: str) -> str:
    return str(text).replace("|", "\\|").replace("`", "'")

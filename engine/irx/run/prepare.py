"""Before the first host is touched: the approvals asked for, the plan and its hash, the template contexts,
which hosts the run may change, and the Ansible session started in the background."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from irx.errors import UsageError
from irx.executors.base import HostEvent
from irx.model import Playbook, Target

if TYPE_CHECKING:
    from irx.executors.session import AnsibleSessions
    from irx.inventory import Inventory
    from irx.params import ParamSet, Supplied

Targets = Mapping[str, tuple[Target, tuple[str, ...]]]  # irx.plan.resolve_targets


def check_approve_ids(playbook: Playbook, approve: Sequence[str]) -> None:
    """``--approve STEP[@HASH]`` per gated step: a step that needs no approval, or a malformed hash, is a
    usage error before anything starts."""
    from irx.approval import parse_approve

    try:
        wanted = parse_approve(approve)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    gated = {s.id for s in playbook.steps if s.approval_required}
    for step_id in wanted:
        if step_id not in gated:
            known = ", ".join(sorted(gated)) or "none"
            raise UsageError(
                f"--approve {step_id}: no step of {playbook.name} with that id needs approval (those that do: {known})"
            )


def start_sessions(
    playbook: Playbook,
    inv: Inventory,
    targets: Targets,
    forks: int,
    exposes: Callable[[str], bool],
    on_host_event: HostEvent,
    mitogen: bool = False,
) -> AnsibleSessions:
    """Start Ansible (about 2 s of start-up) now, while irx renders the plan, takes the lock and opens the
    journal: it only waits for work, so the first diagnostic result comes as early as Ansible allows."""
    from irx.executors.ansible import strategy_for
    from irx.executors.session import AnsibleSessions

    hosts = list(dict.fromkeys(h for _, found in targets.values() for h in found))
    sessions = AnsibleSessions(
        inv.source, hosts, forks=forks, exposes=exposes, vault=inv.vault, on_host_event=on_host_event,
        strategy=strategy_for(mitogen),
    )  # fmt: skip
    if hosts and any(s.runs_on_hosts for s in playbook.steps):
        sessions.start_in_background()
    return sessions


@dataclass
class Prepared:
    plan_hash: str
    targets: dict[str, list[str]]
    params: ParamSet
    secrets: list[Any]
    warnings: list[str]
    steps: list[dict[str, Any]]  # run_started's plan: every step, with what it will do (a report's "never reached")

    @property
    def hosts(self) -> list[str]:
        """Every targeted host, once, in target order."""
        return list(dict.fromkeys(h for hosts in self.targets.values() for h in hosts))


def prepare(
    playbook: Playbook,
    inv: Inventory,
    supplied: Mapping[str, Supplied],
    environ: Mapping[str, str],
    targets: Targets,
) -> Prepared:
    """The plan (and its hash) and what it was computed from: the run executes exactly that."""
    from irx.plan import build_plan

    plan = build_plan(playbook, inv, supplied, environ, targets)
    assert plan.params is not None  # build_plan always resolves them
    hosts = {name: list(found) for name, found in plan.targets.items()}
    return Prepared(
        plan.hash, hosts, plan.params, list(plan.secrets), list(plan.warnings), _plan_items(plan.body, hosts)
    )


def _plan_items(body: Mapping[str, Any], targets: Mapping[str, list[str]]) -> list[dict[str, Any]]:
    """The plan as run_started records it (schemas/timeline.schema.json, run_started.plan)."""
    from irx.plan import action_line

    items: list[dict[str, Any]] = []
    for step in body.get("steps", []):
        renderings = step.get("renderings") or []
        hosts = list(dict.fromkeys(h for r in renderings for h in r.get("hosts") or []))
        item: dict[str, Any] = {
            "id": step["id"],
            "phase": step["phase"],
            "action": step["action"],
            "title": step.get("name") or step["id"],
            "mutating": bool(step.get("mutating")),
            "approval_required": bool((step.get("approval") or {}).get("required")),
        }
        target = (step.get("target") or {}).get("name")  # none: it runs on the control node
        if target:
            item["target"] = target
            item["hosts"] = hosts or list(targets.get(target, []))
        if renderings:
            item["summary"] = action_line(renderings[0].get("action"))
        items.append(item)
    return items


class _HostVars(Mapping[str, Any]):
    """A host's inventory variables, templated by Ansible's rules on first access."""

    def __init__(self, inv: Inventory, host: str) -> None:
        self._inv, self._host, self._raw = inv, host, inv.host_vars(host)

    def __getitem__(self, key: str) -> Any:
        if key not in self._raw:
            raise KeyError(key)
        return self._inv.value(self._host, key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._raw)

    def __len__(self) -> int:
        return len(self._raw)


class Targeting:
    """The orchestrator's ``Targeting``: hosts per target and template contexts, from the prepared plan."""

    def __init__(self, inv: Inventory, prepared: Prepared, run_info: dict[str, Any]) -> None:
        from irx.templating import Namespace

        self._namespace = Namespace
        self.inv = inv
        self.prepared = prepared
        self.run_info = Namespace("run", run_info)

    def hosts(self, target: str) -> list[str]:
        return self.prepared.targets.get(target, [])

    def context(self, host: str | None) -> dict[str, Any]:
        params = self.prepared.params
        ns = self._namespace
        if host is None:
            return {
                "params": ns("params", params.for_run(), params.hints),
                "run": self.run_info,
                "host": ns("host", {"name": "localhost", "groups": []}),
                "vars": ns("vars", {}),
            }
        return {
            "params": ns("params", params.for_host(host), params.host_hints()),
            "run": self.run_info,
            "host": ns("host", {"name": host, "groups": list(self.inv.host_groups(host))}),
            "vars": ns("vars", dict(_HostVars(self.inv, host))),
        }


def hosts_changed(playbook: Playbook, prepared: Prepared, inv: Inventory) -> dict[str, str]:
    """The hosts a run may change (those of its mutating host steps), each with what identifies the machine
    for its lock: the local machine, or the address (and port) Ansible connects to."""
    changed: dict[str, str] = {}
    for step in playbook.steps:
        if step.mutating and step.runs_on_hosts and step.on:
            for host in prepared.targets.get(step.on, []):
                changed[host] = _machine(host, inv)
    return changed


def _machine(host: str, inv: Inventory) -> str:
    hostvars = inv.host_vars(host)

    def var(name: str) -> Any:
        return inv.value(host, name) if name in hostvars else None

    if str(var("ansible_connection") or "") == "local":
        return "local"
    address = str(var("ansible_host") or host)
    port = var("ansible_port")
    return f"{address}:{port}" if port not in (None, "") else address


def shown_params(playbook: Playbook, params: ParamSet) -> dict[str, Any]:
    values = params.for_run()
    return {name: ("******" if playbook.params[name].secret else value) for name, value in values.items()}

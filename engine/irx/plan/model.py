"""The plan body: building it (params, targets, every step rendered by irx.plan.steps) and hashing it."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from irx.errors import InventoryError, IrxError
from irx.inventory import Inventory, vaulted_values
from irx.model import Playbook, Target
from irx.params import ANSIBLE_SECRET_VARS, REDACTED, ParamSet, Supplied, freeze
from irx.params import plain_data as _plain
from irx.plan.steps import _Planner, _step_refs
from irx.redact import Redactor


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

"""The run's host leases (irx.lease): taken before the run's first change, kept alive, checked before each
mutating batch."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from irx.errors import UsageError
from irx.executors.base import HostRunner
from irx.lease import DEFAULT_LEASE_FILE, HostLeases, LeasedRunner, LeaseHost, node_name
from irx.model import Playbook
from irx.ports import Journal
from irx.run.prepare import Prepared

if TYPE_CHECKING:
    from irx.inventory import Inventory


def host_leases(
    playbook: Playbook,
    prepared: Prepared,
    inv: Inventory,
    remote: Mapping[str, str],
    holder: tuple[str, str],
    environ: Mapping[str, str],
    runner: HostRunner,
    journal: Journal,
) -> HostLeases:
    """The leases on every remote host this run may change that answered the preflight (``remote``: inventory
    name -> machine), their settings checked now; :func:`taker` takes them. ``holder`` is (run id,
    operator); ``runner`` carries the leases' own tasks."""
    from irx.lease import lease_ttl

    become_on: dict[str, bool] = {}
    for step in playbook.steps:
        if step.mutating and step.runs_on_hosts and step.on and step.become:
            for host in prepared.targets.get(step.on, []):
                become_on[host] = True
    longest = max((s.timeout or 0.0 for s in playbook.steps if s.runs_on_hosts), default=0.0)
    run_id, operator = holder
    return HostLeases(
        lease_hosts(remote, inv, become_on),
        run_id,
        holder_fields(operator, playbook.name),
        lease_ttl(environ, longest),
        runner.run,
        journal.record,
    )


def taker(
    leases: HostLeases, force: bool, note: Callable[[str], None], unreachable: dict[str, str]
) -> Callable[[], None]:
    """What takes the leases before the run's first change (once; ``LockHeld`` when another live run holds
    one and there is no ``force``), telling ``note`` which hosts will not be changed. A host that could not
    be reached joins ``unreachable`` (the orchestrator's, as after the preflight): no later step waits for
    its connection to time out again."""

    def take() -> None:
        for host in leases.ensure(force):
            unreachable.setdefault(host, leases.lost[host])
            note(f"✗ {host} will not be changed: {leases.lost[host]}")

    return take


def leased(
    runner: HostRunner, leases: HostLeases, playbook: Playbook, take: Callable[[], None], force: bool
) -> HostRunner:
    """The runner the steps go through: the leases' first round rides on the tasks of the read-only host step
    just before the run's first change (its last diagnostic, typically), a mutating batch takes them first
    if nothing did (``take``), the releases ride on the run's last step when nothing after it can change a
    host, and a host whose lease was lost is not changed."""
    if not leases.hosts:
        return runner
    mutating = {s.id for s in playbook.steps if s.mutating}
    before = step_before_first_change(playbook)
    ahead = (before, force) if before else None
    return LeasedRunner(runner, leases, mutating.__contains__, take, ahead, last_step(playbook))


def step_before_first_change(playbook: Playbook) -> str | None:
    """The read-only shell or command step right before the first step that needs the leases (a mutating
    one, or a gate), in playbook order, or None."""
    steps = playbook.steps
    first = next((i for i, s in enumerate(steps) if s.mutating or s.action == "approve"), None)
    if not first:
        return None
    before = steps[first - 1]
    return before.id if before.action in ("shell", "command") and not before.mutating else None


def last_step(playbook: Playbook) -> str | None:
    """The playbook's last step, when its batch may carry the releases (after its commands, on each host), or
    None: a shell or command step after which nothing can run (no rollback) and that does not run its
    commands again once they ended (a mutating step with ``retries``/``until`` would run a retry unleased)."""
    steps = playbook.steps
    if not steps or playbook.phases.get("rollback"):
        return None
    last = steps[-1]
    again = last.retries > 0 or last.until is not None
    return last.id if last.action in ("shell", "command") and not (last.mutating and again) else None


class LeaseVars(Protocol):
    """What :func:`lease_hosts` reads of an inventory (:class:`irx.inventory.Inventory` is one)."""

    def host_vars(self, name: str, /) -> Mapping[str, Any]: ...

    def value(self, name: str, var: str, /) -> Any: ...


def lease_hosts(
    changed: Mapping[str, str], inv: LeaseVars, become_on: Mapping[str, bool], default_file: str = DEFAULT_LEASE_FILE
) -> list[LeaseHost]:
    """The remote hosts among ``changed`` (inventory name -> machine identity), with their lease file."""
    hosts: list[LeaseHost] = []
    for name, identity in changed.items():
        if identity == "local":
            continue
        path = inv.value(name, "irx_lease_file") if "irx_lease_file" in inv.host_vars(name) else default_file
        if not isinstance(path, str) or not path.startswith("/"):
            raise UsageError(f"host {name}: irx_lease_file must be an absolute path on the host, not {path!r}")
        hosts.append(LeaseHost(name, path, bool(become_on.get(name))))
    return hosts


def holder_fields(operator: str, playbook: str) -> dict[str, Any]:
    """Who holds a lease, as written on the host (the run id is added by the module)."""
    return {
        "operator": operator,
        "playbook": playbook,
        "control_node": node_name(),
        "pid": os.getpid(),
    }

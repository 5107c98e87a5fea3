"""The run's host leases (irx.lease): taken before the run's first change, kept alive, checked before each
mutating batch."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from irx.executors.base import HostRunner
from irx.lease import HostLeases, LeasedRunner
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
    from irx.lease import holder_fields, lease_hosts, lease_ttl

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


def leased(runner: HostRunner, leases: HostLeases, playbook: Playbook, take: Callable[[], None]) -> HostRunner:
    """The runner the steps go through: a mutating batch takes the leases first if nothing did (``take``),
    and a host whose lease was lost is not changed."""
    if not leases.hosts:
        return runner
    mutating = {s.id for s in playbook.steps if s.mutating}
    return LeasedRunner(runner, leases, mutating.__contains__, take)

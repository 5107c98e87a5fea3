"""What the orchestrator needs from executors, and nothing concrete: the work for hosts, the runners.

The orchestrator imports only this module; the run (irx.run) builds the real runners (the Ansible session,
the httpx request) and gives them to it at construction, and the unit tests give it in-memory ones.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from irx.results import HostResult

# The host name a control-node step's result is recorded under (http, wait, assert, approve, notify).
LOCAL_HOST = "localhost"

HostEvent = Callable[[str, str, str, float], None]  # (step_id, host, status, duration), as each host finishes


@dataclass
class HostTask:
    """One host step's work for one group of hosts that share the same rendering."""

    step_id: str
    hosts: Sequence[str]
    action: str  # shell | command | module | lease (irx.lease's own tasks, through irx_command)
    spec: Any  # rendered command line, argv list, or module name
    args: Mapping[str, Any] = field(default_factory=dict)  # rendered module args
    env: Mapping[str, str] = field(default_factory=dict)
    chdir: str | None = None
    become: bool = False
    timeout: float | None = None
    # irx_lease's parameters, for a task on one host: the host's lease is taken in the same module run, before
    # the command (a read-only one: the step before the run's first change); its answer is in the result's
    # extra["lease"]. Only shell and command steps carry one.
    lease: Mapping[str, Any] | None = None


class HostRunner(Protocol):
    """Runs one batch of host tasks; every host of every task gets a result (a failure is a result)."""

    def run(self, tasks: Sequence[HostTask]) -> dict[str, HostResult]: ...


class HttpRunner(Protocol):
    """Sends one rendered ``http`` step from the control node and checks its ``expect``."""

    def __call__(self, spec: Mapping[str, Any]) -> HostResult: ...

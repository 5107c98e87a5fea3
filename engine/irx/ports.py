"""What the orchestrator needs from the world, as Protocols: a journal to record to, hosts and template
contexts to run with, and somewhere to show progress. The run gives it the real ones; unit tests their doubles.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from irx.events import Event
from irx.model import Step
from irx.results import StepResult


class Journal(Protocol):
    def record(self, event: Event) -> Any: ...


class Targeting(Protocol):
    """Hosts and template contexts, from the inventory and resolved params."""

    def hosts(self, target: str) -> list[str]: ...

    def context(self, host: str | None) -> dict[str, Any]: ...  # params, host, vars, run; None = control node


class Progress(Protocol):
    def phase(self, name: str) -> None: ...

    def step(self, step: Step, hosts: Sequence[str], note: str = "") -> None: ...

    def host(self, step_id: str, host: str, status: str, duration: float) -> None: ...

    def step_done(self, step: Step, result: StepResult) -> None: ...

    def note(self, text: str) -> None: ...

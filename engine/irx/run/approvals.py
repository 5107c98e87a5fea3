"""Who approves a gated step: ``--yes``, ``--approve STEP[@HASH]``, a person asked at the terminal, or, with
``--wait-approval``, a decision given from elsewhere (``irx approve`` / ``irx deny``, the approval page)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from irx import events, humanize
from irx.model import Step
from irx.outcome import Approval, Approver
from irx.ports import Journal

# (step, what would run, its approval hash) -> approved? The terminal prompt of irx.commands.run.
Ask = Callable[[Step, str, str], bool]


@dataclass
class Inbox:
    """A gate that waits up to ``timeout`` seconds (None: no limit) for a decision in the run's inbox."""

    run_dir: Path
    run_id: str
    timeout: float | None
    journal: Journal
    note: Callable[[str], None]
    stop: threading.Event
    poll: float = 0.2

    def wait(self, step: Step, hosts: Sequence[str], summary: str, gate_hash: str, operator: str) -> Approval:
        from irx.approval import short
        from irx.inbox import Waiting, binds, clear_waiting, read_decision, write_waiting

        since = time.time()
        until = since + self.timeout if self.timeout is not None else None
        waiting = Waiting(
            self.run_id, step.id, step.phase, step.title, list(hosts), summary, gate_hash, since, until, os.getpid()
        )
        write_waiting(self.run_dir, waiting)
        self.journal.record(
            events.ApprovalRequested(
                phase=step.phase, step=step.id, approval_hash=gate_hash, hosts=list(hosts), until=_utc(until)
            )
        )
        limit = f" (for up to {humanize.short_duration(self.timeout)})" if self.timeout is not None else ""
        self.note(
            f"waiting for approval of {step.id}@{short(gate_hash)}{limit}: irx approve {self.run_id} {step.id}"
            f" --hash {short(gate_hash)}, or irx deny {self.run_id} {step.id} --reason WHY"
        )
        try:
            while True:
                decision = read_decision(self.run_dir, step.id)
                if decision is not None:
                    if not binds(decision, gate_hash):
                        return Approval(
                            False,
                            "stale",
                            decision.by,
                            f"the decision of {decision.by} names {step.id}@{short(decision.approval_hash)}, "
                            f"not what would run ({step.id}@{short(gate_hash)})",
                        )
                    return Approval(decision.approve, decision.method, decision.by, decision.reason)
                if until is not None and time.time() >= until:
                    assert self.timeout is not None
                    why = f"nobody approved or refused {step.id} within {humanize.short_duration(self.timeout)}"
                    return Approval(False, "timeout", operator, why)
                if self.stop.wait(self.poll):
                    return Approval(False, "interrupted", operator, f"interrupted while {step.id} waited for approval")
        finally:
            clear_waiting(self.run_dir)


def approver(yes: bool, approve: Sequence[str], operator: str, ask: Ask | None, inbox: Inbox | None = None) -> Approver:
    """Approvals given in advance first; then the inbox, if the run waits for one, else ``ask``; with
    nobody to ask, the gate is ``missing``."""
    from irx.approval import matches, parse_approve, short

    wanted = parse_approve(approve)  # checked before the run started (prepare.check_approve_ids)

    def decide(step: Step, hosts: Sequence[str], summary: str, gate_hash: str) -> Approval:
        if yes:
            return Approval(True, "yes-flag", operator)
        if step.id in wanted:
            given = wanted[step.id]
            if given is None or matches(gate_hash, given):
                return Approval(True, "approve-flag", operator)
            return Approval(
                False,
                "stale",
                operator,
                f"--approve {step.id}@{given} does not match what {step.id} would run now "
                f"({step.id}@{short(gate_hash)}): review it and approve that",
            )
        if inbox is not None:
            return inbox.wait(step, hosts, summary, gate_hash, operator)
        if ask is None:
            return Approval(False, "missing", operator)
        answer = ask(step, summary, gate_hash)
        return Approval(answer, "tty" if answer else "refused", operator)

    return decide


def _utc(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

"""Who approves a gated step: ``--yes``, ``--approve STEP[@HASH]``, or, when given one, a person asked."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from irx.model import Step
from irx.outcome import Approval, Approver

# (step, what would run, its approval hash) -> approved? The terminal prompt of irx.commands.run.
Ask = Callable[[Step, str, str], bool]


def approver(yes: bool, approve: Sequence[str], operator: str, ask: Ask | None) -> Approver:
    """Approvals given in advance first; then ``ask``; with nobody to ask, the gate is ``missing``."""
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
        if ask is None:
            return Approval(False, "missing", operator)
        answer = ask(step, summary, gate_hash)
        return Approval(answer, "tty" if answer else "refused", operator)

    return decide

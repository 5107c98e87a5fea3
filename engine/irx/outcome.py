"""What a walk ends with (its ``Outcome`` and exit code) and what an approver decides at a gate."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from irx.errors import ExitCode
from irx.model import Step
from irx.results import StepResult
from irx.verdict import headline, outcome_text

FINAL_EXIT: Mapping[str, ExitCode] = {
    "verified": ExitCode.OK,
    "dry_run": ExitCode.OK,
    "failed": ExitCode.FAILED,
    "rolled_back": ExitCode.FAILED,
    "awaiting_approval": ExitCode.AWAITING_APPROVAL,
    "interrupted": ExitCode.INTERRUPTED,
}


# (step, hosts, what the approver is shown, the digest of that rendering: irx.approval)
Approver = Callable[[Step, Sequence[str], str, str], "Approval"]


@dataclass(frozen=True)
class Approval:
    approved: bool
    method: str  # tty | yes-flag | approve-flag | cli | web | refused | missing | stale | timeout | timeout-skip
    # | interrupted
    by: str  # who decided; for a gate several people approved, their names joined with ", "
    reason: str = ""  # why not (a stale --approve, a timeout, a refusal's stated reason)
    approvers: tuple[str, ...] = ()  # everyone whose approval counted, in order
    needed: int | None = None  # how many approvals the gate needed (None: one, without a rule)

    def skip_reason(self) -> str:
        """Why the step is skipped when this answer refuses it and the run goes on."""
        if self.method == "timeout-skip":
            return self.reason
        return f"approval refused by {self.by}" + (f": {self.reason}" if self.reason else "")

    def stops_run(self, step_id: str, gate_hash: str) -> tuple[str, str] | None:
        """How the run stops when this answer leaves the step unapproved: (status, reason); None when the
        run goes on without the step (a refusal)."""
        if self.method == "interrupted":
            return "interrupted", self.reason
        if self.method in {"missing", "stale", "timeout"}:
            from irx.approval import short

            return "awaiting_approval", self.reason or (
                f"step '{step_id}' needs approval and there is no terminal to ask: "
                f"approve it with --approve {step_id}@{short(gate_hash)} or --yes"
            )
        return None


@dataclass
class Outcome:
    status: str
    reason: str = ""
    results: dict[str, StepResult] = field(default_factory=dict)
    verdict: str | None = None  # a dry run's: would_resolve | verification_failed (irx.verdict)
    dry_run: bool = False
    refused: bool = False  # refused before anything changed (a lease or lock held, a bad setting): exit 2

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.USAGE if self.refused else FINAL_EXIT[self.status]

    @property
    def headline(self) -> str:
        return headline(self.status, self.verdict, dry_run=self.dry_run)

    @property
    def outcome_text(self) -> str:
        return outcome_text(self.status, self.verdict, dry_run=self.dry_run)

"""Who approves a gated step: ``--yes``, ``--approve STEP[@HASH]``, a person asked at the terminal, or, with
``--wait-approval``, decisions given from elsewhere (``irx approve`` / ``irx deny``, the approval page),
counted against the gate's rule (irx.approvers: who may approve, how many different people must)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from irx import events, humanize
from irx.model import Step
from irx.outcome import Approval, Approver
from irx.ports import Journal

if TYPE_CHECKING:
    from irx.approvers import Approvers, Rule
    from irx.inbox import Decision, Waiting

# (step, what would run, its approval hash) -> approved? The terminal prompt of irx.commands.run.
Ask = Callable[[Step, str, str], bool]
# (step, channel or None for every channel, text): tell people again that a gate still waits.
Escalate = Callable[[Step, str | None, str], None]


@dataclass
class Inbox:
    """A gate that waits up to ``timeout`` seconds (None: no limit; a step's ``approval.timeout`` wins) for
    decisions in the run's inbox."""

    run_dir: Path
    run_id: str
    timeout: float | None
    journal: Journal
    note: Callable[[str], None]
    stop: threading.Event
    poll: float = 0.2
    escalate: Escalate | None = None

    def wait(self, gate: _Gate, given: Approval | None = None) -> Approval:
        """Wait until the gate's rule is met by approvals of the same rendering, refused by one allowed
        approver, or its time is up (then as the step's ``on_timeout`` says). ``given``: the operator's own
        approval (--yes, --approve), counted as one when the rule allows it."""
        from irx.approval import short
        from irx.inbox import clear_waiting, read_decisions, write_waiting

        step, limit = gate.step, gate.step.gate.timeout or self.timeout
        waiting = gate.waiting(self.run_id, limit, os.getpid())
        if given is not None:
            gate.count_own(given, self.journal)
            waiting = replace(waiting, approved_by=list(gate.approvers))
        write_waiting(self.run_dir, waiting)
        self.journal.record(gate.requested_event(waiting))
        what = "approval" if waiting.approvals == 1 else waiting.progress()
        self.note(
            f"waiting for {what} of {step.id}@{short(gate.gate_hash)}{_for(limit)}: irx approve "
            f"{self.run_id} {step.id} --hash {short(gate.gate_hash)}, or irx deny {self.run_id} {step.id} --reason WHY"
        )
        seen, escalated = 0, False
        try:
            while True:
                decisions = read_decisions(self.run_dir, step.id)
                for decision in decisions[seen:]:
                    answer = gate.take(decision, self.journal)
                    if answer is not None:
                        return answer
                    waiting = replace(waiting, approved_by=list(gate.approvers))
                    write_waiting(self.run_dir, waiting)
                seen = len(decisions)
                now = time.time()
                if not escalated and waiting.escalate_at is not None and now >= waiting.escalate_at:
                    escalated = True
                    self._escalate(gate, waiting, now)
                if waiting.until is not None and now >= waiting.until:
                    assert limit is not None
                    return gate.timed_out(limit)
                if self.stop.wait(self.poll):
                    return Approval(
                        False, "interrupted", gate.operator, f"interrupted while {step.id} waited for approval"
                    )
        finally:
            clear_waiting(self.run_dir)

    def _escalate(self, gate: _Gate, waiting: Waiting, now: float) -> None:
        step, channel = gate.step, gate.step.gate.escalate_to
        after = now - waiting.since
        text = (
            f"{step.title} ({step.id}) still waits for approval after {humanize.short_duration(round(after))}: "
            f"{waiting.progress()}. Review it and answer: irx approve {self.run_id} {step.id}, or irx deny "
            f"{self.run_id} {step.id} --reason WHY"
        )
        self.note(f"escalating {step.id} to {channel or 'every channel'}: {waiting.progress()}")
        self.journal.record(
            events.ApprovalEscalated(
                phase=step.phase, step=step.id, after=round(after, 3), channel=channel,
                given=len(gate.approvers), needed=gate.rule.approvals,
            )
        )  # fmt: skip
        if self.escalate is not None:
            self.escalate(step, channel, text)


@dataclass
class _Gate:
    """One gate's count: its rule, and the approvals that counted so far."""

    step: Step
    hosts: Sequence[str]
    summary: str
    gate_hash: str
    operator: str
    rule: Rule
    book: Approvers
    approvers: list[str]

    def waiting(self, run_id: str, limit: float | None, pid: int) -> Waiting:
        from irx.inbox import Waiting

        step, since = self.step, time.time()
        after = step.gate.escalate_after
        return Waiting(
            run_id, step.id, step.phase, step.title, list(self.hosts), self.summary, self.gate_hash, since,
            since + limit if limit is not None else None, pid, list(self.rule.approvers), self.book.eligible(self.rule),
            self.rule.approvals, self.operator, self.rule.requester_may_approve, [],
            since + after if after is not None and (limit is None or after < limit) else None,
        )  # fmt: skip

    def requested_event(self, waiting: Waiting) -> events.ApprovalRequested:
        return events.ApprovalRequested(
            phase=self.step.phase, step=self.step.id, approval_hash=self.gate_hash, hosts=list(self.hosts),
            until=_utc(waiting.until), approvers=list(self.rule.approvers) or None, needed=self.rule.approvals,
            requester_may_approve=self.rule.requester_may_approve, escalate_at=_utc(waiting.escalate_at),
        )  # fmt: skip

    def why_not(self, by: str, approve: bool) -> str | None:
        """Why a decision by ``by`` does not count under the rule, or None."""
        from irx.inbox import account_of

        account = account_of(by)
        if not self.book.may_approve(self.rule, by):
            return f"{account} is not an approver of {self.step.id} ({', '.join(self.rule.approvers)})"
        if approve and not self.rule.requester_may_approve and account == account_of(self.operator):
            return f"{account} started this run; the rule needs someone else's approval"
        if approve and any(account_of(name) == account for name in self.approvers):
            return f"{account} already approved {self.step.id}; the rule needs different people"
        return None

    def count_own(self, given: Approval, journal: Journal) -> None:
        """The operator's --yes / --approve, counted as one approval when the rule lets it count."""
        why = self.why_not(given.by, True)
        if why is None:
            self.approvers.append(given.by)
        journal.record(self._given(given.by, given.method, True, why is None, why, self.gate_hash))

    def take(self, decision: Decision, journal: Journal) -> Approval | None:
        """Count ``decision``: the gate's answer when it decides the gate, else None (it waits on)."""
        from irx.approval import short
        from irx.inbox import binds

        step = self.step
        why = self.why_not(decision.by, decision.approve)
        stale = why is None and not binds(decision, self.gate_hash)
        if stale:
            named, would = short(decision.approval_hash), short(self.gate_hash)
            why = f"names {step.id}@{named}, not what would run ({step.id}@{would})"
        counted = why is None
        if counted and decision.approve:
            self.approvers.append(decision.by)
        shown = decision.reason if counted else why
        journal.record(self._given(decision.by, decision.via, decision.approve, counted, shown, decision.approval_hash))
        if stale:
            return Approval(False, "stale", decision.by, f"the decision of {decision.by} {why}")
        if not counted:
            return None
        if not decision.approve:
            return Approval(False, decision.method, decision.by, decision.reason, needed=self.rule.approvals)
        return self.answer(decision.method)

    def answer(self, method: str) -> Approval | None:
        if len(self.approvers) < self.rule.approvals:
            return None
        names = tuple(self.approvers)
        return Approval(True, method, ", ".join(names), approvers=names, needed=self.rule.approvals)

    def timed_out(self, limit: float) -> Approval:
        step = self.step
        got = f" ({len(self.approvers)} of {self.rule.approvals} approvals)" if self.rule.approvals > 1 else ""
        why = f"nobody approved or refused {step.id} within {humanize.short_duration(limit)}{got}"
        if step.gate.on_timeout == "skip":
            return Approval(False, "timeout-skip", self.operator, f"{why}; skipped (on_timeout: skip)")
        return Approval(False, "timeout", self.operator, why)

    def _given(
        self, by: str, via: str, approve: bool, counted: bool, reason: str | None, approval_hash: str
    ) -> events.ApprovalGiven:
        return events.ApprovalGiven(
            phase=self.step.phase, step=self.step.id, by=by, via=via, approve=approve, counted=counted,
            approval_hash=approval_hash, reason=reason or None, given=len(self.approvers), needed=self.rule.approvals,
        )  # fmt: skip


@dataclass(frozen=True)
class Policy:
    """Which rule a run's gates follow: the approvers file (or anyone, once), for this playbook."""

    book: Approvers
    playbook: str
    severity: str

    def rule(self, step: Step) -> Rule:
        return self.book.rule_for(self.playbook, self.severity, step.id, step.gate.approvals)


def approver(
    yes: bool,
    approve: Sequence[str],
    operator: str,
    ask: Ask | None,
    inbox: Inbox | None = None,
    policy: Policy | None = None,
) -> Approver:
    """Approvals given in advance first; then the inbox, if the run waits for one, else ``ask``; with
    nobody to ask, the gate is ``missing``. Where the rule needs more than the operator's one approval
    (several approvals, other approvers, not the requester), only the inbox can meet it."""
    from irx.approval import matches, parse_approve, short
    from irx.approvers import anyone

    wanted = parse_approve(approve)  # checked before the run started (prepare.check_approve_ids)
    rules = policy or Policy(anyone(), "", "")

    def decide(step: Step, hosts: Sequence[str], summary: str, gate_hash: str) -> Approval:
        rule = rules.rule(step)
        gate = _Gate(step, hosts, summary, gate_hash, operator, rule, rules.book, [])
        alone = rule.approvals == 1 and gate.why_not(operator, True) is None
        given = Approval(True, "yes-flag", operator) if yes else None
        if given is None and step.id in wanted:
            named = wanted[step.id]
            if named is not None and not matches(gate_hash, named):
                return Approval(
                    False,
                    "stale",
                    operator,
                    f"--approve {step.id}@{named} does not match what {step.id} would run now "
                    f"({step.id}@{short(gate_hash)}): review it and approve that",
                )
            given = Approval(True, "approve-flag", operator)
        if given is not None and alone:
            return given
        if inbox is not None:
            return inbox.wait(gate, given)
        if not alone:
            return Approval(
                False, "missing", operator,
                f"step '{step.id}' needs {rule.describe()}: start the run with --wait-approval so that they can "
                "approve it with irx approve or on the approval page",
            )  # fmt: skip
        if ask is None:
            return Approval(False, "missing", operator)
        answer = ask(step, summary, gate_hash)
        return Approval(answer, "tty" if answer else "refused", operator)

    return decide


def _for(limit: float | None) -> str:
    return f" (for up to {humanize.short_duration(limit)})" if limit is not None else ""


def _utc(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

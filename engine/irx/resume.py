"""Where a stopped run continues (``irx resume``): read from its journal, nothing else.

A run stops at a gate nobody answered (awaiting approval), on an interrupt (Ctrl-C, SIGTERM, ``kill -9``),
or on a failed step. Its journal says which steps completed and what each host's result was, so the
continuation can take up exactly there:

- every step that finished before the stop is **done**: not run again, its recorded results (status,
  output, parsed data) are what later ``when:`` and templates see, as in the first attempt;
- the step it stopped at runs **again**, only on the hosts where it did not succeed (failed, unreachable,
  timed out, never reached); the hosts where it succeeded keep their results;
- ``--from STEP`` chooses the step instead: it and every later step run again on all their hosts; the
  steps before it must have completed.

A run that rolled back, verified, or was a dry run has nothing to continue and is refused, as is one still
running. Only the first pass of diagnose -> mitigate -> verify is resumable: once a rollback began, the
order of what was undone is the run's own and a new run is the honest answer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from irx.errors import UsageError
from irx.inbox import STEP_ID
from irx.journal_read import RUNNING, JournalRead
from irx.model import Playbook, Step
from irx.results import HostResult, StepResult

RESUMABLE = ("awaiting_approval", "interrupted", "failed", "aborted")
_SUCCEEDED = frozenset({"ok", "skipped"})
_WALK = ("diagnose", "mitigate", "verify")  # the first pass; the only part a run resumes in


@dataclass(frozen=True)
class Resumption:
    """What the continuation of a run does: the steps done (with their results), the first step that runs
    again, and for that step the hosts whose results are kept."""

    run_id: str
    after: str  # the status the run had stopped with
    attempt: int  # this continuation's number: 2 for the first
    done: Mapping[str, StepResult]
    from_step: str | None  # None: every step had completed (the run stopped between two)
    kept: Mapping[str, HostResult] = field(default_factory=dict)  # from_step's hosts that succeeded

    def restored(self, step: Step) -> StepResult | None:
        """The recorded result of ``step`` if it is done, else None (it runs)."""
        return self.done.get(step.id)

    def kept_for(self, step: Step) -> Mapping[str, HostResult]:
        return self.kept if step.id == self.from_step else {}


def plan_resumption(journal: JournalRead, playbook: Playbook, from_step: str | None = None) -> Resumption:
    """The continuation of the run in ``journal`` (its playbook loaded again); ``UsageError`` when there is
    nothing to continue, naming why."""
    started = journal.first("run_started")
    if started is None:
        raise UsageError(f"{journal.path}: the journal has no run_started: not a run irx can resume")
    run_id, status = str(started.get("run_id", "")), journal.status
    if run_id != journal.path.parent.name:  # its continuation would be written as another run, twice in history
        raise UsageError(
            f"{journal.path} is the journal of run {run_id[:40]!r}, not of {journal.path.parent.name} (a copied or "
            "renamed run directory): continue the run where it is, or start a new run"
        )
    _check_resumable(journal, started, status, run_id)
    order = [step for phase in _WALK for step in playbook.phases.get(phase, ())]
    finished, hosts = _recorded(journal)
    unknown = [step_id for step_id in finished if step_id not in {s.id for s in playbook.steps}]
    if unknown:
        raise UsageError(
            f"run {run_id} ran step(s) {', '.join(unknown)} that {playbook.name} no longer has: "
            "the playbook changed too much to continue this run"
        )
    if from_step is not None:
        return _from_chosen(journal, run_id, status, order, finished, hosts, from_step)
    done: dict[str, StepResult] = {}
    for step in order:
        result = finished.get(step.id)
        if (
            result is None
            or result.status not in _SUCCEEDED | {"failed", "timed_out"}
            or _stopped_at(step, result, journal)
        ):
            kept = {h: r for h, r in hosts.get(step.id, {}).items() if r.status in _SUCCEEDED}
            return Resumption(run_id, status, _attempt(journal), done, step.id, kept)
        done[step.id] = result
    return Resumption(run_id, status, _attempt(journal), done, None)


def _check_resumable(journal: JournalRead, started: Mapping[str, Any], status: str, run_id: str) -> None:
    if status == RUNNING:
        raise UsageError(f"run {run_id} is still running: stop it first (irx runs shows it)")
    if started.get("mode") != "run":
        raise UsageError(f"run {run_id} was a dry run: it changed nothing; start a real run instead")
    if status not in RESUMABLE:
        what = {"verified": "it verified", "rolled_back": "it rolled back"}.get(status, f"it ended {status}")
        raise UsageError(f"run {run_id} has nothing to resume: {what}")
    if any(e.get("type") == "phase_started" and e.get("phase") == "rollback" for e in journal.events):
        raise UsageError(
            f"run {run_id} began its rollback before it stopped: its mitigations were being undone, so "
            "continuing it would redo them out of order; start a new run"
        )


def _stopped_at(step: Step, result: StepResult, journal: JournalRead) -> bool:
    """Whether the run stopped at this finished step: it failed and the run did not go on past it."""
    if result.status in _SUCCEEDED:
        return False
    went_on = any(
        e.get("type") == "decision" and e.get("step") == step.id and e.get("decision") == "continue"
        for e in journal.events
    )
    return not went_on


def _from_chosen(
    journal: JournalRead,
    run_id: str,
    status: str,
    order: Sequence[Step],
    finished: Mapping[str, StepResult],
    hosts: Mapping[str, Mapping[str, HostResult]],
    from_step: str,
) -> Resumption:
    ids = [step.id for step in order]
    known = ", ".join(ids)
    if not STEP_ID.fullmatch(from_step):  # shown as repr, cut: a newline or a page of text stays one short line
        shown = repr(from_step if len(from_step) <= 40 else from_step[:40] + "...")
        raise UsageError(f"--from {shown}: not a step id (lower-case letters, digits and _; its steps: {known})")
    if from_step not in ids:
        raise UsageError(f"--from {from_step}: {journal.path.parent.name} has no such step (its steps: {known})")
    before = ids[: ids.index(from_step)]
    missing = [step_id for step_id in before if step_id not in finished]
    if missing:
        raise UsageError(
            f"--from {from_step}: step(s) before it never completed in run {run_id} ({', '.join(missing)}); "
            f"resume from {missing[0]} or earlier"
        )
    return Resumption(run_id, status, _attempt(journal), {s: finished[s] for s in before}, from_step)


def _recorded(journal: JournalRead) -> tuple[dict[str, StepResult], dict[str, dict[str, HostResult]]]:
    """Every step's last recorded result, and its hosts' last results, from the journal's events."""
    finished: dict[str, StepResult] = {}
    hosts: dict[str, dict[str, HostResult]] = {}
    for event in journal.events:
        kind, step_id = event.get("type"), event.get("step")
        if not isinstance(step_id, str):
            continue
        if kind == "step_started":
            finished.pop(step_id, None)  # started again (a continuation): its earlier result no longer counts
            hosts.setdefault(step_id, {})
        elif kind == "host_result":
            result = _host_result(event)
            hosts.setdefault(step_id, {})[result.host] = result
        elif kind == "step_finished":
            results = dict(hosts.get(step_id, {}))
            status = str(event.get("status", "failed"))
            finished[step_id] = StepResult(
                step_id, status, hosts=results, reason=str(event.get("reason") or ""), attempts=_int(event, "attempts")
            )
    return finished, hosts


def _host_result(event: Mapping[str, Any]) -> HostResult:
    extra = {"status_code": event["http_status"]} if isinstance(event.get("http_status"), int) else {}
    return HostResult(
        str(event.get("host", "")),
        str(event.get("status", "failed")),
        rc=event.get("rc") if isinstance(event.get("rc"), int) else None,
        stdout=str(event.get("stdout") or ""),
        stderr=str(event.get("stderr") or ""),
        msg=str(event.get("msg") or ""),
        changed=bool(event.get("changed")),
        duration=float(event.get("duration") or 0.0),
        data=event.get("data"),
        extra=extra,
    )


def _int(event: Mapping[str, Any], name: str) -> int:
    value = event.get(name)
    return value if isinstance(value, int) and not isinstance(value, bool) else 1


def _attempt(journal: JournalRead) -> int:
    return 2 + sum(1 for event in journal.events if event.get("type") == "run_resumed")


def plan_changes(recorded: Sequence[Mapping[str, Any]], now: Sequence[Mapping[str, Any]]) -> list[str]:
    """What renders differently now than in the recorded plan (run_started's ``plan``), one line each."""
    before = {str(item.get("id")): item for item in recorded}
    after = {str(item.get("id")): item for item in now}
    changes = [f"step {step_id} is new" for step_id in after if step_id not in before]
    changes += [f"step {step_id} is gone" for step_id in before if step_id not in after]
    for step_id, item in after.items():
        old = before.get(step_id)
        if old is None:
            continue
        for key in ("hosts", "summary", "action", "mutating", "approval_required"):
            if old.get(key) != item.get(key):
                changes.append(f"step {step_id}: {key} was {_shown(old.get(key))}, now {_shown(item.get(key))}")
    return changes


def _shown(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(str(v) for v in value) + "]"
    text = str(value)
    return repr(text if len(text) <= 120 else text[:117] + "...")

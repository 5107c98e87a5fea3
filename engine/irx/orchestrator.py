"""Walk a playbook phase by phase against real hosts, decide from real results, record everything.

diagnose -> mitigate -> verify; when verification fails (or a step fails with ``on_failure: rollback``)
the rollback phase runs and verification is repeated. Every decision (run, skip, would run, retry,
rollback) and every host result goes to the journal as it happens. Hosts are reached only through the
runners given at construction (irx.executors.base: the Ansible session in production, in-memory runners
in unit tests); results come as data, never from scraping stdout."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from irx import actions, events, templating
from irx.approval import digest, host_form, short
from irx.batches import batches, first_problem, host_event, jsonable, over_budget, parse_into, step_status
from irx.errors import IrxError, TemplateError
from irx.executors.base import LOCAL_HOST, HostRunner, HostTask, HttpRunner
from irx.model import Playbook, Step
from irx.outcome import Approver, Outcome
from irx.ports import Journal as Journal
from irx.ports import Progress as Progress
from irx.ports import Targeting as Targeting
from irx.results import HostResult, StepResult, step_views
from irx.resume import Resumption
from irx.verdict import VERIFICATION_FAILED, WOULD_RESOLVE


class _Stop(Exception):
    """Ends the walk: a final status and why."""

    def __init__(self, status: str, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass
class Orchestrator:
    playbook: Playbook
    targeting: Targeting
    journal: Journal
    progress: Progress
    host_runner: HostRunner  # host steps, a batch at a time
    http_runner: HttpRunner  # http steps, from the control node
    approver: Approver
    dry_run: bool = False
    plan_hash: str = ""  # the plan the run started from: recorded with each approval
    mask: Callable[[Any], Any] = lambda value: value  # secrets out of what approvers see and hashes cover
    unreachable: Mapping[str, str] = field(default_factory=dict)  # host -> why (from the SSH preflight)
    before_change: Callable[[], None] | None = None  # takes the host leases (irx.run.leases), or refuses
    notify: Callable[[Step, str], None] | None = None
    on_phase: Callable[[str, bool], None] | None = None  # (phase, again): for status updates to people
    stop_requested: threading.Event = field(default_factory=threading.Event)
    resume: Resumption | None = None  # irx resume: the steps done before and the hosts kept (irx.resume)
    results: dict[str, StepResult] = field(default_factory=dict)
    _dry_note: str = ""
    _approved: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)  # step -> (hash, host forms)

    # -- the walk -----------------------------------------------------------------------------------------

    def run(self) -> Outcome:
        try:
            self._phases()
        except _Stop as stop:
            return Outcome(stop.status, stop.reason, self.results, dry_run=self.dry_run)
        if self.dry_run:
            verdict = VERIFICATION_FAILED if self._dry_note else WOULD_RESOLVE
            return Outcome("dry_run", self._dry_note or "dry run: nothing failed", self.results, verdict, True)
        return Outcome("verified", "verification passed", self.results)

    def _phases(self) -> None:
        rollback_reason = self._phase("diagnose") or self._phase("mitigate")
        if rollback_reason is None:
            failed = self._phase("verify", verify=True)
            if failed is None:
                return
            rollback_reason = failed
        if self.dry_run:
            self._dry_rollback(rollback_reason)
            return
        self._rollback(rollback_reason)

    def _dry_rollback(self, reason: str) -> None:
        """In a dry run nothing was changed, so nothing is rolled back: say what a real run would do."""
        steps = [s.id for s in self.playbook.phases.get("rollback", ())]
        would = f"a real run would roll back ({', '.join(steps)})" if steps else "the playbook has no rollback steps"
        note = f"{reason}; {would}. Expected in a dry run: its mitigations did not run"
        self.journal.record(events.Decision(decision="would_run", reason=note))
        self.progress.note(note)
        self._dry_note = f"dry run: {note}"

    def _rollback(self, reason: str) -> None:
        steps = self.playbook.phases.get("rollback", ())
        if not steps:
            raise _Stop("failed", f"{reason}; the playbook has no rollback steps")
        self.journal.record(events.Decision(decision="rollback", reason=reason))
        self.progress.note(f"rolling back: {reason}")
        problem = self._phase("rollback")
        if problem is not None:
            raise _Stop("failed", f"{reason}; rollback failed too: {problem}")
        if self._phase("verify", verify=True, again=True) is None:
            raise _Stop("rolled_back", f"{reason}; rolled back and the system verifies as before")
        raise _Stop("rolled_back", f"{reason}; rolled back, and verification still fails")

    def _phase(self, phase: str, verify: bool = False, again: bool = False) -> str | None:
        """Run one phase; a reason to roll back, or None. Aborts raise _Stop."""
        steps = [s for s in self.playbook.phases.get(phase, ()) if again or not self._restored(s)]
        if not steps:
            return None
        label = f"{phase} (again)" if again else phase
        self.journal.record(events.PhaseStarted(phase=phase, again=again))
        self.progress.phase(label)
        if self.on_phase is not None:
            self.on_phase(phase, again)
        status = "ok"
        try:
            for step in steps:
                result = self._step(step)
                self.results[step.id] = result
                if result.status in {"ok", "skipped", "would_run", "not_run"}:
                    continue
                why = f"{phase} step '{step.id}' {result.status.replace('_', ' ')}: {first_problem(result)}"
                if step.on_failure == "continue":
                    self.journal.record(events.Decision(step=step.id, phase=phase, decision="continue", reason=why))
                    continue
                status = "failed"
                if verify or (step.on_failure == "rollback" and phase != "rollback"):
                    return why
                raise _Stop("failed", why)
        except BaseException as exc:  # a stop says how the phase ended; anything else (the executor) is a failure
            status = exc.status if isinstance(exc, _Stop) else "failed"
            raise
        finally:
            self.journal.record(events.PhaseFinished(phase=phase, status=status, again=again))
        return None

    def _restored(self, step: Step) -> bool:
        """A step completed before the run was resumed: its recorded result stands, it does not run again."""
        done = self.resume.restored(step) if self.resume is not None else None
        if done is not None:
            self.results[step.id] = done
        return done is not None

    # -- one step -----------------------------------------------------------------------------------------

    def _context(self, host: str | None, own: StepResult | None = None, step: Step | None = None) -> dict[str, Any]:
        context = dict(self.targeting.context(host))
        views = step_views(self.results)
        if own is not None and step is not None:
            views[step.id] = own.view()
            context["result"] = views[step.id]
        context["steps"] = views
        return context

    def _check_stop(self) -> None:
        if self.stop_requested.is_set():
            raise _Stop("interrupted", "interrupted by signal")

    def _step(self, step: Step) -> StepResult:
        self._check_stop()
        hosts = self.targeting.hosts(step.on) if step.runs_on_hosts and step.on else [LOCAL_HOST]
        hosts = [h for h in hosts if h not in (self.resume.kept_for(step) if self.resume else {})]
        started = time.monotonic()
        self.journal.record(
            events.StepStarted(
                phase=step.phase,
                step=step.id,
                action=step.action,
                summary=step.title,
                hosts=hosts,
                mutating=step.mutating,
                approval_required=step.approval_required,
            )
        )
        if step.when is not None:
            decided = self._decide_when(step)
            if decided is not None:
                return self._finish(step, decided, started)
        if self.dry_run and (step.mutating or step.action == "approve"):  # a gate guards what a dry run skips
            note = "would " + ("run (dry run: mutating steps never run)" if step.mutating else "ask (dry run)")
            self.journal.record(
                events.Decision(phase=step.phase, step=step.id, decision="would_run", reason=note, hosts=hosts)
            )
            self.progress.step(step, hosts, note)
            return self._finish(step, StepResult(step.id, "would_run", reason=note), started)
        if self.before_change is not None and (step.mutating or step.action == "approve"):
            try:  # before the first change or gate that is to run; refused (LockHeld): nothing changed
                self.before_change()
            except IrxError as exc:
                self._finish(step, StepResult(step.id, "not_run", reason=str(exc)), started)
                raise
        if step.approval_required:
            refused = self._approve(step, hosts)
            if refused is not None:
                return self._finish(step, refused, started)
        self.progress.step(step, hosts)
        result = self._attempts(step, hosts)
        return self._finish(step, result, started)

    def _finish(self, step: Step, result: StepResult, started: float) -> StepResult:
        result.duration = time.monotonic() - started
        self.journal.record(
            events.StepFinished(
                phase=step.phase,
                step=step.id,
                status=result.status,
                duration=round(result.duration, 3),
                attempts=result.attempts,
                reason=result.reason,
                aggregates=result.aggregates(),
            )
        )
        self.progress.step_done(step, result)
        return result

    def _decide_when(self, step: Step) -> StepResult | None:
        """None to run the step; a skipped (or undecidable) result otherwise."""
        expr = step.when
        assert expr is not None
        try:
            value = templating.evaluate(expr, self._context(None))
        except TemplateError as exc:
            if self.dry_run:
                reason = f"cannot decide in a dry run ({exc}); it depends on steps that did not run"
                decided = events.Decision(phase=step.phase, step=step.id, decision="would_run", expression=str(expr),
                                          reason=reason)  # fmt: skip
                self.journal.record(decided)
                self.progress.step(step, [], f"undecided: {reason}")
                return StepResult(step.id, "would_run" if step.mutating else "not_run", reason=reason)
            reason = f"when: {exc}"
            self.journal.record(events.Error(phase=step.phase, step=step.id, message=reason, where="when"))
            return StepResult(step.id, "failed", reason=reason)
        run = templating.truthy(value)
        decision = "run" if run else "skip"
        self.journal.record(events.Decision(phase=step.phase, step=step.id, decision=decision, expression=str(expr),
                                            value=jsonable(value), reason=f"when: {expr} -> {value!r}"))  # fmt: skip
        if run:
            return None
        self.progress.step(step, [], f"skipped: {expr} is false")
        return StepResult(step.id, "skipped", reason=f"condition false: {expr}")

    def _approve(self, step: Step, hosts: Sequence[str]) -> StepResult | None:
        try:
            forms, summary = self._gate_view(step, hosts)
        except TemplateError as exc:
            forms, summary = [], f"(cannot render: {exc})"
        gate_hash = digest(forms)
        approval = self.approver(step, hosts, summary, gate_hash)
        self.journal.record(
            events.Approval(
                phase=step.phase,
                step=step.id,
                approved=approval.approved,
                method=approval.method,
                by=approval.by,
                plan_hash=self.plan_hash,
                approval_hash=gate_hash,
                hosts=list(hosts),
                reason=approval.reason or step.approval_reason,
                summary=summary,
                approvers=list(approval.approvers) or None,
                needed=approval.needed,
            )
        )
        if approval.approved:
            self._approved[step.id] = (gate_hash, dict(forms))
            return None
        stop = approval.stops_run(step.id, gate_hash)
        if stop is not None:
            raise _Stop(*stop)
        why = approval.skip_reason()
        self.progress.note(f"{step.id}: {why}; not run")
        return StepResult(step.id, "skipped", reason=why)

    def _gate_view(self, step: Step, hosts: Sequence[str]) -> tuple[list[tuple[str, Any]], str]:
        """What the approver approves: each host's rendering (masked) and the text shown for it."""
        if step.runs_on_hosts:
            tasks = self._render_hosts(step, hosts)
            forms = [(host, self._form(task)) for task in tasks for host in task.hosts]
            # The plan's lines for the same rendering (irx.actions), so a gate shows what irx plan showed.
            lines = [actions.text(actions.host_action(t.action, t.spec, t.args, t.env, t.chdir)) for t in tasks]
            return forms, "\n".join(
                f"{self.mask(x)}  [on {', '.join(t.hosts)}]" for x, t in zip(lines, tasks, strict=True)
            )
        spec = self._render_local(step)
        form = self.mask({"action": step.action, "spec": jsonable(spec)})
        return [(LOCAL_HOST, form)], self.mask(actions.text(actions.shown(step, spec)))

    def _form(self, task: HostTask) -> Any:
        rendered: dict[str, Any] = {"env": dict(task.env), "chdir": task.chdir}
        if task.action == "shell":
            rendered["shell"] = str(task.spec)
        elif task.action == "command":
            rendered["command"] = list(task.spec)
        else:
            rendered.update(module=str(task.spec), args=jsonable(dict(task.args)))
        return self.mask(host_form(task.action, rendered, task.become, task.timeout))

    def _unapproved(self, step: Step, tasks: Sequence[HostTask]) -> str | None:
        """Why these tasks are not what was approved for ``step``, or None (also when it needs no approval)."""
        if step.id not in self._approved:
            return None
        approved_hash, approved = self._approved[step.id]
        for task in tasks:
            form = self._form(task)
            for host in task.hosts:
                if approved.get(host) != form:
                    return (
                        f"refused: what would run on {host} is not what was approved ({short(approved_hash)}): "
                        "the rendering changed since the approval"
                    )
        return None

    # -- attempts, until, retries ---------------------------------------------------------------------------

    def _attempts(self, step: Step, hosts: Sequence[str]) -> StepResult:
        # In a dry run no mutation happened, so mitigate and verify steps have nothing to wait for: their
        # retries (which wait for a mitigation to take effect) would only make a rehearsal slow.
        retries = 0 if self.dry_run and step.phase != "diagnose" else step.retries
        attempt = 0
        while True:
            attempt += 1
            result = self._execute(step, hosts)
            result.attempts = attempt
            done = self._until_met(step, result) if step.until is not None else result.status == "ok"
            if done or attempt > retries:
                if step.until is not None and not done and result.status == "ok":
                    result.status = "failed"
                    result.reason = f"until: {step.until} still false after {attempt} attempt(s)"
                if retries < step.retries and not done:
                    result.reason = f"{result.reason or 'did not succeed'} (dry run: no retries after a mitigation)"
                return result
            self.journal.record(
                events.Decision(
                    phase=step.phase,
                    step=step.id,
                    decision="retry",
                    attempt=attempt,
                    reason=result.reason or f"attempt {attempt} did not succeed",
                    delay=step.delay,
                )
            )
            self.progress.note(
                f"{step.id}: attempt {attempt} of {retries + 1} did not succeed; retrying in {step.delay:g}s"
            )
            if self.stop_requested.wait(step.delay):
                raise _Stop("interrupted", "interrupted by signal")

    def _until_met(self, step: Step, result: StepResult) -> bool:
        assert step.until is not None
        try:
            value = templating.evaluate(step.until, self._context(None, own=result, step=step))
        except TemplateError as exc:
            result.reason = f"until: {exc}"
            return False
        return templating.truthy(value)

    def _execute(self, step: Step, hosts: Sequence[str]) -> StepResult:
        try:
            if step.runs_on_hosts:
                return self._execute_hosts(step, hosts)
            return self._execute_local(step)
        except TemplateError as exc:
            reason = f"cannot render: {exc}"
            self.journal.record(events.Error(phase=step.phase, step=step.id, message=reason, where="render"))
            return StepResult(step.id, "failed", reason=reason)

    # -- host steps ------------------------------------------------------------------------------------------

    def _render_hosts(self, step: Step, hosts: Sequence[str]) -> list[HostTask]:
        """One HostTask per distinct rendering (usually one for all hosts), from the shown form (irx.actions)."""
        groups: dict[str, HostTask] = {}
        for host in hosts:
            action = actions.render(step, _fields(self._context(host), f"step '{step.id}'"))
            args, env = action.get("args", {}), action.get("env", {})
            task = HostTask(
                step.id, [host], step.action, action[step.action], args, env, action.get("chdir"), step.become,
                step.timeout,
            )  # fmt: skip
            key = repr((task.spec, sorted(task.args.items()), sorted(task.env.items()), task.chdir))
            if key in groups:
                groups[key].hosts = [*groups[key].hosts, host]
            else:
                groups[key] = task
        return list(groups.values())

    def _execute_hosts(self, step: Step, hosts: Sequence[str]) -> StepResult:
        target = self.playbook.targets.get(step.on or "")
        results = dict(self.resume.kept_for(step)) if self.resume else {}  # hosts where it succeeded before
        total = len(hosts) + len(results)
        for host in hosts:
            if host in self.unreachable:
                results[host] = HostResult(host, "unreachable", msg=self.unreachable[host])
                self.journal.record(host_event(step, results[host]))
        alive = [h for h in hosts if h not in self.unreachable]
        budget = target.max_fail_percentage if target else 0.0
        for batch in batches(alive, target.serial if target and step.mutating else None):
            self._check_stop()
            tasks = self._render_hosts(step, batch)
            refused = self._unapproved(step, tasks)
            if refused is not None:  # nothing runs that was not approved, exactly as shown
                self.journal.record(
                    events.Approval(
                        phase=step.phase, step=step.id, approved=False, method="binding", by="irx",
                        plan_hash=self.plan_hash, approval_hash=self._approved[step.id][0], hosts=list(batch),
                        reason=refused,
                    )
                )  # fmt: skip
                raise _Stop("awaiting_approval", f"step '{step.id}': {refused}; approve what it would run now")
            try:
                outcome = self.host_runner.run(tasks)
            except IrxError:
                if self.stop_requested.is_set():  # a second interrupt stopped Ansible mid-step: still an interrupt
                    raise _Stop("interrupted", f"interrupted by signal: step '{step.id}' was stopped") from None
                raise
            for host in batch:
                result = outcome.get(host) or HostResult(host, "failed", msg="no result")
                parse_into(step, result)
                results[host] = result
                self.journal.record(host_event(step, result))
            if over_budget(results, total, budget):
                break
        missing = [h for h in hosts if h not in results]
        for host in missing:
            results[host] = HostResult(host, "skipped", msg="not run: the failure budget was spent")
            self.journal.record(host_event(step, results[host]))
        status = step_status(results, total, budget)
        failed = [h for h, r in results.items() if r.status not in {"ok", "skipped"}]
        reason = f"{len(failed)} of {total} host(s) failed" if failed else ""
        return StepResult(step.id, status, hosts=results, reason=reason)

    # -- local steps -------------------------------------------------------------------------------------------

    def _render_local(self, step: Step) -> Any:
        """What the control-node executor takes: the shown form's payload (irx.actions)."""
        action = actions.render(step, _fields(self._context(None), f"step '{step.id}'"))
        return actions.payload(step, action)

    def _execute_local(self, step: Step) -> StepResult:
        spec = self._render_local(step)
        started = time.monotonic()
        if step.action == "http":
            host = self.http_runner(spec)
        elif step.action == "wait":
            from irx.model import parse_duration

            if self.stop_requested.wait(parse_duration(spec)):
                raise _Stop("interrupted", "interrupted by signal")
            host = HostResult(LOCAL_HOST, "ok")
        elif step.action == "assert":
            host = self._assert(step, spec)
        elif step.action == "approve":
            host = HostResult(LOCAL_HOST, "ok", stdout=spec["message"])  # the gate itself ran in _approve
        else:  # notify
            if self.notify is not None:
                self.notify(step, spec["message"])
            host = HostResult(LOCAL_HOST, "ok", stdout=spec["message"])
        host.duration = host.duration or time.monotonic() - started
        if step.action == "http" and host.status == "ok":
            parse_into(step, host)
            if step.parse is None:
                host.data = host.extra.get("json")
        self.journal.record(host_event(step, host))
        status = "ok" if host.status == "ok" else host.status
        return StepResult(step.id, status, hosts={LOCAL_HOST: host}, reason=host.msg)

    def _assert(self, step: Step, spec: Mapping[str, Any]) -> HostResult:
        that = spec["that"]
        context = self._context(None)
        for expr in that if isinstance(that, list) else [that]:
            try:
                value = templating.evaluate(expr, context)
            except TemplateError as exc:
                return HostResult(LOCAL_HOST, "failed", msg=f"{expr}: {exc}")
            if not templating.truthy(value):
                message = spec.get("message")
                text = _render(message, context, f"step '{step.id}'", "assert.message") if message else ""
                return HostResult(LOCAL_HOST, "failed", msg=text or f"assertion failed: {expr} -> {value!r}")
        return HostResult(LOCAL_HOST, "ok", data=True)


def _render(source: str, context: Mapping[str, Any], where: str, field_name: str, shell: bool = False) -> str:
    try:
        return templating.render(source, context, shell=shell)
    except TemplateError as exc:
        raise TemplateError(f"{where}, field {field_name}: {exc}") from None


def _fields(context: Mapping[str, Any], where: str) -> actions.Fields:
    """A run's rendering of a step's fields: everything rendered now; an assert's conditions are decided when
    it runs."""
    return actions.Fields(lambda name, source, shell: _render(source, context, where, name, shell=shell))

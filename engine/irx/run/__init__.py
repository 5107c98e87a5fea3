"""``irx run`` without its terminal: inputs, lock, journal, hosts, signals, around the orchestrator.

Order matters for a 3 a.m. user: cheap mistakes (unknown playbook, bad ``-e``, unknown ``--approve``
step) fail before Ansible is imported; the journal exists before the first host is touched; the Ansible
session starts in the background while the SSH preflight runs, so the first diagnostic result comes as
early as Ansible allows. Everything opened is closed by one ExitStack, in the reverse order of opening:
the leases, the Ansible session, then ``run_finished`` and the journal, then the host locks. This module
prints nothing: progress goes to the ``RunProgress`` it is given (irx.commands.run shows it).
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, Protocol

from irx import events
from irx.errors import IrxError, UsageError
from irx.executors.base import HostRunner
from irx.inventory import Vault
from irx.lease import LEASE_STEP
from irx.model import Playbook
from irx.orchestrator import Orchestrator, Progress
from irx.outcome import Outcome
from irx.redact import Redactor
from irx.run.approvals import Ask, Inbox, Policy, approver
from irx.run.comms import Communications, notify_channels
from irx.run.leases import host_leases, leased, taker
from irx.run.prepare import Prepared, Targeting, check_approve_ids, hosts_changed, prepare, shown_params, start_sessions
from irx.run.resume import Continuation, check_plan, clear_gate_files, continuation, recorded_supplied, supplied_again

if TYPE_CHECKING:
    from irx.approvers import Approvers
    from irx.executors.session import AnsibleSessions
    from irx.inventory import Inventory
    from irx.lock import HostLocks
    from irx.params import Supplied
    from irx.resume import Resumption
    from irx.timeline import Journal

__all__ = ["Ask", "RunOptions", "RunProgress", "RunResult", "run_playbook"]


@dataclass
class RunOptions:
    inventory: str | None = None
    limit: str | None = None
    extra_vars: Sequence[str] = ()
    dry_run: bool = False
    yes: bool = False
    approve: Sequence[str] = ()
    wait_approval: float | None = None  # seconds a gate waits for irx approve / deny (None: it does not wait)
    approvers: Path | None = None  # who may approve (irx.approvers); None: anyone, once
    trigger: str | None = None  # @FILE: what started the run (irx.alerts.read_trigger)
    approval_url: str | None = None  # irx serve's public URL: the run's page is APPROVAL_URL/runs/RUN_ID
    resume: Path | None = None  # irx resume: the stopped run's directory, continued in its own journal
    from_step: str | None = None  # irx resume --from STEP
    replan: bool = False  # irx resume --replan: continue although the plan renders differently now
    force: bool = False
    runs_dir: Path | None = None
    quiet: bool = False
    fmt: str = "text"
    forks: int = 10
    mitogen: bool = False  # Ansible over Mitogen's connections (irx.executors.ansible.strategy_for)
    playbook_dir: Path | None = None
    interactive: bool | None = None  # None: ask when stdin and stdout are terminals
    preflight_timeout: float = 1.5
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    vault: Vault = field(default_factory=Vault)


class RunProgress(Progress, Protocol):
    """The orchestrator's progress, and the run's header (what runs where, the run id, the journal)."""

    def header(self, text: str) -> None: ...


@dataclass(frozen=True)
class RunResult:
    outcome: Outcome
    run_id: str
    journal: Path
    duration: float


def run_playbook(
    name: str, options: RunOptions, progress: RunProgress, redactor: Redactor, ask: Ask | None = None
) -> RunResult:
    """Run playbook ``name``; its journal records everything. ``redactor`` learns the run's secrets (the
    caller redacts its own output with it); ``ask`` asks a person at a gate (None: nobody to ask).
    Raises ``IrxError`` for what was refused before the run began (exit 2), after recording it."""
    from irx.approvers import anyone, load_approvers
    from irx.plan import resolve_targets

    playbook, supplied, inv, trigger, cont = _inputs(name, options)
    book = load_approvers(options.approvers) if options.approvers is not None else anyone()
    targets = resolve_targets(playbook, inv)

    def on_host_event(step_id: str, host: str, status: str, duration: float) -> None:
        if step_id != LEASE_STEP:  # the leases' own tasks are not a step's
            progress.host(step_id, host, status, duration)

    with contextlib.ExitStack() as stack:
        sessions = start_sessions(
            playbook, inv, targets, options.forks, redactor.exposes, on_host_event, options.mitogen
        )
        stack.callback(sessions.close)
        prepared = prepare(playbook, inv, supplied, options.environ, targets)
        changes = check_plan(cont, prepared, options.replan) if cont is not None else []
        run = _open(stack, playbook, inv, prepared, options, progress, redactor, sessions, cont)
        run.trigger, run.supplied, run.changes, run.approvers = trigger, supplied, changes, book
        try:
            run.ending.outcome = _walk(run, stack, ask)
        except IrxError as exc:
            from irx.lock import LockHeld

            refused = isinstance(exc, UsageError | LockHeld)  # refused before anything changed: exit 2
            run.journal.record(events.Error(message=str(exc), where="run"))
            run.ending.outcome = Outcome("failed", str(exc), {}, dry_run=options.dry_run, refused=refused)
            if refused:
                raise
    assert run.ending.outcome is not None
    return RunResult(run.ending.outcome, run.run_id, run.journal.path, run.ending.duration)


@dataclass
class _Run:
    """One run once its journal is open: what the walk needs."""

    playbook: Playbook
    inv: Inventory
    prepared: Prepared
    options: RunOptions
    progress: RunProgress
    redactor: Redactor
    sessions: AnsibleSessions
    run_id: str
    operator: str
    run_info: dict[str, Any]
    changed: dict[str, str]
    lock: HostLocks | None
    journal: Journal
    comms: Communications
    ending: _Ending
    trigger: dict[str, Any] | None = None  # what started the run (--trigger), recorded in run_started
    cont: Continuation | None = None  # irx resume: the stopped run this continues
    supplied: Mapping[str, Supplied] = field(default_factory=dict)  # the -e values
    changes: list[str] = field(default_factory=list)  # irx resume --replan: what renders differently now
    approvers: Approvers | None = None  # who may approve (--approvers); None: anyone, once


class _Ending:
    """On leaving the run however it ends: the last message, then ``run_finished``, then the journal closed.
    ``outcome`` is what the walk returned; none (an unexpected stop) is recorded as a failure."""

    def __init__(
        self, journal: Journal, comms: Communications, close_notifier: Callable[[], None], dry_run: bool
    ) -> None:
        self.journal, self.comms, self.close_notifier, self.dry_run = journal, comms, close_notifier, dry_run
        self.outcome: Outcome | None = None
        self.started = time.monotonic()
        self.duration = 0.0

    def __enter__(self) -> _Ending:
        return self

    def __exit__(self, *exc_info: object) -> None:
        final = self.outcome or Outcome("failed", "irx stopped unexpectedly", {}, dry_run=self.dry_run)
        self.duration = round(time.monotonic() - self.started, 3)
        if self.journal.closed:
            return
        try:
            self.comms.finish(final)
            self.close_notifier()
        except Exception as exc:  # whatever the last message did, run_finished is written
            self.journal.record(events.Error(message=f"final notification failed: {exc}", where="notify"))
        self.journal.record(
            events.RunFinished(
                status=final.status,
                exit_code=int(final.exit_code),
                duration=self.duration,
                reason=final.reason,
                verdict=final.verdict or None,
            )
        )
        self.journal.close()


def _open(
    stack: contextlib.ExitStack[Any],
    playbook: Playbook,
    inv: Inventory,
    prepared: Prepared,
    options: RunOptions,
    progress: RunProgress,
    redactor: Redactor,
    sessions: AnsibleSessions,
    cont: Continuation | None = None,
) -> _Run:
    """The host locks (a dry run, or a playbook that changes nothing, takes none), the journal, the channels;
    each closed by ``stack``."""
    from irx.lock import HostLocks, default_lock_dir
    from irx.notify import Notifier, secret_values
    from irx.timeline import Journal, current_operator, default_runs_dir, new_run_id, utc_timestamp

    channels = notify_channels(inv, prepared.hosts, options.environ)
    redactor.add(*prepared.secrets, *secret_values(channels))
    operator, run_id = current_operator(), cont.run_id if cont is not None else new_run_id()
    changed = hosts_changed(playbook, prepared, inv)
    lock = None
    if not options.dry_run and changed:
        lock = stack.enter_context(
            HostLocks.acquire(default_lock_dir(), playbook.name, changed, run_id, operator, options.force)
        )
    if cont is not None:
        journal = Journal.reopen(cont.run_dir, redactor, read_seq=cont.seq)
        stack.callback(journal.close)  # a refusal before _Ending (below) still lets the journal go
        clear_gate_files(cont.run_dir, cont.resumption.attempt)
    else:
        journal = Journal.create(options.runs_dir or default_runs_dir(), run_id, redactor)
    # A run an alert started tells people even in a dry run (a route in mode diagnose): the alert is real
    # and someone was paged; the messages say it is a dry run. A dry run typed at a terminal sends nothing.
    alerted = options.trigger is not None
    notifier = Notifier(
        channels, journal.record, redactor.redact_text, options.dry_run and not alerted, timeout=3.0, retries=1
    )
    run_info = {
        "id": run_id,
        "started_at": utc_timestamp(),
        "severity": playbook.severity,
        "operator": operator,
        "dry_run": options.dry_run,
        "url": f"{options.approval_url.rstrip('/')}/runs/{run_id}" if options.approval_url else None,
    }
    comms = Communications(notifier, playbook, run_info, prepared.hosts, journal, progress, after_diagnosis=alerted)
    ending = stack.enter_context(_Ending(journal, comms, notifier.close, options.dry_run))
    stack.callback(sessions.close)  # again (it is idempotent): the session ends before run_finished
    return _Run(
        playbook, inv, prepared, options, progress, redactor, sessions, run_id, operator, run_info, changed, lock,
        journal, comms, ending, cont=cont,
    )  # fmt: skip


def _inputs(
    name: str, options: RunOptions
) -> tuple[Playbook, dict[str, Supplied], Inventory, dict[str, Any] | None, Continuation | None]:
    """The playbook, the -e values, the inventory and the trigger: as given, or (irx resume) as the stopped
    run was started with. Cheap mistakes fail here, before Ansible is imported."""
    from irx.alerts import read_trigger
    from irx.inventory import load_inventory
    from irx.library import find_playbook
    from irx.loader import load_playbook
    from irx.params import parse_extra_vars

    given = parse_extra_vars(options.extra_vars)
    if options.resume is None:
        playbook = load_playbook(find_playbook(name, options.playbook_dir))
        check_approve_ids(playbook, options.approve)
        trigger = read_trigger(options.trigger) if options.trigger else None
        return playbook, given, load_inventory(options.inventory, options.limit, options.vault), trigger, None
    cont, playbook = continuation(options.resume, options.from_step, options.playbook_dir)
    check_approve_ids(playbook, options.approve)
    supplied = supplied_again(cont, playbook, given, options.environ)
    return playbook, supplied, load_inventory(cont.inventory, cont.limit, options.vault), cont.trigger, cont


def _record_start(run: _Run) -> None:
    from irx import __version__

    playbook, options, prepared = run.playbook, run.options, run.prepared
    mode = "dry-run" if options.dry_run else "run"
    if run.cont is not None:
        _record_resumed(run, run.cont)
    else:
        _record_started(run, mode, __version__)
    if run.lock is not None:
        for event in run.lock.lock_events():
            run.journal.record(event)
    verb = f"resume (attempt {run.cont.resumption.attempt})" if run.cont is not None else mode
    run.progress.header(
        f"irx {verb} {playbook.name} [{playbook.severity}] on {run.inv.name} ({len(prepared.hosts)} host(s))"
        f"  run {run.run_id}\nplan {prepared.plan_hash}  journal {run.journal.path}"
        + ("" if run.comms.notifier.channels else f"\n{NO_CHANNELS}")
    )
    for warning in [*prepared.warnings, *(f"replanned: {change}" for change in run.changes)]:
        run.progress.note(f"warning: {warning}")


# Said once, in the run's header, when no channel is configured: the run is not silently telling nobody.
NO_CHANNELS = (
    "notifications: no channel configured (irx_notify in the inventory, or IRX_SLACK_WEBHOOK_URL, IRX_WEBHOOK_URL, "
    "IRX_NOTIFY_FILE): nobody is told about this run"
)


def _record_resumed(run: _Run, cont: Continuation) -> None:
    resumption = cont.resumption
    run.journal.record(
        events.RunResumed(
            operator=run.operator,
            after=resumption.after,
            plan_hash=run.prepared.plan_hash,
            attempt=resumption.attempt,
            pid=os.getpid(),
            from_step=resumption.from_step,
            rerun_hosts=_rerun_hosts(run, resumption) if resumption.kept else None,
            done=list(resumption.done),
            replanned=bool(run.changes) or None,
            changes=run.changes or None,
            approve=list(run.options.approve) or None,
            yes=run.options.yes or None,
        )
    )


def _rerun_hosts(run: _Run, resumption: Resumption) -> list[str]:
    step = next(s for s in run.playbook.steps if s.id == resumption.from_step)
    hosts = run.prepared.targets.get(step.on or "", [])
    return [h for h in hosts if h not in resumption.kept]


def _record_started(run: _Run, mode: str, version: str) -> None:
    playbook, options, prepared = run.playbook, run.options, run.prepared
    run.journal.record(
        events.RunStarted(
            playbook=playbook.name,
            playbook_path=str(playbook.path),
            title=playbook.title,
            severity=playbook.severity,
            inventory=run.inv.name,
            mode=mode,
            operator=run.operator,
            plan_hash=prepared.plan_hash,
            params=shown_params(playbook, prepared.params),
            hosts=prepared.hosts,
            targets=prepared.targets,
            irx_version=version,
            forced_lock=bool(run.lock is not None and run.lock.forced),
            pid=os.getpid(),
            summary=playbook.summary,
            symptoms=list(playbook.symptoms),
            tags=list(playbook.tags),
            plan=prepared.steps,
            yes=options.yes,
            approve=list(options.approve),
            limit=options.limit or None,
            trigger=run.trigger,
            inventory_source=run.inv.source,
            supplied=recorded_supplied(playbook, run.supplied) or None,
        )
    )


def _reachable(
    run: _Run, stack: contextlib.ExitStack[Any]
) -> tuple[dict[str, str], HostRunner, Callable[[], None] | None]:
    """The SSH preflight, then the leases' settings: the hosts that will not be changed, each with why, the
    runner the host steps go through, and what takes the leases before the first change (irx.run.leases)."""
    from irx.executors.preflight import preflight, ssh_target

    ssh = [t for t in (ssh_target(h, run.inv.host_vars(h)) for h in run.prepared.hosts) if t is not None]
    unreachable = preflight(ssh, run.options.preflight_timeout)
    for host, reason in unreachable.items():
        run.journal.record(
            events.HostResultEvent(host=host, status="unreachable", msg=f"preflight: {reason}", phase="preflight")
        )
        run.progress.note(f"✗ {host} unreachable before any step: {reason}")
    if run.lock is None:
        return unreachable, run.sessions, None
    remote = {h: m for h, m in run.changed.items() if h not in unreachable}
    leases = host_leases(
        run.playbook, run.prepared, run.inv, remote, (run.run_id, run.operator), run.options.environ,
        run.sessions, run.journal,
    )  # fmt: skip
    stack.callback(leases.release)  # before the session closes: it carries the release to the hosts
    take = taker(leases, run.options.force, run.progress.note, unreachable)
    runner = leased(run.sessions, leases, run.playbook, take, run.options.force)
    return unreachable, runner, take if leases.hosts else None


def _walk(run: _Run, stack: contextlib.ExitStack[Any], ask: Ask | None) -> Outcome:
    from irx.executors.http import run_http

    _record_start(run)
    unreachable, runner, take = _reachable(run, stack)
    if run.cont is None:  # a continuation's people were told when the run started
        run.comms.start()
    stop = threading.Event()
    inbox = None
    if run.options.wait_approval is not None:
        run_dir, timeout = run.journal.path.parent, run.options.wait_approval
        inbox = Inbox(run_dir, run.run_id, timeout, run.journal, run.progress.note, stop, escalate=run.comms.escalate)
    policy = Policy(run.approvers, run.playbook.name, run.playbook.severity) if run.approvers is not None else None
    orchestrator = Orchestrator(
        playbook=run.playbook,
        targeting=Targeting(run.inv, run.prepared, run.run_info),
        journal=run.journal,
        progress=run.progress,
        host_runner=runner,
        http_runner=run_http,
        approver=approver(run.options.yes, run.options.approve, run.operator, ask, inbox, policy),
        dry_run=run.options.dry_run,
        plan_hash=run.prepared.plan_hash,
        mask=run.redactor.redact,
        unreachable=unreachable,
        before_change=take,
        notify=run.comms.step,
        on_phase=run.comms.phase,
        stop_requested=stop,
        results=run.comms.results,  # the same mapping: the first message reads the diagnosis from it
        resume=run.cont.resumption if run.cont is not None else None,
    )
    stack.enter_context(_signals(stop, run.sessions, run.progress))
    return orchestrator.run()


@contextlib.contextmanager
def _signals(stop: threading.Event, sessions: AnsibleSessions, progress: Progress) -> Iterator[None]:
    """First SIGINT/SIGTERM/SIGHUP: start no new step, let the current one end. Second: stop it now."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        if stop.is_set():
            progress.note("second interrupt: stopping the running step")
            sessions.abort()
            return
        stop.set()
        progress.note("interrupt: finishing the current step, then stopping (interrupt again to stop it now)")

    # SIGHUP too: a dropped SSH session or a closed terminal must not kill a run halfway, unrecorded.
    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)

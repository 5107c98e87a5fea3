"""``irx run``: everything around the orchestrator — inputs, lock, journal, hosts, signals, output.

Order matters for a 3 a.m. user: cheap mistakes (unknown playbook, bad ``-e``, unknown ``--approve``
step) fail before Ansible is imported; the journal exists before the first host is touched; the Ansible
session starts in the background while the SSH preflight runs, so the first diagnostic result comes as
early as Ansible allows.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import click

from irx import events
from irx.errors import IrxError, UsageError
from irx.executors.ansible import MAX_ROUNDS, AnsibleSession, HostTask
from irx.inventory import Vault
from irx.lease import LEASE_STEP, HostLeases
from irx.model import Playbook, Step
from irx.orchestrator import Approval, Orchestrator, Outcome
from irx.redact import Redactor
from irx.results import HostResult, StepResult
from irx.verdict import WOULD_RESOLVE

SYMBOLS = {
    "ok": "✓",
    "failed": "✗",
    "timed_out": "⏱",
    "unreachable": "✗",
    "skipped": "-",
    "would_run": "◇",
    "not_run": "-",
}


@dataclass
class RunOptions:
    inventory: str | None = None
    limit: str | None = None
    extra_vars: Sequence[str] = ()
    dry_run: bool = False
    yes: bool = False
    approve: Sequence[str] = ()
    force: bool = False
    runs_dir: Path | None = None
    quiet: bool = False
    fmt: str = "text"
    forks: int = 10
    playbook_dir: Path | None = None
    interactive: bool | None = None  # None: ask when stdin and stdout are terminals
    preflight_timeout: float = 1.5
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    vault: Vault = field(default_factory=Vault)


# -- the command ----------------------------------------------------------------------------------------------


def run_command(name: str, options: RunOptions) -> int:
    from irx.inventory import load_inventory
    from irx.library import find_playbook
    from irx.loader import load_playbook
    from irx.params import parse_extra_vars

    playbook = load_playbook(find_playbook(name, options.playbook_dir))
    _check_approve_ids(playbook, options.approve)
    supplied = parse_extra_vars(options.extra_vars)
    inv = load_inventory(options.inventory, options.limit, options.vault)
    from irx.plan import resolve_targets

    targets = resolve_targets(playbook, inv)
    redactor = Redactor()  # the run's secrets, added once known; the executor asks it before each step
    sessions = _early_sessions(playbook, inv, targets, options, redactor.exposes)
    try:
        prepared = _prepare(playbook, inv, supplied, options.environ, targets)
    except BaseException:
        sessions.close()
        raise
    return _execute(playbook, inv, prepared, options, sessions, redactor)


def _early_sessions(
    playbook: Playbook, inv: Any, targets: Mapping[str, Any], options: RunOptions, exposes: Callable[[str], bool]
) -> _Sessions:
    """Start Ansible (about 2 s of start-up) now, while irx renders the plan, takes the lock and opens the
    journal: it only waits for work, so the first diagnostic result comes as early as Ansible allows."""
    hosts = list(dict.fromkeys(h for _, found in targets.values() for h in found))
    sessions = _Sessions(inv.source, hosts, options.forks, exposes, inv.vault)
    if hosts and any(s.runs_on_hosts for s in playbook.steps):
        sessions.start_in_background()
    return sessions


def _check_approve_ids(playbook: Playbook, approve: Sequence[str]) -> None:
    """``--approve STEP[@HASH]`` per gated step: a step that needs no approval, or a malformed hash, is a
    usage error before anything starts."""
    from irx.approval import parse_approve

    try:
        wanted = parse_approve(approve)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    gated = {s.id for s in playbook.steps if s.approval_required}
    for step_id in wanted:
        if step_id not in gated:
            known = ", ".join(sorted(gated)) or "none"
            raise UsageError(
                f"--approve {step_id}: no step of {playbook.name} with that id needs approval (those that do: {known})"
            )


@dataclass
class _Prepared:
    plan_hash: str
    targets: dict[str, list[str]]
    params: Any  # irx.params.ParamSet
    secrets: list[Any]
    warnings: list[str]
    steps: list[dict[str, Any]]  # run_started's plan: every step, with what it will do (a report's "never reached")


def _prepare(
    playbook: Playbook, inv: Any, supplied: Any, environ: Mapping[str, str], targets: Mapping[str, Any]
) -> _Prepared:
    """The plan (and its hash) and what it was computed from: the run executes exactly that."""
    from irx.plan import build_plan

    plan = build_plan(playbook, inv, supplied, environ, targets)
    targets = {name: list(hosts) for name, hosts in plan.targets.items()}
    return _Prepared(
        plan.hash, targets, plan.params, list(plan.secrets), list(plan.warnings), _plan_items(plan.body, targets)
    )


def _plan_items(body: Mapping[str, Any], targets: Mapping[str, list[str]]) -> list[dict[str, Any]]:
    """The plan as run_started records it (schemas/timeline.schema.json, run_started.plan)."""
    from irx.plan import action_line

    items: list[dict[str, Any]] = []
    for step in body.get("steps", []):
        renderings = step.get("renderings") or []
        hosts = list(dict.fromkeys(h for r in renderings for h in r.get("hosts") or []))
        item: dict[str, Any] = {
            "id": step["id"],
            "phase": step["phase"],
            "action": step["action"],
            "title": step.get("name") or step["id"],
            "mutating": bool(step.get("mutating")),
            "approval_required": bool((step.get("approval") or {}).get("required")),
        }
        target = (step.get("target") or {}).get("name")  # none: it runs on the control node
        if target:
            item["target"] = target
            item["hosts"] = hosts or list(targets.get(target, []))
        if renderings:
            item["summary"] = action_line(renderings[0].get("action"))
        items.append(item)
    return items


class _HostVars(Mapping[str, Any]):
    """A host's inventory variables, templated by Ansible's rules on first access."""

    def __init__(self, inv: Any, host: str) -> None:
        self._inv, self._host, self._raw = inv, host, inv.host_vars(host)

    def __getitem__(self, key: str) -> Any:
        if key not in self._raw:
            raise KeyError(key)
        return self._inv.value(self._host, key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._raw)

    def __len__(self) -> int:
        return len(self._raw)


class _Targeting:
    def __init__(self, inv: Any, prepared: _Prepared, run_info: dict[str, Any]) -> None:
        from irx.templating import Namespace

        self._namespace = Namespace
        self.inv = inv
        self.prepared = prepared
        self.run_info = Namespace("run", run_info)

    def hosts(self, target: str) -> list[str]:
        return self.prepared.targets.get(target, [])

    def context(self, host: str | None) -> dict[str, Any]:
        params = self.prepared.params
        ns = self._namespace
        if host is None:
            return {
                "params": ns("params", params.for_run(), params.hints),
                "run": self.run_info,
                "host": ns("host", {"name": "localhost", "groups": []}),
                "vars": ns("vars", {}),
            }
        return {
            "params": ns("params", params.for_host(host), params.host_hints()),
            "run": self.run_info,
            "host": ns("host", {"name": host, "groups": list(self.inv.host_groups(host))}),
            "vars": ns("vars", dict(_HostVars(self.inv, host))),
        }


# -- hosts: the Ansible session, started in the background, renewed when deep -----------------------------------


class _Sessions:
    """The Ansible session for this run, started early and replaced after MAX_ROUNDS rounds."""

    def __init__(
        self, inventory: str, hosts: list[str], forks: int, exposes: Callable[[str], bool], vault: Vault
    ) -> None:
        self.inventory, self.hosts, self.forks, self.vault = inventory, hosts, forks, vault
        self.exposes = exposes  # the run's secrets are learnt after the session starts: asked at each step
        self.progress: _Progress | None = None  # set once the run's output is known
        # The run's host leases (irx.lease) admit or refuse each batch: a host whose lease was lost is not changed.
        self.guard: Callable[[Sequence[HostTask]], tuple[list[HostTask], dict[str, HostResult]]] | None = None
        self._serial = threading.Lock()  # one batch at a time: the lease keepalive shares the session
        self._session: AnsibleSession | None = None
        self._ready = threading.Event()
        self._started = False
        self._error: BaseException | None = None

    def start_in_background(self) -> None:
        self._started = True
        threading.Thread(target=self._start, name="irx-ansible-start", daemon=True).start()

    def _host_event(self, step_id: str, host: str, status: str, duration: float) -> None:
        if self.progress is not None and step_id != LEASE_STEP:
            self.progress.host(step_id, host, status, duration)

    def _start(self) -> None:
        try:
            session = AnsibleSession(
                self.inventory,
                self.hosts,
                forks=self.forks,
                on_host_event=self._host_event,
                exposes=self.exposes,
                vault=self.vault,
            )
            session.start()
            self._session = session
        except BaseException as exc:  # handed to the thread that needs the session
            self._error = exc
        finally:
            self._ready.set()

    def run(self, tasks: Sequence[HostTask]) -> dict[str, HostResult]:
        if self.guard is None:
            return self.send(tasks)
        allowed, refused = self.guard(tasks)
        return {**(self.send(allowed) if allowed else {}), **refused}

    def send(self, tasks: Sequence[HostTask]) -> dict[str, HostResult]:
        """Run a batch as it is (no lease check): the steps' batches after ``run``'s check, and the leases'."""
        with self._serial:
            if not self._started:
                self._started = True
                self._start()
            self._ready.wait()
            if self._error is not None:
                raise self._error
            assert self._session is not None
            if self._session.rounds >= MAX_ROUNDS:
                self._session.close()
                self._ready.clear()
                self._start()
                self._ready.wait()
                if self._error is not None:
                    raise self._error
                assert self._session is not None
            return self._session.run(tasks)

    def abort(self) -> None:
        if self._session is not None:
            self._session.abort()

    def close(self) -> None:
        if self._started:
            self._ready.wait(timeout=60)  # a start in progress finishes (seconds at most), then is closed
        if self._session is not None:
            self._session.close()


# -- progress on the terminal ---------------------------------------------------------------------------------------


class _Progress:
    """Live progress: phase, step, per-host results and durations as they complete."""

    def __init__(self, stream: TextIO | None, redact: Callable[[str], str] = lambda text: text) -> None:
        self.stream = stream
        self.redact = redact  # secrets reach the terminal no more than the journal: data, stderr, messages
        self._lock = threading.Lock()
        self.started = time.monotonic()

    def _out(self, text: str) -> None:
        if self.stream is None:
            return
        with self._lock:
            try:
                self.stream.write(self.redact(text) + "\n")
                self.stream.flush()
            except OSError:
                # The reader is gone (a closed pipe, a hung-up terminal): the run goes on, recorded in its
                # journal; stopping it halfway because nobody watches would be the worst outcome.
                self.stream = None

    def _clock(self) -> str:
        return f"{time.monotonic() - self.started:6.1f}s"

    def header(self, text: str) -> None:
        self._out(text)

    def phase(self, name: str) -> None:
        self._out(f"{self._clock()} == {name}")

    def step(self, step: Step, hosts: Sequence[str], note: str = "") -> None:
        mark = "!" if step.mutating else " "
        where = f" on {_hosts_text(hosts)}" if hosts and step.runs_on_hosts and not note else ""
        self._out(f"{self._clock()} {mark} {step.id}{where}" + (f": {note}" if note else ""))

    def host(self, step_id: str, host: str, status: str, duration: float) -> None:
        self._out(f"{self._clock()}     {SYMBOLS.get(status, '?')} {host} {status} ({duration:.1f}s)")

    def step_done(self, step: Step, result: StepResult) -> None:
        if result.status in {"skipped", "would_run", "not_run"}:
            return
        mark = SYMBOLS.get(result.status, "?")
        detail = f": {result.reason}" if result.reason and result.status != "ok" else ""
        data = _data_text(result) if result.status == "ok" else ""
        self._out(f"{self._clock()}   {mark} {step.id} {result.status} in {result.duration:.1f}s{data}{detail}")
        if result.status != "ok":
            for host, r in result.hosts.items():
                if r.status not in {"ok", "skipped"}:
                    reason = r.msg or (r.stderr.strip().splitlines() or [""])[-1]
                    self._out(f"             {host}: {reason}")

    def note(self, text: str) -> None:
        self._out(f"{self._clock()}   {text}")


def _hosts_text(hosts: Sequence[str]) -> str:
    return ", ".join(hosts) if len(hosts) <= 4 else f"{', '.join(hosts[:3])} and {len(hosts) - 3} more"


def _data_text(result: StepResult) -> str:
    first = next(iter(result.hosts.values()), None)
    data = first.data if first is not None else None
    if data is None or data == "":
        return ""
    text = json.dumps(data, default=str) if not isinstance(data, str) else data
    text = " ".join(text.split())
    return f" -> {text[:100]}{'…' if len(text) > 100 else ''}"


# -- approvals ---------------------------------------------------------------------------------------------------------


def _approver(options: RunOptions, operator: str, progress: _Progress) -> Any:
    from irx.approval import matches, parse_approve, short

    interactive = options.interactive
    if interactive is None:
        interactive = sys.stdin.isatty() and sys.stdout.isatty()
    wanted = parse_approve(options.approve)  # checked before the run started (_check_approve_ids)

    def approve(step: Step, hosts: Sequence[str], summary: str, gate_hash: str) -> Approval:
        if options.yes:
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
        if not interactive:
            return Approval(False, "missing", operator)
        progress.note(f"approval needed for {step.id} ({step.title}):")
        for line in summary.splitlines():
            click.echo(f"      {progress.redact(line)}", err=False)
        click.echo(f"      approval hash {step.id}@{short(gate_hash)}", err=False)
        answer = click.confirm(f"      run {step.id}?", default=False)
        return Approval(answer, "tty" if answer else "refused", operator)

    return approve


# -- signals ---------------------------------------------------------------------------------------------------------


@contextmanager
def _signals(stop: threading.Event, sessions: _Sessions, progress: _Progress) -> Iterator[None]:
    """First SIGINT/SIGTERM/SIGHUP: start no new step, let the current one end. Second: stop it now."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
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


# -- communications: what people are told while it happens ---------------------------------------------------------


class _Communications:
    """Messages at run start, at each phase after diagnose, on notify steps and at the end; rendered from the
    runbook-style templates (or the playbook's ``messages:``), redacted, delivered, and journaled per channel.
    A message that fails to render or deliver is recorded and never stops the run."""

    def __init__(
        self,
        notifier: Any,
        playbook: Playbook,
        run_info: Mapping[str, Any],
        hosts: Sequence[str],
        journal: Any,
        progress: _Progress,
    ) -> None:
        self.notifier, self.playbook, self.journal, self.progress = notifier, playbook, journal, progress
        self.run_info = dict(run_info)
        self.hosts = list(hosts)

    def _send(self, kind: str, status: str, channel: str | None = None, **context: Any) -> None:
        from irx.errors import TemplateError
        from irx.notify import render_message

        book = {"name": self.playbook.name, "title": self.playbook.title, "severity": self.playbook.severity}
        override = self.playbook.messages.get(kind) if kind != "step" else None
        try:
            text = render_message(kind, {"run": self.run_info, "playbook": book, "status": status, **context}, override)
        except TemplateError as exc:
            self.journal.record(events.Error(message=f"message {kind}: {exc}", where="notify"))
            return
        if self.run_info.get("dry_run"):  # rendered and shown, never sent
            self.progress.note(f"message {kind} (not sent in a dry run): {text.strip().splitlines()[0]}")
        self.notifier.send(
            kind,
            text,
            channel=channel,
            run_id=self.run_info["id"],
            playbook=self.playbook.name,
            severity=self.playbook.severity,
            status=status,
            **{k: v for k, v in context.items() if k in {"phase", "step"}},
        )

    def start(self) -> None:
        self._send("initial", "investigating", summary=_hosts_text(self.hosts) if self.hosts else None)

    def phase(self, phase: str, again: bool) -> None:
        if phase != "diagnose":
            status = {"mitigate": "mitigating", "verify": "verifying", "rollback": "rolling back"}[phase]
            self._send("update", status, phase=phase, reason="verification repeated after rollback" if again else None)

    def step(self, step: Step, message: str) -> None:
        self.progress.note(f"notify: {message}")
        channel = step.spec.get("channel") if isinstance(step.spec, Mapping) else None
        self._send("step", "in progress", channel=channel, step=step.id, phase=step.phase, message=message)

    def finish(self, outcome: Outcome) -> None:
        """The last message: resolved only for a verified real run; a dry run says what it would do, a gate
        that nobody answered says it is waiting (irx.verdict)."""
        kind = "resolved" if outcome.status == "verified" or outcome.verdict == WOULD_RESOLVE else "failed"
        if outcome.dry_run:
            status = outcome.headline.lower()  # dry run: would resolve | verification failed | failed
        elif outcome.status == "awaiting_approval":
            status = "waiting for approval"
        else:
            status = {"verified": "resolved"}.get(outcome.status, outcome.status.replace("_", " "))
        self._send(kind, status, reason=outcome.reason, headline=outcome.outcome_text)


def _notify_channels(inv: Any, hosts: Sequence[str], environ: Mapping[str, str]) -> list[Any]:
    """Channels from the inventory variable ``irx_notify`` (group ``all`` or the targeted hosts) and env."""
    from irx.notify import load_channels

    first = hosts[0] if hosts else None
    configured = inv.value(first, "irx_notify") if first and "irx_notify" in inv.host_vars(first) else None
    return load_channels(configured, environ)


# -- the run ---------------------------------------------------------------------------------------------------------


def _execute(
    playbook: Playbook, inv: Any, prepared: _Prepared, options: RunOptions, sessions: _Sessions, redactor: Redactor
) -> int:
    from irx import __version__
    from irx.executors.preflight import preflight, ssh_target
    from irx.lock import HostLocks, LockHeld, default_lock_dir
    from irx.notify import Notifier, secret_values
    from irx.timeline import Journal, current_operator, default_runs_dir, new_run_id, utc_timestamp

    stream = None if options.quiet else (sys.stderr if options.fmt == "json" else sys.stdout)
    everyone = list(dict.fromkeys(h for hosts in prepared.targets.values() for h in hosts))
    try:
        channels = _notify_channels(inv, everyone, options.environ)
    except BaseException:
        sessions.close()
        raise
    redactor.add(*prepared.secrets, *secret_values(channels))
    progress = _Progress(stream, redactor.redact_text)
    operator = current_operator()
    run_id = new_run_id()
    lock = None
    leases: HostLeases | None = None
    runs_dir = options.runs_dir or default_runs_dir()
    try:
        changed = _hosts_changed(playbook, prepared, inv)
        if not options.dry_run and changed:  # a dry run, or a playbook that changes nothing, takes no lock
            lock = HostLocks.acquire(default_lock_dir(), playbook.name, changed, run_id, operator, options.force)
        journal = Journal.create(runs_dir, run_id, redactor)
    except BaseException:
        sessions.close()
        if lock is not None:
            lock.release()
        raise
    mode = "dry-run" if options.dry_run else "run"
    started = time.monotonic()
    stop = threading.Event()
    sessions.progress = progress
    outcome: Outcome | None = None
    notifier = Notifier(channels, journal.record, redactor.redact_text, options.dry_run, timeout=3.0, retries=1)
    run_info = {
        "id": run_id,
        "started_at": utc_timestamp(),
        "severity": playbook.severity,
        "operator": operator,
        "dry_run": options.dry_run,
    }
    comms = _Communications(notifier, playbook, run_info, everyone, journal, progress)
    try:
        journal.record(
            events.RunStarted(
                playbook=playbook.name,
                playbook_path=str(playbook.path),
                title=playbook.title,
                severity=playbook.severity,
                inventory=inv.name,
                mode=mode,
                operator=operator,
                plan_hash=prepared.plan_hash,
                params=_shown_params(playbook, prepared.params),
                hosts=everyone,
                targets=prepared.targets,
                irx_version=__version__,
                forced_lock=bool(lock is not None and lock.forced),
                pid=os.getpid(),
                summary=playbook.summary,
                symptoms=list(playbook.symptoms),
                tags=list(playbook.tags),
                plan=prepared.steps,
                yes=options.yes,
                approve=list(options.approve),
                limit=options.limit or None,
            )
        )
        if lock is not None:
            for event in lock.lock_events():
                journal.record(event)
        progress.header(
            f"irx {mode} {playbook.name} [{playbook.severity}] on {inv.name} ({len(everyone)} host(s))  run {run_id}\n"
            f"plan {prepared.plan_hash}  journal {journal.path}"
        )
        for warning in prepared.warnings:
            progress.note(f"warning: {warning}")
        ssh = [t for t in (ssh_target(h, inv.host_vars(h)) for h in everyone) if t is not None]
        unreachable = preflight(ssh, options.preflight_timeout)
        for host, reason in unreachable.items():
            journal.record(
                events.HostResultEvent(host=host, status="unreachable", msg=f"preflight: {reason}", phase="preflight")
            )
            progress.note(f"✗ {host} unreachable before any step: {reason}")
        if lock is not None:
            leases = _take_leases(
                playbook, prepared, inv, changed, unreachable, run_id, operator, options, sessions, journal
            )
            for host, reason in leases.lost.items():
                unreachable.setdefault(host, reason)
                progress.note(f"✗ {host} will not be changed: {reason}")
        comms.start()
        orchestrator = Orchestrator(
            playbook=playbook,
            targeting=_Targeting(inv, prepared, run_info),
            journal=journal,
            progress=progress,
            hosts_runner=lambda: sessions,
            approver=_approver(options, operator, progress),
            dry_run=options.dry_run,
            plan_hash=prepared.plan_hash,
            mask=redactor.redact,
            unreachable=unreachable,
            notify=comms.step,
            on_phase=comms.phase,
            stop_requested=stop,
        )
        with _signals(stop, sessions, progress):
            outcome = orchestrator.run()
    except IrxError as exc:
        journal.record(events.Error(message=str(exc), where="run"))
        outcome = Outcome("failed", str(exc), {}, dry_run=options.dry_run)
        if isinstance(exc, UsageError | LockHeld):  # refused before anything changed: exit 2, as before the journal
            raise
    finally:
        if leases is not None:
            leases.release()  # before the session closes: it carries the release to the hosts
        sessions.close()
        final = outcome or Outcome("failed", "irx stopped unexpectedly", {}, dry_run=options.dry_run)
        duration = round(time.monotonic() - started, 3)
        if not journal.closed:
            try:
                comms.finish(final)
                notifier.close()
            except Exception as exc:  # whatever the last message did, run_finished is written
                journal.record(events.Error(message=f"final notification failed: {exc}", where="notify"))
            journal.record(
                events.RunFinished(
                    status=final.status,
                    exit_code=int(final.exit_code),
                    duration=duration,
                    reason=final.reason,
                    verdict=final.verdict or None,
                )
            )
            journal.close()
        if lock is not None:
            lock.release()
    assert outcome is not None
    with contextlib.suppress(OSError):  # nobody left to read it: the journal has it all
        _summary(outcome, options, run_id, journal.path, duration, progress, redactor)
    return int(outcome.exit_code)


def _take_leases(
    playbook: Playbook,
    prepared: _Prepared,
    inv: Any,
    changed: Mapping[str, str],
    unreachable: Mapping[str, str],
    run_id: str,
    operator: str,
    options: RunOptions,
    sessions: _Sessions,
    journal: Any,
) -> HostLeases:
    """The lease on every remote host this run may change (irx.lease), taken now, kept alive, checked before
    each mutating batch. Refused (``LockHeld``) when another live run holds one and there is no --force."""
    from irx.lease import holder_fields, lease_hosts, lease_ttl

    become_on: dict[str, bool] = {}
    for step in playbook.steps:
        if step.mutating and step.runs_on_hosts and step.on and step.become:
            for host in prepared.targets.get(step.on, []):
                become_on[host] = True
    remote = {h: m for h, m in changed.items() if h not in unreachable}
    longest = max((s.timeout or 0.0 for s in playbook.steps if s.runs_on_hosts), default=0.0)
    leases = HostLeases(
        lease_hosts(remote, inv, become_on),
        run_id,
        holder_fields(operator, playbook.name),
        lease_ttl(options.environ, longest),
        sessions.send,
        journal.record,
    )
    if not leases.hosts:
        return leases
    leases.acquire(options.force)
    mutating = {s.id for s in playbook.steps if s.mutating}
    sessions.guard = lambda tasks: leases.admit(tasks, mutating.__contains__)
    leases.start_keepalive()
    return leases


def _hosts_changed(playbook: Playbook, prepared: _Prepared, inv: Any) -> dict[str, str]:
    """The hosts a run may change (those of its mutating host steps), each with what identifies the machine
    for its lock: the local machine, or the address (and port) Ansible connects to."""
    changed: dict[str, str] = {}
    for step in playbook.steps:
        if step.mutating and step.runs_on_hosts and step.on:
            for host in prepared.targets.get(step.on, []):
                changed[host] = _machine(host, inv)
    return changed


def _machine(host: str, inv: Any) -> str:
    hostvars = inv.host_vars(host)

    def var(name: str) -> Any:
        return inv.value(host, name) if name in hostvars else None

    if str(var("ansible_connection") or "") == "local":
        return "local"
    address = str(var("ansible_host") or host)
    port = var("ansible_port")
    return f"{address}:{port}" if port not in (None, "") else address


def _shown_params(playbook: Playbook, params: Any) -> dict[str, Any]:
    values = params.for_run()
    return {name: ("******" if playbook.params[name].secret else value) for name, value in values.items()}


def _summary(
    outcome: Outcome, options: RunOptions, run_id: str, path: Path, duration: float, progress: _Progress, redactor: Any
) -> None:
    if options.fmt == "json":
        body = {
            "run_id": run_id,
            "status": outcome.status,
            **({"verdict": outcome.verdict} if outcome.verdict else {}),
            "headline": outcome.headline,
            "exit_code": int(outcome.exit_code),
            "reason": outcome.reason,
            "duration": duration,
            "journal": str(path),
            "steps": {
                step_id: {
                    "status": r.status,
                    "duration": round(r.duration, 3),
                    "attempts": r.attempts,
                    "hosts": {h: hr.status for h, hr in r.hosts.items()},
                    "reason": r.reason,
                }
                for step_id, r in outcome.results.items()
            },
        }
        click.echo(json.dumps(redactor.redact(body), indent=2))
        return
    word = "VERIFIED" if outcome.status == "verified" else outcome.headline
    progress.header(f"\n{word} in {duration:.1f}s: {redactor.redact_text(outcome.reason)}\njournal: {path}")
    if outcome.status == "awaiting_approval":
        click.echo(f"irx: {redactor.redact_text(outcome.reason)}", err=True)

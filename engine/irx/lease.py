"""Leases on the target hosts: the lock that two operators on two control nodes both meet.

``irx.lock.HostLocks`` serialises the runs of one control node. A mutating run also holds a lease on every
remote host it may change, kept on that host by the ``irx_lease`` module (a JSON record under ``flock``:
who, run id, playbook, control node, since, expiry by the host's clock). The lease is

- **taken** before the run's first change (its first mutating step, or a gate, that is to run), all hosts
  in one batch: a diagnosis reads, so it neither waits for the leases nor is held up by them, and a run
  that changes nothing takes none. A host whose lease another live run holds refuses the run there,
  naming that holder (``LockHeld``), before anything was changed, unless ``--force``, which takes it over
  and records whom it displaced;
- **renewed** every third of its ttl while the run lives (a keepalive thread, also while a gate waits for
  a person), and checked before every mutating batch: a host whose lease was lost (another run forced it,
  or it expired and was taken) is not changed, its result says why;
- **released** at the end; a run that dies without releasing leaves a record that expires after its ttl.

The ttl (``IRX_LEASE_TTL``, default 15 minutes) is raised to cover the longest step timeout, so a lease
never lapses while a step runs. Where the lease lives: the host's ``irx_lease_file`` inventory variable,
default ``/var/lib/irx/lease.json``; it is written with ``become`` when the run's mutating steps on that
host escalate (they need root there anyway). Hosts reached with ``ansible_connection: local`` are the
control node itself: its host lock is enough.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from irx import events
from irx.errors import IrxError, UsageError
from irx.executors.base import HostRunner, HostTask
from irx.lock import LockHeld, LockHolder
from irx.results import HostResult

if TYPE_CHECKING:
    pass

LEASE_STEP = "_irx_lease"  # never a step id (those start with a letter): its host events are not a step's
DEFAULT_LEASE_FILE = "/var/lib/irx/lease.json"
DEFAULT_TTL = 900.0
MIN_TTL = 3.0
RENEW_MARGIN = 0.25  # renew before a mutating batch when less than this share of the ttl is left

Runner = Callable[[Sequence[HostTask]], Mapping[str, HostResult]]
_Answer = tuple[HostResult, str, dict[str, Any]]  # the host's result, the module's outcome, its data
Record = Callable[[events.Lease], Any]  # one timeline "lease" event: Journal.record


class LeaseError(UsageError):
    """A lease could not be taken (the file is unusable on that host): nothing was changed."""


def lease_ttl(environ: Mapping[str, str], longest_step: float) -> float:
    """``IRX_LEASE_TTL`` seconds (default 900), at least twice the longest step timeout plus a minute."""
    raw = environ.get("IRX_LEASE_TTL", "").strip()
    try:
        ttl = float(raw) if raw else DEFAULT_TTL
    except ValueError:
        raise UsageError(f"IRX_LEASE_TTL={raw!r}: give the lease's lifetime in seconds, e.g. 900") from None
    if not ttl >= MIN_TTL:  # also refuses nan
        raise UsageError(f"IRX_LEASE_TTL={raw!r}: at least {MIN_TTL:g} seconds")
    return max(ttl, 2 * longest_step + 60) if longest_step else ttl


@dataclass(frozen=True)
class LeaseHost:
    name: str  # inventory name
    path: str  # the lease file on the host
    become: bool  # write it as root (the run's mutating steps there escalate)


class HostLeases:
    """The leases of one run. ``runner`` sends tasks to the hosts (the run's Ansible session)."""

    def __init__(
        self,
        hosts: Sequence[LeaseHost],
        run_id: str,
        holder: Mapping[str, Any],
        ttl: float,
        runner: Runner,
        record: Record,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.hosts = {h.name: h for h in hosts}
        self.run_id = run_id
        self.holder = dict(holder)
        self.ttl = ttl
        self._runner = runner
        self._early: dict[str, _Answer] = {}  # host -> its lease's answer, taken beside a step (ahead)
        self._early_sent: float | None = None  # when those were sent: they are valid for the ttl from then
        self._releasing = False  # the releases ride on the run's last step (behind)
        self._record = record
        self._clock = clock
        self._valid_until: dict[str, float] = {}  # host -> our clock's time its lease runs out (at the latest)
        self._lost: dict[str, str] = {}  # host -> why it may no longer be changed
        self._unreachable: set[str] = set()  # lost because it could not be reached when the lease was taken
        self._guard = threading.RLock()
        self._taken = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- the three actions ------------------------------------------------------------------------------

    def ensure(self, force: bool) -> list[str]:
        """Take the leases and keep them alive, once: the hosts that could not be reached (``acquire``);
        nothing on later calls. Raises as ``acquire`` does; a refused run does not try again."""
        with self._guard:
            if self._taken or not self.hosts:
                return []
            self._taken = True
            unreachable = self.acquire(force, self._take_early())
            self.start_keepalive()
            return unreachable

    def ahead(self, tasks: Sequence[HostTask], force: bool) -> list[HostTask]:
        """``tasks`` (of the read-only step just before the run's first change) with the leases riding on
        them: a shell or command task takes its host's lease in the same module run, before its command (one
        Ansible round less where the change comes). Only where the lease is written as the task runs (with
        or without ``become``); the hosts left out are asked by ``ensure`` in one round, as before. Once."""
        with self._guard:
            if self._taken or self._early_sent is not None:
                return list(tasks)
            self._early_sent = self._clock()
            return self._riding(tasks, set(self.hosts), lambda host: self._tasks("acquire", [host], force)[0].lease)

    def behind(self, tasks: Sequence[HostTask]) -> list[HostTask]:
        """``tasks`` (of the run's last step, read-only, when nothing after it can change a host) with the
        releases riding on them: a shell or command task releases its host's lease in the same module run,
        once its command ended (one Ansible round less at the end). The keepalive stops first: nothing renews
        a lease being given back. The hosts left out are released by ``release``, as before. Once."""
        with self._guard:
            if self._releasing:
                return list(tasks)
            self._record_early()  # taken beside a step, never needed (nothing was changed): given back here
            held = {n for n in self.hosts if n in self._valid_until and n not in self._lost}
            if not held:
                return list(tasks)
            self._releasing = self._taken = True  # nothing is taken after the last step
            self.stop()
            return self._riding(tasks, held, lambda host: self._tasks("release", [host])[0].lease)

    def _riding(
        self, tasks: Sequence[HostTask], hosts: set[str], lease: Callable[[str], Mapping[str, Any] | None]
    ) -> list[HostTask]:
        """Each task, split so that every host of ``hosts`` it may carry a lease for has a task of its own
        carrying ``lease(host)``: a shell or command task whose ``become`` is the lease's."""
        out: list[HostTask] = []
        for task in tasks:
            riders = [
                h for h in task.hosts
                if h in hosts and task.action in ("shell", "command") and task.lease is None
                and self.hosts[h].become == task.become
            ]  # fmt: skip
            rest = [h for h in task.hosts if h not in riders]
            if rest:
                out.append(task if not riders else _narrowed(task, rest))
            out.extend(dataclasses.replace(task, hosts=[h], lease=lease(h)) for h in riders)
        return out

    def landed(self, results: Mapping[str, HostResult]) -> dict[str, HostResult]:
        """The step's results without the leases that rode on them (``ahead``, ``behind``): an acquiring
        answer is kept for ``ensure``, which takes it as the leases' first round; a release is recorded."""
        out: dict[str, HostResult] = {}
        for host, result in results.items():
            lease = result.extra.get("lease")
            if not isinstance(lease, Mapping) or host not in self.hosts:
                out[host] = result
                continue
            out[host] = dataclasses.replace(result, extra={k: v for k, v in result.extra.items() if k != "lease"})
            failed = bool(lease.get("failed"))
            answer = HostResult(host, "failed" if failed else "ok", msg=str(lease.get("msg") or ""),
                                extra={} if failed else {"module": dict(lease)})  # fmt: skip
            with self._guard:
                if self._releasing:
                    self._released(host, answer, str(lease.get("outcome") or answer.status))
                elif self._early_sent is not None:
                    self._early.update(self._answers([host], self._early_sent, {host: answer}))
        return out

    def _record_early(self) -> None:
        """The leases taken beside a step (``ahead``) that ``ensure`` never took: recorded, to be released."""
        for name, (_, outcome, data) in self._take_early().items():
            if outcome in ("acquired", "stale", "forced"):
                self._record_event(name, outcome, data)

    def _take_early(self) -> dict[str, _Answer]:
        """The leases' answers taken beside a step, but for those another run held then: they are asked again
        now (that run may have finished since)."""
        early, self._early = self._early, {}
        return {name: answer for name, answer in early.items() if answer[1] != "held"}

    def acquire(self, force: bool, early: Mapping[str, _Answer] | None = None) -> list[str]:
        """Take every host's lease, or raise ``LockHeld`` naming the first holder (then releasing what this
        run took). Returns the hosts that could not be reached: they are lost for this run. ``early``: the
        answers already in (``ahead``); the other hosts are asked now, in one round."""
        rest = [name for name in self.hosts if name not in (early or {})]
        answers = {**(early or {}), **(self._send("acquire", rest, force=force) if rest else {})}
        # A lease of a run on this very control node whose process is gone cannot be renewed by anyone:
        # it is taken now (recorded as stale) instead of making the operator wait for it to expire.
        dead = {
            name: str(data["current"]["run_id"])
            for name, (_, outcome, data) in answers.items()
            if outcome == "held" and _dead_here(data.get("current") or {})
        }
        if dead:
            answers.update(self._send("acquire", list(dead), force=force, dead=dead))
        held: list[tuple[str, dict[str, Any]]] = []
        unusable: dict[str, list[str]] = {}  # why -> hosts
        unreachable: list[str] = []
        for name, (result, outcome, data) in answers.items():
            if outcome in ("acquired", "stale", "forced"):
                self._record_event(name, outcome, data)
            elif outcome == "held":
                held.append((name, data.get("current") or {}))
            elif result.status == "unreachable":
                unreachable.append(name)
                self._unreachable.add(name)
                self._lose(name, f"its lease could not be taken: unreachable ({result.msg})")
            else:
                unusable.setdefault(result.msg or outcome, []).append(name)
        if held or unusable:
            self.release()
            if held:
                name, current = held[0]
                raise LockHeld(_holder(current, name), host=name, until=str(current.get("expires") or "")) from None
            why = "; ".join(f"{', '.join(hosts)}: {msg}" for msg, hosts in unusable.items())
            raise LeaseError(f"cannot take the host lease on {why}")
        return unreachable

    def renew(self, names: Sequence[str] | None = None) -> None:
        """Renew the leases of ``names`` (default: every host this run still holds)."""
        with self._guard:  # the keepalive and a mutating batch may both renew: one at a time, once each
            wanted = [n for n in (names if names is not None else list(self.hosts)) if n not in self._lost]
            if wanted:
                self._renew(wanted)

    def _renew(self, wanted: list[str]) -> None:
        for name, (result, outcome, data) in self._send("renew", wanted).items():
            if outcome in ("renewed", "reacquired"):
                if outcome == "reacquired":
                    self._record_event(name, outcome, data)
                continue
            if outcome == "lost":
                current = data.get("current") or {}
                self._record_event(name, "lost", data)
                self._lose(name, f"its lease was taken by run {current.get('run_id')} of {current.get('operator')}")
            elif self._clock() >= self._valid_until.get(name, 0.0):
                # Unreachable (or the file went bad) past the lease's end: another run may hold it now.
                self._record_event(name, "expired", data, msg=result.msg)
                self._lose(name, f"its lease ran out while it could not be renewed ({result.msg or outcome})")

    def release(self) -> None:
        """Release every lease this run still holds; a host that cannot be reached keeps it until expiry."""
        self.stop()
        self._record_early()
        held = [n for n in self.hosts if n in self._valid_until and n not in self._lost]
        if not held:
            return
        try:
            answers = self._send("release", held)
        except IrxError as exc:  # the session is gone: the leases expire by themselves
            for name in held:
                self._record(events.Lease(host=name, action="release_failed", msg=str(exc)))
            return
        for name, (result, outcome, _) in answers.items():
            self._released(name, result, outcome)

    def _released(self, name: str, result: HostResult, outcome: str) -> None:
        self._valid_until.pop(name, None)
        if outcome == "released":
            self._record(events.Lease(host=name, action="released"))
        else:
            self._record(events.Lease(host=name, action="release_failed", msg=result.msg or outcome))

    # -- while the run lives --------------------------------------------------------------------------------

    def start_keepalive(self) -> None:
        if self._thread is None and self.hosts:
            self._thread = threading.Thread(target=self._keepalive, name="irx-lease", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=self.ttl)
            self._thread = None

    def _keepalive(self) -> None:
        while not self._stop.wait(max(1.0, self.ttl / 3)):
            try:
                self.renew()
            except IrxError as exc:  # the session ended; the next mutating batch checks again
                self._record(events.Lease(action="renew_failed", msg=str(exc)))

    def admit(
        self, tasks: Sequence[HostTask], mutating: Callable[[str], bool]
    ) -> tuple[list[HostTask], dict[str, HostResult]]:
        """Split ``tasks`` into what may run and refusals: a mutating task's host must hold a live lease.
        A lease close to its end is renewed first (after a long wait at a gate, say)."""
        hosts = {h for t in tasks if mutating(t.step_id) for h in t.hosts if h in self.hosts}
        margin = self.ttl * RENEW_MARGIN
        left = {h: self._valid_until.get(h, 0.0) - self._clock() for h in hosts if h not in self._lost}
        due = sorted(h for h, seconds in left.items() if seconds < margin)
        if due:
            self.renew(due)
        refused: dict[str, HostResult] = {}
        allowed: list[HostTask] = []
        for task in tasks:
            keep = [h for h in task.hosts if not (mutating(task.step_id) and h in self._lost)]
            for host in task.hosts:
                if host not in keep:
                    status = "unreachable" if host in self._unreachable else "failed"
                    refused[host] = HostResult(host, status, msg=f"not changed: {self._lost[host]}")
            if keep:
                allowed.append(task if len(keep) == len(task.hosts) else _narrowed(task, keep))
        return allowed, refused

    @property
    def lost(self) -> dict[str, str]:
        return dict(self._lost)

    # -- plumbing ---------------------------------------------------------------------------------------------

    def _send(
        self, action: str, names: Sequence[str], force: bool = False, dead: Mapping[str, str] | None = None
    ) -> dict[str, _Answer]:
        tasks = self._tasks(action, names, force, dead)
        with self._guard:
            sent = self._clock()
            return self._answers(names, sent, self._runner(tasks))

    def _tasks(
        self, action: str, names: Sequence[str], force: bool = False, dead: Mapping[str, str] | None = None
    ) -> list[HostTask]:
        return [
            HostTask(
                LEASE_STEP,
                [name],
                "lease",  # through irx_command (module_utils/irx_leases.py): the module the steps use
                "irx_lease",
                lease={
                    "action": action,
                    "path": self.hosts[name].path,
                    "run_id": self.run_id,
                    "holder": {**self.holder, "host": name},
                    "ttl": self.ttl,
                    "force": force,
                    "dead_run_id": (dead or {}).get(name, ""),
                },
                become=self.hosts[name].become,
            )
            for name in names
        ]

    def _answers(self, names: Sequence[str], sent: float, results: Mapping[str, HostResult]) -> dict[str, _Answer]:
        """Each host's (result, the module's outcome, its data); a lease taken or renewed is valid for the ttl
        from ``sent`` (measured from before the host wrote it)."""
        answers: dict[str, _Answer] = {}
        for name in names:
            result = results.get(name) or HostResult(name, "failed", msg="no answer")
            found = result.extra.get("module")
            data: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
            outcome = str(data.get("outcome") or result.status)
            if outcome in ("acquired", "stale", "forced", "renewed", "reacquired"):
                self._valid_until[name] = sent + self.ttl
            answers[name] = (result, outcome, dict(data))
        return answers

    def _lose(self, name: str, why: str) -> None:
        self._lost[name] = why
        self._valid_until.pop(name, None)

    def _record_event(self, name: str, outcome: str, data: Mapping[str, Any], msg: str = "") -> None:
        lease = data.get("lease")
        current = data.get("current")
        shown = None
        if outcome in ("forced", "stale", "lost", "reacquired") and isinstance(current, Mapping) and current:
            shown = _shown(current)
        self._record(
            events.Lease(
                host=name,
                action=outcome,
                file=self.hosts[name].path,
                expires=lease.get("expires") if isinstance(lease, Mapping) else None,
                previous=shown if outcome != "lost" else None,
                holder=shown if outcome == "lost" else None,
                msg=msg or None,
            )
        )


class LeasedRunner:
    """A ``HostRunner`` that runs a batch only on hosts whose lease is still held (``HostLeases.admit``):
    the host steps of a run with leases go through it; the leases' own tasks do not. ``take`` takes the
    leases (``HostLeases.ensure``) before a mutating batch, if nothing did before; ``ahead`` names the step
    whose tasks carry the leases' first round (``HostLeases.ahead``): the one just before the first change;
    ``behind`` the step whose tasks carry their release (``HostLeases.behind``): the run's last, when nothing
    after it can change a host."""

    def __init__(
        self,
        runner: HostRunner,
        leases: HostLeases,
        mutating: Callable[[str], bool],
        take: Callable[[], object] | None = None,
        ahead: tuple[str, bool] | None = None,
        behind: str | None = None,
    ) -> None:
        self._runner, self._leases, self._mutating, self._take = runner, leases, mutating, take
        self._ahead = ahead  # (the step the leases ride on: HostLeases.ahead, --force)
        self._behind = behind  # the step the releases ride on (HostLeases.behind)

    def run(self, tasks: Sequence[HostTask]) -> dict[str, HostResult]:
        riding = False
        if self._ahead is not None and any(t.step_id == self._ahead[0] for t in tasks):
            tasks, riding = self._leases.ahead(tasks, self._ahead[1]), True
        elif self._behind is not None and any(t.step_id == self._behind for t in tasks):
            tasks, riding = self._leases.behind(tasks), True
        if self._take is not None and any(self._mutating(t.step_id) for t in tasks):
            self._take()
        allowed, refused = self._leases.admit(tasks, self._mutating)
        results = {**(self._runner.run(allowed) if allowed else {}), **refused}
        return self._leases.landed(results) if riding else results


def _narrowed(task: HostTask, hosts: list[str]) -> HostTask:
    return dataclasses.replace(task, hosts=hosts)


def _shown(record: Mapping[str, Any]) -> dict[str, Any]:
    keys = ("run_id", "operator", "playbook", "control_node", "pid", "since", "expires")
    return {k: record[k] for k in keys if k in record}


def _holder(record: Mapping[str, Any], host: str) -> LockHolder:
    try:
        pid = int(record.get("pid") or 0)
    except (TypeError, ValueError):
        pid = 0
    return LockHolder(
        run_id=str(record.get("run_id") or "unknown"),
        operator=str(record.get("operator") or "an unknown operator"),
        pid=pid,
        started=str(record.get("since") or "an unknown time"),
        playbook=str(record.get("playbook") or "an unknown playbook"),
        hosts=(host,),
    )


def node_name() -> str:
    """The name this control node records in its leases: ``IRX_NODE_NAME``, else the host name."""
    return os.environ.get("IRX_NODE_NAME", "").strip() or os.uname().nodename


def _dead_here(record: Mapping[str, Any]) -> bool:
    """Whether a lease record names a run of this control node whose process no longer exists."""
    if record.get("control_node") != node_name():
        return False
    try:
        pid = int(record.get("pid") or 0)
    except (TypeError, ValueError):
        return False
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False

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
from typing import TYPE_CHECKING, Any, Protocol

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
            unreachable = self.acquire(force)
            self.start_keepalive()
            return unreachable

    def acquire(self, force: bool) -> list[str]:
        """Take every host's lease, or raise ``LockHeld`` naming the first holder (then releasing what this
        run took). Returns the hosts that could not be reached: they are lost for this run."""
        answers = self._send("acquire", list(self.hosts), force=force)
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
        tasks = [
            HostTask(
                LEASE_STEP,
                [name],
                "module",
                "irx_lease",
                {
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
        with self._guard:
            sent = self._clock()
            results = self._runner(tasks)
        answers: dict[str, _Answer] = {}
        for name in names:
            result = results.get(name) or HostResult(name, "failed", msg="no answer")
            found = result.extra.get("module")
            data: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
            outcome = str(data.get("outcome") or result.status)
            if outcome in ("acquired", "stale", "forced", "renewed", "reacquired"):
                self._valid_until[name] = sent + self.ttl  # measured from before the host wrote it
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
    leases (``HostLeases.ensure``) before a mutating batch, if nothing did before."""

    def __init__(
        self,
        runner: HostRunner,
        leases: HostLeases,
        mutating: Callable[[str], bool],
        take: Callable[[], object] | None = None,
    ) -> None:
        self._runner, self._leases, self._mutating, self._take = runner, leases, mutating, take

    def run(self, tasks: Sequence[HostTask]) -> dict[str, HostResult]:
        if self._take is not None and any(self._mutating(t.step_id) for t in tasks):
            self._take()
        allowed, refused = self._leases.admit(tasks, self._mutating)
        return {**(self._runner.run(allowed) if allowed else {}), **refused}


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


class LeaseVars(Protocol):
    """What :func:`lease_hosts` reads of an inventory (:class:`irx.inventory.Inventory` is one)."""

    def host_vars(self, name: str, /) -> Mapping[str, Any]: ...

    def value(self, name: str, var: str, /) -> Any: ...


def lease_hosts(
    changed: Mapping[str, str], inv: LeaseVars, become_on: Mapping[str, bool], default_file: str = DEFAULT_LEASE_FILE
) -> list[LeaseHost]:
    """The remote hosts among ``changed`` (inventory name -> machine identity), with their lease file."""
    hosts: list[LeaseHost] = []
    for name, identity in changed.items():
        if identity == "local":
            continue
        path = inv.value(name, "irx_lease_file") if "irx_lease_file" in inv.host_vars(name) else default_file
        if not isinstance(path, str) or not path.startswith("/"):
            raise UsageError(f"host {name}: irx_lease_file must be an absolute path on the host, not {path!r}")
        hosts.append(LeaseHost(name, path, bool(become_on.get(name))))
    return hosts


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


def holder_fields(operator: str, playbook: str) -> dict[str, Any]:
    """Who holds a lease, as written on the host (the run id is added by the module)."""
    return {
        "operator": operator,
        "playbook": playbook,
        "control_node": node_name(),
        "pid": os.getpid(),
    }

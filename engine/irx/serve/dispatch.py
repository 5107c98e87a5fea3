"""The run side of ``irx serve``: queued incidents become ordinary ``irx run`` processes, a few at a time.

Each run is its own process group (``start_new_session``), so stopping ``irx serve`` does not stop a
remediation halfway unless asked to (``stop_runs``, which sends SIGTERM and lets the run record its
interruption). Everything a run gets from the alert travels as data: params in a 0600 JSON file given as
``-e @FILE``, the limit as one ``--limit=`` argument, never through a shell. When ``irx serve`` starts
again it takes over what the book says is running: a process still alive is watched, a finished one's
outcome is read from its journal.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from irx.incidents import Incident, IncidentBook
from irx.routes import Route, Routes

log = logging.getLogger("irx.serve")
OUTCOMES = {0: "verified", 1: "failed", 2: "refused", 3: "internal error", 4: "awaiting approval", 130: "interrupted"}


@dataclass(frozen=True)
class Launch:
    """How runs are started: the irx command, where journals go, serve's private directory."""

    command: Sequence[str]  # e.g. (sys.executable, "-m", "irx")
    runs_dir: Path
    work_dir: Path  # params files and run logs, 0700
    playbook_dir: Path | None = None
    public_url: str | None = None  # the runs link to PUBLIC_URL/runs/RUN_ID in their messages
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    approvers: Path | None = None  # serve's approvers file: its runs' gates follow the same rule


def trigger_of(incident: Incident) -> dict[str, Any]:
    """What started an incident's run, as ``irx run --trigger`` records it: the alert group, as data."""
    from datetime import UTC, datetime

    fired = datetime.fromtimestamp(incident.opened, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return {
        "source": "alertmanager",
        "incident": incident.id,
        "route": incident.route or "",
        "receiver": incident.receiver,
        "alertname": incident.labels.get("alertname", ""),
        "labels": dict(incident.labels),
        "fired_at": fired,
    }


def run_argv(
    route: Route, incident: Incident, launch: Launch, params_file: Path | None, trigger_file: Path | None = None
) -> list[str]:
    """The argv of one incident's run: every value its own argument, in the ``--option=value`` form."""
    argv = [*launch.command, "run", route.playbook, f"--runs-dir={launch.runs_dir}", "--quiet", "--format=json"]
    if trigger_file is not None:
        argv.append(f"--trigger=@{trigger_file}")
    if launch.public_url:
        argv.append(f"--approval-url={launch.public_url}")
    if launch.playbook_dir is not None:
        argv.append(f"--playbooks={launch.playbook_dir}")
    if route.inventory:
        argv.append(f"--inventory={route.inventory}")
    if incident.limit:
        argv.append(f"--limit={incident.limit}")
    if params_file is not None:
        argv.append(f"--extra-vars=@{params_file}")
    if route.mode in ("diagnose", "dry-run"):
        # diagnose is read-only by definition: irx run's --dry-run runs the read-only steps for real and
        # never a mutating one (it also shows what the mitigations would run).
        argv.append("--dry-run")
    else:  # a gate waits for a person (irx approve / deny) instead of stopping at once: nobody is at a terminal
        argv.append(f"--wait-approval={route.approval_timeout}")
    argv += [f"--approve={step}" for step in route.approve]
    if launch.approvers is not None:
        argv.append(f"--approvers={launch.approvers}")
    return argv


class Dispatcher:
    def __init__(self, book: IncidentBook, routes: Routes, launch: Launch, poll: float = 0.5) -> None:
        self.book = book
        self.routes = routes
        self.launch = launch
        self.poll = poll
        self.children: dict[str, subprocess.Popen[bytes]] = {}
        self.adopted: dict[str, int] = {}  # incident id -> pid of a run started by an earlier irx serve
        self._wake: asyncio.Event | None = None
        self._stopping = False

    def wake(self) -> None:
        if self._wake is not None:
            self._wake.set()

    async def run(self) -> None:
        self._wake = asyncio.Event()
        self.launch.work_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        await asyncio.to_thread(self._take_over)
        while not self._stopping:
            await asyncio.to_thread(self._step)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll)
            self._wake.clear()

    def _step(self) -> None:
        self._reap()
        if self._stopping:
            return
        for incident in self.book.claim(self.routes.max_concurrent, time.time()):
            self._start(incident)

    def _start(self, incident: Incident) -> None:
        route = next((r for r in self.routes.routes if r.name == incident.route), None)
        if route is None:  # the routes changed since the incident was queued
            self.book.update(incident.id, time.time(), state="refused", reason=f"route {incident.route!r} is gone")
            return
        private = self.launch.work_dir / incident.id
        private.mkdir(mode=0o700, exist_ok=True)
        params_file = None
        if incident.params:
            params_file = _private_json(private / "params.json", incident.params)
        trigger_file = _private_json(private / "trigger.json", trigger_of(incident))
        argv = run_argv(route, incident, self.launch, params_file, trigger_file)
        with open(private / "run.log", "ab") as output:
            child = subprocess.Popen(  # argv is a list: no shell, every value one argument
                argv,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=output,
                start_new_session=True,
                env={**self.launch.environ, "IRX_INCIDENT": incident.id},
            )
        self.children[incident.id] = child
        self.book.update(incident.id, time.time(), pid=child.pid)
        log.info(
            "incident %s: started %s (pid %d, route %s, mode %s)",
            incident.id,
            route.playbook,
            child.pid,
            route.name,
            route.mode,
        )

    def _reap(self) -> None:
        for incident_id, child in list(self.children.items()):
            code = child.poll()
            if code is not None:
                del self.children[incident_id]
                self._finished(incident_id, child.pid, OUTCOMES.get(code, f"exit {code}"))
        for incident_id, pid in list(self.adopted.items()):
            if not _alive(pid):
                del self.adopted[incident_id]
                self._finished(incident_id, pid, None)

    def _finished(self, incident_id: str, pid: int, outcome: str | None) -> None:
        run_id, status = find_run(self.launch.runs_dir, pid)
        fields: dict[str, object] = {"state": "finished", "run_id": run_id}
        # The journal's status says what the run concluded (a dry run exits 0 but is never "verified");
        # the exit code only when there is no journal (refused before it began).
        fields["outcome"] = status or outcome or "unknown (irx serve was restarted)"
        if run_id is None:  # refused before its journal began: its one-line error says why
            fields["reason"] = _last_error(self.launch.work_dir / incident_id / "run.log")
        changed = self.book.update(incident_id, time.time(), **fields)
        log.info("incident %s: run %s %s", incident_id, run_id or "-", changed.outcome)

    def _take_over(self) -> None:
        for incident in self.book.incidents():
            if incident.state != "running":
                continue
            if incident.pid is not None and _ours(incident.pid, incident.id):
                self.adopted[incident.id] = incident.pid
            else:
                self._finished(incident.id, incident.pid or -1, None)

    async def stop(self, stop_runs: bool, grace: float = 30.0) -> None:
        """Stop starting runs; with ``stop_runs`` interrupt the running ones and wait for them to record it."""
        self._stopping = True
        self.wake()
        if not stop_runs:
            for incident_id, child in self.children.items():
                log.info("incident %s: run (pid %d) continues after irx serve stops", incident_id, child.pid)
            return
        for child in self.children.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while self.children and time.monotonic() < deadline:
            await asyncio.to_thread(self._reap)
            await asyncio.sleep(0.2)


def find_run(runs_dir: Path, pid: int) -> tuple[str | None, str | None]:
    """The id and status of the run whose journal says it was process ``pid`` (newest first), if any."""
    from irx.timeline import list_runs

    for run in list_runs(runs_dir):
        first = _first_event(run.path)
        if first.get("pid") == pid:
            return run.run_id, run.status
    return None, None


def _last_error(log_path: Path) -> str | None:
    try:
        lines = log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-20:]
    except OSError:
        return None
    errors = [line for line in lines if line.startswith("irx: ")]
    return errors[-1][:500] if errors else None


def _first_event(path: Path) -> dict[str, object]:
    journal = path / "timeline.jsonl" if path.is_dir() else path
    try:
        with open(journal, encoding="utf-8") as handle:
            data = json.loads(handle.readline() or "{}")
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _ours(pid: int, incident_id: str) -> bool:
    """Whether ``pid`` is still the run of ``incident_id`` (not a reused pid): its environment says so."""
    if not _alive(pid):
        return False
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return True  # cannot tell: keep watching rather than declare a live run finished
    return f"IRX_INCIDENT={incident_id}".encode() in environ.split(b"\0")


def _private_json(path: Path, data: Any) -> Path:
    """Write ``data`` as JSON to ``path``, readable by this account only; return the path."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        json.dump(data, handle)
    return path

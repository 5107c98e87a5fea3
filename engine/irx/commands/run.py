"""``irx run``: the run's terminal — live progress, the approval prompt, the final summary — and its exit code."""

from __future__ import annotations

import contextlib
import json
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import TextIO

import click

from irx.model import Step
from irx.redact import Redactor
from irx.results import StepResult
from irx.run import Ask, RunOptions, RunResult, run_playbook
from irx.run.comms import hosts_text

SYMBOLS = {
    "ok": "✓",
    "failed": "✗",
    "timed_out": "⏱",
    "unreachable": "✗",
    "skipped": "-",
    "would_run": "◇",
    "not_run": "-",
}


def main(name: str, options: RunOptions) -> int:
    """Run playbook ``name`` with ``options``; the exit code is the outcome's (irx.orchestrator.FINAL_EXIT)."""
    redactor = Redactor()  # the run's secrets, added once known; output and journal are redacted alike
    stream = None if options.quiet else (sys.stderr if options.fmt == "json" else sys.stdout)
    progress = Progress(stream, redactor.redact_text)
    interactive = options.interactive
    if interactive is None:
        interactive = sys.stdin.isatty() and sys.stdout.isatty()
    result = run_playbook(name, options, progress, redactor, _prompt(progress) if interactive else None)
    with contextlib.suppress(OSError):  # nobody left to read it: the journal has it all
        _summary(result, options.fmt, progress, redactor)
    return int(result.outcome.exit_code)


class Progress:
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
        where = f" on {hosts_text(hosts)}" if hosts and step.runs_on_hosts and not note else ""
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


def _data_text(result: StepResult) -> str:
    first = next(iter(result.hosts.values()), None)
    data = first.data if first is not None else None
    if data is None or data == "":
        return ""
    text = json.dumps(data, default=str) if not isinstance(data, str) else data
    text = " ".join(text.split())
    return f" -> {text[:100]}{'…' if len(text) > 100 else ''}"


def _prompt(progress: Progress) -> Ask:
    """Ask on the terminal, showing what would run (redacted) and its approval hash."""
    from irx.approval import short

    def ask(step: Step, summary: str, gate_hash: str) -> bool:
        progress.note(f"approval needed for {step.id} ({step.title}):")
        for line in summary.splitlines():
            click.echo(f"      {progress.redact(line)}", err=False)
        click.echo(f"      approval hash {step.id}@{short(gate_hash)}", err=False)
        return click.confirm(f"      run {step.id}?", default=False)

    return ask


def _summary(result: RunResult, fmt: str, progress: Progress, redactor: Redactor) -> None:
    outcome = result.outcome
    if fmt == "json":
        body = {
            "run_id": result.run_id,
            "status": outcome.status,
            **({"verdict": outcome.verdict} if outcome.verdict else {}),
            "headline": outcome.headline,
            "exit_code": int(outcome.exit_code),
            "reason": outcome.reason,
            "duration": result.duration,
            "journal": str(result.journal),
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
    progress.header(
        f"\n{word} in {result.duration:.1f}s: {redactor.redact_text(outcome.reason)}\njournal: {result.journal}"
    )
    if outcome.status == "awaiting_approval":
        click.echo(f"irx: {redactor.redact_text(outcome.reason)}", err=True)
        gate = _last_gate(result)
        if gate is not None:
            click.echo(
                f"irx: to continue this run once reviewed: irx resume {result.run_id} --approve {gate}", err=True
            )


def _last_gate(result: RunResult) -> str | None:
    """STEP@HASH of the gate the run stopped at, from its journal."""
    from irx.approval import short
    from irx.journal_read import read_journal

    gate = read_journal(result.journal).last("approval") or {}
    step, approval_hash = gate.get("step"), gate.get("approval_hash")
    return f"{step}@{short(approval_hash)}" if isinstance(step, str) and isinstance(approval_hash, str) else None

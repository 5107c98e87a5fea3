"""``irx approve`` / ``irx deny``: answer a run's gate from another terminal, and ``irx runs``: what waits."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from irx.errors import ExitCode, UsageError

if TYPE_CHECKING:
    from irx.inbox import Waiting

ACK_TIMEOUT = 10.0  # seconds to wait for the run to record the decision before saying it has not yet


def decide(
    run_ref: str,
    step: str | None,
    *,
    approve: bool,
    reason: str = "",
    expect_hash: str | None = None,
    yes: bool = False,
    runs_dir: Path | None = None,
    interactive: bool | None = None,
) -> int:
    """Approve (or refuse) the gate run ``run_ref`` waits at: show what it would run, record the decision
    bound to that rendering's hash, and wait for the run to pick it up. Exit 0 recorded, 2 refused."""
    from irx.approval import matches, parse_approve, short
    from irx.inbox import Decision, check_step_id, identity, read_waiting, submit
    from irx.journal_read import RUNNING, default_runs_dir, resolve_run, summarize_run

    run_dir = resolve_run(runs_dir if runs_dir is not None else default_runs_dir(), run_ref)
    summary = summarize_run(run_dir)
    waiting = read_waiting(run_dir) if summary.status == RUNNING else None
    if waiting is None:
        raise UsageError(_not_waiting(summary.run_id, summary.status, run_dir))
    if step is not None and check_step_id(step) != waiting.step:
        raise UsageError(f"run {summary.run_id} waits for approval of {waiting.step}, not {step}")
    gate = f"{waiting.step}@{short(waiting.approval_hash)}"
    if expect_hash is not None:
        wanted = parse_approve([f"{waiting.step}@{expect_hash}"])[waiting.step]
        if wanted is None or not matches(waiting.approval_hash, wanted):
            raise UsageError(f"run {summary.run_id} would run {gate}, not the rendering you named ({expect_hash})")
    _show(summary.run_id, waiting, gate)
    if approve and expect_hash is None and not yes:
        if interactive is None:
            interactive = sys.stdin.isatty()
        if not interactive:
            shown = short(waiting.approval_hash)
            raise UsageError(f"to approve without a terminal, name what you reviewed: --hash {shown}")
        if not click.confirm(f"approve {gate}?", default=False):
            click.echo("not approved: nothing recorded")
            return ExitCode.OK
    decision = Decision(waiting.step, approve, waiting.approval_hash, identity(), "cli", reason, time.time())
    submit(run_dir, decision)
    verb = "approved" if approve else "refused"
    seen = _acknowledged(run_dir, waiting.step, decision.by)
    if seen is None:
        click.echo(f"{verb} {gate} as {decision.by}: recorded; run {summary.run_id} has not picked it up yet")
    elif approve and seen.get("counted") and seen.get("needed", 1) > seen.get("given", 1):
        given, needed = seen["given"], seen["needed"]
        click.echo(
            f"{verb} {gate} as {decision.by}: run {summary.run_id} recorded it; {given} of {needed} approvals, "
            "it waits for another approver"
        )
    elif seen.get("counted") is False:
        click.echo(f"{verb} {gate} as {decision.by}: run {summary.run_id} did not count it: {seen.get('reason')}")
        return ExitCode.USAGE
    else:
        click.echo(f"{verb} {gate} as {decision.by}: run {summary.run_id} recorded it")
    return ExitCode.OK


def runs(*, fmt: str = "text", runs_dir: Path | None = None) -> int:
    """Print the runs that are running, waiting at a gate, or stopped awaiting approval. Exit 0."""
    from irx.history import active_runs, format_active
    from irx.journal_read import default_runs_dir

    found = active_runs(runs_dir if runs_dir is not None else default_runs_dir())
    if fmt == "json":
        sys.stdout.write(json.dumps([run.to_dict() for run in found], indent=2, ensure_ascii=False) + "\n")
    else:
        sys.stdout.write(format_active(found, time.time()))
    return ExitCode.OK


def _not_waiting(run_id: str, status: str, run_dir: Path) -> str:
    from irx.journal_read import RUNNING, read_journal

    if status == "awaiting_approval":
        gate = read_journal(run_dir).last("approval") or {}
        return (
            f"run {run_id} stopped awaiting approval of {gate.get('step', 'a step')} and is not waiting: "
            f"continue it with irx resume {run_id} --approve STEP@HASH, or with --wait-approval to approve it "
            "from here"
        )
    if status == RUNNING:
        return f"run {run_id} is running and not waiting for an approval (irx runs shows what waits)"
    return f"run {run_id} is not waiting for an approval: it ended {status}"


def _show(run_id: str, waiting: Waiting, gate: str) -> None:
    title = f" ({waiting.title})" if waiting.title else ""
    click.echo(f"run {run_id} waits for approval of {waiting.step}{title} on {', '.join(waiting.hosts) or '-'}:")
    for line in waiting.summary.splitlines():
        click.echo(f"    {line}")
    click.echo(f"    approval hash {gate}")
    if waiting.approvals > 1 or waiting.approvers or not waiting.requester_may_approve:
        who = ", ".join(waiting.approvers) or "anyone"
        others = "" if waiting.requester_may_approve else f", not {waiting.requester} who started the run"
        click.echo(f"    needs {waiting.approvals} different approver(s) from {who}{others}: {waiting.progress()}")


def _acknowledged(run_dir: Path, step: str, by: str) -> dict[str, Any] | None:
    """The run's record of this decision (its approval_given event, or the gate's approval), or None when
    the run has not recorded it within ACK_TIMEOUT."""
    from irx.journal_read import read_journal

    deadline = time.monotonic() + ACK_TIMEOUT
    while time.monotonic() < deadline:
        for event in reversed(read_journal(run_dir).events[-50:]):
            if event.get("step") == step and (
                event.get("type") == "approval" or (event.get("type") == "approval_given" and event.get("by") == by)
            ):
                return dict(event)
        time.sleep(0.2)
    return None

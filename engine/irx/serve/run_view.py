"""What the approval page shows of a run, read from its journal and its inbox (never from the request).

``load_run`` reads a run directory into a ``RunView``: the run's facts, its timeline, the diagnostic
results per host, and, while the run waits at a gate, exactly what ``waiting.json`` holds (the rendered
actions as the run masked them, and their approval hash). ``find_run`` turns a run id from a URL into a
directory of the runs dir, or None: an id that is not exactly a run's never names a path.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from irx.errors import UsageError
from irx.inbox import Decision, Waiting, account_of, read_decisions, read_waiting
from irx.journal_read import RUNNING, read_journal, resolve_run
from irx.report.facts import Report, TimelineEntry
from irx.report.model import build_report

RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
OUTPUT_SHOWN = 4000  # characters of a diagnostic's output on the page (the report has all of it)


@dataclass(frozen=True)
class HostRow:
    host: str
    status: str
    output: str
    data: str  # the parsed result as JSON, or ""


@dataclass(frozen=True)
class Diagnostic:
    step: str
    title: str
    status: str
    rows: tuple[HostRow, ...]


@dataclass(frozen=True)
class RunView:
    run_id: str
    report: Report
    waiting: Waiting | None  # set only while the run lives and waits at a gate
    decisions: tuple[Decision, ...]  # given for that gate so far, in order (two-person gates take several)
    timeline: tuple[TimelineEntry, ...]
    diagnostics: tuple[Diagnostic, ...]

    def closed(self, name: str) -> str:
        """Why ``name`` gets no Approve / Refuse buttons at this gate (already refused, fully approved, or
        approved by them), or "": they may answer. Whether the rule lets them is checked apart."""
        if self.waiting is None:
            return "the run does not wait for an approval"
        approvals = [d for d in self.decisions if d.approve]
        refused = next((d for d in self.decisions if not d.approve), None)
        if refused is not None:
            return f"Refused by {refused.by}; the run is picking it up."
        if len(approvals) >= self.waiting.approvals:
            return f"Approved by {', '.join(d.by for d in approvals)}; the run is picking it up."
        if any(account_of(d.by) == account_of(name) for d in approvals):
            left = self.waiting.approvals - len(approvals)
            return f"You approved it; it needs {left} more approval{'s' if left != 1 else ''} from someone else."
        return ""

    @property
    def gate(self) -> str:
        """``step@hash`` of the gate the run waits at, or "": the page reloads when this changes."""
        return f"{self.waiting.step}@{self.waiting.approval_hash}" if self.waiting else ""


def find_run(runs_dir: Path, run_id: str) -> Path | None:
    """The directory of the run named exactly ``run_id`` in ``runs_dir``, or None (no prefixes, no paths)."""
    if not RUN_ID.fullmatch(run_id) or run_id in {".", ".."}:
        return None
    try:
        found = resolve_run(runs_dir, run_id)
    except UsageError:
        return None
    return found if found.name == run_id and found.parent == Path(runs_dir) else None


def load_run(run_dir: Path) -> RunView:
    """The page's view of the run in ``run_dir`` (``UsageError`` if its journal cannot be read)."""
    journal = read_journal(run_dir)
    report = build_report(journal)
    waiting = read_waiting(run_dir) if journal.status == RUNNING else None
    if waiting is not None and waiting.run_id != run_dir.name:
        waiting = None  # a waiting record that is not this run's own is not shown
    return RunView(
        run_id=run_dir.name,
        report=report,
        waiting=waiting,
        decisions=tuple(read_decisions(run_dir, waiting.step)) if waiting is not None else (),
        timeline=report.timeline,
        diagnostics=tuple(_diagnostics(report)),
    )


def events_after(view: RunView, after: int) -> dict[str, Any]:
    """The poll's answer: the timeline entries after the first ``after``, the status, the gate."""
    entries = [_entry(entry) for entry in view.timeline[after:]]
    return {"count": len(view.timeline), "entries": entries, "status": view.report.status, "gate": view.gate}


def _entry(entry: TimelineEntry) -> dict[str, Any]:
    return {"ts": entry.ts or "", "kind": entry.kind, "text": entry.text, "status": entry.status or ""}


def _diagnostics(report: Report) -> list[Diagnostic]:
    found = []
    for step in report.steps:
        if step.phase != "diagnose":
            continue
        rows = tuple(
            HostRow(
                host=result.host,
                status=result.status,
                output=(result.stdout or result.msg or "")[:OUTPUT_SHOWN],
                data=json.dumps(result.data, ensure_ascii=False, default=str)[:OUTPUT_SHOWN]
                if result.data not in (None, {}, [])
                else "",
            )
            for result in step.results
        )
        found.append(Diagnostic(step.id, step.title or "", step.status, rows))
    return found

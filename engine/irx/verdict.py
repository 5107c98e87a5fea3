"""How a run's end reads to people: one headline per final status, the same on the console, in channel
messages, the journal's run_finished, the Markdown post-mortem and the HTML report.

A dry run changes nothing, so it never reads as resolved: it *would* resolve (nothing failed), or its
verification failed (a real run would roll back). A run stopped at an approval gate is waiting, not failed.
"""

from __future__ import annotations

# The dry run's own verdict, recorded in run_finished as ``verdict``.
WOULD_RESOLVE = "would_resolve"
VERIFICATION_FAILED = "verification_failed"

_HEADLINES = {
    "verified": "INCIDENT RESOLVED",
    "failed": "REMEDIATION FAILED",
    "rolled_back": "REMEDIATION FAILED: ROLLED BACK",
    "awaiting_approval": "WAITING FOR APPROVAL",
    "interrupted": "INTERRUPTED",
    "aborted": "ABORTED",
}
# A dry run remedies nothing: it fails, or is interrupted, as a rehearsal.
_DRY = {"failed": "FAILED", "rolled_back": "FAILED"}


def outcome_text(status: str, verdict: str | None = None, *, dry_run: bool = False) -> str:
    """``INCIDENT RESOLVED``, ``WOULD RESOLVE``, ``VERIFICATION FAILED``, ``WAITING FOR APPROVAL``, ..."""
    if status == "dry_run":
        return "VERIFICATION FAILED" if verdict == VERIFICATION_FAILED else "WOULD RESOLVE"
    if dry_run and status in _DRY:
        return _DRY[status]
    return _HEADLINES.get(status, status.replace("_", " ").upper())


def headline(status: str, verdict: str | None = None, *, dry_run: bool = False) -> str:
    """The outcome, prefixed ``DRY RUN:`` for a dry run."""
    text = outcome_text(status, verdict, dry_run=dry_run)
    return f"DRY RUN: {text}" if dry_run or status == "dry_run" else text

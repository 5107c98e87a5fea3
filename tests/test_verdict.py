"""The one headline of each way a run ends (console, channel, journal, reports all use it)."""

from __future__ import annotations

import pytest

from irx.verdict import headline


@pytest.mark.parametrize(
    ("status", "verdict", "dry_run", "expected"),
    [
        ("verified", None, False, "INCIDENT RESOLVED"),
        ("failed", None, False, "REMEDIATION FAILED"),
        ("rolled_back", None, False, "REMEDIATION FAILED: ROLLED BACK"),
        ("awaiting_approval", None, False, "WAITING FOR APPROVAL"),
        ("interrupted", None, False, "INTERRUPTED"),
        ("dry_run", "would_resolve", True, "DRY RUN: WOULD RESOLVE"),
        ("dry_run", "verification_failed", True, "DRY RUN: VERIFICATION FAILED"),
        ("failed", None, True, "DRY RUN: FAILED"),  # a diagnostic aborted the rehearsal: nothing was remedied
        ("interrupted", None, True, "DRY RUN: INTERRUPTED"),
    ],
)
def test_each_end_has_one_headline(status: str, verdict: str | None, dry_run: bool, expected: str) -> None:
    assert headline(status, verdict, dry_run=dry_run) == expected
    if dry_run:
        assert "RESOLVED" not in headline(status, verdict, dry_run=dry_run)

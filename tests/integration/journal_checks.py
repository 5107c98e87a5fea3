"""Reading a run's journal back in integration tests: events by type, the whole-journal check."""

from __future__ import annotations

from typing import Any

from jsonschema import Draft202012Validator

from irx.timeline import JournalRead


def of_type(journal: JournalRead, kind: str, **fields: Any) -> list[dict[str, Any]]:
    return [e for e in journal.events if e["type"] == kind and all(e.get(k) == v for k, v in fields.items())]


def check_journal(journal: JournalRead, validator: Draft202012Validator) -> None:
    """Whole, in order, every event valid, framed by run_started and run_finished."""
    assert journal.problems == []
    assert [e["seq"] for e in journal.events] == list(range(1, len(journal.events) + 1))
    for event in journal.events:
        errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(event)]
        assert errors == [], f"event {event['seq']} ({event['type']}) does not match the schema: {event}"
    assert journal.events[0]["type"] == "run_started"
    assert journal.events[-1]["type"] == "run_finished"
    assert len({e["run_id"] for e in journal.events}) == 1


def host_results(journal: JournalRead, step: str) -> dict[str, dict[str, Any]]:
    return {e["host"]: e for e in of_type(journal, "host_result", step=step)}

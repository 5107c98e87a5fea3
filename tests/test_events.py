"""The event contract (irx.events) and the journal's schema say the same thing, field for field."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from irx import events
from irx.redact import Redactor
from irx.timeline import EVENT_TYPES, Journal, read_journal

SCHEMA = json.loads((Path(__file__).resolve().parents[1] / "schemas" / "timeline.schema.json").read_text())
ENVELOPE = {"v", "seq", "ts", "run_id", "type"}  # written by the journal itself
ANY_EVENT = {"phase", "step", "host", "status"}  # allowed on every event; a field where the type gives meaning


def test_there_is_one_constructor_per_event_type() -> None:
    assert [cls.type for cls in events.EVENTS] == list(EVENT_TYPES)
    assert SCHEMA["properties"]["type"]["enum"] == list(EVENT_TYPES)


@pytest.mark.parametrize("cls", events.EVENTS, ids=lambda cls: cls.type)
def test_constructor_fields_are_the_schemas_properties_and_required_ones_have_no_default(cls: Any) -> None:
    definition = SCHEMA["$defs"][cls.type]
    properties = set(definition["properties"]) - ENVELOPE
    fields = {f.name: f for f in dataclasses.fields(cls)}
    assert set(fields) <= properties, f"{cls.__name__} writes fields the schema does not know"
    assert properties - ANY_EVENT <= set(fields), f"{cls.__name__} cannot write every property of {cls.type}"
    required = {name for name, f in fields.items() if f.default is dataclasses.MISSING}
    assert required == set(definition.get("required", [])), cls.__name__
    assert definition["additionalProperties"] is False


def test_an_event_built_by_its_constructor_is_written_schema_valid_and_none_is_not_written(tmp_path: Path) -> None:
    journal = Journal.create(tmp_path, "20261202T000000Z-abcdef", Redactor())
    journal.record(events.StepFinished(step="restart", status="ok", phase="mitigate", duration=1.5))
    journal.record(events.Lease(action="released", host="web1"))
    journal.record(events.RunFinished(status="verified", exit_code=0, duration=2.0))
    journal.close()
    written = read_journal(journal.path).events
    validator = Draft202012Validator(SCHEMA)
    for event in written:
        assert list(validator.iter_errors(event)) == [], event
    assert written[0]["type"] == "step_finished"
    assert "reason" not in written[0]
    assert written[1] == {**written[1], "type": "lease", "action": "released", "host": "web1"}
    with pytest.raises(TypeError):
        events.RunFinished(status="verified", exit_code=0)  # type: ignore[call-arg]

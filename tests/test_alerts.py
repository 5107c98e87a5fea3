"""Alertmanager notifications as irx reads them, and Alertmanager-style matchers (pure logic, no server)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from irx.alerts import MAX_BODY_BYTES, AlertError, Matcher, matches_all, parse_matcher, parse_notification


def payload(**changes: Any) -> dict[str, Any]:
    """A notification as Alertmanager 0.25 sends it (webhook version 4), with ``changes`` applied."""
    body: dict[str, Any] = {
        "receiver": "irx",
        "status": "firing",
        "alerts": [
            {
                "status": "firing",
                "labels": {"alertname": "PgPoolExhausted", "instance": "db1:9187", "severity": "critical"},
                "annotations": {"summary": "connections at 98% of max_connections"},
                "startsAt": "2026-12-02T09:52:26.739266876+02:00",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus:9090/graph?g0.expr=pg_up",
                "fingerprint": "1a30ba71cca2921f",
            }
        ],
        "groupLabels": {"alertname": "PgPoolExhausted"},
        "commonLabels": {"alertname": "PgPoolExhausted", "severity": "critical"},
        "commonAnnotations": {"summary": "connections at 98% of max_connections"},
        "externalURL": "http://alertmanager:9093",
        "version": "4",
        "groupKey": '{}:{alertname="PgPoolExhausted"}',
        "truncatedAlerts": 0,
    }
    body.update(changes)
    return body


def parse(body: dict[str, Any]) -> Any:
    return parse_notification(json.dumps(body).encode())


def test_a_real_shaped_notification_reads_into_frozen_values() -> None:
    note = parse(payload())
    assert note.group_key == '{}:{alertname="PgPoolExhausted"}'
    assert note.status == "firing"
    assert note.common_labels["severity"] == "critical"
    assert note.fingerprints == ("1a30ba71cca2921f",)
    assert [a.labels["instance"] for a in note.firing()] == ["db1:9187"]
    assert note.alerts[0].starts_at.startswith("2026-12-02T09:52:26")


def test_hostile_label_values_stay_plain_data() -> None:
    hostile = "$(touch /tmp/pwned); `id` {{ lookup('pipe','id') }} ../../etc/passwd\n"
    alert = payload()["alerts"][0] | {"labels": {"alertname": "X", "instance": hostile}}
    note = parse(payload(alerts=[alert]))
    assert note.alerts[0].labels["instance"] == hostile


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"version": "3"}, 'version is "3"; irx reads Alertmanager\'s webhook version "4"'),
        ({"version": None}, "version is missing"),
        ({"alerts": []}, "alerts: a non-empty list is required"),
        ({"groupKey": ""}, "groupKey: a non-empty string is required"),
        ({"status": "pending"}, "status: 'firing' or 'resolved' is required, not \"pending\""),
        ({"commonLabels": {"bad-name": "x"}}, 'commonLabels: "bad-name" is not a label name'),
        ({"commonLabels": {"a": 1}}, "commonLabels.a: a string is required"),
        ({"groupLabels": ["a"]}, "groupLabels: an object of strings is required"),
        ({"truncatedAlerts": True}, "truncatedAlerts: a count"),
        ({"alerts": ["x"]}, "alerts[0]: an object is required"),
        ({"alerts": [{"status": "firing", "startsAt": "yesterday"}]}, "alerts[0].startsAt: not an RFC 3339 time"),
        ({"alerts": [{"status": "firing", "labels": {"a": "x" * 5000}}]}, "alerts[0].labels.a: longer than"),
        ({"alerts": [{"status": "firing"}] * 1001}, "alerts: 1001 alerts; at most 1000"),
    ],
)
def test_a_bad_notification_is_refused_with_the_field_named(change: dict[str, Any], message: str) -> None:
    with pytest.raises(AlertError) as caught:
        parse(payload(**change))
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"not json", "body is not JSON"),
        (b"[1, 2]", "body is not a JSON object"),
        (b"[" * 100_000 + b"]" * 100_000, "body is not JSON"),
        (b" " * (MAX_BODY_BYTES + 1), f"at most {MAX_BODY_BYTES} are accepted"),
    ],
)
def test_a_body_that_is_not_a_notification_is_refused(body: bytes, message: str) -> None:
    with pytest.raises(AlertError) as caught:
        parse_notification(body)
    assert message in str(caught.value)


LABELS = {"alertname": "PgPoolExhausted", "severity": "critical", "instance": "db1:9187"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('alertname="PgPoolExhausted"', True),
        ("alertname=PgPoolExhausted", True),
        ("alertname = PgPoolExhausted", True),
        ('alertname!="PgPoolExhausted"', False),
        ('severity=~"critical|page"', True),
        ('severity=~"crit"', False),  # anchored: a regex matches the whole value, as in Alertmanager
        ('severity=~"crit.*"', True),
        ('severity!~"warn.*"', True),
        ('team=""', True),  # an absent label matches as the empty string
        ('team!=""', False),
        ('instance=~"db[0-9]+:.*"', True),
        ('instance="db1:9187\\n"', False),
    ],
)
def test_matchers_follow_alertmanager(text: str, expected: bool) -> None:
    assert parse_matcher(text).matches(LABELS) is expected


def test_a_regex_is_anchored_even_against_a_trailing_newline() -> None:
    assert not parse_matcher('severity=~"critical"').matches({"severity": "critical\n"})


def test_quoted_values_take_escapes_and_round_trip() -> None:
    matcher = parse_matcher(r'summary="say \"hi\", then {go}"')
    assert matcher == Matcher("summary", "=", 'say "hi", then {go}')
    assert parse_matcher(str(matcher)) == matcher


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("alertname", "is not a matcher"),
        ("9lives=x", "is not a matcher"),
        ('a="open', "the quoted value is not closed"),
        ("a=x,y", "quote a value"),
        ('a=~"(unclosed"', "the regex does not compile"),
    ],
)
def test_a_bad_matcher_says_how_to_write_one(text: str, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_matcher(text)
    assert message in str(caught.value)


def test_all_matchers_must_match() -> None:
    matchers = (parse_matcher("alertname=PgPoolExhausted"), parse_matcher('severity=~"warning"'))
    assert not matches_all(matchers, LABELS)
    assert matches_all(matchers[:1], LABELS)
    assert matches_all((), LABELS)

"""Alert routes: the schema, the model built from it, and what an alert group may contribute to a run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

from irx.alerts import AlertError, parse_notification
from irx.routes import Route, Routes, Source, build_routes

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = json.loads((ROOT / "schemas" / "routes.schema.json").read_text())

ROUTES_YAML = """\
apiVersion: irx/v1
kind: Routes
max_concurrent: 2
routes:
  - name: pg-pool
    match: ['alertname="PgPoolExhausted"', 'severity=~"critical|page"']
    playbook: db-pool-exhausted
    inventory: example-prod
    limit: {label: instance}
    params:
      database: {label: datname}
      note: {annotation: summary}
      threshold: 90
    mode: run
    approve: [kill_idle]
    approval_timeout: 45m
  - name: anything-else
    match: ['alertname=~".+"']
    playbook: service-down
"""


def notification(labels: dict[str, str], annotations: dict[str, str] | None = None) -> Any:
    body = {
        "version": "4",
        "groupKey": "{}:" + json.dumps({"alertname": labels.get("alertname", "")}),
        "status": "firing",
        "receiver": "irx",
        "groupLabels": {"alertname": labels.get("alertname", "")},
        "commonLabels": labels,
        "commonAnnotations": annotations or {},
        "externalURL": "http://alertmanager:9093",
        "alerts": [{"status": "firing", "labels": labels, "fingerprint": "0123456789abcdef"}],
    }
    return parse_notification(json.dumps(body).encode())


def routes() -> Routes:
    data = yaml.safe_load(ROUTES_YAML)
    built, problems = build_routes(data, lines=[5, 16])
    assert problems == []
    return built


def test_the_schema_is_valid_and_accepts_the_documented_example() -> None:
    Draft202012Validator.check_schema(SCHEMA)
    assert list(Draft202012Validator(SCHEMA).iter_errors(yaml.safe_load(ROUTES_YAML))) == []


def test_the_shipped_schema_is_the_repository_schema() -> None:
    from importlib import resources

    shipped = resources.files("irx").joinpath("schemas/routes.schema.json").read_text(encoding="utf-8")
    assert json.loads(shipped) == SCHEMA


@pytest.mark.parametrize(
    "change",
    [
        {"mode": "yolo"},
        {"limit": {"label": "bad-name"}},
        {"params": {"database": {"label": "datname", "default": "x"}}},
        {"params": {"Database": "x"}},
        {"approve": ["Kill"]},
        {"approval_timeout": "forever"},
        {"approval_timeout": 30},
        {"match": []},
        {"playbook": "../etc/passwd"},
        {"shell": "rm -rf /"},
    ],
)
def test_the_schema_refuses_what_a_route_cannot_say(change: dict[str, Any]) -> None:
    data = yaml.safe_load(ROUTES_YAML)
    data["routes"][0].update(change)
    assert list(Draft202012Validator(SCHEMA).iter_errors(data)) != []


def test_the_model_keeps_everything_the_file_says() -> None:
    built = routes()
    assert built.max_concurrent == 2
    first = built.routes[0]
    assert (first.name, first.playbook, first.inventory, first.mode, first.approve, first.line) == (
        "pg-pool",
        "db-pool-exhausted",
        "example-prod",
        "run",
        ("kill_idle",),
        5,
    )
    assert first.params["threshold"] == Source("literal", value=90)
    assert first.limit == Source("label", name="instance")
    assert built.routes[1].mode == "diagnose"  # the default: an alert alone never changes a system
    assert (first.approval_timeout, built.routes[1].approval_timeout) == ("45m", "30m")  # the file's, the default


def test_the_first_matching_route_wins() -> None:
    built = routes()
    pool = notification({"alertname": "PgPoolExhausted", "severity": "page", "instance": "db1:9187"})
    assert built.route_for(pool) is built.routes[0]
    warning = notification({"alertname": "PgPoolExhausted", "severity": "warning"})
    assert built.route_for(warning) is built.routes[1]
    assert built.route_for(notification({"job": "x"})) is None  # alertname absent: "" does not match .+


def test_params_come_from_labels_annotations_and_literals_as_plain_values() -> None:
    hostile = "x'; DROP TABLE users; -- $(id) {{ 7*7 }}"
    note = notification(
        {"alertname": "PgPoolExhausted", "severity": "page", "datname": hostile}, {"summary": "98% used"}
    )
    assert routes().routes[0].params_for(note) == {"database": hostile, "note": "98% used", "threshold": 90}


def test_a_missing_label_refuses_the_alert_with_the_label_named() -> None:
    note = notification({"alertname": "PgPoolExhausted", "severity": "page"})
    with pytest.raises(AlertError, match="no common label 'datname'"):
        routes().routes[0].params_for(note)


HOSTS = ["db1", "db2", "web1.example.com"]


@pytest.mark.parametrize(
    ("instance", "expected"),
    [("db1:9187", "db1"), ("db2", "db2"), ("web1.example.com:443", "web1.example.com")],
)
def test_a_limit_from_a_label_is_one_host_of_the_inventory(instance: str, expected: str) -> None:
    note = notification({"alertname": "PgPoolExhausted", "severity": "page", "instance": instance})
    assert routes().routes[0].limit_for(note, HOSTS) == expected


@pytest.mark.parametrize(
    ("instance", "message"),
    [
        ("all", "not a host of the route's inventory"),
        ("db1,db2", "not a host name"),
        ("db*", "not a host name"),
        ("db1:&db2", "not a host name"),
        ("!db1", "not a host name"),
        ("~db.*", "not a host name"),
        ("db1 db2", "not a host name"),
        ("../../etc", "not a host name"),
        ("db3:9187", "not a host of the route's inventory"),
    ],
)
def test_a_label_cannot_smuggle_a_host_pattern_into_the_limit(instance: str, message: str) -> None:
    note = notification({"alertname": "PgPoolExhausted", "severity": "page", "instance": instance})
    with pytest.raises(AlertError, match=message):
        routes().routes[0].limit_for(note, HOSTS)


def test_a_fixed_limit_is_the_route_authors_pattern() -> None:
    route = Route("r", (), "p", limit=Source("literal", value="databases:&eu"))
    assert route.limit_for(notification({"alertname": "X"}), HOSTS) == "databases:&eu"


def test_a_matcher_that_does_not_parse_is_a_problem_of_its_route() -> None:
    data = yaml.safe_load(ROUTES_YAML)
    data["routes"][1]["match"] = ['alertname=~"(unclosed"']
    _, problems = build_routes(data)
    assert len(problems) == 1
    assert problems[0][0] == 1
    assert "the regex does not compile" in problems[0][1]

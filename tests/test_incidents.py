"""The incident book: one incident per alert group, across repeats, resolutions, workers and storms."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

import pytest

from irx.alerts import Notification, parse_notification
from irx.incidents import IncidentBook


def note(
    group: str, status: str = "firing", fingerprint: str = "aaaaaaaaaaaaaaaa", receiver: str = "irx"
) -> Notification:
    body = {
        "version": "4",
        "groupKey": f'{{}}:{{alertname="{group}"}}',
        "status": status,
        "receiver": receiver,
        "commonLabels": {"alertname": group},
        "alerts": [{"status": status, "labels": {"alertname": group}, "fingerprint": fingerprint}],
    }
    return parse_notification(json.dumps(body).encode())


def test_the_first_firing_notification_opens_a_queued_incident(tmp_path: Path) -> None:
    incident, kind = IncidentBook(tmp_path).receive(note("PgPool"), "pg-pool", now=100.0)
    assert kind == "new"
    assert (incident.state, incident.route, incident.status, incident.notifications) == (
        "queued",
        "pg-pool",
        "firing",
        1,
    )
    assert incident.labels == {"alertname": "PgPool"}
    assert incident.id.endswith("-0001")


def test_repeats_and_the_resolution_are_recorded_on_the_same_incident(tmp_path: Path) -> None:
    book = IncidentBook(tmp_path)
    first, _ = book.receive(note("PgPool"), "pg-pool", now=100.0)
    again, kind = book.receive(note("PgPool", fingerprint="bbbbbbbbbbbbbbbb"), "pg-pool", now=160.0)
    assert (again.id, kind, again.notifications) == (first.id, "repeat", 2)
    assert again.fingerprints == ("aaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbb")
    done, kind = book.receive(note("PgPool", status="resolved"), "pg-pool", now=300.0)
    assert (done.id, kind, done.status, done.resolved_at) == (first.id, "resolved", "resolved", 300.0)
    assert done.state == "queued"  # the resolution is recorded; the run still decides how it ends


def test_a_group_that_keeps_firing_after_its_run_is_not_remediated_again(tmp_path: Path) -> None:
    book = IncidentBook(tmp_path)
    first, _ = book.receive(note("PgPool"), "pg-pool", now=100.0)
    book.update(first.id, now=200.0, state="finished", outcome="failed", run_id="r1")
    again, kind = book.receive(note("PgPool"), "pg-pool", now=4000.0)  # Alertmanager's repeat_interval
    assert (again.id, kind, again.state) == (first.id, "repeat", "finished")
    assert book.claim(4, now=4001.0) == []


def test_after_resolution_a_new_firing_opens_the_next_incident(tmp_path: Path) -> None:
    book = IncidentBook(tmp_path)
    first, _ = book.receive(note("PgPool"), "pg-pool", now=100.0)
    book.update(first.id, now=200.0, state="finished", outcome="verified")
    book.receive(note("PgPool", status="resolved"), "pg-pool", now=250.0)
    second, kind = book.receive(note("PgPool"), "pg-pool", now=9000.0)
    assert kind == "new"
    assert second.id == first.id.replace("-0001", "-0002")
    assert [i.id for i in book.incidents()] == [second.id, first.id]


def test_unrouted_and_already_resolved_groups_are_recorded_as_refused(tmp_path: Path) -> None:
    book = IncidentBook(tmp_path)
    unrouted, _ = book.receive(note("Unknown"), None, now=1.0)
    assert (unrouted.state, unrouted.reason) == ("refused", "no route matches the alert group's labels")
    late, _ = book.receive(note("Late", status="resolved"), "r", now=2.0)
    assert (late.state, late.reason) == ("refused", "the group resolved before irx saw it firing")
    assert book.claim(4, now=3.0) == []


def test_the_same_group_key_of_two_receivers_is_two_incidents(tmp_path: Path) -> None:
    book = IncidentBook(tmp_path)
    a, _ = book.receive(note("PgPool", receiver="team-a"), "r", now=1.0)
    b, _ = book.receive(note("PgPool", receiver="team-b"), "r", now=2.0)
    assert a.id != b.id


def test_claim_respects_the_cap_oldest_first(tmp_path: Path) -> None:
    book = IncidentBook(tmp_path)
    opened = [book.receive(note(f"G{i}"), "r", now=float(i))[0] for i in range(5)]
    first = book.claim(2, now=10.0)
    assert [i.id for i in first] == [opened[0].id, opened[1].id]
    assert all(i.state == "running" for i in first)
    assert book.claim(2, now=11.0) == []  # two run: nothing more until one ends
    book.update(first[0].id, now=12.0, state="finished", outcome="verified")
    assert [i.id for i in book.claim(2, now=13.0)] == [opened[2].id]


@pytest.mark.parametrize("bad", ["../../etc/passwd", "0123456789abcdef-01", "0123456789abcdeg-0001", "x-0001", ""])
def test_an_unchecked_incident_id_never_becomes_a_path(tmp_path: Path, bad: str) -> None:
    with pytest.raises(KeyError):
        IncidentBook(tmp_path).update(bad, now=1.0, state="finished")


def test_an_unknown_but_well_formed_id_is_unknown(tmp_path: Path) -> None:
    with pytest.raises(KeyError, match="no incident"):
        IncidentBook(tmp_path).update("0123456789abcdef-0001", now=1.0, state="finished")


def _storm(root: str, worker: int, groups: int, repeats: int) -> None:
    book = IncidentBook(Path(root))
    for r in range(repeats):
        for g in range(groups):
            book.receive(note(f"G{(g + worker) % groups}", fingerprint=f"{worker:08x}{r:08x}"), "r", now=float(r))


def test_a_storm_from_several_processes_opens_exactly_one_incident_per_group(tmp_path: Path) -> None:
    workers, groups, repeats = 4, 25, 4
    context = multiprocessing.get_context("spawn")
    procs = [context.Process(target=_storm, args=(str(tmp_path), w, groups, repeats)) for w in range(workers)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(120)
        assert proc.exitcode == 0
    incidents = IncidentBook(tmp_path).incidents()
    assert len(incidents) == groups
    assert sum(i.notifications for i in incidents) == workers * groups * repeats  # none lost
    assert all(len(i.fingerprints) == workers * repeats for i in incidents)

"""A storm of Alertmanager notifications at a real ``irx serve`` whose route starts real runs (mode diagnose).

Hundreds of notifications over a score of alert groups, POSTed concurrently within seconds, the groups'
repeats interleaved and some groups resolving: exactly one incident and one run per group, every
notification counted on its incident, never more runs at once than ``max_concurrent``, and every run's
first message at the channel. Helpers (the channel, the local inventory, the server) are test_serve_messages'.
"""

from __future__ import annotations

import json
import random
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from test_serve import TOKEN, notification, stop_server
from test_serve_messages import Channel, Local, channel, local, serve

from irx.timeline import read_journal

pytestmark = pytest.mark.integration
__all__ = ["channel", "local"]  # fixtures, used by name


def test_a_storm_of_alerts_gives_one_run_per_group_and_loses_nothing(local: Local, channel: Channel) -> None:
    groups, per_group, cap = 20, 20, 3
    resolving = set(range(0, groups, 4))  # every 4th group resolves: its last notification says so
    bodies = [notification(f"QueueBacklog{g}", {"queue": f"q{g}"}) for g in range(groups) for _ in range(per_group)]
    last = [notification(f"QueueBacklog{g}", {"queue": f"q{g}"}, "resolved" if g in resolving else "firing")
            for g in range(groups)]  # fmt: skip
    bodies = [b for i, b in enumerate(bodies) if i % per_group != per_group - 1]  # one per group saved for `last`
    random.Random(14).shuffle(bodies)  # the groups' repeats interleaved
    server = serve(local, "diagnose", cap)
    try:
        headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
        with httpx.Client(base_url=server.url, headers=headers, timeout=60,
                          limits=httpx.Limits(max_connections=16)) as client:  # fmt: skip

            def post(body: dict[str, Any]) -> httpx.Response:
                return client.post("/alerts/alertmanager", content=json.dumps(body).encode())

            started = time.monotonic()
            with ThreadPoolExecutor(16) as pool:
                answers = list(pool.map(post, bodies))
                answers += list(pool.map(post, last))  # each group's last word after all its repeats
            seconds = time.monotonic() - started
        assert len(answers) == groups * per_group
        assert sorted({a.status_code for a in answers}) == [202]
        new = [a.json() for a in answers if a.json()["received"] == "new"]
        assert len(new) == groups
        assert {a["state"] for a in new} == {"queued"}  # every group waits its turn
        done = server.wait_for(lambda f: len(f) == groups and all(i["state"] == "finished" for i in f), timeout=240)
    finally:
        stop_server(server)
    assert sorted(i["notifications"] for i in done) == [per_group] * groups  # none lost, none double-counted
    assert {i["outcome"] for i in done} == {"dry_run"}
    assert sorted(i["labels"]["alertname"] for i in done if i["status"] == "resolved" and i["resolved_at"]) == sorted(
        f"QueueBacklog{g}" for g in resolving
    )
    journals = local.journals()
    assert sorted(j.parent.name for j in journals) == sorted(i["run_id"] for i in done)  # one run each
    spans = []
    for path in journals:
        events = read_journal(path).events
        assert events[-1]["type"] == "run_finished"
        spans.append((events[0]["ts"], events[-1]["ts"]))
    overlap = max(sum(1 for a, b in spans if a <= start <= b) for start, _ in spans)
    assert overlap <= cap  # never more runs at once than max_concurrent
    firsts = [m for m in channel.messages() if m["kind"] == "initial"]
    assert sorted(m["run_id"] for m in firsts) == sorted(i["run_id"] for i in done)
    assert all(m["url"] == f"{server.url}/runs/{m['run_id']}" for m in firsts)  # default: where it listens
    print(f"storm: {len(answers)} notifications in {seconds:.2f}s ({len(answers) / seconds:.0f}/s accepted)")

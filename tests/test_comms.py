"""The messages of a run an alert started: the first waits for the diagnosis and carries it and the link.

A real Orchestrator walks a real playbook with the in-memory runner of test_orchestrator; the messages go
through a real Notifier to an httpx.MockTransport webhook, so what is asserted is the payload a channel gets.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from irx.executors.http import run_http
from irx.loader import load_playbook
from irx.notify import Channel, Notifier, slack_escape
from irx.orchestrator import Orchestrator
from irx.outcome import Approval, Outcome
from irx.redact import Redactor
from irx.results import HostResult
from irx.run.comms import Communications
from irx.run.diagnosis import diagnosis_text
from test_orchestrator import HEAD, Hosts, ListJournal, MemoryRunner, Quiet, out

URL = "https://irx.example.test/runs/20261203T120000Z-abc123"
BODY = """
diagnose:
  - {id: conns, name: Count connections, on: db, shell: psql -c "select count(*)", parse: int}
  - {id: sessions, on: db, shell: psql -c "select *", parse: csv}
  - {id: whoami, on: web, shell: hostname}
mitigate:
  - {id: fix, on: db, shell: fix it, approval: required}
verify:
  - {id: check, on: db, shell: check}
"""


def walk(tmp_path: Path, runner: MemoryRunner, *, alerted: bool, body: str = BODY, dry_run: bool = False,
         secret: str = "hunter2") -> tuple[list[dict[str, Any]], ListJournal]:  # fmt: skip
    path = tmp_path / "tt.yaml"
    path.write_text(HEAD + body)
    playbook = load_playbook(path)
    journal = ListJournal()
    posted: list[dict[str, Any]] = []

    def webhook(request: httpx.Request) -> httpx.Response:
        posted.append(json.loads(request.content))
        return httpx.Response(200, text="ok")

    client = httpx.Client(transport=httpx.MockTransport(webhook))
    notifier = Notifier([Channel("hook", "webhook", url="https://hooks.test/x")], journal.record,
                        Redactor([secret]).redact_text, dry_run=False, client=client)  # fmt: skip
    info = {"id": "r1", "started_at": "2026-12-03T12:00:00Z", "severity": "SEV3", "operator": "irx@cn",
            "dry_run": dry_run, "url": URL}  # fmt: skip
    comms = Communications(notifier, playbook, info, ["db1"], journal, Quiet(), after_diagnosis=alerted)
    orchestrator = Orchestrator(
        playbook=playbook, targeting=Hosts({"db": ["db1"], "web": ["w1", "w2", "w3", "w4", "w5"]}), journal=journal,
        progress=Quiet(), host_runner=runner, http_runner=run_http, dry_run=dry_run,
        approver=lambda step, hosts, summary, digest: Approval(True, "yes-flag", "tester@test"),
        notify=comms.step, on_phase=comms.phase, results=comms.results,
    )  # fmt: skip
    comms.start()
    comms.finish(orchestrator.run())
    return posted, journal


def rows(task: Any, host: str) -> HostResult:
    return HostResult(host, "ok", rc=0, stdout="app,idle\napp,active\npostgres,active\n")


def test_the_first_message_of_an_alerted_run_carries_the_diagnosis_and_the_link(tmp_path: Path) -> None:
    posted, journal = walk(tmp_path, MemoryRunner({"conns": out("17\n"), "sessions": rows}), alerted=True)
    assert [p["kind"] for p in posted] == ["initial", "update", "resolved"]  # no "investigating" before it
    first = posted[0]
    assert (first["status"], first["phase"], first["url"]) == ("mitigating", "mitigate", URL)
    text = first["message"]
    assert "Diagnosis (3 of 3 diagnose steps ok):\n" in text
    lines = [
        "✓ conns (Count connections): 17 on db1",
        "✓ sessions: 3 rows on db1",
        "✓ whoami: ok on w1, w2, w3 and 2 more",
    ]
    assert "\n".join(lines) in text
    assert f"Approve or deny, and follow the run: {URL}" in text
    assert [p["kind"] for p in posted[1:]] == ["update", "resolved"]  # verify's update: mitigate's is the first
    [sent] = [e for e in journal.of("notification") if e["kind"] == "initial"]
    assert (sent["channel"], sent["status"], sent["message"]) == ("hook", "sent", text)


def test_a_terminal_run_keeps_its_investigating_message_first(tmp_path: Path) -> None:
    posted, _ = walk(tmp_path, MemoryRunner({"conns": out("17\n"), "sessions": rows}), alerted=False)
    assert [p["kind"] for p in posted] == ["initial", "update", "update", "resolved"]
    assert posted[0]["status"] == "investigating"
    assert "Diagnosis" not in posted[0]["message"]


def test_a_failed_diagnosis_is_still_told_first_then_the_failure(tmp_path: Path) -> None:
    failing = MemoryRunner({"conns": out("17\n"), "sessions": lambda t, h: HostResult(
        h, "failed", rc=2, stderr="psql: error: password hunter2 refused\n")})  # fmt: skip
    posted, _ = walk(tmp_path, failing, alerted=True)
    assert [p["kind"] for p in posted] == ["initial", "failed"]
    text = posted[0]["message"]
    assert "Diagnosis (1 of 3 diagnose steps ok, 1 failed, 1 not reached):" in text
    assert "✗ sessions: failed: psql: error: password ****** refused on db1\n· whoami: not reached" in text
    assert "hunter2" not in json.dumps(posted)


def test_a_dry_run_links_the_run_page_and_says_it_changes_nothing(tmp_path: Path) -> None:
    posted, _ = walk(tmp_path, MemoryRunner({"conns": out("17\n"), "sessions": rows}), alerted=True, dry_run=True)
    assert (posted[0]["kind"], posted[0]["status"]) == ("initial", "diagnosed")  # not "mitigating": it changes nothing
    assert posted[0]["message"].startswith("[DRY RUN] 🚨 INCIDENT ALERT")
    assert f"Run page: {URL}" in posted[0]["message"]
    assert "Diagnose only: irx changes nothing in this run." in posted[0]["message"]


def test_a_playbook_with_only_diagnose_steps_tells_the_diagnosis_with_the_end(tmp_path: Path) -> None:
    body = "diagnose:\n  - {id: conns, on: db, shell: count, parse: int}\n"
    posted, _ = walk(tmp_path, MemoryRunner({"conns": out("5\n")}), alerted=True, body=body)
    assert [(p["kind"], p["status"]) for p in posted] == [("initial", "diagnosed"), ("resolved", "resolved")]
    assert "✓ conns: 5 on db1" in posted[0]["message"]


@pytest.mark.parametrize(
    ("stdout", "parse", "shown"),
    [
        ("<!channel> <https://evil.test|approve here>\n", "text", "ok on db1"),  # text output is never quoted
        ('{"a": 1, "b": "<!here>"}', "json", "2 fields on db1"),
        ("x" * 300 + "\n", "regex", "1 row on db1"),
        ("3.5\n", "float", "3.5 on db1"),
    ],
)
def test_host_output_is_shown_as_a_value_never_as_markup(tmp_path: Path, stdout: str, parse: str, shown: str) -> None:
    spec = parse if parse != "regex" else "{format: regex, pattern: 'x+'}"
    body = f"diagnose:\n  - {{id: probe, on: db, shell: probe, parse: {spec}}}\n"
    path = tmp_path / "tt.yaml"
    path.write_text(HEAD + body)
    playbook = load_playbook(path)
    result = MemoryRunner({"probe": out(stdout)})
    orchestrator = Orchestrator(playbook=playbook, targeting=Hosts({"db": ["db1"]}), journal=ListJournal(),
                                progress=Quiet(), host_runner=result, http_runner=run_http,
                                approver=lambda *a: Approval(True, "yes-flag", "t"))  # fmt: skip
    orchestrator.run()
    assert diagnosis_text(playbook.phases["diagnose"], orchestrator.results) == f"✓ probe: {shown}"


def test_slack_gets_angle_brackets_escaped() -> None:
    assert slack_escape("<!channel> a & b <https://x|y>") == "&lt;!channel&gt; a &amp; b &lt;https://x|y&gt;"


@pytest.mark.parametrize(
    "url", ["ftp://irx.example", "javascript:alert(1)", "https://irx.example/?next=evil", "https://u:pw@irx.example",
            "https://irx.example/a b", "https://"],
)  # fmt: skip
@pytest.mark.parametrize("command", [["run", "db-pool-exhausted", "--approval-url"], ["serve", "--public-url"]])
def test_a_link_base_that_is_not_a_plain_http_url_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], command: list[str], url: str
) -> None:
    from irx.cli import main

    extra = ["--routes", "r.yaml", "--token-file", "t"] if command[0] == "serve" else []
    assert main([*command, url, *extra]) == 2
    err = capsys.readouterr().err
    assert f"{url!r} is not a base URL such as https://irx.example.com" in err
    assert "Traceback" not in err


def test_an_alerted_run_stopped_before_any_step_says_so_first(tmp_path: Path) -> None:
    path = tmp_path / "tt.yaml"
    path.write_text(HEAD + BODY)
    posted: list[dict[str, Any]] = []

    def webhook(request: httpx.Request) -> httpx.Response:
        posted.append(json.loads(request.content))
        return httpx.Response(200)

    journal = ListJournal()
    notifier = Notifier([Channel("hook", "webhook", url="https://hooks.test/x")], journal.record, str,
                        dry_run=False, client=httpx.Client(transport=httpx.MockTransport(webhook)))  # fmt: skip
    info = {"id": "r1", "started_at": "2026-12-03T12:00:00Z", "severity": "SEV3", "operator": "o", "dry_run": False}
    comms = Communications(notifier, load_playbook(path), info, ["db1"], journal, Quiet(), after_diagnosis=True)
    comms.start()  # an alerted run sends nothing at start
    assert posted == []
    comms.finish(Outcome("failed", "lease held by another run", {}))
    assert [(p["kind"], p["status"]) for p in posted] == [
        ("initial", "stopped before diagnosing"),
        ("failed", "failed"),
    ]
    assert "· conns (Count connections): not reached" in posted[0]["message"]
    assert "url" not in posted[0]  # no --approval-url: no link, and the text has none either
    assert "Approve" not in posted[0]["message"]

"""A real run on localhost and the SSH hosts: people are told as it happens, and the journal becomes the
post-mortem draft, the JSON report and the HTML timeline."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from journal_checks import check_journal, of_type
from jsonschema import Draft202012Validator
from test_notify_delivery import Receiver

from irx.timeline import parse_timestamp as parse_ts

if TYPE_CHECKING:
    from conftest import IrxCli  # tests/integration/conftest.py, which pytest loads as conftest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def webhook(monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    """A real HTTP receiver on 127.0.0.1 that records every POST (loopback only: no proxy)."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


TOKEN = "hook-T0K3N-secret"  # the webhook URL is a secret: only ever seen masked


def test_rolled_back_run_notifies_in_order_and_reports(irx_cli: IrxCli, webhook: Receiver, tmp_path: Path,
                                                       timeline_validator: Draft202012Validator) -> None:  # fmt: skip
    state = tmp_path / "state"
    state.mkdir()
    hook = f"{webhook.base}/hooks/{TOKEN}"

    ran = irx_cli.run("run-rollback", "-e", f"state_dir={state}", env={"IRX_WEBHOOK_URL": hook})

    assert ran.rc == 1, ran.output
    assert TOKEN not in ran.output
    journal = irx_cli.journal()
    check_journal(journal, timeline_validator)
    # Delivered in order: the alert, an update per phase after diagnose, the failure at the end.
    bodies = [body for _, body in webhook.received]
    assert [(b["kind"], b["status"]) for b in bodies] == [
        ("initial", "investigating"),
        ("update", "mitigating"),
        ("update", "verifying"),
        ("update", "rolling back"),
        ("update", "verifying"),
        ("failed", "rolled back"),
    ]
    assert all(b["run_id"] == journal.events[0]["run_id"] for b in bodies)
    assert "INCIDENT ALERT - SEV3 - A mitigation that does not verify and is rolled back" in bodies[0]["message"]
    sent = of_type(journal, "notification")
    assert [e["status"] for e in sent] == ["sent"] * 6
    assert TOKEN not in (journal.path.read_text())

    # The post-mortem draft, from the journal alone.
    draft = irx_cli.irx("report", "latest", "--format", "markdown", "--runs-dir", str(irx_cli.runs_dir))
    assert draft.rc == 0, draft.output
    text = draft.stdout
    assert text.startswith("# ")
    assert "rolled back" in text.lower()
    timeline = [line for line in text.splitlines() if line.startswith("- ") and line[2:4].isdigit() and " — " in line]
    assert any("undo" in line for line in timeline)
    assert len(timeline) >= 8

    out = tmp_path / "report.json"
    as_json = irx_cli.irx("report", "latest", "--format", "json", "-o", str(out), "--runs-dir", str(irx_cli.runs_dir))
    assert as_json.rc == 0, as_json.output
    schema = json.loads((REPO / "schemas" / "report.schema.json").read_text())
    errors = list(Draft202012Validator(schema).iter_errors(json.loads(out.read_text())))
    assert errors == []

    page = tmp_path / "report.html"
    html = irx_cli.irx("report", "latest", "--format", "html", "-o", str(page), "--runs-dir", str(irx_cli.runs_dir))
    assert html.rc == 0, html.output
    content = page.read_text()
    for host in ("localhost", "web1", "web2", "db1"):
        assert f'data-lane="host:{host}"' in content
    assert 'data-step="undo"' in content
    for metric in ("first_diagnostic", "mitigation", "verified_recovery", "total"):  # in every format
        assert f'data-metric="{metric}"' in content
    assert TOKEN not in content

    history = irx_cli.irx("history", "--format", "json", "--runs-dir", str(irx_cli.runs_dir))
    runs = json.loads(history.stdout)
    rows = runs if isinstance(runs, list) else runs.get("runs", [])
    assert [r["status"] for r in rows] == ["rolled_back"]


def test_a_real_runs_report_has_its_summary_symptoms_limit_and_what_was_never_reached(
    irx_cli: IrxCli, tmp_path: Path, timeline_validator: Draft202012Validator
) -> None:
    state = tmp_path / "state"
    state.mkdir()
    ran = irx_cli.run("run-report", "-l", "localhost,web1", "-e", f"state_dir={state}")
    assert ran.rc == 4, ran.output  # stopped at gated_fix: nobody could approve
    journal = irx_cli.journal()
    check_journal(journal, timeline_validator)
    started = journal.events[0]
    assert [item["id"] for item in started["plan"]] == ["probe", "announce", "change", "gated_fix", "checked"]
    (change,) = [item for item in started["plan"] if item["id"] == "change"]
    assert change["mutating"] is True
    assert change["hosts"] == ["localhost", "web1"]
    assert change["summary"] == f"$ sleep 1 && touch {state}/changed-$(hostname)"

    out = tmp_path / "report.json"
    done = irx_cli.irx("report", "latest", "--format", "json", "-o", str(out), "--runs-dir", str(irx_cli.runs_dir))
    assert done.rc == 0, done.output
    report = json.loads(out.read_text())
    assert report["summary"] == "The queue on every test host is stuck; a marker file stands for the fix."
    assert report["symptoms"] == ["Queue depth keeps growing", 'Workers log "connection reset"']
    assert report["limit"] == "localhost,web1"
    assert report["not_reached"] == ["checked"]
    # Time to mitigation ends when `change` (the first step that changed something) finished, not at the message.
    finished = {e["step"]: e["ts"] for e in of_type(journal, "step_finished")}
    start, end = parse_ts(started["ts"]), parse_ts(finished["change"])
    (mitigation,) = [m for m in report["metrics"] if m["key"] == "mitigation"]
    assert mitigation["seconds"] == pytest.approx((end - start).total_seconds(), abs=0.01)
    assert mitigation["seconds"] > (parse_ts(finished["announce"]) - start).total_seconds() + 0.9  # the sleep 1

    draft = irx_cli.irx("report", "latest", "--runs-dir", str(irx_cli.runs_dir))
    assert draft.rc == 0, draft.output
    assert "The queue on every test host is stuck" in draft.stdout
    assert "Queue depth keeps growing" in draft.stdout
    assert "Steps never reached: checked" in draft.stdout

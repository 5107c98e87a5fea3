"""A real run on localhost and the SSH hosts: people are told as it happens, and the journal becomes the
post-mortem draft, the JSON report and the HTML timeline."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess
import threading
import time
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


def converse(irx_cli: IrxCli, argv: list[str], answers: dict[bytes, bytes], timeout: float = 180) -> tuple[int, str]:
    """Run ``argv`` on a real terminal (a pty: stdin and stdout are ttys, so irx asks), answering each
    prompt once; return the exit code and everything the terminal showed."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(argv, cwd=irx_cli.cwd, env=irx_cli.env, stdin=slave, stdout=slave, stderr=slave)
    os.close(slave)
    shown, pending, deadline = b"", dict(answers), time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if not ready:
                if proc.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the run closed its terminal
                break
            if not chunk:
                break
            shown += chunk
            for prompt in [p for p in pending if p in shown]:
                os.write(master, pending.pop(prompt))
        else:
            proc.kill()
            raise AssertionError(f"no end after {timeout}s:\n{shown.decode(errors='replace')}")
        rc = proc.wait(timeout=30)
    finally:
        os.close(master)
    assert not pending, f"never asked {list(pending)}:\n{shown.decode(errors='replace')}"
    return rc, shown.decode(errors="replace")


DURATION_IN_SECONDS = re.compile(r"\b\d+(?:\.\d+)?s\b")


def test_a_real_runs_report_leads_with_its_finding_and_shows_what_each_step_ran(
    irx_cli: IrxCli, webhook: Receiver, tmp_path: Path, timeline_validator: Draft202012Validator
) -> None:
    state = tmp_path / "state"
    state.mkdir()
    token = "adm1n-T0K3N-zz"
    argv = irx_cli.argv(
        "run-findings", "-l", "localhost,web1", "-e", f"state_dir={state}", "-e", f"api_token={token}",
        "-e", f"admin_url={webhook.base}",
    )  # fmt: skip
    rc, shown = converse(irx_cli, argv, {b"run purge?": b"n\n"})

    assert rc == 0, shown  # purge refused, drain verified
    assert token not in shown
    made = sorted(path.name for path in state.iterdir())
    assert len(made) == 2, made
    assert all(name.startswith("drained-") for name in made), made  # nothing purged
    assert [path for path, _ in webhook.received] == ["/queue/" + token + "/drained"]  # it did reach the API
    journal = irx_cli.journal()
    check_journal(journal, timeline_validator)
    (refusal,) = of_type(journal, "approval")
    assert (refusal["step"], refusal["approved"], refusal["method"]) == ("purge", False, "refused")

    runs = ("--runs-dir", str(irx_cli.runs_dir))
    draft = irx_cli.irx("report", "latest", *runs)
    assert draft.rc == 0, draft.output
    text = draft.stdout
    assert token not in text
    # The headline first: what was wrong, what fixed it, how long.
    assert text.index("## Finding") < text.index("## Summary") < text.index("## Timeline")
    wrong, fixed, how_long = (line for line in text.split("## Finding\n\n", 1)[1].splitlines()[:3])
    assert wrong.startswith("- **What was wrong**: Read the queue depth (`depth`) found localhost: ")
    assert "which matched `steps.depth.count > 0` for Drain the queue (`drain`)" in wrong
    command = f"$ touch {state}/drained-$(hostname) && echo moved every waiting message to the retry topic for replay"
    lead = "- **What fixed it**: Drain the queue (`drain`) on localhost, web1: "
    assert fixed.startswith(lead + f"$ touch {state}/drained-$(hostname) && echo"), fixed
    assert fixed.endswith("…"), fixed  # too long for a headline: shortened ...
    cut = fixed[len(lead) : -1]
    assert command.startswith(cut), fixed
    assert command[len(cut)] == " ", fixed  # ... at a word boundary, never inside a word
    assert re.fullmatch(
        r"- \*\*How long\*\*: time to mitigation \d+\.\ds, time to verified recovery \d+\.\ds", how_long
    )
    # What each step ran: the refused purge per host (as its approver saw it), the HTTP request masked.
    resolution = text.split("## Resolution\n\n", 1)[1].split("\n\n", 1)[0].splitlines()
    (purge,) = [index for index, line in enumerate(resolution) if "(`purge`)" in line]
    assert "): refused on localhost, web1" in resolution[purge]
    assert "; refused by " in resolution[purge]
    assert resolution[purge + 1 : purge + 3] == [
        f"  - would have run on localhost (as shown for approval): `$ touch {state}/purged-localhost`",
        f"  - would have run on web1 (as shown for approval): `$ touch {state}/purged-web1`",
    ]
    (tell,) = [index for index, line in enumerate(resolution) if "(`tell_admin`)" in line]
    assert resolution[tell + 1].endswith(f'`POST {webhook.base}/queue/******/drained / json: {{"drained": true}}`')
    assert "Steps: 4 ok, 1 refused" in text
    # Durations as people write them: seconds under a minute only as tenths (4.2s), never 14400s.
    assert all(float(found[:-1]) < 60 for found in DURATION_IN_SECONDS.findall(text)), text

    page = tmp_path / "report.html"
    html = irx_cli.irx("report", "latest", "--format", "html", "-o", str(page), *runs)
    assert html.rc == 0, html.output
    content = page.read_text()
    assert token not in content
    assert "queue/******/drained" in content
    assert {"purge"} == set(re.findall(r'data-step="(\w+)"[^>]*data-status="refused"', content))
    assert content.count('data-step="purge" data-host="') == 3  # its phase bar and one per host, all refused
    assert '<span class="key" data-key="refused">' in content
    assert 'data-source="approval" data-hosts="web1"><div class="ran-head">would have run on web1' in content
    assert f"touch {state}/purged-web1</pre>" in content
    assert content.index('class="finding"') < content.index('class="timeline"')
    assert "matched `steps.depth.count &gt; 0` for Drain the queue" in content

    history = irx_cli.irx("history", *runs)
    assert history.rc == 0, history.output
    (row,) = history.stdout.splitlines()[1:]
    assert re.search(r"\s\d+\.\ds$", row), row  # 7.3s, as the report writes it

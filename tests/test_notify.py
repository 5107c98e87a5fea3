"""irx.notify: channel configuration, message templates, and delivery logic over httpx.MockTransport."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from irx.errors import TemplateError, UsageError
from irx.events import Event
from irx.notify import Channel, Notifier, load_channels, render_message, secret_values
from irx.redact import Redactor

SLACK_URL = "https://hooks.slack.test/services/T000/B000/s3cr3tT0ken"
HOOK_URL = "https://hooks.example.test/irx/h00kS3cret"

CONTEXT: dict[str, Any] = {
    "run": {
        "id": "20261122T110944Z-3fa9c1",
        "started_at": "2026-11-22T11:09:44.123456Z",
        "severity": "SEV2",
        "operator": "ann@ops1",
        "dry_run": False,
    },
    "playbook": {"name": "disk-full", "title": "Disk full on web hosts", "severity": "SEV2"},
}
NOW = datetime(2026, 11, 22, 11, 14, 1, tzinfo=UTC)


# --- configuration --------------------------------------------------------------------------------------


def test_load_channels_from_inventory_then_environment() -> None:
    inventory = [
        {"name": "ops", "kind": "slack", "url": SLACK_URL},
        {"name": "log", "kind": "file", "path": "/tmp/irx-notify.log"},
        {"name": "term", "kind": "stdout"},
    ]
    environ = {"IRX_WEBHOOK_URL": HOOK_URL, "IRX_NOTIFY_FILE": "/tmp/n.jsonl", "IRX_SLACK_WEBHOOK_URL": ""}
    channels = load_channels(inventory, environ)
    assert [(c.name, c.kind) for c in channels] == [
        ("ops", "slack"),
        ("log", "file"),
        ("term", "stdout"),
        ("webhook", "webhook"),
        ("file", "file"),
    ]
    assert channels[0].url == SLACK_URL
    assert channels[4].path == Path("/tmp/n.jsonl")
    assert secret_values(channels) == [SLACK_URL, HOOK_URL]
    assert "s3cr3t" not in repr(channels)


def test_load_channels_nothing_configured() -> None:
    assert load_channels(None, {}) == []
    assert load_channels([], {"IRX_WEBHOOK_URL": "  "}) == []


def test_load_channels_reports_every_bad_entry_without_urls() -> None:
    inventory = [
        {"name": "ops", "kind": "slack", "url": "ftp://hooks.slack.test/s3cr3tT0ken"},
        {"name": "x", "kind": "pager"},
        "slack",
        {"kind": "stdout"},
        {"name": "log", "kind": "file"},
        {"name": "term", "kind": "stdout", "colour": True},
        {"name": "ops", "kind": "stdout"},
    ]
    with pytest.raises(UsageError) as info:
        load_channels(inventory, {"IRX_SLACK_WEBHOOK_URL": "not a url s3cr3tT0ken"})
    assert str(info.value) == (
        "invalid notification channels: "
        "irx_notify[0] (ops): 'url' must be an http(s) URL (value not shown: it is a secret); "
        "irx_notify[1] (x): 'kind' must be one of slack, webhook, file, stdout, got 'pager'; "
        "irx_notify[2]: expected a mapping with name and kind, got str; "
        "irx_notify[3]: 'name' must be a non-empty string; "
        "irx_notify[4] (log): 'path' must be a non-empty string; "
        "irx_notify[5] (term): unknown key(s) colour (allowed: kind, name, path, url); "
        "IRX_SLACK_WEBHOOK_URL: not an http(s) URL (value not shown: it is a secret)"
    )
    assert "s3cr3t" not in str(info.value)


def test_load_channels_not_a_list_and_duplicates() -> None:
    with pytest.raises(
        UsageError, match=r"^invalid notification channels: irx_notify: expected a list of channels, got dict$"
    ):
        load_channels({"name": "ops"}, {})
    with pytest.raises(UsageError, match=r"irx_notify\[1\]: channel name 'ops' is already used by irx_notify\[0\]"):
        load_channels([{"name": "ops", "kind": "stdout"}, {"name": "ops", "kind": "stdout"}], {})
    with pytest.raises(UsageError, match=r"IRX_WEBHOOK_URL: channel name 'webhook' is already used by irx_notify\[0\]"):
        load_channels([{"name": "webhook", "kind": "stdout"}], {"IRX_WEBHOOK_URL": HOOK_URL})


# --- messages -------------------------------------------------------------------------------------------


def test_render_initial_from_packaged_template() -> None:
    text = render_message("initial", {**CONTEXT, "summary": "web1, web2"}, now=NOW, environ={})
    assert text == (
        "🚨 INCIDENT ALERT - SEV2 - Disk full on web hosts\n\n"
        "Status: INVESTIGATING\n"
        "Started: 2026-11-22 11:09:44 UTC\n"
        "Severity: SEV2\n"
        "Playbook: disk-full\n"
        "Scope: web1, web2\n"
        "Operator: ann@ops1\n"
        "Run: 20261122T110944Z-3fa9c1\n\n"
        "Automated remediation is under way; an update follows at each phase."
    )


def test_render_update_status_from_phase_and_elapsed() -> None:
    text = render_message("update", {**CONTEXT, "phase": "mitigate", "step": "rotate-logs"}, now=NOW, environ={})
    assert text.splitlines()[:6] == [
        "📊 INCIDENT UPDATE - SEV2 - Disk full on web hosts",
        "",
        "Time: 2026-11-22 11:14:01 UTC",
        "Status: MITIGATING",
        "Duration: 4m 17s",
        "Phase: mitigate",
    ]
    assert "\n\n\n" not in text


@pytest.mark.parametrize("kind", ["initial", "update", "resolved", "failed", "step"])
def test_every_packaged_template_renders_with_the_minimal_context(kind: str) -> None:
    dry = {**CONTEXT, "run": {**CONTEXT["run"], "dry_run": True}}
    text = render_message(kind, dry, now=NOW, environ={})
    assert text.startswith("[DRY RUN] ")
    assert "None" not in text


def test_render_failed_and_resolved_carry_reason() -> None:
    failed = render_message("failed", {**CONTEXT, "reason": "disk still 96% full", "step": "check"}, environ={})
    assert "Reason: disk still 96% full" in failed
    assert "manual intervention" in failed
    resolved = render_message("resolved", {**CONTEXT, "summary": "- freed 12 GiB"}, environ={})
    assert "Summary:\n- freed 12 GiB" in resolved


def test_playbook_override_wins_and_step_is_not_overridable() -> None:
    override = "{{ playbook.name }} is {{ status }}"
    assert render_message("update", {**CONTEXT, "phase": "verify"}, override, environ={}) == "disk-full is verifying"
    step = render_message("step", {**CONTEXT, "message": "paging the DBA"}, override, environ={})
    assert step.endswith("paging the DBA")


def test_project_directory_wins_over_packaged(tmp_path: Path) -> None:
    (tmp_path / "resolved.j2").write_text("fixed: {{ playbook.title }}\n")
    environ = {"IRX_TEMPLATES_DIR": str(tmp_path)}
    assert render_message("resolved", CONTEXT, environ=environ) == "fixed: Disk full on web hosts"
    assert render_message("initial", CONTEXT, environ=environ).startswith("🚨 INCIDENT ALERT")  # falls back
    with pytest.raises(UsageError, match=r"^IRX_TEMPLATES_DIR: .* is not a directory$"):
        render_message("initial", CONTEXT, environ={"IRX_TEMPLATES_DIR": str(tmp_path / "nope")})


def test_bad_templates_raise_template_error_naming_the_source() -> None:
    with pytest.raises(TemplateError, match=r"^messages\.failed: 'nothing' is undefined$"):
        render_message("failed", CONTEXT, "{{ nothing.here }}", environ={})
    with pytest.raises(TemplateError, match=r"^messages.initial: refused by the sandbox"):
        render_message("initial", CONTEXT, "{{ run.__class__.__mro__ }}", environ={})
    with pytest.raises(TemplateError, match=r"^templates/messages/initial.j2: .*'playbook' is undefined"):
        render_message("initial", {"run": CONTEXT["run"]}, environ={})
    with pytest.raises(ValueError, match="unknown message kind 'page'"):
        render_message("page", CONTEXT, environ={})


# --- delivery -------------------------------------------------------------------------------------------


class Recorder:
    """Journal and transport stand-ins: the events recorded, the requests seen."""

    def __init__(self, answer: Callable[[httpx.Request], httpx.Response] | None = None) -> None:
        self.events: list[dict[str, Any]] = []
        self.requests: list[httpx.Request] = []
        self._answer = answer or (lambda request: httpx.Response(200, text="ok"))

    def record(self, event: Event) -> None:
        self.events.append({"type": event.type, **event.fields()})

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self._answer(request)

    def notifier(self, channels: list[Channel], *, dry_run: bool = False, **options: Any) -> Notifier:
        redactor = Redactor(["hunter2", *secret_values(channels)])
        client = httpx.Client(transport=httpx.MockTransport(self.handler))
        options.setdefault("backoff", 0.0)
        return Notifier(channels, self.record, redactor.redact_text, dry_run, client=client, **options)


def test_slack_and_webhook_payloads_redacted_one_event_per_channel() -> None:
    rec = Recorder()
    channels = [Channel("ops", "slack", url=SLACK_URL), Channel("hook", "webhook", url=HOOK_URL)]
    rec.notifier(channels).send(
        "update", "password hunter2 rotated", run_id="r1", playbook="disk-full", severity="SEV2", phase="mitigate"
    )
    assert [str(r.url) for r in rec.requests] == [SLACK_URL, HOOK_URL]
    assert json.loads(rec.requests[0].content) == {"text": "password ****** rotated"}
    assert json.loads(rec.requests[1].content) == {
        "kind": "update",
        "run_id": "r1",
        "playbook": "disk-full",
        "severity": "SEV2",
        "phase": "mitigate",
        "message": "password ****** rotated",
    }
    assert [(e["type"], e["channel"], e["status"], e["attempts"], e["http_status"]) for e in rec.events] == [
        ("notification", "ops", "sent", 1, 200),
        ("notification", "hook", "sent", 1, 200),
    ]
    assert all(e["message"] == "password ****** rotated" and e["phase"] == "mitigate" for e in rec.events)
    assert all("error" not in e for e in rec.events)


def test_dry_run_renders_only() -> None:
    rec = Recorder()
    stream = io.StringIO()
    channels = [Channel("ops", "slack", url=SLACK_URL), Channel("term", "stdout")]
    rec.notifier(channels, dry_run=True, stream=stream).send("initial", "starting")
    assert rec.requests == []
    assert stream.getvalue() == ""
    assert [(e["channel"], e["status"], e["attempts"]) for e in rec.events] == [
        ("ops", "rendered", 0),
        ("term", "rendered", 0),
    ]


def test_5xx_is_retried_then_failed() -> None:
    rec = Recorder(lambda request: httpx.Response(503, text="upstream\n down"))
    rec.notifier([Channel("ops", "slack", url=SLACK_URL)], retries=2).send("failed", "boom")
    assert len(rec.requests) == 3
    (event,) = rec.events
    assert (event["status"], event["attempts"], event["http_status"], event["error"]) == (
        "failed",
        3,
        503,
        "HTTP 503: upstream down",
    )


def test_4xx_is_not_retried() -> None:
    rec = Recorder(lambda request: httpx.Response(404, text="no_service"))
    rec.notifier([Channel("ops", "slack", url=SLACK_URL)], retries=5).send("failed", "boom")
    assert len(rec.requests) == 1
    assert rec.events[0]["error"] == "HTTP 404: no_service"


def test_recovers_after_a_transient_error() -> None:
    answers = iter([httpx.Response(502), httpx.Response(200)])
    rec = Recorder(lambda request: next(answers))
    rec.notifier([Channel("hook", "webhook", url=HOOK_URL)]).send("update", "x")
    assert (rec.events[0]["status"], rec.events[0]["attempts"], rec.events[0]["http_status"]) == ("sent", 2, 200)


def test_connect_error_text_never_holds_the_url() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"cannot reach {request.url}", request=request)

    rec = Recorder(refuse)
    rec.notifier([Channel("hook", "webhook", url=HOOK_URL)], retries=1).send("update", f"see {HOOK_URL}")
    (event,) = rec.events
    assert event["status"] == "failed"
    assert event["attempts"] == 2
    assert event["error"] == "ConnectError: cannot reach ******"
    assert "h00kS3cret" not in json.dumps(rec.events)
    assert "http_status" not in event


def test_timeout_is_retried_and_recorded() -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    rec = Recorder(slow)
    rec.notifier([Channel("ops", "slack", url=SLACK_URL)], timeout=0.5, retries=1).send("update", "x")
    assert len(rec.requests) == 2
    assert rec.events[0]["error"] == "timed out after 0.5s (read)"


def test_one_channel_by_name_and_unknown_channel_recorded() -> None:
    rec = Recorder()
    stream = io.StringIO()
    notifier = rec.notifier([Channel("ops", "slack", url=SLACK_URL), Channel("term", "stdout")], stream=stream)
    notifier.send("step", "hello", channel="term", step="tell")
    notifier.send("step", "hello", channel="pager", step="tell")
    assert rec.requests == []
    assert stream.getvalue() == "hello\n"
    assert [(e["channel"], e["status"], e.get("error")) for e in rec.events] == [
        ("term", "sent", None),
        ("pager", "failed", "no channel named 'pager' is configured"),
    ]
    assert all(e["step"] == "tell" for e in rec.events)


def test_file_sink_appends_json_lines_and_unwritable_path_is_recorded(tmp_path: Path) -> None:
    rec = Recorder()
    sink = tmp_path / "notify.jsonl"
    notifier = rec.notifier([Channel("log", "file", path=sink), Channel("bad", "file", path=tmp_path / "no" / "x")])
    notifier.send("initial", "line one\nline two hunter2", run_id="r1")
    notifier.send("resolved", "done", run_id="r1")
    lines = [json.loads(line) for line in sink.read_text().splitlines()]
    assert [(d["kind"], d["run_id"], d["message"]) for d in lines] == [
        ("initial", "r1", "line one\nline two ******"),
        ("resolved", "r1", "done"),
    ]
    bad = [e for e in rec.events if e["channel"] == "bad"]
    assert [e["status"] for e in bad] == ["failed", "failed"]
    assert bad[0]["error"].startswith("cannot write ")


def test_a_raising_transport_is_recorded_not_raised() -> None:
    def broken(request: httpx.Request) -> httpx.Response:
        raise RuntimeError("transport bug")

    rec = Recorder(broken)
    rec.notifier([Channel("ops", "slack", url=SLACK_URL)]).send("update", "x")
    assert (rec.events[0]["status"], rec.events[0]["error"]) == ("failed", "RuntimeError: transport bug")


def test_notify_does_not_import_httpx_until_it_posts() -> None:
    import subprocess
    import sys

    code = "import sys, irx.notify; assert 'httpx' not in sys.modules, 'httpx imported at import time'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_recorded_events_match_the_timeline_schema(repo: Path) -> None:
    from jsonschema import Draft202012Validator

    schema = json.loads((repo / "schemas" / "timeline.schema.json").read_text())
    validator = Draft202012Validator(schema)
    answers = iter([httpx.Response(500), httpx.Response(500), httpx.Response(500), httpx.Response(200)])
    rec = Recorder(lambda request: next(answers))
    channels = [Channel("ops", "slack", url=SLACK_URL), Channel("hook", "webhook", url=HOOK_URL)]
    rec.notifier(channels).send("failure", "x", phase="verify", step="check")
    rec.notifier(channels, dry_run=True).send("initial", "y")
    assert [e["status"] for e in rec.events] == ["failed", "sent", "rendered", "rendered"]
    for seq, event in enumerate(rec.events, 1):
        line = {"v": 1, "seq": seq, "ts": "2026-11-22T11:09:44.123456Z", "run_id": "r1", **event}
        assert [error.message for error in validator.iter_errors(line)] == []

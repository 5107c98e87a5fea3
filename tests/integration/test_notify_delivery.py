"""Notification delivery against a real HTTP server on 127.0.0.1 that records what it receives.

The server runs in a thread on an ephemeral loopback port; its behaviour (answer 200, answer 500, answer too
late) is set per test. The Notifier makes its own httpx client, as in a run.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from irx.events import Event
from irx.notify import Notifier, load_channels, secret_values
from irx.redact import Redactor

pytestmark = pytest.mark.integration

TOKEN = "xoxb-T0K3N-not-for-eyes"  # a fake secret: it must only ever leave masked


class Receiver(ThreadingHTTPServer):
    """Records each POST as (path, JSON body); ``mode`` is ok, error (500) or slow (answers too late)."""

    daemon_threads = True
    block_on_close = False

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.mode = "ok"
        self.received: list[tuple[str, Any]] = []
        self.lock = threading.Lock()
        self.release = threading.Event()  # wakes slow handlers at teardown

    @property
    def base(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        with self.server.lock:
            self.server.received.append((self.path, json.loads(body)))
        if self.server.mode == "slow":
            self.server.release.wait(10)
        status = 500 if self.server.mode == "error" else 200
        payload = b"internal error" if status == 500 else b"ok"
        try:
            self.send_response(status)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except OSError:  # the client gave up (timeout): nothing to answer
            pass

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    # Loopback only: no proxy may route the test's requests anywhere else.
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), name="notify-receiver", daemon=True)
    thread.start()
    yield server
    server.release.set()
    server.shutdown()
    server.server_close()
    thread.join(5)


class Events:
    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []

    def __call__(self, event: Event) -> None:  # Journal.record
        self.items.append({"type": event.type, **event.fields()})


def _notifier(inventory: list[dict[str, Any]], events: Events, **options: Any) -> Notifier:
    channels = load_channels(inventory, {})
    redactor = Redactor([TOKEN, *secret_values(channels)])
    options.setdefault("backoff", 0.05)
    return Notifier(channels, events, redactor.redact_text, options.pop("dry_run", False), **options)


def test_messages_arrive_in_order_redacted(receiver: Receiver, tmp_path: Path) -> None:
    slack_url = f"{receiver.base}/services/T0/B0/{TOKEN}"
    hook_url = f"{receiver.base}/hook"
    sink = tmp_path / "notify.jsonl"
    events = Events()
    inventory = [
        {"name": "ops", "kind": "slack", "url": slack_url},
        {"name": "hook", "kind": "webhook", "url": hook_url},
        {"name": "log", "kind": "file", "path": str(sink)},
    ]
    with _notifier(inventory, events) as notifier:
        notifier.send("initial", f"started; token {TOKEN}", run_id="r1", playbook="disk-full", severity="SEV2")
        notifier.send("update", "mitigating", run_id="r1", phase="mitigate")
        notifier.send("resolved", "verified", run_id="r1")

    paths = [path for path, _ in receiver.received]
    assert paths == ["/services/T0/B0/" + TOKEN, "/hook"] * 3
    assert [body for path, body in receiver.received if path != "/hook"] == [
        {"text": "started; token ******"},
        {"text": "mitigating"},
        {"text": "verified"},
    ]
    hooks = [body for path, body in receiver.received if path == "/hook"]
    assert [(b["kind"], b["message"]) for b in hooks] == [
        ("initial", "started; token ******"),
        ("update", "mitigating"),
        ("resolved", "verified"),
    ]
    assert hooks[0] == {
        "kind": "initial",
        "run_id": "r1",
        "playbook": "disk-full",
        "severity": "SEV2",
        "message": "started; token ******",
    }
    assert [json.loads(line)["kind"] for line in sink.read_text().splitlines()] == ["initial", "update", "resolved"]
    assert TOKEN not in sink.read_text()
    assert [(e["channel"], e["status"], e["kind"]) for e in events.items] == [
        (channel, "sent", kind) for kind in ("initial", "update", "resolved") for channel in ("ops", "hook", "log")
    ]
    assert TOKEN not in json.dumps(events.items)


def test_dry_run_sends_nothing(receiver: Receiver) -> None:
    events = Events()
    with _notifier([{"name": "ops", "kind": "slack", "url": f"{receiver.base}/x"}], events, dry_run=True) as notifier:
        notifier.send("initial", "would start")
    assert receiver.received == []
    assert [(e["status"], e["message"]) for e in events.items] == [("rendered", "would start")]


def test_server_down_is_recorded_failed_fast(receiver: Receiver) -> None:
    url = f"{receiver.base}/services/{TOKEN}"
    receiver.shutdown()
    receiver.server_close()  # the port now refuses connections
    events = Events()
    started = time.monotonic()
    with _notifier([{"name": "ops", "kind": "slack", "url": url}], events, retries=2) as notifier:
        notifier.send("failed", "run failed")
    elapsed = time.monotonic() - started
    (event,) = events.items
    assert (event["status"], event["attempts"]) == ("failed", 3)
    assert event["error"].startswith("ConnectError: ")
    assert "http_status" not in event
    assert TOKEN not in json.dumps(event)
    assert elapsed < 2.0


def test_slow_server_times_out_within_bound(receiver: Receiver) -> None:
    receiver.mode = "slow"
    events = Events()
    started = time.monotonic()
    with _notifier(
        [{"name": "hook", "kind": "webhook", "url": f"{receiver.base}/hook"}], events, timeout=0.3, retries=1
    ) as notifier:
        notifier.send("update", "still working")
    elapsed = time.monotonic() - started
    (event,) = events.items
    assert (event["status"], event["attempts"], event["error"]) == ("failed", 2, "timed out after 0.3s (read)")
    assert len(receiver.received) == 2
    # two attempts of 0.3 s plus one 0.05 s backoff; generous ceiling for a loaded CI machine
    assert 0.6 <= elapsed < 2.5
    assert event["duration"] == pytest.approx(elapsed, abs=0.2)


def test_500_is_retried_then_failed(receiver: Receiver) -> None:
    receiver.mode = "error"
    events = Events()
    with _notifier([{"name": "ops", "kind": "slack", "url": f"{receiver.base}/s"}], events, retries=2) as notifier:
        notifier.send("failed", "run failed")
    assert len(receiver.received) == 3
    (event,) = events.items
    assert (event["status"], event["attempts"], event["http_status"], event["error"]) == (
        "failed",
        3,
        500,
        "HTTP 500: internal error",
    )

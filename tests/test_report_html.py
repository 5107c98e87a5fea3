"""The HTML report: one self-contained page, lanes and bars to scale, every journal string escaped."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from irx.journal_read import JournalRead
from irx.report.html import render
from irx.report.model import Metric, build_report
from irx.timeline import utc_timestamp

START = datetime(2026, 11, 22, 11, 9, 44, tzinfo=UTC)
RUN_ID = "20261122T110944Z-abcdef"


class Events:
    """Journal events with timestamps chosen by the test: ``at`` seconds after START."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def add(self, at: float, type: str, **fields: Any) -> None:
        stamp = utc_timestamp(START + timedelta(seconds=at))
        self.events.append({"v": 1, "seq": len(self.events) + 1, "ts": stamp, "run_id": RUN_ID, "type": type, **fields})


def render_events(
    events: list[dict[str, Any]], problems: list[str] | tuple[str, ...] = (), *, running: bool | None = None
) -> str:
    """The page of a journal holding ``events`` (read back with ``problems``), as ``irx report`` renders it."""
    journal = JournalRead(Path("timeline.jsonl"), list(events), list(problems), running=running)
    return render(build_report(journal))


def incident() -> list[dict[str, Any]]:
    """A 100-second run: diagnose on two hosts, a decision, an approved restart, a verification."""
    log = Events()
    log.add(
        0,
        "run_started",
        playbook="db-pool-exhausted",
        title="PostgreSQL connection pool exhausted",
        severity="SEV2",
        inventory="prod",
        mode="run",
        operator="alice@laptop",
        hosts=["web1", "db1"],
    )
    log.add(0, "phase_started", phase="diagnose")
    log.add(0, "step_started", phase="diagnose", step="connections", title="Count connections", hosts=["web1", "db1"])
    log.add(10, "host_result", phase="diagnose", step="connections", host="web1", status="ok", rc=0, duration=10.0)
    log.add(20, "host_result", phase="diagnose", step="connections", host="db1", status="failed", rc=2, duration=20.0)
    log.add(20, "step_finished", phase="diagnose", step="connections", status="failed", duration=20.0)
    log.add(20, "phase_finished", phase="diagnose", status="ok")
    log.add(20, "phase_started", phase="mitigate")
    log.add(25, "decision", phase="mitigate", step="restart", decision="run", reason="when: true")
    log.add(30, "approval", phase="mitigate", step="restart", approved=True, by="alice@laptop", method="tty")
    log.add(30, "step_started", phase="mitigate", step="restart", summary="systemctl restart app", hosts=["web1"])
    log.add(70, "host_result", phase="mitigate", step="restart", host="web1", status="timed_out", duration=40.0)
    log.add(70, "step_finished", phase="mitigate", step="restart", status="timed_out", duration=40.0)
    log.add(70, "step_started", phase="mitigate", step="drain", hosts=["db1"])
    log.add(70, "decision", phase="mitigate", step="drain", decision="skip", reason="when: false")
    log.add(70, "step_finished", phase="mitigate", step="drain", status="skipped")
    log.add(75, "phase_started", phase="verify")
    log.add(75, "step_started", phase="verify", step="health", hosts=["web1"])
    log.add(95, "host_result", phase="verify", step="health", host="web1", status="unreachable", msg="ssh: timeout")
    log.add(95, "step_finished", phase="verify", step="health", status="failed")
    log.add(100, "run_finished", status="failed", exit_code=1, duration=100.0, reason="verification failed")
    return log.events


@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    text: str = ""
    children: list[Element] = field(default_factory=list)

    @property
    def classes(self) -> set[str]:
        return set(self.attrs.get("class", "").split())

    def style(self, name: str) -> float:
        match = re.search(rf"(?:^|;)\s*{name}:\s*([0-9.]+)%", self.attrs.get("style", ""))
        assert match, f"no {name} in {self.attrs}"
        return float(match.group(1))


class Page(HTMLParser):
    """Every element of a page with its attributes and its own text, and its nesting (void tags ignored)."""

    VOID = frozenset({"meta", "link", "br", "img", "input", "hr"})

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[Element] = []
        self.stack: list[Element] = []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, {name: value or "" for name, value in attrs})
        self.elements.append(element)
        if self.stack:
            self.stack[-1].children.append(element)
        if tag not in self.VOID:
            self.stack.append(element)

    def handle_endtag(self, tag: str) -> None:
        while self.stack:
            if self.stack.pop().tag == tag:
                break

    def handle_data(self, data: str) -> None:
        for element in self.stack:
            element.text += data

    def with_class(self, name: str) -> list[Element]:
        return [element for element in self.elements if name in element.classes]


def bars(page: Page, **attrs: str) -> list[Element]:
    return [bar for bar in page.with_class("bar") if all(bar.attrs.get(f"data-{k}") == v for k, v in attrs.items())]


def test_lanes_per_phase_and_host_in_order() -> None:
    page = Page(render_events(incident()))
    lanes = [lane.attrs["data-lane"] for lane in page.with_class("lane")]
    assert lanes == ["phase:diagnose", "phase:mitigate", "phase:verify", "host:web1", "host:db1"]


def test_phase_lanes_hold_one_bar_per_step_with_its_status() -> None:
    page = Page(render_events(incident()))
    lane = next(lane for lane in page.with_class("lane") if lane.attrs["data-lane"] == "phase:mitigate")
    found = [(bar.attrs["data-step"], bar.attrs["data-status"]) for bar in lane.children[1].children]
    assert found == [("restart", "timed_out"), ("drain", "skipped")]


def test_host_lanes_hold_one_bar_per_result() -> None:
    page = Page(render_events(incident()))
    lane = next(lane for lane in page.with_class("lane") if lane.attrs["data-lane"] == "host:web1")
    found = [(bar.attrs["data-step"], bar.attrs["data-status"]) for bar in lane.children[1].children]
    assert found == [("connections", "ok"), ("restart", "timed_out"), ("health", "unreachable")]
    # A skipped step has no results; it is still drawn on the lanes of the hosts it would have run on.
    assert [bar.attrs["data-status"] for bar in bars(page, host="db1")] == ["failed", "skipped"]


def test_bars_are_positioned_and_sized_to_scale() -> None:
    page = Page(render_events(incident()))  # 100 s: one second is one percent
    (web1,) = bars(page, step="connections", host="web1")
    (db1,) = bars(page, step="connections", host="db1")
    assert (web1.style("left"), web1.style("width")) == (0.0, 10.0)
    assert (db1.style("left"), db1.style("width")) == (0.0, 20.0)
    (restart,) = bars(page, step="restart", host="")
    assert (restart.style("left"), restart.style("width")) == (30.0, 40.0)
    # No duration recorded: the bar runs from the step's start to the result.
    (health,) = bars(page, step="health", host="web1")
    assert (health.style("left"), health.style("width")) == (75.0, 20.0)


def test_host_bars_never_start_before_their_step() -> None:
    log = Events()
    log.add(0, "run_started", playbook="p", hosts=["h"])
    log.add(5, "step_started", phase="diagnose", step="s", hosts=["h"])
    log.add(10, "host_result", phase="diagnose", step="s", host="h", status="ok", duration=60.0)
    log.add(10, "step_finished", phase="diagnose", step="s", status="ok")
    (bar,) = bars(Page(render_events(log.events)), host="h")
    assert (bar.style("left"), bar.style("width")) == (50.0, 50.0)


def test_decisions_and_approvals_are_marked_on_the_axis() -> None:
    page = Page(render_events(incident()))
    markers = [(m.attrs["data-kind"], m.style("left")) for m in page.with_class("marker")]
    assert markers == [("decision", 25.0), ("approval", 30.0), ("decision", 70.0)]
    assert "alice@laptop" in page.with_class("marker")[1].attrs["title"]


def test_header_shows_the_run() -> None:
    page = Page(render_events(incident()))
    fields = {f.attrs["data-field"]: f.text for f in page.elements if "field" in f.classes}
    assert fields["playbook"] == "Playbookdb-pool-exhausted"
    assert fields["severity"] == "SeveritySEV2"
    assert fields["status"] == "Statusfailed"
    assert fields["run_id"] == f"Run id{RUN_ID}"
    assert fields["operator"] == "Operatoralice@laptop"
    assert fields["started"] == "Started2026-11-22 11:09:44 UTC"
    assert fields["duration"] == "Duration1m 40s"


def test_each_step_has_expandable_output_per_host() -> None:
    events = incident()
    events[3] |= {"stdout": "12 connections\n", "stderr": "warning: slow\n"}
    page = Page(render_events(events))
    steps = [d for d in page.elements if d.tag == "details" and "step" in d.classes]
    assert [d.attrs["data-step"] for d in steps] == ["connections", "restart", "drain", "health"]
    outputs = [d for d in steps[0].children if d.tag == "div" and "result" in d.classes]
    assert [o.attrs["data-host"] for o in outputs] == ["web1", "db1"]
    assert "12 connections" in outputs[0].text
    assert "warning: slow" in outputs[0].text
    assert "ssh: timeout" in steps[3].text


def test_journal_text_is_escaped() -> None:
    events = incident()
    hostile = '<script>alert("x")</script>'
    events[0] |= {"title": hostile, "operator": hostile}
    for event in events[2:6]:  # the first step, its results and its end
        event["step"] = hostile
    events[3] |= {"stdout": hostile, "host": hostile, "msg": "a & b"}
    text = render_events(events, [f"line 9: {hostile}"])
    assert "<script" not in text
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in text
    page = Page(text)
    assert hostile in {lane.attrs["data-lane"][5:] for lane in page.with_class("lane")}
    assert any(hostile in element.text for element in page.elements if element.tag == "pre")
    assert hostile in {bar.attrs["data-step"] for bar in page.with_class("bar")}
    assert "a &amp; b" in text


@pytest.mark.parametrize("needle", ['src="http', "src='http", "<link", "@import", "url(http", "<script", "url(//"])
def test_page_is_self_contained(needle: str) -> None:
    assert needle not in render_events(incident()).lower()


def test_journal_problems_are_shown() -> None:
    page = Page(render_events(incident(), ["line 7: truncated event (the run was killed while writing)"]))
    (section,) = page.with_class("problems")
    assert "line 7: truncated event" in section.text


def test_an_interrupted_run_renders_what_was_recorded() -> None:
    events = [e for e in incident() if e["seq"] <= 12]  # killed while `restart` ran
    page = Page(render_events(events, running=False))
    (restart,) = bars(page, step="restart", host="")
    assert restart.attrs["data-status"] == "interrupted"
    assert restart.style("left") + restart.style("width") == pytest.approx(100.0)
    fields = {f.attrs["data-field"]: f.text for f in page.elements if "field" in f.classes}
    assert fields["status"] == "Statusinterrupted"
    assert "(so far)" in fields["duration"]
    live = Page(render_events(events, running=True))  # its writer still holds the lock: still running
    assert "Statusrunning" in {f.text for f in live.elements}
    assert [bar.attrs["data-status"] for bar in bars(live, step="restart", host="")] == ["running"]


def test_html_and_markdown_read_one_model() -> None:
    from irx.report import markdown

    report = build_report(JournalRead(Path("timeline.jsonl"), incident(), []))
    page = Page(render(report))
    states = {d.attrs["data-step"]: d.attrs["data-state"] for d in page.elements if "step" in d.classes}
    assert states == {step.id: step.state for step in report.steps}
    assert states == {"connections": "failed", "restart": "timed_out", "drain": "skipped", "health": "failed"}
    fields = {f.attrs["data-field"]: f.text for f in page.elements if "field" in f.classes}
    assert fields["duration"] == "Duration1m 40s"
    assert "**Duration**: 1m 40s" in markdown.render(report)


@pytest.mark.parametrize(
    "events",
    [
        [],
        [{"type": "run_started"}],  # no timestamp
        [{"type": "step_started", "ts": "garbage", "step": "s"}],
        [{"type": "host_result", "ts": "2026-11-22T11:09:44.000000Z", "host": "h", "status": "ok", "duration": "x"}],
    ],
)
def test_odd_journals_still_render(events: list[dict[str, Any]]) -> None:
    assert render_events(events).startswith("<!DOCTYPE html>")


def test_metrics_are_shown_as_people_write_durations_and_flagged_over_target() -> None:
    report = dataclasses.replace(
        build_report(JournalRead(Path("timeline.jsonl"), incident(), [])),
        metrics=(
            Metric("first_diagnostic", "Time to first diagnostic result", 12.0, 900.0, "respond", False),
            Metric("total", "Total", 5000.0, 3600.0, "resolve", True),
        ),
    )
    page = render(report)
    assert (
        '<tr class="metric" data-metric="first_diagnostic" data-over="false"><td>Time to first diagnostic result</td>'
        "<td>12.0s</td><td>respond ≤ 15m</td>" in page
    )
    assert '<tr class="metric over" data-metric="total" data-over="true"><td>Total</td><td>1h 23m</td>' in page
    assert "<td>resolve ≤ 1h</td>" in page
    assert "OVER TARGET" in page
    assert "5000" not in page
    assert "3600" not in page


def refused_run() -> list[dict[str, Any]]:
    """A diagnosis that matched, a mitigation that changed something, a gated step a person refused."""
    log = Events()
    log.add(0, "run_started", playbook="p", title="Queue stuck", severity="SEV2", mode="run", hosts=["web1", "db1"])
    log.add(0, "phase_started", phase="diagnose")
    log.add(0, "step_started", phase="diagnose", step="depth", title="Queue depth", hosts=["web1", "db1"])
    log.add(4, "host_result", phase="diagnose", step="depth", host="web1", status="ok", data={"depth": 900})
    log.add(4, "host_result", phase="diagnose", step="depth", host="db1", status="ok", data={"depth": 3})
    log.add(4, "step_finished", phase="diagnose", step="depth", status="ok")
    log.add(4, "phase_started", phase="mitigate")
    log.add(5, "decision", phase="mitigate", step="drain", decision="run", expression="steps.depth.max > 100")
    log.add(5, "step_started", phase="mitigate", step="drain", title="Drain", summary="Drain", hosts=["web1"],
            action="shell", mutating=True)  # fmt: skip
    log.add(9, "host_result", phase="mitigate", step="drain", host="web1", status="ok", changed=True)
    log.add(9, "step_finished", phase="mitigate", step="drain", status="ok")
    log.add(10, "step_started", phase="mitigate", step="purge", title="Purge", summary="Purge", hosts=["web1", "db1"],
            action="shell", mutating=True, approval_required=True)  # fmt: skip
    shown = "queue-purge --token ****** --host web1  [on web1]\nqueue-purge --token ****** --host db1  [on db1]"
    log.add(20, "approval", phase="mitigate", step="purge", approved=False, method="refused", by="bob@ops",
            hosts=["web1", "db1"], summary=shown)  # fmt: skip
    log.add(20, "step_finished", phase="mitigate", step="purge", status="skipped", reason="approval refused by bob@ops")
    log.add(30, "run_finished", status="failed", exit_code=1, duration=30.0)
    return log.events


def test_a_refused_approval_is_marked_refused_not_skipped() -> None:
    page = Page(render_events(refused_run()))
    assert {bar.attrs["data-status"] for bar in bars(page, step="purge")} == {"refused"}
    assert [bar.attrs["data-host"] for bar in bars(page, step="purge")] == ["", "web1", "db1"]
    (block,) = [d for d in page.elements if d.tag == "details" and d.attrs.get("data-step") == "purge"]
    assert block.attrs["data-state"] == "refused"
    assert "refused" in block.children[0].text
    assert [m.attrs["data-status"] for m in page.with_class("marker") if m.attrs["data-kind"] == "approval"] == [
        "refused"
    ]
    legend = [key.attrs["data-key"] for key in page.with_class("key") if "data-key" in key.attrs]
    assert {"refused", "skipped", "failed"} <= set(legend)
    assert "st-refused{" in render_events(refused_run())  # a colour of its own


def test_each_step_shows_what_it_ran_per_host() -> None:
    page = Page(render_events(refused_run()))
    ran = [(r.attrs["data-source"], r.attrs["data-hosts"], r.text) for r in page.with_class("ran")]
    assert [(source, hosts) for source, hosts, _ in ran] == [("approval", "web1"), ("approval", "db1")]
    assert "queue-purge --token ****** --host web1" in ran[0][2]
    assert "queue-purge --token ****** --host db1" in ran[1][2]
    assert ran[0][2].startswith("would have run on web1")  # refused: it never ran


def test_the_page_leads_with_the_finding() -> None:
    text = render_events(refused_run())
    page = Page(text)
    found = {h.attrs["data-headline"]: h.text for h in page.with_class("headline")}
    assert found["wrong"].startswith('What was wrongQueue depth (`depth`) found web1: {"depth": 900}; db1:')
    assert "matched `steps.depth.max > 100` for Drain (`drain`)" in found["wrong"]
    assert found["fixed"] == "What fixed itDrain (`drain`) on web1"
    assert found["how_long"] == "How longtime to mitigation 9.0s, time to verified recovery not reached"
    assert text.index('class="finding"') < text.index('class="metrics"') < text.index('class="timeline"')

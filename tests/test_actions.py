"""irx.actions: one table of action kinds, and the run's gate showing (and hashing) what the plan shows.

For every step of every shipped playbook, rendered in one fixed context, the orchestrator's rendering (what a
gate shows and hashes, what an executor gets) must be the plan's: the same lines and the same approval form.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from irx import actions
from irx.approval import host_form
from irx.errors import TemplateError
from irx.events import Event
from irx.executors.base import LOCAL_HOST, HostTask
from irx.loader import load_playbook
from irx.model import Playbook, Step
from irx.orchestrator import Orchestrator
from irx.outcome import Approval
from irx.plan import render_action
from irx.results import HostResult, StepResult
from irx.templating import Namespace

REPO = Path(__file__).resolve().parents[1]
SHIPPED = sorted((REPO / "playbooks").glob("*.yaml"))
SCHEMA = json.loads((REPO / "engine" / "irx" / "schemas" / "playbook.schema.json").read_text())
HOST = "web1"
SAMPLE = {"string": "sample", "integer": 7, "number": 1.5, "boolean": True, "list": ["a", "b"], "object": {}}


def _context(playbook: Playbook, host: str | None) -> dict[str, Any]:
    params = {
        name: param.default if param.has_default else (param.choices[0] if param.choices else SAMPLE[param.type])
        for name, param in playbook.params.items()
    }
    return {
        "params": Namespace("params", params),
        "run": Namespace("run", {"severity": playbook.severity}),
        "host": Namespace("host", {"name": host, "groups": ["all"]} if host else {}),
        "vars": Namespace("vars", {"ansible_host": "192.0.2.1"} if host else {}),
    }


class _Fixed:
    def __init__(self, playbook: Playbook) -> None:
        self.playbook = playbook

    def hosts(self, target: str) -> list[str]:
        return [HOST]

    def context(self, host: str | None) -> dict[str, Any]:
        return _context(self.playbook, host)


class _Nothing:
    def record(self, event: Event) -> Any: ...
    def phase(self, name: str) -> None: ...
    def step(self, step: Step, hosts: Sequence[str], note: str = "") -> None: ...
    def host(self, step_id: str, host: str, status: str, duration: float) -> None: ...
    def step_done(self, step: Step, result: StepResult) -> None: ...
    def note(self, text: str) -> None: ...
    def run(self, tasks: Sequence[HostTask]) -> dict[str, HostResult]:
        return {}


def _no_http(spec: Any) -> HostResult:
    raise AssertionError("no http step runs here: only rendering is compared")


def _orchestrator(playbook: Playbook) -> Orchestrator:
    nothing = _Nothing()
    return Orchestrator(
        playbook=playbook,
        targeting=_Fixed(playbook),
        journal=nothing,
        progress=nothing,
        host_runner=nothing,
        http_runner=_no_http,
        approver=lambda step, hosts, summary, digest: Approval(True, "yes-flag", "t@t"),
    )


def _plan_side(playbook: Playbook, step: Step) -> tuple[dict[str, Any], tuple[str, ...]]:
    return render_action(step, _context(playbook, HOST if step.runs_on_hosts else None))


def _cases() -> list[tuple[Path, str]]:
    return [(path, step.id) for path in SHIPPED for step in load_playbook(path).steps]


@pytest.mark.parametrize(("path", "step_id"), _cases(), ids=[f"{p.stem}:{s}" for p, s in _cases()])
def test_the_gate_shows_and_hashes_what_the_plan_shows(path: Path, step_id: str) -> None:
    playbook = load_playbook(path)
    step = next(s for s in playbook.steps if s.id == step_id)
    orch = _orchestrator(playbook)
    try:
        shown, runtime = _plan_side(playbook, step)
    except TemplateError:  # what the plan cannot render, the run cannot either
        with pytest.raises(TemplateError):
            orch._render_hosts(step, [HOST]) if step.runs_on_hosts else orch._render_local(step)
        return
    if runtime:  # parts only a run knows (steps.*, run.id) are kept as source by the plan: not the same rendering
        return
    plan_text = actions.text(shown)
    if step.runs_on_hosts:
        (task,) = orch._render_hosts(step, [HOST])
        assert orch._form(task) == host_form(step.action, shown, step.become, step.timeout)  # the same hash
        forms, gate = orch._gate_view(step, [HOST])
        assert gate == f"{plan_text}  [on {HOST}]"
        assert forms == [(HOST, host_form(step.action, shown, step.become, step.timeout))]
    else:
        _, gate_text = orch._gate_view(step, [LOCAL_HOST])
        if step.action == "assert":  # decided, and its message rendered, when it runs (after its gate): as written
            assert gate_text == actions.text(actions.render(step, actions.AS_WRITTEN))
        else:
            assert gate_text == plan_text


def test_shipped_playbooks_compare_most_steps_in_full() -> None:
    """The comparison above is not vacuous: most shipped steps render without run-time parts."""
    compared = total = 0
    for path in SHIPPED:
        playbook = load_playbook(path)
        for step in playbook.steps:
            total += 1
            try:
                _, runtime = _plan_side(playbook, step)
            except TemplateError:
                continue
            compared += not runtime
    assert total > 50
    assert compared >= total * 0.6, (compared, total)


def test_every_action_kind_of_the_schema_has_one_table_entry() -> None:
    in_schema = [next(iter(choice["required"])) for choice in SCHEMA["$defs"]["step"]["oneOf"]]
    assert sorted(in_schema) == sorted(actions.KINDS)
    assert {"shell", "command", "module"} == actions.HOST_ACTIONS
    for name, kind in actions.KINDS.items():
        assert kind.name == name
        assert (kind.payload is None) == kind.on_hosts == (kind.shown is None)


def test_default_mutating_comes_from_the_table() -> None:
    assert actions.default_mutating("mitigate", "shell", "true") is True
    assert actions.default_mutating("diagnose", "shell", "true") is False
    assert actions.default_mutating("mitigate", "http", {"url": "u"}) is False
    assert actions.default_mutating("mitigate", "http", {"url": "u", "method": "post"}) is True
    assert actions.default_mutating("mitigate", "notify", {"message": "m"}) is False


def test_lines_of_each_kind() -> None:
    assert actions.lines({"shell": "a\nb\n", "env": {"X": ""}, "chdir": "/tmp"}) == [
        "$ a",
        "  b",
        'env X=""',
        "in /tmp",
    ]
    assert actions.lines({"command": ["echo", "a b"]}) == ["argv: echo 'a b'"]
    assert actions.lines({"module": "ansible.builtin.ping", "args": {}}) == ["ansible.builtin.ping"]
    http = {"method": "GET", "url": "http://x", "expect": {"status": [200, 204], "body": "ok"}, "headers": {"A": "1"}}
    assert actions.lines({"http": http}) == ["GET http://x -> expect [200, 204]", "  A: 1", "  expect body: ok"]
    assert actions.lines({"wait": 90.0}) == ["wait 90s"]
    assert actions.lines({"wait": 0.5}) == ["wait 500ms"]
    condition = {"expr": "x", "decided": "run time"}
    assert actions.lines({"assert": [condition], "message": "m"}) == ["assert x  [decided at run time]", "  else: m"]
    assert actions.lines({"approve": " go? "}) == ["approve: go?"]
    assert actions.lines({"notify": "a\nb", "channel": "ops"}) == ["notify #ops: a / b"]
    assert actions.one_line({"shell": "a\nb"}) == "$ a / b"
    assert actions.one_line({"shell": "x" * 400}, limit=10) == "$ xxxxxxx…"

"""The plan in Markdown, for a review or a ticket (``irx plan --format markdown``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from irx import actions
from irx.actions import RUN_TIME, value_text
from irx.approval import short
from irx.model import PHASES
from irx.plan.model import Plan
from irx.plan.steps import CONTROL_NODE
from irx.plan.text import _controls_text, _count, _hosts_text

MARKDOWN_GROUPS = 10  # distinct renderings of one step shown; JSON always has them all


def render(plan: Plan) -> str:
    return _Markdown(plan).render()


class _Markdown:
    """The plan for a review or a ticket: one section per phase, commands in code blocks."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.body = plan.body
        self.cache: dict[tuple[Any, ...], str] = {}

    def render(self) -> str:
        body = self.body
        book, inv = body["playbook"], body["inventory"]
        out = [
            f"# Plan: {book['name']} ({book['severity']})",
            "",
            f"**{_md(book['title'])}**",
            "",
            f"- Inventory: `{inv['name']}` · limit: `{inv['limit'] or 'none'}` · hosts targeted: {inv['hosts']}",
            f"- Plan hash: `{self.plan.hash}`",
        ]
        if body["params"]:
            out += ["", "## Params", "", "| param | value | source |", "|---|---|---|"]
            for name, entry in body["params"].items():
                value = "(no value)" if entry["value"] is None else value_text(entry["value"])
                out.append(f"| `{name}` | `{_md(value)}` | {entry['source'] or ''} |")
                for group in entry.get("per_host", ()):
                    hosts = _hosts_text(group["hosts"], self.cache)
                    out.append(f"| ↳ {_md(hosts)} | `{_md(value_text(group['value']))}` | {group['source']} |")
        if body["targets"]:
            out += ["", "## Targets", "", "| target | pattern | hosts |", "|---|---|---|"]
            for name, target in body["targets"].items():
                hosts = _hosts_text(target["hosts"], self.cache) if target["hosts"] else "(none within limit)"
                out.append(f"| `{name}` | `{_md(target['pattern'])}` | {_md(hosts)} |")
        for phase in PHASES:
            steps = [step for step in body["steps"] if step["phase"] == phase]
            if not steps:
                continue
            out += ["", f"## {phase.capitalize()}"]
            for step in steps:
                out += self._step(step)
        out += ["", f"Conditions marked *{RUN_TIME}* depend on results of earlier steps."]
        return "\n".join(out) + "\n"

    def _step(self, step: Mapping[str, Any]) -> list[str]:
        title = f" — {_md(step['name'])}" if step["name"] else ""
        out = ["", f"### {step['index']}. `{step['id']}`{title}", ""]
        target = step["target"]
        where = CONTROL_NODE if target is None else f"`{target['name']}` ({_count(target['hosts'], 'host')})"
        flags = ["**mutating**" if step["mutating"] else "read-only"]
        if step["approval"]["required"]:
            flags.append("**approval required**")
            if step["approval"].get("hash"):
                flags.append(f"`--approve {step['id']}@{short(step['approval']['hash'])}`")
        elif step["approval"]["reason"]:
            flags.append(f"no approval: {_md(step['approval']['reason'])}")
        out.append(f"- Runs on: {where} · " + " · ".join(flags))
        if step["when"] is not None:
            out.append(f"- When: `{_md(step['when']['expr'])}` — {self._decided(step['when'])}")
        if step["until"] is not None:
            out.append(f"- Until: `{_md(step['until']['expr'])}` — {self._decided(step['until'])}")
        controls = _controls_text(step)
        if controls:
            out.append(f"- Controls: {controls}")
        renderings = step["renderings"]
        shown = renderings if len(renderings) <= MARKDOWN_GROUPS else renderings[: MARKDOWN_GROUPS - 1]
        for group in shown:
            if target is not None:
                out.append(f"- On {_md(_hosts_text(group['hosts'], self.cache))}:")
            out += ["", "```" + ("sh" if "shell" in group["action"] else "")]
            out += actions.lines(group["action"])
            out += ["```"]
        if len(shown) < len(renderings):
            rest = renderings[len(shown) :]
            hosts = sum(len(group["hosts"]) for group in rest)
            out.append(f"- ... {len(rest)} more renderings on {_count(hosts, 'host')} (`--format json` lists all)")
        for skip in step["skipped"]:
            hosts = skip["hosts"]
            who = f"{_md(_hosts_text(hosts, self.cache))}: " if hosts else ""
            out.append(f"- Skipped: {who}{_md(skip['reason'])}")
        return out

    @staticmethod
    def _decided(condition: Mapping[str, Any]) -> str:
        if condition.get("decided") == "run time":
            return f"*{RUN_TIME}*"
        if "value" in condition:
            return "now: " + str(condition["value"]).lower()
        return "now"


def _md(text: str) -> str:
    return str(text).replace("|", "\\|").replace("`", "'")

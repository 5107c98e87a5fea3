"""The plan as phone-sized text (``irx plan``), and the host lists and controls its Markdown form shares."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from irx import actions
from irx.actions import RUN_TIME, condition_text, value_text
from irx.approval import short
from irx.humanize import short_duration
from irx.model import PHASES
from irx.plan.model import Plan
from irx.plan.steps import CONTROL_NODE

TEXT_GROUPS = 4  # distinct renderings of one step shown; JSON always has them all


def render(plan: Plan) -> str:
    return _Text(plan).render()


_NUMBERED = re.compile(r"^(.*?)(\d+)(\D*)$")


def compress_hosts(hosts: Sequence[str]) -> list[str]:
    """Host names with numbered runs folded into Ansible ranges: web01..web20 -> ``web[01:20]``.

    A run folds only what Ansible's range would expand back to exactly: ``[01:20]`` (zero-padded, every
    number of that width) or ``[9:12]`` (no padding). Names keep the order their shape first appears in.
    """
    shapes: dict[tuple[str, str], list[str]] = {}
    order: list[tuple[str, str] | str] = []
    for host in hosts:
        match = _NUMBERED.match(host)
        if match is None:
            order.append(host)
            continue
        prefix, digits, suffix = match.groups()
        if (prefix, suffix) not in shapes:
            shapes[(prefix, suffix)] = []
            order.append((prefix, suffix))
        shapes[(prefix, suffix)].append(digits)
    out: list[str] = []
    for item in order:
        if isinstance(item, str):
            out.append(item)
            continue
        prefix, suffix = item
        for first, last in _runs(sorted(set(shapes[item]), key=lambda d: (int(d), d))):
            out.append(f"{prefix}{first}{suffix}" if first == last else f"{prefix}[{first}:{last}]{suffix}")
    return out


def _runs(numbers: list[str]) -> Iterator[tuple[str, str]]:
    """(first, last) of each run of consecutive numbers written the way one Ansible range writes them."""
    first = previous = numbers[0]
    padded = len(first) > 1 and first.startswith("0")
    for digits in numbers[1:]:
        same_style = len(digits) == len(first) if padded else not (len(digits) > 1 and digits.startswith("0"))
        if int(digits) == int(previous) + 1 and same_style:
            previous = digits
            continue
        yield first, previous
        first = previous = digits
        padded = len(first) > 1 and first.startswith("0")
    yield first, previous


def _hosts_text(hosts: Sequence[str], cache: dict[tuple[Any, ...], str], shown: int = 4) -> str:
    key = (shown, *hosts)
    text = cache.get(key)
    if text is None:
        parts = compress_hosts(hosts)
        text = ", ".join(parts[:shown])
        if len(parts) > shown:
            text += f", +{len(parts) - shown} more"
        if len(hosts) > 1:
            text += f" ({len(hosts)} hosts)"
        cache[key] = text
    return text


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def _controls_text(step: Mapping[str, Any]) -> str:
    controls = step["controls"]
    parts: list[str] = []
    if "retries" in controls:
        parts.append(f"retries {controls['retries']}")
    if "delay" in controls:
        parts.append(f"delay {short_duration(controls['delay'])}")
    if "timeout" in controls:
        parts.append(f"timeout {short_duration(controls['timeout'])}")
    if controls.get("on_failure", "abort") != "abort":
        parts.append(f"on failure {controls['on_failure']}")
    if "serial" in controls:
        parts.append(f"serial {controls['serial']}")
    if "max_fail_percentage" in controls:
        parts.append(f"max fail {controls['max_fail_percentage']:g}%")
    if controls.get("become"):
        parts.append("become")
    if "parse" in controls:
        parts.append(f"parse {controls['parse']}")
    return " · ".join(parts)


class _Text:
    """The phone-sized text form: grouped by phase, ``!`` before steps that change a system."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.body = plan.body
        self.cache: dict[tuple[Any, ...], str] = {}

    def render(self) -> str:
        body = self.body
        book, inv = body["playbook"], body["inventory"]
        lines = [
            f"PLAN {book['name']} · {book['severity']} · {book['title']}",
            f"inventory {inv['name']} · limit {inv['limit'] or 'none'} · {_count(inv['hosts'], 'host')} targeted",
            f"hash {self.plan.hash}",
        ]
        lines.extend(self._params())
        steps = body["steps"]
        for phase in PHASES:
            in_phase = [step for step in steps if step["phase"] == phase]
            if not in_phase:
                continue
            lines.append("")
            lines.append(phase.upper())
            for step in in_phase:
                lines.extend(self._step(step))
        lines.append("")
        lines.append(f"! changes a system · APPROVAL asks first · [{RUN_TIME}] needs earlier results")
        return "\n".join(lines) + "\n"

    def _params(self) -> list[str]:
        params = self.body["params"]
        if not params:
            return []
        lines = ["", "PARAMS"]
        for name, entry in params.items():
            if entry["value"] is None and "per_host" not in entry:
                lines.append(f"  {name} = (no value)")
                continue
            if entry["value"] is not None:
                lines.append(f"  {name} = {value_text(entry['value'])}  ({entry['source']})")
            else:
                lines.append(f"  {name}: per host")
            for group in entry.get("per_host", ()):
                hosts = _hosts_text(group["hosts"], self.cache)
                lines.append(f"    {hosts}: {value_text(group['value'])}  ({group['source']})")
        return lines

    def _step(self, step: Mapping[str, Any]) -> list[str]:
        mark = "!" if step["mutating"] else " "
        head = f"{mark} {step['index']:>2} {step['id']}"
        if step["approval"]["required"] and step["action"] != "approve":
            head += " · APPROVAL"
        target = step["target"]
        renderings = step["renderings"]
        if target is None:
            head += f" · {CONTROL_NODE}"
        else:
            head += f" · {target['name']}"
            if len(renderings) == 1 and not step["skipped"]:
                head += ": " + _hosts_text(renderings[0]["hosts"], self.cache, shown=2)
            else:
                head += f" ({_count(target['hosts'], 'host')})"
        lines = [head]
        indent = "     "
        if step["name"]:
            lines.append(indent + step["name"])
        if step["when"] is not None:
            lines.append(indent + "when " + condition_text(step["when"]))
        shown = renderings if len(renderings) <= TEXT_GROUPS else renderings[: TEXT_GROUPS - 1]
        for group in shown:
            action_lines = actions.lines(group["action"])
            if target is not None and (len(renderings) > 1 or step["skipped"]):
                lines.append(indent + _hosts_text(group["hosts"], self.cache) + ":")
                lines.extend(indent + "  " + line for line in action_lines)
            else:
                lines.extend(indent + line for line in action_lines)
        if len(shown) < len(renderings):
            rest = renderings[len(shown) :]
            hosts = sum(len(group["hosts"]) for group in rest)
            lines.append(
                indent + f"... {len(rest)} more renderings on {_count(hosts, 'host')} (--format json lists all)"
            )
        for skip in step["skipped"]:
            hosts = skip["hosts"]
            who = "" if hosts is None else (_hosts_text(hosts, self.cache) + ": " if hosts else "")
            lines.append(indent + f"skipped: {who}{skip['reason']}")
        if step["until"] is not None:
            lines.append(indent + "until " + condition_text(step["until"]))
        controls = _controls_text(step)
        if controls:
            lines.append(indent + controls)
        if step["approval"]["reason"]:
            lines.append(indent + "no approval: " + step["approval"]["reason"])
        if step["approval"].get("hash"):
            lines.append(indent + f"approve with --approve {step['id']}@{short(step['approval']['hash'])}")
        return lines

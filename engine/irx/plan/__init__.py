"""The plan: every step of a playbook, in order, rendered for the hosts it would run on -- and its hash.

A plan is what irx *would* do, computed without touching any host: the inventory resolves each target,
params are resolved per host, and every action is rendered in the sandbox. What only a run can know --
earlier steps' results (``steps.*``), the run's id, start time and operator -- is not guessed: conditions
that read it are marked "decided at run time" and the template parts that read it are kept as source.
As in a run, ``when`` is decided once per step on the control node; a ``when`` that needs no run-time data
is decided now, and a step it rules out is shown as skipped.

Hosts whose inputs are the same render the same, so rendering is done once per distinct set of inputs a
step actually reads (the values of the params and variables it names), not once per host: a step that
reads only run-wide params renders once for 10,000 hosts. Hosts with identical renderings are grouped.

The plan hash is ``sha256`` over the canonical JSON (sorted keys, no spaces, UTF-8) of the plan body:
the secrets in it are already ``******``, so the hash reveals nothing and changing a secret does not
change it (the approver never sees a secret either). File paths and warnings sit outside the body, so
the same playbook, inventory content, limit and params give the same hash on any machine.
"""

from __future__ import annotations

import json

from irx import actions
from irx.plan.model import Plan, build_plan, canonical_json, plan_hash, resolve_targets
from irx.plan.steps import render_action
from irx.plan.text import compress_hosts

__all__ = [
    "FORMATS",
    "Plan",
    "action_line",
    "build_plan",
    "canonical_json",
    "compress_hosts",
    "plan_hash",
    "render",
    "render_action",
    "resolve_targets",
]

FORMATS: tuple[str, ...] = ("text", "json", "markdown")
action_line = actions.one_line  # a rendered action in one line (the journal's plan summary)


def render(plan: Plan, fmt: str) -> str:
    """The plan as ``text``, ``json`` or ``markdown``."""
    if fmt == "json":
        return json.dumps(plan.to_json_data(), indent=2, ensure_ascii=False) + "\n"
    if fmt == "markdown":
        from irx.plan import markdown

        return markdown.render(plan)
    from irx.plan import text

    return text.render(plan)

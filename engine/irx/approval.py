"""What an approval approves: the exact rendering of a step on each of its hosts, as the approver saw it.

``digest`` hashes the rendered action per host (secrets masked, as shown), so ``irx plan`` (for a step
whose rendering is known before the run) and the run's gate compute the same hash from the same forms. A
gate records the digest with the approval; before anything is dispatched, the executor's input is checked
against the approved forms, and ``--approve STEP@HASH`` approves only that rendering.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

SHORT = 12  # hex digits shown and accepted (48 bits: a typo or a stale hash never matches by chance)
_ACTION_KEYS = ("shell", "command", "module", "args", "env", "chdir")


def host_form(action: str, rendered: Mapping[str, Any], become: bool, timeout: float | None) -> dict[str, Any]:
    """The canonical form of one host's rendering: the action kind, its rendered fields, become, timeout.

    ``rendered`` holds ``shell`` | ``command`` | ``module`` and ``args``, and ``env``/``chdir`` when set —
    the shape of a plan's rendering; the run builds the same from its HostTask."""
    form: dict[str, Any] = {"action": action, "become": bool(become), "timeout": timeout}
    for key in _ACTION_KEYS:
        value = rendered.get(key)
        if value not in (None, {}, ""):
            form[key] = value
    return form


def digest(forms: Iterable[tuple[str, Mapping[str, Any]]]) -> str:
    """``sha256:HEX`` of every (host, form) pair, in host order."""
    body = json.dumps(
        sorted(([host, dict(form)] for host, form in forms), key=lambda p: p[0]),
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    )
    return "sha256:" + hashlib.sha256(body.encode()).hexdigest()


def short(full: str) -> str:
    return full.removeprefix("sha256:")[:SHORT]


def parse_approve(items: Sequence[str]) -> dict[str, str | None]:
    """``--approve STEP`` or ``--approve STEP@HASH`` (a hash prefix of at least 12 hex digits, with or
    without ``sha256:``) -> {step: hash prefix or None}."""
    found: dict[str, str | None] = {}
    for item in items:
        step, sep, wanted = item.partition("@")
        wanted = wanted.strip().lower().removeprefix("sha256:")
        if sep and (len(wanted) < SHORT or any(ch not in "0123456789abcdef" for ch in wanted)):
            raise ValueError(f"--approve {item}: expected STEP or STEP@HASH (at least {SHORT} hex digits of it)")
        found[step.strip()] = wanted if sep else None
    return found


def matches(full: str, wanted: str) -> bool:
    return full.removeprefix("sha256:").startswith(wanted)

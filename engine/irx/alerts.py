"""Alertmanager's webhook notifications, read as data, and Alertmanager-style label matchers.

Everything in a notification comes from outside (a monitoring system, or whoever can reach the port), so it
is checked once here and turned into frozen values: a size-bounded JSON body of version "4", label names as
Prometheus allows them, values bounded in length. Nothing downstream re-checks it, and nothing in it ever
becomes a template, shell code or a path: labels reach a playbook only as params, through the same checks
as ``-e`` values.

Matchers follow Alertmanager's route syntax (``alertname="PgPoolExhausted"``, ``severity=~"critical|page"``,
``=``, ``!=``, ``=~``, ``!~``): a regex must match the whole value, and a label that is absent matches as the
empty string, as in Alertmanager.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from irx.errors import UsageError

MAX_BODY_BYTES = 1 << 20  # Alertmanager sends at most max_alerts alerts; a group of 1 MiB is already absurd
MAX_ALERTS = 1000
MAX_LABELS = 64
MAX_VALUE_CHARS = 4096
LABEL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
Status = Literal["firing", "resolved"]


class AlertError(UsageError):
    """A notification irx refuses: the message says which field and why, in one line."""


@dataclass(frozen=True)
class Alert:
    status: Status
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    starts_at: str
    ends_at: str
    fingerprint: str
    generator_url: str


@dataclass(frozen=True)
class Notification:
    """One webhook POST: the state of one alert group (Alertmanager's groupKey) at that moment."""

    group_key: str
    status: Status
    receiver: str
    group_labels: Mapping[str, str]
    common_labels: Mapping[str, str]
    common_annotations: Mapping[str, str]
    external_url: str
    alerts: tuple[Alert, ...]
    truncated_alerts: int

    @property
    def fingerprints(self) -> tuple[str, ...]:
        return tuple(sorted({a.fingerprint for a in self.alerts if a.fingerprint}))

    def firing(self) -> tuple[Alert, ...]:
        return tuple(a for a in self.alerts if a.status == "firing")


def parse_notification(body: bytes) -> Notification:
    """The notification in ``body``, or AlertError naming the first thing wrong with it."""
    if len(body) > MAX_BODY_BYTES:
        raise AlertError(f"body is {len(body)} bytes; at most {MAX_BODY_BYTES} are accepted")
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as exc:  # RecursionError: absurdly nested JSON
        raise AlertError(f"body is not JSON: {str(exc)[:200]}") from None
    if not isinstance(data, dict):
        raise AlertError("body is not a JSON object")
    if data.get("version") != "4":
        raise AlertError(f'version is {_shown(data.get("version"))}; irx reads Alertmanager\'s webhook version "4"')
    alerts = data.get("alerts")
    if not isinstance(alerts, list) or not alerts:
        raise AlertError("alerts: a non-empty list is required")
    if len(alerts) > MAX_ALERTS:
        raise AlertError(f"alerts: {len(alerts)} alerts; at most {MAX_ALERTS} are accepted")
    truncated = data.get("truncatedAlerts", 0)
    if not isinstance(truncated, int) or isinstance(truncated, bool) or truncated < 0:
        raise AlertError("truncatedAlerts: a count (integer >= 0) is required")
    return Notification(
        group_key=_text(data, "groupKey", required=True),
        status=_status(data, "status"),
        receiver=_text(data, "receiver"),
        group_labels=_labels(data, "groupLabels"),
        common_labels=_labels(data, "commonLabels"),
        common_annotations=_labels(data, "commonAnnotations", names=False),
        external_url=_text(data, "externalURL"),
        alerts=tuple(_alert(item, f"alerts[{i}]") for i, item in enumerate(alerts)),
        truncated_alerts=truncated,
    )


def _alert(item: Any, where: str) -> Alert:
    if not isinstance(item, dict):
        raise AlertError(f"{where}: an object is required")
    for key in ("startsAt", "endsAt"):
        _timestamp(item, key, where)
    return Alert(
        status=_status(item, "status", where),
        labels=_labels(item, "labels", where=where),
        annotations=_labels(item, "annotations", where=where, names=False),
        starts_at=_text(item, "startsAt", where=where),
        ends_at=_text(item, "endsAt", where=where),
        fingerprint=_text(item, "fingerprint", where=where),
        generator_url=_text(item, "generatorURL", where=where),
    )


def _text(data: Mapping[str, Any], key: str, *, where: str = "", required: bool = False) -> str:
    value = data.get(key, None if required else "")
    name = f"{where}.{key}" if where else key
    if not isinstance(value, str) or (required and not value):
        raise AlertError(f"{name}: a {'non-empty ' if required else ''}string is required")
    if len(value) > MAX_VALUE_CHARS:
        raise AlertError(f"{name}: {len(value)} characters; at most {MAX_VALUE_CHARS} are accepted")
    return value


def _status(data: Mapping[str, Any], key: str, where: str = "") -> Status:
    value = data.get(key)
    if value not in ("firing", "resolved"):
        name = f"{where}.{key}" if where else key
        raise AlertError(f"{name}: 'firing' or 'resolved' is required, not {_shown(value)}")
    return "firing" if value == "firing" else "resolved"


def _timestamp(data: Mapping[str, Any], key: str, where: str) -> None:
    value = data.get(key, "")
    if value == "":
        return
    try:
        # Go writes nanoseconds; Python reads at most microseconds: drop the extra digits before parsing.
        datetime.fromisoformat(re.sub(r"(\.\d{6})\d+", r"\1", str(value)).replace("Z", "+00:00"))
    except ValueError:
        raise AlertError(f"{where}.{key}: not an RFC 3339 time: {_shown(value)}") from None


def _labels(data: Mapping[str, Any], key: str, *, where: str = "", names: bool = True) -> dict[str, str]:
    value = data.get(key, {})
    name = f"{where}.{key}" if where else key
    if not isinstance(value, dict):
        raise AlertError(f"{name}: an object of strings is required")
    if len(value) > MAX_LABELS:
        raise AlertError(f"{name}: {len(value)} entries; at most {MAX_LABELS} are accepted")
    for label, text in value.items():
        if names and not LABEL_NAME.fullmatch(label):
            raise AlertError(f"{name}: {_shown(label)} is not a label name ([A-Za-z_][A-Za-z0-9_]*)")
        if not isinstance(text, str):
            raise AlertError(f"{name}.{label}: a string is required")
        if len(text) > MAX_VALUE_CHARS or len(label) > 256:
            raise AlertError(f"{name}.{label[:64]}: longer than irx accepts ({MAX_VALUE_CHARS} characters)")
    return dict(value)


def _shown(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=True) if value is not None else "missing"
    return text if len(text) <= 60 else text[:57] + "..."


Op = Literal["=", "!=", "=~", "!~"]
_MATCHER = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*(.*?)\s*")


@dataclass(frozen=True)
class Matcher:
    label: str
    op: Op
    value: str

    @functools.cached_property
    def _regex(self) -> re.Pattern[str]:
        # Anchored at both ends, as Alertmanager anchors its regex matchers.
        return re.compile(f"(?:{self.value})\\Z", re.DOTALL)

    def matches(self, labels: Mapping[str, str]) -> bool:
        actual = labels.get(self.label, "")
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        found = self._regex.match(actual) is not None
        return found if self.op == "=~" else not found

    def __str__(self) -> str:
        return f"{self.label}{self.op}{json.dumps(self.value)}"


def parse_matcher(text: str) -> Matcher:
    """``name op value`` as Alertmanager writes it; the value may be double-quoted (with \\" and \\\\ escapes)."""
    found = _MATCHER.fullmatch(text)
    if not found:
        raise ValueError(f"{text!r} is not a matcher: write label=value, label!=value, label=~regex or label!~regex")
    label, op, raw = found.groups()
    if raw.startswith('"'):
        try:
            value = json.loads(raw)
        except ValueError:
            value = None
        if not isinstance(value, str):
            raise ValueError(f"{text!r}: the quoted value is not closed or has a bad escape")
    elif any(c in raw for c in '"{},'):
        raise ValueError(f'{text!r}: quote a value that holds any of " {{ }} , (label="value")')
    else:
        value = raw
    if op in ("=~", "!~"):
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"{text!r}: the regex does not compile: {exc}") from None
    return Matcher(label, "=~" if op == "=~" else "!~" if op == "!~" else "!=" if op == "!=" else "=", value)


def matches_all(matchers: tuple[Matcher, ...], labels: Mapping[str, str]) -> bool:
    return all(m.matches(labels) for m in matchers)


# What started a run (irx run --trigger @FILE; irx serve writes it for the run of an alert group). Only these
# keys, each a short string (labels: a mapping of label names to strings): an alert's values are data.
TRIGGER_KEYS = ("source", "incident", "route", "receiver", "alertname", "fired_at")
TRIGGER_MAX_BYTES = 64 * 1024


def read_trigger(path: str) -> dict[str, Any]:
    """The trigger in ``path`` (``@`` prefix allowed), checked; ``UsageError`` naming what is wrong."""
    from pathlib import Path

    where = Path(path.removeprefix("@"))
    try:
        raw = where.read_bytes()[: TRIGGER_MAX_BYTES + 1]
    except OSError as exc:
        raise UsageError(f"--trigger {where}: cannot read it: {exc.strerror or exc}") from None
    if len(raw) > TRIGGER_MAX_BYTES:
        raise UsageError(f"--trigger {where}: larger than {TRIGGER_MAX_BYTES // 1024} KiB")
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise UsageError(f"--trigger {where}: not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise UsageError(f"--trigger {where}: expected a JSON object")
    unknown = sorted(set(data) - {*TRIGGER_KEYS, "labels"})
    if unknown:
        raise UsageError(f"--trigger {where}: unknown key(s) {', '.join(map(repr, unknown[:5]))}")
    trigger: dict[str, Any] = {key: _text(data, key, where=f"--trigger {where}") for key in TRIGGER_KEYS if key in data}
    if "labels" in data:
        trigger["labels"] = _labels(data, "labels", where=f"--trigger {where}")
    return trigger

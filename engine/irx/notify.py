"""Incident communications: which channels to tell, what to tell them, and delivering it.

Channels come from the inventory variable ``irx_notify`` (a list of ``{name, kind, url|path}``) and from
``IRX_SLACK_WEBHOOK_URL``, ``IRX_WEBHOOK_URL`` and ``IRX_NOTIFY_FILE``. Webhook URLs are secrets: they are
never shown in an error or a repr, and :func:`secret_values` hands them to the run's Redactor.

Messages are rendered from ``templates/messages/<kind>.j2`` (modelled on the usual runbook templates: initial
alert, status update, resolution) in the sandboxed environment; a playbook's ``messages:`` text or a
project's ``$IRX_TEMPLATES_DIR/<kind>.j2`` wins over the packaged template.

:class:`Notifier` delivers with httpx: a timeout per attempt, bounded retries with a small backoff on connect
errors, timeouts and 5xx, and one ``notification`` timeline event per channel. A delivery that fails is
recorded, never raised: telling people must not stop the remediation. In a dry run nothing is sent and every
channel records the message as ``rendered``.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from irx import events
from irx.errors import TemplateError, UsageError

if TYPE_CHECKING:
    import httpx

CHANNEL_KINDS: tuple[str, ...] = ("slack", "webhook", "file", "stdout")
MESSAGE_KINDS: tuple[str, ...] = ("initial", "update", "resolved", "failed", "step")
# The kinds a playbook's ``messages:`` may override (a notify step's text is its own template).
OVERRIDABLE_KINDS: frozenset[str] = frozenset({"initial", "update", "resolved", "failed"})
# What an update says the incident is doing, by phase, when the caller gives no status.
PHASE_STATUS: Mapping[str, str] = {
    "preflight": "investigating",
    "diagnose": "investigating",
    "mitigate": "mitigating",
    "verify": "verifying",
    "rollback": "rolling back",
}
ENV_CHANNELS: tuple[tuple[str, str, str], ...] = (  # variable, channel name and kind
    ("IRX_SLACK_WEBHOOK_URL", "slack", "slack"),
    ("IRX_WEBHOOK_URL", "webhook", "webhook"),
    ("IRX_NOTIFY_FILE", "file", "file"),
)
_HTTP_KINDS = frozenset({"slack", "webhook"})
_ENTRY_KEYS = frozenset({"name", "kind", "url", "path"})
_MASK = "******"


@dataclass(frozen=True)
class Channel:
    """One configured destination. ``url`` (slack, webhook) is a secret and stays out of the repr."""

    name: str
    kind: str
    url: str | None = field(default=None, repr=False)
    path: Path | None = None


# --- configuration --------------------------------------------------------------------------------------


def load_channels(inventory_value: Any, environ: Mapping[str, str]) -> list[Channel]:
    """The channels of ``irx_notify`` (inventory order) followed by those set in the environment.

    Every bad entry is reported at once in one :class:`UsageError`, each naming ``irx_notify[i]`` (and its
    name when it has one) or the environment variable; a URL is never quoted.
    """
    channels: list[Channel] = []
    problems: list[str] = []
    if inventory_value is not None and not isinstance(inventory_value, list):
        problems.append(f"irx_notify: expected a list of channels, got {_type_name(inventory_value)}")
        inventory_value = []
    for index, entry in enumerate(inventory_value or ()):
        channel = _inventory_channel(index, entry, problems)
        if channel is not None:
            channels.append(channel)
    seen: dict[str, str] = {}
    for index, channel in enumerate(channels):
        if channel.name in seen:
            problems.append(
                f"irx_notify[{index}]: channel name {channel.name!r} is already used by {seen[channel.name]}"
            )
        seen.setdefault(channel.name, f"irx_notify[{index}]")
    for variable, name, kind in ENV_CHANNELS:
        value = environ.get(variable, "").strip()
        if not value:
            continue
        if name in seen:
            problems.append(f"{variable}: channel name {name!r} is already used by {seen[name]}; rename that entry")
            continue
        if kind in _HTTP_KINDS:
            if not _is_http_url(value):
                problems.append(f"{variable}: not an http(s) URL (value not shown: it is a secret)")
                continue
            channels.append(Channel(name, kind, url=value))
        else:
            channels.append(Channel(name, kind, path=Path(value)))
        seen[name] = variable
    if problems:
        raise UsageError("invalid notification channels: " + "; ".join(problems))
    return channels


def _inventory_channel(index: int, entry: Any, problems: list[str]) -> Channel | None:
    where = f"irx_notify[{index}]"
    if not isinstance(entry, Mapping):
        problems.append(f"{where}: expected a mapping with name and kind, got {_type_name(entry)}")
        return None
    name = entry.get("name")
    if isinstance(name, str) and name.strip():
        where = f"{where} ({name})"
    else:
        problems.append(f"{where}: 'name' must be a non-empty string")
        name = None
    before = len(problems)
    unknown = sorted(str(key) for key in entry if key not in _ENTRY_KEYS)
    if unknown:
        problems.append(f"{where}: unknown key(s) {', '.join(unknown)} (allowed: kind, name, path, url)")
    kind = entry.get("kind")
    if kind not in CHANNEL_KINDS:
        shown = repr(kind) if isinstance(kind, str) else _type_name(kind)
        problems.append(f"{where}: 'kind' must be one of {', '.join(CHANNEL_KINDS)}, got {shown}")
        return None
    url, path = entry.get("url"), entry.get("path")
    if kind in _HTTP_KINDS:
        if path is not None:
            problems.append(f"{where}: a {kind} channel takes 'url', not 'path'")
        if not isinstance(url, str) or not _is_http_url(url.strip()):
            problems.append(f"{where}: 'url' must be an http(s) URL (value not shown: it is a secret)")
    elif kind == "file":
        if url is not None:
            problems.append(f"{where}: a file channel takes 'path', not 'url'")
        if not isinstance(path, str) or not path.strip():
            problems.append(f"{where}: 'path' must be a non-empty string")
    elif url is not None or path is not None:
        problems.append(f"{where}: a stdout channel takes neither 'url' nor 'path'")
    if name is None or len(problems) > before:
        return None
    if kind in _HTTP_KINDS:
        return Channel(name, kind, url=str(url).strip())
    if kind == "file":
        return Channel(name, kind, path=Path(str(path)).expanduser())
    return Channel(name, kind)


def _is_http_url(value: str) -> bool:
    scheme, sep, rest = value.partition("://")
    return bool(sep) and scheme.lower() in {"http", "https"} and bool(rest) and not any(c.isspace() for c in value)


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def secret_values(channels: Iterable[Channel]) -> list[str]:
    """The channels' webhook URLs, for ``Redactor.add``: a Slack webhook URL is a bearer credential."""
    return [channel.url for channel in channels if channel.url]


# --- messages -------------------------------------------------------------------------------------------


def render_message(
    kind: str,
    context: Mapping[str, Any],
    override: str | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    now: datetime | None = None,
) -> str:
    """The text of a ``kind`` message (initial, update, resolved, failed, step) rendered in ``context``.

    ``context`` holds ``run`` (id, started_at, severity, operator, dry_run; ``url``: the run's page, when it
    has one) and ``playbook`` (name, title, severity), and optionally ``status``, ``reason``, ``phase``,
    ``step``, ``summary``, ``message`` (a notify step's text) and ``diagnosis`` / ``diagnosis_headline`` (the
    first message of a run an alert started). The template is ``override`` (a playbook's ``messages:``
    entry) if given, else ``$IRX_TEMPLATES_DIR/<kind>.j2`` if it exists, else the packaged one. Templates
    also see ``now`` (UTC), ``started`` (``run.started_at`` as UTC text) and ``elapsed`` (since then). A
    template that fails raises :class:`TemplateError` naming its source.
    """
    if kind not in MESSAGE_KINDS:
        raise ValueError(f"unknown message kind {kind!r}")
    source, origin = message_template(kind, override, environ=os.environ if environ is None else environ)
    from irx.templating import render

    try:
        text = render(source, message_context(context, now=now))
    except TemplateError as exc:
        raise TemplateError(f"{origin}: {exc}") from None
    # Optional lines leave blank runs behind in hand-written templates: at most one blank line, no trailing spaces.
    text = re.sub(r"[ \t]+\n", "\n", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def message_template(kind: str, override: str | None = None, *, environ: Mapping[str, str]) -> tuple[str, str]:
    """The source of the ``kind`` template and where it comes from (for error messages)."""
    if override is not None and kind in OVERRIDABLE_KINDS:
        return override, f"messages.{kind}"
    project = environ.get("IRX_TEMPLATES_DIR", "").strip()
    if project:
        directory = Path(project).expanduser()
        if not directory.is_dir():
            raise UsageError(f"IRX_TEMPLATES_DIR: {directory} is not a directory")
        candidate = directory / f"{kind}.j2"
        if candidate.is_file():
            try:
                return candidate.read_text(encoding="utf-8"), str(candidate)
            except (OSError, UnicodeDecodeError) as exc:
                raise UsageError(f"{candidate}: cannot read: {exc}") from None
    packaged = resources.files("irx").joinpath("templates", "messages", f"{kind}.j2")
    return packaged.read_text(encoding="utf-8"), f"templates/messages/{kind}.j2"


_OPTIONAL = ("status", "reason", "phase", "step", "summary", "message", "headline", "diagnosis", "diagnosis_headline")


def message_context(context: Mapping[str, Any], *, now: datetime | None = None) -> dict[str, Any]:
    """``context`` with the optional names defaulted to None and ``now``/``elapsed`` added, so a template
    can test ``{% if reason %}`` under StrictUndefined; a missing ``run`` or ``playbook`` stays an error."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    full: dict[str, Any] = dict.fromkeys(_OPTIONAL)
    full.update(context)
    if full["status"] is None and isinstance(full["phase"], str):
        full["status"] = PHASE_STATUS.get(full["phase"])
    full.setdefault("now", _utc_text(moment))
    start = _started(full.get("run"))
    full.setdefault("started", None if start is None else _utc_text(start))
    full.setdefault("elapsed", None if start is None else format_duration((moment - start).total_seconds()))
    return full


def _utc_text(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _started(run: Any) -> datetime | None:
    started = run.get("started_at") if isinstance(run, Mapping) else None
    if not isinstance(started, str):
        return None
    try:
        start = datetime.fromisoformat(started.replace("Z", "+00:00"))
    except ValueError:
        return None
    return start if start.tzinfo is not None else start.replace(tzinfo=UTC)


def format_duration(seconds: float) -> str:
    """A duration as people write it, the way every report shows it (irx.humanize): ``9.0s``, ``4m 12s``, ``4h``."""
    from irx import humanize

    return humanize.duration(seconds)


# --- delivery -------------------------------------------------------------------------------------------


@dataclass
class _Outcome:
    status: str = "failed"
    attempts: int = 0
    error: str | None = None
    http_status: int | None = None


class Notifier:
    """Sends a run's messages to its channels and records each delivery on the timeline.

    ``record`` is ``Journal.record``; ``redact`` is ``Redactor.redact_text``. ``timeout`` bounds each
    attempt, ``retries`` the extra attempts after a connect error, timeout or 5xx; a 4xx is not retried.
    ``client`` is an ``httpx.Client`` to use (and not close); by default one is made on first use.
    """

    def __init__(
        self,
        channels: Iterable[Channel],
        record: Callable[[events.Notification], Any],
        redact: Callable[[str], str],
        dry_run: bool,
        timeout: float = 5.0,
        retries: int = 2,
        client: httpx.Client | None = None,
        *,
        backoff: float = 0.25,
        stream: TextIO | None = None,
    ) -> None:
        self.channels = tuple(channels)
        self._record_event = record
        self._redact = redact
        self.dry_run = dry_run
        self.timeout = timeout
        self.retries = max(0, retries)
        self.backoff = backoff
        self._client = client
        self._own_client = client is None
        self._stream = stream
        self._urls = sorted({c.url for c in self.channels if c.url}, key=len, reverse=True)

    @property
    def channel_names(self) -> tuple[str, ...]:
        return tuple(channel.name for channel in self.channels)

    def send(self, kind: str, message: str, *, channel: str | None = None, **context: Any) -> None:
        """Deliver ``message`` (already rendered) to every channel, or to the one named ``channel``.

        ``context`` (run_id, playbook, severity, status, phase, step, ...) goes into the JSON payload of
        webhook and file channels; ``phase`` and ``step`` also go on the timeline event. Never raises.
        """
        text = self._clean(message)
        extra = {key: self._clean(v) if isinstance(v, str) else v for key, v in context.items() if v is not None}
        where: dict[str, Any] = {key: extra[key] for key in ("phase", "step") if key in extra}
        targets = [c for c in self.channels if channel is None or c.name == channel]
        if channel is not None and not targets:
            self._record(channel, kind, text, _Outcome(error=f"no channel named {channel!r} is configured"), 0.0, where)
            return
        for target in targets:
            started = time.monotonic()
            if self.dry_run:
                outcome = _Outcome(status="rendered")
            else:
                try:
                    outcome = self._deliver(target, kind, text, extra)
                except Exception as exc:  # a sink's failure is recorded; it must never stop the run
                    outcome = _Outcome(attempts=1, error=self._clean(_short_error(exc)))
            self._record(target.name, kind, text, outcome, time.monotonic() - started, where)

    def close(self) -> None:
        if self._own_client and self._client is not None:
            self._client.close()
            self._client = None

    def __enter__(self) -> Notifier:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # internals

    def _clean(self, text: str) -> str:
        """Redacted by the run's Redactor, and the channel URLs masked whatever the caller registered."""
        text = self._redact(text)
        for url in self._urls:
            text = text.replace(url, _MASK)
        return text

    def _record(
        self, name: str, kind: str, text: str, outcome: _Outcome, duration: float, where: Mapping[str, Any]
    ) -> None:
        self._record_event(
            events.Notification(
                channel=name,
                status=outcome.status,
                kind=kind,
                message=text,
                attempts=outcome.attempts,
                error=outcome.error,
                http_status=outcome.http_status,
                duration=round(duration, 6),
                phase=where.get("phase"),
                step=where.get("step"),
            )
        )

    def _deliver(self, channel: Channel, kind: str, text: str, context: Mapping[str, Any]) -> _Outcome:
        if channel.kind == "slack":
            # Slack reads <...> as links and mentions (<!channel>, <https://x|approve>): a host's output or an
            # alert's label in a message must stay text, so the three control characters are escaped.
            return self._post(channel, {"text": slack_escape(text)})
        payload = {"kind": kind, **context, "message": text}
        if channel.kind == "webhook":
            return self._post(channel, payload)
        if channel.kind == "file":
            assert channel.path is not None
            line = json.dumps({"ts": datetime.now(UTC).isoformat(), **payload}, ensure_ascii=False)
            try:
                with channel.path.open("a", encoding="utf-8") as sink:
                    sink.write(line + "\n")
            except OSError as exc:
                return _Outcome(attempts=1, error=f"cannot write {channel.path}: {exc.strerror or exc}")
            return _Outcome(status="sent", attempts=1)
        stream = self._stream or sys.stdout
        stream.write(text + "\n")
        stream.flush()
        return _Outcome(status="sent", attempts=1)

    def _post(self, channel: Channel, payload: Mapping[str, Any]) -> _Outcome:
        import httpx

        assert channel.url is not None
        if self._client is None:
            self._client = httpx.Client(timeout=self.timeout, follow_redirects=False)
        outcome = _Outcome()
        for attempt in range(1, self.retries + 2):
            outcome.attempts = attempt
            retryable = False
            try:
                response = self._client.post(channel.url, json=payload, timeout=self.timeout)
            except httpx.TimeoutException as exc:
                outcome.error, retryable = f"timed out after {self.timeout:g}s ({_timeout_phase(exc)})", True
            except (httpx.ConnectError, httpx.RemoteProtocolError) as exc:
                outcome.error, retryable = self._clean(_short_error(exc)), True
            except httpx.HTTPError as exc:
                outcome.error = self._clean(_short_error(exc))
            else:
                outcome.http_status = response.status_code
                if response.is_success:
                    outcome.status, outcome.error = "sent", None
                    return outcome
                outcome.error = f"HTTP {response.status_code}" + _body_hint(response, self._clean)
                retryable = response.status_code >= 500
            if not retryable or attempt > self.retries:
                break
            time.sleep(self.backoff * 2 ** (attempt - 1))
        return outcome


def slack_escape(text: str) -> str:
    """``&``, ``<`` and ``>`` as Slack asks them escaped; Slack still turns a bare URL into a link."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _timeout_phase(exc: Exception) -> str:
    names = {"ConnectTimeout": "connect", "ReadTimeout": "read", "WriteTimeout": "write", "PoolTimeout": "pool"}
    return names.get(type(exc).__name__, "timeout")


def _short_error(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    name = type(exc).__name__
    return f"{name}: {text[:200]}" if text else name


def _body_hint(response: httpx.Response, clean: Callable[[str], str]) -> str:
    """The start of an error body (Slack answers ``invalid_payload``, ``no_service``...), on one line."""
    try:
        body = " ".join(response.text.split())[:120]
    except Exception:  # undecodable body: the status says enough
        return ""
    return f": {clean(body)}" if body else ""

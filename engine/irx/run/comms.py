"""What people are told while a run happens: the notification channels and the run's messages."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from irx import events
from irx.model import Playbook, Step
from irx.outcome import Outcome
from irx.ports import Journal, Progress
from irx.results import StepResult
from irx.verdict import WOULD_RESOLVE

if TYPE_CHECKING:
    from irx.inventory import Inventory
    from irx.notify import Channel, Notifier


def hosts_text(hosts: Sequence[str]) -> str:
    return ", ".join(hosts) if len(hosts) <= 4 else f"{', '.join(hosts[:3])} and {len(hosts) - 3} more"


class Communications:
    """Messages at run start, at each phase after diagnose, on notify steps and at the end; rendered from the
    runbook-style templates (or the playbook's ``messages:``), redacted, delivered, and journaled per channel.
    A message that fails to render or deliver is recorded and never stops the run.

    ``after_diagnosis`` (a run an alert started): the first message waits until the diagnosis is done and
    carries it (irx.run.diagnosis) with the run's page (``run_info["url"]``), instead of an "investigating"
    message nobody can act on. It goes out when the next phase begins (and stands for that phase's update),
    or with the end of the run when the run ends in or right after diagnose. ``results`` is the walk's own
    mapping of step results, filled as steps finish."""

    def __init__(
        self,
        notifier: Notifier,
        playbook: Playbook,
        run_info: Mapping[str, Any],
        hosts: Sequence[str],
        journal: Journal,
        progress: Progress,
        after_diagnosis: bool = False,
    ) -> None:
        self.notifier, self.playbook, self.journal, self.progress = notifier, playbook, journal, progress
        self.run_info = dict(run_info)
        self.hosts = list(hosts)
        self.after_diagnosis = after_diagnosis
        self.results: dict[str, StepResult] = {}
        self._first_sent = False

    def _send(self, kind: str, status: str, channel: str | None = None, **context: Any) -> None:
        from irx.errors import TemplateError
        from irx.notify import render_message

        book = {"name": self.playbook.name, "title": self.playbook.title, "severity": self.playbook.severity}
        override = self.playbook.messages.get(kind) if kind != "step" else None
        try:
            text = render_message(kind, {"run": self.run_info, "playbook": book, "status": status, **context}, override)
        except TemplateError as exc:
            self.journal.record(events.Error(message=f"message {kind}: {exc}", where="notify"))
            return
        if self.notifier.dry_run:  # rendered and shown, never sent
            self.progress.note(f"message {kind} (not sent in a dry run): {text.strip().splitlines()[0]}")
        self.notifier.send(
            kind,
            text,
            channel=channel,
            run_id=self.run_info["id"],
            playbook=self.playbook.name,
            severity=self.playbook.severity,
            status=status,
            url=self.run_info.get("url"),
            **{k: v for k, v in context.items() if k in {"phase", "step"}},
        )

    def start(self) -> None:
        if not self.after_diagnosis:
            self._first("investigating")

    def _first(self, status: str, phase: str | None = None) -> None:
        from irx.run.diagnosis import diagnosis_headline, diagnosis_text

        self._first_sent = True
        scope = hosts_text(self.hosts) if self.hosts else None
        if not self.after_diagnosis:
            self._send("initial", status, summary=scope)
            return
        steps = self.playbook.phases.get("diagnose", ())
        self._send(
            "initial", status, phase=phase, summary=scope,
            diagnosis=diagnosis_text(steps, self.results) if steps else "(the playbook has no diagnose steps)",
            diagnosis_headline=diagnosis_headline(steps, self.results) if steps else None,
        )  # fmt: skip

    def phase(self, phase: str, again: bool) -> None:
        if phase != "diagnose":
            status = {"mitigate": "mitigating", "verify": "verifying", "rollback": "rolling back"}[phase]
            if not self._first_sent:  # the diagnosis is done: the first message, standing for this update
                dry = self.run_info.get("dry_run")  # a dry run mitigates nothing: it has diagnosed
                self._first("diagnosed" if dry else status, phase)
                return
            self._send("update", status, phase=phase, reason="verification repeated after rollback" if again else None)

    def step(self, step: Step, message: str) -> None:
        self.progress.note(f"notify: {message}")
        channel = step.spec.get("channel") if isinstance(step.spec, Mapping) else None
        self._send("step", "in progress", channel=channel, step=step.id, phase=step.phase, message=message)

    def escalate(self, step: Step, channel: str | None, text: str) -> None:
        """A gate still waits for approval: tell ``channel`` (None: every channel) again."""
        self._send("step", "waiting for approval", channel=channel, step=step.id, phase=step.phase, message=text)

    def finish(self, outcome: Outcome) -> None:
        """The last message: resolved only for a verified real run; a dry run says what it would do, a gate
        that nobody answered says it is waiting (irx.verdict)."""
        if self.after_diagnosis and not self._first_sent:  # stopped in (or before) diagnose: still tell what was seen
            self._first("diagnosed" if self.results else "stopped before diagnosing")
        kind = "resolved" if outcome.status == "verified" or outcome.verdict == WOULD_RESOLVE else "failed"
        if outcome.dry_run:
            status = outcome.headline.lower()  # dry run: would resolve | verification failed | failed
        elif outcome.status == "awaiting_approval":
            status = "waiting for approval"
        else:
            status = {"verified": "resolved"}.get(outcome.status, outcome.status.replace("_", " "))
        self._send(kind, status, reason=outcome.reason, headline=outcome.outcome_text)


def notify_channels(inv: Inventory, hosts: Sequence[str], environ: Mapping[str, str]) -> list[Channel]:
    """Channels from the inventory variable ``irx_notify`` (group ``all`` or the targeted hosts) and env."""
    from irx.notify import load_channels

    first = hosts[0] if hosts else None
    configured = inv.value(first, "irx_notify") if first and "irx_notify" in inv.host_vars(first) else None
    return load_channels(configured, environ)

"""``irx resume``'s side of a run: what the stopped run was started with, and the check that it still
renders the same, before its journal is opened again (irx.resume decides which steps run again).

The continuation runs with the run's own playbook file, inventory source, ``--limit`` and ``-e`` values,
as its ``run_started`` recorded them. A secret ``-e`` value was recorded masked, so its operator gives it
again (``-e @FILE``); anything else given with ``-e`` to ``irx resume`` is refused, since the point is to
continue the same run. Before anything is touched the plan is rendered again: a different hash (the
playbook, the inventory or a param's source changed) is refused with what differs, unless ``--replan``.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from irx.errors import UsageError
from irx.journal_read import JournalRead
from irx.model import Playbook
from irx.resume import Resumption, plan_changes, plan_resumption

if TYPE_CHECKING:
    from irx.params import Supplied
    from irx.run.prepare import Prepared


@dataclass(frozen=True)
class Continuation:
    """A stopped run read back: its journal, its first event, and where it continues."""

    run_dir: Path
    journal: JournalRead
    started: Mapping[str, Any]
    resumption: Resumption

    @property
    def run_id(self) -> str:
        return self.run_dir.name

    @property
    def inventory(self) -> str | None:
        """--inventory as the run was given it (resolved again: the plan check then sees a changed source)."""
        given = self.started.get("inventory")
        return str(given) if given else None

    @property
    def limit(self) -> str | None:
        limit = self.started.get("limit")
        return str(limit) if limit else None

    @property
    def trigger(self) -> dict[str, Any] | None:
        trigger = self.started.get("trigger")
        return dict(trigger) if isinstance(trigger, Mapping) else None

    @property
    def seq(self) -> int:
        """The journal's last seq when it was read: the continuation is planned from exactly that."""
        return max((int(e.get("seq", 0)) for e in self.journal.events), default=0)

    @property
    def plan_hash(self) -> str:
        """The plan the run last ran: run_started's, or the last continuation's when it was replanned."""
        hashes = [e.get("plan_hash") for e in self.journal.events if e.get("type") in ("run_started", "run_resumed")]
        return str(hashes[-1] if hashes else "")


def continuation(run_dir: Path, from_step: str | None, playbook_dir: Path | None) -> tuple[Continuation, Playbook]:
    """The stopped run in ``run_dir`` and its playbook (the file it ran, else found again by name)."""
    from irx.journal_read import read_journal
    from irx.library import find_playbook
    from irx.loader import load_playbook

    _check_private(run_dir)
    journal = read_journal(run_dir)
    started = journal.first("run_started") or {}
    path = Path(str(started.get("playbook_path", "")))
    if started.get("playbook_path") and path.is_file():
        playbook = load_playbook(path)
    elif started.get("playbook"):
        playbook = load_playbook(find_playbook(str(started["playbook"]), playbook_dir))
    else:
        raise UsageError(f"{journal.path}: the journal has no run_started: not a run irx can resume")
    resumption = plan_resumption(journal, playbook, from_step)
    return Continuation(run_dir, journal, started, resumption), playbook


def _check_private(run_dir: Path) -> None:
    """The journal names the playbook file, inventory and values the continuation runs with: refused when it
    is not the run's own (irx makes them 0700 and 0600), a link elsewhere or writable by others."""
    import stat

    from irx.journal_read import TIMELINE_FILE

    for path in (run_dir, run_dir / TIMELINE_FILE):
        try:
            mode = os.lstat(path).st_mode
        except OSError as exc:
            raise UsageError(f"{path}: {exc.strerror}") from None
        if stat.S_ISLNK(mode):
            raise UsageError(f"{path} is a symbolic link: irx resume continues only a run directory irx wrote")
        if mode & 0o022:
            raise UsageError(
                f"{path} is writable by others (mode {stat.S_IMODE(mode):04o}): what it says would run is not "
                "only its owner's; chmod go-w it to resume"
            )


def supplied_again(
    cont: Continuation, playbook: Playbook, given: Mapping[str, Supplied], environ: Mapping[str, str]
) -> dict[str, Supplied]:
    """The ``-e`` values the run started with; a secret one is taken from ``given`` (its operator's again)."""
    from irx.params import Supplied

    recorded = cont.started.get("supplied")
    recorded = recorded if isinstance(recorded, Mapping) else {}
    other = sorted(name for name in given if name not in playbook.params or not playbook.params[name].secret)
    if other:
        raise UsageError(
            f"-e {other[0]}: irx resume continues the run with the values it started with; only a secret "
            "param given when it started is given again (start a new run to change the others)"
        )
    unused = sorted(name for name in given if name not in recorded)
    if unused:  # else ignored without a word: the operator would believe the step runs with it
        raise UsageError(
            f"-e {unused[0]}: run {cont.run_id} started without it given (its default or the inventory's value "
            "was used); irx resume continues with the values it started with (start a new run to give it)"
        )
    values: dict[str, Supplied] = {}
    for name, value in recorded.items():
        param = playbook.params.get(name)
        if param is not None and param.secret:
            if name not in given:
                raise UsageError(
                    f"param {name} is a secret given with -e when run {cont.run_id} started; irx did not keep it: "
                    f"give it again with -e @FILE (a file only you can read), not on the command line"
                )
            values[name] = given[name]
        elif isinstance(value, Mapping) and "value" in value:
            source, text = str(value.get("source") or "-e"), bool(value.get("text"))
            values[name] = Supplied(value["value"], source, text=text, strict=not source.startswith("-e @"))
    return values


def check_plan(cont: Continuation, prepared: Prepared, replan: bool) -> list[str]:
    """What renders differently now (empty: the same plan); refused unless ``replan``."""
    if prepared.plan_hash == cont.plan_hash:
        return []
    recorded = cont.started.get("plan")
    changes = plan_changes(recorded if isinstance(recorded, list) else [], prepared.steps)
    if not changes:
        changes = [f"the plan hash was {cont.plan_hash[:19]}, now {prepared.plan_hash[:19]}"]
    if not replan:
        listed = "".join(f"\n  - {change}" for change in changes)
        raise UsageError(
            f"run {cont.run_id} would not continue as it started: the playbook or inventory renders "
            f"differently now:{listed}\nreview it (irx plan) and resume with --replan to accept it"
        )
    return changes


def clear_gate_files(run_dir: Path, attempt: int) -> None:
    """Decisions given to the earlier attempt answered its gates, not this one's: kept aside, never reused."""
    from irx.inbox import DECISIONS_DIR, clear_waiting

    clear_waiting(run_dir)
    # A name already taken (an attempt stopped between this and its run_resumed) gets a suffix: renaming onto
    # a directory that is not empty fails, and what it holds is kept too.
    for n in range(1, 100):
        aside = f"{DECISIONS_DIR}.attempt-{attempt - 1}" + (f".{n}" if n > 1 else "")
        try:
            os.rename(run_dir / DECISIONS_DIR, run_dir / aside)
            return
        except FileNotFoundError:
            return
        except OSError as exc:
            if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR, errno.EISDIR):
                raise UsageError(f"{run_dir}: cannot set its earlier decisions aside: {exc.strerror}") from None
    raise UsageError(f"{run_dir}: cannot set its earlier decisions aside: move {DECISIONS_DIR}.attempt-* away")


def recorded_supplied(playbook: Playbook, supplied: Mapping[str, Supplied]) -> dict[str, Any]:
    """run_started's ``supplied``: the -e values of the playbook's params (secrets masked), each with where it
    came from and whether it was text to convert, as the plan (and its hash) records them."""
    from irx.params import REDACTED

    return {
        name: {
            "value": REDACTED if playbook.params[name].secret else given.value,
            "source": given.source,
            "text": given.text,
        }
        for name, given in supplied.items()
        if name in playbook.params
    }

"""Shell completion of irx's arguments (Click's protocol: ``_IRX_COMPLETE=bash_source irx``; docs in README).

Each function is a Click ``shell_complete`` callback: it reads what the command line says so far (the
playbook directory, the runs directory, the playbook or run named earlier) and offers the names that fit.
A completion must never fail the shell: a broken file or an unreadable directory offers nothing.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import click
from click.shell_completion import CompletionItem

Completer = Callable[[click.Context, click.Parameter, str], list[CompletionItem]]


def _quiet(func: Callable[[click.Context, str], Iterable[str]]) -> Completer:
    """The callback: the names ``func`` finds that start with what was typed; nothing when it fails."""

    @functools.wraps(func)
    def complete(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
        try:
            names = sorted(set(func(ctx, incomplete)))
        except Exception:  # a completion that fails offers nothing; it never prints a traceback into the shell
            return []
        return [CompletionItem(name) for name in names if name.startswith(incomplete)]

    return complete


def _playbook_dir(ctx: click.Context) -> Path:
    from irx.library import default_playbook_dir

    given = _earlier(ctx, "playbook_dir")
    return Path(given) if given else default_playbook_dir()


def _runs_dir(ctx: click.Context) -> Path:
    from irx.journal_read import default_runs_dir

    given = _earlier(ctx, "runs_dir")
    return Path(given) if given else default_runs_dir()


@_quiet
def playbooks(ctx: click.Context, incomplete: str) -> Iterable[str]:
    """Playbook names in the library (file stems and metadata.name), as irx run NAME finds them."""
    from irx.loader import iter_playbook_files, read_document

    if os.sep in incomplete:
        return  # a path: the shell's own file completion is better
    for path in iter_playbook_files([_playbook_dir(ctx)]):
        yield path.stem
        data = read_document(path).data
        name = (data.get("metadata") or {}).get("name") if isinstance(data, dict) else None
        if isinstance(name, str):
            yield name


@_quiet
def inventories(ctx: click.Context, incomplete: str) -> Iterable[str]:
    """Inventory names under ./inventories and irx's own (files without their suffix, and directories)."""
    from irx.inventory import inventory_dirs

    for directory in inventory_dirs():
        if not directory.is_dir():
            continue
        for entry in directory.iterdir():
            if entry.is_dir() and not entry.name.startswith("."):
                yield entry.name
            elif entry.suffix in {".yml", ".yaml", ".ini"}:
                yield entry.stem


def _run_ids(ctx: click.Context) -> list[str]:
    from irx.journal_read import TIMELINE_FILE

    runs = _runs_dir(ctx)
    return [entry.name for entry in runs.iterdir() if (entry / TIMELINE_FILE).is_file()]


@_quiet
def run_ids(ctx: click.Context, incomplete: str) -> Iterable[str]:
    """The recorded runs' ids, and ``latest`` (every command on a run takes it) when there is one."""
    ids = _run_ids(ctx)
    return [*ids, "latest"] if ids else ids


def _earlier(ctx: click.Context, key: str) -> Any:
    """The value of the parameter ``key`` given earlier on the command line being completed.

    Click leaves every parameter unset when the line ends in an option still waiting for its value (``irx
    resume RUN --from <TAB>``): the command's words are then parsed again without that option, from the
    COMP_WORDS / COMP_CWORD that each of Click's shells (bash, zsh, fish) hands over."""
    if ctx.params.get(key) is not None:
        return ctx.params[key]
    from click.shell_completion import split_arg_string

    words = split_arg_string(os.environ.get("COMP_WORDS", ""))
    cword = os.environ.get("COMP_CWORD", "")
    # bash, zsh: the index of the word being completed; fish: that word itself, the last of COMP_WORDS
    fish = words[1:-1] if cword and words[-1:] == [cword] else words[1:]
    args = words[1 : int(cword)] if cword.isdigit() else fish
    if ctx.command.name not in args:
        return None
    args = args[args.index(str(ctx.command.name)) + 1 :]
    if args and args[-1].startswith("-"):
        args = args[:-1]
    with ctx.command.make_context(ctx.info_name, args, parent=ctx.parent, resilient_parsing=True) as again:
        return again.params.get(key)


def _plan_steps(ctx: click.Context) -> list[str]:
    """The step ids of the run named by RUN_ID on the command line, from its journal's plan."""
    from irx.journal_read import read_journal, resolve_run

    run_dir = resolve_run(_runs_dir(ctx), str(_earlier(ctx, "run_id") or "latest"))
    started = read_journal(run_dir).first("run_started") or {}
    return [str(step["id"]) for step in started.get("plan") or [] if isinstance(step, dict) and "id" in step]


def _playbook_steps(ctx: click.Context) -> list[str]:
    """The step ids of the playbook named by NAME on the command line."""
    from irx.library import find_playbook
    from irx.loader import read_document
    from irx.model import PHASES

    data = read_document(find_playbook(str(_earlier(ctx, "name")), _playbook_dir(ctx))).data
    ids = []
    for phase in PHASES:
        for step in (data or {}).get(phase) or []:
            if isinstance(step, dict) and isinstance(step.get("id"), str):
                ids.append(step["id"])
    return ids


@_quiet
def step_ids(ctx: click.Context, incomplete: str) -> Iterable[str]:
    """Step ids: of the run named earlier (irx resume --from, irx approve RUN_ID STEP), else of the playbook
    named earlier (irx run NAME --approve STEP)."""
    if "run_id" in ctx.params:
        return _plan_steps(ctx)
    return _playbook_steps(ctx) if "name" in ctx.params else []


def _attach(command: click.Command, completers: dict[str, Completer]) -> None:
    for param in command.params:
        if param.name in completers:
            param._custom_shell_complete = completers[param.name]  # what shell_complete= sets on a Parameter


def install(group: click.Group) -> None:
    """Give the group's commands their completions (by parameter name, so every command that takes a
    playbook NAME, a RUN_ID, a STEP or an inventory completes it the same way)."""
    by_command: dict[str, dict[str, Completer]] = {
        "run": {"name": playbooks, "inventory": inventories, "approve": step_ids},
        "plan": {"name": playbooks, "inventory": inventories},
        "show": {"name": playbooks},
        "resume": {"run_id": run_ids, "from_step": step_ids, "approve": step_ids},
        "report": {"run_id": run_ids},
        "approve": {"run_id": run_ids, "step": step_ids},
        "deny": {"run_id": run_ids, "step": step_ids},
    }
    for name, completers in by_command.items():
        command = group.commands.get(name)
        if command is not None:
            _attach(command, completers)

"""Stopping a whole process tree at once, on Linux, from ``/proc``.

ansible-runner cancels ansible-playbook by killing its process group, but every Ansible worker calls
``setsid()`` (``WorkerProcess._detach``): the workers, and the ssh or local-connection processes they
run a step through, are in groups of their own and would finish the step after ansible-playbook died.
Only the parent links still tie them to it, and only while it lives, so the tree is frozen first
(``SIGSTOP``: nothing in it can fork while it is walked) and then killed.
"""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path


def _state_and_parent(pid: int | str) -> tuple[str, int] | None:
    """A process's state letter and parent pid from ``/proc/PID/stat``, or None when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return fields[0], int(fields[1])
    except (OSError, IndexError, ValueError):
        return None


def children_map() -> dict[int, list[int]]:
    """Every live process's children, by parent pid."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _state_and_parent(entry.name)) is not None and stat[0] != "Z":
            children.setdefault(stat[1], []).append(int(entry.name))
    return children


def descendants(root: int) -> set[int]:
    """The live descendants of ``root`` (not ``root`` itself)."""
    tree = children_map()
    found: set[int] = set()
    frontier = [root]
    while frontier:
        new = [child for pid in frontier for child in tree.get(pid, ()) if child not in found]
        found.update(new)
        frontier = new
    return found


def kill_tree(root: int) -> set[int]:
    """SIGKILL ``root`` and everything under it; the pids signalled."""
    frozen: set[int] = set()
    pending = {root}
    while pending:  # freeze top-down until a walk finds nothing new
        for pid in pending:
            _signal(pid, signal.SIGSTOP)
        frozen |= pending
        pending = descendants(root) - frozen
    for pid in frozen:
        _signal(pid, signal.SIGKILL)
    return frozen


def _signal(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):  # already gone, or not ours to stop
        os.kill(pid, sig)


def parent_of(pid: int) -> int | None:
    """``pid``'s parent, or None when it is gone."""
    stat = _state_and_parent(pid)
    return stat[1] if stat is not None else None

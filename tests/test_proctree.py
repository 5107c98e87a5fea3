"""irx.executors.proctree against real processes: a tree whose grandchildren are in sessions of their own
(as Ansible's workers are) is stopped whole, and nothing outside it is touched."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from irx.executors.proctree import descendants, kill_tree, parent_of

# A parent that starts two children in new sessions (one of which starts a grandchild), then waits.
_TREE = """
import subprocess, sys, time
sleeper = [sys.executable, "-c", "import time; time.sleep(120)"]
a = subprocess.Popen(sleeper, start_new_session=True)
b = subprocess.Popen([sys.executable, "-c", "import subprocess, sys, time; "
                      "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)']); time.sleep(120)"],
                     start_new_session=True)
print("ready", flush=True)
time.sleep(120)
"""


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _tree(deadline: float = 30) -> tuple[subprocess.Popen[str], set[int]]:
    proc = subprocess.Popen([sys.executable, "-c", _TREE], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    with proc.stdout:
        assert proc.stdout.readline() == "ready\n"
    end = time.monotonic() + deadline
    while len(found := descendants(proc.pid)) < 3:
        assert time.monotonic() < end, f"the tree never grew: {found}"
        time.sleep(0.02)
    return proc, found


def test_descendants_follow_children_into_other_sessions() -> None:
    proc, found = _tree()
    try:
        assert len(found) == 3
        assert all(_alive(pid) for pid in found)
        assert {parent_of(pid) for pid in found} >= {proc.pid}
        assert proc.pid not in found
    finally:
        kill_tree(proc.pid)
        proc.wait(timeout=10)


def test_kill_tree_stops_every_process_of_it_and_only_those() -> None:
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    proc, found = _tree()
    try:
        signalled = kill_tree(proc.pid)
        assert signalled == found | {proc.pid}
        assert proc.wait(timeout=10) < 0  # killed by a signal, not exited
        end = time.monotonic() + 10
        while any(_alive(pid) for pid in found) and time.monotonic() < end:
            time.sleep(0.05)
        assert not any(_alive(pid) for pid in found), "a process in another session survived"
        assert _alive(bystander.pid)
    finally:
        bystander.kill()
        bystander.wait(timeout=10)


def test_a_gone_process_has_no_parent_and_kills_nothing() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait(timeout=10)
    assert parent_of(proc.pid) is None
    assert kill_tree(proc.pid) == {proc.pid}  # signalled, harmlessly: there was nothing left

"""Drills interrupted: Ctrl-C in the middle of a drill leaves nothing behind.

Runs the richest drill (two SSH hosts in network namespaces with their sshd, a tmpfs volume, irx and
Ansible mid-run) through ``scripts/drills.sh`` in its own session, and sends SIGINT to that whole
process group the way a terminal's Ctrl-C does, while irx's run is in progress. Then checks what is
left on the machine, not what the script says: no process, namespace, link or directory of the drill,
no mount, no irx still running, and the interrupted run's journal recorded to the end.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from irx_testenv import leftovers

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
SCENARIO = "disk-space-exhausted-host-lost"
# Tagged: its own names, output and lock, so it can run while the drill set runs (scripts/test.sh).
TAG = "sigint"
UID = hashlib.sha1((TAG + SCENARIO).encode()).hexdigest()[:6]  # as molecule/_shared/vars.yml derives it
OUT = REPO / ".irx" / "drills" / f"{TAG}-{SCENARIO}"
LANE = f"irxdrills-{TAG}-lane1"  # the network namespace scripts/drills.sh runs the scenario in


def _journal_started() -> bool:
    return any(OUT.glob("runs/*/timeline.jsonl"))


def _processes_mentioning(marker: str) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if marker in cmdline:
                found.append(f"{entry.name}: {cmdline[:160]}")
    return found


def test_sigint_mid_drill_tears_everything_down() -> None:
    for journal in OUT.glob("runs/*/timeline.jsonl"):
        journal.unlink()  # only this run's journal may satisfy the wait below
    proc = subprocess.Popen(
        ["bash", "scripts/drills.sh", SCENARIO], cwd=REPO, stdin=subprocess.DEVNULL,
        env={**os.environ, "IRX_DRILL_TAG": TAG},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        # Ctrl-C as at a terminal: a suite started in the background of a non-interactive shell inherits
        # SIGINT ignored, and bash cannot trap a signal ignored at its start.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 180
        while not _journal_started():
            assert proc.poll() is None, f"the drill ended before irx ran: {proc.communicate()}"
            assert time.monotonic() < deadline, "irx did not start within 180 s"
            time.sleep(0.1)
        time.sleep(1.0)  # irx is now running steps on the namespace hosts
        os.killpg(proc.pid, signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130, (stdout, stderr)
    assert "teardown complete, nothing left behind" in stderr, stderr
    # What is really left: the machine, not the script's word.
    assert leftovers(UID) == []
    assert f"irxt-{UID}" not in Path("/proc/mounts").read_text()
    assert _processes_mentioning(f".irx/drills/{TAG}-{SCENARIO}") == []
    assert not (Path("/run/netns") / LANE).exists(), "the lane's network namespace was left"
    # The interrupted run recorded everything up to the interrupt and said how it ended.
    journals = sorted(OUT.glob("runs/*/timeline.jsonl"))
    assert journals
    last = json.loads(journals[-1].read_text().splitlines()[-1])
    assert (last["type"], last["status"]) == ("run_finished", "interrupted")

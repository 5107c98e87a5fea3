"""``irx run`` interrupted: SIGINT/SIGTERM stop it cleanly (130, recorded, nothing new started, Ansible
gone); SIGKILL leaves a journal that reads back whole and valid."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from journal_checks import of_type
from jsonschema import Draft202012Validator

from irx.timeline import JournalRead, read_journal

if TYPE_CHECKING:
    from conftest import IrxCli  # tests/integration/conftest.py, which pytest loads as conftest

pytestmark = pytest.mark.integration

TWO_HOSTS = ("localhost", "web1")


def schema_errors(journal: JournalRead, validator: Draft202012Validator) -> list[str]:
    return [
        f"event {event['seq']} ({event['type']}): {'/'.join(map(str, error.absolute_path))}: {error.message}"
        for event in journal.events
        for error in validator.iter_errors(event)
    ]


def descendants(pid: int) -> set[int]:
    """Every live descendant of ``pid``, from /proc."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[0] != "Z":
                parents[int(entry.name)] = int(fields[1])
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def alive(pids: set[int]) -> set[int]:
    living = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            living.add(pid)
    return living


def ansible_of(proc: subprocess.Popen[str], timeout: float = 60) -> set[int]:
    """The processes of irx's Ansible session (its descendants), once it has started them."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        children = descendants(proc.pid)
        if children:
            return children
        time.sleep(0.05)
    pytest.fail("irx started no Ansible session")


def sleeping(seconds: str) -> set[int]:
    """The live ``sleep SECONDS`` processes (the test hosts share this machine's process table)."""
    pattern = f"^sleep {seconds}$"
    found = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True, timeout=10, check=False)
    return alive({int(pid) for pid in found.stdout.split()})


def wait_gone(pids: set[int], timeout: float) -> set[int]:
    deadline = time.monotonic() + timeout
    while alive(pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    return alive(pids)


@pytest.fixture
def reap() -> Iterator[set[int]]:
    """Kill (by pid) whatever a test's irx left behind, so a failure cannot leak processes into the session."""
    pids: set[int] = set()
    yield pids
    for pid in alive(pids):
        os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize(
    ("sig", "probe_seconds", "during"),
    [
        (signal.SIGINT, 0, "pause"),  # a wait: cut short at once
        (signal.SIGINT, 3, "probe"),  # a host step: allowed to finish, nothing after it starts
        (signal.SIGTERM, 0, "pause"),
        (signal.SIGHUP, 0, "pause"),  # the operator's SSH session dropped
    ],
    ids=["sigint-during-wait", "sigint-during-host-step", "sigterm-during-wait", "sighup-during-wait"],
)
def test_interrupt_mid_run_exits_130_and_starts_nothing_new(
    irx_cli: IrxCli,
    tmp_path: Path,
    timeline_validator: Draft202012Validator,
    reap: set[int],
    sig: int,
    probe_seconds: int,
    during: str,
) -> None:
    state = tmp_path / "state"
    state.mkdir()
    proc = irx_cli.start(
        "run-pause", "-l", ",".join(TWO_HOSTS), "-e", f"state_dir={state}", "-e", f"probe_seconds={probe_seconds}"
    )
    reap.add(proc.pid)
    try:
        irx_cli.wait_for_event(proc, lambda e: e["type"] == "step_started" and e["step"] == during)
        children = ansible_of(proc)
        reap.update(children)
        if during == "probe":  # signal while the command really runs on both hosts, not before it is handed out
            deadline = time.monotonic() + 60
            while len(sleeping(str(probe_seconds))) < len(TWO_HOSTS):
                assert time.monotonic() < deadline, "the probe never ran on both hosts"
                time.sleep(0.02)
        sent = time.monotonic()
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, f"{out}\n{err}"
    assert "INTERRUPTED" in out
    assert took < 25 + probe_seconds, f"took {took:.1f}s to stop"
    journal = irx_cli.journal()
    assert journal.problems == []
    assert schema_errors(journal, timeline_validator) == []
    finished = journal.events[-1]
    assert (finished["type"], finished["status"], finished["exit_code"]) == ("run_finished", "interrupted", 130)
    # Nothing started after the step that was running when the signal came.
    started = [e["step"] for e in of_type(journal, "step_started")]
    assert started == (["probe"] if during == "probe" else ["probe", "pause"])
    assert of_type(journal, "phase_started", phase="mitigate") == []
    assert list(state.iterdir()) == []
    if during == "probe":  # the running host step was let finish, and its results were recorded
        results = {e["host"]: e["status"] for e in of_type(journal, "host_result", step="probe")}
        assert results == dict.fromkeys(TWO_HOSTS, "ok")
    assert of_type(journal, "phase_finished", phase="diagnose")[0]["status"] == "interrupted"
    # irx took its Ansible session down with it.
    assert wait_gone(children, 15) == set()


def test_a_reader_gone_mid_run_neither_stops_nor_loses_the_run(irx_cli: IrxCli, tmp_path: Path, reap: set[int]) -> None:
    # What Ctrl-C under Ansible or molecule does: the process reading irx's output dies first, then irx is
    # interrupted. Progress has nowhere to go; the run must still stop cleanly and record its end.
    state = tmp_path / "state"
    state.mkdir()
    proc = irx_cli.start("run-pause", "-l", "localhost", "-e", f"state_dir={state}", stderr=subprocess.DEVNULL)
    reap.add(proc.pid)
    try:
        irx_cli.wait_for_event(proc, lambda e: e["type"] == "step_started" and e["step"] == "pause")
        assert proc.stdout is not None
        proc.stdout.close()  # the reader is gone: irx's next progress line meets a closed pipe
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130
    finished = irx_cli.journal().events[-1]
    assert (finished["type"], finished["status"], finished["exit_code"]) == ("run_finished", "interrupted", 130)


def test_sigkill_mid_run_leaves_a_journal_that_reads_back_whole(
    irx_cli: IrxCli, tmp_path: Path, timeline_validator: Draft202012Validator, reap: set[int]
) -> None:
    state = tmp_path / "state"
    state.mkdir()
    proc = irx_cli.start("run-pause", "-l", ",".join(TWO_HOSTS), "-e", f"state_dir={state}")
    reap.add(proc.pid)
    try:
        irx_cli.wait_for_event(proc, lambda e: e["type"] == "step_started" and e["step"] == "pause")
        children = ansible_of(proc)
        reap.update(children)
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == -signal.SIGKILL

    journal = read_journal(irx_cli.journals()[0])

    # Every event up to the kill is there, intact and in order (a torn last line is the only tolerable loss).
    assert all("truncated event" in problem for problem in journal.problems), journal.problems
    assert len(journal.problems) <= 1
    assert [e["seq"] for e in journal.events] == list(range(1, len(journal.events) + 1))
    assert schema_errors(journal, timeline_validator) == []
    kinds = [e["type"] for e in journal.events]
    assert kinds[0] == "run_started"
    assert "run_finished" not in kinds
    assert [e["step"] for e in of_type(journal, "step_started")] == ["probe", "pause"]
    assert {e["host"]: e["status"] for e in of_type(journal, "host_result", step="probe")} == dict.fromkeys(
        TWO_HOSTS, "ok"
    )
    assert journal.events[-1]["type"] == "step_started"
    # The writer is dead: its flock went with it, so the run reads as interrupted, not running.
    assert (journal.running, journal.status) == (False, "interrupted")
    # Orphaned, the Ansible session notices irx is gone and ends by itself.
    assert wait_gone(children, 20) == set()


def test_second_interrupt_stops_the_running_host_step_now(
    irx_cli: IrxCli, tmp_path: Path, timeline_validator: Draft202012Validator, reap: set[int]
) -> None:
    state = tmp_path / "state"
    state.mkdir()
    # Also the marker pgrep finds: rendered back exactly as written (no trailing zero in the fraction).
    seconds = f"{random.randint(40, 59)}.{random.randint(1000, 9999)}7"
    proc = irx_cli.start(
        "run-pause", "-l", ",".join(TWO_HOSTS), "-e", f"state_dir={state}", "-e", f"probe_seconds={seconds}"
    )
    reap.add(proc.pid)
    try:
        irx_cli.wait_for_event(proc, lambda e: e["type"] == "step_started" and e["step"] == "probe")
        children = ansible_of(proc)
        reap.update(children)
        deadline = time.monotonic() + 60
        while len(sleeping(seconds)) < len(TWO_HOSTS) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(sleeping(seconds)) == len(TWO_HOSTS), "the probe should be running on both hosts"
        # Now the step's workers are there too, each in a session of its own (Ansible's workers setsid):
        # ansible-runner's kill of ansible-playbook's process group alone would leave them running the step.
        children |= descendants(proc.pid)
        reap.update(children)
        assert len({os.getsid(pid) for pid in alive(children)}) > 1, "the workers should be in the tree"
        proc.send_signal(signal.SIGINT)
        time.sleep(0.5)
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        # Commands on SSH hosts are not stopped (their watchdog ends them at the step's timeout): this test's
        # own are killed here. The one on localhost is in irx's tree, which the abort stops whole.
        reap.update(sleeping(seconds))
    assert proc.returncode == 130, f"{out}\n{err}"
    assert took < 20, f"took {took:.1f}s to stop"
    assert "second interrupt: stopping the running step" in out
    journal = irx_cli.journal()
    assert journal.problems == []
    assert schema_errors(journal, timeline_validator) == []
    finished = journal.events[-1]
    assert (finished["type"], finished["status"], finished["exit_code"]) == ("run_finished", "interrupted", 130)
    assert "step 'probe' was stopped" in finished["reason"]
    assert [e["step"] for e in of_type(journal, "step_started")] == ["probe"]
    assert of_type(journal, "phase_finished", phase="diagnose")[0]["status"] == "interrupted"
    assert wait_gone(children, 15) == set()

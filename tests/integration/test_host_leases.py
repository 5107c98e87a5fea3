"""The lease on the target host: two operators on two control nodes (two state directories, two homes, two
runs directories: nothing shared but the SSH host) meet there, a refused run names the holder and changed
nothing (its diagnosis ran: it reads), a dry run is not held up, and a ``kill -9``'d holder's lease expires
by itself."""

from __future__ import annotations

import json
import os
import re
import signal
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from journal_checks import check_journal, of_type
from jsonschema import Draft202012Validator

from irx.lease import RENEW_MARGIN
from irx.timeline import read_journal

if TYPE_CHECKING:
    from conftest import IrxCli  # tests/integration/conftest.py, which pytest loads as conftest

pytestmark = pytest.mark.integration

HOSTS = "localhost,web1"  # the gate runs on localhost; web1 is the host both operators would change


def other_operator(irx_cli: IrxCli, tmp_path: Path) -> IrxCli:
    """A second control node: its own lock directory, HOME, TMPDIR and runs; the same SSH hosts."""
    root = tmp_path / "operator-b"
    for sub in ("home", "t", "locks"):
        (root / sub).mkdir(parents=True)
    env = {**irx_cli.env, "HOME": str(root / "home"), "TMPDIR": str(root / "t"),
           "IRX_LOCK_DIR": str(root / "locks"), "IRX_RUNS_DIR": str(root / "runs"),
           "IRX_NODE_NAME": "operator-b-node"}  # fmt: skip
    return replace(irx_cli, env=env, runs_dir=root / "runs", cwd=root)


def lease_file(inventory: Path, host: str) -> Path:
    import yaml

    data = yaml.safe_load(inventory.read_text())
    return Path(data["all"]["children"]["testhosts"]["hosts"][host]["irx_lease_file"])


HELD = re.compile(
    r"irx: error: host web1 is already being changed by playbook (\S+), run by (\S+) \(run (\S+), pid (\d+), "
    r"since (\S+); its lease on the host runs until (\S+) unless renewed\); use --force to override"
)


def test_two_operators_meet_at_the_lease_on_the_host(
    irx_cli: IrxCli, tmp_path: Path, timeline_validator: Draft202012Validator
) -> None:
    state, gate = tmp_path / "state", tmp_path / "gate"
    state.mkdir()
    args = ("-l", HOSTS, "-e", f"state_dir={state}", "-e", f"gate={gate}")
    bob = other_operator(irx_cli, tmp_path)
    first = irx_cli.start("run-lease", *args)
    try:
        taken = irx_cli.wait_for_event(first, lambda e: e["type"] == "lease" and e["action"] == "acquired")
        assert taken["host"] == "web1"
        record = json.loads(lease_file(irx_cli.inventory, "web1").read_text())
        assert record["run_id"] == taken["run_id"]
        assert (record["playbook"], record["pid"], record["control_node"]) == (
            "run-lease",
            first.pid,
            os.uname().nodename,
        )

        refused = bob.run("run-lease", *args)  # another control node: its own host lock is free
        assert refused.rc == 2, refused.output
        held = HELD.search(refused.stderr)
        assert held is not None, refused.output
        assert (held[1], held[3], int(held[4])) == ("run-lease", taken["run_id"], first.pid)
        assert held[6] == record["expires"]
        (journal,) = map(read_journal, bob.journals())  # the refusal is recorded, nothing was changed
        check_journal(journal, timeline_validator)
        assert (journal.events[-1]["status"], journal.events[-1]["exit_code"]) == ("failed", 2)  # as the process
        assert "already being changed" in of_type(journal, "error")[0]["message"]
        # The diagnosis ran (it reads: it neither waits for nor takes a lease); the first change was refused.
        assert [e["step"] for e in of_type(journal, "step_started")] == ["look", "gate"]
        assert [(e["step"], e["status"]) for e in of_type(journal, "step_finished")] == [
            ("look", "ok"),
            ("gate", "not_run"),
        ]
        assert {e["step"] for e in of_type(journal, "host_result")} == {"look"}
        assert [e["action"] for e in of_type(journal, "lease")] == []  # nothing taken, nothing to release

        # Another playbook that changes web1 is refused the same way; a dry run is not held up.
        (state / "backlog").write_text("3\n")
        other = bob.run("run-gated", "-l", "web1", "-e", f"state_dir={state}", "--yes")
        assert other.rc == 2, other.output
        assert "host web1 is already being changed by playbook run-lease" in other.stderr
        assert not list(state.glob("canary-*")), "the refused run changed web1"
        dry = bob.run("run-gated", "-l", "web1", "-e", f"state_dir={state}", "--dry-run")
        assert dry.rc == 0, dry.output
        assert json.loads(lease_file(irx_cli.inventory, "web1").read_text())["run_id"] == taken["run_id"]
    finally:
        gate.touch()
        out, err = first.communicate(timeout=120)
    assert first.returncode == 0, f"{out}\n{err}"
    assert (state / "changed-web1").read_text().split() == [taken["run_id"]]
    assert lease_file(irx_cli.inventory, "web1").read_text() == ""  # released
    first_journal = read_journal(irx_cli.journals()[0])
    check_journal(first_journal, timeline_validator)
    leases = [(e["host"], e["action"]) for e in of_type(first_journal, "lease")]
    assert leases == [("web1", "acquired"), ("web1", "released")]

    # Free again: the other operator's run goes through.
    again = bob.run("run-lease", *args)
    assert again.rc == 0, again.output


def test_a_killed_holders_lease_expires_and_the_next_run_records_whom_it_replaced(
    irx_cli: IrxCli, tmp_path: Path, timeline_validator: Draft202012Validator
) -> None:
    state, gate = tmp_path / "state", tmp_path / "gate"
    state.mkdir()
    args = ("-l", HOSTS, "-e", f"state_dir={state}", "-e", f"gate={gate}")
    ttl = 25.0  # long enough to see it alive from another run (its start takes seconds, more on a busy machine)
    bob = other_operator(irx_cli, tmp_path)
    holder = irx_cli.start("run-lease", *args, env={**irx_cli.env, "IRX_LEASE_TTL": str(ttl)}, start_new_session=True)
    try:
        taken = irx_cli.wait_for_event(holder, lambda e: e["type"] == "lease" and e["action"] == "acquired")
    finally:
        os.killpg(holder.pid, signal.SIGKILL)  # irx and its Ansible: nothing releases the lease
        holder.communicate(timeout=30)
    killed_at = time.monotonic()
    record = json.loads(lease_file(irx_cli.inventory, "web1").read_text())
    assert record["run_id"] == taken["run_id"]
    assert record["ttl"] == ttl

    refused = bob.run("run-lease", *args)
    assert refused.rc == 2, refused.output
    assert HELD.search(refused.stderr) is not None, refused.output
    assert time.monotonic() - killed_at < ttl, "too slow to see the lease alive: the check proves nothing"
    time.sleep(max(0.0, ttl + 0.5 - (time.monotonic() - killed_at)))
    gate.touch()
    after = bob.run("run-lease", *args)
    assert after.rc == 0, after.output
    journal = read_journal(sorted(bob.journals())[-1])
    check_journal(journal, timeline_validator)
    (stale,) = of_type(journal, "lease", action="stale")
    assert stale["host"] == "web1"
    assert (stale["previous"]["run_id"], stale["previous"]["pid"]) == (taken["run_id"], holder.pid)
    assert (state / "changed-web1").read_text().split() == [journal.events[0]["run_id"]]


def test_a_run_forced_over_a_live_lease_records_it_and_the_displaced_run_does_not_change_the_host_again(
    irx_cli: IrxCli, tmp_path: Path, timeline_validator: Draft202012Validator
) -> None:
    state, gate = tmp_path / "state", tmp_path / "gate"
    state.mkdir()
    args = ("-l", HOSTS, "-e", f"state_dir={state}")
    bob = other_operator(irx_cli, tmp_path)
    # ttl 20: long enough that the forced run (its own start takes seconds) meets the first run's lease alive;
    # the gate opens only once that lease is due, so the first run checks with the host before `mark`.
    ttl = 20.0
    first = irx_cli.start("run-lease", *args, "-e", f"gate={gate}", env={**irx_cli.env, "IRX_LEASE_TTL": str(ttl)})
    try:
        irx_cli.wait_for_event(first, lambda e: e["type"] == "lease" and e["action"] == "acquired")
        acquired_at = time.monotonic()
        open_gate = tmp_path / "open"
        open_gate.touch()
        forced = bob.run("run-lease", "--force", *args, "-e", f"gate={open_gate}")
        assert forced.rc == 0, forced.output
        # The forced run released its lease at its end; a third run now holds web1 while the first goes on.
        third_gate = tmp_path / "third"
        third = bob.start("run-lease", *args, "-e", f"gate={third_gate}")
        bob.wait_for_event(third, lambda e: e["type"] == "lease" and e["action"] == "acquired")
        time.sleep(max(0.0, ttl * (1 - RENEW_MARGIN) + 1 - (time.monotonic() - acquired_at)))
        gate.touch()
        out, err = first.communicate(timeout=120)
        lost = [e for e in of_type(read_journal(irx_cli.journals()[0]), "lease") if e["action"] == "lost"]
        assert [e["holder"]["run_id"] for e in lost] == [read_journal(bob.journals()[-1]).events[0]["run_id"]]
        third_gate.touch()
        third_out, third_err = third.communicate(timeout=120)
        assert third.returncode == 0, f"{third_out}\n{third_err}"
    finally:
        gate.touch()
        if first.poll() is None:
            out, err = first.communicate(timeout=120)
    forced_journal = read_journal(bob.journals()[0])
    check_journal(forced_journal, timeline_validator)
    (took,) = of_type(forced_journal, "lease", action="forced")
    first_journal = read_journal(irx_cli.journals()[0])
    check_journal(first_journal, timeline_validator)
    assert took["previous"]["run_id"] == first_journal.events[0]["run_id"]
    # The displaced run did not touch web1 (the forced and the third did): refused there, saying why.
    third_id = read_journal(bob.journals()[-1]).events[0]["run_id"]
    assert (state / "changed-web1").read_text().split() == [forced_journal.events[0]["run_id"], third_id]
    (mark,) = [e for e in of_type(first_journal, "host_result", step="mark") if e["host"] == "web1"]
    assert mark["status"] == "failed"
    assert mark["msg"].startswith("not changed: its lease was taken by run ")
    assert first.returncode == 1, f"{out}\n{err}"


def test_lease_settings_are_checked_before_anything_runs(irx_cli: IrxCli, tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    ran = irx_cli.run("run-lease", "-l", HOSTS, "-e", f"state_dir={state}", "-e", "gate=/nonexistent",
                      env={**irx_cli.env, "IRX_LEASE_TTL": "soon"})  # fmt: skip
    assert ran.rc == 2, ran.output
    assert "IRX_LEASE_TTL='soon': give the lease's lifetime in seconds" in ran.stderr
    assert "Traceback" not in ran.stderr


def test_on_the_same_control_node_a_dead_runs_lease_is_taken_at_once(
    irx_cli: IrxCli, tmp_path: Path, timeline_validator: Draft202012Validator
) -> None:
    state, gate = tmp_path / "state", tmp_path / "gate"
    state.mkdir()
    args = ("-l", HOSTS, "-e", f"state_dir={state}", "-e", f"gate={gate}")
    holder = irx_cli.start("run-lease", *args, start_new_session=True)
    try:
        taken = irx_cli.wait_for_event(holder, lambda e: e["type"] == "lease" and e["action"] == "acquired")
    finally:
        os.killpg(holder.pid, signal.SIGKILL)
        holder.communicate(timeout=30)
    assert json.loads(lease_file(irx_cli.inventory, "web1").read_text())["run_id"] == taken["run_id"]
    gate.touch()
    after = irx_cli.run("run-lease", *args)  # the lease runs 15 minutes more, but its holder is gone
    assert after.rc == 0, after.output
    journal = read_journal(sorted(irx_cli.journals())[-1])
    check_journal(journal, timeline_validator)
    (stale,) = of_type(journal, "lease", action="stale")
    assert (stale["previous"]["run_id"], stale["previous"]["pid"]) == (taken["run_id"], holder.pid)

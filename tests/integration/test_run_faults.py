"""``irx run`` when hosts fail: a host whose sshd dies mid-run, a host dead before the run (found by the
paramiko preflight), and a command hung past its timeout (stopped on the host, not only given up on)."""

from __future__ import annotations

import random
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from journal_checks import check_journal, host_results, of_type
from jsonschema import Draft202012Validator

from irx.timeline import JournalRead, parse_timestamp
from irx_testenv import SshHosts

if TYPE_CHECKING:
    from conftest import IrxCli  # tests/integration/conftest.py, which pytest loads as conftest

pytestmark = pytest.mark.integration

SSH_HOSTS = ("web1", "web2", "db1")
ALL_HOSTS = ("localhost", *SSH_HOSTS)
MACHINE = socket.gethostname()


@pytest.fixture
def web2_revived(ssh_hosts: SshHosts) -> Iterator[SshHosts]:
    """The hosts are shared by the session: whatever a test does to web2's sshd, it is running afterwards."""
    yield ssh_hosts
    ssh_hosts.start_sshd("web2")


def check_budgets(journal: JournalRead, state: Path) -> None:
    """web2 is unreachable; the tolerant target (40 %) goes on, the strict one (0 %, serial 1) stops."""
    probe = host_results(journal, "probe")
    assert {h: r["status"] for h, r in probe.items()} == {"web1": "ok", "web2": "unreachable", "db1": "ok"}
    assert probe["web1"]["stdout"].strip() == "web1"
    assert of_type(journal, "step_finished", step="probe")[0]["status"] == "ok"
    # serial 1 in inventory order: web1 changed, web2 unreachable spends the budget, db1 is never touched.
    strict = host_results(journal, "one_by_one")
    assert {h: r["status"] for h, r in strict.items()} == {"web1": "ok", "web2": "unreachable", "db1": "skipped"}
    assert "failure budget" in strict["db1"]["msg"]
    assert sorted(p.name for p in state.glob("strict-*")) == ["strict-web1"]
    finished = journal.events[-1]
    assert (finished["status"], finished["exit_code"]) == ("failed", 1)
    assert "one_by_one" in finished["reason"]


def test_host_unreachable_mid_run_others_continue_within_budget(
    irx_cli: IrxCli, web2_revived: SshHosts, tmp_path: Path, timeline_validator: Draft202012Validator
) -> None:
    state, gate = tmp_path / "state", tmp_path / "gate"
    state.mkdir()
    proc = irx_cli.start("run-unreachable", "-e", f"state_dir={state}", "-e", f"gate={gate}")
    try:
        # The run is held on localhost by `gate`: every host passed the preflight, no test host step ran yet.
        irx_cli.wait_for_event(proc, lambda e: e["type"] == "step_started" and e["step"] == "gate")
        web2_revived.kill_sshd("web2")
        gate.touch()
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 1, f"{out}\n{err}"
    journal = irx_cli.journal()
    check_journal(journal, timeline_validator)
    assert [e for e in journal.events if e.get("phase") == "preflight"] == []
    # Found by Ansible over SSH, mid-run: connection refused.
    assert "refused" in host_results(journal, "probe")["web2"]["msg"].lower()
    check_budgets(journal, state)
    assert "web2" in out


def test_host_dead_before_the_run_is_caught_by_the_preflight_in_well_under_a_second(
    irx_cli: IrxCli, web2_revived: SshHosts, tmp_path: Path, timeline_validator: Draft202012Validator
) -> None:
    state, gate = tmp_path / "state", tmp_path / "gate"
    state.mkdir()
    gate.touch()
    web2_revived.kill_sshd("web2")

    ran = irx_cli.run("run-unreachable", "-e", f"state_dir={state}", "-e", f"gate={gate}")

    assert ran.rc == 1, ran.output
    journal = irx_cli.journal()
    check_journal(journal, timeline_validator)
    (preflight,) = [e for e in journal.events if e.get("phase") == "preflight"]
    assert (preflight["type"], preflight["host"], preflight["status"]) == ("host_result", "web2", "unreachable")
    assert "refused" in preflight["msg"].lower()
    # Known before the first step, and fast: the live hosts' SSH handshakes and the dead host's refusal,
    # concurrently, while Ansible starts in the background.
    first_step = of_type(journal, "step_started")[0]
    assert preflight["seq"] < first_step["seq"]
    waited = parse_timestamp(preflight["ts"]) - parse_timestamp(journal.events[0]["ts"])
    assert waited.total_seconds() < 1.0
    assert "web2 unreachable before any step" in ran.stdout
    # Ansible never tried web2: every step records the preflight's verdict for it.
    check_budgets(journal, state)
    assert host_results(journal, "probe")["web2"]["msg"] == preflight["msg"].removeprefix("preflight: ")


def test_hung_command_past_its_timeout_is_stopped_on_every_host(
    irx_cli: IrxCli, tmp_path: Path, timeline_validator: Draft202012Validator
) -> None:
    state = tmp_path / "state"
    state.mkdir()
    marker = str(random.randint(400_000_000, 499_999_999))  # the sleep length: unique on this machine

    ran = irx_cli.run("run-hang", "-e", f"marker={marker}", "-e", f"state_dir={state}")

    assert ran.rc == 1, ran.output
    journal = irx_cli.journal()
    check_journal(journal, timeline_validator)
    hang = host_results(journal, "hang")
    assert {h: r["status"] for h, r in hang.items()} == dict.fromkeys(ALL_HOSTS, "timed_out")
    assert all("timed out after 2s" in r["msg"] for r in hang.values()), hang
    (done,) = of_type(journal, "step_finished", step="hang")
    assert done["status"] == "timed_out"
    assert done["duration"] < 30  # stopped at its timeout, not waited for
    finished = journal.events[-1]
    assert (finished["status"], finished["exit_code"]) == ("failed", 1)
    assert "timed out" in finished["reason"]
    assert of_type(journal, "step_started", step="after") == []
    assert list(state.iterdir()) == []
    # The hosts share this machine's process table: neither the shell nor its sleep survived anywhere.
    left = subprocess.run(["pgrep", "-af", marker], capture_output=True, text=True, timeout=10, check=False)
    assert left.stdout == "", f"hung processes still running after the run:\n{left.stdout}"

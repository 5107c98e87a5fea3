"""``irx run`` safety: approval gates (missing, --approve, --yes, refused at a terminal), the run lock
(refused naming its holder, --force recorded), and secrets that reach the hosts but nothing on disk or
on the terminal."""

from __future__ import annotations

import glob
import json
import os
import pty
import re
import select
import socket
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from journal_checks import check_journal, host_results, of_type
from jsonschema import Draft202012Validator

from irx.lock import HostLocks
from irx.timeline import read_journal

if TYPE_CHECKING:
    from conftest import IrxCli  # tests/integration/conftest.py, which pytest loads as conftest

pytestmark = pytest.mark.integration

MACHINE = socket.gethostname()
HOSTNAMES = {"localhost": MACHINE, "web1": "web1", "web2": "web2", "db1": "db1"}
TWO_HOSTS = ("localhost", "web1")  # one local, one over SSH: enough for the gates, and cheaper


@pytest.fixture
def state(tmp_path: Path) -> Path:
    state = tmp_path / "state"
    state.mkdir()
    (state / "backlog").write_text("7\n")
    return state


def canaries(state: Path) -> list[str]:
    return sorted(p.name for p in state.glob("canary-*"))


# --- approval gates ------------------------------------------------------------------------------------------


def test_approval_missing_without_a_terminal_stops_at_the_gate(
    irx_cli: IrxCli, state: Path, timeline_validator: Draft202012Validator
) -> None:
    messages = state / "messages.log"
    ran = irx_cli.run(
        "run-gated", "-l", ",".join(TWO_HOSTS), "-e", f"state_dir={state}", env={"IRX_NOTIFY_FILE": str(messages)}
    )

    assert ran.rc == 4, ran.output
    gate = re.search(
        r"step 'fix' needs approval and there is no terminal to ask: "
        r"approve it with --approve fix@([0-9a-f]{12}) or --yes",
        ran.stderr,
    )
    assert gate, ran.stderr
    # ... and how to continue this same run once it is reviewed.
    run_id = irx_cli.journal().path.parent.name
    assert f"irx resume {run_id} --approve fix@{gate.group(1)}" in ran.stderr
    assert "WAITING FOR APPROVAL in " in ran.stdout
    # The channel hears that the run waits, not that remediation failed.
    sent = messages.read_text()
    assert "⏸️ WAITING FOR APPROVAL - SEV2 - A mitigation that needs an approval" in sent
    assert "FAILED" not in sent
    journal = irx_cli.journal()
    check_journal(journal, timeline_validator)
    assert (journal.events[-1]["status"], journal.events[-1]["exit_code"]) == ("awaiting_approval", 4)
    (approval,) = of_type(journal, "approval")
    assert (approval["step"], approval["approved"], approval["method"]) == ("fix", False, "missing")
    assert approval["plan_hash"] == journal.events[0]["plan_hash"]
    # The diagnostic ran; the gated step did not, nor anything after it.
    assert {h: r["status"] for h, r in host_results(journal, "probe").items()} == dict.fromkeys(TWO_HOSTS, "ok")
    assert host_results(journal, "fix") == {}
    assert of_type(journal, "step_started", step="checked") == []
    assert canaries(state) == []


@pytest.mark.parametrize(("flag", "method"), [(("--approve", "fix"), "approve-flag"), (("--yes",), "yes-flag")])
def test_approval_by_flag_runs_the_gated_step(
    irx_cli: IrxCli, state: Path, timeline_validator: Draft202012Validator, flag: tuple[str, ...], method: str
) -> None:
    ran = irx_cli.run("run-gated", "-l", ",".join(TWO_HOSTS), "-e", f"state_dir={state}", *flag)

    assert ran.rc == 0, ran.output
    journal = irx_cli.journal()
    check_journal(journal, timeline_validator)
    operator = journal.events[0]["operator"]
    assert re.fullmatch(rf"[^@\s]+@{re.escape(MACHINE)}", operator)
    (approval,) = of_type(journal, "approval")
    assert (approval["step"], approval["approved"], approval["method"], approval["by"]) == (
        "fix", True, method, operator
    )  # fmt: skip
    assert approval["plan_hash"] == journal.events[0]["plan_hash"]
    assert {h: r["status"] for h, r in host_results(journal, "fix").items()} == dict.fromkeys(TWO_HOSTS, "ok")
    assert canaries(state) == sorted(f"canary-{HOSTNAMES[h]}" for h in TWO_HOSTS)
    assert journal.events[-1]["status"] == "verified"


def test_the_hash_irx_plan_shows_is_the_one_the_gate_checks(
    irx_cli: IrxCli, state: Path, timeline_validator: Draft202012Validator
) -> None:
    from conftest import RUN_PLAYBOOKS

    hosts = ",".join(TWO_HOSTS)
    plan = irx_cli.irx(
        "plan", "run-gated", "-p", str(RUN_PLAYBOOKS), "-i", str(irx_cli.inventory), "-l", hosts,
        "-e", f"state_dir={state}", "--format", "json",
    )  # fmt: skip
    assert plan.rc == 0, plan.output
    (fix,) = [s for s in json.loads(plan.stdout)["plan"]["steps"] if s["id"] == "fix"]
    planned = fix["approval"]["hash"]
    text = irx_cli.irx("plan", "run-gated", "-p", str(RUN_PLAYBOOKS), "-i", str(irx_cli.inventory), "-l", hosts,
                       "-e", f"state_dir={state}")  # fmt: skip
    assert f"approve with --approve fix@{planned[7:19]}" in text.stdout

    ran = irx_cli.run("run-gated", "-l", hosts, "-e", f"state_dir={state}", "--approve", f"fix@{planned[7:19]}")

    assert ran.rc == 0, ran.output
    journal = irx_cli.journal()
    check_journal(journal, timeline_validator)
    (approval,) = of_type(journal, "approval")
    assert (approval["approved"], approval["method"], approval["approval_hash"]) == (True, "approve-flag", planned)
    assert canaries(state) == sorted(f"canary-{HOSTNAMES[h]}" for h in TWO_HOSTS)


def test_an_approval_for_another_rendering_lets_nothing_through(
    irx_cli: IrxCli, state: Path, timeline_validator: Draft202012Validator
) -> None:
    """The diagnostic's output changes between the approval (taken from the first run's gate) and the
    next run: the stale hash is a refusal, recorded as one; the new rendering's hash is approved."""
    hosts = ",".join(TWO_HOSTS)
    (state / "target").write_text("alpha\n")
    first = irx_cli.run("run-bound", "-l", hosts, "-e", f"state_dir={state}")
    assert first.rc == 4, first.output
    (gate,) = of_type(read_journal(irx_cli.journals()[-1]), "approval")
    shown = gate["approval_hash"]
    assert f"--approve fix@{shown[7:19]}" in first.stderr
    assert "echo alpha >" in gate["summary"]

    (state / "target").write_text("beta\n")  # what fix would write changes
    stale = irx_cli.run("run-bound", "-l", hosts, "-e", f"state_dir={state}", "--approve", f"fix@{shown[7:19]}")

    assert stale.rc == 4, stale.output
    assert "WAITING FOR APPROVAL" in stale.stdout
    journal = read_journal(irx_cli.journals()[-1])
    check_journal(journal, timeline_validator)
    (refusal,) = of_type(journal, "approval")
    assert (refusal["approved"], refusal["method"]) == (False, "stale")
    assert refusal["approval_hash"] != shown
    assert refusal["reason"].startswith(f"--approve fix@{shown[7:19]} does not match what fix would run now")
    assert host_results(journal, "fix") == {}
    assert canaries(state) == []
    # A refusal reads as one in the post-mortem and the HTML timeline, with the hash that was refused.
    report = irx_cli.irx("report", "latest", "--runs-dir", str(irx_cli.runs_dir))
    assert f"; refused by {refusal['by']} (stale) at " in report.stdout, report.stdout
    assert f"[{refusal['approval_hash'][7:19]}]: --approve fix@{shown[7:19]} does not match" in report.stdout
    html = irx_cli.irx("report", "latest", "--runs-dir", str(irx_cli.runs_dir), "--format", "html")
    assert f"Approval: refused by {refusal['by']} (stale) [{refusal['approval_hash'][7:19]}]" in html.stdout

    fresh = refusal["approval_hash"]
    ran = irx_cli.run("run-bound", "-l", hosts, "-e", f"state_dir={state}", "--approve", f"fix@{fresh[7:19]}")
    assert ran.rc == 0, ran.output
    assert sorted((state / f"canary-{HOSTNAMES[h]}").read_text() for h in TWO_HOSTS) == ["beta\n", "beta\n"]


@pytest.mark.parametrize("value", ["fix@", "fix@abc", "fix@zzzzzzzzzzzzzz"])
def test_a_malformed_approval_hash_is_a_usage_error(irx_cli: IrxCli, state: Path, value: str) -> None:
    ran = irx_cli.run("run-gated", "-e", f"state_dir={state}", "--approve", value)
    assert ran.rc == 2, ran.output
    assert f"--approve {value}: expected STEP or STEP@HASH (at least 12 hex digits of it)" in ran.stderr
    assert irx_cli.journals() == []


def test_approve_flag_for_a_step_without_a_gate_is_refused_before_anything_runs(irx_cli: IrxCli, state: Path) -> None:
    ran = irx_cli.run("run-gated", "-e", f"state_dir={state}", "--approve", "probe")

    assert ran.rc == 2, ran.output
    assert "--approve probe: no step of run-gated with that id needs approval (those that do: fix)" in ran.stderr
    assert irx_cli.journals() == []


def test_approval_refused_at_a_terminal(irx_cli: IrxCli, state: Path, timeline_validator: Draft202012Validator) -> None:
    """On a terminal irx shows the rendered action and its hosts, and asks; 'n' skips the step."""
    master, slave = pty.openpty()
    proc = irx_cli.start(
        "run-gated", "-l", ",".join(TWO_HOSTS), "-e", f"state_dir={state}",
        stdin=slave, stdout=slave, stderr=slave, start_new_session=True,
    )  # fmt: skip
    os.close(slave)
    seen = b""
    answered = False
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: the terminal's other side is closed, irx is done
                    break
                if not chunk:
                    break
                seen += chunk
            if not answered and b"run fix?" in seen:
                os.write(master, b"n\n")
                answered = True
            if proc.poll() is not None and not ready:
                break
        proc.wait(timeout=30)
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = seen.decode(errors="replace")
    assert answered, text
    # The prompt showed what would run, rendered, and where.
    assert f"echo fixed > {state}/canary-$(hostname)  [on localhost, web1]" in text
    journal = irx_cli.journal()
    check_journal(journal, timeline_validator)
    (approval,) = of_type(journal, "approval")
    assert (approval["step"], approval["approved"], approval["method"]) == ("fix", False, "refused")
    assert approval["by"] == journal.events[0]["operator"]
    assert of_type(journal, "step_finished", step="fix")[0]["status"] == "skipped"
    assert host_results(journal, "fix") == {}
    assert canaries(state) == []
    assert f"fix: approval refused by {approval['by']}; not run" in text
    # The run went on without it: the verification ran, and the exit code is the run's.
    assert of_type(journal, "step_started", step="checked") != []
    assert proc.returncode == journal.events[-1]["exit_code"], text


# --- the run lock ----------------------------------------------------------------------------------------------


def test_concurrent_run_is_refused_naming_the_holder_and_force_is_recorded(
    irx_cli: IrxCli, tmp_path: Path, timeline_validator: Draft202012Validator
) -> None:
    state, gate = tmp_path / "state", tmp_path / "gate"
    state.mkdir()
    args = ("-l", ",".join(TWO_HOSTS), "-e", f"state_dir={state}")
    first = irx_cli.start("run-unreachable", *args, "-e", f"gate={gate}")
    try:
        held = irx_cli.wait_for_event(first, lambda e: e["type"] == "step_started" and e["step"] == "gate")
        first_id = held["run_id"]

        second = irx_cli.run("run-unreachable", *args, "-e", f"gate={gate}")

        assert second.rc == 2, second.output
        holder = re.search(
            r"irx: error: host (\S+) is already being changed by playbook run-unreachable, run by (\S+) "
            r"\(run (\S+), pid (\d+), since (\S+)\); use --force to override",
            second.stderr,
        )
        assert holder is not None, second.output
        assert holder[1] in TWO_HOSTS
        assert (holder[3], int(holder[4])) == (first_id, first.pid)
        assert len(irx_cli.journals()) == 1  # refused before its journal: nothing ran
        # Another playbook that would change one of the same hosts is refused too; so is another --limit.
        other = irx_cli.run("run-gated", "-l", "web1", "-e", f"state_dir={state}", "--yes")
        assert other.rc == 2, other.output
        assert "host web1 is already being changed by playbook run-unreachable" in other.stderr
        # A dry run, which changes nothing, is not held up.
        dry = irx_cli.run("run-gated", "-l", "web1", "-e", f"state_dir={state}", "--dry-run")
        assert dry.rc == 0, dry.output
        assert len(irx_cli.journals()) == 2

        # --force runs (the first is still holding the lock at its gate) and says so.
        forced_gate = tmp_path / "forced-gate"
        forced_gate.touch()
        forced = irx_cli.run("run-unreachable", "--force", *args, "-e", f"gate={forced_gate}")
        assert forced.rc == 0, forced.output
        assert first.poll() is None
    finally:
        gate.touch()
        out, err = first.communicate(timeout=120)
    assert first.returncode == 0, f"{out}\n{err}"
    runs = {read_journal(p).events[0]["run_id"]: p for p in irx_cli.journals()}
    first_journal = read_journal(runs.pop(first_id))
    (forced_journal,) = [j for j in map(read_journal, runs.values()) if j.events[0]["mode"] == "run"]
    check_journal(forced_journal, timeline_validator)
    check_journal(first_journal, timeline_validator)
    assert holder[2] == first_journal.events[0]["operator"]
    assert first_journal.events[0]["forced_lock"] is False
    # run-unreachable changes the test hosts (its mutating step's target), not localhost: one lock each.
    changed = {e["host"]: e["action"] for e in of_type(first_journal, "lock")}
    assert changed == dict.fromkeys(changed, "acquired")
    assert "web1" in changed
    assert forced_journal.events[0]["forced_lock"] is True
    locks = {e["host"]: e for e in of_type(forced_journal, "lock")}
    assert set(locks) == set(changed)
    for lock in locks.values():
        assert lock["action"] == "forced"
        assert lock["holder"]["run_id"] == forced_journal.events[0]["run_id"]
        assert (lock["previous"]["run_id"], lock["previous"]["pid"]) == (first_id, first.pid)
    assert forced_journal.events[-1]["status"] == "verified"
    # Both runs are over: every host lock is free again, and nobody is recorded as holding it.
    for lock in locks.values():
        assert Path(lock["path"]).read_text() == ""
    with HostLocks.acquire(tmp_path / "locks", "check", {"web1": "any"}, "check", "test@here") as lock_now:
        assert not lock_now.forced


# --- secrets -----------------------------------------------------------------------------------------------------


def files_containing(root: Path, needle: bytes) -> list[str]:
    found = []
    for path in [root, *root.rglob("*")]:
        if path.is_file() and not path.is_symlink():
            try:
                if needle in path.read_bytes():
                    found.append(str(path))
            except OSError:
                continue
    return found


def test_secret_never_reaches_the_journal_the_output_or_any_file(
    irx_cli: IrxCli, tmp_path: Path, timeline_validator: Draft202012Validator
) -> None:
    """Also after a run was killed with the secret in flight: the next run sweeps what the dead one left."""
    secret = f"irxS3cr3t{uuid.uuid4().hex}"
    tmp = Path(irx_cli.env["TMPDIR"])  # ansible-runner's private data dir lands here, where we can look
    before = set(glob.glob("/tmp/irx-ansible-*"))
    args = ("run-secret", "-l", ",".join(TWO_HOSTS), "-e", f"api_token={secret}", "--format", "json")

    killed = irx_cli.start(*args)
    try:
        irx_cli.wait_for_event(killed, lambda e: e["type"] == "step_started" and e["step"] == "hang_with_it")
        killed.kill()
        _, err = killed.communicate(timeout=30)
    finally:
        if killed.poll() is None:
            killed.kill()
            killed.communicate()
    assert secret not in err
    assert list(tmp.glob("irx-ansible-*")) != [], "a killed run cannot clean up after itself"

    ran = irx_cli.run(*args)

    summary = json.loads(ran.stdout)
    assert (ran.rc, summary["status"]) == (0, "verified"), ran.output
    assert secret not in ran.stdout
    assert secret not in ran.stderr
    (journal,) = [j for j in map(read_journal, irx_cli.journals()) if j.events[-1]["type"] == "run_finished"]
    assert journal.events[0]["run_id"] == summary["run_id"]
    check_journal(journal, timeline_validator)
    # The secret really reached every host (and would have been written, but for redaction)...
    for step, expected in (("echo_it", "token=******"), ("has_it", "******")):
        assert {h: r["stdout"].strip() for h, r in host_results(journal, step).items()} == dict.fromkeys(
            TWO_HOSTS, expected
        ), step
    assert {h: r["stderr"].strip() for h, r in host_results(journal, "echo_it").items()} == dict.fromkeys(
        TWO_HOSTS, "env=******"
    )
    assert all(r["status"] == "failed" for r in host_results(journal, "fail_with_it").values())
    # The executor refuses a command line that would carry the secret (here from a step's output, which no
    # rule can see), on every host, before anything of it runs.
    assert {h: (r["status"], r["msg"]) for h, r in host_results(journal, "leak_via_output").items()} == dict.fromkeys(
        TWO_HOSTS,
        (
            "failed",
            "refused: command[1] would put a secret on a command line on the host, readable by every user there "
            "(ps); pass it in env: and let the tool read it from its environment",
        ),
    )
    assert all(r["status"] == "timed_out" for r in host_results(journal, "hang_with_it").values())
    assert journal.events[0]["params"] == {"api_token": "******"}
    # ... and is nowhere on disk: journals, lock, Ansible's temp dirs, HOME, ansible-runner's private dirs
    # (this run's and the killed run's).
    assert list(tmp.glob("irx-ansible-*")) == []
    assert files_containing(tmp_path, secret.encode()) == []
    for other in set(glob.glob("/tmp/irx-ansible-*")) - before:  # other runs on this machine, to be sure
        assert files_containing(Path(other), secret.encode()) == [], other

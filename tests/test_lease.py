"""Host leases: the ``irx_lease`` module as a real process, and ``irx.lease.HostLeases`` driving it.

The module runs as Ansible runs it unpipelined (``python MODULE ARGS_FILE``), against real files here, so
these tests exercise the real record, flock and clock logic. ``HostLeases`` is given a runner that runs
that same module for each "host" (one lease file per host in tmp_path): no Ansible, the real answers. The
integration tests (tests/integration/test_host_leases.py) take leases on SSH namespace hosts.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from ansible_modules import module_command
from irx.errors import UsageError
from irx.executors.ansible import MODULE_DIR
from irx.executors.ansible_results import host_result
from irx.executors.base import HostTask
from irx.lease import LEASE_STEP, HostLeases, LeasedRunner, LeaseHost, lease_ttl
from irx.lock import LockHeld
from irx.redact import Redactor
from irx.results import HostResult
from irx.run.leases import lease_hosts
from irx.timeline import Journal, read_journal

MODULE = MODULE_DIR / "irx_lease.py"
SCHEMA = json.loads((Path(__file__).resolve().parents[1] / "schemas" / "timeline.schema.json").read_text())


def lease_module(
    path: Path, action: str, run_id: str, *, ttl: float = 60, force: bool = False, **holder: Any
) -> dict[str, Any]:
    args = {"action": action, "path": str(path), "run_id": run_id, "ttl": ttl, "force": force,
            "holder": {"operator": f"op-{run_id}@cn", "playbook": "pb", "pid": 1, **holder}}  # fmt: skip
    with tempfile.NamedTemporaryFile("w", suffix=".json") as args_file:  # not beside the lease: its dir may not exist
        json.dump({"ANSIBLE_MODULE_ARGS": args}, args_file)
        args_file.flush()
        proc = subprocess.run(
            module_command(MODULE, args_file.name), capture_output=True, text=True, timeout=60, check=False
        )
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


def test_a_live_lease_is_held_and_only_force_takes_it(tmp_path: Path) -> None:
    path = tmp_path / "var" / "lib" / "irx" / "lease.json"  # the directory is made
    first = lease_module(path, "acquire", "run-a")
    assert (first["outcome"], first["changed"]) == ("acquired", True)
    record = json.loads(path.read_text())
    assert record["run_id"] == "run-a"
    assert record["operator"] == "op-run-a@cn"
    assert record["expires_at"] - time.time() == pytest.approx(60, abs=5)

    second = lease_module(path, "acquire", "run-b")
    assert second["outcome"] == "held"
    assert second["current"]["run_id"] == "run-a"
    assert json.loads(path.read_text())["run_id"] == "run-a"  # untouched

    forced = lease_module(path, "acquire", "run-b", force=True)
    assert forced["outcome"] == "forced"
    assert forced["current"]["run_id"] == "run-a"  # whom it displaced
    assert json.loads(path.read_text())["run_id"] == "run-b"

    lost = lease_module(path, "renew", "run-a")
    assert lost["outcome"] == "lost"
    assert lost["current"]["run_id"] == "run-b"
    not_ours = lease_module(path, "release", "run-a")
    assert (not_ours["outcome"], not_ours["changed"]) == ("not_ours", False)
    assert json.loads(path.read_text())["run_id"] == "run-b"
    released = lease_module(path, "release", "run-b")
    assert released["outcome"] == "released"
    assert path.read_text() == ""


def test_an_expired_lease_is_taken_and_a_renewal_extends_it(tmp_path: Path) -> None:
    path = tmp_path / "lease.json"
    lease_module(path, "acquire", "dead-run", ttl=1)  # a run that died without releasing
    time.sleep(1.2)
    stale = lease_module(path, "acquire", "run-b", ttl=30)
    assert stale["outcome"] == "stale"
    assert stale["current"]["run_id"] == "dead-run"
    before = json.loads(path.read_text())
    time.sleep(0.05)
    renewed = lease_module(path, "renew", "run-b", ttl=30)
    assert renewed["outcome"] == "renewed"
    after = json.loads(path.read_text())
    assert after["expires_at"] > before["expires_at"]
    assert after["since"] == before["since"]  # the same lease, renewed
    lease_module(path, "release", "run-b")
    again = lease_module(path, "renew", "run-b", ttl=30)  # released meanwhile, nobody else holds it
    assert again["outcome"] == "reacquired"


def test_of_many_simultaneous_acquirers_exactly_one_wins(tmp_path: Path) -> None:
    path = tmp_path / "lease.json"
    with ThreadPoolExecutor(12) as pool:
        outcomes = list(pool.map(lambda i: lease_module(path, "acquire", f"run-{i}")["outcome"], range(12)))
    assert sorted(outcomes) == ["acquired"] + ["held"] * 11


@pytest.mark.parametrize("content", ["root:x:0:0:root:/root:/bin/bash\n", "[1, 2]", '{"no": "run id"}', "\x00\xff"])
def test_a_lease_path_that_names_another_file_never_overwrites_it(tmp_path: Path, content: str) -> None:
    other = tmp_path / "passwd"  # irx_lease_file is an inventory value: data, never a way to clobber a file
    other.write_text(content, errors="surrogateescape")
    before = other.read_bytes()
    for action, force in (("acquire", False), ("acquire", True), ("renew", False), ("release", False)):
        result = lease_module(other, action, "run-a", force=force)
        assert result.get("failed") is True, result
        assert "refusing to overwrite it (check irx_lease_file)" in result["msg"]
    assert other.read_bytes() == before
    device = lease_module(Path("/dev/null"), "acquire", "run-a")
    assert "is not a regular file" in device["msg"]


def test_a_planted_symlink_is_never_followed_and_a_relative_path_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.write_text("keep me")
    link = tmp_path / "lease.json"
    link.symlink_to(target)
    result = lease_module(link, "acquire", "run-a")
    assert result.get("failed") is True
    assert "cannot open the lease file" in result["msg"]
    assert target.read_text() == "keep me"
    relative = lease_module(Path("lease.json"), "acquire", "run-a")
    assert relative.get("failed") is True
    assert "absolute path" in relative["msg"]


# --- HostLeases, driving the real module ---------------------------------------------------------------------


class ModuleRunner:
    """Runs each task's real ``irx_command`` module, with the module arguments irx's Ansible session sends
    (``irx.executors.ansible._task``), on this machine: a lease's own task, and a step's task with a lease
    riding on it, write the host's lease file for real. ``down`` hosts answer unreachable."""

    def __init__(self) -> None:
        self.down: set[str] = set()
        self.batches: list[list[str]] = []  # lease tasks as "action:host", step tasks as "step:host[+action]"
        self.lease_rounds = 0  # batches that held a lease's own task: what riding saves

    def __call__(self, tasks: Sequence[HostTask]) -> Mapping[str, HostResult]:
        return self.run(tasks)

    def run(self, tasks: Sequence[HostTask]) -> dict[str, HostResult]:
        from irx.executors.ansible import _task

        self.batches.append([_label(t, h) for t in tasks for h in t.hosts])
        self.lease_rounds += any(t.step_id == LEASE_STEP for t in tasks)
        results: dict[str, HostResult] = {}
        for index, task in enumerate(tasks):
            assert (task.step_id == LEASE_STEP) == (task.action == "lease")
            args = json.loads(json.dumps(_task(task, index)["irx_command"]))
            for host in task.hosts:
                if host in self.down:
                    results[host] = HostResult(host, "unreachable", msg="ssh: connect timed out")
                    continue
                results[host] = host_result(host, run_irx_command(args), 0.01)
        return results


def _label(task: HostTask, host: str) -> str:
    if task.step_id == LEASE_STEP:
        return f"{(task.lease or {})['action']}:{host}"
    return f"{task.step_id}:{host}" + (f"+{task.lease['action']}" if task.lease else "")


def run_irx_command(args: Mapping[str, Any]) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile("w", suffix=".json") as args_file:
        json.dump({"ANSIBLE_MODULE_ARGS": args}, args_file)
        args_file.flush()
        command = module_command(MODULE_DIR / "irx_command.py", args_file.name)
        proc = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def leases_for(tmp_path: Path, run_id: str, runner: ModuleRunner, journal: Journal, clock: Clock | None = None,
               ttl: float = 60) -> HostLeases:  # fmt: skip
    hosts = [LeaseHost(name, str(tmp_path / name / "lease.json"), become=False) for name in ("web1", "db1")]
    return HostLeases(
        hosts,
        run_id,
        {"operator": f"{run_id}@cn", "playbook": "pb", "control_node": "cn", "pid": 7},
        ttl,
        runner,
        journal.record,
        **({"clock": clock} if clock else {}),
    )


@pytest.fixture
def journal(tmp_path: Path) -> Journal:
    return Journal.create(tmp_path / "runs", "20261202T100000Z-abcdef", Redactor())


def valid_events(journal: Journal) -> list[dict[str, Any]]:
    journal.close()
    events = read_journal(journal.path).events
    validator = Draft202012Validator(SCHEMA)
    for event in events:
        assert list(validator.iter_errors(event)) == [], event
    return events


def test_a_second_run_is_refused_naming_the_holder_and_the_first_runs_on(tmp_path: Path, journal: Journal) -> None:
    for name in ("web1", "db1"):
        (tmp_path / name).mkdir()
    runner = ModuleRunner()
    first = leases_for(tmp_path, "run-a", runner, journal)
    assert first.acquire(force=False) == []
    second = leases_for(tmp_path, "run-b", runner, journal)
    with pytest.raises(LockHeld) as refused:
        second.acquire(force=False)
    message = str(refused.value)
    assert message.startswith(
        "host web1 is already being changed by playbook pb, run by run-a@cn (run run-a, pid 7, since "
    )
    assert "its lease on the host runs until " in message
    assert message.endswith("use --force to override")
    assert json.loads((tmp_path / "db1" / "lease.json").read_text())["run_id"] == "run-a"  # nothing taken

    forced = leases_for(tmp_path, "run-b", runner, journal)
    forced.acquire(force=True)
    first.renew()  # the keepalive: web1 and db1 are now run-b's
    assert set(first.lost) == {"web1", "db1"}
    task = HostTask("restart", ["web1", "db1"], "shell", "true")
    allowed, refused_now = first.admit([task], lambda step: step == "restart")
    assert allowed == []
    assert refused_now["web1"].msg == "not changed: its lease was taken by run run-b of run-b@cn"
    read_only = HostTask("probe", ["web1"], "shell", "true")
    assert first.admit([read_only], lambda step: step == "restart") == ([read_only], {})
    first.release()
    assert json.loads((tmp_path / "web1" / "lease.json").read_text())["run_id"] == "run-b"
    forced.release()
    assert (tmp_path / "web1" / "lease.json").read_text() == ""

    events = valid_events(journal)
    actions = [(e["host"], e["action"]) for e in events if "host" in e]
    assert actions == [
        ("web1", "acquired"), ("db1", "acquired"),
        ("web1", "forced"), ("db1", "forced"),
        ("web1", "lost"), ("db1", "lost"),
        ("web1", "released"), ("db1", "released"),
    ]  # fmt: skip
    assert events[2]["previous"]["run_id"] == "run-a"
    assert events[4]["holder"]["run_id"] == "run-b"


def test_a_lease_near_its_end_is_renewed_before_a_mutating_batch(tmp_path: Path, journal: Journal) -> None:
    runner, clock = ModuleRunner(), Clock()
    leases = leases_for(tmp_path, "run-a", runner, journal, clock)
    leases.acquire(force=False)
    task = HostTask("restart", ["web1", "db1"], "shell", "true")
    assert leases.admit([task], lambda step: True) == ([task], {})
    assert len(runner.batches) == 1  # fresh: no renewal
    clock.now += 50  # 10 of 60 s left: under the margin
    assert leases.admit([task], lambda step: True) == ([task], {})
    assert sorted(runner.batches[-1]) == ["renew:db1", "renew:web1"]


def test_an_unreachable_host_loses_its_lease_only_once_it_ran_out(tmp_path: Path, journal: Journal) -> None:
    runner, clock = ModuleRunner(), Clock()
    leases = leases_for(tmp_path, "run-a", runner, journal, clock)
    runner.down.add("db1")
    assert leases.acquire(force=False) == ["db1"]  # never taken: db1 is not changed by this run
    assert "db1" in leases.lost
    runner.down = {"web1"}
    clock.now += 30
    leases.renew()
    assert "web1" not in leases.lost  # still inside its ttl
    clock.now += 31
    leases.renew()
    assert leases.lost["web1"].startswith("its lease ran out while it could not be renewed")
    events = valid_events(journal)
    assert [e["action"] for e in events if e.get("host") == "web1"] == ["acquired", "expired"]


def test_the_keepalive_renews_while_the_run_waits(tmp_path: Path, journal: Journal) -> None:
    runner = ModuleRunner()
    leases = leases_for(tmp_path, "run-a", runner, journal, ttl=3)
    leases.acquire(force=False)

    def expires() -> float:
        return float(json.loads((tmp_path / "web1" / "lease.json").read_text() or "{}").get("expires_at", 0))

    first = expires()
    leases.start_keepalive()  # every ttl/3 = 1 s
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and expires() <= first:
        time.sleep(0.1)
    assert expires() > first
    leases.release()
    assert not any(t.name == "irx-lease" for t in threading.enumerate())
    assert (tmp_path / "web1" / "lease.json").read_text() == ""


def test_ttl_and_lease_files_are_checked(tmp_path: Path) -> None:
    assert lease_ttl({}, 0) == 900
    assert lease_ttl({"IRX_LEASE_TTL": "30"}, 0) == 30
    assert lease_ttl({"IRX_LEASE_TTL": "30"}, 120) == 300  # twice the longest step, plus a minute
    for bad in ("soon", "0", "nan", "-5"):
        with pytest.raises(UsageError, match="IRX_LEASE_TTL"):
            lease_ttl({"IRX_LEASE_TTL": bad}, 0)

    class Inv:
        def __init__(self, value: Any) -> None:
            self.vars = {} if value is None else {"irx_lease_file": value}

        def host_vars(self, host: str) -> dict[str, Any]:
            return self.vars

        def value(self, host: str, name: str) -> Any:
            return self.vars[name]

    (lease,) = lease_hosts({"web1": "10.0.0.1", "me": "local"}, Inv(None), {"web1": True})
    assert lease == LeaseHost("web1", "/var/lib/irx/lease.json", become=True)
    assert lease_hosts({"web1": "10.0.0.1"}, Inv("/srv/irx/lease"), {})[0].path == "/srv/irx/lease"
    with pytest.raises(UsageError, match="irx_lease_file must be an absolute path"):
        lease_hosts({"web1": "10.0.0.1"}, Inv("lease.json"), {})
    assert os.path.isabs(lease.path)


class Recording:
    """A host runner that records the batches it was given and answers ok."""

    def __init__(self) -> None:
        self.batches: list[list[tuple[str, tuple[str, ...]]]] = []

    def run(self, tasks: Sequence[HostTask]) -> dict[str, HostResult]:
        self.batches.append([(t.step_id, tuple(t.hosts)) for t in tasks])
        return {h: HostResult(h, "ok") for t in tasks for h in t.hosts}


def test_the_leased_runner_sends_a_mutating_task_only_to_hosts_that_hold_their_lease(
    tmp_path: Path, journal: Journal
) -> None:
    runner = ModuleRunner()
    leases = leases_for(tmp_path, "run-a", runner, journal)
    runner.down.add("db1")
    assert leases.acquire(force=False) == ["db1"]
    steps = Recording()
    leased = LeasedRunner(steps, leases, lambda step: step == "restart")
    results = leased.run([HostTask("restart", ["web1", "db1"], "shell", "true")])
    assert steps.batches == [[("restart", ("web1",))]]
    assert results["web1"].status == "ok"
    assert results["db1"].status == "unreachable"  # as it was when its lease was to be taken
    assert results["db1"].msg.startswith("not changed: its lease could not be taken: unreachable")
    results = leased.run([HostTask("probe", ["web1", "db1"], "shell", "true")])  # not mutating: both run
    assert steps.batches[-1] == [("probe", ("web1", "db1"))]
    assert set(results) == {"web1", "db1"}
    leased.run([HostTask("restart", ["db1"], "shell", "true")])
    assert len(steps.batches) == 2  # nothing left to send: the runner is not called


def test_the_leases_are_taken_by_the_first_mutating_batch_once_and_a_read_only_run_takes_none(
    tmp_path: Path, journal: Journal
) -> None:
    for name in ("web1", "db1"):
        (tmp_path / name).mkdir()
    runner = ModuleRunner()
    leases = leases_for(tmp_path, "run-a", runner, journal)
    steps = Recording()
    leased = LeasedRunner(steps, leases, lambda step: step == "restart", lambda: leases.ensure(force=False))
    leased.run([HostTask("probe", ["web1", "db1"], "shell", "true")])
    assert runner.batches == []  # a diagnosis neither waits for the leases nor takes them
    leased.run([HostTask("restart", ["web1", "db1"], "shell", "true")])
    leased.run([HostTask("restart", ["web1"], "shell", "true")])
    assert runner.batches == [["acquire:web1", "acquire:db1"]]  # taken once, for every host at once
    assert json.loads((tmp_path / "db1" / "lease.json").read_text())["run_id"] == "run-a"
    leases.release()
    assert runner.batches[-1] == ["release:web1", "release:db1"]

    unused = leases_for(tmp_path, "run-b", runner, journal)
    unused.release()  # never taken: nothing to release, no round to the hosts
    assert len(runner.batches) == 2


def test_a_host_down_when_the_leases_are_taken_is_left_out_of_every_later_step(
    tmp_path: Path, journal: Journal
) -> None:
    from irx.run.leases import taker

    (tmp_path / "web1").mkdir()
    runner = ModuleRunner()
    runner.down.add("db1")
    leases = leases_for(tmp_path, "run-a", runner, journal)
    unreachable: dict[str, str] = {}  # the orchestrator's map of hosts no step is sent to
    notes: list[str] = []
    take = taker(leases, False, notes.append, unreachable)
    take()
    take()  # once only
    assert list(unreachable) == ["db1"]
    assert unreachable["db1"] == "its lease could not be taken: unreachable (ssh: connect timed out)"
    assert notes == [f"✗ db1 will not be changed: {unreachable['db1']}"]
    assert runner.batches == [["acquire:web1", "acquire:db1"]]


# --- the leases riding on the steps' own tasks ---------------------------------------------------------------


def riding_runner(leases: HostLeases, runner: ModuleRunner, journal: Journal) -> LeasedRunner:
    """probe (read-only) comes just before the first change (restart); check is the run's last step."""
    return LeasedRunner(
        runner, leases, lambda step: step in ("restart", "check"), lambda: leases.ensure(force=False),
        ahead=("probe", False), behind="check",
    )  # fmt: skip


def lease_of(tmp_path: Path, host: str) -> str | None:
    text = (tmp_path / host / "lease.json").read_text()
    return json.loads(text)["run_id"] if text else None


def test_the_leases_ride_on_the_step_before_the_first_change_and_their_release_on_the_last(
    tmp_path: Path, journal: Journal
) -> None:
    for name in ("web1", "db1"):
        (tmp_path / name).mkdir()
    runner = ModuleRunner()
    leases = leases_for(tmp_path, "run-a", runner, journal)
    leased = riding_runner(leases, runner, journal)
    probe = leased.run([HostTask("probe", ["web1", "db1"], "shell", "echo probed")])
    assert runner.batches == [["probe:web1+acquire", "probe:db1+acquire"]]  # one task per host, its lease on it
    assert {h: (r.status, r.stdout.strip(), "lease" in r.extra) for h, r in probe.items()} == {
        "web1": ("ok", "probed", False), "db1": ("ok", "probed", False)  # the step's own result, nothing more
    }  # fmt: skip
    assert lease_of(tmp_path, "web1") == lease_of(tmp_path, "db1") == "run-a"  # taken on the hosts already
    leased.run([HostTask("restart", ["web1", "db1"], "shell", "true")])
    assert runner.batches[-1] == ["restart:web1", "restart:db1"]
    # The last step: on each host its command first, then the release, in the same module run. The command
    # still sees its host's lease.
    check = leased.run([HostTask("check", [h], "shell", f"cat {tmp_path}/{h}/lease.json") for h in ("web1", "db1")])
    assert runner.batches[-1] == ["check:web1+release", "check:db1+release"]
    assert [json.loads(r.stdout)["run_id"] for r in check.values()] == ["run-a", "run-a"]
    assert lease_of(tmp_path, "web1") is None
    assert lease_of(tmp_path, "db1") is None
    leases.release()  # nothing left to give back: no round
    assert runner.lease_rounds == 0  # no task of the leases' own, from the first change to the end
    actions = [(e["host"], e["action"]) for e in valid_events(journal) if e.get("type") == "lease"]
    assert actions == [("web1", "acquired"), ("db1", "acquired"), ("web1", "released"), ("db1", "released")]


def test_a_lease_held_when_asked_ahead_is_asked_again_at_the_first_change(tmp_path: Path, journal: Journal) -> None:
    for name in ("web1", "db1"):
        (tmp_path / name).mkdir()
    runner = ModuleRunner()
    other = leases_for(tmp_path, "run-b", runner, journal)
    other.hosts = {"db1": other.hosts["db1"]}
    assert other.acquire(force=False) == []
    leases = leases_for(tmp_path, "run-a", runner, journal)
    leased = riding_runner(leases, runner, journal)
    leased.run([HostTask("probe", ["web1", "db1"], "shell", "true")])
    assert (lease_of(tmp_path, "web1"), lease_of(tmp_path, "db1")) == ("run-a", "run-b")
    other.release()  # run-b finished while run-a diagnosed
    leased.run([HostTask("restart", ["web1", "db1"], "shell", "true")])
    assert runner.batches[-2:] == [["acquire:db1"], ["restart:web1", "restart:db1"]]  # only db1 asked again
    assert lease_of(tmp_path, "db1") == "run-a"
    leases.release()


def test_a_lease_still_held_at_the_first_change_refuses_the_run_and_gives_back_what_it_took(
    tmp_path: Path, journal: Journal
) -> None:
    for name in ("web1", "db1"):
        (tmp_path / name).mkdir()
    runner = ModuleRunner()
    other = leases_for(tmp_path, "run-b", runner, journal)
    other.hosts = {"db1": other.hosts["db1"]}
    other.acquire(force=False)
    leases = leases_for(tmp_path, "run-a", runner, journal)
    leased = riding_runner(leases, runner, journal)
    leased.run([HostTask("probe", ["web1", "db1"], "shell", "true")])
    with pytest.raises(LockHeld, match="host db1 is already being changed by playbook pb, run by run-b@cn"):
        leased.run([HostTask("restart", ["web1", "db1"], "shell", "true")])
    assert not any(label.startswith("restart") for batch in runner.batches for label in batch)  # nothing changed
    assert (lease_of(tmp_path, "web1"), lease_of(tmp_path, "db1")) == (None, "run-b")


def test_leases_taken_ahead_of_a_change_that_never_came_are_recorded_and_given_back(
    tmp_path: Path, journal: Journal
) -> None:
    for name in ("web1", "db1"):
        (tmp_path / name).mkdir()
    runner = ModuleRunner()
    leases = leases_for(tmp_path, "run-a", runner, journal)
    leased = riding_runner(leases, runner, journal)
    leased.run([HostTask("probe", ["web1", "db1"], "shell", "true")])
    leases.release()  # the run ended after its diagnosis (its mitigations' when: was false)
    assert runner.batches[-1] == ["release:web1", "release:db1"]
    assert lease_of(tmp_path, "web1") is None
    assert lease_of(tmp_path, "db1") is None
    actions = [(e["host"], e["action"]) for e in valid_events(journal) if e.get("type") == "lease"]
    assert actions == [("web1", "acquired"), ("db1", "acquired"), ("web1", "released"), ("db1", "released")]


def test_a_lease_rides_only_where_it_is_written_as_the_task_runs(tmp_path: Path, journal: Journal) -> None:
    hosts = [LeaseHost("web1", "/x/web1.json", become=True), LeaseHost("db1", "/x/db1.json", become=False)]
    leases = HostLeases(hosts, "run-a", {}, 60, ModuleRunner(), journal.record)
    tasks = [HostTask("probe", ["web1", "db1", "app9"], "shell", "true")]
    ridden = leases.ahead(tasks, force=False)
    assert [(t.hosts, t.lease is not None) for t in ridden] == [(["web1", "app9"], False), (["db1"], True)]
    assert leases.ahead(tasks, force=False) == tasks  # once
    module_step = [HostTask("look", ["db1"], "module", "ping")]
    other = HostLeases(hosts, "run-b", {}, 60, ModuleRunner(), journal.record)
    assert other.ahead(module_step, force=False) == module_step  # only irx_command carries a lease


def test_which_steps_carry_the_leases(tmp_path: Path) -> None:
    from irx.loader import load_playbook
    from irx.run.leases import last_step, step_before_first_change

    def playbook(text: str) -> Any:
        head = "apiVersion: irx/v1\nkind: Playbook\nmetadata: {name: pick-steps, title: Lease steps, severity: SEV3}\n"
        path = tmp_path / "p.yaml"
        path.write_text(head + "targets: {all: {hosts: all}}\n" + text)
        return load_playbook(path)

    shown = playbook(
        "diagnose:\n  - {id: a, on: all, shell: 'true'}\n  - {id: b, on: all, shell: 'true'}\n"
        "mitigate:\n  - {id: fix, on: all, shell: 'true'}\n"
        "verify:\n  - {id: check, on: all, shell: 'true'}\n"
    )
    assert (step_before_first_change(shown), last_step(shown)) == ("b", "check")
    retried = playbook(
        "mitigate:\n  - {id: fix, on: all, shell: 'true'}\n"
        "verify:\n  - {id: check, on: all, shell: 'true', retries: 3, until: steps.check.ok}\n"
    )
    assert (step_before_first_change(retried), last_step(retried)) == (None, None)  # a retry would run unleased
    rolled = playbook(
        "diagnose:\n  - {id: a, on: all, http: {url: 'http://127.0.0.1/'}}\n"
        "mitigate:\n  - {id: fix, on: all, shell: 'true'}\n"
        "rollback:\n  - {id: undo, on: all, shell: 'true'}\n"
    )
    assert (step_before_first_change(rolled), last_step(rolled)) == (None, None)  # http; a rollback may follow

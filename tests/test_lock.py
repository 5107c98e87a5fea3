"""The run lock: one mutating run per playbook and host set, held by real processes, freed by their death."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from irx.errors import ExitCode
from irx.lock import HostLocks, LockHeld, LockHolder, RunLock, default_lock_dir, lock_key, lock_path

HOSTS = ["db2", "db1", "db3"]

# Run in a subprocess: take the lock, say so, hold it until stdin closes (or the process is killed).
HOLDER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from irx.lock import RunLock

    lock = RunLock.acquire(Path(sys.argv[1]), "db-pool-exhausted", ["db1", "db2", "db3"],
                           "20261122T110944Z-0ther0", "bob@oncall-2")
    print("locked", flush=True)
    sys.stdin.read()
    lock.release()
    print("released", flush=True)
    """
)


@pytest.fixture
def lock_dir(tmp_path: Path) -> Path:
    return tmp_path / "locks"


@pytest.fixture
def other_holder(lock_dir: Path) -> Iterator[subprocess.Popen[str]]:
    process = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(lock_dir)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stdin is not None
    try:
        assert process.stdout.readline() == "locked\n"
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)
        process.stdin.close()
        process.stdout.close()


def acquire(lock_dir: Path, hosts: list[str] = HOSTS, *, force: bool = False) -> RunLock:
    return RunLock.acquire(lock_dir, "db-pool-exhausted", hosts, "20261122T111000Z-m1ne00", "alice@laptop", force)


def test_acquire_records_the_holder_and_release_clears_it(lock_dir: Path) -> None:
    lock = acquire(lock_dir)
    assert lock.held
    assert not lock.forced
    assert lock.previous is None
    assert lock.stale is None
    assert lock.path == lock_path(lock_dir, "db-pool-exhausted", HOSTS)
    record = json.loads(lock.path.read_text())
    assert record == {
        "run_id": "20261122T111000Z-m1ne00",
        "operator": "alice@laptop",
        "pid": os.getpid(),
        "started": lock.holder.started,
        "playbook": "db-pool-exhausted",
        "hosts": ["db1", "db2", "db3"],
    }
    lock.release()
    lock.release()  # idempotent
    assert not lock.held
    assert lock.path.read_text() == ""
    acquire(lock_dir).release()  # free again


def test_the_key_ignores_host_order_and_duplicates() -> None:
    assert lock_key("p", ["b", "a", "b"]) == lock_key("p", ["a", "b"]) == '{"playbook":"p","hosts":["a","b"]}'
    assert lock_path(Path("/l"), "p", ["a"]) != lock_path(Path("/l"), "p", ["a", "b"])
    assert lock_path(Path("/l"), "p", ["a"]) != lock_path(Path("/l"), "q", ["a"])
    assert re.fullmatch(r"[0-9a-f]{64}\.lock", lock_path(Path("/l"), "p", ["a"]).name)


def test_a_second_run_is_refused_naming_the_holder(lock_dir: Path, other_holder: subprocess.Popen[str]) -> None:
    with pytest.raises(LockHeld) as caught:
        acquire(lock_dir, ["db3", "db1", "db2"])
    holder = caught.value.holder
    assert str(caught.value) == (
        "playbook db-pool-exhausted on 3 hosts is already being run by bob@oncall-2 "
        f"(run 20261122T110944Z-0ther0, pid {other_holder.pid}, since {holder.started}); "
        "use --force to override"
    )
    assert caught.value.exit_code == ExitCode.USAGE
    # Another host set, or another playbook, is not locked.
    acquire(lock_dir, ["db1"]).release()
    RunLock.acquire(lock_dir, "redis-oom", HOSTS, "r", "alice@laptop").release()


def test_release_by_the_holder_frees_the_lock(lock_dir: Path, other_holder: subprocess.Popen[str]) -> None:
    assert other_holder.stdin is not None
    assert other_holder.stdout is not None
    other_holder.stdin.close()
    assert other_holder.stdout.readline() == "released\n"
    lock = acquire(lock_dir)
    assert lock.stale is None  # a clean release leaves no record behind
    lock.release()


def test_kill_9_of_the_holder_frees_the_lock(lock_dir: Path, other_holder: subprocess.Popen[str]) -> None:
    os.kill(other_holder.pid, signal.SIGKILL)
    other_holder.wait(timeout=10)
    lock = acquire(lock_dir)
    assert lock.held
    assert not lock.forced
    # The dead run's record was still in the file: reported, so the timeline can say who died holding it.
    assert lock.stale is not None
    assert (lock.stale.run_id, lock.stale.pid) == ("20261122T110944Z-0ther0", other_holder.pid)
    lock.release()


def test_force_takes_over_and_says_from_whom(lock_dir: Path, other_holder: subprocess.Popen[str]) -> None:
    lock = acquire(lock_dir, force=True)
    assert lock.forced
    assert lock.previous is not None
    assert (lock.previous.operator, lock.previous.pid) == ("bob@oncall-2", other_holder.pid)
    # The forcing run now holds the lock: a third run is refused naming it, not the displaced one.
    with pytest.raises(LockHeld, match=r"already being run by alice@laptop \(run 20261122T111000Z-m1ne00"):
        RunLock.acquire(lock_dir, "db-pool-exhausted", HOSTS, "third", "carol@x")
    # The displaced holder releasing its (now orphaned) lock does not free the forcing run's lock.
    assert other_holder.stdin is not None
    assert other_holder.stdout is not None
    other_holder.stdin.close()
    assert other_holder.stdout.readline() == "released\n"
    with pytest.raises(LockHeld):
        RunLock.acquire(lock_dir, "db-pool-exhausted", HOSTS, "third", "carol@x")
    lock.release()
    RunLock.acquire(lock_dir, "db-pool-exhausted", HOSTS, "third", "carol@x").release()
    assert not list(lock_dir.glob(".force-*"))


def test_force_on_a_free_lock_is_a_plain_acquire(lock_dir: Path) -> None:
    with acquire(lock_dir, force=True) as lock:
        assert not lock.forced
        assert lock.previous is None


def test_context_manager_releases(lock_dir: Path) -> None:
    with acquire(lock_dir) as lock, pytest.raises(LockHeld, match="on 3 hosts"):
        acquire(lock_dir)  # a second open file description conflicts even in one process
    assert not lock.held
    acquire(lock_dir).release()


def test_singular_host_in_the_message(lock_dir: Path) -> None:
    with acquire(lock_dir, ["db1"]), pytest.raises(LockHeld, match="on 1 host is already"):
        acquire(lock_dir, ["db1"])


def test_unreadable_holder_record_is_still_refused(lock_dir: Path) -> None:
    with acquire(lock_dir) as lock:
        lock.path.write_text("not json")
        with pytest.raises(LockHeld, match="already being run by an unknown operator"):
            acquire(lock_dir)


def test_holder_record_round_trip() -> None:
    holder = LockHolder("r", "a@b", 12, "2026-11-22T11:09:44.000000Z", "p", ("h1", "h2"))
    assert LockHolder.from_text(json.dumps(holder.to_dict())) == holder
    assert LockHolder.from_text("") is None
    assert LockHolder.from_text('{"run_id": "r"}') is None


def test_an_unusable_lock_dir_is_a_usage_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    from irx.errors import UsageError

    with pytest.raises(UsageError, match="cannot take the run lock"):
        acquire(blocker / "locks")


def test_default_lock_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("IRX_LOCK_DIR", str(tmp_path))
    assert default_lock_dir() == tmp_path


def test_lock_events_for_the_timeline_match_its_schema(
    lock_dir: Path, tmp_path: Path, other_holder: subprocess.Popen[str]
) -> None:
    from jsonschema import Draft202012Validator

    from irx.redact import Redactor
    from irx.timeline import Journal, read_journal

    schema = json.loads((Path(__file__).resolve().parents[1] / "schemas" / "timeline.schema.json").read_text())
    with Journal.create(tmp_path / "runs", "r1", Redactor()) as journal:
        forced = acquire(lock_dir, force=True)
        journal.record(forced.lock_event())
        journal.record(forced.lock_event(released=True))
        forced.release()
        os.kill(other_holder.pid, signal.SIGKILL)
        other_holder.wait(timeout=10)
        plain = acquire(lock_dir, ["db1"])
        journal.record(plain.lock_event())
        plain.release()
    events = read_journal(journal.path).events
    assert [(event["action"], "previous" in event) for event in events] == [
        ("forced", True),
        ("released", False),
        ("acquired", False),
    ]
    assert events[0]["previous"]["operator"] == "bob@oncall-2"
    assert events[0]["holder"]["operator"] == "alice@laptop"
    for event in events:
        Draft202012Validator(schema).validate(event)


# --- host locks: one mutating run per host, whatever the playbook ---------------------------------------------

HOST_HOLDER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from irx.lock import HostLocks

    locks = HostLocks.acquire(Path(sys.argv[1]), "redis-cache-failure", {"db2": "10.0.0.2", "cache1": "10.0.0.9"},
                              "20261122T110944Z-0ther0", "bob@oncall-2")
    print("locked", flush=True)
    sys.stdin.read()
    """
)


def host_locks(
    lock_dir: Path, hosts: dict[str, str], playbook: str = "db-pool-exhausted", *, force: bool = False
) -> HostLocks:
    return HostLocks.acquire(lock_dir, playbook, hosts, "20261122T111000Z-m1ne00", "alice@laptop", force)


def test_another_playbook_or_limit_on_a_held_host_is_refused_naming_the_host(lock_dir: Path) -> None:
    with host_locks(lock_dir, {"db1": "10.0.0.1", "db2": "10.0.0.2"}, "db-pool-exhausted"):
        # another playbook, another host set that shares db2 (another --limit): refused, naming db2's holder
        with pytest.raises(LockHeld) as caught:
            host_locks(lock_dir, {"db2": "10.0.0.2", "db3": "10.0.0.3"}, "slow-responses")
        assert str(caught.value) == (
            "host db2 is already being changed by playbook db-pool-exhausted, run by alice@laptop "
            f"(run 20261122T111000Z-m1ne00, pid {os.getpid()}, since {caught.value.holder.started}); "
            "use --force to override"
        )
        # all or none: db3 was not left locked by the refused run
        with host_locks(lock_dir, {"db3": "10.0.0.3"}, "slow-responses"):
            pass
        # the same machine under another inventory name is the same host
        with pytest.raises(LockHeld, match="host db-primary is already being changed"):
            host_locks(lock_dir, {"db-primary": "10.0.0.1"}, "slow-responses")


def test_a_host_lock_across_processes_dies_with_its_holder_and_force_takes_it_over(lock_dir: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOST_HOLDER, str(lock_dir)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None
    try:
        assert holder.stdout.readline() == "locked\n"
        with pytest.raises(LockHeld, match=r"host db2 .* playbook redis-cache-failure, run by bob@oncall-2"):
            host_locks(lock_dir, {"db2": "10.0.0.2"})
        with host_locks(lock_dir, {"db2": "10.0.0.2", "db1": "10.0.0.1"}, force=True) as forced:
            assert forced.forced
            fields = {e.host: e.fields() for e in forced.lock_events()}
            assert fields["db2"]["action"] == "forced"
            assert fields["db2"]["previous"]["run_id"] == "20261122T110944Z-0ther0"
            assert fields["db1"]["action"] == "acquired"
    finally:
        holder.kill()
        holder.wait(timeout=10)
        holder.stdin.close()  # type: ignore[union-attr]
        holder.stdout.close()
    # killed (-9): the kernel dropped its flock on cache1; the record it left says who it was
    with host_locks(lock_dir, {"cache1": "10.0.0.9"}) as taken:
        (recorded,) = (e.fields() for e in taken.lock_events())
        assert recorded["stale"]["operator"] == "bob@oncall-2"


def test_the_default_lock_dir_does_not_depend_on_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("IRX_LOCK_DIR", raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.chdir(tmp_path)
    here = default_lock_dir()
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert default_lock_dir() == here == tmp_path / "state" / "irx" / "locks"
    monkeypatch.delenv("XDG_STATE_HOME")
    assert default_lock_dir() == Path.home() / ".local" / "state" / "irx" / "locks"

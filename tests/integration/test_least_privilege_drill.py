"""The flagship drill as a least-privilege operator: irx logs in over SSH as a real non-root account whose
sudo asks for a password, fixes a really exhausted PostgreSQL pool, and the sudo password never shows.

Two namespace hosts: ``lpdb`` (the ``dbservers`` group: psql runs there, as the unprivileged account) and
``lpapp`` (the ``app`` group: ``restart_app`` declares ``become: true``, so irx writes the host lease there
with sudo, and so really uses the become password even though the restart itself is skipped). A real
PostgreSQL (max_connections=20) listens on the hosts' bridge and asks TCP clients for scram passwords;
``leaky_app.py`` (the drill's application) takes every slot the ``app`` role may have and keeps one query
stuck. ``irx run db-pool-exhausted`` gets the become password from a 0600 file (``--become-password-file``)
and the DBA role's password from the environment (``PGPASSWORD``, pg_password's env).

Proved: without the become password the run is refused plainly at its first change (its diagnosis ran,
nothing was changed); with it the pool
recovers (terminate_idle and terminate_long_running on lpdb, a new ``app`` connection succeeds), the
journal is whole and valid with both leases taken and released; psql ran on lpdb as the unprivileged uid,
sudo ran on lpapp and never on lpdb; while the run lived, no process on the machine had the become password
(or the DBA's) in its argv, and afterwards no file the run left holds it, except the operator's own file.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg
import pytest
import yaml
from journal_checks import check_journal, host_results, of_type
from jsonschema import Draft202012Validator
from psycopg import sql
from test_secret_canary import ArgvSampler, admin, left_behind_roots, needles, new_canary, search_files

from irx.timeline import read_journal
from irx_testenv import PostgresServer, SshHosts

if TYPE_CHECKING:
    from conftest import IrxCli, Ran  # tests/integration/conftest.py, which pytest loads as conftest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "playbooks"
LEAKY_APP = REPO / "molecule" / "_shared" / "apps" / "leaky_app.py"
DB, APP = "lpdb", "lpapp"
MAX_CONNECTIONS = 20
APP_PASSWORD = "app-password"  # the drill's own (molecule/db-pool-exhausted/drill.yml): not a secret here
DBA = "irx_dba"
LONG_RUNNING_SECONDS = 2
WATCHED = ("psql", "sudo")  # commands whose uid and network namespace the sampler also records


@dataclass
class Drill:
    hosts: SshHosts
    pg: PostgresServer
    dba_password: str
    app_dsn: str  # with the drill's app password, for psycopg in this process only
    leaky: subprocess.Popen[bytes]
    leaky_log: Path


class Watched(set[tuple[int, bytes]]):
    """ArgvSampler's set of (pid, argv) seen, which also notes the effective uid and network namespace of
    every new psql or sudo process the moment the sampler first sees it (``/proc/PID`` is owned by the
    process's effective uid while it is dumpable)."""

    def __init__(self) -> None:
        super().__init__()
        self.noted: list[tuple[str, int, str]] = []  # (command, uid, netns)

    def add(self, key: tuple[int, bytes]) -> None:
        super().add(key)
        pid, cmdline = key
        command = os.path.basename(cmdline.split(b"\0", 1)[0]).decode(errors="replace")
        if command in WATCHED:
            try:
                uid = os.stat(f"/proc/{pid}").st_uid
                netns = os.readlink(f"/proc/{pid}/ns/net")
            except OSError:  # gone already
                return
            self.noted.append((command, uid, netns))


def netns_id(hosts: SshHosts, name: str) -> str:
    """``net:[inode]`` of a host's network namespace, as /proc/PID/ns/net reads for its processes."""
    return f"net:[{os.stat(f'/run/netns/{hosts.host(name).netns}').st_ino}]"


def app_connect_error(dsn: str) -> str | None:
    """None if a new connection as ``app`` gets in (and answers), else PostgreSQL's refusal."""
    try:
        with psycopg.connect(dsn, connect_timeout=5) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    except psycopg.OperationalError as exc:
        return str(exc)
    return None


def pool_full(error: str | None) -> bool:
    """Whether a refused connection was refused for want of a slot (PostgreSQL's two wordings)."""
    return error is not None and ("too many clients" in error or "remaining connection slots" in error)


def client_connections(pg: PostgresServer) -> int:
    with admin(pg) as conn:  # over the Unix socket; counts itself
        row = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'").fetchone()
    assert row is not None
    return int(row[0])


def ssh_as_user(hosts: SshHosts, name: str, command: str) -> subprocess.CompletedProcess[str]:
    """``command`` over a real SSH session as the unprivileged account, with the hosts' key."""
    ssh = shutil.which("ssh") or "/usr/bin/ssh"
    return subprocess.run(
        [ssh, *hosts.ssh_options(), f"{hosts.user}@{hosts.address(name)}", command],
        capture_output=True, text=True, timeout=60, check=False, stdin=subprocess.DEVNULL,
    )  # fmt: skip


@pytest.fixture(scope="module", params=["password", "nopasswd"])
def drill(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Drill]:
    """The hosts (non-root login, sudo with a password or without), PostgreSQL on their bridge with scram for
    TCP, the roles, and the pool exhausted by the leaking application with its query stuck past
    long_running_seconds."""
    base = tmp_path_factory.mktemp("least-privilege")
    with SshHosts((DB, APP), base_dir=base, login="user", sudo=request.param) as hosts:
        assert hosts.become_password
        pg = PostgresServer(max_connections=MAX_CONNECTIONS, base_dir=base)
        pg.host = hosts.bridge_address  # as test_secret_canary's pg_on_bridge: listen where the hosts reach
        with pg:
            (pg.data_dir / "pg_hba.conf").write_text("local all all trust\nhost all all 0.0.0.0/0 scram-sha-256\n")
            dba_password = new_canary()
            with admin(pg) as conn:
                conn.execute("SELECT pg_reload_conf()")
                conn.execute(sql.SQL("CREATE ROLE app LOGIN PASSWORD {}").format(sql.Literal(APP_PASSWORD)))
                conn.execute("CREATE DATABASE app OWNER app")
                conn.execute(
                    sql.SQL("CREATE ROLE {} SUPERUSER LOGIN PASSWORD {}").format(
                        sql.Identifier(DBA), sql.Literal(dba_password)
                    )
                )
            app_url = f"postgresql://app:{APP_PASSWORD}@{pg.host}:{pg.port}/app"
            deadline = time.monotonic() + 30
            while True:  # the postmaster rereads pg_hba.conf when it gets to the signal
                try:
                    psycopg.connect(f"{pg.dsn} sslmode=disable", connect_timeout=5).close()
                except psycopg.OperationalError as exc:
                    if "no password supplied" in str(exc):
                        break
                assert time.monotonic() < deadline, "pg_hba.conf reloaded, but TCP still gets in without a password"
                time.sleep(0.1)
            assert app_connect_error(app_url) is None  # app's password works before the fault

            log = base / "leaky_app.log"
            with open(log, "wb") as out:
                leaky = subprocess.Popen(
                    [sys.executable, str(LEAKY_APP), "--dsn", app_url, "--slow-query", "600"],
                    stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                )  # fmt: skip
            try:
                deadline = time.monotonic() + 60
                while True:
                    error = app_connect_error(app_url)
                    if pool_full(error):
                        break
                    assert leaky.poll() is None, f"leaky_app exited with {leaky.returncode}: {log.read_text()}"
                    assert time.monotonic() < deadline, f"the pool never filled: {error}; {log.read_text()}"
                    time.sleep(0.5)
                time.sleep(LONG_RUNNING_SECONDS + 1)  # the stuck query ages past long_running_seconds
                yield Drill(hosts, pg, dba_password, app_url, leaky, log)
            finally:
                leaky.terminate()
                try:
                    leaky.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    leaky.kill()
                    leaky.wait(timeout=10)


@pytest.fixture
def inventory(drill: Drill, tmp_path: Path) -> Path:
    """The hosts' inventory (testhosts, ansible_user = the unprivileged account) plus the playbook's groups."""
    inv = drill.hosts.inventory()
    inv["all"]["children"].update({"dbservers": {"hosts": {DB: None}}, "app": {"hosts": {APP: None}}})
    path = tmp_path / "inventory.yml"
    path.write_text(yaml.safe_dump(inv, sort_keys=False))
    return path


def test_the_ssh_account_is_unprivileged_and_its_sudo_wants_a_password(drill: Drill) -> None:
    hosts = drill.hosts
    uid = pwd.getpwnam(hosts.user).pw_uid
    assert uid != 0
    for name in (DB, APP):
        who = ssh_as_user(hosts, name, "id -u; id -un; hostname")
        assert who.returncode == 0, who.stderr
        assert who.stdout.split() == [str(uid), hosts.user, name]
        sudo = ssh_as_user(hosts, name, "sudo -n true")
        if hosts.sudo == "nopasswd":
            assert sudo.returncode == 0, sudo.stderr
        else:
            assert sudo.returncode != 0
            assert "a password is required" in sudo.stderr, sudo.stderr
    # The account's sudo rule is the one SshHosts wrote: every command, with a password or without.
    rule = "NOPASSWD: ALL" if hosts.sudo == "nopasswd" else "ALL"
    assert f"{hosts.user} ALL=(ALL:ALL) {rule}\n" in hosts.sudoers_path.read_text()


def test_pool_fixed_as_a_sudo_user_and_the_become_password_never_shows(
    drill: Drill, inventory: Path, irx_cli: IrxCli, tmp_path: Path, timeline_validator: Draft202012Validator
) -> None:
    hosts, pg = drill.hosts, drill.pg
    become_password = hosts.become_password
    assert become_password
    password_file = tmp_path / "become-password"
    fd = os.open(password_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(become_password + "\n")
    become_forms, dba_forms = needles(become_password), needles(drill.dba_password)

    env = {
        **irx_cli.env,
        "PGPASSWORD": drill.dba_password,  # pg_password's env, as an operator would pass it
        "ANSIBLE_REMOTE_TEMP": "~/.ansible/tmp",  # irx_cli's is root's tmp_path: the SSH user cannot write it
    }
    argv = (
        "run", "db-pool-exhausted", "-p", str(SHIPPED), "-i", str(inventory), "--format", "json",
        "-e", f"pg_dsn=postgresql://{DBA}@{hosts.bridge_address}:{pg.port}/postgres",
        "-e", f"long_running_seconds={LONG_RUNNING_SECONDS}", "-e", "check_health=false", "--yes",
        "-e", "reconnect_grace_seconds=0",  # the stand-in app does not reconnect: nothing to wait for
    )  # fmt: skip

    with_password = hosts.sudo == "password"
    # Negative control: without the become password sudo on lpapp refuses, the run stops before any change.
    # (Passwordless sudo: the same run must go through, so the refused run is the password variant's.)
    denied = denied_run(irx_cli, argv, env, tmp_path, timeline_validator, drill) if with_password else None

    # The run, watched.
    watched = Watched()
    started = time.time()
    given = ("--become-password-file", str(password_file)) if with_password else ()
    with ArgvSampler(become_forms + dba_forms, processes=watched) as sampler:
        ran = irx_cli.irx(*argv, *given, env=env, timeout=600)
    run_checks(
        drill,
        ran,
        denied,
        irx_cli,
        tmp_path,
        timeline_validator,
        watched,
        sampler,
        started,
        password_file,
        become_forms,
        dba_forms,
    )


def denied_run(
    irx_cli: IrxCli,
    argv: tuple[str, ...],
    env: dict[str, str],
    tmp_path: Path,
    timeline_validator: Draft202012Validator,
    drill: Drill,
) -> Ran:
    denied_runs = tmp_path / "runs-denied"
    denied = irx_cli.irx(*argv, env={**env, "IRX_RUNS_DIR": str(denied_runs)}, timeout=300)
    assert denied.rc == 2, denied.output
    assert "sudo there needs a password" in denied.stderr, denied.output
    assert "cannot take the host lease on lpapp" in denied.stderr, denied.output
    denied_paths = sorted(denied_runs.glob("*/timeline.jsonl"))
    assert len(denied_paths) == 1, denied_paths
    refused_journal = read_journal(denied_paths[0])
    check_journal(refused_journal, timeline_validator)
    assert refused_journal.events[-1]["status"] == "failed"
    # The diagnosis ran (it reads, as the account: no sudo); the first change took the leases and was refused.
    mutating = {e["step"] for e in of_type(refused_journal, "step_started") if e["mutating"]}
    ran = {e["step"] for e in of_type(refused_journal, "host_result")}
    assert ran, "the diagnosis did not run"
    assert not ran & mutating, f"a change ran without the become password: {ran & mutating}"
    denied_leases = [(e["host"], e["action"]) for e in of_type(refused_journal, "lease")]
    assert denied_leases == [(DB, "acquired"), (DB, "released")], denied_leases
    refused = app_connect_error(drill.app_dsn)
    assert pool_full(refused), refused
    return denied


def run_checks(drill: Drill, ran: Ran, denied: Ran | None, irx_cli: IrxCli, tmp_path: Path,
               timeline_validator: Draft202012Validator, watched: Watched, sampler: ArgvSampler, started: float,
               password_file: Path, become_forms: list[bytes], dba_forms: list[bytes]) -> None:  # fmt: skip
    hosts, pg = drill.hosts, drill.pg
    assert ran.rc == 0, ran.output
    assert json.loads(ran.stdout)["status"] == "verified", ran.stdout[-4000:]
    journal_paths = irx_cli.journals()
    assert len(journal_paths) == 1, journal_paths
    journal = read_journal(journal_paths[0])
    check_journal(journal, timeline_validator)
    assert journal.events[-1]["status"] == "verified"
    assert journal.events[0]["params"]["pg_password"] == "******"

    # Fixed for real, on lpdb, by psql running as the unprivileged account.
    terminated: dict[str, int] = {}
    for step in ("terminate_idle", "terminate_long_running"):
        results = host_results(journal, step)
        assert set(results) == {DB}, (step, results)
        assert results[DB]["status"] == "ok", results[DB]
        assert results[DB]["data"] > 0, results[DB]
        terminated[step] = results[DB]["data"]
    restart = of_type(journal, "step_finished", step="restart_app")
    assert [e["status"] for e in restart] == ["skipped"], restart
    assert app_connect_error(drill.app_dsn) is None
    now = client_connections(pg)
    assert now < MAX_CONNECTIONS * 0.8

    # Both hosts leased and released; lpdb's lease written as the account, lpapp's with sudo (as root).
    leases = {h: [e["action"] for e in of_type(journal, "lease", host=h)] for h in (DB, APP)}
    assert leases == {DB: ["acquired", "released"], APP: ["acquired", "released"]}, leases
    files = {e["host"]: Path(e["file"]) for e in of_type(journal, "lease", action="acquired")}
    uid = pwd.getpwnam(hosts.user).pw_uid
    assert {h: p.stat().st_uid for h, p in files.items()} == {DB: uid, APP: 0}

    # Who ran what, where: psql on lpdb only as the account; sudo on lpapp, never on lpdb.
    db_ns, app_ns = netns_id(hosts, DB), netns_id(hosts, APP)
    psql_on_db = [u for c, u, ns in watched.noted if c == "psql" and ns == db_ns]
    sudo_on = {ns: sum(1 for c, _, n in watched.noted if c == "sudo" and n == ns) for ns in (db_ns, app_ns)}
    assert psql_on_db, "no psql process seen on lpdb"
    assert set(psql_on_db) == {uid}, psql_on_db
    assert sudo_on[app_ns] > 0, "sudo was never seen on lpapp: the become password was not used"
    assert sudo_on[db_ns] == 0

    # Nothing holds the passwords: no argv while it ran, no output, no file but the operator's own.
    said = ran.stdout + ran.stderr + (denied.stdout + denied.stderr if denied is not None else "")
    for form in become_forms + dba_forms:
        assert form.decode() not in said
    roots = left_behind_roots(tmp_path, hosts, pg, started)
    scanned, found = search_files(roots, become_forms)
    scanned_dba, found_dba = search_files(roots, dba_forms)
    print(
        f"\nleast privilege drill: {sampler.samples} argv samples ({sampler.reads} cmdline reads) over "
        f"{ran.seconds:.1f}s run as {hosts.user} (sudo {hosts.sudo}"
        f"{f'; refused run {denied.seconds:.1f}s' if denied is not None else ''}), "
        f"{len(sampler.processes)} processes seen "
        f"({sampler.seen('psql')} psql, {len(psql_on_db)} on {DB} as uid {uid}; {sudo_on[app_ns]} sudo on {APP}, "
        f"{sampler.seen('ssh')} ssh, {sampler.seen('sshd')} sshd), {len(sampler.sightings)} sightings; "
        f"{scanned} files scanned, {len(found)} holding the become password (the operator's file), "
        f"{len(found_dba)} the DBA's; terminated {terminated['terminate_idle']} idle sessions and "
        f"{terminated['terminate_long_running']} long-running queries, {now} client connections after"
    )
    assert sampler.samples > 1000
    assert sampler.seen("psql") > 0, "not one psql process was seen: the sampler did not watch the run"
    assert [(s.pid, s.netns, s.argv) for s in sampler.sightings] == []
    assert scanned > 10
    assert scanned_dba > 10
    assert found == [str(password_file)]  # the search sees the password where it is; nowhere else
    assert found_dba == []

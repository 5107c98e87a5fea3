"""A secret never appears on any command line, nor in any file a run leaves, while it really is used.

A real PostgreSQL listens on the SSH hosts' bridge and asks for a password (scram-sha-256); a role's
password is a random canary. The shipped PostgreSQL playbooks run for real on the namespace hosts with
``pg_password`` = the canary (from the environment, ``PGPASSWORD``, as an operator would pass it). While
they run, a sampler reads ``/proc/*/cmdline`` of every process on the machine every few milliseconds:
the namespace hosts are network namespaces of this machine, so their processes (sshd, the module, bash,
psql) are in this ``/proc`` too. Afterwards every file irx, Ansible and the hosts leave is searched.

The sampler is proved on a process that does carry the canary in its argv, here and on a namespace host,
and the file search on a file that holds it.
"""

from __future__ import annotations

import base64
import json
import os
import shlex
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, quote_plus

import psycopg
import pytest
import yaml
from journal_checks import check_journal, host_results, of_type
from jsonschema import Draft202012Validator
from psycopg import sql

from irx.timeline import read_journal
from irx_testenv import PostgresServer, SshHosts

if TYPE_CHECKING:
    from conftest import IrxCli  # tests/integration/conftest.py, which pytest loads as conftest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "playbooks"
VENV_BIN = Path(sys.executable).parent
SSH_NAMES = ("web1", "web2", "db1")
ROLE = "irx_canary"
MAX_CONNECTIONS = 20


def new_canary() -> str:
    """A password whose quoted, URL-encoded, JSON-escaped and base64 forms all differ from it."""
    return f"canary-{uuid.uuid4().hex}-p@ss w'rd\"%\\"


def needles(secret: str) -> list[bytes]:
    """Every form in which the secret could show: plain, its random core alone (survives most encodings),
    shell-quoted, URL-encoded, JSON-escaped, base64 at each of the three alignments."""
    raw = secret.encode()
    core = secret.split("-")[1].encode()
    forms = {raw, core, shlex.quote(secret).encode(), quote(secret, safe="").encode(), quote_plus(secret).encode()}
    forms.add(json.dumps(secret)[1:-1].encode())
    for pad in range(3):
        encoded = base64.b64encode(b"x" * pad + raw)
        forms.add(encoded[4:-4])  # the part that does not depend on what surrounds the secret
    return sorted(forms, key=len)


# --- the argv sampler --------------------------------------------------------------------------------------


@dataclass
class Sighting:
    pid: int
    netns: str
    argv: list[str]


@dataclass
class ArgvSampler:
    """Reads /proc/*/cmdline of every process, over and over, in a thread; records argvs holding a needle."""

    needles: list[bytes]
    pause: float = 0.001
    samples: int = 0  # full passes over /proc
    reads: int = 0  # cmdline files read
    processes: set[tuple[int, bytes]] = field(default_factory=set)  # distinct (pid, argv) seen
    sightings: list[Sighting] = field(default_factory=list)
    seen_commands: dict[str, set[int]] = field(default_factory=dict)  # argv[0] basename -> pids
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> ArgvSampler:
        self._thread = threading.Thread(target=self._loop, name="argv-sampler", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(timeout=30)

    def _loop(self) -> None:
        me = os.getpid()
        while not self._stop.is_set():
            for entry in os.scandir("/proc"):
                if not entry.name.isdigit():
                    continue
                try:
                    with open(f"/proc/{entry.name}/cmdline", "rb") as handle:
                        cmdline = handle.read()
                except OSError:  # gone between listing and reading
                    continue
                self.reads += 1
                if not cmdline:
                    continue
                pid = int(entry.name)
                key = (pid, cmdline)
                if key in self.processes:
                    continue
                self.processes.add(key)
                argv = cmdline.rstrip(b"\0").split(b"\0")
                self.seen_commands.setdefault(os.path.basename(argv[0]).decode(errors="replace"), set()).add(pid)
                if pid != me and any(needle in cmdline for needle in self.needles):
                    try:
                        netns = os.readlink(f"/proc/{pid}/ns/net")
                    except OSError:
                        netns = "?"
                    self.sightings.append(Sighting(pid, netns, [a.decode(errors="replace") for a in argv]))
            self.samples += 1
            time.sleep(self.pause)

    def seen(self, command: str) -> int:
        return len(self.seen_commands.get(command, ()))


# --- the file search ----------------------------------------------------------------------------------------


def files_under(roots: Iterable[Path]) -> Iterator[Path]:
    for root in roots:
        if root.is_file() and not root.is_symlink():
            yield root
        elif root.is_dir() and not root.is_symlink():
            for directory, dirs, files in os.walk(root):
                dirs[:] = [d for d in dirs if not os.path.islink(os.path.join(directory, d))]
                for name in files:
                    yield Path(directory, name)


def search_files(roots: Iterable[Path], forms: list[bytes]) -> tuple[int, list[str]]:
    """How many regular files were read under ``roots``, and those that hold any of ``forms``."""
    scanned, found = 0, []
    for path in files_under(roots):
        try:
            if not path.is_file() or path.is_symlink() or path.stat().st_size > 256 * 1024 * 1024:
                continue
            data = path.read_bytes()
        except OSError:
            continue
        scanned += 1
        if any(form in data for form in forms):
            found.append(str(path))
    return scanned, found


def left_behind_roots(tmp_path: Path, ssh_hosts: SshHosts, pg: PostgresServer | None, since: float) -> list[Path]:
    """Everything a run may leave: the test's tree (runs dir, TMPDIR, HOME with ~/.ansible, ANSIBLE_LOCAL_TEMP
    and ANSIBLE_REMOTE_TEMP, locks), the hosts' tree (sshd configs and logs), the server's log (if any), the
    remote user's ~/.ansible (root's: the hosts are this machine; an unprivileged login's home too),
    /tmp/irx-* and /tmp/ansible* leftovers, and every file /tmp got during the run."""
    tmp = Path("/tmp")
    roots = [tmp_path, ssh_hosts.workdir, Path("/root/.ansible")]
    roots += [pg.log_path] if pg is not None else []
    roots += [ssh_hosts.user_home] if ssh_hosts.login == "user" else []
    roots += sorted(tmp.glob("irx-*")) + sorted(tmp.glob(".irx-*")) + sorted(tmp.glob("ansible*"))
    for entry in tmp.iterdir():
        try:
            if entry.is_file() and not entry.is_symlink() and entry.stat().st_mtime >= since:
                roots.append(entry)
        except OSError:
            continue
    return roots


# --- PostgreSQL on the bridge, with passwords ---------------------------------------------------------------


@pytest.fixture(scope="module")
def pg_on_bridge(ssh_hosts: SshHosts, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    """A PostgreSQL the namespace hosts reach at the bridge address, that asks every TCP client for a
    password (scram-sha-256); the test administers it over its Unix socket.

    The testenv has no option for either: PostgresServer listens on its class attribute ``host``
    (127.0.0.1) and initdb writes trust for everything. So the instance's ``host`` is set to the bridge
    address before start, and pg_hba.conf is replaced and reloaded after it."""
    server = PostgresServer(max_connections=MAX_CONNECTIONS, base_dir=tmp_path_factory.mktemp("pg-bridge"))
    server.host = ssh_hosts.bridge_address
    with server:
        hba = server.data_dir / "pg_hba.conf"
        hba.write_text("local all all trust\nhost all all 0.0.0.0/0 scram-sha-256\n")  # keeps postgres's ownership
        with admin(server) as conn:
            conn.execute("SELECT pg_reload_conf()")
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:  # the postmaster rereads the file when it gets to the signal
                try:
                    psycopg.connect(f"{server.dsn} sslmode=disable", connect_timeout=5).close()
                except psycopg.OperationalError as exc:
                    if "no password supplied" in str(exc) or "password authentication failed" in str(exc):
                        break
                time.sleep(0.1)
            else:
                pytest.fail("pg_hba.conf reloaded, but TCP connections still get in without a password")
            rules = conn.execute("SELECT auth_method FROM pg_hba_file_rules WHERE error IS NULL").fetchall()
            assert sorted(r[0] for r in rules) == ["scram-sha-256", "trust"]
        yield server


def admin(server: PostgresServer) -> psycopg.Connection[Any]:
    """The superuser over the Unix socket (local trust), autocommit."""
    return psycopg.connect(
        host=str(server.socket_dir), port=server.port, user=server.superuser, dbname="postgres", autocommit=True
    )


def create_role(server: PostgresServer, password: str) -> str:
    """A login role with ``password`` and its database; the password travels in the protocol, never argv."""
    with admin(server) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(ROLE)))
        conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(ROLE)))
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(ROLE), sql.Literal(password)))
        conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(ROLE), sql.Identifier(ROLE)))
        stored = conn.execute("SELECT rolpassword FROM pg_authid WHERE rolname = %s", (ROLE,)).fetchone()
    assert stored is not None
    assert str(stored[0]).startswith("SCRAM-SHA-256$")
    return f"postgresql://{ROLE}@{server.host}:{server.port}/{ROLE}"


def psql_from_host(ssh_hosts: SshHosts, name: str, dsn: str, password: str | None) -> subprocess.CompletedProcess[str]:
    """psql inside a host's network namespace (not over SSH), with or without a password in its env."""
    env = {k: v for k, v in os.environ.items() if k != "PGPASSWORD"}
    if password is not None:
        env["PGPASSWORD"] = password
    argv = ["/usr/sbin/ip", "netns", "exec", ssh_hosts.host(name).netns,
            "psql", "-X", "-w", "-At", "-d", dsn, "-c", "SELECT current_user"]  # fmt: skip
    return subprocess.run(
        argv, env=env, capture_output=True, text=True, timeout=60, check=False, stdin=subprocess.DEVNULL
    )


@pytest.fixture
def ssh_inventory(ssh_hosts: SshHosts, tmp_path: Path) -> Path:
    """Every group the shipped playbooks use is all three namespace hosts."""
    inventory = ssh_hosts.inventory()
    groups = ("dbservers", "app", "web", "cache", "queue")
    inventory["all"]["children"].update({g: {"hosts": dict.fromkeys(SSH_NAMES)} for g in groups})
    path = tmp_path / "inventory.yml"
    path.write_text(yaml.safe_dump(inventory, sort_keys=False))
    return path


# --- the tests ------------------------------------------------------------------------------------------------


def test_the_sampler_and_the_file_search_see_a_canary_that_is_there(
    ssh_hosts: SshHosts, tmp_path: Path
) -> None:  # fmt: skip
    """Negative control: a process with the canary in its argv is seen, here and on a namespace host (in
    that host's network namespace), and so is a short-lived one; a file holding it is found."""
    canary = new_canary()
    sleeper = [sys.executable, "-c", "import time; time.sleep(3)", canary]
    with ArgvSampler(needles(canary)) as sampler:
        local = subprocess.Popen(sleeper, stdin=subprocess.DEVNULL)
        remote = subprocess.Popen(
            ssh_hosts.ssh_argv("web1", shlex.join(["/usr/bin/python3", *sleeper[1:]])), stdin=subprocess.DEVNULL
        )
        short_lived = 5
        for _ in range(short_lived):
            subprocess.run(["/bin/sh", "-c", "sleep 0.2; :", canary], check=True, timeout=30)
        assert local.wait(timeout=60) == 0
        assert remote.wait(timeout=60) == 0
    ours = os.readlink("/proc/self/ns/net")
    pids = {s.pid for s in sampler.sightings}
    print(
        f"\nnegative control: {sampler.samples} samples, {len(sampler.processes)} processes seen, "
        f"{len(sampler.sightings)} sightings ({len(pids)} processes; {short_lived} short-lived ones started)"
    )
    assert local.pid in pids
    assert remote.pid in pids  # the ssh client, here
    elsewhere = [s for s in sampler.sightings if s.netns != ours]
    assert elsewhere, "no sighting inside the namespace host"
    assert any(s.argv[0].endswith("python3") for s in elsewhere), elsewhere
    sh_seen = [s for s in sampler.sightings if s.argv[:3] == ["/bin/sh", "-c", "sleep 0.2; :"]]
    assert sh_seen, "the short-lived processes were never seen"

    decoy = tmp_path / "deep" / "er" / "decoy.log"
    decoy.parent.mkdir(parents=True)
    decoy.write_bytes(b"noise " + json.dumps({"password": canary}).encode() + b" noise")
    scanned, found = search_files([tmp_path], needles(canary))
    assert found == [str(decoy)]
    assert scanned >= 1


def test_secret_is_used_but_never_on_a_command_line_nor_left_in_a_file(
    pg_on_bridge: PostgresServer, ssh_hosts: SshHosts, ssh_inventory: Path, irx_cli: IrxCli, tmp_path: Path,
    timeline_validator: Draft202012Validator,
) -> None:  # fmt: skip
    canary = new_canary()
    dsn = create_role(pg_on_bridge, canary)
    forms = needles(canary)
    # The server really asks: from a namespace host, no password and a wrong one are refused, the canary works.
    assert "no password supplied" in psql_from_host(ssh_hosts, "db1", dsn, None).stderr
    assert "password authentication failed" in psql_from_host(ssh_hosts, "db1", dsn, "wrong-password").stderr
    assert psql_from_host(ssh_hosts, "db1", dsn, canary).stdout.strip() == ROLE

    env = {**irx_cli.env, "PGPASSWORD": canary}  # pg_password's env: what an operator would set
    common = ("-p", str(SHIPPED), "-i", str(ssh_inventory), "--format", "json", "-e", f"pg_dsn={dsn}",
              "-e", "check_health=false", "-e", "restart_app=false", "--yes")  # fmt: skip
    playbooks = ("db-pool-exhausted", "database-connection-failure")
    started = time.time()
    runs = {}
    with ArgvSampler(forms) as sampler:
        for name in playbooks:
            runs[name] = irx_cli.irx("run", name, *common, timeout=600, env=env)
    journals = {read_journal(p).events[0]["playbook"]: read_journal(p) for p in irx_cli.journals()}

    scanned, found = search_files(left_behind_roots(tmp_path, ssh_hosts, pg_on_bridge, started), forms)
    steps = sampler.seen("psql")
    print(
        f"\nsecret canary: {len(playbooks)} runs on {len(SSH_NAMES)} SSH hosts; {sampler.samples} argv samples "
        f"({sampler.reads} cmdline reads) over {sum(r.seconds for r in runs.values()):.1f}s, "
        f"{len(sampler.processes)} processes seen ({steps} psql, {sampler.seen('ssh')} ssh, "
        f"{sampler.seen('sshd')} sshd), {len(sampler.sightings)} sightings; "
        f"{scanned} files scanned, {len(found)} holding the canary"
    )
    for name, ran in runs.items():
        assert ran.rc == 0, f"{name}: {ran.output[-4000:]}"
        for form in forms:
            assert form.decode() not in ran.stdout + ran.stderr, name
        journal = journals[name]
        check_journal(journal, timeline_validator)
        assert journal.events[-1]["status"] == "verified", name
        assert journal.events[0]["params"]["pg_password"] == "******"
    # The password was really used: the queries that need it answered, on every host.
    max_connections = host_results(journals["db-pool-exhausted"], "max_connections")
    assert {h: (r["status"], r.get("data")) for h, r in max_connections.items()} == dict.fromkeys(
        SSH_NAMES, ("ok", MAX_CONNECTIONS)
    )
    probe = host_results(journals["database-connection-failure"], "db_probe")
    assert {h: (r["status"], r.get("data")) for h, r in probe.items()} == dict.fromkeys(SSH_NAMES, ("ok", "ok"))
    assert of_type(journals["database-connection-failure"], "step_finished", step="db_select")[0]["status"] == "ok"

    assert sampler.samples > 1000
    assert steps > 0, "not one psql process was seen: the sampler did not watch the run"
    assert [(s.pid, s.netns, s.argv) for s in sampler.sightings] == []
    assert scanned > 10
    assert found == []

"""The real-service test environment itself: every service starts, answers, and leaves nothing behind."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import ansible_runner
import httpx
import psycopg
import pytest

from irx_testenv import (
    NginxServer,
    PostgresServer,
    RedisServer,
    SshHosts,
    TestEnvError,
    leftovers,
    remove_leftovers,
)

pytestmark = pytest.mark.integration


# --- PostgreSQL ------------------------------------------------------------------------------------


def test_postgres_accepts_superuser_and_honours_max_connections(pg_server: PostgresServer) -> None:
    dsn = pg_server.create_role_and_db("app", "s3cret'pw")
    with psycopg.connect(pg_server.dsn) as conn:
        assert conn.execute("SHOW max_connections").fetchone() == ("20",)
    # 20 slots minus 3 reserved for the superuser: an ordinary role gets 17, the 18th is refused.
    conns = [psycopg.connect(dsn) for _ in range(17)]
    try:
        with pytest.raises(psycopg.OperationalError, match="reserved"):
            psycopg.connect(dsn).close()
        # The exhausted pool still leaves the superuser a way in to mitigate.
        with psycopg.connect(pg_server.dsn) as admin:
            killed = admin.execute(
                "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE usename = 'app' AND state = 'idle'"
            ).fetchone()
        assert killed == (17,)
    finally:
        for conn in conns:
            conn.close()
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT current_user, current_database()").fetchone() == ("app", "app")


def test_postgres_psql_helper(pg_server: PostgresServer) -> None:
    assert pg_server.psql("SELECT 40 + 2") == "42"
    with pytest.raises(TestEnvError, match="does_not_exist"):
        pg_server.psql("SELECT * FROM does_not_exist")


def test_missing_postgres_binaries_fail_loudly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IRX_PG_BIN", str(tmp_path / "nowhere"))
    server = PostgresServer(base_dir=tmp_path)
    with pytest.raises(TestEnvError, match="missing or not executable"):
        server.start()
    assert leftovers(server.uid) == []


# --- Redis -----------------------------------------------------------------------------------------


def test_redis_answers_ping(redis_server: RedisServer) -> None:
    assert redis_server.cli("ping") == "PONG"
    assert redis_server.cli("set", "k", "v") == "OK"
    assert redis_server.cli("get", "k") == "v"


def test_redis_maxmemory_makes_writes_fail(tmp_path: Path) -> None:
    with RedisServer(base_dir=tmp_path, maxmemory="2mb") as server:
        assert server.cli("config", "get", "maxmemory").split() == ["maxmemory", "2097152"]
        # redis-cli prints errors on stdout with exit 0; fill with 64 KiB values until it refuses.
        refused = ""
        for i in range(200):
            out = server.cli("set", f"k{i}", "x" * 65536)
            if out != "OK":
                refused = out
                break
        assert "OOM" in refused
    assert leftovers(server.uid) == []


# --- nginx -----------------------------------------------------------------------------------------


def test_nginx_health_and_access_log(nginx_server: NginxServer) -> None:
    with httpx.Client(trust_env=False, timeout=5) as client:  # no proxy from the environment
        health = client.get(nginx_server.health_url)
        root = client.get(nginx_server.url + "/")
    assert health.status_code == 200
    assert health.headers["content-type"] == "application/json"
    assert health.json() == {"status": "ok"}
    assert root.text == "hello\n"
    lines = [json.loads(line) for line in nginx_server.access_log.read_text().splitlines()]
    assert {"uri": "/health", "status": 200} in [{"uri": e["uri"], "status": e["status"]} for e in lines]


def test_nginx_bad_location_is_a_clear_error(tmp_path: Path) -> None:
    server = NginxServer(base_dir=tmp_path, locations={"/": "no_such_directive on;"})
    with pytest.raises(TestEnvError, match="unknown directive"):
        server.start()
    assert leftovers(server.uid) == []


# --- SSH hosts -------------------------------------------------------------------------------------


def test_ssh_hosts_answer_with_their_own_hostname(ssh_hosts: SshHosts) -> None:
    for name in ssh_hosts.names:
        proc = subprocess.run(
            ssh_hosts.ssh_argv(name, "hostname"), capture_output=True, text=True, timeout=20, check=False
        )
        assert (proc.returncode, proc.stdout.strip()) == (0, name), proc.stderr
    assert all(h.address.startswith("10.200.") for h in ssh_hosts.hosts.values())


def test_a_root_login_gets_the_hosts_own_home_not_the_control_nodes_dotfiles(ssh_hosts: SshHosts) -> None:
    # The control node's /root may hold a .bashrc that hangs (pyenv init with a stale rehash lock): a
    # test host's sessions must not read it, as a real host's would not.
    for name in ssh_hosts.names:
        host = ssh_hosts.host(name)
        (host.root_home / "marker").write_text(f"{name}\n")
        proc = subprocess.run(
            ssh_hosts.ssh_argv(name, 'echo "$HOME"; cat /root/marker; ls -A /root'),
            capture_output=True, text=True, timeout=20, check=False,
        )  # fmt: skip
        (host.root_home / "marker").unlink()
        assert proc.returncode == 0, proc.stderr
        home, marker, *listing = proc.stdout.splitlines()
        assert (home, marker) == ("/root", name)
        assert "marker" in listing
        assert ".bashrc" not in listing


def test_ssh_hosts_reach_each_other(ssh_hosts: SshHosts) -> None:
    web2 = ssh_hosts.address("web2")
    proc = ssh_hosts.run(
        "web1", ["/usr/bin/python3", "-c", f"import socket; socket.create_connection(('{web2}', 22), 3)"]
    )
    assert proc.returncode == 0


def test_ansible_runner_over_real_ssh(ssh_hosts: SshHosts, tmp_path: Path, ansible_env: dict[str, str]) -> None:
    playbook = [
        {
            "hosts": ssh_hosts.group,
            "gather_facts": False,
            "tasks": [
                {"ansible.builtin.ping": None},
                {
                    "name": "hostname",
                    "ansible.builtin.command": "hostname",
                    "register": "h",
                    "changed_when": False,
                },
                {"ansible.builtin.assert": {"that": ["h.stdout == inventory_hostname"]}},
            ],
        }
    ]
    private = tmp_path / "runner"
    private.mkdir()
    result = ansible_runner.run(
        private_data_dir=str(private),
        playbook=playbook,
        inventory=str(ssh_hosts.inventory_path),
        envvars=ansible_env,
        quiet=True,
        timeout=60,
    )
    assert result.status == "successful", result.stdout.read()
    outputs = {
        e["event_data"]["host"]: e["event_data"]["res"]["stdout"]
        for e in result.events
        if e["event"] == "runner_on_ok" and e["event_data"].get("task") == "hostname"
    }
    assert outputs == {name: name for name in ssh_hosts.names}
    # No connection sharing: a live control master would hide a host whose sshd died.
    assert not any(Path(ansible_env["ANSIBLE_SSH_CONTROL_PATH_DIR"]).glob("*"))


def test_faults_then_teardown_leaves_nothing(tmp_path: Path) -> None:
    hosts = SshHosts(["alpha", "beta"], base_dir=tmp_path, connect_timeout=2)
    with hosts:
        hosts.kill_sshd("alpha")
        refused = subprocess.run(hosts.ssh_argv("alpha", "true"), capture_output=True, text=True, timeout=20)
        assert refused.returncode == 255
        assert "Connection refused" in refused.stderr

        hosts.link_down("beta")
        started = time.monotonic()
        timed_out = subprocess.run(hosts.ssh_argv("beta", "true"), capture_output=True, text=True, timeout=20)
        assert timed_out.returncode == 255
        assert time.monotonic() - started < 10

        hosts.start_sshd("alpha")
        hosts.link_up("beta")
        for name in ("alpha", "beta"):
            ok = subprocess.run(hosts.ssh_argv(name, "hostname"), capture_output=True, text=True, timeout=20)
            assert ok.stdout.strip() == name, ok.stderr
        assert leftovers(hosts.uid) != []
    assert leftovers(hosts.uid) == []


def test_an_unprivileged_account_logs_in_escalates_as_told_and_goes_with_the_hosts(tmp_path: Path) -> None:
    hosts = SshHosts(["alpha"], base_dir=tmp_path, login="user", sudo="nopasswd")
    with hosts:
        ssh = [*hosts.ssh_argv("alpha")[:-1], f"{hosts.user}@{hosts.address('alpha')}"]
        who = subprocess.run([*ssh, "id -un; sudo -n id -u"], capture_output=True, text=True, timeout=30)
        assert who.stdout.split() == [hosts.user, "0"], who.stderr
        assert hosts.inventory()["all"]["children"]["testhosts"]["vars"]["ansible_user"] == hosts.user
        kinds = {item.kind for item in leftovers(hosts.uid)}
        assert {"user", "sudoers", "dir"} <= kinds
    assert leftovers(hosts.uid) == []
    # A session killed before its teardown: the sweep removes the account and its sudo rights too.
    crashed = SshHosts(["beta"], base_dir=tmp_path / "crashed", login="user", sudo="password")
    crashed.start()
    assert crashed.sudoers_path.exists()
    removed = {item.kind for item in remove_leftovers(crashed.uid)}
    assert {"user", "sudoers", "netns", "process"} <= removed
    assert not crashed.sudoers_path.exists()
    assert leftovers(crashed.uid) == []
    with pytest.raises(ValueError, match="sudo= is for login='user'"):
        SshHosts(["x"], base_dir=tmp_path, sudo="nopasswd")


class _SshdFailsOnSecondHost(SshHosts):
    """Fails part-way through start(): network built, first sshd running, second never started."""

    def start_sshd(self, name: str) -> None:
        if name == self.names[1]:
            raise TestEnvError("injected failure")
        super().start_sshd(name)


def test_failed_start_cleans_up_what_it_made(tmp_path: Path) -> None:
    hosts = _SshdFailsOnSecondHost(["one", "two"], base_dir=tmp_path)
    with pytest.raises(TestEnvError, match="injected failure"):
        hosts.start()
    assert leftovers(hosts.uid) == []


def test_subnet_outside_the_test_range_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"outside 10\.200\.0\.0/16"):
        SshHosts(["x"], base_dir=tmp_path, subnet="192.168.1.0/24")


# --- all together ----------------------------------------------------------------------------------


def test_every_service_stops_without_leftovers(tmp_path: Path) -> None:
    pg = PostgresServer(base_dir=tmp_path)  # a random uid, shared by the rest so one query sees all
    uid = pg.uid
    services = [
        pg,
        RedisServer(base_dir=tmp_path, uid=uid),
        NginxServer(base_dir=tmp_path, uid=uid),
        SshHosts(["solo"], base_dir=tmp_path, uid=uid),
    ]
    for service in services:
        service.start()
    try:
        kinds = {item.kind for item in leftovers(uid)}
        assert kinds == {"process", "netns", "link", "dir"}
    finally:
        for service in services:
            service.stop()
    assert leftovers(uid) == []

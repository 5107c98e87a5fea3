"""Session-wide real services for integration tests (see irx.testenv and shared TESTENV.md).

Each fixture starts its service once per test session and stops it at the end. A missing binary or a
service that does not come up raises ``TestEnvError``, so the tests that need it error out loudly: CI must
never go green by skipping them. Install the binaries with ``scripts/install-system-deps.sh``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from irx.testenv import NginxServer, PostgresServer, RedisServer, SshHosts

# Three namespace hosts: enough for "one of N fails" scenarios, cheap to start (~0.3 s).
SSH_HOST_NAMES = ("web1", "web2", "db1")


@pytest.fixture(scope="session")
def testenv_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One parent directory for every session-scoped service."""
    return tmp_path_factory.mktemp("testenv")


@pytest.fixture(scope="session")
def pg_server(testenv_dir: Path) -> Iterator[PostgresServer]:
    """PostgreSQL with ``max_connections=20`` (17 for ordinary roles); ``.dsn`` is the superuser's."""
    with PostgresServer(max_connections=20, base_dir=testenv_dir) as server:
        yield server


@pytest.fixture(scope="session")
def redis_server(testenv_dir: Path) -> Iterator[RedisServer]:
    """Redis without persistence or a memory limit."""
    with RedisServer(base_dir=testenv_dir) as server:
        yield server


@pytest.fixture(scope="session")
def nginx_server(testenv_dir: Path) -> Iterator[NginxServer]:
    """nginx with ``/health`` (200 JSON) and ``/`` answering ``hello``; JSON-lines access log."""
    with NginxServer(base_dir=testenv_dir, locations={"/": "return 200 'hello\\n';"}) as server:
        yield server


@pytest.fixture(scope="session")
def ssh_hosts(testenv_dir: Path) -> Iterator[SshHosts]:
    """Three SSH hosts (web1, web2, db1) in network namespaces; ``.inventory_path`` for Ansible.

    Shared by the session: a test that injects a fault (kill_sshd, link_down) must undo it.
    """
    with SshHosts(SSH_HOST_NAMES, base_dir=testenv_dir) as hosts:
        yield hosts


@pytest.fixture
def ansible_env(tmp_path: Path) -> dict[str, str]:
    """Environment for ansible-runner: the venv's bin first (ansible-playbook must be on PATH) and
    Ansible's local state kept inside ``tmp_path``."""
    venv_bin = os.path.dirname(sys.executable)
    return {
        "PATH": f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-tmp"),
        "ANSIBLE_SSH_CONTROL_PATH_DIR": str(tmp_path / "ansible-cp"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_RETRY_FILES_ENABLED": "0",
        "ANSIBLE_FORCE_COLOR": "0",
    }

"""Session-wide real services for integration tests (see irx_testenv and shared TESTENV.md).

Each fixture starts its service once per test session and stops it at the end. A missing binary or a
service that does not come up raises ``TestEnvError``, so the tests that need it error out loudly: CI must
never go green by skipping them. Install the binaries with ``scripts/install-system-deps.sh``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

from irx.timeline import JournalRead, read_journal
from irx_testenv import NginxServer, PostgresServer, RedisServer, SshHosts

VENV_BIN = Path(sys.executable).parent

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


# --- irx run: the real CLI against localhost and the SSH hosts -------------------------------------------

RUN_PLAYBOOKS = Path(__file__).parent / "playbooks"


@pytest.fixture(scope="session")
def run_inventory(ssh_hosts: SshHosts, testenv_dir: Path) -> Path:
    """The SSH hosts' inventory plus ``localhost`` on a local connection: every host kind ``irx run`` meets."""
    inventory = ssh_hosts.inventory()
    inventory["all"]["hosts"] = {
        "localhost": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    }
    path = testenv_dir / "run-inventory.yml"
    path.write_text(yaml.safe_dump(inventory, sort_keys=False))
    return path


@dataclass
class IrxCli:
    """The real ``irx`` command in a subprocess, with its runs, locks and Ansible state inside ``tmp_path``.

    Every run is bounded in time: a hung ``irx`` fails the test, it never hangs the suite.
    """

    cwd: Path
    env: dict[str, str]
    inventory: Path
    runs_dir: Path

    def argv(self, playbook: str, *args: str) -> list[str]:
        return [str(VENV_BIN / "irx"), "run", playbook, "-p", str(RUN_PLAYBOOKS), "-i", str(self.inventory), *args]

    def run(self, playbook: str, *args: str, timeout: float = 120, env: Mapping[str, str] | None = None) -> Ran:
        """Run a test playbook on the test inventory to completion, stdin from /dev/null (no terminal)."""
        return self.irx(*self.argv(playbook, *args)[1:], timeout=timeout, env=env)

    def irx(self, *args: str, timeout: float = 120, env: Mapping[str, str] | None = None) -> Ran:
        """``irx ARGS...`` to completion, stdin from /dev/null (no terminal)."""
        started = time.monotonic()
        proc = subprocess.run(
            [str(VENV_BIN / "irx"), *args], cwd=self.cwd, env={**self.env, **(env or {})}, stdin=subprocess.DEVNULL,
            capture_output=True, text=True, timeout=timeout, check=False,
        )  # fmt: skip
        return Ran(proc.returncode, proc.stdout, proc.stderr, time.monotonic() - started)

    def start(self, playbook: str, *args: str, **popen: Any) -> subprocess.Popen[str]:
        """Start a run in the background (stdin from /dev/null, stdout/stderr to pipes unless given)."""
        popen.setdefault("stdout", subprocess.PIPE)
        popen.setdefault("stderr", subprocess.PIPE)
        popen.setdefault("stdin", subprocess.DEVNULL)
        popen.setdefault("env", self.env)
        return subprocess.Popen(self.argv(playbook, *args), cwd=self.cwd, text=True, **popen)

    def journals(self) -> list[Path]:
        """Every run's timeline, oldest first."""
        return sorted(self.runs_dir.glob("*/timeline.jsonl"))

    def journal(self) -> JournalRead:
        """The journal of the only run so far (read back whole, like ``irx`` would)."""
        paths = self.journals()
        assert len(paths) == 1, f"expected exactly one run in {self.runs_dir}, found {paths}"
        return read_journal(paths[0])

    def wait_for_event(
        self, proc: subprocess.Popen[str], match: Callable[[dict[str, Any]], bool], timeout: float = 60
    ) -> dict[str, Any]:
        """Poll the newest journal until an event matches; fail if ``proc`` exits first or time runs out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            paths = self.journals()
            if paths:
                found = [e for e in read_journal(paths[-1]).events if match(e)]
                if found:
                    return found[0]
            if proc.poll() is not None:
                out, err = proc.communicate(timeout=10)
                pytest.fail(f"irx exited with {proc.returncode} before the event appeared:\n{out}\n{err}")
            time.sleep(0.05)
        proc.kill()
        out, err = proc.communicate(timeout=10)
        pytest.fail(f"no matching journal event within {timeout:g}s:\n{out}\n{err}")


@dataclass(frozen=True)
class Ran:
    """A finished ``irx run``."""

    rc: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def output(self) -> str:
        return f"--- stdout\n{self.stdout}--- stderr\n{self.stderr}"


@pytest.fixture
def irx_cli(tmp_path: Path, run_inventory: Path) -> IrxCli:
    """``irx run`` via subprocess: cwd, IRX_RUNS_DIR, IRX_LOCK_DIR, HOME, TMPDIR and Ansible's temp dirs in
    tmp_path."""
    runs_dir = tmp_path / "runs"
    home, tmp = tmp_path / "home", tmp_path / "t"
    home.mkdir()
    tmp.mkdir()
    env = {
        **os.environ,  # already cleaned and pinned by the autouse clean_env fixture
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
        "HOME": str(home),
        # Temp files too (ansible-runner's private data dir, modules run locally): what a killed run leaves
        # stays in tmp_path. Short: irx's Unix socket lives in there, and socket paths are limited to 107 bytes.
        "TMPDIR": str(tmp),
        "IRX_RUNS_DIR": str(runs_dir),
        "IRX_LOCK_DIR": str(tmp_path / "locks"),
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-local"),
        "ANSIBLE_REMOTE_TEMP": str(tmp_path / "ansible-remote"),
        "ANSIBLE_SSH_CONTROL_PATH_DIR": str(tmp_path / "ansible-cp"),
        "PYTHONUNBUFFERED": "1",
    }
    return IrxCli(cwd=tmp_path, env=env, inventory=run_inventory, runs_dir=runs_dir)


@pytest.fixture(scope="session")
def timeline_validator() -> Draft202012Validator:
    """The journal's JSON Schema (schemas/timeline.schema.json), ready to validate events."""
    schema = json.loads((Path(__file__).resolve().parents[2] / "schemas" / "timeline.schema.json").read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)

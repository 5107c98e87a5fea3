"""The drills' systemd stand-in (irx_testenv.servicectl) against real processes: what the shipped
playbooks and ansible.builtin.systemd read from systemctl and journalctl."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from irx_testenv import _proc
from irx_testenv.servicectl import install


@pytest.fixture
def root(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "drill"
    install(path)
    units = {
        "sleeper": {"exec": [sys.executable, "-c", "import time; print('up', flush=True); time.sleep(600)"],
                    "description": "A sleeper"},
        "worker@": {"exec": ["sleep", "60%i"], "description": "Worker %i"},
        "broken": {"exec": ["/nonexistent/binary"]},
    }  # fmt: skip
    for name, spec in units.items():
        (path / "units" / f"{name}.json").write_text(json.dumps(spec))
    yield path
    subprocess.run([path / "bin" / "systemctl", "stop-all"], check=False, timeout=60)


def tool(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([root / "bin" / args[0], *args[1:]], capture_output=True, text=True, timeout=60, check=False)


def test_start_show_kill_restart_stop(root: Path) -> None:
    assert tool(root, "systemctl", "is-active", "sleeper").stdout.strip() == "inactive"
    assert tool(root, "systemctl", "start", "sleeper.service").returncode == 0
    active = tool(root, "systemctl", "is-active", "sleeper")
    assert (active.returncode, active.stdout.strip()) == (0, "active")
    pid = int(tool(root, "systemctl", "show", "-p", "MainPID", "--value", "sleeper").stdout)
    assert _proc.pid_alive(pid)
    props = dict(line.split("=", 1) for line in tool(root, "systemctl", "show", "sleeper").stdout.splitlines())
    assert (props["LoadState"], props["ActiveState"], props["SubState"]) == ("loaded", "active", "running")
    assert int(props["MemoryCurrent"]) > 1 << 20
    # Killed behind the manager's back: failed, as systemd says after a crash.
    assert tool(root, "systemctl", "kill", "-s", "KILL", "sleeper").returncode == 0
    _proc.wait_for(lambda: not _proc.pid_alive(pid), timeout=10, what="the kill")
    failed = tool(root, "systemctl", "is-active", "sleeper")
    assert (failed.returncode, failed.stdout.strip()) == (3, "failed")
    assert tool(root, "systemctl", "restart", "sleeper").returncode == 0
    new_pid = int(tool(root, "systemctl", "show", "-p", "MainPID", "--value", "sleeper").stdout)
    assert new_pid not in (0, pid)
    assert tool(root, "systemctl", "stop", "sleeper").returncode == 0
    assert not _proc.pid_alive(new_pid)
    assert tool(root, "systemctl", "is-active", "sleeper").stdout.strip() == "inactive"
    assert tool(root, "journalctl", "-u", "sleeper", "--no-pager").stdout.splitlines() == ["up", "up"]


def test_template_instances_and_list_units(root: Path) -> None:
    assert tool(root, "systemctl", "start", "worker@1", "worker@2").returncode == 0
    listed = tool(root, "systemctl", "list-units", "worker@*", "--state=active", "--no-legend", "--plain").stdout
    assert [line.split()[:3] for line in listed.splitlines()] == [
        ["worker@1.service", "loaded", "active"],
        ["worker@2.service", "loaded", "active"],
    ]
    pid = int(tool(root, "systemctl", "show", "-p", "MainPID", "--value", "worker@2").stdout)
    assert Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[:2] == [b"sleep", b"602"]


def test_errors_are_systemctl_shaped(root: Path) -> None:
    missing = tool(root, "systemctl", "start", "nope")
    assert (missing.returncode, missing.stderr.strip()) == (4, "Unit nope.service not found.")
    assert tool(root, "systemctl", "is-active", "nope").returncode == 3
    assert "not-found" in tool(root, "systemctl", "show", "nope").stdout
    unknown = tool(root, "systemctl", "frobnicate", "sleeper")
    assert unknown.returncode == 1
    assert "Unknown command verb frobnicate" in unknown.stderr
    broken = tool(root, "systemctl", "start", "broken")
    assert broken.returncode == 1
    assert "failed" in broken.stderr


def test_without_a_drill_root_it_says_what_it_is(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "IRX_DRILL_ROOT"}
    proc = subprocess.run([sys.executable, "-m", "irx_testenv.servicectl", "systemctl", "is-active", "x"],
                          capture_output=True, text=True, env=env, timeout=60, check=False)  # fmt: skip
    assert proc.returncode == 1
    assert "stand-in for systemd" in proc.stderr

"""Shared test setup: a clean, pinned environment for every test."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No user config leaks in: IRX_* and ANSIBLE_* from the caller are removed, Ansible is pinned."""
    for name in list(os.environ):
        if name.startswith(("IRX_", "ANSIBLE_")) and name != "IRX_UPDATE_GOLDEN":
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ANSIBLE_NOCOLOR", "1")
    monkeypatch.setenv("ANSIBLE_HOST_KEY_CHECKING", "True")
    monkeypatch.setenv("ANSIBLE_LOCAL_TEMP", str(tmp_path / "ansible-local"))
    monkeypatch.setenv("ANSIBLE_REMOTE_TEMP", "/tmp/.irx-ansible-remote")
    monkeypatch.setenv("NO_COLOR", "1")
    # ansible-playbook must be on PATH for ansible-runner: the venv's bin first.
    monkeypatch.setenv("PATH", f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}")


@pytest.fixture
def repo() -> Path:
    return REPO

"""Least privilege: irx connects as a real unprivileged account and escalates with sudo only for the steps
that declare ``become: true``; the become password comes from a file, the terminal (-K) or a vaulted
``ansible_become_password``, and never reaches a command line or a file a run leaves. A missing or wrong
password, an account without sudo, and a step without become that the host denies are each said plainly.
(The flagship playbook's drill as such an account: test_least_privilege_drill.py.)"""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml
from journal_checks import check_journal, host_results, of_type
from jsonschema import Draft202012Validator
from test_secret_canary import ArgvSampler, left_behind_roots, needles, search_files

from irx.timeline import read_journal
from irx_testenv import SshHosts

if TYPE_CHECKING:
    from conftest import IrxCli, Ran  # tests/integration/conftest.py, which pytest loads as conftest

pytestmark = pytest.mark.integration

VENV_BIN = Path(sys.executable).parent
PLAYBOOKS = str(Path(__file__).parent / "playbooks")
NAMES = ("lp1", "lp2")


def hosts_for(tmp_path_factory: pytest.TempPathFactory, sudo: str | None) -> Iterator[SshHosts]:
    with SshHosts(NAMES, base_dir=tmp_path_factory.mktemp(f"lp-{sudo}"), group="testhosts", login="user",
                  sudo=sudo) as hosts:  # fmt: skip
        yield hosts


@pytest.fixture(scope="module")
def sudo_password_hosts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshHosts]:
    yield from hosts_for(tmp_path_factory, "password")


@pytest.fixture(scope="module")
def sudo_hosts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshHosts]:
    yield from hosts_for(tmp_path_factory, "nopasswd")


@pytest.fixture(scope="module")
def no_sudo_hosts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshHosts]:
    yield from hosts_for(tmp_path_factory, None)


def user_state(hosts: SshHosts, tmp_path: Path) -> Path:
    """A directory the account may write (the hosts share this machine's filesystem)."""
    state = hosts.user_home / f"state-{tmp_path.name}"
    state.mkdir()
    os.chown(state, *owner(hosts.user_home))
    return state


def owner(path: Path) -> tuple[int, int]:
    info = path.stat()
    return info.st_uid, info.st_gid


def inventory_file(hosts: SshHosts, tmp_path: Path, **extra: Any) -> Path:
    inventory = hosts.inventory()
    inventory["all"]["children"]["testhosts"]["vars"].update(extra)
    path = tmp_path / "inventory.yml"
    path.write_text(yaml.safe_dump(inventory, sort_keys=False))
    return path


def mkdir(path: Path) -> Path:
    path.mkdir()
    return path


def as_user(irx_cli: IrxCli, inventory: Path) -> dict[str, str]:
    # ANSIBLE_REMOTE_TEMP of irx_cli is in root's 0700 tmp_path: the account needs its own (its ~/.ansible).
    return {k: v for k, v in irx_cli.env.items() if k != "ANSIBLE_REMOTE_TEMP"}


def run_become(
    irx_cli: IrxCli, hosts: SshHosts, tmp_path: Path, *args: str, inventory: Path | None = None
) -> tuple[Ran, Path]:
    inventory = inventory or inventory_file(hosts, tmp_path)
    state = user_state(hosts, tmp_path)
    ran = irx_cli.irx("run", "run-become", "-p", PLAYBOOKS, "-i", str(inventory),
                      "-e", f"state_dir={state}", "--yes", "--format", "json", *args,
                      env=as_user(irx_cli, inventory), timeout=180)  # fmt: skip
    return ran, state


def assert_escalated_only_where_declared(hosts: SshHosts, state: Path, journal: Any) -> None:
    uid = owner(hosts.user_home)[0]
    for name in NAMES:
        assert (state / f"plain-{name}").stat().st_uid == uid  # unprivileged step: as the SSH user
        assert (state / f"plain-{name}").read_text().strip() == hosts.user
        assert (state / f"root-{name}").stat().st_uid == 0  # become: true: as root
        assert (state / f"root-{name}").read_text().strip() == "root"
    whoami = host_results(journal, "whoami")
    assert {h: r["stdout"].strip() for h, r in whoami.items()} == dict.fromkeys(NAMES, hosts.user)
    assert journal.events[-1]["status"] == "verified"


def test_with_a_become_password_from_a_file_the_terminal_or_the_vault_and_never_on_a_command_line(
    sudo_password_hosts: SshHosts, irx_cli: IrxCli, tmp_path: Path, timeline_validator: Draft202012Validator
) -> None:
    hosts = sudo_password_hosts
    password = hosts.become_password
    assert password
    forms = needles(f"x-{password.split('-')[1]}-x")  # its random core, in every encoding
    password_file = tmp_path / "become-pass"
    password_file.write_text(password + "\n")
    password_file.chmod(0o600)
    started = time.time()
    with ArgvSampler(forms) as sampler:
        # Without a password: refused before any step, saying what to do.
        missing, _ = run_become(irx_cli, hosts, mkdir(tmp_path / "missing"))
        # From a file.
        from_file, state_file = run_become(irx_cli, hosts, mkdir(tmp_path / "file"), "--become-password-file",
                                           str(password_file))  # fmt: skip
        # On the terminal (-K), as an operator types it.
        typed, state_typed, screen = run_on_terminal(irx_cli, hosts, tmp_path / "typed", password)
        # From a vault-encrypted ansible_become_password in the inventory.
        vaulted, state_vaulted = run_vaulted(irx_cli, hosts, tmp_path / "vaulted", password)
    assert missing.rc == 2, missing.output
    assert "sudo there needs a password: give --ask-become-pass or --become-password-file" in missing.stderr
    for ran in (from_file, vaulted):
        assert ran.rc == 0, ran.output
    assert typed == 0, screen
    assert "BECOME password:" in screen
    assert password not in screen  # not echoed
    journals = [read_journal(p) for p in irx_cli.journals()]
    verified = [j for j in journals if j.events[-1]["status"] == "verified"]
    assert len(verified) == 3
    for journal, state in zip(verified, (state_file, state_typed, state_vaulted), strict=True):
        check_journal(journal, timeline_validator)
        assert_escalated_only_where_declared(hosts, state, journal)
        assert [e["action"] for e in of_type(journal, "lease")] == ["acquired"] * 2 + ["released"] * 2

    scanned, found = search_files(left_behind_roots(tmp_path, hosts, None, started), forms)
    print(
        f"\nbecome password: 4 runs as {hosts.user}; {sampler.samples} argv samples, {len(sampler.processes)} "
        f"processes ({sampler.seen('sudo')} sudo, {sampler.seen('sshd')} sshd), {len(sampler.sightings)} "
        f"sightings; {scanned} files scanned, {len(found)} holding it"
    )
    assert sampler.samples > 500
    assert sampler.seen("sudo") > 0, "sudo never ran: nothing escalated"
    assert [(s.pid, s.argv) for s in sampler.sightings] == []
    assert found == [str(password_file)]  # the operator's own file, nothing else


def run_on_terminal(irx_cli: IrxCli, hosts: SshHosts, tmp_path: Path, password: str) -> tuple[int, Path, str]:
    tmp_path.mkdir()
    inventory = inventory_file(hosts, tmp_path)
    state = user_state(hosts, tmp_path)
    master, slave = pty.openpty()
    argv = [str(VENV_BIN / "irx"), "run", "run-become", "-p", PLAYBOOKS, "-i", str(inventory),
            "-e", f"state_dir={state}", "--yes", "-K"]  # fmt: skip
    proc = subprocess.Popen(argv, cwd=irx_cli.cwd, env=as_user(irx_cli, inventory), stdin=slave, stdout=slave,
                            stderr=slave, start_new_session=True)  # fmt: skip
    os.close(slave)
    seen, typed = b"", False
    deadline = time.monotonic() + 180
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:
                    break
                if not chunk:
                    break
                seen += chunk
            if not typed and b"BECOME password:" in seen:
                os.write(master, password.encode() + b"\n")
                typed = True
            if proc.poll() is not None and not ready:
                break
        proc.wait(timeout=30)
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, state, seen.decode(errors="replace")


def run_vaulted(irx_cli: IrxCli, hosts: SshHosts, tmp_path: Path, password: str) -> tuple[Ran, Path]:
    tmp_path.mkdir()
    vault_file = tmp_path / "vault-pass"
    vault_file.write_text("irx-test-vault\n")
    vault_file.chmod(0o600)
    inventory = tmp_path / "inventory"
    (inventory / "group_vars").mkdir(parents=True)
    (inventory / "hosts.yml").write_text(yaml.safe_dump(hosts.inventory(), sort_keys=False))
    done = subprocess.run(
        [str(VENV_BIN / "ansible-vault"), "encrypt_string", "--vault-password-file", str(vault_file),
         "--name", "ansible_become_password", "--stdin-name", "ansible_become_password"],
        input=password, capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    (inventory / "group_vars" / "testhosts.yml").write_text(done.stdout)
    return run_become(irx_cli, hosts, tmp_path, "--vault-password-file", str(vault_file), inventory=inventory)


def test_a_wrong_become_password_is_said_plainly(
    sudo_password_hosts: SshHosts, irx_cli: IrxCli, tmp_path: Path
) -> None:
    wrong = tmp_path / "wrong"
    wrong.write_text("not-the-password\n")
    ran, state = run_become(irx_cli, sudo_password_hosts, tmp_path, "--become-password-file", str(wrong))
    assert ran.rc == 2, ran.output
    assert "become failed: sudo there refused the become password" in ran.stderr
    assert list(state.iterdir()) == []  # nothing ran


def test_passwordless_sudo_escalates_only_the_steps_that_declare_it(
    sudo_hosts: SshHosts, irx_cli: IrxCli, tmp_path: Path, timeline_validator: Draft202012Validator
) -> None:
    ran, state = run_become(irx_cli, sudo_hosts, tmp_path)
    assert ran.rc == 0, ran.output
    (journal,) = map(read_journal, irx_cli.journals())
    check_journal(journal, timeline_validator)
    assert_escalated_only_where_declared(sudo_hosts, state, journal)


def test_an_account_without_sudo_and_a_step_the_host_denies_are_said_plainly(
    no_sudo_hosts: SshHosts, irx_cli: IrxCli, tmp_path: Path, timeline_validator: Draft202012Validator
) -> None:
    password_file = tmp_path / "its-own-password"  # the account's right password: sudo still says no
    password_file.write_text(f"{no_sudo_hosts.become_password}\n")
    ran, state = run_become(irx_cli, no_sudo_hosts, tmp_path, "--become-password-file", str(password_file))
    assert ran.rc == 2, ran.output
    assert "become failed: the SSH user may not use sudo there (sudoers)" in ran.stderr
    assert list(state.iterdir()) == []
    # A step without become that writes where the account may not: failed, with the hint.
    root_only = no_sudo_hosts.user_home / f"root-only-{tmp_path.name}"  # traversable, not writable by it
    root_only.mkdir(mode=0o755)
    (root_only / "backlog").write_text("4\n")
    inventory = inventory_file(no_sudo_hosts, tmp_path)
    denied = irx_cli.irx("run", "run-gated", "-p", PLAYBOOKS, "-i", str(inventory),
                         "-e", f"state_dir={root_only}", "--yes", env=as_user(irx_cli, inventory))  # fmt: skip
    assert denied.rc == 1, denied.output
    journal = read_journal(irx_cli.journals()[-1])
    check_journal(journal, timeline_validator)
    fix = host_results(journal, "fix")
    for name in NAMES:
        assert fix[name]["status"] == "failed"
        assert "Permission denied" in fix[name]["msg"]
        assert fix[name]["msg"].endswith(
            "(permission denied as the SSH user; if the step needs root, declare become: true)"
        )

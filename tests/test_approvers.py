"""Who may approve: rule precedence, the two-person rule's counts, password checks, and bad files pointing at
their line."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from irx.approvers import Rule, User, account_of, anyone, hash_password, load_approvers
from irx.errors import UsageError

POLICY = """\
apiVersion: irx/v1
kind: Approvers
users:
  - {name: alice, groups: [dba, oncall], password: "%(alice)s"}
  - {name: bob, groups: [oncall]}
  - {name: carol, groups: [leads]}
policy:
  default: {approvers: ["group:oncall"], approvals: 1}
  severity: {SEV1: {approvals: 2, requester_may_approve: false}}
  playbooks:
    db-pool-exhausted:
      approvers: ["group:dba"]
      steps: {terminate_idle: {approvals: 3, approvers: [carol, "group:dba"]}}
"""


def write(tmp_path: Path, text: str, mode: int = 0o600) -> Path:
    path = tmp_path / "approvers.yaml"
    path.write_text(text)
    path.chmod(mode)
    return path


@pytest.fixture(scope="module")
def alice_hash() -> str:
    return hash_password("correct horse")


def test_the_most_specific_level_wins_per_key(tmp_path: Path, alice_hash: str) -> None:
    book = load_approvers(write(tmp_path, POLICY % {"alice": alice_hash}))
    assert book.rule_for("disk-full", "SEV3", "cleanup") == Rule(("group:oncall",), 1, True)
    assert book.rule_for("disk-full", "SEV1", "cleanup") == Rule(("group:oncall",), 2, False)
    assert book.rule_for("disk-full", "P0", "cleanup") == Rule(("group:oncall",), 2, False)  # P0 is SEV1
    assert book.rule_for("db-pool-exhausted", "SEV3", "other") == Rule(("group:dba",), 1, True)
    assert book.rule_for("db-pool-exhausted", "SEV1", "other") == Rule(("group:dba",), 2, False)
    assert book.rule_for("db-pool-exhausted", "SEV1", "terminate_idle") == Rule(("carol", "group:dba"), 3, False)


def test_a_steps_declared_approvals_is_a_minimum(tmp_path: Path, alice_hash: str) -> None:
    book = load_approvers(write(tmp_path, POLICY % {"alice": alice_hash}))
    assert book.rule_for("disk-full", "SEV3", "cleanup", declared=2).approvals == 2
    assert book.rule_for("disk-full", "SEV1", "cleanup", declared=1).approvals == 2  # cannot lower it
    assert anyone().rule_for("x", "SEV1", "y") == Rule((), 1, True)
    assert anyone().rule_for("x", "SEV1", "y", declared=2) == Rule((), 2, True)


def test_approvers_are_users_and_groups_and_cli_identities_match_on_the_user(tmp_path: Path, alice_hash: str) -> None:
    book = load_approvers(write(tmp_path, POLICY % {"alice": alice_hash}))
    dba = book.rule_for("db-pool-exhausted", "SEV3", "other")
    assert book.may_approve(dba, "alice")
    assert book.may_approve(dba, "alice@db-admin-1")
    assert not book.may_approve(dba, "bob@db-admin-1")
    assert not book.may_approve(dba, "mallory")
    step = book.rule_for("db-pool-exhausted", "SEV3", "terminate_idle")
    assert book.may_approve(step, "carol@x")
    assert not book.may_approve(step, "bob")
    assert book.may_approve(Rule(()), "anybody@anywhere")
    assert account_of("alice@host") == "alice"
    assert account_of("alice") == "alice"
    assert book.users["bob"] == User("bob", ("oncall",), None)


def test_passwords_verify_only_for_their_user(tmp_path: Path, alice_hash: str) -> None:
    book = load_approvers(write(tmp_path, POLICY % {"alice": alice_hash}))
    assert book.verify_password("alice", "correct horse") == book.users["alice"]
    assert book.verify_password("alice", "correct horse ") is None
    assert book.verify_password("bob", "") is None  # no password: cannot log in
    assert book.verify_password("nobody", "correct horse") is None
    assert alice_hash.startswith("scrypt$16384$8$1$")
    assert hash_password("correct horse") != alice_hash


def test_a_file_others_may_read_is_refused(tmp_path: Path, alice_hash: str) -> None:
    path = write(tmp_path, POLICY % {"alice": alice_hash}, mode=0o640)
    with pytest.raises(UsageError) as exc:
        load_approvers(path)
    assert str(exc.value) == (
        f"{path}: the approvers file (it holds password hashes) is readable by others; chmod 600 {path}"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "apiVersion: irx/v1\nkind: Approvers\nusers:\n  - {name: alice}\n  - {name: alice}\n",
            "5:12: users/1/name: 'alice' is already the name of users/0",
        ),
        (
            "apiVersion: irx/v1\nkind: Approvers\nusers: [{name: bob}]\npolicy:\n  default:\n"
            '    approvers: [bob, "group:dba"]\n',
            "6:22: policy/default/approvers/1: no user of this file is in group 'dba'",
        ),
        (
            "apiVersion: irx/v1\nkind: Approvers\nusers: [{name: bob}]\npolicy:\n  playbooks:\n"
            "    disk-full:\n      steps: {cleanup: {approvers: [carol]}}\n",
            "7:37: policy/playbooks/disk-full/steps/cleanup/approvers/0: 'carol' is not a user of this file",
        ),
        (
            "apiVersion: irx/v1\nkind: Approvers\nusers: [{name: bob}]\npolicy:\n  default: {approvals: 0}\n",
            "5:24: policy/default/approvals: 0 is less than the minimum of 1",
        ),
        (
            "apiVersion: irx/v1\nkind: Approvers\nusers:\n"
            '  - {name: bob, password: "scrypt$99$8$1$c2FsdHNhbHQ=$aGFzaGhhc2hoYXNoaGFzaA=="}\n',
            "4:27: users/0/password: scrypt parameters out of range (N a power of 2 up to 131072, r 1..16, p 1..4)",
        ),
        ("apiVersion: irx/v1\nkind: Approvers\nusers: [{name: bob}\n", "4:1: "),
    ],
)
def test_a_bad_file_names_the_line(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(UsageError) as exc:
        load_approvers(path)
    assert str(exc.value).startswith(f"{path}:{message}")


def test_a_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"cannot read the approvers file: No such file or directory"):
        load_approvers(tmp_path / "nope.yaml")
    assert not os.path.exists(tmp_path / "nope.yaml")


def test_hash_password_reads_stdin_and_prints_a_hash_that_verifies(tmp_path: Path) -> None:
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "irx", "hash-password"],
        input="s3cret pass\n",
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    stored = done.stdout.strip()
    assert "s3cret" not in stored
    book = load_approvers(
        write(tmp_path, f'apiVersion: irx/v1\nkind: Approvers\nusers: [{{name: dana, password: "{stored}"}}]\n')
    )
    assert book.verify_password("dana", "s3cret pass") == User("dana", (), stored)
    empty = subprocess.run(
        [sys.executable, "-m", "irx", "hash-password"], input="\n", capture_output=True, text=True, check=False
    )
    assert (empty.returncode, empty.stdout, empty.stderr) == (2, "", "irx: error: an empty password: nothing printed\n")


def test_irx_run_refuses_a_bad_approvers_file_before_anything_starts(tmp_path: Path) -> None:
    import subprocess
    import sys

    import irx

    engine = Path(irx.__file__).resolve().parents[1]
    path = write(
        tmp_path, "apiVersion: irx/v1\nkind: Approvers\nusers: [{name: x}]\npolicy: {default: {approvers: [y]}}\n"
    )
    env = {**os.environ, "PYTHONPATH": str(engine), "IRX_APPROVERS": str(path), "IRX_RUNS_DIR": str(tmp_path / "runs")}
    argv = [
        sys.executable,
        "-m",
        "irx",
        "run",
        "db-pool-exhausted",
        "-p",
        str(engine.parent / "playbooks"),
        "--dry-run",
    ]
    done = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, check=False)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == f"irx: error: {path}:4:32: policy/default/approvers/0: 'y' is not a user of this file\n"
    assert not (tmp_path / "runs").exists()  # no journal: nothing started

"""The run's passwords besides the connection's (irx.vault) and Ansible's reasons on one line (irx.ansible_display)."""

from __future__ import annotations

from pathlib import Path

from irx.ansible_display import ansible_reason, one_line
from irx.vault import Vault


def test_a_vaults_secrets_are_the_passwords_given_and_the_readable_password_files(tmp_path: Path) -> None:
    vault_file, become_file, env_file = tmp_path / "vault", tmp_path / "become", tmp_path / "env-become"
    vault_file.write_text("vault-pass\n")
    become_file.write_text("  become-pass  \n")
    env_file.write_text("env-become-pass\n")
    vault = Vault(password_file=str(vault_file), become_password="typed-become", become_password_file=str(become_file))
    assert vault.secrets({"ANSIBLE_BECOME_PASSWORD_FILE": str(env_file)}) == [
        "typed-become",
        "vault-pass",
        "become-pass",
        "env-become-pass",
    ]


def test_an_executable_missing_or_empty_password_file_adds_no_secret(tmp_path: Path) -> None:
    script, empty = tmp_path / "vault-client", tmp_path / "empty"
    script.write_text("#!/bin/sh\necho from-the-script\n")  # Ansible runs it; irx cannot know its output
    script.chmod(0o700)
    empty.write_text("\n")
    vault = Vault(password_file=str(script), password="typed", become_password_file=str(tmp_path / "missing"))
    assert vault.secrets({"ANSIBLE_BECOME_PASSWORD_FILE": str(empty)}) == ["typed"]
    assert Vault().secrets({}) == []


def test_a_vaults_passwords_are_not_in_its_repr() -> None:
    text = repr(Vault(password_file="/p", password="pw-one", become_password="pw-two"))
    assert "pw-one" not in text
    assert "pw-two" not in text
    assert "/p" in text


class ParserError(Exception):
    def __init__(self, message: str, line: int | None) -> None:
        super().__init__(message)
        self.message = message
        self.obj = type("Origin", (), {"line_num": line})()


def test_an_ansible_reason_is_its_first_line_with_the_line_it_points_at() -> None:
    error = ParserError("Failed to parse inventory: bad   key\n  more detail\n", 7)
    assert ansible_reason(error) == "line 7: bad key"
    assert ansible_reason(ParserError("no line known", None)) == "no line known"
    assert ansible_reason(ValueError()) == "ValueError"


def test_one_line_joins_lines_and_names_ansibles_tagged_types_plainly() -> None:
    text = "expected <class 'ansible.module_utils._internal._datatag._AnsibleTaggedStr'>,\n  got <class 'dict'>"
    assert one_line(text) == "expected str, got dict"

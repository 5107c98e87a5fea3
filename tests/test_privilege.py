"""A failure for lack of privilege is said plainly (irx.executors.ansible.privilege_hint), from the results
Ansible really returns for a refused sudo and a denied command (captured from the least-privilege tests)."""

from __future__ import annotations

import pytest

from irx.executors.ansible_results import host_result, privilege_hint

NOT_IN_SUDOERS = {
    "failed": True, "rc": 1, "msg": "Module result deserialization failed: No start of json char found",
    "module_stdout": "",
    "module_stderr": "sudo: unable to resolve host lp1: Temporary failure in name resolution\n"
                     "irxt4881c8u is not in the sudoers file.\n",
}  # fmt: skip


@pytest.mark.parametrize(
    ("res", "expected"),
    [
        ({"failed": True, "msg": "Task failed: Missing sudo password"},
         "become failed: sudo there needs a password: give --ask-become-pass or --become-password-file, or set "
         "ansible_become_password (vault-encrypted) for the host (Task failed: Missing sudo password)"),
        ({"failed": True, "msg": "Task failed: Incorrect sudo password"},
         "become failed: sudo there refused the become password (Task failed: Incorrect sudo password)"),
        (NOT_IN_SUDOERS,
         "become failed: the SSH user may not use sudo there (sudoers) (irxt4881c8u is not in the sudoers file.)"),
    ],
)  # fmt: skip
def test_a_refused_become_says_why_and_quotes_sudo(res: dict[str, object], expected: str) -> None:
    assert privilege_hint(host_result("lp1", res, 0.1), become=True).msg == expected


def test_a_denied_step_without_become_gets_the_hint_and_nothing_else_changes() -> None:
    denied = host_result("lp1", {"failed": True, "rc": 1, "stderr": "bash: /srv/x: Permission denied"}, 0.1)
    assert privilege_hint(denied, become=False).msg == (
        "rc 1: bash: /srv/x: Permission denied (permission denied as the SSH user; if the step needs root, "
        "declare become: true)"
    )
    other = host_result("lp1", {"failed": True, "rc": 3, "stderr": "connection refused"}, 0.1)
    assert privilege_hint(other, become=False) == other
    assert privilege_hint(other, become=True) == other
    ok = host_result("lp1", {"rc": 0, "stdout": "Permission denied is just text here", "stderr": ""}, 0.1)
    assert privilege_hint(ok, become=False) == ok

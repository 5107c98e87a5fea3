"""The passwords of a run besides the connection's: Ansible Vault's and privilege escalation's.

They reach Ansible as ansible-playbook's own start-up gives them, and every value they open is a secret of
the run (:func:`vaulted_values`). ansible is imported inside the functions, never at module level.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from irx.ansible_display import ansible_reason
from irx.errors import InventoryError


@dataclass(frozen=True)
class Vault:
    """The passwords Ansible needs besides the connection's, as the operator gave them.

    Vault-encrypted inventory values: ``--vault-password-file`` or a password asked on the terminal
    (``--ask-vault-pass``); with neither, Ansible's own settings (``ANSIBLE_VAULT_PASSWORD_FILE``,
    ``vault_password_file`` and ``vault_identity_list`` in ansible.cfg) apply, as for ansible-playbook.
    Privilege escalation (``become``): ``--become-password-file`` or ``--ask-become-pass``; with neither,
    the inventory's ``ansible_become_password`` (vaulted, ideally) or ``ANSIBLE_BECOME_PASSWORD_FILE``.
    Every one of them is a secret of the run."""

    password_file: str | None = None
    password: str | None = field(default=None, repr=False)
    become_password_file: str | None = None
    become_password: str | None = field(default=None, repr=False)

    def secrets(self, environ: Mapping[str, str]) -> list[str]:
        """The passwords given here or in files irx can read (an executable password file is Ansible's to
        run, not irx's: its output cannot be known in advance)."""
        found = [p for p in (self.password, self.become_password) if p]
        for path in (self.password_file, self.become_password_file, environ.get("ANSIBLE_BECOME_PASSWORD_FILE")):
            if path and not os.access(path, os.X_OK):
                try:
                    text = Path(path).read_text(encoding="utf-8", errors="replace").strip()
                except OSError:
                    continue
                if text:
                    found.append(text)
        return found


def open_vault(loader: Any, vault: Vault) -> None:
    """Give Ansible the vault secrets, as ansible-playbook's own start-up does (and, once per process, the
    context that lets a vaulted value be read). A wrong password shows when a value is read."""
    from ansible import constants

    configured = constants.DEFAULT_VAULT_PASSWORD_FILE or constants.DEFAULT_VAULT_IDENTITY_LIST
    if not (vault.password_file or vault.password is not None or configured):
        return
    from ansible.cli import CLI
    from ansible.parsing.vault import VaultSecret, VaultSecretsContext

    if vault.password_file and not os.path.isfile(vault.password_file):
        raise InventoryError(f"--vault-password-file {vault.password_file}: no such file")
    secrets = CLI.setup_vault_secrets(
        loader,
        vault_ids=list(constants.DEFAULT_VAULT_IDENTITY_LIST),
        vault_password_files=[vault.password_file] if vault.password_file else [],
        auto_prompt=False,
        initialize_context=False,
    )
    if vault.password is not None:
        secrets.insert(0, (constants.DEFAULT_VAULT_IDENTITY, VaultSecret(vault.password.encode())))
    loader.set_vault_secrets(secrets)
    current = VaultSecretsContext.current(optional=True)
    if current is None:
        VaultSecretsContext.initialize(VaultSecretsContext(secrets))
    else:  # a second inventory in one process (tests, a server): its secrets, not the first one's
        current.secrets = secrets


class HostVars(Protocol):
    """What :func:`vaulted_values` reads of an inventory (:class:`irx.inventory.Inventory` is one)."""

    def host_vars(self, name: str) -> Mapping[str, Any]: ...


def vaulted_values(inv: HostVars, hosts: Iterable[str]) -> list[str]:
    """The decrypted text of every vault-encrypted variable of ``hosts``: secrets, wherever they go."""
    from ansible.parsing.vault import EncryptedString

    found: list[str] = []
    seen: set[int] = set()

    def walk(host: str, var: str, value: Any) -> None:
        if isinstance(value, EncryptedString):
            if id(value) not in seen:
                seen.add(id(value))
                found.append(decrypt(host, var, value))
        elif isinstance(value, Mapping):
            for item in value.values():
                walk(host, var, item)
        elif isinstance(value, list | tuple):
            for item in value:
                walk(host, var, item)

    for host in hosts:
        for var, value in inv.host_vars(host).items():
            walk(host, var, value)
    return found


def opened(host: str, var: str, value: Any) -> Any:
    """``value`` with every vault-encrypted string in it decrypted (vaulted_values makes them secrets)."""
    if type(value).__name__ == "EncryptedString":
        return decrypt(host, var, value)
    if isinstance(value, Mapping):
        return {k: opened(host, var, v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [opened(host, var, v) for v in value]
    return value


def decrypt(host: str, var: str, value: Any) -> str:
    """The plain text of one vault-encrypted value of ``host``'s variable ``var``."""
    from ansible.errors import AnsibleError

    try:
        return str(value)
    except ReferenceError:  # no vault secrets were given
        raise InventoryError(
            f"host {host}: variable {var} is vault-encrypted: give --vault-password-file FILE or --ask-vault-pass "
            "(or set ANSIBLE_VAULT_PASSWORD_FILE)"
        ) from None
    except AnsibleError as exc:
        raise InventoryError(f"host {host}: variable {var}: {ansible_reason(exc)}") from None

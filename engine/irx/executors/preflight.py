"""SSH preflight with paramiko: every target host's reachability, host key and login, all at once.

Ansible finds a dead host only when a task reaches it, after its own start-up and a connect timeout.
Before the first step, irx opens one SSH connection per host concurrently and checks the host key
against the known_hosts Ansible would use (StrictHostKeyChecking), so a dead host or a wrong key is
known in well under a second and recorded before anything runs. Hosts with a local connection are not
checked.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_TIMEOUT = 1.5


@dataclass(frozen=True)
class SshTarget:
    host: str  # inventory name
    address: str
    port: int
    user: str | None
    key_file: str | None
    known_hosts: tuple[str, ...]


def ssh_target(name: str, hostvars: Mapping[str, Any]) -> SshTarget | None:
    """How Ansible would reach ``name`` over SSH, or None for a local (or non-SSH) connection."""
    connection = str(hostvars.get("ansible_connection", "ssh"))
    if connection not in {"ssh", "smart", "paramiko", "paramiko_ssh"}:
        return None
    options = _ssh_options(
        " ".join(
            str(hostvars.get(k, "")) for k in ("ansible_ssh_common_args", "ansible_ssh_extra_args", "ansible_ssh_args")
        )
    )
    known = options.get("userknownhostsfile")
    files = tuple(known.split()) if known else (str(Path.home() / ".ssh" / "known_hosts"),)
    return SshTarget(
        host=name,
        address=str(hostvars.get("ansible_host", name)),
        port=int(hostvars.get("ansible_port", hostvars.get("ansible_ssh_port", 22))),
        user=_opt(hostvars.get("ansible_user", hostvars.get("ansible_ssh_user"))),
        key_file=_opt(hostvars.get("ansible_ssh_private_key_file", hostvars.get("ansible_private_key_file"))),
        known_hosts=tuple(os.path.expanduser(f) for f in files),
    )


def _opt(value: Any) -> str | None:
    return None if value in (None, "") else str(value)


def _ssh_options(args: str) -> dict[str, str]:
    """``-o Key=Value`` options from an ssh argument string, keys lower-cased."""
    options: dict[str, str] = {}
    try:
        words = shlex.split(args)
    except ValueError:
        return options
    for index, word in enumerate(words):
        text = (
            words[index + 1] if word == "-o" and index + 1 < len(words) else word[2:] if word.startswith("-o") else ""
        )
        if "=" in text:
            key, _, value = text.partition("=")
            options[key.strip().lower()] = value.strip()
    return options


def check_host(target: SshTarget, timeout: float = DEFAULT_TIMEOUT) -> str | None:
    """None when the host answers SSH with a known key and accepts the login; else why not."""
    import paramiko

    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    for path in target.known_hosts:
        if os.path.exists(path):
            client.load_host_keys(path)
    try:
        client.connect(
            target.address,
            port=target.port,
            username=target.user,
            key_filename=target.key_file,
            timeout=timeout,
            banner_timeout=timeout,
            auth_timeout=timeout * 2,
            allow_agent=False,
            look_for_keys=target.key_file is None,
        )
    except paramiko.BadHostKeyException:
        return f"host key of {target.address} does not match known_hosts: possible man-in-the-middle; not connecting"
    except paramiko.SSHException as exc:
        text = str(exc)
        if "not found in known_hosts" in text:
            return f"host key of {target.address} is not in known_hosts ({', '.join(target.known_hosts)})"
        return f"ssh to {target.address}:{target.port}: {text}"
    except TimeoutError:
        return f"ssh to {target.address}:{target.port}: no answer within {timeout:g}s"
    except paramiko.ssh_exception.NoValidConnectionsError as exc:  # its own text hides why: say it
        reasons = sorted({getattr(error, "strerror", None) or str(error) for error in exc.errors.values()})
        return f"ssh to {target.address}:{target.port}: {'; '.join(reasons) or exc}"
    except OSError as exc:
        return f"ssh to {target.address}:{target.port}: {exc.strerror or exc}"
    finally:
        client.close()
    return None


def preflight(targets: Sequence[SshTarget], timeout: float = DEFAULT_TIMEOUT) -> dict[str, str]:
    """host -> reason, for every host that failed the check (concurrently, bounded in time)."""
    if not targets:
        return {}
    with ThreadPoolExecutor(max_workers=min(64, len(targets))) as pool:
        reasons = list(pool.map(lambda t: check_host(t, timeout), targets))
    return {t.host: reason for t, reason in zip(targets, reasons, strict=True) if reason is not None}

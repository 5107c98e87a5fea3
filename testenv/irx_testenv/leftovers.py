"""Find (and remove) what test environments left behind: processes, namespaces, links, runtime dirs.

Everything a test environment makes carries ``irxt`` and its uid in its name or path, which is what is
searched for here. Tests that check cleanup call ``leftovers(uid)`` after ``stop()`` and expect ``[]``.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from irx_testenv import _names, _proc
from irx_testenv.ssh import list_links, list_netns, teardown_network

# cwd is searched only for these, so a shell that merely sits in a test directory is not "left over".
# (comm is cut at 15 characters: "prometheus-aler" is Alertmanager, "prometheus-post" postgres_exporter.)
_SERVER_NAMES = frozenset(
    {"postgres", "redis-server", "nginx", "sshd", "prometheus", "prometheus-aler", "prometheus-post"}
)


@dataclass(frozen=True)
class Leftover:
    """One thing a test environment left: a live process, a network namespace, a network link, a
    directory outside the caller's ``base_dir`` (a PostgreSQL cluster, an account's home), an account of
    SshHosts(login="user"), or its sudoers entry."""

    kind: Literal["process", "netns", "link", "dir", "user", "sudoers"]
    name: str
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.kind} {self.name}" + (f" ({self.detail})" if self.detail else "")


def _patterns(uid: str | None) -> tuple[re.Pattern[str], re.Pattern[str], re.Pattern[str]]:
    tag = re.escape(_names.check_uid(uid)) if uid is not None else "[0-9a-f]{6}"
    p = _names.PREFIX
    return (
        re.compile(rf"{p}-{tag}\b"),  # in paths
        re.compile(rf"^{p}-{tag}-"),  # namespaces
        re.compile(rf"^{p}{tag}(b|h\d+)$"),  # bridge and veths
    )


def _own_lineage() -> set[int]:
    pids = {os.getpid()}
    pid = os.getpid()
    while pid > 1:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            break
        pid = int(stat[stat.rindex(")") + 2 :].split()[1])
        pids.add(pid)
    return pids


def _processes(path_re: re.Pattern[str], netns: list[str]) -> list[Leftover]:
    skip = _own_lineage()
    found: dict[int, Leftover] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) in skip or not _proc.pid_alive(int(entry.name)):
            continue
        with contextlib.suppress(OSError):
            cmdline = Path(entry.path, "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            comm = Path(entry.path, "comm").read_text().strip()
            cwd = ""
            if comm in _SERVER_NAMES:
                with contextlib.suppress(OSError):
                    cwd = os.readlink(Path(entry.path, "cwd"))
            if path_re.search(cmdline) or (cwd and path_re.search(cwd)):
                found[int(entry.name)] = Leftover("process", entry.name, cmdline.strip()[:200])
    ip = _proc.find_binary("ip", "/usr/sbin/ip", "/sbin/ip")
    for ns in netns:
        out = _proc.run([ip, "netns", "pids", ns], check=False, timeout=10).stdout
        for pid in map(int, out.split()):
            if pid not in found and pid not in skip and _proc.pid_alive(pid):
                found[pid] = Leftover("process", str(pid), f"in netns {ns}")
    return sorted(found.values(), key=lambda leftover: int(leftover.name))


def leftovers(uid: str | None = None) -> list[Leftover]:
    """Live processes, namespaces, links and runtime dirs of test environment ``uid`` (all when ``None``).

    Zombies are not counted: they hold no ports or files, and a non-reaping PID 1 may keep them a while.
    """
    path_re, ns_re, link_re = _patterns(uid)
    ip = _proc.find_binary("ip", "/usr/sbin/ip", "/sbin/ip")
    netns = [ns for ns in list_netns(ip) if ns_re.match(ns)]
    links = [link for link in list_links(ip) if link_re.match(link)]
    dirs = sorted(str(p) for p in _names.RUNTIME_ROOT.glob(f"{_names.PREFIX}-*") if path_re.search(str(p)))
    tag = uid if uid is not None else "[0-9a-f]{6}"
    user_re = re.compile(rf"^{_names.PREFIX}{tag}u$")
    users = sorted(entry.pw_name for entry in pwd.getpwall() if user_re.match(entry.pw_name))
    sudoers = sorted(str(p) for p in Path("/etc/sudoers.d").glob(f"{_names.PREFIX}-*") if path_re.search(str(p)))
    return [
        *_processes(path_re, netns),
        *(Leftover("netns", ns) for ns in netns),
        *(Leftover("link", link) for link in links),
        *(Leftover("dir", path) for path in dirs),
        *(Leftover("sudoers", path) for path in sudoers),
        *(Leftover("user", name) for name in users),
    ]


def remove_leftovers(uid: str | None = None) -> list[Leftover]:
    """SIGKILL the processes, delete the namespaces, links and dirs :func:`leftovers` reports; return them.

    For stale state after a crashed or killed test run. Never use it while another session of the same
    uid (or, with ``uid=None``, any session) is still running: it removes their environment too.
    """
    found = leftovers(uid)
    for item in found:
        if item.kind == "process":
            with contextlib.suppress(Exception):
                _proc.kill_tree(int(item.name))
    ip = _proc.find_binary("ip", "/usr/sbin/ip", "/sbin/ip")
    # Bridges ("...b") last: their veths must go first.
    links = sorted((i.name for i in found if i.kind == "link"), key=lambda name: name.endswith("b"))
    errors = teardown_network(ip, [i.name for i in found if i.kind == "netns"], links)
    for item in found:
        if item.kind == "dir":
            shutil.rmtree(item.name, ignore_errors=True)
        elif item.kind == "sudoers":  # first: an account's sudo rights never outlive a crashed session
            Path(item.name).unlink(missing_ok=True)
    for item in found:
        if item.kind == "user":
            done = _proc.run([_proc.find_binary("userdel", "/usr/sbin/userdel"), "--force", item.name], check=False)
            if done.returncode not in (0, 6):
                errors.append(f"userdel {item.name}: {done.stderr.strip()}")
    if errors:
        raise _proc.TestEnvError("could not remove every leftover:\n" + "\n".join(errors))
    return found

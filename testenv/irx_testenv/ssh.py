"""SSH test hosts: one network namespace per host on a private bridge, each with its own sshd.

Layout for uid ``abc123`` and subnet ``10.200.7.0/24``::

    root namespace: bridge irxtabc123b 10.200.7.1/24
        veth irxtabc123h0 <-> eth0 in netns irxt-abc123-web1   10.200.7.11, sshd on :22, hostname web1
        veth irxtabc123h1 <-> eth0 in netns irxt-abc123-web2   10.200.7.12, ...

The namespaces have no default route: their traffic never leaves this machine.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import os
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from irx_testenv import _names, _proc
from irx_testenv._proc import TestEnvError
from irx_testenv._service import _Service

# The one range these hosts may use: nothing outside it is ever addressed.
ALLOWED_RANGE = ipaddress.IPv4Network("10.200.0.0/16")
_HOST_OFFSET = 10  # host i gets network address + 11 + i; .1 is the bridge
_NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,30}$")
_LOCK_PATH = Path(tempfile.gettempdir()) / "irx-testenv.lock"


@dataclass(frozen=True)
class SshHost:
    """One namespace host: its inventory name, address and the names of what was made for it."""

    name: str
    address: str
    netns: str
    veth: str
    workdir: Path

    @property
    def root_home(self) -> Path:
        """The host's own ``/root``: bind-mounted over this machine's in the host's mount namespace, so a
        root login reads this host's (empty) dotfiles, not the control node's (a ``.bashrc`` that runs
        ``pyenv init`` hangs every session while a killed ``pyenv rehash`` has left its lock behind)."""
        return self.workdir / "root"


class SshHosts(_Service):
    """Real sshd hosts in network namespaces, reachable from this machine and each other over a bridge.

    Args:
        names: inventory names, also each host's hostname (``[a-z][a-z0-9-]*``).
        base_dir: where the directory ``irxt-<uid>-ssh`` (keys, configs, inventory, logs) is made.
        subnet: a /16../28 inside ``10.200.0.0/16``; ``None`` picks a /24 not in use on this machine.
        group: the inventory group holding the hosts.
        uid: the six-hex-digit id in every name; random when ``None``.
        connect_timeout: SSH connect timeout written to the inventory and used by :meth:`ssh_argv`.
        session_env: environment variables of every SSH session (sshd ``SetEnv``), e.g. a ``PATH``
            that puts a drill's systemd stand-in first; ``{host}`` in a value becomes the host's name.
        login: ``"root"``, or ``"user"``: a real unprivileged account (:attr:`user`, made at ``start()``
            and removed at ``stop()``; the hosts share this machine's users) that the inventory connects as.
        sudo: for ``login="user"``: ``None`` (no sudo rights), ``"nopasswd"`` (passwordless sudo) or
            ``"password"`` (sudo asks for the account's password, :attr:`become_password`). The sudoers
            entry keeps ``session_env``'s PATH as sudo's ``secure_path`` (without ``{host}``), so a
            stand-in stays first under sudo too.

    Needs root (namespaces, bridge). ``start()`` either brings every host up or tears down all it made.
    """

    kind = "ssh"

    def __init__(
        self,
        names: Sequence[str] = ("web1", "web2", "db1"),
        base_dir: Path | str | None = None,
        subnet: str | None = None,
        *,
        group: str = "testhosts",
        uid: str | None = None,
        connect_timeout: int = 5,
        start_timeout: float = 20.0,
        stop_timeout: float = 15.0,
        session_env: Mapping[str, str] | None = None,
        login: str = "root",
        sudo: str | None = None,
    ) -> None:
        super().__init__(base_dir, uid)
        if login not in ("root", "user") or sudo not in (None, "nopasswd", "password"):
            raise ValueError(f"login must be root or user, sudo None, nopasswd or password: {login!r}, {sudo!r}")
        if sudo is not None and login == "root":
            raise ValueError("sudo= is for login='user'")
        self.login, self.sudo = login, sudo
        # The account's password (random per instance), which sudo asks for with sudo="password".
        self.become_password = f"sudo-{secrets.token_hex(12)}" if login == "user" else None
        self._made_user = False
        self.session_env = dict(session_env or {})
        for key, value in self.session_env.items():
            if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", key) or any(c in value for c in '"\n\\'):
                raise ValueError(f"session_env: bad variable {key}={value!r}")
        if not names:
            raise ValueError("SshHosts needs at least one host name")
        for name in names:
            if not _NAME_RE.match(name) or name in ("all", "localhost", "ungrouped"):
                raise ValueError(f"bad host name {name!r}: use [a-z][a-z0-9-]*, not all/localhost/ungrouped")
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate host names in {list(names)}")
        self.names = list(names)
        self.group = group
        self.connect_timeout = connect_timeout
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self._requested_subnet = _check_subnet(subnet, len(names)) if subnet is not None else None
        self._subnet: ipaddress.IPv4Network | None = self._requested_subnet
        self._sshd: dict[str, subprocess.Popen[bytes]] = {}
        self._ip = "/usr/sbin/ip"
        # What this instance made (recorded just before each creation, so a creation that timed out is
        # still cleaned): teardown touches only these, never a same-named object of someone else's.
        self._made_netns: list[str] = []
        self._made_links: list[str] = []

    # --- names and paths -------------------------------------------------------------------------

    @property
    def bridge(self) -> str:
        """Name of the bridge in the root namespace."""
        return f"{_names.PREFIX}{self.uid}b"

    @property
    def subnet(self) -> ipaddress.IPv4Network:
        """The subnet in use (chosen at ``start()`` when not given)."""
        if self._subnet is None:
            raise TestEnvError("subnet not chosen yet: call start() first")
        return self._subnet

    @property
    def bridge_address(self) -> str:
        """This machine's address on the bridge (what the hosts see as their peer)."""
        return str(self.subnet.network_address + 1)

    @property
    def hosts(self) -> dict[str, SshHost]:
        """Every host by name."""
        return {name: self.host(name) for name in self.names}

    def host(self, name: str) -> SshHost:
        """The host called ``name``; ``KeyError`` if there is none."""
        index = self.names.index(name) if name in self.names else -1
        if index < 0:
            raise KeyError(name)
        return SshHost(
            name=name,
            address=str(self.subnet.network_address + _HOST_OFFSET + 1 + index),
            netns=f"{_names.marker(self.uid)}-{name}",
            veth=f"{_names.PREFIX}{self.uid}h{index}",
            workdir=self.workdir / name,
        )

    def address(self, name: str) -> str:
        """IPv4 address of host ``name``."""
        return self.host(name).address

    @property
    def user(self) -> str:
        """The account the inventory connects as: ``root``, or ``irxt<uid>u`` with ``login="user"``."""
        return "root" if self.login == "root" else f"{_names.PREFIX}{self.uid}u"

    @property
    def user_home(self) -> Path:
        """The unprivileged account's home (outside base_dir, which may not be traversable by it)."""
        return _names.RUNTIME_ROOT / f"{_names.marker(self.uid)}-home"

    @property
    def sudoers_path(self) -> Path:
        return Path("/etc/sudoers.d") / _names.marker(self.uid)

    @property
    def key_path(self) -> Path:
        """Private key (ed25519, no passphrase) accepted as root on every host."""
        return self.workdir / "id_ed25519"

    @property
    def known_hosts(self) -> Path:
        """known_hosts with every host's key, under its address and its name."""
        return self.workdir / "known_hosts"

    @property
    def inventory_path(self) -> Path:
        """The YAML Ansible inventory written at ``start()``."""
        return self.workdir / "inventory.yml"

    @property
    def home(self) -> Path:
        """A HOME whose ``.ssh`` holds the key and known_hosts: for Ansible's paramiko connection, which
        ignores ``ansible_ssh_common_args`` and reads ``~/.ssh/known_hosts``."""
        return self.workdir / "home"

    def ssh_options(self) -> list[str]:
        """``-o`` options for a real ``ssh`` to these hosts: only our key and known_hosts, strict host
        checking, no connection sharing (a live master would hide a dead host), bounded connect time."""
        return [
            "-F", "/dev/null",
            "-i", str(self.key_path),
            "-o", "IdentitiesOnly=yes",
            "-o", f"UserKnownHostsFile={self.known_hosts}",
            "-o", "GlobalKnownHostsFile=/dev/null",
            "-o", "StrictHostKeyChecking=yes",
            "-o", "BatchMode=yes",
            "-o", f"ConnectTimeout={self.connect_timeout}",
            "-o", "ControlMaster=no",
            "-o", "ControlPath=none",
        ]  # fmt: skip

    def ssh_argv(self, name: str, *command: str) -> list[str]:
        """argv of ``ssh root@<host> command...`` with :meth:`ssh_options`."""
        ssh = _proc.find_binary("ssh", "/usr/bin/ssh")
        return [ssh, *self.ssh_options(), f"root@{self.address(name)}", *command]

    def inventory(self) -> dict[str, Any]:
        """The inventory as a dict (what ``inventory_path`` holds), e.g. for ``ansible_runner.run``."""
        common = (
            f"-o UserKnownHostsFile={self.known_hosts} -o StrictHostKeyChecking=yes "
            "-o ControlMaster=no -o ControlPath=none"
        )
        return {
            "all": {
                "children": {
                    self.group: {
                        "hosts": {
                            # irx_lease_file: the hosts share this machine's filesystem, so each keeps
                            # its irx lease in its own directory (on a real host the default is right).
                            h.name: {
                                "ansible_host": h.address,
                                "irx_lease_file": str(self._lease_dir(h) / "lease.json"),
                            }
                            for h in self.hosts.values()
                        },
                        "vars": {
                            "ansible_user": self.user,
                            "ansible_ssh_private_key_file": str(self.key_path),
                            "ansible_python_interpreter": "/usr/bin/python3",
                            "ansible_ssh_common_args": common,
                            # ssh_args come before common args on ssh's command line and ssh keeps
                            # the first value: replace Ansible's default ControlMaster=auto here.
                            "ansible_ssh_args": "-o ControlMaster=no -o ServerAliveInterval=5 -o ServerAliveCountMax=2",
                            "ansible_ssh_timeout": self.connect_timeout,
                            # One SSH connection per task instead of three or four (mkdir, put, run):
                            # without connection sharing this is what keeps runs fast.
                            "ansible_pipelining": True,
                        },
                    }
                }
            }
        }

    def _lease_dir(self, host: SshHost) -> Path:
        # Writable by the login user without sudo: a run whose mutating steps do not escalate still leases.
        return self.user_home / "leases" / host.name if self.login == "user" else host.workdir

    # --- lifecycle -------------------------------------------------------------------------------

    def _start(self) -> None:
        if os.geteuid() != 0:
            raise TestEnvError("SshHosts needs root: it creates network namespaces and a bridge")
        self._ip = _proc.find_binary("ip", "/usr/sbin/ip", "/sbin/ip")
        needed = {
            "sshd": "/usr/sbin/sshd",
            "ssh-keygen": "/usr/bin/ssh-keygen",
            "unshare": "/usr/bin/unshare",
            "hostname": "/usr/bin/hostname",
            "mount": "/usr/bin/mount",
        }
        for binary, where in needed.items():
            _proc.find_binary(binary, where)
        # sshd checks for its privilege-separation directory before anything else.
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        self._make_keys()
        with _machine_lock():
            if self._requested_subnet is None:
                self._subnet = self._pick_subnet()
            elif any(self._requested_subnet.overlaps(net) for net in _networks_in_use(self._ip)):
                raise TestEnvError(f"subnet {self._requested_subnet} is already in use on this machine")
            self._make_network()
        if self.login == "user":
            self._make_user()
        self._write_files()
        for name in self.names:
            self.start_sshd(name)

    def _make_user(self) -> None:
        """The unprivileged account: key login, a home of its own, sudo as asked (checked with visudo)."""
        user, home = self.user, self.user_home
        self._made_user = True  # before useradd: a half-made account is still removed
        useradd = _proc.find_binary("useradd", "/usr/sbin/useradd")
        _proc.run([useradd, "--home-dir", str(home), "--create-home", "--shell", "/bin/bash", "--user-group",
                   "--comment", f"irx test operator {self.uid}", user])  # fmt: skip
        # A password, so the account is not locked (sshd without PAM refuses a locked account's keys too).
        chpasswd = _proc.find_binary("chpasswd", "/usr/sbin/chpasswd")
        _proc.run([chpasswd], input_text=f"{user}:{self.become_password}\n")
        dot_ssh = home / ".ssh"
        dot_ssh.mkdir(mode=0o700, exist_ok=True)
        (dot_ssh / "authorized_keys").write_text(self.key_path.with_suffix(".pub").read_text())
        for host in self.hosts.values():
            self._lease_dir(host).mkdir(parents=True, exist_ok=True)
        _proc.run(["/bin/chown", "-R", f"{user}:{user}", str(home)])
        if self.sudo is None:
            return
        rule = "NOPASSWD: ALL" if self.sudo == "nopasswd" else "ALL"
        lines = [f"Defaults:{user} !requiretty, !lecture"]
        path = self.session_env.get("PATH")
        if path and "{host}" not in path:
            lines.append(f'Defaults:{user} secure_path="{path}"')
        lines.append(f"{user} ALL=(ALL:ALL) {rule}")
        pending = self.workdir / "sudoers"
        pending.write_text("\n".join(lines) + "\n")
        os.chmod(pending, 0o440)
        _proc.run([_proc.find_binary("visudo", "/usr/sbin/visudo"), "-cq", "-f", str(pending)])
        shutil.copyfile(pending, self.sudoers_path)
        os.chmod(self.sudoers_path, 0o440)

    def _remove_user(self) -> list[str]:
        errors: list[str] = []
        self.sudoers_path.unlink(missing_ok=True)
        userdel = _proc.find_binary("userdel", "/usr/sbin/userdel")
        result = _proc.run([userdel, "--remove", "--force", self.user], check=False)
        if result.returncode not in (0, 6):  # 6: no such user
            errors.append(f"userdel {self.user}: {result.stderr.strip()}")
        shutil.rmtree(self.user_home, ignore_errors=True)
        self._made_user = False
        return errors

    def _make_keys(self) -> None:
        keygen = _proc.find_binary("ssh-keygen", "/usr/bin/ssh-keygen")
        if not self.key_path.exists():
            _proc.run([keygen, "-q", "-t", "ed25519", "-N", "", "-C", _names.marker(self.uid),
                       "-f", str(self.key_path)])  # fmt: skip
        for name in self.names:  # the subnet (and so host addresses) is not chosen yet
            (self.workdir / name).mkdir(exist_ok=True)
            (self.workdir / name / "root").mkdir(mode=0o700, exist_ok=True)
            key = self.workdir / name / "ssh_host_ed25519_key"
            if not key.exists():
                _proc.run([keygen, "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(key)])

    def _pick_subnet(self) -> ipaddress.IPv4Network:
        used = _networks_in_use(self._ip)
        # Start at a uid-derived /24 so concurrent sessions rarely even contend for the same one.
        start = int(self.uid, 16) % 256
        for step in range(256):
            candidate = ipaddress.IPv4Network(f"10.200.{(start + step) % 256}.0/24")
            if not any(candidate.overlaps(net) for net in used):
                return candidate
        raise TestEnvError("no free /24 left in 10.200.0.0/16")

    def _make_network(self) -> None:
        ip = self._ip
        prefix = self.subnet.prefixlen
        taken = set(list_netns(ip)) | set(list_links(ip))
        clash = sorted(taken & {self.bridge, *(h.netns for h in self.hosts.values()),
                                *(h.veth for h in self.hosts.values())})  # fmt: skip
        if clash:
            raise TestEnvError(f"uid {self.uid} is already in use ({', '.join(clash)}): pick another uid")
        self._made_links.append(self.bridge)
        _proc.run([ip, "link", "add", self.bridge, "type", "bridge"])
        _proc.run([ip, "addr", "add", f"{self.bridge_address}/{prefix}", "dev", self.bridge])
        _proc.run([ip, "link", "set", self.bridge, "up"])
        for host in self.hosts.values():
            self._made_netns.append(host.netns)
            _proc.run([ip, "netns", "add", host.netns])
            self._made_links.insert(0, host.veth)  # veths go before the bridge
            _proc.run([ip, "link", "add", host.veth, "type", "veth", "peer", "name", "eth0", "netns", host.netns])
            _proc.run([ip, "link", "set", host.veth, "master", self.bridge, "up"])
            _proc.run([ip, "-n", host.netns, "addr", "add", f"{host.address}/{prefix}", "dev", "eth0"])
            _proc.run([ip, "-n", host.netns, "link", "set", "eth0", "up"])
            _proc.run([ip, "-n", host.netns, "link", "set", "lo", "up"])

    def _write_files(self) -> None:
        pubkey = self.key_path.with_suffix(".pub").read_text()
        known: list[str] = []
        for host in self.hosts.values():
            host_pub = (host.workdir / "ssh_host_ed25519_key.pub").read_text().split()
            known.append(f"{host.address},{host.name} {host_pub[0]} {host_pub[1]}")
            (host.workdir / "authorized_keys").write_text(pubkey)
            (host.workdir / "sshd_config").write_text(self._sshd_config(host))
        self.known_hosts.write_text("\n".join(known) + "\n")
        dot_ssh = self.home / ".ssh"
        dot_ssh.mkdir(parents=True, exist_ok=True, mode=0o700)
        (dot_ssh / "known_hosts").write_text(self.known_hosts.read_text())
        (dot_ssh / "id_ed25519").write_bytes(self.key_path.read_bytes())
        os.chmod(dot_ssh / "id_ed25519", 0o600)
        self.inventory_path.write_text(yaml.safe_dump(self.inventory(), sort_keys=False))

    def _sshd_config(self, host: SshHost) -> str:
        return "\n".join([
            "Port 22",
            f"ListenAddress {host.address}",
            f"HostKey {host.workdir / 'ssh_host_ed25519_key'}",
            f"PidFile {host.workdir / 'sshd.pid'}",
            # root's key here; the unprivileged account's in its own ~/.ssh (sshd reads it as that user).
            f"AuthorizedKeysFile {host.workdir / 'authorized_keys'} .ssh/authorized_keys",
            # No PAM and no ownership checks: the files live in a test tree, not in /root.
            "UsePAM no",
            "StrictModes no",
            "PermitRootLogin prohibit-password",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "UseDNS no",
            "PrintMotd no",
            "PrintLastLog no",
            "MaxStartups 50:30:100",
            "Subsystem sftp internal-sftp",
            "LogLevel VERBOSE",
            *(f'SetEnv {key}="{value.format(host=host.name)}"' for key, value in self.session_env.items()),
            "",
        ])  # fmt: skip

    def start_sshd(self, name: str) -> None:
        """Start (or restart) the sshd of host ``name`` and wait until it accepts connections."""
        host = self.host(name)
        old = self._sshd.get(name)
        if old is not None and old.poll() is None:
            return
        sshd = _proc.find_binary("sshd", "/usr/sbin/sshd")
        unshare = _proc.find_binary("unshare", "/usr/bin/unshare")
        log = host.workdir / "sshd.log"
        # A private UTS namespace gives the host its own hostname, a private mount namespace its own /root
        # (SshHost.root_home); sshd needs its absolute path to re-exec.
        argv = [self._ip, "netns", "exec", host.netns, unshare, "--uts", "--mount", "--propagation", "private",
                "/bin/sh", "-c", 'hostname "$0" && mount --bind "$1" /root && shift && exec "$@"', host.name,
                str(host.root_home), sshd, "-D", "-f", str(host.workdir / "sshd_config"), "-E", str(log)]  # fmt: skip
        proc = _proc.spawn(argv, log_path=host.workdir / "sshd.stderr", cwd=host.workdir)
        self._sshd[name] = proc

        def ready() -> bool:
            if proc.poll() is not None:
                detail = _proc.log_tail(log) or _proc.log_tail(host.workdir / "sshd.stderr")
                raise TestEnvError(f"sshd of {name} exited with {proc.returncode}:\n{detail}")
            return _proc.port_open(host.address, 22, timeout=0.3)

        _proc.wait_for(ready, timeout=self.start_timeout, what=f"sshd of {name} on {host.address}:22")

    def kill_sshd(self, name: str) -> None:
        """SIGKILL host ``name``'s sshd and its sessions; connections are then refused."""
        host = self.host(name)
        proc = self._sshd.pop(name, None)
        if proc is not None:
            _proc.stop_child(proc, sig=signal.SIGKILL, grace=self.stop_timeout, what=f"sshd of {name}")
        _proc.wait_for(
            lambda: not _proc.port_open(host.address, 22, timeout=0.3),
            timeout=self.stop_timeout,
            what=f"{host.address}:22 to close",
        )

    def link_down(self, name: str) -> None:
        """Take host ``name``'s interface down: connections to it then time out."""
        _proc.run([self._ip, "-n", self.host(name).netns, "link", "set", "eth0", "down"])

    def link_up(self, name: str) -> None:
        """Undo :meth:`link_down`."""
        _proc.run([self._ip, "-n", self.host(name).netns, "link", "set", "eth0", "up"])

    def run(
        self, name: str, argv: Sequence[str], *, timeout: float = 30.0, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` inside host ``name``'s network namespace (not over SSH; hostname is the machine's)."""
        return _proc.run([self._ip, "netns", "exec", self.host(name).netns, *argv], timeout=timeout, check=check)

    def _stop(self) -> None:
        errors: list[str] = []
        for name, proc in list(self._sshd.items()):
            try:
                _proc.stop_child(proc, sig=signal.SIGTERM, grace=2.0, what=f"sshd of {name}")
            except TestEnvError as exc:
                errors.append(str(exc))
        self._sshd.clear()
        if self._made_user:
            errors += self._remove_user()
        errors += teardown_network(self._ip, self._made_netns, self._made_links)
        if errors:
            raise TestEnvError("teardown incomplete:\n" + "\n".join(errors))
        self._made_netns.clear()
        self._made_links.clear()


def teardown_network(ip: str, netns: Sequence[str], links: Sequence[str]) -> list[str]:
    """Kill what runs in ``netns``, delete ``links`` in order, then the namespaces.

    Returns the errors instead of raising, so one failure does not leave the rest behind.

    Each object is removed only if it exists, so this is safe after a start that failed halfway.
    """
    errors: list[str] = []
    present_ns = set(list_netns(ip))
    present_links = set(list_links(ip))
    for ns in netns:
        if ns not in present_ns:
            continue
        pids = _proc.run([ip, "netns", "pids", ns], check=False, timeout=10).stdout.split()
        for pid in pids:
            with contextlib.suppress(Exception):
                _proc.kill_tree(int(pid))
    # Deleting the root end of a veth removes its peer at once; a namespace's own cleanup is lazy.
    for link in links:
        if link in present_links:
            proc = _proc.run([ip, "link", "del", link], check=False, timeout=10)
            if proc.returncode != 0:
                errors.append(f"ip link del {link}: {proc.stderr.strip()}")
    for ns in netns:
        if ns in present_ns:
            proc = _proc.run([ip, "netns", "del", ns], check=False, timeout=10)
            if proc.returncode != 0:
                errors.append(f"ip netns del {ns}: {proc.stderr.strip()}")
    return errors


def list_netns(ip: str = "/usr/sbin/ip") -> list[str]:
    """Names of all network namespaces known to ``ip netns``."""
    out = _proc.run([ip, "netns", "list"], timeout=10).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def list_links(ip: str = "/usr/sbin/ip") -> list[str]:
    """Names of all links in the root namespace (without the ``@peer`` suffix)."""
    out = _proc.run([ip, "-o", "link", "show"], timeout=10).stdout
    return [line.split(":")[1].strip().split("@")[0] for line in out.splitlines() if ":" in line]


def _networks_in_use(ip: str) -> list[ipaddress.IPv4Network]:
    nets: list[ipaddress.IPv4Network] = []  # from ip -4, so IPv4 only
    for line in _proc.run([ip, "-4", "-o", "addr", "show"], timeout=10).stdout.splitlines():
        fields = line.split()
        if "inet" in fields:
            nets.append(ipaddress.IPv4Interface(fields[fields.index("inet") + 1]).network)
    for line in _proc.run([ip, "-4", "route", "show", "table", "all"], timeout=10).stdout.splitlines():
        dest = line.split()[0] if line.split() else ""
        if dest in ("local", "broadcast", "unreachable", "blackhole", "prohibit"):
            dest = line.split()[1]
        if dest and dest != "default" and dest[0].isdigit():
            with contextlib.suppress(ValueError):
                nets.append(ipaddress.IPv4Network(dest, strict=False))
    return nets


def _check_subnet(subnet: str, count: int) -> ipaddress.IPv4Network:
    net = ipaddress.ip_network(subnet, strict=True)
    if not isinstance(net, ipaddress.IPv4Network) or not net.subnet_of(ALLOWED_RANGE):
        raise ValueError(f"subnet {subnet} is outside {ALLOWED_RANGE}, the only range test hosts may use")
    if net.num_addresses - 2 < _HOST_OFFSET + count:
        raise ValueError(f"subnet {subnet} is too small for {count} hosts")
    return net


@contextlib.contextmanager
def _machine_lock(timeout: float = 30.0) -> Iterator[None]:
    # Serialises subnet choice and bridge creation between test sessions on one machine.
    with open(_LOCK_PATH, "a") as lock:

        def acquired() -> bool:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            return True

        _proc.wait_for(acquired, timeout=timeout, what=f"lock {_LOCK_PATH}", interval=0.1)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)

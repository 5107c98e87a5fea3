"""A stand-in for ``systemctl`` and ``journalctl`` on drill hosts, where no systemd runs.

The shipped playbooks manage services the way production hosts do: ``ansible.builtin.systemd``,
``systemctl is-active``, ``systemctl show -p MainPID``, ``journalctl -u``. This container (and many CI
machines) has no systemd as PID 1, so a drill installs this stand-in as ``systemctl`` and ``journalctl``
first on the PATH of its hosts. The services themselves are real (PostgreSQL, Redis, nginx, a leaking
application); only the service manager is a stand-in, and it keeps systemd's observable contract:

* a unit is ``ROOT/units/NAME.json`` (a template ``NAME@.json``, instances ``NAME@I`` with ``%i``
  replaced by ``I``): ``{"exec": [argv...], "user": ..., "cwd": ..., "env": {...},
  "ready": {"tcp": "HOST:PORT", "timeout": 30}, "stop_signal": "TERM", "stop_timeout": 10,
  "reload_signal": "HUP", "description": ...}``. ``exec`` runs in the foreground of its own session;
  its output is the unit's journal (``ROOT/journal/NAME.log``);
* ``start`` returns once ``ready`` holds (Type=notify-like) or at once; ``stop`` sends ``stop_signal``
  to the unit's process group, then SIGKILL after ``stop_timeout`` s, and returns when it is gone;
* ActiveState is ``active`` while the main process lives, ``failed`` when it died without a stop
  (a crash, an OOM kill, ``kill -9``), else ``inactive``; ``is-active`` exits 0 only when active;
* ``show`` prints ``KEY=VALUE`` lines (LoadState, ActiveState, SubState, MainPID, MemoryCurrent, ...),
  which is what ``ansible.builtin.systemd`` reads.

``journalctl --since`` is accepted and ignored: a drill's journal is only as old as the drill.
``python -m irx_testenv.servicectl install ROOT`` writes ``ROOT/bin/{systemctl,journalctl}``;
``stop-all`` (an extension) stops every unit, for teardown.
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import os
import pwd
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from irx_testenv import _proc

ROOT_ENV = "IRX_DRILL_ROOT"
_SUFFIX = ".service"
# systemctl's documented exit codes: 3 "not running" (is-active, status), 4 "no such unit", 1 other.
_EXIT_INACTIVE, _EXIT_NO_UNIT = 3, 4
_UNIT_VERBS = frozenset(
    {
        "show",
        "is-active",
        "is-enabled",
        "status",
        "start",
        "stop",
        "restart",
        "try-restart",
        "reload",
        "reload-or-restart",
        "kill",
    }
)


class UnitError(Exception):
    """A command failed; ``code`` is the systemctl-style exit status."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Unit:
    """One unit: its name (``app``, ``worker@3``) and its definition with ``%i`` substituted."""

    name: str
    spec: dict[str, Any]
    root: Path

    @property
    def pid_file(self) -> Path:
        return self.root / "run" / f"{self.name}.pid"

    @property
    def stopped_file(self) -> Path:
        return self.root / "run" / f"{self.name}.stopped"

    @property
    def fragment(self) -> Path:
        base, at, _instance = self.name.partition("@")
        return self.root / "units" / f"{base}{at}.json"

    @property
    def journal(self) -> Path:
        return self.root / "journal" / f"{self.name}.log"

    def main_pid(self) -> int:
        """The main process's pid while it lives, else 0."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return 0
        return pid if _proc.pid_alive(pid) else 0

    def active_state(self) -> str:
        if self.main_pid():
            return "active"
        if self.pid_file.exists() and not self.stopped_file.exists():
            return "failed"
        return "inactive"


def _bare(name: str) -> str:
    return name[: -len(_SUFFIX)] if name.endswith(_SUFFIX) else name


def _root() -> Path:
    root = os.environ.get(ROOT_ENV)
    if not root:
        raise UnitError(f"{ROOT_ENV} is not set: this is irx's drill stand-in for systemd, not systemd")
    return Path(root)


def load_unit(root: Path, name: str) -> Unit:
    """The unit ``name`` (``.service`` optional); raises ``UnitError`` (exit 4) when it is not defined."""
    name = _bare(name)
    unit = Unit(name, {}, root)
    try:
        text = unit.fragment.read_text()
    except FileNotFoundError:
        raise UnitError(f"Unit {name}{_SUFFIX} not found.", _EXIT_NO_UNIT) from None
    instance = name.partition("@")[2]
    spec = json.loads(text.replace("%i", instance) if instance else text)
    return Unit(name, spec, root)


def known_units(root: Path) -> list[Unit]:
    """Plain units plus every template instance that has run at least once, sorted by name."""
    names = {p.stem for p in (root / "units").glob("*.json") if not p.stem.endswith("@")}
    names |= {p.stem for p in (root / "run").glob("*@*.pid")}
    return [load_unit(root, name) for name in sorted(names)]


def _demote(user: str | None) -> dict[str, Any]:
    if user is None or os.geteuid() != 0:
        return {}
    account = pwd.getpwnam(user)
    return {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}


def start(unit: Unit) -> None:
    if unit.main_pid():
        return
    for directory in (unit.pid_file.parent, unit.journal.parent):
        directory.mkdir(parents=True, exist_ok=True)
    spec = unit.spec
    env = {**os.environ, **{k: str(v) for k, v in spec.get("env", {}).items()}}
    env.pop(ROOT_ENV, None)
    with open(unit.journal, "ab") as log:
        try:
            proc = subprocess.Popen(
                [str(arg) for arg in spec["exec"]],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=spec.get("cwd", unit.root),
                env=env,
                start_new_session=True,
                **_demote(spec.get("user")),
            )
        except OSError as exc:
            raise UnitError(f"Job for {unit.name}{_SUFFIX} failed: {exc}") from exc
    unit.stopped_file.unlink(missing_ok=True)
    unit.pid_file.write_text(f"{proc.pid}\n")
    ready = spec.get("ready")
    if not ready:
        return
    host, _, port = str(ready["tcp"]).rpartition(":")
    deadline = time.monotonic() + float(ready.get("timeout", 30))
    while not _proc.port_open(host, int(port)):
        if proc.poll() is not None or time.monotonic() > deadline:
            reason = f"exited with {proc.returncode}" if proc.returncode is not None else "not ready in time"
            raise UnitError(f"Job for {unit.name}{_SUFFIX} failed ({reason}); see journalctl -u {unit.name}")
        time.sleep(0.05)


def stop(unit: Unit) -> None:
    pid = unit.main_pid()
    if unit.pid_file.exists():
        unit.stopped_file.touch()
    if not pid:
        return
    members = [pid, *_proc.descendants(pid)]
    sig = signal.Signals["SIG" + str(unit.spec.get("stop_signal", "TERM")).removeprefix("SIG")]
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)
    deadline = time.monotonic() + float(unit.spec.get("stop_timeout", 10))
    while any(_proc.pid_alive(p) for p in members) and time.monotonic() < deadline:
        time.sleep(0.05)
    for member in members:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(member, signal.SIGKILL)
    _proc.wait_for(lambda: not any(_proc.pid_alive(p) for p in members), timeout=10, what=f"{unit.name} to stop")


def _memory_bytes(pid: int) -> int:
    total = 0
    for member in (pid, *_proc.descendants(pid)):
        with contextlib.suppress(OSError, ValueError):
            for line in Path(f"/proc/{member}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
    return total


def properties(unit: Unit | None, name: str) -> dict[str, str]:
    if unit is None:
        return {
            "Id": f"{_bare(name)}{_SUFFIX}",
            "LoadState": "not-found",
            "ActiveState": "inactive",
            "SubState": "dead",
            "MainPID": "0",
        }
    state = unit.active_state()
    pid = unit.main_pid()
    return {
        "Id": f"{unit.name}{_SUFFIX}",
        "Names": f"{unit.name}{_SUFFIX}",
        "Description": str(unit.spec.get("description", unit.name)),
        "LoadState": "loaded",
        "ActiveState": state,
        "SubState": {"active": "running", "failed": "failed"}.get(state, "dead"),
        "Result": "exit-code" if state == "failed" else "success",
        "MainPID": str(pid),
        "ExecMainPID": str(pid),
        "MemoryCurrent": str(_memory_bytes(pid)) if pid else "[not set]",
        "UnitFileState": "enabled",
        "FragmentPath": str(unit.fragment),
    }


def _split_flags(args: Sequence[str]) -> tuple[list[str], dict[str, str]]:
    """Positional words and ``--flag[=value]`` / ``-p VALUE`` / ``-s VALUE`` options."""
    words: list[str] = []
    flags: dict[str, str] = {}
    items = list(args)
    while items:
        item = items.pop(0)
        if item in (
            "-p",
            "--property",
            "-s",
            "--signal",
            "-n",
            "--lines",
            "-o",
            "--output",
            "-u",
            "--unit",
            "--since",
            "--until",
            "--state",
            "-t",
            "--type",
        ):
            key = {
                "-p": "--property",
                "-s": "--signal",
                "-n": "--lines",
                "-o": "--output",
                "-u": "--unit",
                "-t": "--type",
            }.get(item, item)
            value = items.pop(0) if items else ""
            flags[key] = f"{flags[key]},{value}" if key in flags and key in ("--property", "--unit") else value
        elif item.startswith("--") and "=" in item:
            key, _, value = item.partition("=")
            flags[key] = f"{flags[key]},{value}" if key in flags and key in ("--property", "--unit") else value
        elif item.startswith("-") and item != "-":
            flags[item] = ""
        else:
            words.append(item)
    return words, flags


def systemctl(args: Sequence[str]) -> int:
    words, flags = _split_flags(args)
    quiet = "--quiet" in flags or "-q" in flags
    command, names = (words[0], words[1:]) if words else ("list-units", [])
    root = _root()
    if command in ("daemon-reload", "daemon-reexec", "reset-failed", "enable", "disable"):
        return 0
    if command == "stop-all":
        for each in known_units(root):
            stop(each)
        return 0
    if command in ("list-units", "list-unit-files"):
        states = set(filter(None, flags.get("--state", "").split(",")))
        patterns = [_bare(n) for n in names] or ["*"]
        for each in known_units(root):
            if not any(fnmatch.fnmatch(each.name, p) for p in patterns):
                continue
            state = each.active_state()
            if command == "list-unit-files":
                print(f"{each.name}{_SUFFIX} enabled enabled")
            elif (not states and (state != "inactive" or "--all" in flags)) or state in states:
                sub = {"active": "running", "failed": "failed"}.get(state, "dead")
                print(f"{each.name}{_SUFFIX} loaded {state} {sub} {each.spec.get('description', each.name)}")
        return 0
    if command not in _UNIT_VERBS:
        raise UnitError(f"Unknown command verb {command} (irx drill stand-in for systemctl).")
    if not names:
        raise UnitError(f"Too few arguments for {command}.")
    code = 0
    for name in names:
        try:
            unit: Unit | None = load_unit(root, name)
        except UnitError:
            if command not in ("show", "is-active", "status"):
                raise
            unit = None
        if command == "show":
            props = properties(unit, name)
            wanted = [p for p in flags.get("--property", "").split(",") if p]
            for key in wanted or list(props):
                value = props.get(key, "")
                print(value if "--value" in flags else f"{key}={value}")
        elif command == "is-active":
            state = unit.active_state() if unit else "inactive"
            if not quiet:
                print(state)
            code = code or (0 if state == "active" else _EXIT_INACTIVE)
        elif command == "is-enabled":
            print("enabled")
        elif command == "status":
            if unit is None:
                print(f"Unit {_bare(name)}{_SUFFIX} could not be found.", file=sys.stderr)
                code = code or _EXIT_NO_UNIT
                continue
            props = properties(unit, name)
            print(
                f"* {props['Id']} - {props['Description']}\n     Active: {props['ActiveState']} "
                f"({props['SubState']})\n   Main PID: {props['MainPID']}"
            )
            code = code or (0 if props["ActiveState"] == "active" else _EXIT_INACTIVE)
        else:
            assert unit is not None
            _act(unit, command, flags)
    return code


def _act(unit: Unit, command: str, flags: dict[str, str]) -> None:
    if command == "start":
        start(unit)
    elif command == "stop":
        stop(unit)
    elif command in ("restart", "try-restart", "reload-or-restart") and (command == "restart" or unit.main_pid()):
        stop(unit)
        start(unit)
    elif command == "reload":
        pid = unit.main_pid()
        if not pid:
            raise UnitError(f"Job for {unit.name}{_SUFFIX} failed: unit is not active.")
        os.kill(pid, signal.Signals["SIG" + str(unit.spec.get("reload_signal", "HUP")).removeprefix("SIG")])
    elif command == "kill":
        pid = unit.main_pid()
        if pid:
            os.killpg(pid, signal.Signals["SIG" + (flags.get("--signal") or "TERM").removeprefix("SIG")])


def journalctl(args: Sequence[str]) -> int:
    _words, flags = _split_flags(args)
    root = _root()
    if "--vacuum-size" in flags or "--vacuum-time" in flags or "--vacuum-files" in flags:
        print(f"Vacuuming done, freed 0B of archived journals from {root / 'journal'}.")
        return 0
    if "--disk-usage" in flags:
        size = sum(p.stat().st_size for p in (root / "journal").glob("*.log"))
        print(f"Archived and active journals take up {size}B in the file system.")
        return 0
    if "-k" in flags or "--dmesg" in flags:
        return 0
    patterns = [_bare(p) for p in flags.get("--unit", "*").split(",") if p]
    lines: list[str] = []
    for path in sorted((root / "journal").glob("*.log")):
        if any(fnmatch.fnmatch(path.stem, p) for p in patterns):
            lines.extend(path.read_text(errors="replace").splitlines())
    limit = flags.get("--lines")
    if limit:
        lines = lines[-int(limit) :] if int(limit) > 0 else []
    for line in lines:
        print(line)
    return 0


_SHIM = '#!/bin/sh\n{env}={root} exec {python} -m irx_testenv.servicectl {tool} "$@"\n'


def install(root: Path) -> None:
    """Write ``ROOT/bin/systemctl`` and ``ROOT/bin/journalctl`` and the unit/run/journal directories."""
    for sub in ("bin", "units", "run", "journal"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for tool in ("systemctl", "journalctl"):
        shim = root / "bin" / tool
        shim.write_text(_SHIM.format(env=ROOT_ENV, root=root, python=sys.executable, tool=tool))
        shim.chmod(0o755)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] not in ("systemctl", "journalctl", "install"):
        print("usage: python -m irx_testenv.servicectl systemctl|journalctl ARGS... | install ROOT", file=sys.stderr)
        return 2
    try:
        if args[0] == "install":
            install(Path(args[1]).resolve())
            return 0
        return systemctl(args[1:]) if args[0] == "systemctl" else journalctl(args[1:])
    except UnitError as exc:
        print(str(exc), file=sys.stderr)
        return exc.code
    except (_proc.TestEnvError, OSError, ValueError, KeyError) as exc:
        print(f"{args[0]} (irx drill stand-in): {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

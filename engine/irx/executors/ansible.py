"""Host steps through ansible-runner: one long-lived Ansible run per incident, fed step by step.

Ansible's start-up (about 2 s here) is paid once. The play runs irx's own strategy plugin
(``ansible_plugins/strategy/irx.py``), which takes one step's tasks at a time from irx over a Unix socket,
queues them on their hosts through Ansible's worker pool and answers with every host's registered result.
irx keeps every decision (``when``, retries, approvals, rollback) and Ansible does what it is good at:
connections, modules, forks.

Rendered commands never pass through Ansible's templating: every irx-rendered string is written with
the ``!unsafe`` tag, so a value containing ``{{ }}`` stays literal. The private data directory (the play,
the socket, artifacts) lives in a 0700 temp dir removed when the session closes, so ansible-runner's
artifacts cannot leak secrets after the run; the dir of a run that was killed (``kill -9``) is removed by
the next run's ``sweep_leftovers``.
"""

from __future__ import annotations

# Imported before any thread can fork (ansible-runner forks Ansible from a background thread while the
# main thread goes on importing): a module that registers fork handlers, imported in the middle of a fork,
# has its after-fork handler run without its before-fork one ("RuntimeError: release unlocked lock").
import concurrent.futures.thread  # noqa: F401
import contextlib
import json
import os
import shutil
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from irx.errors import IrxError, UsageError
from irx.executors.ansible_results import OUTPUT_CAP, host_result, privilege_hint
from irx.executors.base import HostEvent, HostTask
from irx.executors.proctree import kill_tree, parent_of
from irx.executors.workdir import SESSION_PREFIX, claim, sweep_leftovers
from irx.inventory import Vault
from irx.results import HostResult

STRATEGY_DIR = Path(__file__).parent / "ansible_plugins" / "strategy"  # irx: takes irx's steps off the socket
MODULE_DIR = Path(__file__).parent / "ansible_plugins" / "modules"  # irx_command: every shell/command step
MODULE_UTILS_DIR = Path(__file__).parent / "ansible_plugins" / "module_utils"  # irx_step, irx_leases
ACTION_DIR = Path(__file__).parent / "ansible_plugins" / "action"  # irx_command without AnsiballZ on the host
KILL_GRACE = 5  # seconds from SIGTERM to SIGKILL for a command past its step timeout (irx_command)
POLL = 0.25  # seconds between checks that Ansible is still alive while irx waits on the socket

# The whole play: its tasks come from irx, one step at a time, through the irx strategy plugin.
_MAIN = """\
- name: irx session
  hosts: all
  gather_facts: false
  strategy: {strategy}
  tasks: []
"""
MITOGEN = "irx_mitogen"  # the irx strategy over Mitogen's connections (irx run --mitogen)


class ExecutorError(IrxError):
    """Ansible could not run at all (not a host failure: those are results)."""


class _Unsafe(str):
    """A string Ansible must never template."""


class _Dumper(yaml.SafeDumper):
    pass


def _represent_unsafe(dumper: yaml.SafeDumper, data: _Unsafe) -> yaml.ScalarNode:
    """``!unsafe`` for strings; Ansible re-resolves an unsafe scalar's type as if it were plain, so a value
    that would read as a bool, number or null ("true", "123") is written as a quoted string instead: it holds
    no template syntax, so it needs no protection, and quoting keeps it a string."""
    text = str(data)
    if _RESOLVER.resolve(yaml.ScalarNode, text, (True, False)) != "tag:yaml.org,2002:str":  # type: ignore[no-untyped-call]
        return dumper.represent_scalar("tag:yaml.org,2002:str", text, style="'")
    return dumper.represent_scalar("!unsafe", text, style="'")


_RESOLVER = yaml.resolver.Resolver()
_Dumper.add_representer(_Unsafe, _represent_unsafe)


def unsafe(value: Any) -> Any:
    """Tag every string inside ``value`` as !unsafe for Ansible."""
    if isinstance(value, str):
        return _Unsafe(value)
    if isinstance(value, Mapping):
        return {str(k): unsafe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [unsafe(v) for v in value]
    return value


def _task(task: HostTask, index: int) -> dict[str, Any]:
    """The Ansible task for one HostTask. Shell and command steps go through irx's own ``irx_command``
    module: argv executed as data (no ``$VAR`` expansion), scripts from a private file, the step's env set
    in the child's environment by the module (Ansible's ``environment:`` keyword would put every value on
    the host's ``/bin/sh -c`` command line), the timeout enforced on the host. Every irx-rendered string is
    ``!unsafe``: Ansible never templates it."""
    name = f"irx:{task.step_id}:{index}"
    body: dict[str, Any] = {"name": name}
    if task.action == "lease":  # a lease's own task (irx.lease): irx_command with the lease alone
        body["irx_command"] = unsafe({"lease": dict(task.lease or {})})
    elif task.action in {"shell", "command"}:
        cmd: dict[str, Any] = {"script": str(task.spec)} if task.action == "shell" else {"argv": list(task.spec)}
        if task.env:
            cmd["env"] = dict(task.env)
        if task.chdir:
            cmd["chdir"] = task.chdir
        if task.timeout:
            cmd["timeout"] = task.timeout
            cmd["kill_grace"] = KILL_GRACE
        if task.lease is not None:  # the host's lease, taken in the same module run (irx.lease: ahead)
            cmd["lease"] = dict(task.lease)
        cmd["output_cap"] = OUTPUT_CAP + 1  # one byte more than irx keeps, so the cut is seen and recorded
        body["irx_command"] = unsafe(cmd)
    else:
        if task.env:  # the rules refuse env: on module steps; never fall back to environment:
            raise ExecutorError(f"step {task.step_id}: env: is for shell and command steps")
        body[str(task.spec)] = unsafe(dict(task.args))
    if task.become:
        body["become"] = True
    if task.timeout:
        # irx_command stops the command on the host; Ansible's timeout is the backstop for a host that stops
        # answering (and the only bound for a module step).
        slack = KILL_GRACE + 5 if task.action in {"shell", "command"} else 0
        body["timeout"] = max(1, int(task.timeout + 0.999)) + slack
    body["register"] = _register_name(task.step_id, index)
    body["ignore_errors"] = True
    body["ignore_unreachable"] = True
    return body


def exposed_on_command_line(task: HostTask, exposes: Callable[[str], bool]) -> str | None:
    """Which part of a task would carry a secret onto a command line on the host, or None.

    The script and argv of a shell or command step end up in the argv of some process (the script's words
    are its commands' arguments); ``env`` is the channel for secrets, and a module's args travel through
    Ansible's module transport. ``exposes`` tells whether a text holds a secret (the run's Redactor)."""
    if task.action == "shell" and exposes(str(task.spec)):
        return "its shell script"
    if task.action == "command":
        for position, word in enumerate(task.spec):
            if exposes(str(word)):
                return f"command[{position}]"
    return None


def _plugin_path(own: Path, setting: str) -> str:
    """irx's plugin directory first, then the operator's own (the ANSIBLE_* variable or ansible.cfg's), so a
    playbook's module: steps still find the modules (and their module_utils) the operator installed."""
    from ansible import constants

    return os.pathsep.join(dict.fromkeys([str(own), *map(str, getattr(constants, setting))]))


def ansible_playbook() -> str:
    """The ansible-playbook beside this Python (the venv irx is installed in), else the one on PATH."""
    beside = Path(sys.executable).parent / "ansible-playbook"
    if beside.exists():
        return str(beside)
    found = shutil.which("ansible-playbook")
    if found is None:
        raise ExecutorError("ansible-playbook is not installed (pip install ansible-core) or not on PATH")
    return found


def strategy_for(mitogen: bool) -> str:
    """The session's strategy plugin; with ``mitogen``, refused with why when Mitogen cannot load here (the
    ansible-playbook irx starts runs in this same Python)."""
    if not mitogen:
        return "irx"
    try:
        import ansible_mitogen.loaders  # noqa: F401  # checks the ansible-core release it is loaded into
    except ImportError as exc:
        raise UsageError(
            f"--mitogen: Mitogen is not installed in irx's Python ({sys.executable}): pip install 'irx[mitogen]' "
            f"({exc})"
        ) from None
    except Exception as exc:  # Mitogen's own refusal: AnsibleError "Your version of Ansible (...) is too old"
        from ansible.release import __version__ as core

        raise UsageError(f"--mitogen: Mitogen does not support ansible-core {core}: {exc}") from None
    return MITOGEN


def _register_name(step_id: str, index: int) -> str:
    return f"irx_r_{step_id}_{index}"


class AnsibleSession:
    """A running ansible-playbook fed one batch of host tasks at a time."""

    def __init__(
        self,
        inventory: str,
        hosts: Sequence[str],
        *,
        forks: int = 10,
        on_host_event: HostEvent | None = None,
        cancelled: Callable[[], bool] = lambda: False,
        start_timeout: float = 120.0,
        exposes: Callable[[str], bool] = lambda text: False,
        vault: Vault | None = None,
        strategy: str = "irx",
    ) -> None:
        self.inventory = inventory
        self.strategy = strategy
        self.hosts = list(dict.fromkeys(hosts))
        self.forks = forks
        self.on_host_event = on_host_event
        self.cancelled = cancelled
        self.start_timeout = start_timeout
        self.exposes = exposes  # whether a text holds one of the run's secrets: none may reach a command line
        self.vault = vault or Vault()  # Ansible must open the same vaulted values irx did
        self._task_started: dict[str, float] = {}
        self._durations: dict[tuple[str, str], float] = {}
        self._events = threading.Condition()  # a host's result event arrived (its duration is known)
        self._thread: threading.Thread | None = None
        self._runner: Any = None
        self._dir: Path | None = None
        self._owner: int | None = None
        self._server: socket.socket | None = None
        self._conn: socket.socket | None = None  # the strategy's end, once it connected
        self._pending = b""  # bytes read from the strategy past the last full line
        self._abort = False
        self._ansible_pid: int | None = None  # ansible-playbook's, from the strategy: the tree an abort stops

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        import ansible_runner

        sweep_leftovers()
        self._dir = Path(tempfile.mkdtemp(prefix=SESSION_PREFIX))
        os.chmod(self._dir, 0o700)
        self._owner = claim(self._dir)
        project = self._dir / "project"
        project.mkdir()
        (project / "main.yml").write_text(_MAIN.format(strategy=self.strategy))
        sock_path = str(self._dir / "irx.sock")
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server.bind(sock_path)
        self._server.listen(1)
        self._server.settimeout(POLL)
        envvars = {
            "ANSIBLE_STRATEGY_PLUGINS": str(STRATEGY_DIR),
            "IRX_SESSION_SOCKET": sock_path,
            "ANSIBLE_LIBRARY": _plugin_path(MODULE_DIR, "DEFAULT_MODULE_PATH"),
            "ANSIBLE_MODULE_UTILS": _plugin_path(MODULE_UTILS_DIR, "DEFAULT_MODULE_UTILS_PATH"),
            "ANSIBLE_ACTION_PLUGINS": _plugin_path(ACTION_DIR, "DEFAULT_ACTION_PLUGIN_PATH"),
            "ANSIBLE_RETRY_FILES_ENABLED": "False",
            "ANSIBLE_FORCE_COLOR": "False",
            "ANSIBLE_NOCOLOR": "True",
            "ANSIBLE_DEPRECATION_WARNINGS": "False",
            # Pipelining for every connection (local and paramiko too, not just ssh): a module's arguments,
            # irx_command's env among them, then travel on stdin instead of in a file on the host.
            "ANSIBLE_PIPELINING": "True",
            "ANSIBLE_SSH_PIPELINING": "True",
            "ANSIBLE_TIMEOUT": os.environ.get("ANSIBLE_TIMEOUT", "10"),
            # Ansible's own temporary files, in the session's directory: removed with it, whatever happens
            # to ansible-playbook (its strategy exits without the teardown that would remove them).
            "ANSIBLE_LOCAL_TEMP": str(self._dir / "tmp"),
            **self._vault_env(),
            # ansible-runner finds ansible-playbook on PATH: put the one installed with irx first.
            "PATH": os.pathsep.join([str(Path(ansible_playbook()).parent), os.environ.get("PATH", "")]),
        }
        self._thread, self._runner = ansible_runner.run_async(
            private_data_dir=str(self._dir),
            playbook="main.yml",
            inventory=self.inventory,
            limit=",".join(self.hosts),
            envvars=envvars,
            forks=self.forks,  # --forks, as documented: at most that many hosts at once (Ansible's forks)
            event_handler=self._on_event,
            cancel_callback=self._should_cancel,
            quiet=True,
            suppress_env_files=True,
        )

    def _vault_env(self) -> dict[str, str]:
        """The vault and become passwords for ansible-playbook: the operator's files, or the asked passwords
        in 0600 files inside the session's private directory (removed with it), never on a command line.
        Ansible's become plugin hands the become password to sudo on its stdin, not in argv."""
        env: dict[str, str] = {}
        given = (
            ("ANSIBLE_VAULT_PASSWORD_FILE", "vault-password", self.vault.password, self.vault.password_file),
            ("ANSIBLE_BECOME_PASSWORD_FILE", "become-password", self.vault.become_password,
             self.vault.become_password_file),
        )  # fmt: skip
        for variable, name, password, password_file in given:
            if password is not None:
                assert self._dir is not None
                path = self._dir / name
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "w") as out:
                    out.write(password + "\n")
                env[variable] = str(path)
            elif password_file:
                env[variable] = os.path.abspath(password_file)
        return env

    def close(self) -> None:
        """Tell the strategy there is nothing more, wait briefly for Ansible to finish, remove the files."""
        try:
            if self._thread is not None and self._thread.is_alive():
                if self._conn is not None:
                    with contextlib.suppress(OSError):  # Ansible already went away
                        self._conn.sendall(b'{"done": true}\n')
                else:  # it never connected: nothing of it is worth waiting for
                    self.abort()
                self._thread.join(timeout=30)
                if self._thread.is_alive():
                    self.abort()
                    self._thread.join(timeout=15)
        finally:
            for sock in (self._conn, self._server):
                if sock is not None:
                    sock.close()
            if self._dir is not None:
                shutil.rmtree(self._dir, ignore_errors=True)
            if self._owner is not None:
                os.close(self._owner)
                self._owner = None

    def abort(self) -> None:
        """Stop Ansible now (a second Ctrl-C, or a session that would not finish)."""
        self._abort = True

    def _should_cancel(self) -> bool:
        """ansible-runner's question, every poll: stop? On yes it kills ansible-playbook's process group."""
        if not (self._abort or self.cancelled()):
            return False
        pid, self._ansible_pid = self._ansible_pid, None
        if pid is not None and parent_of(pid) == os.getpid():  # still ansible-playbook: irx has not reaped it
            kill_tree(pid)  # its workers too, which are in sessions of their own (irx.executors.proctree)
        return True

    # -- the socket: one connection from the strategy plugin ---------------------------------------------

    def _connected(self) -> socket.socket:
        """The strategy's connection, waiting for Ansible to start the play the first time."""
        if self._conn is not None:
            return self._conn
        assert self._server is not None
        deadline = time.monotonic() + self.start_timeout
        while True:
            self._check_alive("before the first step")
            try:
                conn, _ = self._server.accept()
                break
            except TimeoutError:
                if time.monotonic() > deadline:
                    raise ExecutorError(f"ansible-playbook did not start within {self.start_timeout:.0f}s") from None
        conn.settimeout(POLL)
        self._conn = conn
        ready = self._read_line("before the first step")  # {"ready": [hosts], "pid": ...}: the play is running
        self._ansible_pid = int(ready["pid"])
        return conn

    def _read_line(self, what: str) -> dict[str, Any]:
        """The strategy's next message; an ExecutorError if Ansible stopped first."""
        assert self._conn is not None
        while b"\n" not in self._pending:
            try:
                chunk = self._conn.recv(1 << 16)
            except TimeoutError:
                self._check_alive(what)
                continue
            if not chunk:
                self._thread_end(timeout=5)
                raise ExecutorError(f"ansible-playbook stopped {what}: {self._failure_text()}")
            self._pending += chunk
        line, _, self._pending = self._pending.partition(b"\n")
        message: dict[str, Any] = json.loads(line)
        return message

    def _check_alive(self, what: str) -> None:
        if self._thread is not None and not self._thread.is_alive():
            raise ExecutorError(f"ansible-playbook stopped {what}: {self._failure_text()}")

    def _thread_end(self, timeout: float) -> None:
        if self._thread is not None:
            self._thread.join(timeout=timeout)

    def _failure_text(self) -> str:
        runner = self._runner
        status = getattr(runner, "status", "unknown")
        rc = getattr(runner, "rc", None)
        tail = ""
        try:
            stdout = runner.stdout.read() if runner is not None else ""
            lines = [ln for ln in stdout.splitlines() if ln.strip()]
            tail = " | ".join(lines[-12:])
        except Exception:  # the runner's stdout may be gone; the status still says enough
            tail = ""
        return f"status {status}, rc {rc}" + (f": {tail[-1500:]}" if tail else "")

    # -- running a batch ----------------------------------------------------------------------------

    def run(self, tasks: Sequence[HostTask]) -> dict[str, HostResult]:
        """Run the tasks (one step, possibly several rendering groups); results per host.

        A task whose command line would carry a secret is refused here, before anything is sent: its hosts
        get a failed result saying why, and nothing of it runs."""
        results: dict[str, HostResult] = {}
        allowed: list[HostTask] = []
        for task in tasks:
            where = exposed_on_command_line(task, self.exposes)
            if where is None:
                allowed.append(task)
                continue
            msg = (
                f"refused: {where} would put a secret on a command line on the host, readable by every user "
                "there (ps); pass it in env: and let the tool read it from its environment"
            )
            results.update((host, HostResult(host, "failed", msg=msg)) for host in task.hosts)
        if allowed:
            results.update(self._dispatch(allowed))
        return results

    def _dispatch(self, tasks: Sequence[HostTask]) -> dict[str, HostResult]:
        conn = self._connected()
        names = [f"irx:{task.step_id}:{index}" for index, task in enumerate(tasks)]
        collect = [_register_name(task.step_id, index) for index, task in enumerate(tasks)]
        bodies = [_task(task, index) for index, task in enumerate(tasks)]
        request = {
            "tasks": yaml.dump(bodies, Dumper=_Dumper, sort_keys=False, width=1_000_000),
            "targets": [list(task.hosts) for task in tasks],
            "collect": collect,
        }
        try:
            conn.sendall(json.dumps(request).encode() + b"\n")
        except OSError:
            self._thread_end(timeout=5)
            raise ExecutorError(f"ansible-playbook stopped between steps: {self._failure_text()}") from None
        reply = self._read_line("during a step")
        by_host: dict[str, Any] = reply.get("hosts") or {}
        self._await_events([(name, host) for name, task in zip(names, tasks, strict=True) for host in task.hosts])
        results: dict[str, HostResult] = {}
        for name, register, task in zip(names, collect, tasks, strict=True):
            for host in task.hosts:
                res = (by_host.get(host) or {}).get(register)
                duration = self._durations.get((name, host), 0.0)
                results[host] = privilege_hint(host_result(host, res, duration), task.become)
        return results

    def _await_events(self, expected: Sequence[tuple[str, str]], timeout: float = 2.0) -> None:
        """The strategy answers as soon as Ansible has every result; ansible-runner's thread may still be reading
        the events that carry the durations (and drive live progress). Wait for them briefly."""
        deadline = time.monotonic() + timeout
        with self._events:
            while not all(key in self._durations for key in expected):
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                self._events.wait(timeout=left)

    # -- ansible-runner events: live progress and durations ---------------------------------------------

    def _on_event(self, event: Mapping[str, Any]) -> bool:
        kind = event.get("event", "")
        data = event.get("event_data") or {}
        task = str(data.get("task") or "")
        if kind.startswith("runner_on_") and task.startswith("irx:") and task.count(":") == 2:
            host = str(data.get("host") or "")
            status = {
                "runner_on_ok": "ok",
                "runner_on_failed": "failed",
                "runner_on_unreachable": "unreachable",
                "runner_on_skipped": "skipped",
            }.get(kind)
            if status is not None and status != "skipped":
                duration = float(data.get("duration") or 0.0)
                with self._events:
                    self._durations[(task, host)] = duration
                    self._events.notify_all()
                res = data.get("res") or {}
                if isinstance(res, dict) and (res.get("timedout") or res.get("timed_out")):
                    status = "timed_out"
                if self.on_host_event is not None:
                    self.on_host_event(task.split(":")[1], host, status, duration)
        return False  # nothing is kept in ansible-runner's artifacts

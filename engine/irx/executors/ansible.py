"""Host steps through ansible-runner: one long-lived Ansible run per incident, fed step by step.

Ansible's start-up (about 2 s here) is paid once. The play loops on the ``irx_next`` action plugin,
which reports the previous batch's registered results for its host over a Unix socket and blocks until
irx sends the next batch file to include. irx keeps every decision (``when``, retries, approvals,
rollback) and Ansible does what it is good at: connections, modules, forks.

Rendered commands never pass through Ansible's templating: every irx-rendered string is written with
the ``!unsafe`` tag, so a value containing ``{{ }}`` stays literal. The private data directory (batch
files, artifacts) lives in a 0700 temp dir removed when the session closes, so ansible-runner's
artifacts cannot leak secrets after the run; the dir of a run that was killed (``kill -9``) is removed by
the next run's ``sweep_leftovers``.
"""

from __future__ import annotations

# Imported before any thread can fork (ansible-runner forks Ansible from a background thread while the
# main thread goes on importing): a module that registers fork handlers, imported in the middle of a fork,
# has its after-fork handler run without its before-fork one ("RuntimeError: release unlocked lock").
import concurrent.futures.thread  # noqa: F401
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

from irx.errors import IrxError
from irx.executors.ansible_results import OUTPUT_CAP, host_result, privilege_hint
from irx.executors.base import HostEvent, HostTask
from irx.executors.workdir import SESSION_PREFIX, claim, sweep_leftovers
from irx.inventory import Vault
from irx.results import HostResult

PLUGIN_DIR = Path(__file__).parent / "ansible_plugins" / "action"
MODULE_DIR = Path(__file__).parent / "ansible_plugins" / "modules"  # irx_command: every shell/command step
MAX_ROUNDS = 150  # each round nests one include in Ansible; restart the session before it gets deep
KILL_GRACE = 5  # seconds from SIGTERM to SIGKILL for a command past its step timeout (irx_command)

_MAIN = """\
- name: irx session
  hosts: all
  gather_facts: false
  tasks:
    - ansible.builtin.include_tasks: loop.yml
"""
# The hand-off and the include of the next batch: the whole of loop.yml (the first round), and the tail of
# every batch file, so each round costs one controller-side task and one include.
_NEXT_TASKS: list[dict[str, Any]] = [
    {
        "name": "irx:next",
        "irx_next": {
            "socket": "{{ irx_socket }}",
            "collect": "{{ irx_batch.collect | default([]) }}",
            "hosts": "{{ irx_hosts }}",
        },
        "register": "irx_batch",
        # One hand-off per round for the whole play (not one forked worker per host): the plugin reads
        # every host's registered results from hostvars, and Ansible applies its answer to all hosts.
        "run_once": True,
    },
    {"name": "irx:batch", "ansible.builtin.include_tasks": "{{ irx_batch.file }}", "when": "not irx_batch.done"},
]
_LOOP = yaml.safe_dump(_NEXT_TASKS, sort_keys=False)


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
    if task.action in {"shell", "command"}:
        cmd: dict[str, Any] = {"script": str(task.spec)} if task.action == "shell" else {"argv": list(task.spec)}
        if task.env:
            cmd["env"] = dict(task.env)
        if task.chdir:
            cmd["chdir"] = task.chdir
        if task.timeout:
            cmd["timeout"] = task.timeout
            cmd["kill_grace"] = KILL_GRACE
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
    body["when"] = "inventory_hostname in " + json.dumps(list(task.hosts))
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


def _module_path() -> str:
    """irx's modules first, then the operator's own (ANSIBLE_LIBRARY or ansible.cfg's library), so a playbook's
    module: steps still find the modules the operator installed."""
    from ansible import constants

    return os.pathsep.join(dict.fromkeys([str(MODULE_DIR), *map(str, constants.DEFAULT_MODULE_PATH)]))


def ansible_playbook() -> str:
    """The ansible-playbook beside this Python (the venv irx is installed in), else the one on PATH."""
    beside = Path(sys.executable).parent / "ansible-playbook"
    if beside.exists():
        return str(beside)
    found = shutil.which("ansible-playbook")
    if found is None:
        raise ExecutorError("ansible-playbook is not installed (pip install ansible-core) or not on PATH")
    return found


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
    ) -> None:
        self.inventory = inventory
        self.hosts = list(dict.fromkeys(hosts))
        self.forks = forks
        self.on_host_event = on_host_event
        self.cancelled = cancelled
        self.start_timeout = start_timeout
        self.exposes = exposes  # whether a text holds one of the run's secrets: none may reach a command line
        self.vault = vault or Vault()  # Ansible must open the same vaulted values irx did
        self._cond = threading.Condition()
        self._checkins: dict[str, int] = {}  # host -> number of irx_next calls answered or waiting
        self._payloads: dict[str, dict[str, Any]] = {}  # host -> results sent at its latest check-in
        self._replies: list[dict[str, Any]] = []  # reply for round r at index r
        self._round = 0
        self._task_started: dict[str, float] = {}
        self._durations: dict[tuple[str, str], float] = {}
        self._thread: threading.Thread | None = None
        self._runner: Any = None
        self._dir: Path | None = None
        self._owner: int | None = None
        self._server: socket.socket | None = None
        self._closing = False
        self._abort = False
        self._batches = 0

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        import ansible_runner

        sweep_leftovers()
        self._dir = Path(tempfile.mkdtemp(prefix=SESSION_PREFIX))
        os.chmod(self._dir, 0o700)
        self._owner = claim(self._dir)
        project = self._dir / "project"
        project.mkdir()
        (project / "main.yml").write_text(_MAIN)
        (project / "loop.yml").write_text(_LOOP)
        sock_path = str(self._dir / "irx.sock")
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server.bind(sock_path)
        self._server.listen(256)
        threading.Thread(target=self._accept, name="irx-ansible-accept", daemon=True).start()
        envvars = {
            "ANSIBLE_ACTION_PLUGINS": str(PLUGIN_DIR),
            "ANSIBLE_LIBRARY": _module_path(),
            "ANSIBLE_RETRY_FILES_ENABLED": "False",
            "ANSIBLE_FORCE_COLOR": "False",
            "ANSIBLE_NOCOLOR": "True",
            "ANSIBLE_DEPRECATION_WARNINGS": "False",
            # Pipelining for every connection (local and paramiko too, not just ssh): a module's arguments,
            # irx_command's env among them, then travel on stdin instead of in a file on the host.
            "ANSIBLE_PIPELINING": "True",
            "ANSIBLE_SSH_PIPELINING": "True",
            "ANSIBLE_TIMEOUT": os.environ.get("ANSIBLE_TIMEOUT", "10"),
            **self._vault_env(),
            # ansible-runner finds ansible-playbook on PATH: put the one installed with irx first.
            "PATH": os.pathsep.join([str(Path(ansible_playbook()).parent), os.environ.get("PATH", "")]),
        }
        self._thread, self._runner = ansible_runner.run_async(
            private_data_dir=str(self._dir),
            playbook="main.yml",
            inventory=self.inventory,
            limit=",".join(self.hosts),
            extravars={"irx_socket": sock_path, "irx_hosts": self.hosts},
            envvars=envvars,
            forks=max(self.forks, len(self.hosts)) if len(self.hosts) <= 50 else self.forks,
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
        """Tell every host there is nothing more, wait briefly for Ansible to finish, remove the files."""
        try:
            if self._thread is not None and self._thread.is_alive():
                with self._cond:
                    self._closing = True
                    self._replies.append({"done": True, "file": "", "collect": []})
                    self._cond.notify_all()
                self._thread.join(timeout=30)
                if self._thread.is_alive():
                    self.abort()
                    self._thread.join(timeout=15)
        finally:
            if self._server is not None:
                self._server.close()
            if self._dir is not None:
                shutil.rmtree(self._dir, ignore_errors=True)
            if self._owner is not None:
                os.close(self._owner)
                self._owner = None

    def abort(self) -> None:
        """Stop Ansible now (a second Ctrl-C, or a session that would not finish)."""
        self._abort = True

    def _should_cancel(self) -> bool:
        return self._abort or bool(self.cancelled())

    @property
    def rounds(self) -> int:
        return self._round

    # -- the socket side: one thread per waiting host ---------------------------------------------

    def _accept(self) -> None:
        assert self._server is not None
        while True:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            stream = conn.makefile("rwb")
            line = stream.readline()
            if not line:
                return
            payload = json.loads(line)
            by_host: dict[str, Any] = payload.get("hosts") or {}
            with self._cond:
                index = min((self._checkins.get(h, 0) for h in self.hosts), default=0)
                for host in self.hosts:  # one check-in stands for every host of the play
                    self._checkins[host] = index + 1
                    self._payloads[host] = by_host.get(host) or {}
                self._cond.notify_all()
                while len(self._replies) <= index and not self._closing:
                    self._cond.wait(timeout=1.0)
                reply = (
                    self._replies[index] if index < len(self._replies) else {"done": True, "file": "", "collect": []}
                )
            try:
                stream.write(json.dumps(reply).encode() + b"\n")
                stream.flush()
            except OSError:
                pass

    def _wait_checkins(self, count: int, what: str) -> None:
        deadline = time.monotonic() + (self.start_timeout if count == 1 else 24 * 3600)
        with self._cond:
            while not all(self._checkins.get(h, 0) >= count for h in self.hosts):
                if self._thread is not None and not self._thread.is_alive():
                    raise ExecutorError(f"ansible-playbook stopped {what}: {self._failure_text()}")
                if time.monotonic() > deadline:
                    raise ExecutorError(f"ansible-playbook did not start within {self.start_timeout:.0f}s")
                self._cond.wait(timeout=0.2)

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
        if self._round >= MAX_ROUNDS:
            raise ExecutorError("session exhausted")  # the caller restarts a fresh session
        self._wait_checkins(self._round + 1, "before the first step" if self._round == 0 else "between steps")
        assert self._dir is not None
        self._batches += 1
        batch_file = self._dir / "project" / f"batch-{self._batches}.yml"
        bodies = [*(_task(task, index) for index, task in enumerate(tasks)), *_NEXT_TASKS]
        batch_file.write_text(yaml.dump(bodies, Dumper=_Dumper, sort_keys=False, width=1_000_000))
        collect = [_register_name(task.step_id, index) for index, task in enumerate(tasks)]
        with self._cond:
            self._replies.append({"done": False, "file": str(batch_file), "collect": collect})
            self._round += 1
            self._cond.notify_all()
        self._wait_checkins(self._round + 1, "during a step")
        batch_file.unlink(missing_ok=True)
        results: dict[str, HostResult] = {}
        with self._cond:
            payloads = dict(self._payloads)
        for index, task in enumerate(tasks):
            name = _register_name(task.step_id, index)
            for host in task.hosts:
                res = payloads.get(host, {}).get(name)
                duration = self._durations.get((f"irx:{task.step_id}:{index}", host), 0.0)
                results[host] = privilege_hint(host_result(host, res, duration), task.become)
        return results

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
                self._durations[(task, host)] = duration
                res = data.get("res") or {}
                if isinstance(res, dict) and (res.get("timedout") or res.get("timed_out")):
                    status = "timed_out"
                if self.on_host_event is not None:
                    self.on_host_event(task.split(":")[1], host, status, duration)
        return False  # nothing is kept in ansible-runner's artifacts

"""How an irx ``shell`` or ``command`` step runs on a host: ``run_step(params)``, what ``irx_command``
answers. Standard library only (and ``irx_leases``), so it runs two ways with the same code: inside the
``irx_command`` module (Ansible's AnsiballZ, ``AnsibleModule`` checking the parameters), and as the lean
payload irx's ``irx_command`` action plugin pipes to the host's Python after checking the same
``irx_command_args.ARGUMENT_SPEC`` on the control node (no AnsiballZ, no ``ansible.module_utils.basic``:
about a sixth of the host's CPU per step). See the module's docstring for what it guarantees.
"""

from __future__ import annotations

import contextlib
import errno
import os
import selectors
import shutil
import signal
import subprocess
import tempfile
import time
from datetime import datetime
from typing import Any

from ansible.module_utils.irx_leases import lease_action

# As ansible.module_utils.common.locale.get_best_parsable_locale: the first of these the host has.
_LOCALES = ("C.utf8", "C.UTF-8", "en_US.utf8", "en_US.UTF-8", "C", "POSIX")
_SBIN = ("/sbin", "/usr/sbin", "/usr/local/sbin")

# Inherited variables that would change how the shell reads the script (startup files, options, exported
# functions). A step's own env: may still set them: that is the playbook's choice, not the host's.
_SHELL_HOOKS = ("BASH_ENV", "ENV", "SHELLOPTS", "BASHOPTS", "CDPATH", "GLOBIGNORE", "PS4")
_BASHES = ("/bin/bash", "/usr/bin/bash")
_POSIX_SH = "/bin/sh"
_READ = 65536


def _shell() -> tuple[list[str], bool]:
    """The interpreter for scripts and whether it runs with pipefail."""
    for bash in _BASHES:
        if os.access(bash, os.X_OK):
            return [bash, "-o", "pipefail"], True
    probe = subprocess.run(  # dash before 0.5.13 has no pipefail; busybox ash and others do
        [_POSIX_SH, "-c", "set -o pipefail"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
    )
    if probe.returncode == 0:
        return [_POSIX_SH, "-o", "pipefail"], True
    return [_POSIX_SH], False


def _environment(env: dict[str, Any], lang: str) -> dict[str, str]:
    child = {k: v for k, v in os.environ.items() if k not in _SHELL_HOOKS and not k.startswith("BASH_FUNC_")}
    # As ansible.builtin.command does: parse-stable output (numbers, dates) unless the step says otherwise.
    child.update({"LANG": lang, "LC_ALL": lang, "LC_MESSAGES": lang})
    child.update({str(k): str(v) for k, v in env.items()})
    return child


class _Capture:
    """Reads a child's stdout and stderr until both close, keeping at most ``cap`` bytes of each."""

    def __init__(self, proc: subprocess.Popen[bytes], cap: int) -> None:
        self.cap = cap
        self.data = {"stdout": bytearray(), "stderr": bytearray()}
        self.cut = {"stdout": False, "stderr": False}
        self.selector = selectors.DefaultSelector()
        for name, stream in (("stdout", proc.stdout), ("stderr", proc.stderr)):
            assert stream is not None
            os.set_blocking(stream.fileno(), False)
            self.selector.register(stream, selectors.EVENT_READ, name)

    @property
    def open(self) -> bool:
        return bool(self.selector.get_map())

    def read(self, wait: float) -> bool:
        """Read what is ready within ``wait`` seconds; whether anything happened."""
        events = self.selector.select(max(0.0, wait))
        for key, _ in events:
            try:
                chunk = os.read(key.fd, _READ)
            except BlockingIOError:
                continue
            if not chunk:
                self.selector.unregister(key.fileobj)
                continue
            name = key.data
            room = self.cap - len(self.data[name])
            if len(chunk) > room:
                self.cut[name] = True
            if room > 0:
                self.data[name] += chunk[:room]
        return bool(events)

    def text(self, name: str) -> str:
        return bytes(self.data[name]).rstrip(b"\r\n").decode("utf-8", errors="replace")

    def close(self) -> None:
        self.selector.close()


def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(OSError):  # already gone
        os.killpg(proc.pid, sig)


def _run(
    argv: list[str], env: dict[str, str], cwd: str | None, timeout: float, grace: float, cap: int
) -> tuple[int, _Capture, str | None]:
    """Run ``argv``; its return code, its output, and the signal the timeout stopped it with (or None)."""
    started = time.monotonic()
    proc = subprocess.Popen(  # argv as data, no shell
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=cwd,
        env=env,
        start_new_session=True,
        close_fds=True,
    )
    capture = _Capture(proc, cap)
    stopped: str | None = None
    kill_at = 0.0
    exited_at: float | None = None

    def watch(now: float) -> None:
        nonlocal stopped, kill_at
        if timeout and stopped is None and now >= started + timeout:
            stopped, kill_at = "SIGTERM", now + grace
            _signal_group(proc, signal.SIGTERM)
        elif stopped == "SIGTERM" and now >= kill_at:
            stopped = "SIGKILL"
            _signal_group(proc, signal.SIGKILL)

    try:
        while capture.open:
            now = time.monotonic()
            wait = 1.0
            if timeout and stopped is None:
                wait = min(wait, started + timeout - now)
            elif stopped == "SIGTERM":
                wait = min(wait, kill_at - now)
            active = capture.read(wait)
            now = time.monotonic()
            watch(now)
            if exited_at is None and proc.poll() is not None:
                exited_at = now
            # As ansible.builtin.command does: once the command has exited, output that stays quiet (a
            # daemon it started keeps the pipes open) ends the reading; so does a 5 s tail.
            if exited_at is not None and (not active or now - exited_at > 5):
                break
        while True:
            try:
                rc = proc.wait(timeout=0.2)
                break
            except subprocess.TimeoutExpired:
                watch(time.monotonic())
    finally:
        capture.close()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
    return rc, capture, stopped


def best_locale() -> str:
    """The locale the command's output is parsed in, as ``AnsibleModule.get_best_parsable_locale`` picks it
    (``locale -a``, the first of ``_LOCALES`` present; ``C`` when that cannot be told)."""
    path = os.pathsep.join([os.environ.get("PATH", os.defpath), *_SBIN])
    tool = shutil.which("locale", path=path)
    if tool is None:
        return "C"
    try:
        done = subprocess.run([tool, "-a"], stdin=subprocess.DEVNULL, capture_output=True, check=False)
    except OSError:
        return "C"
    available = done.stdout.decode("utf-8", errors="replace").strip().splitlines() if done.returncode == 0 else []
    return next((name for name in _LOCALES if name in available), "C")


def _lease(args: dict[str, Any], alone: bool) -> dict[str, Any]:
    """The lease's answer (as irx_lease gives it); a parameter irx_lease would refuse fails the lease only.
    Beside a command (not ``alone``) a lease is acquired (before the command) or released (after it), never
    renewed."""
    spec = {
        "holder": {},
        "ttl": 900.0,
        "force": False,
        "dead_run_id": "",
        **{k: v for k, v in args.items() if v is not None},
    }
    actions = ("acquire", "renew", "release") if alone else ("acquire", "release")
    if spec.get("action") not in actions or not all(isinstance(spec.get(k), str) for k in ("path", "run_id")):
        return {"failed": True, "msg": f"lease: the action is one of {', '.join(actions)}, with a path and a run_id"}
    try:
        spec["ttl"], spec["force"] = float(spec["ttl"]), spec["force"] in (True, "true", "True", "yes")
        answer: dict[str, Any] = lease_action(spec)[1]
    except (TypeError, ValueError) as exc:
        return {"failed": True, "msg": f"lease: {exc}"}
    return answer


def _write_script(scratch: str, text: str) -> str:
    """``text`` in a new file of ``scratch`` only this user can read; its path."""
    path = os.path.join(scratch, "step.sh")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape") as script:
        script.write(text)
    return path


def _cannot_start(argv: list[str], exc: Exception) -> dict[str, Any]:
    """The answer for a command that could not start (rc 127 or 126)."""
    if isinstance(exc, ValueError):  # subprocess refuses NUL in argv and env
        return {"msg": "cannot start: an argument or environment value holds a NUL character", "rc": 126}
    assert isinstance(exc, OSError)
    reason = exc.strerror or str(exc)
    if exc.errno == errno.E2BIG:
        reason += " (one argument or environment value may be at most 128 KiB on Linux)"
    return {"msg": f"cannot start {argv[0]}: {reason}", "rc": 127 if exc.errno == errno.ENOENT else 126}


def _verdict(rc: int, capture: _Capture, stopped: str | None, timeout: float) -> dict[str, Any]:
    """What the result says besides the output: which stream was cut, a timeout, a failure."""
    verdict: dict[str, Any] = {}
    if any(capture.cut.values()):
        verdict["truncated"] = dict(capture.cut)
    if stopped is not None:
        verdict.update(
            timed_out=True,
            signal=stopped,
            failed=True,
            msg=f"timed out after {timeout:g}s: the command was stopped on the host ({stopped})",
        )
    elif rc != 0:
        verdict.update(failed=True, msg="non-zero return code")
    return verdict


def _command(params: dict[str, Any]) -> dict[str, Any]:
    """Run the step's argv or script; the answer (``failed`` and ``msg`` when it failed)."""
    env = params["env"] or {}
    # The invocation Ansible would echo back holds the env values (secrets among them) and the whole script:
    # irx knows what it sent, so only the env's names come back.
    invocation = {"module_args": {"env": sorted(env), "chdir": params["chdir"], "timeout": params["timeout"]}}
    cwd = params["chdir"]
    if cwd:
        cwd = os.path.expanduser(cwd)
        if not os.path.isdir(cwd):
            return {"failed": True, "msg": f"chdir {cwd}: no such directory", "rc": None, "invocation": invocation}
    scratch: str | None = None
    shell_name = ""
    pipefail = False
    try:
        if params["script"] is not None:
            shell, pipefail = _shell()
            shell_name = shell[0]
            scratch = tempfile.mkdtemp(prefix="irx-step-")  # 0700, this user's
            argv = [*shell, _write_script(scratch, params["script"])]
        else:
            argv = list(params["argv"])
        begin = datetime.now()
        try:
            limits = (params["timeout"], params["kill_grace"], params["output_cap"])
            rc, capture, stopped = _run(argv, _environment(env, best_locale()), cwd, *limits)
        except (OSError, ValueError) as exc:
            return {"failed": True, **_cannot_start(argv, exc), "stdout": "", "stderr": "", "invocation": invocation}
        end = datetime.now()
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    result: dict[str, Any] = {
        "rc": rc,
        "stdout": capture.text("stdout"),
        "stderr": capture.text("stderr"),
        "start": str(begin),
        "end": str(end),
        "delta": str(end - begin),
        "changed": True,
        "invocation": invocation,
    }
    if shell_name:
        result["shell"], result["pipefail"] = shell_name, pipefail
    result.update(_verdict(rc, capture, stopped, params["timeout"]))
    return result


def run_step(params: dict[str, Any]) -> dict[str, Any]:
    """What ``irx_command`` answers for ``params`` (``irx_command_args.ARGUMENT_SPEC``'s, already checked): a
    lease alone is the lease's own task (irx_lease's answer); a lease beside a command is acquired before it
    and released after it, its answer as ``irx_lease`` in the command's, whatever the command did."""
    lease = params.get("lease")
    if lease is not None and params.get("argv") is None and params.get("script") is None:
        return _lease(lease, alone=True)
    taken = _lease(lease, alone=False) if lease is not None and lease.get("action") != "release" else None
    result = _command(params)
    if lease is not None:
        result["irx_lease"] = taken if taken is not None else _lease(lease, alone=False)
    return result

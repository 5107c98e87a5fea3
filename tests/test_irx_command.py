"""irx_command, how every shell and command step runs on a host, as a real process, both ways it reaches a
host: the Ansible module (``python MODULE ARGS_FILE``, as Ansible runs it when it does not pipeline) and the
lean payload irx's action plugin pipes to the host's Python instead. Every test runs both: they exercise the
real code (real shells, process groups, signals, pipes) without an Ansible run. The run integration tests
cover it through ansible-runner on local and SSH hosts.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from ansible_modules import TRANSPORTS, Transport


@pytest.fixture(params=TRANSPORTS)
def step(request: pytest.FixtureRequest, tmp_path: Path) -> Transport:
    return Transport(request.param, tmp_path)


def run(step: Transport, process_env: dict[str, str] | None = None, **args: Any) -> dict[str, Any]:
    argv, stdin = step.command(args)
    proc = subprocess.run(
        argv,
        input=stdin,
        capture_output=True,
        timeout=60,
        check=False,
        env={**os.environ, **(process_env or {})},
        cwd=step.workdir,
    )
    assert proc.stdout, proc.stderr
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


HOSTILE = ["$HOME", "${PATH}", "`touch {canary}`", "$(touch {canary})", "; touch {canary}", "a\nb", "'\"", "*", "~"]


def test_argv_is_executed_as_data_never_expanded(step: Transport, tmp_path: Path) -> None:
    canary = tmp_path / "canary"
    values = [value.replace("{canary}", str(canary)) for value in HOSTILE]
    result = run(step, argv=["/usr/bin/printf", "%s\\0", *values])
    assert result["rc"] == 0, result
    assert result["stdout"].split("\0")[:-1] == values
    assert not canary.exists()


def test_env_values_reach_the_process_environment_byte_for_byte_and_are_not_echoed(
    step: Transport, tmp_path: Path
) -> None:
    canary = tmp_path / "canary"
    value = f"x$(touch {canary})`id`${{HOME}}\"'\n;|&"
    result = run(step, script='printf "%s" "$V"', env={"V": value})
    assert (result["rc"], result["stdout"]) == (0, value)
    assert not canary.exists()
    assert result["invocation"] == {"module_args": {"env": ["V"], "chdir": None, "timeout": 0.0}}
    assert value not in json.dumps(result["invocation"])


def test_a_script_runs_from_a_private_file_never_from_a_command_line(step: Transport, tmp_path: Path) -> None:
    """While the script runs, neither its text nor an env value is in any process's argv; the env value is
    in the process's own environment only, and the file is gone afterwards."""
    marker = f"irx-script-marker-{os.getpid()}"
    secret = f"irx-env-secret-{os.getpid()}"
    script = f": {marker}\nprintf '%s\\n' \"$0\"\nsleep 2\n"
    argv, stdin = step.command({"script": script, "env": {"S": secret}})
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=tmp_path)
    assert proc.stdin is not None
    proc.stdin.write(stdin or b"")
    proc.stdin.close()
    sightings, environ_hits, samples = [], 0, 0
    deadline = time.monotonic() + 30  # the whole life of the module and its script (2 s, more when busy)
    while proc.poll() is None and time.monotonic() < deadline:
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
                environ = Path(f"/proc/{pid}/environ").read_bytes()
            except OSError:
                continue
            samples += 1
            if marker.encode() in cmdline or secret.encode() in cmdline:
                sightings.append(cmdline)
            environ_hits += secret.encode() in environ
        time.sleep(0.01)
    assert proc.stdout is not None
    with proc.stdout:
        out = proc.stdout.read().decode()
    proc.wait(timeout=30)
    result = json.loads(out)
    assert result["rc"] == 0, result
    assert (result["shell"], result["pipefail"]) == ("/bin/bash", True)
    assert samples > 100
    assert sightings == []
    assert environ_hits > 0  # the sampler does see the process: the value is in its environment only
    script_path = Path(result["stdout"])
    assert script_path.name == "step.sh"
    assert not script_path.parent.exists()


def test_a_failing_stage_of_a_pipeline_fails_the_script(step: Transport, tmp_path: Path) -> None:
    failed = run(step, script="df -P /nonexistent-irx 2>/dev/null | awk 'NR == 2 { print $5 }'")
    assert (failed["rc"], failed["failed"], failed["stdout"]) == (1, True, "")
    ok = run(step, script="{ grep -c x /dev/null || [ $? -eq 1 ]; } | tr -d ' '")
    assert (ok["rc"], ok["stdout"]) == (0, "0")


def test_the_timeout_stops_the_whole_process_group(step: Transport, tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    started = time.monotonic()
    result = run(step, script=f"sleep 60 & echo $! > {pids}; sleep 60", timeout=1, kill_grace=2)
    assert time.monotonic() - started < 10
    assert (result["timed_out"], result["signal"], result["failed"]) == (True, "SIGTERM", True)
    assert result["msg"] == "timed out after 1s: the command was stopped on the host (SIGTERM)"
    background = int(pids.read_text())
    time.sleep(0.2)
    assert not Path(f"/proc/{background}").exists() or "Z" in Path(f"/proc/{background}/stat").read_text().split()[2]


def test_a_command_ignoring_sigterm_is_killed_after_the_grace(step: Transport, tmp_path: Path) -> None:
    started = time.monotonic()
    result = run(step, script="trap '' TERM; sleep 60; sleep 60", timeout=1, kill_grace=1)
    assert time.monotonic() - started < 10
    assert (result["timed_out"], result["signal"]) == (True, "SIGKILL")


def test_a_daemon_that_keeps_the_pipes_open_does_not_hold_the_step(step: Transport, tmp_path: Path) -> None:
    started = time.monotonic()
    result = run(step, script="(sleep 20 &); echo started")
    assert time.monotonic() - started < 8
    assert (result["rc"], result["stdout"]) == (0, "started")


def test_stdin_is_empty_and_output_is_capped(step: Transport, tmp_path: Path) -> None:
    result = run(step, script="cat; head -c 3000000 /dev/zero | tr '\\0' a", output_cap=1000)
    assert result["rc"] == 0
    assert result["stdout"] == "a" * 1000
    assert result["truncated"] == {"stdout": True, "stderr": False}


def test_inherited_shell_hooks_are_dropped_but_a_steps_own_env_is_kept(step: Transport, tmp_path: Path) -> None:
    canary = tmp_path / "canary"
    hook = tmp_path / "hook.sh"
    hook.write_text(f"touch {canary}\n")
    inherited = {"BASH_ENV": str(hook), "ENV": str(hook), "SHELLOPTS": "xtrace", "BASH_FUNC_echo%%": "() { id; }"}
    result = run(step, process_env=inherited, script='echo plain; printf "%s" "$LC_ALL"')
    assert (result["rc"], result["stderr"]) == (0, "")  # no xtrace
    # as Ansible's command module: the first parsable locale the host has (`locale -a`), else C
    assert result["stdout"] in {"plain\nC", "plain\nC.UTF-8", "plain\nC.utf8"}
    assert not canary.exists()
    own = run(step, script='printf "%s" "$LC_ALL"', env={"LC_ALL": "C"})
    assert own["stdout"] == "C"


@pytest.mark.parametrize(
    ("args", "msg", "rc"),
    [
        ({"argv": ["/nonexistent/irx-tool"]}, "cannot start /nonexistent/irx-tool: No such file or directory", 127),
        (
            {"argv": ["/bin/echo", "x" * 200_000]},
            "cannot start /bin/echo: Argument list too long (one argument or environment value may be at most "
            "128 KiB on Linux)",
            126,
        ),
        ({"argv": ["/bin/echo", "a\0b"]}, "cannot start: an argument or environment value holds a NUL character", 126),
        (
            {"argv": ["/bin/true"], "chdir": "/nonexistent-irx-dir"},
            "chdir /nonexistent-irx-dir: no such directory",
            None,
        ),
    ],
)
def test_what_cannot_start_says_why(
    step: Transport, tmp_path: Path, args: dict[str, Any], msg: str, rc: int | None
) -> None:
    result = run(step, **args)
    assert (result["failed"], result["msg"], result["rc"]) == (True, msg, rc)


def test_a_cut_the_module_made_is_kept_in_the_host_result(step: Transport, tmp_path: Path) -> None:
    """Multi-byte output cut on the host at the byte cap is shorter in characters than irx's own cap: the
    module's flag, not a length, says it was cut."""
    from irx.executors.ansible_results import host_result

    script = "head -c 3000 /dev/zero | tr '\\0' '\\351' | iconv -f latin1 -t utf-8"  # 3000 x é
    res = run(step, script=script, output_cap=1000)
    assert res["truncated"] == {"stdout": True, "stderr": False}
    result = host_result("h1", res, 0.1)
    assert result.extra["truncated"]["stdout"] is True
    assert len(result.stdout) <= 500


def _lease(path: Path, action: str, run_id: str = "run-a") -> dict[str, Any]:
    return {"action": action, "path": str(path), "run_id": run_id, "ttl": 60.0, "holder": {"operator": "op"}}


def test_a_lease_beside_a_command_is_taken_before_it_and_released_after_it_whatever_it_did(
    step: Transport, tmp_path: Path
) -> None:
    lease = tmp_path / "lib" / "lease.json"
    taken = run(step, script=f"cat {lease}; exit 3", lease=_lease(lease, "acquire"))
    assert taken["rc"] == 3  # the command failed; its lease answer is there all the same
    assert json.loads(taken["stdout"])["run_id"] == "run-a"  # it was taken before the command ran
    assert taken["irx_lease"]["outcome"] == "acquired"
    assert taken["irx_lease"]["lease"]["operator"] == "op"

    released = run(step, argv=["cat", str(lease)], lease=_lease(lease, "release"))
    assert json.loads(released["stdout"])["run_id"] == "run-a"  # still held while the command ran
    assert released["irx_lease"]["outcome"] == "released"
    assert lease.read_text() == ""

    missing = run(step, argv=["true"], chdir=str(tmp_path / "nowhere"), lease=_lease(lease, "acquire"))
    assert missing["failed"] is True  # the module failed before the command: the lease still answers
    assert missing["irx_lease"]["outcome"] == "acquired"


def test_a_lease_alone_is_irx_leases_own_answer_and_is_never_renewed_beside_a_command(
    step: Transport, tmp_path: Path
) -> None:
    lease = tmp_path / "lease.json"
    assert run(step, lease=_lease(lease, "acquire"))["outcome"] == "acquired"
    alone = run(step, lease=_lease(lease, "renew"))
    assert (alone["outcome"], "stdout" in alone) == ("renewed", False)
    held = run(step, lease=_lease(lease, "acquire", run_id="run-b"))
    assert (held["outcome"], held["current"]["run_id"]) == ("held", "run-a")
    beside = run(step, argv=["true"], lease=_lease(lease, "renew"))
    assert beside["rc"] == 0
    assert beside["irx_lease"]["failed"] is True
    assert "acquire, release" in beside["irx_lease"]["msg"]
    refused = run(step, lease={"action": "acquire", "path": "relative.json", "run_id": "r"})
    assert refused["failed"] is True
    assert "absolute path" in refused["msg"]

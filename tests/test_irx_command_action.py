"""irx's ``irx_command`` action plugin in real Ansible runs (the local connection: no hosts needed): what
reaches the host's Python is the lean payload, never AnsiballZ; the interpreter is Ansible's own choice,
discovered on a host's first task; bad arguments are refused on the control node; the step's arguments
are never on the Python's command line. Both ways the code runs on a host are in test_irx_command.py."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import yaml

from ansible_modules import HOST_PYTHON
from irx.executors.ansible import ACTION_DIR, MODULE_DIR, MODULE_UTILS_DIR, ansible_playbook

PAYLOAD_HEADER = "# irx_command (irx's action plugin)"


def play(tmp_path: Path, tasks: list[dict[str, Any]], host_vars: dict[str, Any], **env: str) -> list[dict[str, Any]]:
    """Run ``tasks`` on one host over the local connection with irx's plugins, as irx's session sets them,
    through ansible-runner; each task's result, in order (``failed``, ``skipped``: Ansible's verdict, from
    its event)."""
    import ansible_runner

    inventory = {"all": {"hosts": {"h": {"ansible_connection": "local", **host_vars}}}}
    project = tmp_path / "runner" / "project"
    project.mkdir(parents=True)
    (project / "play.yml").write_text(yaml.safe_dump([{"hosts": "all", "gather_facts": False, "tasks": tasks}]))
    envvars = {
        "ANSIBLE_LIBRARY": str(MODULE_DIR),
        "ANSIBLE_MODULE_UTILS": str(MODULE_UTILS_DIR),
        "ANSIBLE_ACTION_PLUGINS": str(ACTION_DIR),
        "ANSIBLE_PIPELINING": "True",
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / "local-tmp"),
        "ANSIBLE_REMOTE_TMP": str(tmp_path / "remote-tmp"),
        # irx's ansible-playbook, then a host's PATH (interpreter discovery looks there: no pyenv shims)
        "PATH": os.pathsep.join([str(Path(ansible_playbook()).parent), "/usr/bin", "/bin"]),
        **env,
    }
    runner = ansible_runner.run(
        private_data_dir=str(tmp_path / "runner"),
        playbook="play.yml",
        inventory=inventory,
        envvars=envvars,
        quiet=True,
        suppress_env_files=True,
    )
    answered = [e for e in runner.events if e["event"] in ("runner_on_ok", "runner_on_failed", "runner_on_skipped")]
    results = [
        {
            **e["event_data"].get("res", {}),
            "failed": e["event"] == "runner_on_failed",
            "skipped": e["event"] == "runner_on_skipped",
        }
        for e in answered
    ]
    with runner.stdout as output:
        assert len(results) == len(tasks), output.read()
    return results


def sent_files(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "remote-tmp").rglob("AnsiballZ_*"))


def test_without_pipelining_the_file_ansible_sends_is_the_payload_not_ansiballz(tmp_path: Path) -> None:
    task = {"irx_command": {"argv": ["/usr/bin/printf", "%s", "$HOME `id`"]}, "ignore_errors": True}
    [result] = play(
        tmp_path, [task], {"ansible_python_interpreter": HOST_PYTHON},
        ANSIBLE_PIPELINING="False", ANSIBLE_KEEP_REMOTE_FILES="1",
    )  # fmt: skip
    assert (result["rc"], result["stdout"]) == (0, "$HOME `id`")
    [sent] = sent_files(tmp_path)
    text = sent.read_text()
    assert text.startswith(PAYLOAD_HEADER)
    assert "from ansible.module_utils.basic import" not in text
    assert "ZIPDATA" not in text
    assert "_ansiballz" not in text
    assert len(text) < 64 * 1024  # the AnsiballZ of irx_command is about 180 KiB


def test_the_interpreter_is_ansibles_choice_discovered_on_the_hosts_first_task(tmp_path: Path) -> None:
    """No ansible_python_interpreter: Ansible discovers it on the first task (and says so as a fact); the
    second task uses it. Both ran the payload, whose Python has nothing on its command line but itself."""
    tasks: list[dict[str, Any]] = [
        {"irx_command": {"argv": ["true"]}},
        {"irx_command": {"script": "tr '\\0' ' ' < /proc/$PPID/cmdline"}},
    ]
    first, second = play(tmp_path, tasks, {}, ANSIBLE_PYTHON_INTERPRETER="auto_silent")
    discovered = first["ansible_facts"]["discovered_interpreter_python"]
    assert Path(discovered).name.startswith("python3")
    assert "ansible_facts" not in second
    assert second["rc"] == 0
    assert second["stdout"].split() == [discovered]  # the program and its arguments came on stdin


def test_a_lease_alone_goes_through_the_payload_too(tmp_path: Path) -> None:
    lease = {"action": "acquire", "path": str(tmp_path / "lease.json"), "run_id": "run-a", "ttl": 60}
    [answer] = play(tmp_path, [{"irx_command": {"lease": lease}}], {"ansible_python_interpreter": HOST_PYTHON})
    assert answer["outcome"] == "acquired"
    assert json.loads((tmp_path / "lease.json").read_text())["run_id"] == "run-a"


def test_bad_arguments_are_refused_on_the_control_node_before_anything_reaches_the_host(tmp_path: Path) -> None:
    tasks = [
        {"irx_command": {"argv": ["true"], "script": "true"}, "ignore_errors": True},
        {"irx_command": {"argv": ["true"], "timeout": "soon"}, "ignore_errors": True},
        {"irx_command": {"chdir": "/"}, "ignore_errors": True},
    ]
    both, typed, none = play(
        tmp_path, tasks, {"ansible_python_interpreter": HOST_PYTHON},
        ANSIBLE_PIPELINING="False", ANSIBLE_KEEP_REMOTE_FILES="1",
    )  # fmt: skip
    assert [both["failed"], typed["failed"], none["failed"]] == [True, True, True]
    assert "mutually exclusive: argv|script" in both["msg"]
    assert "'timeout' is of type" in typed["msg"]
    assert "float" in typed["msg"]
    assert "one of the following is required: argv, script, lease" in none["msg"]
    assert sent_files(tmp_path) == []


def test_a_check_mode_run_skips_the_step_as_the_module_would_instead_of_running_it(tmp_path: Path) -> None:
    canary = tmp_path / "ran"
    task = {"irx_command": {"argv": ["touch", str(canary)]}, "check_mode": True}
    [skipped] = play(tmp_path, [task], {"ansible_python_interpreter": HOST_PYTHON})
    assert skipped["skipped"] is True
    assert not canary.exists()

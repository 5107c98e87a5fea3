"""The pure parts of irx.executors.ansible, without running Ansible: the task irx writes for a HostTask
(``_task``), the ``!unsafe`` tagging of every irx-rendered string (``unsafe`` and ``_Dumper``, checked as
Ansible's own loader and templar read the batch file), the refusal of secrets on a command line
(``exposed_on_command_line``) and the mapping of Ansible's registered results (``host_result``).
``privilege_hint`` has its own tests in test_privilege.py."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from irx.executors.ansible import (
    KILL_GRACE,
    ExecutorError,
    _Dumper,
    _task,
    exposed_on_command_line,
    unsafe,
)
from irx.executors.ansible_results import OUTPUT_CAP, host_result
from irx.executors.base import HostTask


def dump(value: Any) -> str:
    """As the session writes a batch file."""
    return yaml.dump(value, Dumper=_Dumper, sort_keys=False, width=1_000_000)


def ansible_reads(tmp_path: Path, text: str) -> Any:
    """A step's tasks as the irx strategy plugin loads them (and, stricter, as Ansible loads a task file it
    trusts as templates): either way an !unsafe string is never a template."""
    from ansible.parsing.dataloader import DataLoader

    path = tmp_path / "batch.yml"
    path.write_text(text)
    strategy = DataLoader().load(text, show_content=False)
    trusted = DataLoader().load_from_file(str(path), cache="none", trusted_as_template=True)
    assert strategy == trusted
    return trusted


def ansible_templates(value: Any) -> Any:
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import Templar

    return Templar(loader=DataLoader(), variables={"secret": "LEAKED"}).template(value)


# --- _task: shell and command steps go through irx_command -----------------------------------------------------


def test_a_shell_task_runs_its_script_through_irx_command() -> None:
    body = _task(HostTask("restart_app", ["web1", "web2"], "shell", "systemctl restart app && echo $HOME"), 0)
    assert body == {
        "name": "irx:restart_app:0",
        "irx_command": {"script": "systemctl restart app && echo $HOME", "output_cap": OUTPUT_CAP + 1},
        "register": "irx_r_restart_app_0",
        "ignore_errors": True,
        "ignore_unreachable": True,
    }
    assert "shell" not in body
    assert "ansible.builtin.shell" not in body


def test_a_command_task_passes_argv_as_a_list_never_a_line() -> None:
    body = _task(HostTask("ls", ["db1"], "command", ("ls", "-l", "$HOME", "a b", "*")), 2)
    assert body["irx_command"] == {"argv": ["ls", "-l", "$HOME", "a b", "*"], "output_cap": OUTPUT_CAP + 1}
    assert "script" not in body["irx_command"]
    assert body["name"] == "irx:ls:2"
    assert body["register"] == "irx_r_ls_2"


def test_env_chdir_and_timeout_go_to_the_module_never_to_environment() -> None:
    task = HostTask("flush", ["h1"], "shell", "redis-cli FLUSHALL", env={"REDISCLI_AUTH": "pw", "LANG": "C"},
                    chdir="/srv/app", timeout=30.0)  # fmt: skip
    body = _task(task, 0)
    assert body["irx_command"] == {
        "script": "redis-cli FLUSHALL",
        "env": {"REDISCLI_AUTH": "pw", "LANG": "C"},
        "chdir": "/srv/app",
        "timeout": 30.0,
        "kill_grace": KILL_GRACE,
        "output_cap": OUTPUT_CAP + 1,
    }
    assert "environment" not in body
    assert "chdir" not in body
    assert "pw" not in body["irx_command"]["script"]


def test_ansibles_timeout_is_a_backstop_past_the_hosts_own_kill() -> None:
    """irx_command kills at the step timeout, SIGKILL KILL_GRACE later; Ansible's timeout (whole seconds,
    rounded up) comes after both."""
    for timeout, expected in ((30.0, 30), (2.5, 3), (0.2, 1)):
        body = _task(HostTask("s", ["h"], "command", ["sleep", "60"], timeout=timeout), 0)
        assert body["timeout"] == expected + KILL_GRACE + 5
        assert body["timeout"] > timeout + KILL_GRACE
        assert body["irx_command"]["timeout"] == timeout


def test_no_timeout_means_none_anywhere() -> None:
    body = _task(HostTask("s", ["h"], "shell", "true"), 0)
    assert "timeout" not in body
    assert "timeout" not in body["irx_command"]
    assert "kill_grace" not in body["irx_command"]


def test_become_only_when_asked() -> None:
    assert _task(HostTask("s", ["h"], "shell", "id", become=True), 0)["become"] is True
    assert "become" not in _task(HostTask("s", ["h"], "shell", "id"), 0)
    assert _task(HostTask("m", ["h"], "module", "ansible.builtin.ping", become=True), 0)["become"] is True


# --- _task: module steps -----------------------------------------------------------------------------------------


def test_a_module_task_calls_the_module_with_its_args() -> None:
    task = HostTask("svc", ["web1"], "module", "ansible.builtin.service",
                    args={"name": "nginx", "state": "restarted", "enabled": True}, timeout=7)  # fmt: skip
    body = _task(task, 1)
    assert body["ansible.builtin.service"] == {"name": "nginx", "state": "restarted", "enabled": True}
    assert "irx_command" not in body
    assert body["timeout"] == 7  # the only bound for a module: no kill on the host, so no slack
    assert body["name"] == "irx:svc:1"
    assert body["register"] == "irx_r_svc_1"
    assert body["ignore_errors"] is True
    assert body["ignore_unreachable"] is True


def test_a_module_task_with_a_fractional_timeout_rounds_up() -> None:
    body = _task(HostTask("m", ["h"], "module", "ansible.builtin.wait_for", args={"port": 80}, timeout=2.5), 0)
    assert body["timeout"] == 3


def test_env_on_a_module_task_is_refused_not_turned_into_environment() -> None:
    task = HostTask("svc", ["h"], "module", "ansible.builtin.service", args={"name": "x"}, env={"TOKEN": "t"})
    with pytest.raises(ExecutorError, match=r"svc.*env"):
        _task(task, 0)


# --- the strategy plugin: one step's tasks in waves ---------------------------------------------------------------


def test_a_steps_tasks_on_different_hosts_run_at_once_and_a_host_never_runs_two_at_once() -> None:
    from irx.executors.ansible_plugins.strategy.irx import _waves

    groups = [("a", ["web1", "web2"]), ("b", ["web3"]), ("c", ["web2"]), ("d", ["web4"]), ("e", ["web2", "web5"])]
    waves = [[task for task, _ in wave] for wave in _waves(list(groups))]
    assert waves == [["a", "b"], ["c", "d"], ["e"]]
    assert [task for wave in waves for task in wave] == ["a", "b", "c", "d", "e"]  # order kept
    assert list(_waves([])) == []


def test_irx_keys_are_plain_yaml_and_no_task_is_limited_by_a_when(tmp_path: Path) -> None:
    """The strategy queues each task on its own hosts: no task carries a when: (which Ansible would template)."""
    text = dump([_task(HostTask("s", ["web1"], "shell", "true"), 0)])
    assert "!unsafe" not in text.split("irx_command:")[0]
    (loaded,) = ansible_reads(tmp_path, text)
    assert "when" not in loaded
    assert loaded["register"] == "irx_r_s_0"


# --- unsafe() and the dumper ---------------------------------------------------------------------------------------


def test_unsafe_tags_every_string_and_keeps_the_rest() -> None:
    value = {"a": "x", "n": 3, "f": 0.5, "b": True, "z": None, "l": ["y", 4, ("t", "u")], "d": {"k": "v", 1: "one"}}
    tagged = unsafe(value)
    assert tagged == {"a": "x", "n": 3, "f": 0.5, "b": True, "z": None, "l": ["y", 4, ["t", "u"]],
                      "d": {"k": "v", "1": "one"}}  # fmt: skip
    strings = [tagged["a"], tagged["l"][0], tagged["l"][2][0], tagged["l"][2][1], tagged["d"]["k"], tagged["d"]["1"]]
    assert all(type(s).__name__ == "_Unsafe" for s in strings)
    assert all(type(v) is type(value[k]) for k, v in tagged.items() if k in {"n", "f", "b", "z"})


def test_the_dumped_yaml_tags_strings_unsafe() -> None:
    text = dump(unsafe({"script": "echo {{ x }}", "argv": ["ls", "{% raw %}"], "chdir": "/srv", "n": 3, "b": True}))
    assert "script: !unsafe 'echo {{ x }}'" in text
    assert "- !unsafe 'ls'" in text
    assert "- !unsafe '{% raw %}'" in text
    assert "chdir: !unsafe '/srv'" in text
    assert "n: 3\n" in text
    assert "b: true\n" in text


@pytest.mark.parametrize(
    "text", ["true", "false", "yes", "No", "on", "OFF", "123", "-7", "0x1F", "0o17", "1.5", "1e3", ".inf", ".NaN",
             "null", "~", "", "2024-01-01", "12:30:00", "1_000", "<<", "Y", "n", "tRUE", "1e+3"],
)  # fmt: skip
def test_a_string_that_reads_as_another_type_is_quoted_and_stays_a_string(tmp_path: Path, text: str) -> None:
    dumped = dump({"v": unsafe(text)})
    loaded = ansible_reads(tmp_path, dumped)["v"]
    assert loaded == text
    assert isinstance(loaded, str)


def test_a_bool_like_string_is_quoted_not_unsafe() -> None:
    """Ansible resolves an !unsafe scalar's type as if it were plain: !unsafe 'true' would be a bool."""
    assert dump({"v": unsafe("true")}) == "v: 'true'\n"
    assert dump({"v": unsafe("123")}) == "v: '123'\n"
    assert dump({"v": unsafe("null")}) == "v: 'null'\n"
    assert dump({"v": unsafe("")}) == "v: ''\n"
    assert dump({"v": unsafe("plain")}) == "v: !unsafe 'plain'\n"


@pytest.mark.parametrize(
    "text",
    [
        "{{ secret }}",
        "{{ lookup('pipe', 'id') }}",
        "{% if true %}{{ secret }}{% endif %}",
        "a {{ secret }} b {# c #}",
        "'{{ secret }}' \"{{ secret }}\"",
        "{{ secret }}\n{{ secret }}\n",
        "{{",
        "}}{{ secret",
    ],
)
def test_a_value_with_template_syntax_stays_literal_through_ansible(tmp_path: Path, text: str) -> None:
    body = _task(HostTask("s", ["h"], "shell", text, env={"V": text}, chdir=text), 0)
    (loaded,) = ansible_reads(tmp_path, dump([body]))
    rendered = ansible_templates(loaded["irx_command"])
    assert rendered["script"] == text
    assert rendered["env"]["V"] == text
    assert rendered["chdir"] == text
    assert "LEAKED" not in repr(rendered)


def test_module_args_stay_literal_through_ansible_at_any_depth(tmp_path: Path) -> None:
    args = {"name": "{{ secret }}", "opts": {"deep": ["{{ secret }}", {"deeper": "{{ secret }}"}]}, "n": 3}
    body = _task(HostTask("m", ["h"], "module", "ansible.builtin.debug", args=args), 0)
    (loaded,) = ansible_reads(tmp_path, dump([body]))
    assert ansible_templates(loaded["ansible.builtin.debug"]) == args


def test_the_templar_check_itself_would_see_an_untagged_template(tmp_path: Path) -> None:
    """The control: the same value written without unsafe() is rendered by Ansible."""
    (loaded,) = ansible_reads(tmp_path, dump([{"v": "{{ secret }}"}]))
    assert ansible_templates(loaded["v"]) == "LEAKED"


# --- exposed_on_command_line -----------------------------------------------------------------------------------


def contains_secret(text: str) -> bool:
    return "hunter2" in text


def test_a_secret_in_a_script_is_found() -> None:
    task = HostTask("s", ["h"], "shell", "mysql -phunter2 -e 'select 1'")
    assert exposed_on_command_line(task, contains_secret) == "its shell script"


def test_a_secret_in_an_argv_word_is_found_by_its_position() -> None:
    task = HostTask("s", ["h"], "command", ["redis-cli", "-a", "hunter2", "PING"])
    assert exposed_on_command_line(task, contains_secret) == "command[2]"
    task = HostTask("s", ["h"], "command", ["curl", "--user=admin:hunter2"])
    assert exposed_on_command_line(task, contains_secret) == "command[1]"


def test_a_non_string_argv_word_is_checked_as_text() -> None:
    task = HostTask("s", ["h"], "command", ["sleep", 5, "x"])
    assert exposed_on_command_line(task, lambda text: text == "5") == "command[1]"


def test_a_secret_in_env_or_module_args_is_allowed() -> None:
    assert exposed_on_command_line(
        HostTask("s", ["h"], "shell", "redis-cli PING", env={"REDISCLI_AUTH": "hunter2"}), contains_secret
    ) is None  # fmt: skip
    assert exposed_on_command_line(
        HostTask("s", ["h"], "command", ["redis-cli", "PING"], env={"REDISCLI_AUTH": "hunter2"}), contains_secret
    ) is None  # fmt: skip
    module = HostTask("m", ["h"], "module", "community.mysql.mysql_user", args={"password": "hunter2"})
    assert exposed_on_command_line(module, contains_secret) is None


def test_no_secret_nothing_found() -> None:
    assert exposed_on_command_line(HostTask("s", ["h"], "shell", "uptime"), contains_secret) is None
    assert exposed_on_command_line(HostTask("s", ["h"], "command", ["uptime"]), contains_secret) is None


# --- host_result -------------------------------------------------------------------------------------------------


def test_an_ok_command_result() -> None:
    result = host_result("web1", {"rc": 0, "stdout": "up 3 days", "stderr": "", "changed": True}, 1.5)
    assert result.host == "web1"
    assert result.status == "ok"
    assert result.rc == 0
    assert result.stdout == "up 3 days"
    assert result.stderr == ""
    assert result.msg == ""
    assert result.changed is True
    assert result.duration == 1.5
    assert result.extra == {}


@pytest.mark.parametrize("res", [None, {}])
def test_no_result_is_a_failure_that_says_so(res: dict[str, Any] | None) -> None:
    result = host_result("web1", res, 0.0)
    assert result.status == "failed"
    assert "no result" in result.msg


def test_unreachable_wins_over_failed() -> None:
    res = {"unreachable": True, "failed": True, "msg": "Failed to connect to the host via ssh: Connection refused"}
    result = host_result("web1", res, 10.0)
    assert result.status == "unreachable"
    assert result.msg == res["msg"]


@pytest.mark.parametrize(
    "res",
    [
        {"failed": True, "timedout": {"frame": "...", "period": 13}, "msg": "The task timed out after 13 seconds."},
        {"failed": True, "timed_out": True, "rc": -15, "stdout": "partial", "stderr": "", "msg": "timed out after 5s"},
    ],
    ids=["ansible task timeout", "irx_command timeout"],
)
def test_a_timeout_is_timed_out_with_its_message(res: dict[str, Any]) -> None:
    result = host_result("web1", res, 13.0)
    assert result.status == "timed_out"
    assert result.msg == res["msg"]


def test_a_failed_command_says_rc_and_the_first_line_of_stderr() -> None:
    res = {"failed": True, "rc": 3, "stdout": "some output", "stderr": "  \n  Unit app.service not found.\nmore\n",
           "msg": "non-zero return code"}  # fmt: skip
    result = host_result("web1", res, 0.2)
    assert result.status == "failed"
    assert result.rc == 3
    assert result.msg == "rc 3: Unit app.service not found."
    assert result.stderr == res["stderr"]


def test_a_failed_command_without_stderr_quotes_stdout_then_the_message() -> None:
    res = {"failed": True, "rc": 1, "stdout": "\nERROR: disk full\nrest", "stderr": " \n", "msg": "non-zero rc"}
    assert host_result("h", res, 0.1).msg == "rc 1: ERROR: disk full"
    res = {"failed": True, "rc": 2, "stdout": "", "stderr": "", "msg": "non-zero return code"}
    assert host_result("h", res, 0.1).msg == "rc 2: non-zero return code"


def test_a_failure_without_an_exit_code_keeps_ansibles_message() -> None:
    res = {"failed": True, "msg": "chdir /srv/nope: no such directory", "rc": None}
    assert host_result("h", res, 0.1).msg == "chdir /srv/nope: no such directory"
    res = {"failed": True, "rc": 0, "msg": "Unsupported parameters for (service) module: nmae"}
    assert host_result("h", res, 0.1).msg == "Unsupported parameters for (service) module: nmae"


def test_module_stderr_is_used_when_stderr_is_absent() -> None:
    res = {"failed": True, "rc": 1, "module_stdout": "", "module_stderr": "sudo: a password is required\n",
           "msg": "MODULE FAILURE"}  # fmt: skip
    result = host_result("h", res, 0.1)
    assert result.stderr == "sudo: a password is required\n"
    assert result.msg == "rc 1: sudo: a password is required"


def test_stderr_wins_over_module_stderr_even_when_empty() -> None:
    res = {"failed": True, "rc": 1, "stderr": "", "module_stderr": "from the module wrapper", "stdout": "out"}
    result = host_result("h", res, 0.1)
    assert result.stderr == ""
    assert result.msg == "rc 1: out"


def test_an_ok_result_has_no_message() -> None:
    assert host_result("h", {"rc": 0, "stdout": "", "stderr": "", "msg": "all good"}, 0.1).msg == ""


def test_output_over_the_cap_is_cut_and_recorded() -> None:
    res = {"rc": 0, "stdout": "o" * (OUTPUT_CAP + 1), "stderr": "e" * (OUTPUT_CAP + 10)}
    result = host_result("h", res, 0.1)
    assert len(result.stdout) == OUTPUT_CAP
    assert len(result.stderr) == OUTPUT_CAP
    assert result.extra["truncated"] == {"stdout": True, "stderr": True, "cap": OUTPUT_CAP}


def test_output_at_the_cap_is_whole() -> None:
    result = host_result("h", {"rc": 0, "stdout": "o" * OUTPUT_CAP, "stderr": ""}, 0.1)
    assert len(result.stdout) == OUTPUT_CAP
    assert "truncated" not in result.extra


def test_a_cut_made_on_the_host_is_recorded() -> None:
    """irx_command stops keeping bytes at its output_cap and says so in truncated."""
    res = {"rc": 0, "stdout": "short", "stderr": "", "truncated": {"stdout": False, "stderr": True}}
    result = host_result("h", res, 0.1)
    assert result.stdout == "short"
    assert result.extra["truncated"] == {"stdout": False, "stderr": True, "cap": OUTPUT_CAP}
    res = {"rc": 0, "stdout": "cut", "stderr": "", "truncated": {"stdout": True}}
    assert host_result("h", res, 0.1).extra["truncated"] == {"stdout": True, "stderr": False, "cap": OUTPUT_CAP}
    res = {"rc": 0, "stdout": "x", "stderr": "", "truncated": {"stdout": False, "stderr": False}}
    assert "truncated" not in host_result("h", res, 0.1).extra
    res = {"rc": 0, "stdout": "x", "stderr": "", "truncated": "yes"}  # not a mapping: nothing to read
    assert "truncated" not in host_result("h", res, 0.1).extra


def test_an_ok_module_step_keeps_the_modules_return_values() -> None:
    res = {"changed": True, "name": "nginx", "state": "started", "status": {"ActiveState": "active"},
           "invocation": {"module_args": {"name": "nginx"}}, "failed": False, "_ansible_no_log": False}  # fmt: skip
    result = host_result("web1", res, 0.3)
    assert result.status == "ok"
    assert result.changed is True
    assert result.extra["module"] == {"name": "nginx", "state": "started", "status": {"ActiveState": "active"}}


def test_module_values_are_not_kept_for_a_command_or_a_failure() -> None:
    assert "module" not in host_result("h", {"rc": 0, "stdout": "x", "stderr": "", "extra": 1}, 0.1).extra
    assert "module" not in host_result("h", {"failed": True, "msg": "no such service", "name": "x"}, 0.1).extra


def test_pipefail_false_is_kept_for_a_script_run_without_it() -> None:
    res = {"rc": 0, "stdout": "", "stderr": "", "shell": "/bin/sh", "pipefail": False}
    assert host_result("h", res, 0.1).extra == {"pipefail": False}
    res = {"rc": 0, "stdout": "", "stderr": "", "shell": "bash", "pipefail": True}
    assert "pipefail" not in host_result("h", res, 0.1).extra
    res = {"rc": 0, "stdout": "", "stderr": ""}  # an argv command: no shell, nothing to say
    assert "pipefail" not in host_result("h", res, 0.1).extra


def test_a_failed_scripts_result_keeps_pipefail_and_truncation_together() -> None:
    res = {"failed": True, "rc": 141, "stdout": "y" * (OUTPUT_CAP + 5), "stderr": "", "shell": "/bin/sh",
           "pipefail": False, "msg": "non-zero return code"}  # fmt: skip
    result = host_result("h", res, 0.1)
    assert result.status == "failed"
    assert result.msg == "rc 141: " + "y" * OUTPUT_CAP
    assert result.extra == {"truncated": {"stdout": True, "stderr": False, "cap": OUTPUT_CAP}, "pipefail": False}


# --- --mitogen: checked before Ansible starts ------------------------------------------------------------------------


def test_mitogen_is_opt_in_and_refused_with_why_when_it_cannot_load(monkeypatch: pytest.MonkeyPatch) -> None:
    from irx.errors import UsageError
    from irx.executors.ansible import MITOGEN, strategy_for

    assert strategy_for(False) == "irx"
    assert strategy_for(True) == MITOGEN  # installed with the test extra (pyproject.toml)
    monkeypatch.setitem(sys.modules, "ansible_mitogen.loaders", None)  # as if it were not installed
    with pytest.raises(UsageError, match=r"--mitogen: Mitogen is not installed .*pip install 'irx\[mitogen\]'"):
        strategy_for(True)

"""Action plugin ``irx_command``: the ``irx_command`` module's step, without AnsiballZ on the host.

A Python module reaches a host as AnsiballZ: a zip of the module and every ``ansible.module_utils`` file it
imports, which the host's Python unpacks and compiles from source on every task. ``irx_command`` needs none
of it but its own two files: ``ansible.module_utils.basic`` alone costs the host about 90 ms of CPU per
task (measured: 130 ms per run of the AnsiballZ of ``irx_command`` or ``command``, against 10 ms for the bare
interpreter). An incident's hosts are the busy ones, and on a small control node that also hosts its
targets (the benches, the drills) that CPU is the run's.

So this plugin checks the task's arguments here, with the module's own ``irx_command_args`` and Ansible's
``ArgumentSpecValidator`` (what ``AnsibleModule`` runs on the host), and hands Ansible a payload in place of
the AnsiballZ: ``irx_leases`` and ``irx_step`` as source, the checked parameters as a JSON literal, and one
call, ``run_step``. Everything else is Ansible's own ``_execute_module``: the interpreter (and its
discovery), ``become``, pipelining (the payload on stdin; without pipelining, a 0600 file in Ansible's
private remote tmp, as AnsiballZ is), parsing the answer, a module that crashed. The module file stays
what Mitogen runs (its planner replaces ``_execute_module`` and keeps the module's imports warm anyway).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
from pathlib import Path
from typing import Any

from ansible.executor import module_common
from ansible.executor.interpreter_discovery import InterpreterDiscoveryRequiredError
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.plugins.action import ActionBase

_UTILS = Path(__file__).resolve().parent.parent / "module_utils"
_PAYLOAD = """\
# irx_command (irx's action plugin): irx_leases and irx_step as source, the step's checked parameters, one call
import json as _json, sys as _sys, types as _types
def _irx_module(name, source, package=False):
    module = _types.ModuleType(name)
    if package:
        module.__path__ = []
    _sys.modules[name] = module
    exec(compile(source, name.rpartition(".")[2] + ".py", "exec"), module.__dict__)
    return module
_irx_module("ansible", "", True)
_irx_module("ansible.module_utils", "", True)
_irx_module("ansible.module_utils.irx_leases", {leases!r})
_step = _irx_module("ansible.module_utils.irx_step", {step!r})
_sys.stdout.write(_json.dumps(_step.run_step(_json.loads({params!r}))))
"""


def _load_args() -> Any:
    """``irx_command_args`` (the argument spec: literals only) as a module of this process."""
    spec = importlib.util.spec_from_file_location("_irx_command_args", _UTILS / "irx_command_args.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_ARGS = _load_args()
_VALIDATOR = ArgumentSpecValidator(
    _ARGS.ARGUMENT_SPEC, mutually_exclusive=_ARGS.MUTUALLY_EXCLUSIVE, required_one_of=_ARGS.REQUIRED_ONE_OF
)
_SOURCES = {name: (_UTILS / f"{name}.py").read_text(encoding="utf-8") for name in ("irx_leases", "irx_step")}


def payload(params: dict[str, Any]) -> bytes:
    """The program the host's Python runs for checked ``params``: every value is inside a JSON literal."""
    literal = json.dumps(params, ensure_ascii=True, sort_keys=True)
    text = _PAYLOAD.format(leases=_SOURCES["irx_leases"], step=_SOURCES["irx_step"], params=literal)
    return text.encode("utf-8")


class ActionModule(ActionBase):  # type: ignore[misc]
    _params: dict[str, Any] | None = None

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        self._supports_async = False  # irx never sends one (its own timeout runs on the host)
        self._supports_check_mode = False  # as the module: a check-mode run must not run the command
        result: dict[str, Any] = super().run(tmp, task_vars)
        checked = _VALIDATOR.validate(dict(self._task.args))
        if checked.error_messages:  # what AnsibleModule would answer, without a round to the host
            result.update(failed=True, msg=f"irx_command: {'; '.join(checked.error_messages)}")
            return result
        self._params = checked.validated_parameters
        result.update(self._execute_module(task_vars=task_vars))
        return result

    def _configure_module(self, module_name: str, module_args: Any, task_vars: Any) -> Any:
        lean = self._lean(module_name, task_vars) if self._params is not None else None
        if lean is not None:
            return lean
        built, path = super()._configure_module(module_name, module_args, task_vars)
        params = self._params
        ours = built.module_style == "new" and dataclasses.is_dataclass(built) and Path(path).name == "irx_command.py"
        if params is not None and ours:
            # the host's first task, whose interpreter Ansible discovered just now: the payload all the same
            built = dataclasses.replace(built, b_module_data=payload(params))
        return built, path

    def _lean(self, module_name: str, task_vars: dict[str, Any]) -> tuple[Any, str] | None:
        """The payload, with the interpreter Ansible would run ``irx_command`` with (``ansible_python_interpreter``
        or its discovered one), and the module's path; without building the AnsiballZ that Ansible would
        throw away (130 ms of CPU for the first task of a session). None when that interpreter is still to be
        discovered (the host's first task: Ansible's own ``_configure_module`` does it, as for any module) or
        this ansible-core lacks what this needs (then the module runs as Ansible builds it)."""
        built_module = getattr(module_common, "_BuiltModule", None)
        get_shebang = getattr(module_common, "_get_shebang", None)
        found = self._shared_loader_obj.module_loader.find_plugin_with_context(
            module_name, ".py", collection_list=self._task.collections
        )
        if built_module is None or get_shebang is None or not found.resolved:
            return None
        if Path(found.plugin_resolved_path).name != "irx_command.py":
            return None
        use_vars = task_vars["ansible_delegated_vars"][self._task.delegate_to] if self._task.delegate_to else task_vars
        local = bool(getattr(self._connection, "_remote_is_local", False))
        try:  # the module's own shebang is #!/usr/bin/python, which is what Ansible starts from
            shebang = get_shebang("/usr/bin/python", use_vars, self._templar, remote_is_local=local)[0]
        except InterpreterDiscoveryRequiredError:
            return None
        assert self._params is not None
        lean = built_module(
            b_module_data=payload(self._params), module_style="new", shebang=shebang, serialization_profile="legacy"
        )
        return lean, found.plugin_resolved_path

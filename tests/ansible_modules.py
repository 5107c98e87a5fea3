"""Running irx_command (and irx_lease) on this machine the two ways Ansible runs them on a host, without an
Ansible run: the module as Ansible runs it when it does not pipeline (``python MODULE ARGS_FILE``, with irx's
module_utils where AnsiballZ would put them), and the lean payload irx's ``irx_command`` action plugin pipes
to the host's Python in its place (the system Python, which has no Ansible)."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from irx.executors.ansible import ACTION_DIR, MODULE_DIR, MODULE_UTILS_DIR

_SHIM = (
    "import runpy, sys, ansible.module_utils as u; u.__path__.append(sys.argv.pop(1)); "
    "sys.argv.pop(0); runpy.run_path(sys.argv[0], run_name='__main__')"
)
# A target's Python as irx meets it: no Ansible installed (the payload must not need it)
HOST_PYTHON = shutil.which("python3", path="/usr/bin:/bin") or sys.executable
TRANSPORTS = ("module", "payload")


def module_command(module: Path, args_file: Path | str) -> list[str]:
    """The argv that runs ``module`` with its arguments in ``args_file``."""
    return [sys.executable, "-c", _SHIM, str(MODULE_UTILS_DIR), str(module), str(args_file)]


def action_plugin() -> ModuleType:
    """irx's ``irx_command`` action plugin, loaded as Ansible's plugin loader would (by path)."""
    spec = importlib.util.spec_from_file_location("irx_command_action", ACTION_DIR / "irx_command.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass
class Transport:
    """irx_command's arguments, run one of the two ways (``TRANSPORTS``) from ``workdir``."""

    how: str
    workdir: Path

    def command(self, args: dict[str, Any]) -> tuple[list[str], bytes | None]:
        """The argv, and what goes to its stdin."""
        if self.how == "module":
            args_file = self.workdir / "args.json"
            args_file.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": args}))
            return module_command(MODULE_DIR / "irx_command.py", args_file), None
        plugin = action_plugin()
        checked = plugin._VALIDATOR.validate(args)
        assert not checked.error_messages, checked.error_messages
        return [HOST_PYTHON], plugin.payload(checked.validated_parameters)

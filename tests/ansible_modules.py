"""Running irx's Ansible modules as Ansible does when it does not pipeline (``python MODULE ARGS_FILE``), with
irx's module_utils where Ansible would put them (AnsiballZ bundles ``ansible.module_utils.irx_leases``)."""

from __future__ import annotations

import sys
from pathlib import Path

from irx.executors.ansible import MODULE_UTILS_DIR

_SHIM = (
    "import runpy, sys, ansible.module_utils as u; u.__path__.append(sys.argv.pop(1)); "
    "sys.argv.pop(0); runpy.run_path(sys.argv[0], run_name='__main__')"
)


def module_command(module: Path, args_file: Path | str) -> list[str]:
    """The argv that runs ``module`` with its arguments in ``args_file``."""
    return [sys.executable, "-c", _SHIM, str(MODULE_UTILS_DIR), str(module), str(args_file)]

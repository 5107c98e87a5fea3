"""``irx_command``'s parameters: checked by ``AnsibleModule`` on the host when the module runs, and by irx's
``irx_command`` action plugin on the control node (which loads this file by path) before it pipes the lean
payload. Nothing but literals here: the control node runs this file as it is."""

from __future__ import annotations

from typing import Any

ARGUMENT_SPEC: dict[str, dict[str, Any]] = {
    "argv": {"type": "list", "elements": "str"},
    "script": {"type": "str"},
    "env": {"type": "dict", "default": {}},
    "chdir": {"type": "str"},
    "timeout": {"type": "float", "default": 0.0},
    "kill_grace": {"type": "float", "default": 5.0},
    "output_cap": {"type": "int", "default": 2 * 1024 * 1024},
    # irx_lease's parameters (module_utils/irx_leases.py): the host's lease is taken first, in this same run
    # of the module, and its answer comes back as ``irx_lease`` beside the command's, whatever the command did.
    "lease": {"type": "dict"},
}
MUTUALLY_EXCLUSIVE = [("argv", "script")]
REQUIRED_ONE_OF = [("argv", "script", "lease")]

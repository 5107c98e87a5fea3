"""Ansible action plugin ``irx_next``: the hand-off point between one long-lived Ansible run and irx.

Each host runs this task on the controller (no connection to the host). It sends irx the registered
results of the previous batch for that host, then blocks until irx answers with the next batch file to
include, or ``done``. One ansible-playbook process thus serves a whole incident run: Ansible's start-up
is paid once, not once per step.
"""

from __future__ import annotations

import json
import socket
from typing import Any

from ansible.plugins.action import ActionBase


class ActionModule(ActionBase):  # type: ignore[misc]  # ansible-core ships no type information
    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result: dict[str, Any] = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        args = self._task.args
        names = args.get("collect") or []
        # run_once: one call per round for the whole play; every host's registered results are in hostvars.
        hostvars = task_vars.get("hostvars") or {}
        payload = {
            "hosts": {
                host: {name: _plain(hostvars[host].get(name)) for name in names} if host in hostvars else {}
                for host in args.get("hosts") or []
            },
        }
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.connect(args["socket"])
            stream = conn.makefile("rwb")
            stream.write(json.dumps(payload, default=str).encode() + b"\n")
            stream.flush()
            line = stream.readline()
        reply = json.loads(line) if line else {"done": True, "file": "", "collect": [], "round": -1}
        result.update(reply)
        result["changed"] = False
        return result


def _plain(value: Any) -> Any:
    """Registered results as JSON-safe plain data (ansible-core tags strings; json handles str subclasses)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, str):
        return str(value)
    return value

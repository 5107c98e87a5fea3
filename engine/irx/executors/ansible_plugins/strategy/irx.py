"""Ansible strategy plugin ``irx``: one long-lived play whose tasks come from irx, one step at a time.

The play has no tasks of its own. The strategy connects to irx's Unix socket (``IRX_SESSION_SOCKET``), says
which hosts it has, then loops: read one batch (the tasks of one irx step, each with the hosts it targets),
queue every task on its hosts through Ansible's own worker pool (``_queue_task``: connections, forks,
become, timeouts, the callbacks ansible-runner turns into events), wait for every result, and answer with
each host's registered result. The next batch is not read before that answer is sent, so steps keep strict
order: nothing of step N+1 starts before every host finished step N, as under the linear strategy.

A step thus costs its own tasks: no controller-side hand-off task, no ``include_tasks``, no recursion.
Failures are data: every task carries ``ignore_errors`` and ``ignore_unreachable``, so a failed or
unreachable host stays in the play and irx decides what happens next. The play ends when irx says
``done`` or closes the socket (irx went away).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
from collections.abc import Iterable
from typing import Any

from ansible.playbook.block import Block
from ansible.plugins.strategy import StrategyBase

DOCUMENTATION = """
    name: irx
    short_description: Runs the tasks irx sends over a Unix socket, one step at a time
    description:
        - Used by irx's Ansible session only (the play has no tasks of its own).
    author: irx
"""

SOCKET_ENV = "IRX_SESSION_SOCKET"


class StrategyModule(StrategyBase):  # type: ignore[misc]  # ansible-core ships no type information
    # On irx's ``done`` every result was answered and irx needs nothing more of Ansible: ansible-playbook
    # exits at once instead of tearing its play down (its stats, its workers' queues, its interpreter: 0.1
    # to 0.3 s at the end of every run). Its local temp is in irx's session directory (ANSIBLE_LOCAL_TEMP),
    # removed with it. Mitogen's variant keeps the teardown: its connection processes are shut down there.
    exit_on_done = True

    def run(self, iterator: Any, play_context: Any) -> Any:
        self._set_hosts_cache(iterator._play)
        hosts = {host.name: host for host in self.get_hosts_left(iterator)}
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.connect(os.environ[SOCKET_ENV])
            stream = conn.makefile("rwb")
            _send(stream, {"ready": sorted(hosts), "pid": os.getpid()})  # irx stops this tree on abort
            while not self._tqm._terminated:
                line = stream.readline()
                if not line:
                    break  # irx went away: end the play
                request = json.loads(line)
                if request.get("done"):
                    if self.exit_on_done:
                        _exit_now()
                    break
                _send(stream, self._batch(iterator, play_context, hosts, request))
        return super().run(iterator, play_context, self._tqm.RUN_OK)

    def _batch(self, iterator: Any, play_context: Any, hosts: dict[str, Any], request: dict[str, Any]) -> Any:
        """Run one step's tasks; every targeted host's registered result, by register name."""
        targets: list[list[str]] = request["targets"]
        registers: list[str] = request["collect"]
        try:
            # The YAML irx wrote: every irx-rendered string is !unsafe, so nothing in it is ever templated.
            data = self._loader.load(request["tasks"], show_content=False)
            block = Block.load(
                {"block": data}, play=iterator._play, variable_manager=self._variable_manager, loader=self._loader
            )
        except Exception as exc:  # irx wrote something Ansible refuses: every targeted host fails, saying why
            failed = {"failed": True, "msg": f"Ansible refused the step: {exc}"}
            return {"hosts": {name: dict.fromkeys(registers, failed) for names in targets for name in names}}
        tasks = list(zip(block.block, targets, strict=True))
        for wave in _waves(tasks):
            for task, names in wave:
                self._queue_on(iterator, play_context, task, [hosts[name] for name in names if name in hosts])
            if self._pending_results > 0:
                self._wait_on_pending_results(iterator)
        facts = self._variable_manager._nonpersistent_fact_cache
        answer: dict[str, dict[str, Any]] = {}
        for (_task, names), register in zip(tasks, registers, strict=True):
            for name in names:
                value = facts[name].pop(register, None) if name in facts else None
                if name not in hosts:
                    value = {"unreachable": True, "msg": f"{name} is not a host of this Ansible session"}
                answer.setdefault(name, {})[register] = _plain(value)
        self._queued_task_cache.clear()  # one step's tasks are not needed again
        return {"hosts": answer}

    def _queue_on(self, iterator: Any, play_context: Any, task: Any, targets: list[Any]) -> None:
        if not targets:
            return
        self._tqm.send_callback("v2_playbook_on_task_start", task, is_conditional=False)
        for host in targets:
            task_vars = self._variable_manager.get_vars(
                play=iterator._play, host=host, task=task, _hosts=self._hosts_cache, _hosts_all=self._hosts_cache_all
            )
            self.add_tqm_variables(task_vars, play=iterator._play)
            self._blocked_hosts[host.name] = True
            self._queue_task(host, task, task_vars, play_context)
            # As the linear strategy does: the results that came in while the hosts were being queued are
            # handled now (their callbacks: irx's live progress), not only once the last host got a worker.
            self._process_pending_results(iterator, max_passes=max(1, int(len(self._tqm._workers) * 0.1)))


def _waves(tasks: list[tuple[Any, list[str]]]) -> Iterable[list[tuple[Any, list[str]]]]:
    """The step's tasks in waves that each hold a host at most once: tasks on different hosts (one step's
    rendering groups) run at the same time; a second task on the same host waits for the first."""
    wave: list[tuple[Any, list[str]]] = []
    busy: set[str] = set()
    for task, names in tasks:
        if busy.intersection(names):
            yield wave
            wave, busy = [], set()
        wave.append((task, names))
        busy.update(names)
    if wave:
        yield wave


def _send(stream: Any, message: dict[str, Any]) -> None:
    stream.write(json.dumps(message, default=str).encode() + b"\n")
    stream.flush()


def _plain(value: Any) -> Any:
    """Registered results as JSON-safe plain data (ansible-core tags strings; json handles str subclasses)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, str):
        return str(value)
    return value


def _exit_now() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(0)

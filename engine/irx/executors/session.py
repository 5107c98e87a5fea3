"""The Ansible session of one run: started early in the background, closed once.

Ansible's start-up (about 2 s) is paid while irx renders the plan, takes the lock and opens the journal; the
first batch waits for it. Host results are reported as they come through ``on_host_event``, given here.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

from irx.executors.ansible import AnsibleSession
from irx.executors.base import HostEvent, HostTask
from irx.inventory import Vault
from irx.results import HostResult


class AnsibleSessions:
    """The ``HostRunner`` of a run: one Ansible session at a time, one batch at a time."""

    def __init__(
        self,
        inventory: str,
        hosts: Sequence[str],
        *,
        forks: int,
        exposes: Callable[[str], bool],
        vault: Vault,
        on_host_event: HostEvent | None = None,
        strategy: str = "irx",
    ) -> None:
        self.strategy = strategy  # irx, or irx_mitogen (irx.executors.ansible.strategy_for)
        self.inventory, self.hosts, self.forks, self.vault = inventory, list(hosts), forks, vault
        self.exposes = exposes  # the run's secrets are learnt after the session starts: asked at each step
        self.on_host_event = on_host_event
        self._serial = threading.Lock()  # one batch at a time: the lease keepalive shares the session
        self._session: AnsibleSession | None = None
        self._ready = threading.Event()
        self._started = False
        self._error: BaseException | None = None

    def start_in_background(self) -> None:
        self._started = True
        threading.Thread(target=self._start, name="irx-ansible-start", daemon=True).start()

    def _start(self) -> None:
        try:
            session = AnsibleSession(
                self.inventory,
                self.hosts,
                forks=self.forks,
                on_host_event=self.on_host_event,
                exposes=self.exposes,
                vault=self.vault,
                strategy=self.strategy,
            )
            session.start()
            self._session = session
        except BaseException as exc:  # handed to the thread that needs the session
            self._error = exc
        finally:
            self._ready.set()

    def run(self, tasks: Sequence[HostTask]) -> dict[str, HostResult]:
        """Run one batch as it is (the lease check, when there is one, wraps this runner: irx.lease)."""
        with self._serial:
            if not self._started:
                self._started = True
                self._start()
            self._ready.wait()
            if self._error is not None:
                raise self._error
            assert self._session is not None
            return self._session.run(tasks)

    def abort(self) -> None:
        if self._session is not None:
            self._session.abort()

    def close(self) -> None:
        """Close the session; idempotent."""
        if self._started:
            self._ready.wait(timeout=60)  # a start in progress finishes (seconds at most), then is closed
        session, self._session = self._session, None
        if session is not None:
            session.close()

"""The start/stop contract shared by every test service, and the safety net that stops strays at exit."""

from __future__ import annotations

import atexit
import contextlib
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Self

from irx_testenv import _names, _proc

_LIVE: set[_Service] = set()


class _Service:
    """Base of the test services: ``start()``/``stop()``, usable as a context manager.

    ``start()`` either leaves the service fully up or, having failed, cleans up whatever it had built
    before raising. ``stop()`` is idempotent and safe after a failed or partial start.
    """

    kind = "service"

    def __init__(self, base_dir: Path | str | None, uid: str | None) -> None:
        self.uid = _names.check_uid(uid) if uid is not None else _names.new_uid()
        # No base_dir: a fresh private temporary directory, left in place for post-mortem reading.
        self.base_dir = Path(base_dir or tempfile.mkdtemp(prefix=f"{_names.marker(self.uid)}-"))
        self._workdir: Path | None = None

    @property
    def workdir(self) -> Path:
        """This service's private directory (``base_dir/irxt-<uid>-<kind>``), created on first use."""
        if self._workdir is None:
            self._workdir = _names.workdir(self.base_dir, self.uid, self.kind)
        return self._workdir

    def start(self) -> Self:
        """Bring the service up and wait until it answers; return ``self``."""
        if self in _LIVE:
            raise _proc.TestEnvError(f"{self.kind} {self.uid} is already started")
        _LIVE.add(self)
        try:
            self._start()
        except BaseException:
            with contextlib.suppress(Exception):
                self.stop()
            raise
        return self

    def stop(self) -> None:
        """Take the service down and wait until its processes and ports are gone."""
        try:
            self._stop()
        finally:
            _LIVE.discard(self)

    def _start(self) -> None:
        raise NotImplementedError

    def _stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


@atexit.register
def _stop_all() -> None:
    # A test run that forgot a stop() (or died in a fixture) must not leave servers behind.
    for service in list(_LIVE):
        with contextlib.suppress(Exception):
            service.stop()


class _ProcessService(_Service):
    """A service that is one foreground server process, our child (so it is reaped, never a zombie)."""

    _proc: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        """True while the server process is alive."""
        return self._proc is not None and self._proc.poll() is None

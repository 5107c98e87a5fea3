"""What Ansible would print, captured: its warnings collected, its failures turned into one-line reasons.

Ansible prints its warnings through a process-wide ``Display`` singleton; irx reports them itself (or
refuses, see :mod:`irx.inventory`), so they are collected here instead. ansible is imported inside the
functions, never at module level: ``irx --help`` must not pay for it.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Captured:
    failures: list[tuple[str, BaseException]] = field(default_factory=list)  # (plugin, exception)
    warnings: list[str] = field(default_factory=list)


_PLUGIN_IN_MSG = re.compile(r"with '?([\w.]+)'? plugin")


@contextlib.contextmanager
def capture_display() -> Iterator[Captured]:
    """Collect Ansible's warnings instead of letting it print them, for the duration of the block.

    The Display singleton's ``warning``/``error_as_warning``/``deprecated`` are shadowed on the instance
    and restored afterwards; a failed source's reasons arrive here as ``error_as_warning`` calls.
    """
    from ansible.utils.display import Display

    display = Display()
    captured = Captured()

    def warning(msg: str, *args: Any, **kwargs: Any) -> None:
        captured.warnings.append(one_line(str(msg)))

    def error_as_warning(msg: str | None, exception: BaseException, *args: Any, **kwargs: Any) -> None:
        match = _PLUGIN_IN_MSG.search(msg or "")
        captured.failures.append((match.group(1) if match else "", exception))

    def deprecated(*args: Any, **kwargs: Any) -> None:
        return None

    names = ("warning", "error_as_warning", "deprecated")
    saved = {name: display.__dict__[name] for name in names if name in display.__dict__}
    display.warning = warning
    display.error_as_warning = error_as_warning
    display.deprecated = deprecated
    try:
        yield captured
    finally:
        for name in names:
            if name in saved:
                setattr(display, name, saved[name])
            else:
                display.__dict__.pop(name, None)


_TAGGED_TYPE = re.compile(r"<class '(?:[\w.]*\._AnsibleTagged)?([\w.]+)'>")


def one_line(text: str) -> str:
    """``text`` on one line, with ansible-core's internal type names made readable."""
    return _TAGGED_TYPE.sub(lambda m: m.group(1).rsplit(".", 1)[-1].lower(), " ".join(text.split()))


def ansible_reason(exc: BaseException) -> str:
    """An Ansible exception's reason on one line, with the line of the file it points at when it has one."""
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    first = str(message).strip().splitlines()[0] if str(message).strip() else type(exc).__name__
    reason = one_line(first).removeprefix("Failed to parse inventory: ")
    line = getattr(getattr(exc, "obj", None), "line_num", None)
    return f"line {line}: {reason}" if line else reason

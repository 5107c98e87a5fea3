"""Numbers and lists as people write them: one place for every duration and host list irx shows."""

from __future__ import annotations

import re
from collections.abc import Sequence


def duration(seconds: float | None, missing: str = "—") -> str:
    """``4.2s``, ``1m 05s``, ``15m``, ``2h 03m``, ``4h``, ``1d 02h``: the two largest units, a zero second
    unit left out; under a minute, tenths of a second. ``missing`` for None."""
    if seconds is None:
        return missing
    if round(seconds, 1) < 60:  # 59.96 reads as a minute, not as 60.0s
        return f"{max(seconds, 0.0):.1f}s"
    whole = round(seconds)
    for big, small, size, unit in (("d", "h", 86400, 3600), ("h", "m", 3600, 60), ("m", "s", 60, 1)):
        if whole >= size:
            count, rest = divmod(whole, size)
            part = rest // unit
            return f"{count}{big}" if part == 0 else f"{count}{big} {part:02d}{small}"
    return f"{whole}s"  # unreachable: whole >= 60


def hosts(names: Sequence[str], shown: int = 4, none: str = "the control node") -> str:
    """``web1, web2``; past ``shown`` names, ``web1, web2, web3 and 7 more``; ``none`` for no host."""
    if not names:
        return none
    if len(names) <= shown:
        return ", ".join(names)
    return f"{', '.join(names[: shown - 1])} and {len(names) - shown + 1} more"


_DURATION = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)\Z")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(value: str | float | int) -> float:
    """Seconds in a schema-valid duration: a number, or ``500ms``, ``30s``, ``5m``, ``1h``."""
    if isinstance(value, int | float):
        return float(value)
    match = _DURATION.match(value)
    if match is None:
        raise ValueError(f"not a duration: {value!r}")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def short_duration(seconds: float) -> str:
    """A duration as a playbook writes it: ``500ms``, ``30s``, ``1.5s``, ``5m``, ``1h`` (plans show controls so)."""
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{int(seconds // 3600)}h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{int(seconds // 60)}m"
    return f"{seconds:g}s"


def shorten(text: str, limit: int) -> str:
    """``text`` if it fits in ``limit`` characters, else cut at the last word boundary before it, with ``…``.

    A label is never cut mid-word; only a single word longer than half the limit is cut inside (there is
    no boundary to cut at)."""
    if len(text) <= limit:
        return text
    room = max(limit - 1, 1)
    cut = text[:room]
    boundary = max(cut.rfind(" "), cut.rfind("\n"))
    if boundary >= room // 2:
        cut = cut[:boundary]
    return cut.rstrip(" \t\n,;:.-—/") + "…"

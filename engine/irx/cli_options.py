"""Option values the command line checks itself (durations, URLs): small parsers shared by ``irx.cli``."""

from __future__ import annotations

import click


def duration_option(name: str, value: str | None) -> float | None:
    """``90s``, ``30m``, ``2h`` as seconds; None stays None; anything else is a usage error naming ``name``."""
    from irx.humanize import parse_duration

    if value is None:
        return None
    try:
        seconds = parse_duration(value)
    except ValueError:
        seconds = -1.0
    if seconds <= 0:
        raise click.BadParameter(f"{value!r} is not a duration such as 90s, 30m or 2h", param_hint=name)
    return seconds


def url_option(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """A click callback: an ``http(s)://HOST[:PORT][/PATH]`` base URL without query, fragment or password,
    its trailing ``/`` dropped (the run's page is BASE/runs/RUN_ID)."""
    from urllib.parse import urlsplit

    if value is None:
        return None
    hint = "/".join(param.opts) if param.opts else None
    try:
        parts = urlsplit(value)
        port_ok = parts.port is None or parts.port > 0
    except ValueError:
        parts, port_ok = None, False
    if (
        parts is None
        or not port_ok
        or parts.scheme not in {"http", "https"}
        or not parts.hostname
        or parts.query
        or parts.fragment
        or parts.password is not None
        or any(c.isspace() or ord(c) < 32 for c in value)
    ):
        raise click.BadParameter(
            f"{value!r} is not a base URL such as https://irx.example.com (http or https, no query)", param_hint=hint
        )
    return value.rstrip("/")

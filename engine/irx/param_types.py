"""A param's type: values converted to it, checked against the param's constraints, and compared.

Where values come from and which one wins is :mod:`irx.params`; here is only what a value must be.
Errors are ValueErrors that never quote a secret (:func:`quotable`), and do not name the param: the caller
adds which param and where the value came from.
"""

from __future__ import annotations

import ipaddress
import json
import math
import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from irx.model import Param

_INTEGER = re.compile(r"^[+-]?[0-9]+\Z")
_NUMBER = re.compile(r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?\Z")
_TRUE = frozenset({"true", "yes", "on", "1", "y"})
_FALSE = frozenset({"false", "no", "off", "0", "n"})
_HOSTNAME_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)\Z")
_URI_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*\Z")


def quotable(param: Param, value: Any) -> str:
    """A value as an error may quote it: never a secret (nor a URL's password: a DSN refused for holding
    one), never long."""
    if param.secret:
        return "the value"
    from irx.redact import Redactor, credentials_in

    text = Redactor(credentials_in(value) if isinstance(value, str) else ()).redact_text(repr(value))
    return text if len(text) <= 80 else text[:77] + "..."


def convert(param: Param, value: Any, *, text: bool) -> Any:
    """``value`` as the param's type; ``text`` values (command line, environment) are parsed.

    Raises ValueError with a message that does not name the param (the caller adds where it came from).
    """
    kind = param.type
    if text or (isinstance(value, str) and kind != "string"):
        return _from_text(param, str(value))
    if kind == "string":
        if isinstance(value, str):
            return str(value)
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        raise ValueError(f"{quotable(param, value)} is not a string")
    if kind == "integer":
        if isinstance(value, int) and not isinstance(value, bool):
            return int(value)
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ValueError(f"{quotable(param, value)} is not an integer")
    if kind == "number":
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            return int(value) if isinstance(value, int) else float(value)
        raise ValueError(f"{quotable(param, value)} is not a number")
    if kind == "boolean":
        if isinstance(value, bool):
            return bool(value)
        raise ValueError(f"{quotable(param, value)} is not a boolean (true or false)")
    if kind == "list":
        if isinstance(value, list | tuple):
            return [plain_data(item) for item in value]
        raise ValueError(f"{quotable(param, value)} is not a list")
    raise ValueError(f"unknown type {kind}")  # pragma: no cover - the schema allows only the above


def _from_text(param: Param, text: str) -> Any:
    kind = param.type
    stripped = text.strip()
    if kind == "string":
        return text
    if kind == "integer":
        if _INTEGER.match(stripped):
            return int(stripped)
        raise ValueError(f"{quotable(param, text)} is not an integer")
    if kind == "number":
        if _NUMBER.match(stripped):
            return int(stripped) if _INTEGER.match(stripped) else float(stripped)
        raise ValueError(f"{quotable(param, text)} is not a number")
    if kind == "boolean":
        lowered = stripped.lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise ValueError(f"{quotable(param, text)} is not a boolean (true/false, yes/no, on/off, 1/0)")
    if kind == "list":
        if stripped.startswith("["):
            try:
                data = json.loads(stripped)
            except json.JSONDecodeError as exc:
                raise ValueError(f"is not a JSON list: {exc.msg} at column {exc.colno}") from None
            if not isinstance(data, list):
                raise ValueError("is not a JSON list")
            return [plain_data(item) for item in data]
        return [item.strip() for item in text.split(",") if item.strip()]
    raise ValueError(f"unknown type {kind}")  # pragma: no cover


# A value reaches a host as one argv word or environment value, which Linux caps at 128 KiB each (and all of
# them together at about 2 MiB): half of one, so that a value used twice in a step still fits.
MAX_VALUE_BYTES = 64 * 1024
MIN_SECRET_CHARS = 4  # empty is fine (no secret); "x" would turn every x in the journal into ******


def check(param: Param, value: Any) -> None:
    """Length and NUL, choices, minimum/maximum, pattern and format; ValueError says what is wrong (never a
    secret)."""
    items = value if isinstance(value, list) else [value]
    for item in items:
        if isinstance(item, str):
            if "\0" in item:
                raise ValueError(
                    f"{quotable(param, item)} holds a NUL character, which no command line or environment can carry"
                )
            if param.secret and 0 < len(item.strip()) < MIN_SECRET_CHARS:
                raise ValueError(
                    f"the value is a secret of fewer than {MIN_SECRET_CHARS} characters: irx masks every occurrence "
                    "of a secret in what it writes, and one that short would mask ordinary words too"
                )
            try:
                size = len(item.encode("utf-8"))
            except UnicodeEncodeError:
                raise ValueError(
                    f"{quotable(param, item)} is not valid Unicode text (a byte that is not UTF-8, or half of a "
                    "\\uD83D-style escape pair)"
                ) from None
            if size > MAX_VALUE_BYTES:
                raise ValueError(f"is {size} bytes long; a param value may be at most {MAX_VALUE_BYTES} bytes (64 KiB)")
    if param.choices is not None:
        for item in items:
            if item not in param.choices:
                allowed = ", ".join(json.dumps(choice) for choice in param.choices)
                raise ValueError(f"{quotable(param, item)} is not one of the choices: {allowed}")
    if isinstance(value, int | float) and not isinstance(value, bool):
        if param.minimum is not None and value < param.minimum:
            raise ValueError(f"{quotable(param, value)} is below the minimum {_number(param.minimum)}")
        if param.maximum is not None and value > param.maximum:
            raise ValueError(f"{quotable(param, value)} is above the maximum {_number(param.maximum)}")
    if param.pattern is not None:
        try:
            pattern = re.compile(param.pattern)
        except re.error as exc:
            raise ValueError(f"its pattern {param.pattern!r} is not a valid regular expression: {exc}") from None
        for item in items:
            if isinstance(item, str) and pattern.fullmatch(item) is None:
                raise ValueError(f"{quotable(param, item)} does not match the pattern {param.pattern}")
    if param.format is not None:
        for item in items:
            if isinstance(item, str) and not _FORMATS[param.format](item):
                raise ValueError(f"{quotable(param, item)} is not a valid {param.format}")


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _is_uri(text: str) -> bool:
    if any(ch.isspace() for ch in text):
        return False
    try:
        parts = urlsplit(text)
    except ValueError:
        return False
    return bool(parts.scheme and _URI_SCHEME.match(parts.scheme) and (parts.netloc or parts.path))


def _is_hostname(text: str) -> bool:
    name = text[:-1] if text.endswith(".") else text
    return 0 < len(name) <= 253 and all(_HOSTNAME_LABEL.match(label) for label in name.split("."))


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


_FORMATS: Mapping[str, Callable[[str], bool]] = {"uri": _is_uri, "hostname": _is_hostname, "ip": _is_ip}


def plain_data(value: Any) -> Any:
    """Plain Python data (Ansible's tagged str/int/list/dict subclasses become the base types)."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, Mapping):
        return {str(key): plain_data(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [plain_data(item) for item in value]
    return str(value)


def freeze(value: Any) -> Any:
    """A hashable stand-in for a value, distinguishing types (1, 1.0 and True differ)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float) or value is None:
        return (type(value).__name__, value)
    if isinstance(value, Mapping):
        return ("map", tuple(sorted((str(key), freeze(item)) for key, item in value.items())))
    if isinstance(value, list | tuple):
        return ("seq", tuple(freeze(item) for item in value))
    return ("other", repr(value))

"""Parameter values: where they come from, their types and checks, and secret redaction.

Precedence, highest first:

1. the command line: ``-e key=value`` (text, converted to the param's type), ``-e @file.yml|json`` and
   ``-e '{"key": ...}'`` (typed values); later ``-e`` wins over earlier;
2. the inventory: a host variable with the param's name (``group_vars/``, ``host_vars/``, INI vars...);
3. the environment variable named by the param's ``env:`` (an empty variable counts as unset);
4. the param's ``default``.

Inventory values are per host. A host step on ``db01`` sees ``db01``'s own inventory value, and a host
that does not set the variable sees the run-level value. The *run-level* value, which steps on the control
node (http, assert, approve, notify) also see, is the inventory value when every targeted host that sets
the variable agrees on it. When they disagree, the run has no inventory value: hosts that do not set it
fall back to the environment or default, and a control-node step that uses the param is an error naming
the hosts (choose with ``-e``) -- a verify step must not quietly probe a default URL.

A ``required`` param is satisfied when it has a run-level value or at least one targeted host supplies
it; a host step that uses a param with no value on its host fails to render, naming the param.

Secret params are shown as ``******`` everywhere irx writes: :meth:`ParamSet.secret_values` feeds
:class:`irx.redact.Redactor`, which masks them in any text or structure. Errors never quote a secret.
"""

from __future__ import annotations

import ipaddress
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from irx.errors import ParamError, UsageError
from irx.model import Param, Playbook
from irx.redact import MASK

REDACTED = MASK
# Connection secrets Ansible reads from inventory variables; redacted like secret params.
ANSIBLE_SECRET_VARS: frozenset[str] = frozenset(
    {
        "ansible_password",
        "ansible_ssh_pass",
        "ansible_ssh_password",
        "ansible_become_password",
        "ansible_become_pass",
        "ansible_sudo_pass",
        "ansible_sudo_password",
        "ansible_su_pass",
        "ansible_su_password",
        "ansible_httpapi_password",
        "ansible_winrm_password",
    }
)
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_INTEGER = re.compile(r"^[+-]?[0-9]+$")
_NUMBER = re.compile(r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$")
_TRUE = frozenset({"true", "yes", "on", "1", "y"})
_FALSE = frozenset({"false", "no", "off", "0", "n"})
_HOSTNAME_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
_URI_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*$")


# --- the command line -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Supplied:
    """A value from the command line."""

    value: Any
    source: str  # "-e" or "-e @path"
    text: bool  # a ``key=value`` string, to be converted to the param's type
    strict: bool  # an unknown key is an error (``key=value``) or ignored (a shared @file)


def parse_extra_vars(items: Sequence[str]) -> dict[str, Supplied]:
    """The ``-e`` options, in order (later wins): ``key=value``, ``@file`` (YAML or JSON), inline JSON."""
    values: dict[str, Supplied] = {}
    for index, item in enumerate(items, start=1):
        if item.startswith("@"):
            for key, value in _read_vars_file(item[1:]).items():
                values[key] = Supplied(value, f"-e @{item[1:]}", text=False, strict=False)
        elif item.lstrip().startswith("{"):
            for key, value in _inline_json(item, index).items():
                values[key] = Supplied(value, "-e", text=False, strict=True)
        elif "=" in item:
            key, _, value = item.partition("=")
            key = key.strip()
            if not _IDENTIFIER.match(key):
                raise UsageError(f"-e: {key!r} is not a param name (expected KEY=VALUE)")
            values[key] = Supplied(value, "-e", text=True, strict=True)
        else:
            # The item may be a mistyped secret: quote it only when it looks like a param name.
            shown = f" {item}" if _IDENTIFIER.match(item) else f" (option {index})"
            raise UsageError(f"-e{shown}: expected KEY=VALUE, @FILE or a JSON object")
    return values


def _read_vars_file(name: str) -> dict[str, Any]:
    import yaml

    path = Path(name).expanduser()
    if not name:
        raise UsageError("-e @: expected a file name after @")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"-e @{name}: no such file") from None
    except IsADirectoryError:
        raise UsageError(f"-e @{name}: is a directory, not a YAML or JSON file") from None
    except PermissionError:
        raise UsageError(f"-e @{name}: permission denied") from None
    except UnicodeDecodeError:
        raise UsageError(f"-e @{name}: not UTF-8 text") from None
    except OSError as exc:
        raise UsageError(f"-e @{name}: cannot read: {exc.strerror}") from None
    if path.suffix.lower() == ".json":  # JSON's own parser: YAML splits a \ud83d\udd25 escape pair in two halves
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise UsageError(f"-e @{name}: not valid JSON: line {exc.lineno}: {exc.msg}") from None
        if not isinstance(data, dict):
            raise UsageError(f"-e @{name}: must hold a mapping of param names to values")
        return data
    try:
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        # problem and line only: the context snippet could show a secret
        line = exc.problem_mark.line + 1 if exc.problem_mark else "?"
        raise UsageError(f"-e @{name}: not valid YAML or JSON: line {line}: {exc.problem}") from None
    except yaml.YAMLError:
        raise UsageError(f"-e @{name}: not valid YAML or JSON") from None
    if data is None:
        return {}
    if not isinstance(data, dict) or not all(isinstance(key, str) for key in data):
        raise UsageError(f"-e @{name}: must hold a mapping of param names to values")
    return data


def _inline_json(item: str, index: int) -> dict[str, Any]:
    try:
        data = json.loads(item)
    except json.JSONDecodeError as exc:
        raise UsageError(f"-e (option {index}): not a valid JSON object: {exc.msg} at column {exc.colno}") from None
    if not isinstance(data, dict):
        raise UsageError(f"-e (option {index}): a JSON value must be an object of param names to values")
    return data


# --- types and checks -----------------------------------------------------------------------------------


def _show(param: Param, value: Any) -> str:
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
        raise ValueError(f"{_show(param, value)} is not a string")
    if kind == "integer":
        if isinstance(value, int) and not isinstance(value, bool):
            return int(value)
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ValueError(f"{_show(param, value)} is not an integer")
    if kind == "number":
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            return int(value) if isinstance(value, int) else float(value)
        raise ValueError(f"{_show(param, value)} is not a number")
    if kind == "boolean":
        if isinstance(value, bool):
            return bool(value)
        raise ValueError(f"{_show(param, value)} is not a boolean (true or false)")
    if kind == "list":
        if isinstance(value, list | tuple):
            return [plain_data(item) for item in value]
        raise ValueError(f"{_show(param, value)} is not a list")
    raise ValueError(f"unknown type {kind}")  # pragma: no cover - the schema allows only the above


def _from_text(param: Param, text: str) -> Any:
    kind = param.type
    stripped = text.strip()
    if kind == "string":
        return text
    if kind == "integer":
        if _INTEGER.match(stripped):
            return int(stripped)
        raise ValueError(f"{_show(param, text)} is not an integer")
    if kind == "number":
        if _NUMBER.match(stripped):
            return int(stripped) if _INTEGER.match(stripped) else float(stripped)
        raise ValueError(f"{_show(param, text)} is not a number")
    if kind == "boolean":
        lowered = stripped.lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise ValueError(f"{_show(param, text)} is not a boolean (true/false, yes/no, on/off, 1/0)")
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
                    f"{_show(param, item)} holds a NUL character, which no command line or environment can carry"
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
                    f"{_show(param, item)} is not valid Unicode text (a byte that is not UTF-8, or half of a "
                    "\\uD83D-style escape pair)"
                ) from None
            if size > MAX_VALUE_BYTES:
                raise ValueError(f"is {size} bytes long; a param value may be at most {MAX_VALUE_BYTES} bytes (64 KiB)")
    if param.choices is not None:
        for item in items:
            if item not in param.choices:
                allowed = ", ".join(json.dumps(choice) for choice in param.choices)
                raise ValueError(f"{_show(param, item)} is not one of the choices: {allowed}")
    if isinstance(value, int | float) and not isinstance(value, bool):
        if param.minimum is not None and value < param.minimum:
            raise ValueError(f"{_show(param, value)} is below the minimum {_number(param.minimum)}")
        if param.maximum is not None and value > param.maximum:
            raise ValueError(f"{_show(param, value)} is above the maximum {_number(param.maximum)}")
    if param.pattern is not None:
        try:
            pattern = re.compile(param.pattern)
        except re.error as exc:
            raise ValueError(f"its pattern {param.pattern!r} is not a valid regular expression: {exc}") from None
        for item in items:
            if isinstance(item, str) and pattern.fullmatch(item) is None:
                raise ValueError(f"{_show(param, item)} does not match the pattern {param.pattern}")
    if param.format is not None:
        for item in items:
            if isinstance(item, str) and not _FORMATS[param.format](item):
                raise ValueError(f"{_show(param, item)} is not a valid {param.format}")


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


# --- resolution -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Value:
    """A param's value and where it came from."""

    value: Any
    source: str  # "-e", "-e @file", "inventory", "env NAME", "default"


@dataclass
class ParamSet:
    """Every param's run-level value and its per-host values where the inventory supplies them."""

    params: Mapping[str, Param]
    run: dict[str, Value] = field(default_factory=dict)
    per_host: dict[str, dict[str, Value]] = field(default_factory=dict)  # param -> host -> value
    fallback: dict[str, Value] = field(default_factory=dict)  # env or default, below the inventory
    hints: dict[str, str] = field(default_factory=dict)  # param -> why the run has no value

    def host_value(self, name: str, host: str) -> Value | None:
        """The value a host step on ``host`` sees (None: the param has no value there).

        The host's own inventory value, else the run-level value, else (when hosts disagree and the run
        has none) the environment or default.
        """
        by_host = self.per_host.get(name)
        if by_host is not None and host in by_host:
            return by_host[host]
        found = self.run.get(name)
        return found if found is not None else self.fallback.get(name)

    def varies(self, name: str) -> bool:
        """Whether hosts may see different values of this param."""
        return name in self.per_host

    def for_host(self, host: str) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name in self.params:
            found = self.host_value(name, host)
            if found is not None:
                values[name] = found.value
        return values

    def for_run(self) -> dict[str, Any]:
        return {name: found.value for name, found in self.run.items()}

    def host_hints(self) -> dict[str, str]:
        return {
            name: f"params.{name} has no value on this host ({_how_to_supply(param)})"
            for name, param in self.params.items()
        }

    def secret_values(self) -> list[Any]:
        """Every value of every secret param (list items and mapping values one by one)."""
        found: list[Any] = []
        for name, param in self.params.items():
            if not param.secret:
                continue
            values = [self.run.get(name), self.fallback.get(name), *self.per_host.get(name, {}).values()]
            for item in values:
                if item is not None:
                    found.extend(_leaves(item.value))
        return found


def _leaves(value: Any) -> list[Any]:
    if isinstance(value, Mapping):
        return [leaf for item in value.values() for leaf in _leaves(item)]
    if isinstance(value, list | tuple):
        return [leaf for item in value for leaf in _leaves(item)]
    return [] if value is None else [value]


def _how_to_supply(param: Param) -> str:
    ways = [f"-e {param.name}=...", f"inventory variable {param.name}"]
    if param.env:
        ways.append(f"environment variable {param.env}")
    return "set it with " + ", ".join(ways[:-1]) + " or " + ways[-1]


InventoryLookup = Callable[[str, str], tuple[bool, Any]]  # (host, var) -> (defined, value)


def resolve(
    playbook: Playbook,
    supplied: Mapping[str, Supplied],
    hosts: Sequence[str],
    lookup: InventoryLookup,
    environ: Mapping[str, str],
) -> ParamSet:
    """Every param's values for the targeted ``hosts``, converted and checked; errors name the param."""
    params = playbook.params
    for key, item in supplied.items():
        if item.strict and key not in params:
            known = ", ".join(sorted(params)) or "none"
            raise UsageError(f"-e {key}: {playbook.name} has no param {key!r} (its params: {known})")
    result = ParamSet(params)
    for name, param in params.items():
        _resolve_one(result, param, supplied.get(name), hosts, lookup, environ)
    return result


def _resolve_one(
    result: ParamSet,
    param: Param,
    cli: Supplied | None,
    hosts: Sequence[str],
    lookup: InventoryLookup,
    environ: Mapping[str, str],
) -> None:
    name = param.name
    if cli is not None:
        result.run[name] = Value(_checked(param, cli.value, text=cli.text, where=f"from {cli.source}"), cli.source)
        return
    fallback: Value | None = None
    env_text = environ.get(param.env) if param.env else None
    if env_text:
        fallback = Value(_checked(param, env_text, text=True, where=f"from env {param.env}"), f"env {param.env}")
    elif param.has_default:
        fallback = Value(_checked(param, param.default, text=False, where="default"), "default")
    if fallback is not None:
        result.fallback[name] = fallback

    by_host: dict[str, Value] = {}
    converted: dict[Any, Value] = {}  # hosts usually share a group's value: convert and check it once
    for host in hosts:
        defined, raw = lookup(host, name)
        if not defined:
            continue
        key = freeze(raw)
        found = converted.get(key)
        if found is None:
            found = Value(_checked(param, raw, text=False, where=f"from inventory, host {host}"), "inventory")
            converted[key] = found
        by_host[host] = found

    distinct = {freeze(item.value): item for item in by_host.values()}
    if len(distinct) == 1:
        result.run[name] = next(iter(distinct.values()))
    elif len(distinct) > 1:
        result.hints[name] = (
            f"params.{name} differs between hosts ({_disagreement(param, by_host)}) and this step runs "
            f"on the control node; pass -e {name}=... to choose"
        )
    elif fallback is not None:
        result.run[name] = fallback
    run_value = result.run.get(name)
    own = {
        host: item
        for host, item in by_host.items()
        if run_value is None or freeze(item.value) != freeze(run_value.value)
    }
    if own:
        result.per_host[name] = own
    if name not in result.run and name not in result.hints:
        result.hints[name] = f"params.{name} has no value ({_how_to_supply(param)})"
    if param.required and name not in result.run and not by_host:
        raise ParamError(f"param {name} is required and has no value: {_how_to_supply(param)}")


def _disagreement(param: Param, by_host: Mapping[str, Value]) -> str:
    firsts: dict[Any, str] = {}
    for host, item in by_host.items():
        firsts.setdefault(freeze(item.value), host)
    shown = [f"{host}: {_show(param, by_host[host].value)}" for host in list(firsts.values())[:3]]
    more = f", ... {len(firsts) - 3} more values" if len(firsts) > 3 else ""
    return "; ".join(shown) + more


def _checked(param: Param, raw: Any, *, text: bool, where: str) -> Any:
    try:
        value = convert(param, raw, text=text)
        check(param, value)
    except ValueError as exc:
        raise ParamError(f"param {param.name} ({where}): {exc}") from None
    return value

"""Parameter values: where they come from, which one wins, and which are secrets (their types and checks
are :mod:`irx.param_types`).

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

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from irx.errors import ParamError, UsageError
from irx.model import Param, Playbook
from irx.param_types import MAX_VALUE_BYTES as MAX_VALUE_BYTES
from irx.param_types import check as check
from irx.param_types import convert as convert
from irx.param_types import freeze as freeze
from irx.param_types import plain_data as plain_data
from irx.param_types import quotable
from irx.redact import MASK

# The types and checks live in irx.param_types and are re-exported (``as``): plan and the tests import them
# from here.

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
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")


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
    shown = [f"{host}: {quotable(param, by_host[host].value)}" for host in list(firsts.values())[:3]]
    more = f", ... {len(firsts) - 3} more values" if len(firsts) > 3 else ""
    return "; ".join(shown) + more


def _checked(param: Param, raw: Any, *, text: bool, where: str) -> Any:
    try:
        value = convert(param, raw, text=text)
        check(param, value)
    except ValueError as exc:
        raise ParamError(f"param {param.name} ({where}): {exc}") from None
    return value

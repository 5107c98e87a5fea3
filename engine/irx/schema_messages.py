"""Turn jsonschema errors into messages an engineer can act on, each at the right key or value.

jsonschema's own texts are exact but read like a stack trace ("... is not valid under any of the given
schemas"). Here each validator gets a sentence in the playbook's own words; unknown keys get a
did-you-mean. The rule id is ``schema-<what>`` so CI annotations can be filtered by kind.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterator
from typing import Any

from irx.model import ACTIONS

Path_ = tuple[str | int, ...]
Described = tuple[Path_, bool, str, str]  # (path, points at the key, rule id, message)

_PATTERN_HINTS = {
    "^[a-z][a-z0-9_]{0,63}$": "an identifier: lower-case letters, digits and _, starting with a letter",
    "^[a-z0-9][a-z0-9-]{0,62}[a-z0-9]$": "lower-case words separated by dashes (e.g. db-pool-exhausted)",
    "^[0-9]+(\\.[0-9]+)?(ms|s|m|h)$": "a duration such as 500ms, 30s, 5m or 1h (or a number of seconds)",
    "^([1-9][0-9]?|100)%$": "a host count or a percentage such as 25%",
    "^[A-Za-z_][A-Za-z0-9_]*$": "an environment variable name",
}

_ANYOF_HINTS = {
    "approval": "approval must be 'required' or a mapping {required: false, reason: WHY}",
    "parse": "parse must be one of json, lines, csv, int, float, text, "
    "or a mapping {format: ..., pattern/columns: ...}",
    "that": "assert.that must be an expression or a list of expressions",
    "status": "expect.status must be an HTTP status code (100-599) or a list of them",
}

_TYPE_NAMES = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "object": "a mapping",
    "array": "a list",
    "null": "null",
}


def _type_of(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def _show(value: Any) -> str:
    text = json.dumps(value, default=str) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _where(path: Path_) -> str:
    """A readable name for the place: 'metadata.severity', 'mitigate[2].approval'."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out or "the playbook"


def _is_step(path: Path_) -> bool:
    return len(path) == 2 and path[0] in {"diagnose", "mitigate", "verify", "rollback"} and isinstance(path[1], int)


def describe(error: Any) -> Iterator[Described]:
    """One or more (path, on_key, rule, message) for a jsonschema ``ValidationError``."""
    path: Path_ = tuple(error.absolute_path)
    kind = error.validator
    instance = error.instance
    if "propertyNames" in error.schema_path:
        hint = _PATTERN_HINTS.get(error.schema.get("pattern", ""), "a valid name")
        yield (*path, instance), True, "schema-name", f"name {instance!r} in {_where(path)} must be {hint}"
        return
    if kind == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        for key in sorted(set(instance) - set(allowed)):
            close = difflib.get_close_matches(key, allowed, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else f"; allowed: {', '.join(allowed)}"
            yield (*path, key), True, "schema-unknown-key", f"unknown key '{key}' in {_where(path)}{hint}"
        return
    if kind == "required":  # jsonschema yields one error per missing key; its message names the key
        match = re.match(r"^'(.+)' is a required property$", error.message)
        missing = [match.group(1)] if match else [k for k in error.validator_value if k not in instance]
        on_key = bool(path) and isinstance(path[-1], str)  # where editors mark it: the mapping's own key
        for key in missing:
            yield path, on_key, "schema-required", f"missing required key '{key}' in {_where(path)}"
        return
    if kind == "dependentRequired":
        yield from _dependent(path, instance, error.validator_value)
        return
    if kind == "oneOf" and _is_step(path) and isinstance(instance, dict):
        found = [name for name in ACTIONS if name in instance]
        choices = ", ".join(ACTIONS)
        if not found:
            message = f"step {_where(path)} has no action; give exactly one of: {choices}"
        else:
            message = f"step {_where(path)} has {len(found)} actions ({', '.join(found)}); give exactly one"
        yield path, False, "schema-action", message
        return
    if kind == "anyOf" and not path:
        yield (
            path,
            False,
            "schema-no-steps",
            "a playbook needs at least one step in diagnose, mitigate, verify or rollback",
        )
        return
    if kind in {"anyOf", "oneOf"}:
        name = next((p for p in reversed(path) if isinstance(p, str)), "")
        if name in _ANYOF_HINTS and not isinstance(instance, dict):
            yield path, False, "schema-value", f"{_where(path)}: {_ANYOF_HINTS[name]} (got {_show(instance)})"
            return
        from jsonschema.exceptions import best_match

        # Prefer the branch that fits the value's shape: a mapping that misses a key says so, rather
        # than "must be 'required'" from the string branch.
        shaped = [e for e in error.context if e.path or e.validator not in {"const", "enum", "type"}]
        deepest = best_match(shaped or error.context)
        if deepest is not None:
            yield from describe(deepest)
            return
    yield path, False, f"schema-{_kebab(kind)}", f"{_where(path)}: {_sentence(kind, error)}"


def _dependent(path: Path_, instance: dict[str, Any], deps: dict[str, list[str]]) -> Iterator[Described]:
    for key, needed in deps.items():
        if key not in instance:
            continue
        for need in needed:
            if need in instance:
                continue
            if need == "on":
                message = f"a {key} step runs on hosts: add 'on: TARGET' naming one of targets:"
            else:
                message = f"'{key}' needs '{need}' in {_where(path)}"
            yield (*path, key), True, "schema-required", message


def _sentence(kind: str, error: Any) -> str:
    value, instance = error.validator_value, error.instance
    if kind == "type":
        expected = value if isinstance(value, list) else [value]
        names = " or ".join(_TYPE_NAMES.get(str(t), str(t)) for t in expected)
        return f"expected {names}, got {_type_of(instance)} {_show(instance)}"
    if kind == "enum":
        return f"{_show(instance)} is not one of: {', '.join(str(v) for v in value)}"
    if kind == "const":
        return f"must be {_show(value)}, got {_show(instance)}"
    if kind == "pattern":
        hint = _PATTERN_HINTS.get(value, f"match the pattern {value}")
        return f"{_show(instance)} must be {hint}" if value in _PATTERN_HINTS else f"{_show(instance)} must {hint}"
    if kind in {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"}:
        word = {"minimum": "at least", "maximum": "at most"}.get(kind, kind)
        return f"{_show(instance)} must be {word} {value}"
    if kind == "minItems":
        return "must not be empty" if value == 1 else f"needs at least {value} items"
    if kind == "minLength":
        return "must not be empty" if value == 1 else f"must be at least {value} characters"
    if kind == "maxLength":
        return f"is longer than {value} characters"
    if kind == "uniqueItems":
        return "has duplicate items"
    if kind == "format":
        return f"{_show(instance)} is not a valid {value}"
    return re.sub(r"\s+", " ", error.message)


def _kebab(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "-", name).lower()

"""A yes/no JSON Schema check compiled once into plain Python closures: the fast path of ``check_schema``.

jsonschema's ``iter_errors`` builds a validator object, a schema path and an error context for every value
it descends into, which is most of ``irx validate``'s time on a clean library. Nearly every file is
valid, and a valid file needs no error objects, so the schema is compiled once into nested closures that
only answer "valid?" with the same semantics as jsonschema's Draft 2020-12 keywords (its type checker,
its ``equal`` and ``uniq``, its format checker). When the answer is no, the caller runs jsonschema's own
``iter_errors`` as before, so every message and position comes from jsonschema exactly as without this.

The compiler covers the keywords the shipped schemas use. A schema with any other keyword jsonschema
knows (``$ref`` left after inlining, ``unevaluatedProperties``, ...) is not compiled (``compile_schema``
returns ``None``) and every file takes the jsonschema path: slower, never different.
"""

from __future__ import annotations

import numbers
import re
from collections.abc import Callable
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema._utils import equal, uniq

Check = Callable[[Any], bool]


class Unsupported(Exception):
    """A keyword this compiler does not implement: use jsonschema for everything."""


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Number) and not isinstance(value, bool)


def _is_integer(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and value.is_integer())


_TYPES: dict[str, Check] = {
    "array": lambda v: isinstance(v, list),
    "boolean": lambda v: isinstance(v, bool),
    "integer": _is_integer,
    "null": lambda v: v is None,
    "number": _is_number,
    "object": lambda v: isinstance(v, dict),
    "string": lambda v: isinstance(v, str),
}

# Keywords jsonschema ignores (annotations, containers of subschemas read by other keywords).
_KNOWN = set(Draft202012Validator.VALIDATORS)


def compile_schema(schema: Any) -> Check | None:
    """The yes/no check of ``schema``, or None when it uses a keyword this module does not compile."""
    try:
        return _compile(schema)
    except Unsupported:
        return None


def _compile(schema: Any) -> Check:
    if schema is True:
        return lambda _: True
    if schema is False:
        return lambda _: False
    if not isinstance(schema, dict):
        raise Unsupported(repr(schema))
    checks: list[Check] = []
    for keyword in schema:
        if keyword in _KNOWN:
            maker = _MAKERS.get(keyword)
            if maker is None:
                raise Unsupported(keyword)
            made = maker(schema[keyword], schema)
            if made is not None:
                checks.append(made)
    return _all(checks)


def _all(checks: list[Check]) -> Check:
    if not checks:
        return lambda _: True
    if len(checks) == 1:
        return checks[0]
    if len(checks) == 2:
        first, second = checks
        return lambda v: first(v) and second(v)
    return lambda v: all(check(v) for check in checks)


def _type(value: Any, _schema: dict[str, Any]) -> Check:
    names = value if isinstance(value, list) else [value]
    try:
        tests = [_TYPES[name] for name in names]
    except (KeyError, TypeError) as exc:
        raise Unsupported(f"type {value!r}") from exc
    if len(tests) == 1:
        return tests[0]
    return lambda v: any(test(v) for test in tests)


def _properties(value: dict[str, Any], _schema: dict[str, Any]) -> Check:
    subs = [(name, _compile(sub)) for name, sub in value.items()]

    def check(v: Any) -> bool:
        return not isinstance(v, dict) or all(name not in v or sub(v[name]) for name, sub in subs)

    return check


def _additional(value: Any, schema: dict[str, Any]) -> Check:
    known = set(schema.get("properties", {}))
    joined = "|".join(schema.get("patternProperties", {}))
    pattern = re.compile(joined) if joined else None
    sub = _compile(value) if isinstance(value, dict) else None
    refuse = value is False

    def extras(v: dict[str, Any]) -> list[str]:
        return [k for k in v if k not in known and not (pattern is not None and pattern.search(k))]

    def check(v: Any) -> bool:
        if not isinstance(v, dict):
            return True
        if sub is not None:
            return all(sub(v[k]) for k in extras(v))
        return not (refuse and extras(v))

    return check


def _pattern_properties(value: dict[str, Any], _schema: dict[str, Any]) -> Check:
    subs = [(re.compile(pattern), _compile(sub)) for pattern, sub in value.items()]
    return lambda v: (
        not isinstance(v, dict) or all(sub(item) for regex, sub in subs for key, item in v.items() if regex.search(key))
    )


def _required(value: list[str], _schema: dict[str, Any]) -> Check:
    names = list(value)
    return lambda v: not isinstance(v, dict) or all(name in v for name in names)


def _items(value: Any, schema: dict[str, Any]) -> Check:
    if "prefixItems" in schema:
        raise Unsupported("prefixItems")
    if value is False:
        return lambda v: not isinstance(v, list) or not v
    sub = _compile(value)
    return lambda v: not isinstance(v, list) or all(sub(item) for item in v)


def _pattern(value: str, _schema: dict[str, Any]) -> Check:
    search = re.compile(value).search
    return lambda v: not isinstance(v, str) or search(v) is not None


def _enum(value: list[Any], _schema: dict[str, Any]) -> Check:
    options = list(value)
    return lambda v: any(equal(option, v) for option in options)


def _const(value: Any, _schema: dict[str, Any]) -> Check:
    return lambda v: bool(equal(v, value))


def _any_of(value: list[Any], _schema: dict[str, Any]) -> Check:
    subs = [_compile(sub) for sub in value]
    return lambda v: any(sub(v) for sub in subs)


def _one_of(value: list[Any], _schema: dict[str, Any]) -> Check:
    subs = [_compile(sub) for sub in value]
    return lambda v: sum(1 for sub in subs if sub(v)) == 1


def _all_of(value: list[Any], _schema: dict[str, Any]) -> Check:
    return _all([_compile(sub) for sub in value])


def _not(value: Any, _schema: dict[str, Any]) -> Check:
    sub = _compile(value)
    return lambda v: not sub(v)


def _if(value: Any, schema: dict[str, Any]) -> Check:
    test = _compile(value)
    then = _compile(schema["then"]) if "then" in schema else None
    otherwise = _compile(schema["else"]) if "else" in schema else None

    def check(v: Any) -> bool:
        if test(v):
            return then is None or then(v)
        return otherwise is None or otherwise(v)

    return check


def _property_names(value: Any, _schema: dict[str, Any]) -> Check:
    sub = _compile(value)
    return lambda v: not isinstance(v, dict) or all(sub(key) for key in v)


def _dependent_required(value: dict[str, list[str]], _schema: dict[str, Any]) -> Check:
    pairs = [(name, list(needs)) for name, needs in value.items()]
    return lambda v: (
        not isinstance(v, dict) or all(name not in v or all(need in v for need in needs) for name, needs in pairs)
    )


def _format(value: str, _schema: dict[str, Any]) -> Check:
    checker = Draft202012Validator.FORMAT_CHECKER
    if value not in checker.checkers:
        return lambda _: True
    return lambda v: bool(checker.conforms(v, value))


def _sized(kind: Check, size: Callable[[Any], int], test: Callable[[int, Any], bool]) -> Callable[..., Check]:
    def make(value: Any, _schema: dict[str, Any]) -> Check:
        return lambda v: not kind(v) or test(size(v), value)

    return make


def _unique(value: Any, _schema: dict[str, Any]) -> Check | None:
    if not value:
        return None
    return lambda v: not isinstance(v, list) or bool(uniq(v))


def _list(v: Any) -> bool:
    return isinstance(v, list)


def _str(v: Any) -> bool:
    return isinstance(v, str)


def _dict(v: Any) -> bool:
    return isinstance(v, dict)


def _same(v: Any) -> Any:
    return v


_MAKERS: dict[str, Callable[[Any, dict[str, Any]], Check | None]] = {
    "type": _type,
    "properties": _properties,
    "additionalProperties": _additional,
    "patternProperties": _pattern_properties,
    "required": _required,
    "items": _items,
    "pattern": _pattern,
    "enum": _enum,
    "const": _const,
    "anyOf": _any_of,
    "oneOf": _one_of,
    "allOf": _all_of,
    "not": _not,
    "if": _if,
    "propertyNames": _property_names,
    "dependentRequired": _dependent_required,
    "format": _format,
    "uniqueItems": _unique,
    "minItems": _sized(_list, len, lambda n, limit: n >= limit),
    "maxItems": _sized(_list, len, lambda n, limit: n <= limit),
    "minLength": _sized(_str, len, lambda n, limit: n >= limit),
    "maxLength": _sized(_str, len, lambda n, limit: n <= limit),
    "minProperties": _sized(_dict, len, lambda n, limit: n >= limit),
    "maxProperties": _sized(_dict, len, lambda n, limit: n <= limit),
    "minimum": _sized(_is_number, _same, lambda n, limit: n >= limit),
    "maximum": _sized(_is_number, _same, lambda n, limit: n <= limit),
    "exclusiveMinimum": _sized(_is_number, _same, lambda n, limit: n > limit),
    "exclusiveMaximum": _sized(_is_number, _same, lambda n, limit: n < limit),
}

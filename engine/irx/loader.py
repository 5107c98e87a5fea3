"""Read a playbook file: bytes -> YAML nodes with positions (irx.document) -> JSON data -> schema -> rules -> model.

Every problem is collected, none stops the others: a duplicate key does not hide a schema error, and a
schema error does not hide a broken template.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from irx.document import MAX_BYTES as MAX_BYTES
from irx.document import Document as Document
from irx.document import Path_ as Path_
from irx.document import data_at as data_at
from irx.document import read_document as read_document
from irx.errors import PlaybookError
from irx.model import PHASES, Playbook, build_playbook
from irx.problems import Problem
from irx.rules import check_rules


@functools.cache
def schema() -> dict[str, Any]:
    """The playbook JSON Schema, as shipped inside the package."""
    loaded: dict[str, Any] = json.loads(schema_text())
    return loaded


@functools.cache
def schema_text() -> str:
    return resources.files("irx").joinpath("schemas/playbook.schema.json").read_text(encoding="utf-8")


@functools.cache
def _validator() -> Any:
    from jsonschema import Draft202012Validator

    return Draft202012Validator(_inlined(schema()), format_checker=Draft202012Validator.FORMAT_CHECKER)


def _inlined(root: dict[str, Any]) -> dict[str, Any]:
    """The schema with every local ``$ref`` replaced by what it names: the same checks and error paths,
    without a reference lookup for each of the thousands of values a library holds (a third of the
    schema's time). The playbook schema has no recursive definitions; a ``$ref`` with sibling keywords
    that overlap its target stays an ``allOf`` of both, as 2020-12 defines it."""
    defs = root.get("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, list):
            return [resolve(item) for item in node]
        if not isinstance(node, dict):
            return node
        out = {key: resolve(value) for key, value in node.items() if key != "$ref"}
        ref = node.get("$ref")
        if not (isinstance(ref, str) and ref.startswith("#/$defs/") and ref[8:] in defs):
            return node if ref is not None else out
        target = resolve(defs[ref[8:]])
        if set(target) & set(out) - {"description", "title", "$comment", "examples"}:
            return {**out, "allOf": [target, *out.pop("allOf", [])]}
        return {**target, **out}

    return {key: (value if key == "$defs" else resolve(value)) for key, value in root.items()}


@functools.cache
def _valid() -> Any:
    """The schema compiled to a yes/no check (irx.schema_fast), or None when it cannot be compiled."""
    from irx.schema_fast import compile_schema

    return compile_schema(_inlined(schema()))


def check_schema(doc: Document) -> None:
    """Add every schema error of ``doc.data`` to its problems, each at the offending key or value.

    A document the compiled check finds valid has no errors to report; any other goes through
    jsonschema's ``iter_errors``, which finds and words them."""
    from irx.schema_messages import describe

    valid = _valid()
    if valid is not None and valid(doc.data):
        return
    for error in _validator().iter_errors(doc.data):
        for path, on_key, rule, message in describe(error):
            doc.problem(doc.position(path, key=on_key), rule, message)


def step_lines(doc: Document) -> dict[tuple[str, int], int]:
    lines: dict[tuple[str, int], int] = {}
    for phase in PHASES:
        steps = doc.data.get(phase) if isinstance(doc.data, dict) else None
        if isinstance(steps, list):
            for index in range(len(steps)):
                lines[(phase, index)] = doc.position((phase, index))[0]
    return lines


@dataclass
class Checked:
    """The outcome of checking one file: its problems and, when it has no errors, its model."""

    document: Document
    playbook: Playbook | None

    @property
    def problems(self) -> list[Problem]:
        return self.document.problems


def check_file(path: Path) -> Checked:
    """Read, schema-check and rule-check one file; the model is built only when nothing is wrong."""
    doc = read_document(path, partial=True)
    if doc.data is None:
        return Checked(doc, None)
    check_schema(doc)
    if doc.skipped:  # a YAML syntax error: the other sections are schema-checked; rules wait for a whole file
        _forget_skipped(doc)
        return Checked(doc, None)
    schema_ok = doc.ok
    playbook = build_playbook(doc.data, path, step_lines(doc)) if schema_ok else None
    check_rules(doc, playbook)
    return Checked(doc, playbook if doc.ok else None)


def _forget_skipped(doc: Document) -> None:
    """Drop what the schema says about the playbook as a whole, the absence of a top-level key or of any
    step: what the broken text meant is unknown. Every other schema problem is about a value that was read
    (and the sections a value sits in are independent in the schema)."""
    doc.problems[:] = [
        p
        for p in doc.problems
        if p.rule != "schema-no-steps" and not (p.rule == "schema-required" and p.message.endswith(" in the playbook"))
    ]


def load_playbook(path: Path) -> Playbook:
    """The model of a valid playbook, or ``PlaybookError`` naming the first problem and the count."""
    checked = check_file(path)
    errors = [p for p in checked.problems if p.level == "error"]
    if checked.playbook is None or errors:
        more = f" (and {len(errors) - 1} more; run: irx validate {path})" if len(errors) > 1 else ""
        first = errors[0] if errors else Problem(path, 0, 0, "invalid", "playbook is not valid")
        raise PlaybookError(f"{first}{more}")
    return checked.playbook


def iter_playbook_files(paths: list[Path]) -> Iterator[Path]:
    """Playbook files under ``paths``: files as given, directories searched for *.yaml / *.yml."""
    for path in paths:
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.suffix in {".yaml", ".yml"} and p.is_file())
        else:
            yield path

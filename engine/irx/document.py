"""A YAML file read into data plus the position of every node, bounded against hostile input.

Size, binary content, encoding, nesting depth and alias expansion are all checked before they cost
anything, and only the YAML core tags are accepted, so nothing in a file can make the reader execute
code. Problems are collected, not raised: the loader (playbooks), the rules and the routes file all
point into the user's file with the positions kept here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.events import AliasEvent, StreamEndEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.resolver import Resolver

from irx import document_fast
from irx.problems import Problem

try:  # libyaml's C parser when available: the tokenizer is most of the cost
    from yaml._yaml import CParser as _Parser
except ImportError:  # pragma: no cover - pure-Python fallback
    from yaml.parser import Parser as _ParserBase
    from yaml.reader import Reader
    from yaml.scanner import Scanner

    class _Parser(Reader, Scanner, _ParserBase):  # type: ignore[no-redef]
        def __init__(self, stream: str) -> None:
            Reader.__init__(self, stream)
            Scanner.__init__(self)
            _ParserBase.__init__(self)


MAX_BYTES = 1024 * 1024  # a playbook is a few KB; a megabyte is a mistake or an attack
MAX_DEPTH = 64  # real playbooks nest < 10 deep
MAX_NODES = 50_000  # after alias expansion; bounds a "billion laughs" document

Path_ = tuple[str | int, ...]

_CORE = "tag:yaml.org,2002:"
_ALLOWED_TAGS = {_CORE + t for t in ("str", "int", "float", "bool", "null", "map", "seq", "timestamp", "merge")}

# YAML 1.2 booleans only: "on", "yes" and "no" stay strings (a step's `on:` key must not become True).
_BOOL_12 = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")


class _Resolver(Resolver):
    yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != _CORE + "bool"]
        for first, resolvers in Resolver.yaml_implicit_resolvers.items()
    }


for _first in "tTfF":
    _Resolver.yaml_implicit_resolvers.setdefault(_first, []).insert(0, (_CORE + "bool", _BOOL_12))


class _TooDeep(Exception):
    def __init__(self, mark: Any) -> None:
        super().__init__(mark)
        self.mark = mark


class _Composer(Composer, _Parser, _Resolver):
    """libyaml events, Python composition: depth-limited and recording duplicate keys."""

    def __init__(self, text: str) -> None:
        _Parser.__init__(self, text)
        Composer.__init__(self)
        _Resolver.__init__(self)
        self.depth = 0
        self.saw_alias = False  # without aliases, the expansion guard has nothing to do
        self.duplicates: list[tuple[Node, int]] = []  # (second key node, line of the first)

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            event = self.peek_event()
            raise _TooDeep(event.start_mark if event is not None else None)
        if self.check_event(AliasEvent):
            self.saw_alias = True
        try:
            node = super().compose_node(parent, index)
            assert node is not None  # the composer only returns None at the end of the stream
            return node
        finally:
            self.depth -= 1

    def compose_mapping_node(self, anchor: Any) -> MappingNode:
        node: MappingNode = super().compose_mapping_node(anchor)
        seen: dict[str, int] = {}
        for key, _ in node.value:
            if isinstance(key, ScalarNode):
                if key.value in seen:
                    self.duplicates.append((key, seen[key.value]))
                else:
                    seen[key.value] = key.start_mark.line + 1
        return node


@dataclass
class Document:
    """A file's data plus the positions of its nodes, keyed by JSON path."""

    path: Path
    data: Any = None
    problems: list[Problem] = field(default_factory=list)
    values: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    keys: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    block_scalars: set[Path_] = field(default_factory=set)  # literal/folded: content starts a line later
    # Top-level sections left out because of a YAML syntax error in them (read_document(partial=True)): the
    # data holds the other sections only, so it is checked against the schema, never built into a model.
    skipped: frozenset[str] = frozenset()
    # A YAML syntax error's first line (its context's) and the line and column it was found at (1-based).
    syntax_lines: tuple[int, int, int] = (0, 0, 0)

    def problem(self, at: tuple[int, int], rule: str, message: str, level: str = "error") -> None:
        self.problems.append(Problem(self.path, at[0], at[1], rule, message, level))  # type: ignore[arg-type]

    def position(self, path: Path_, key: bool = False) -> tuple[int, int]:
        """Where ``path`` is written: its key (``key=True``) or value; else the nearest ancestor's."""
        table = self.keys if key else self.values
        if path in table:
            return table[path]
        while path:
            path = path[:-1]
            if path in self.values:
                return self.values[path]
        return (1, 1)

    @property
    def ok(self) -> bool:
        return not any(p.level == "error" for p in self.problems)


def _mark(mark: Any) -> tuple[int, int]:
    return (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)


def read_document(path: Path, partial: bool = False) -> Document:
    """Parse ``path`` into data and positions, collecting file and YAML problems. With ``partial``, a YAML
    syntax error confined to one top-level section still gives the data of the other sections
    (``Document.skipped`` names the section left out)."""
    doc = Document(path)
    try:
        with path.open("rb") as handle:  # read at most one byte past the limit: bounded memory
            raw = handle.read(MAX_BYTES + 1)
    except OSError as exc:
        doc.problem((0, 0), "file-unreadable", f"cannot read file: {exc.strerror or exc}")
        return doc
    text = _decode(doc, raw)
    if text is None:
        return doc
    if not text.strip():
        doc.problem((1, 1), "yaml-empty", "file is empty; expected a playbook mapping (apiVersion: irx/v1)")
        return doc
    fast = read_plain(text)
    if fast is not None:  # a plain file: the same data and positions in one pass (irx.document_fast)
        doc.data, doc.values, doc.keys, doc.block_scalars = fast
        return doc
    composed = _compose(doc, text)
    if composed is None and partial:
        composed = _compose_around_error(doc, text)
    if composed is None:
        return doc
    root, aliased = composed
    if aliased and _expanded_size(root, {}) > MAX_NODES:
        doc.problem(
            _mark(root.start_mark), "yaml-too-large", f"document expands to more than {MAX_NODES} nodes (aliases)"
        )
        return doc
    doc.data = _Builder(doc).build(root, ())
    if not isinstance(doc.data, dict):
        kind = "a list" if isinstance(doc.data, list) else "a scalar"
        doc.problem(_mark(root.start_mark), "yaml-not-mapping", f"the document is {kind}; expected a playbook mapping")
        doc.data = None
    return doc


def read_plain(text: str) -> document_fast.Built | None:
    """A plain file's data and positions in one pass over libyaml's events; None: not plain, or broken."""
    return document_fast.build(text, _Parser, _Resolver.yaml_implicit_resolvers, MAX_DEPTH)


def _decode(doc: Document, raw: bytes) -> str | None:
    if len(raw) > MAX_BYTES:
        doc.problem((0, 0), "file-too-large", f"file is larger than {MAX_BYTES} bytes, the limit for a playbook")
        return None
    nul = raw.find(b"\x00")
    if nul >= 0:
        line, col = _offset_position(raw, nul)
        doc.problem((line, col), "file-binary", "file contains NUL bytes; not a text file")
        return None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line, col = _offset_position(raw, exc.start)
        doc.problem(
            (line, col), "file-encoding", f"invalid UTF-8 (byte 0x{raw[exc.start]:02x}); save the file as UTF-8"
        )
        return None
    return text


def _offset_position(raw: bytes, offset: int) -> tuple[int, int]:
    line_start = raw.rfind(b"\n", 0, offset) + 1
    return raw.count(b"\n", 0, offset) + 1, offset - line_start + 1


def _compose(doc: Document, text: str) -> tuple[Node, bool] | None:
    """The document's root node and whether it used aliases; None when there is nothing to build."""
    composer = _Composer(text)
    root: Node | None = None
    try:
        composer.get_event()  # StreamStart
        if not composer.check_event(StreamEndEvent):
            root = composer.compose_document()
        if not composer.check_event(StreamEndEvent):
            extra = composer.peek_event()
            doc.problem(
                _mark(extra.start_mark) if extra is not None else (1, 1),
                "yaml-multiple-documents",
                "several documents in one file; put one playbook per file",
            )
    except _TooDeep as exc:
        doc.problem(_mark(exc.mark), "yaml-too-deep", f"nesting deeper than {MAX_DEPTH} levels")
        return None
    except yaml.MarkedYAMLError as exc:
        doc.problems.append(_yaml_problem(doc.path, exc, text))
        marks = [(m.line + 1, m.column + 1) for m in (exc.context_mark, exc.problem_mark) if m is not None]
        doc.syntax_lines = (min(marks)[0], *max(marks)) if marks else (0, 0, 0)
        return None
    except yaml.YAMLError as exc:  # reader errors without a mark
        doc.problem((1, 1), "yaml-syntax", str(exc).replace("\n", " "))
        return None
    finally:
        composer.dispose()
    for key, first_line in composer.duplicates:
        doc.problem(
            _mark(key.start_mark),
            "yaml-duplicate-key",
            f"duplicate key '{key.value}' (first defined on line {first_line})",
        )
    if root is None:
        doc.problem((1, 1), "yaml-empty", "file has no content; expected a playbook mapping (apiVersion: irx/v1)")
        return None
    return root, composer.saw_alias


_SECTION = re.compile(r"^(?![-#%]|\.\.\.|---)(\S[^:\n]*?|\"[^\"\n]*\"|'[^'\n]*'):(?:[ \t]|$)")


def _compose_around_error(doc: Document, text: str) -> tuple[Node, bool] | None:
    """The document without the top-level section(s) holding its YAML syntax error, when the rest parses.

    Sound because a block mapping's top-level keys start at column 0 and nothing else does: the lines
    from the section of the error's context (an unclosed quote or bracket opens it) to the end of the
    section of the error itself are blanked, not removed, so every other line keeps its number and
    column. Only YAML syntax errors qualify; a second error, or anything but a mapping, gives up."""
    first_line, last_line, last_col = doc.syntax_lines
    if len(doc.problems) != 1 or doc.problems[0].rule not in {"yaml-syntax", "yaml-tab"} or not first_line:
        return None
    lines = text.splitlines(keepends=True)
    starts = [i for i, line in enumerate(lines) if _SECTION.match(line)]
    first_bad = max((s for s in starts if s <= first_line - 1), default=None)
    if first_bad is None or len(starts) < 2:
        return None
    # Found at the very start of the next top-level key: what broke is before it, that section may be fine.
    found_at_next_key = last_col == 1 and last_line - 1 in starts and last_line > first_line
    end = last_line - 1 if found_at_next_key else next((s for s in starts if s > last_line - 1), len(lines))
    trial = Document(doc.path)
    kept = "".join(line if not first_bad <= i < end else "\n" for i, line in enumerate(lines))
    composed = _compose(trial, kept)
    if composed is None or not isinstance(composed[0], MappingNode):
        return None
    if any(p.rule != "yaml-duplicate-key" for p in trial.problems):
        return None
    doc.problems.extend(trial.problems)  # a key defined twice in a section that parsed is still reported
    names = (_SECTION.match(lines[i]) for i in starts if first_bad <= i < end)
    doc.skipped = frozenset(match.group(1).strip("\"'") for match in names if match is not None)
    return composed


def _yaml_problem(path: Path, exc: yaml.MarkedYAMLError, text: str) -> Problem:
    mark = exc.problem_mark or exc.context_mark
    line, col = _mark(mark) if mark is not None else (1, 1)
    problem = exc.problem or "invalid YAML"
    lines = text.splitlines()
    source = lines[line - 1] if 0 < line <= len(lines) else ""
    indent = source[: len(source) - len(source.lstrip(" \t"))]
    if "\t" in indent:
        return Problem(
            path, line, indent.index("\t") + 1, "yaml-tab", "tab character in indentation; YAML needs spaces"
        )
    context = f" {exc.context}" if exc.context else ""
    return Problem(path, line, col, "yaml-syntax", f"{problem}{context}")


def _expanded_size(node: Node, memo: dict[int, int]) -> int:
    """Node count with aliases expanded, computed in time linear in the composed nodes."""
    known = memo.get(id(node))
    if known is not None:
        return known
    memo[id(node)] = 1  # guards recursive aliases
    size = 1
    if isinstance(node, SequenceNode):
        size += sum(_expanded_size(child, memo) for child in node.value)
    elif isinstance(node, MappingNode):
        size += sum(_expanded_size(k, memo) + _expanded_size(v, memo) for k, v in node.value)
    memo[id(node)] = size
    return min(size, MAX_NODES + 1)


class _Builder:
    """Nodes -> JSON-like data, recording positions and refusing non-core tags."""

    def __init__(self, doc: Document) -> None:
        self.doc = doc
        self.scalars = yaml.constructor.SafeConstructor()
        self.active: set[int] = set()  # nodes being built: an alias to one of them is a cycle

    def build(self, node: Node, path: Path_) -> Any:
        self.doc.values.setdefault(path, _mark(node.start_mark))
        if id(node) in self.active:
            self.doc.problem(_mark(node.start_mark), "yaml-recursive-alias", "an alias refers to its own ancestor")
            return None
        if node.tag not in _ALLOWED_TAGS:
            self.doc.problem(
                _mark(node.start_mark), "yaml-unknown-tag", f"tag {node.tag} is not allowed; playbooks are plain data"
            )
            return None
        if isinstance(node, MappingNode | SequenceNode):
            self.active.add(id(node))
            try:
                if isinstance(node, MappingNode):
                    return self._mapping(node, path)
                return [self.build(child, (*path, index)) for index, child in enumerate(node.value)]
            finally:
                self.active.discard(id(node))
        if getattr(node, "style", None) in ("|", ">"):
            self.doc.block_scalars.add(path)
        value = self.scalars.construct_object(node)
        if node.tag == _CORE + "timestamp":
            return str(node.value)
        return value

    def _mapping(self, node: MappingNode, path: Path_) -> dict[str, Any]:
        result: dict[str, Any] = {}
        merged: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _CORE + "merge":
                merged.update(self._merge_source(value_node, path))
                continue
            if not isinstance(key_node, ScalarNode):
                self.doc.problem(_mark(key_node.start_mark), "yaml-complex-key", "mapping keys must be plain strings")
                continue
            key = key_node.value  # always the written text: `on:` and `1:` are string keys
            self.doc.keys.setdefault((*path, key), _mark(key_node.start_mark))
            result[key] = self.build(value_node, (*path, key))
        for key, value in merged.items():
            result.setdefault(key, value)
        return result

    def _merge_source(self, node: Node, path: Path_) -> dict[str, Any]:
        sources = node.value if isinstance(node, SequenceNode) else [node]
        merged: dict[str, Any] = {}
        for source in sources:
            value = self.build(source, path)
            if isinstance(value, dict):
                for key, item in value.items():
                    merged.setdefault(key, item)
            else:
                self.doc.problem(_mark(source.start_mark), "yaml-syntax", "a merge key (<<) needs a mapping")
        return merged


def data_at(data: Any, path: Path_) -> Any:
    """The value at a JSON path, or None."""
    for part in path:
        if isinstance(data, Mapping) and isinstance(part, str):
            data = data.get(part)
        elif isinstance(data, list) and isinstance(part, int) and part < len(data):
            data = data[part]
        else:
            return None
    return data

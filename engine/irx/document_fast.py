"""The fast path of irx.document for plain files: libyaml's events straight to data and positions.

irx.document composes a node tree in Python (to bound depth and alias expansion, and record duplicate
keys) and then walks it again to build the data. For the usual playbook (one document, a mapping at the
top, no anchors, aliases, tags, merge keys, complex or duplicate keys, nesting well under the limit) the
same data, value positions, key positions and block-scalar paths come out of one loop over libyaml's
events, with an explicit stack (no recursion) and scalars resolved and constructed as the full reader
does (its resolver table, ``SafeConstructor`` for non-strings).

Anything else, a YAML error included, returns ``None`` and the full reader handles the file from the
start, so every problem and position of an unusual file is the full reader's. The fast path never
reports a problem itself.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.events import (
    DocumentEndEvent,
    DocumentStartEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
)
from yaml.nodes import ScalarNode

Path_ = tuple[str | int, ...]
Built = tuple[dict[str, Any], dict[Path_, tuple[int, int]], dict[Path_, tuple[int, int]], set[Path_]]

_CORE = "tag:yaml.org,2002:"
_STR = _CORE + "str"
_TIMESTAMP = _CORE + "timestamp"
_CONSTRUCTED = {_CORE + t for t in ("int", "float", "bool", "null", "timestamp")}


class _Unusual(Exception):
    """Something the fast path leaves to the full reader."""


def build(
    text: str,
    parser_class: Callable[[str], Any],
    resolvers: dict[str | None, list[tuple[str, re.Pattern[str]]]],
    max_depth: int,
) -> Built | None:
    """(data, value positions, key positions, block-scalar paths) of ``text``, or None: use the full reader."""
    parser = parser_class(text)
    try:
        return _Loop(parser, resolvers, max_depth).run()
    except (_Unusual, yaml.YAMLError):
        return None
    finally:
        parser.dispose()


class _Loop:
    def __init__(
        self, parser: Any, resolvers: dict[str | None, list[tuple[str, re.Pattern[str]]]], max_depth: int
    ) -> None:
        self.get = parser.get_event
        self.resolvers = resolvers
        self.wildcard = resolvers.get(None, [])
        self.max_depth = max_depth - 2  # containers; leaves the full reader every file near the limit
        self.constructor = SafeConstructor()

    def tag(self, value: str) -> str:
        """The tag of a plain scalar, as yaml's Resolver.resolve gives it (no path resolvers)."""
        for tag, regexp in self.resolvers.get(value[0] if value else "", []) + self.wildcard:
            if regexp.match(value):
                return tag
        return _STR

    def scalar(self, event: Any) -> Any:
        if not event.implicit[0]:
            return event.value  # quoted or block: a string
        tag = self.tag(event.value)
        if tag == _STR:
            return event.value
        if tag not in _CONSTRUCTED:
            raise _Unusual(tag)  # merge (as a value), yaml's `=` value tag: the full reader reports them
        node = ScalarNode(tag, event.value, event.start_mark, event.end_mark, style=event.style)
        value = self.constructor.construct_object(node)
        return str(event.value) if tag == _TIMESTAMP else value

    def run(self) -> Built:
        get = self.get
        get()  # StreamStart
        if type(get()) is not DocumentStartEvent:
            raise _Unusual("no document")
        event: Any = get()
        if type(event) is not MappingStartEvent or event.anchor is not None or event.tag is not None:
            raise _Unusual("top level")
        root: dict[str, Any] = {}
        start: Any = event.start_mark
        values: dict[Path_, tuple[int, int]] = {(): (start.line + 1, start.column + 1)}
        keys: dict[Path_, tuple[int, int]] = {}
        blocks: set[Path_] = set()
        # One frame per open collection: the container, its path, the pending key of a mapping.
        stack: list[tuple[Any, Path_]] = [(root, ())]
        pending: list[str | None] = [None]
        while stack:
            event = get()
            kind = type(event)
            if kind is MappingEndEvent or kind is SequenceEndEvent:
                stack.pop()
                pending.pop()
                continue
            if event.anchor is not None or (kind is not ScalarEvent and kind is not MappingStartEvent
                                            and kind is not SequenceStartEvent) or event.tag is not None:  # fmt: skip
                raise _Unusual("anchor, alias or tag")
            container, path = stack[-1]
            mark = event.start_mark
            if type(container) is dict:
                key = pending[-1]
                if key is None:  # this event is a key
                    if kind is not ScalarEvent:
                        raise _Unusual("complex key")
                    key = event.value
                    if key in container or (key == "<<" and event.implicit[0]):
                        raise _Unusual("duplicate or merge key")
                    pending[-1] = key
                    keys[(*path, key)] = (mark.line + 1, mark.column + 1)
                    continue
                pending[-1] = None
                here: Path_ = (*path, key)
            else:
                here = (*path, len(container))
            values[here] = (mark.line + 1, mark.column + 1)
            if kind is ScalarEvent:
                if event.style == "|" or event.style == ">":
                    blocks.add(here)
                value = self.scalar(event)
            else:
                if len(stack) >= self.max_depth:
                    raise _Unusual("deep")
                value = {} if kind is MappingStartEvent else []
                stack.append((value, here))
                pending.append(None)
            if type(container) is dict:
                container[here[-1]] = value
            else:
                container.append(value)
        if type(get()) is not DocumentEndEvent or type(get()) is not StreamEndEvent:
            raise _Unusual("more than one document")
        return root, values, keys, blocks

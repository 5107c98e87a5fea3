"""Alert routes: which alert group starts which playbook, where, with which params, in which mode.

A routes file (schemas/routes.schema.json) is trusted configuration; the notifications it is matched
against are not. So a route decides everything that becomes code or a target: the playbook, the
inventory, the mode, the pre-approved steps. An alert contributes only values: param values (which the
run checks against the param's type and pattern like any ``-e`` value) and, where the route says so, one
host name for ``--limit`` that must be exactly a host of the inventory (no pattern can ride in on a label).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml

from irx.alerts import AlertError, Matcher, Notification, matches_all, parse_matcher
from irx.errors import IrxError, UsageError
from irx.model import Playbook

Mode = Literal["diagnose", "dry-run", "run"]
DEFAULT_MAX_CONCURRENT = 4
DEFAULT_APPROVAL_TIMEOUT = "30m"  # mode run: how long a gate waits for irx approve / deny
# What a label may hold to be used as a --limit: a host name, nothing an Ansible pattern gives meaning to
# (",", ":", "&", "!", "*", "~", "[", "]" and spaces are all pattern syntax).
_HOST_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,252}")


@dataclass(frozen=True)
class Source:
    """Where a value comes from: a literal in the routes file, or a label / annotation of the alert group."""

    kind: Literal["literal", "label", "annotation"]
    name: str = ""
    value: Any = None

    def read(self, note: Notification) -> Any:
        if self.kind == "literal":
            return self.value
        table = note.common_labels if self.kind == "label" else note.common_annotations
        if self.name not in table:
            raise AlertError(f"the alert group has no common {self.kind} {self.name!r}, which the route needs")
        return table[self.name]

    def __str__(self) -> str:
        return repr(self.value) if self.kind == "literal" else f"{self.kind} {self.name}"


@dataclass(frozen=True)
class Route:
    name: str
    matchers: tuple[Matcher, ...]
    playbook: str
    inventory: str | None = None
    limit: Source | None = None
    params: Mapping[str, Source] = field(default_factory=dict)
    mode: Mode = "diagnose"
    approve: tuple[str, ...] = ()
    approval_timeout: str = DEFAULT_APPROVAL_TIMEOUT  # mode run: how long a gate waits for a decision
    line: int = 0

    def matches(self, note: Notification) -> bool:
        return matches_all(self.matchers, note.common_labels)

    def params_for(self, note: Notification) -> dict[str, Any]:
        """The param values this alert group gives the playbook (AlertError when a label is missing)."""
        return {name: source.read(note) for name, source in self.params.items()}

    def limit_for(self, note: Notification, hosts: Sequence[str]) -> str | None:
        """The run's ``--limit``: the route's fixed pattern, or one host named by a label (checked)."""
        if self.limit is None:
            return None
        if self.limit.kind == "literal":
            return str(self.limit.value)
        value = str(self.limit.read(note))
        host = re.sub(r":[0-9]{1,5}\Z", "", value)  # Prometheus' instance label is host:port
        if not _HOST_NAME.fullmatch(host):
            raise AlertError(f"{self.limit} is {value[:80]!r}, which is not a host name; the route needs one")
        if host not in hosts:
            raise AlertError(f"{self.limit} names {host!r}, which is not a host of the route's inventory")
        return host


@dataclass(frozen=True)
class Routes:
    routes: tuple[Route, ...]
    max_concurrent: int = DEFAULT_MAX_CONCURRENT

    def route_for(self, note: Notification) -> Route | None:
        """The first route whose matchers all match the group's common labels, or None."""
        return next((route for route in self.routes if route.matches(note)), None)


def build_routes(data: Mapping[str, Any], lines: Sequence[int] = ()) -> tuple[Routes, list[tuple[int, str]]]:
    """Routes from schema-valid ``data``, plus (route index, message) for each matcher that does not parse.

    ``lines`` gives each route's line in the file, for the model and for messages.
    """
    problems: list[tuple[int, str]] = []
    routes = []
    for index, item in enumerate(data["routes"]):
        matchers = []
        for text in item["match"]:
            try:
                matchers.append(parse_matcher(text))
            except ValueError as exc:
                problems.append((index, str(exc)))
        routes.append(
            Route(
                name=item["name"],
                matchers=tuple(matchers),
                playbook=item["playbook"],
                inventory=item.get("inventory"),
                limit=_source(item["limit"]) if "limit" in item else None,
                params={name: _source(value) for name, value in item.get("params", {}).items()},
                mode=item.get("mode", "diagnose"),
                approve=tuple(item.get("approve", ())),
                approval_timeout=item.get("approval_timeout", DEFAULT_APPROVAL_TIMEOUT),
                line=lines[index] if index < len(lines) else 0,
            )
        )
    return Routes(tuple(routes), data.get("max_concurrent", DEFAULT_MAX_CONCURRENT)), problems


def _source(value: Any) -> Source:
    if isinstance(value, Mapping):
        if "label" in value:
            return Source("label", name=str(value["label"]))
        return Source("annotation", name=str(value["annotation"]))
    return Source("literal", value=value)


# A problem in a routes file: (line, column, message), 1-based.
RouteProblem = tuple[int, int, str]


def load_routes(path: Path) -> Routes:
    """The routes in ``path``, or ``UsageError`` with every problem as ``path:line:col: message``."""
    routes, problems = check_routes_file(path)
    if problems or routes is None:
        shown = "; ".join(f"{path}:{line}:{col}: {message}" for line, col, message in problems[:5])
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        raise UsageError(shown + more)
    return routes


def check_routes_file(path: Path) -> tuple[Routes | None, list[RouteProblem]]:
    """The routes in ``path`` (None when it cannot be read as routes) and every problem in it, sorted;
    ``UsageError`` only when the file cannot be read at all."""
    from jsonschema import Draft202012Validator

    try:
        text = path.read_text(encoding="utf-8")
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except OSError as exc:
        raise UsageError(f"{path}: cannot read the routes file: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        return None, [(line, col, f"not YAML: {getattr(exc, 'problem', None) or exc}")]
    if not isinstance(data, dict):
        return None, [(1, 1, "a routes file is a mapping (apiVersion: irx/v1, kind: Routes, routes: [...])")]
    problems: list[RouteProblem] = []
    schema = json.loads(resources.files("irx").joinpath("schemas/routes.schema.json").read_text(encoding="utf-8"))
    for error in sorted(Draft202012Validator(schema).iter_errors(data), key=lambda e: list(map(str, e.path))):
        line, col = _position(root, list(error.absolute_path))
        at = "/".join(map(str, error.absolute_path)) or "(top)"
        problems.append((line, col, f"{at}: {error.message}"))
    if not problems:
        lines = [_position(root, ["routes", i])[0] for i in range(len(data["routes"]))]
        routes, bad = build_routes(data, lines)
        problems += [(lines[i], 1, f"routes/{i}/match: {message}") for i, message in bad]
        names = [r.name for r in routes.routes]
        problems += [
            (r.line, 1, f"routes/{i}/name: {r.name!r} is the name of an earlier route")
            for i, r in enumerate(routes.routes)
            if r.name in names[:i]
        ]
        problems += [
            (r.line, 1, f"routes/{i}/approve: pre-approving steps needs mode: run (this route is {r.mode})")
            for i, r in enumerate(routes.routes)
            if r.approve and r.mode != "run"
        ]
        return routes, sorted(problems)
    return None, sorted(problems + _matcher_problems(root, data))


def _matcher_problems(root: Any, data: Mapping[str, Any]) -> list[RouteProblem]:
    """The matchers that do not parse, in a file that does not fit the schema (so the model is not built)."""
    found: list[RouteProblem] = []
    items = data.get("routes")
    for index, item in enumerate(items if isinstance(items, list) else []):
        texts = item.get("match") if isinstance(item, Mapping) else None
        for text in texts if isinstance(texts, list) else []:
            try:
                parse_matcher(str(text))
            except ValueError as exc:
                found.append((_position(root, ["routes", index])[0], 1, f"routes/{index}/match: {exc}"))
    return found


def _position(node: Any, path: list[Any]) -> tuple[int, int]:
    """Line and column (1-based) of the value at ``path`` in a composed YAML tree, or its nearest parent's."""
    for part in path:
        children = None
        if isinstance(node, yaml.MappingNode):
            children = next((v for k, v in node.value if getattr(k, "value", None) == part), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            children = node.value[part]
        if children is None:
            break
        node = children
    mark = getattr(node, "start_mark", None)
    return (mark.line + 1, mark.column + 1) if mark else (1, 1)


def check_playbooks(routes: Routes, load: Callable[[str], Playbook]) -> list[RouteProblem]:
    """What the routes ask of their playbooks that the playbooks do not have.

    ``load`` returns the playbook of a name (raising ``IrxError`` when there is none or it is invalid).
    """
    problems: list[RouteProblem] = []
    for index, route in enumerate(routes.routes):
        line, where = route.line or 1, f"routes/{index}"
        try:
            playbook = load(route.playbook)
        except IrxError as exc:
            problems.append((line, 1, f"{where}/playbook: {exc}"))
            continue
        problems += [
            (line, 1, f"{where}/params/{name}: playbook {playbook.name} has no param {name!r}")
            for name in route.params
            if name not in playbook.params
        ]
        gated = {step.id for step in playbook.steps if step.approval_required}
        problems += [
            (line, 1, f"{where}/approve: {step!r} is not a step of {playbook.name} with an approval gate"
             + (f" (gated steps: {', '.join(sorted(gated))})" if gated else ""))
            for step in route.approve
            if step not in gated
        ]  # fmt: skip
    return problems

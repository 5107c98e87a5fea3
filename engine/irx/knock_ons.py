"""One cause, one problem: fold the problems a single mistake causes into the first report of it.

Two kinds are folded, both sound (the folded problems disappear only into one that names their place):

- the same cause in several places: an unknown param, step, target, name or filter, an unknown result field,
  read in five templates, is one mistake. It is reported once, at its first place, with the others listed
  (``(also: 14:34, 26:21)``).
- a misspelt key in a step and what its absence causes in that same step: ``comand:`` is an unknown key
  (with "did you mean 'command'?"), so the step "has no action" and "runs on the control node"; ``onn:``
  makes the step miss its ``on:``. Those follow from the typo and are listed with it.

A problem is only folded into one at least as severe, so the exit code and the error count's meaning
(an error stays reported as an error) do not change; every position stays where it was found.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from irx.document import Document
from irx.model import ACTIONS, PHASES
from irx.problems import Problem

# rule -> the part of its message that names the cause (the same text in every place it is read)
_CAUSES: dict[str, re.Pattern[str]] = {
    "unknown-param": re.compile(r"unknown param '[^']*'"),
    "unknown-step": re.compile(r"no step '[^']*'"),
    "unknown-target": re.compile(r"unknown target '[^']*'"),
    "unknown-name": re.compile(r"unknown name '[^']*'"),
    "unknown-filter": re.compile(r"No (?:filter|test) named '[^']*'"),
    "unknown-result-field": re.compile(r"steps\.\S+ is not a result field"),
}
_SUGGESTION = re.compile(r"did you mean '([^']+)'\?")
_SEVERITY = {"error": 1, "warning": 0}


def fold(problems: Sequence[Problem], doc: Document | None) -> list[Problem]:
    """``problems`` of one file with the knock-ons folded into their cause, in the original order."""
    if len(problems) < 2:  # the common case, a clean file: nothing to fold, nothing to compute
        return list(problems)
    typo = doc is not None and any(p.rule == "schema-unknown-key" for p in problems)
    folded = _typo_consequences(list(problems), doc) if typo and doc is not None else list(problems)
    return _same_cause(folded)


def _fold_into(root: Problem, others: Sequence[Problem]) -> Problem:
    also = tuple(sorted({*root.also, *((p.line, p.col, p.rule) for p in others), *(a for p in others for a in p.also)}))
    return Problem(root.path, root.line, root.col, root.rule, root.message, root.level, also)


def _same_cause(problems: list[Problem]) -> list[Problem]:
    groups: dict[tuple[str, str, str], list[Problem]] = {}
    for problem in problems:
        pattern = _CAUSES.get(problem.rule)
        found = pattern.search(problem.message) if pattern is not None else None
        if found is not None:
            groups.setdefault((problem.rule, problem.level, found.group(0)), []).append(problem)
    dropped: set[int] = set()
    replaced: dict[int, Problem] = {}
    for group in groups.values():
        if len(group) > 1:
            first, *rest = sorted(group)
            replaced[id(first)] = _fold_into(first, rest)
            dropped.update(id(p) for p in rest)
    return [replaced.get(id(p), p) for p in problems if id(p) not in dropped]


def _step_spans(doc: Document) -> list[tuple[int, int, tuple[str, int]]]:
    """(first line, last line, (phase, index)) of every step, from the positions the reader kept."""
    starts = sorted(
        (line, path) for path, (line, _) in doc.values.items() if len(path) == 2 and path[0] in PHASES
        if isinstance(path[1], int)
    )  # fmt: skip
    bounds = sorted({line for path, (line, _) in doc.keys.items() if len(path) == 1} | {s for s, _ in starts})
    spans = []
    for line, path in starts:
        after = [b for b in bounds if b > line]
        spans.append((line, (after[0] - 1) if after else 1 << 30, (str(path[0]), int(path[1]))))
    return spans


def _caused_by_missing(problem: Problem, key: str) -> bool:
    """Whether ``problem`` is what a step without ``key`` gets (the key was misspelt)."""
    if key in ACTIONS:
        return (problem.rule == "schema-action" and "has no action" in problem.message) or problem.rule == "ignored-on"
    if problem.rule == "schema-required":
        return f"'{key}'" in problem.message or (key == "on" and "add 'on:" in problem.message)
    return False


def _typo_consequences(problems: list[Problem], doc: Document) -> list[Problem]:
    spans = _step_spans(doc)

    def step_of(problem: Problem) -> tuple[str, int] | None:
        return next((step for first, last, step in spans if first <= problem.line <= last), None)

    dropped: set[int] = set()
    replaced: dict[int, Problem] = {}
    for root in problems:
        suggestion = _SUGGESTION.search(root.message) if root.rule == "schema-unknown-key" else None
        step = step_of(root) if suggestion is not None else None
        if suggestion is None or step is None:
            continue
        caused = [
            p for p in problems
            if p is not root and id(p) not in dropped and step_of(p) == step
            and _SEVERITY[p.level] <= _SEVERITY[root.level] and _caused_by_missing(p, suggestion.group(1))
        ]  # fmt: skip
        if caused:
            replaced[id(root)] = _fold_into(replaced.get(id(root), root), caused)
            dropped.update(id(p) for p in caused)
    return [replaced.get(id(p), p) for p in problems if id(p) not in dropped]

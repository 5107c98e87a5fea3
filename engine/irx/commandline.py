"""Where a shell script would put an environment variable's value on a command line.

Used by the ``secret-on-command-line`` rule: a step's ``env:`` reaches the host process through its
environment (irx_command sets it there, readable only by the same user), but ``psql "$DATABASE_URL"``
expands it into psql's argv, which every user of the host can read with ``ps``. This is a lint, not a
shell parser: it reads the script line by line (continuations joined), skips here-document bodies (they go
to stdin), and for each ``$NAME`` / ``${NAME...}`` finds the simple command it belongs to. A reference is
allowed where the value stays inside the shell: as an argument of a builtin that prints or tests it
(``printf``, ``echo``, ``test``/``[``, ``unset``, ``export``, ``local``, ``read``) or in a plain assignment
(``X=$NAME``). Everything else is reported, so an unusual but safe construct may need rewriting; an unsafe
one is never silently accepted by the shapes above.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Set
from dataclasses import dataclass

# Builtins in bash and dash: their arguments never become another process's argv. Not ``set``: ``set --
# "$SECRET"`` keeps it in "$@", which a later command line expands.
SAFE_BUILTINS = frozenset({"printf", "echo", "test", "[", "[[", "unset", "export", "local", "read", "case", ":"})
_KEYWORDS = frozenset({"if", "then", "elif", "else", "do", "while", "until", "!", "{", "time", "exec"})
_HEREDOC = re.compile(r"<<(-?)\s*(['\"]?)([A-Za-z_][A-Za-z0-9_]*)\2")
_REFERENCE = re.compile(r"\$(?:\{#?([A-Za-z_][A-Za-z0-9_]*)[^}]*\}|([A-Za-z_][A-Za-z0-9_]*))")
# What starts a new simple command: pipes, lists, subshells, command substitution, backquotes.
_SEPARATOR = re.compile(r"\|\|?|&&|;|&|\(|\)|`|\$\(")
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\+?=")


@dataclass(frozen=True)
class Exposure:
    name: str  # the environment variable
    line: int  # 1-based line in the script
    command: str  # the command word whose argv would carry it ("" when unknown)


def _logical_lines(script: str) -> Iterator[tuple[int, str]]:
    """(first line number, text) with backslash-newline continuations joined."""
    pending: list[str] = []
    start = 1
    for number, line in enumerate(script.splitlines(), 1):
        if not pending:
            start = number
        if line.endswith("\\") and not line.endswith("\\\\"):
            pending.append(line[:-1])
            continue
        pending.append(line)
        yield start, " ".join(pending)
        pending = []
    if pending:
        yield start, " ".join(pending)


def _command_word(segment: str) -> str:
    """The command a simple command runs: its first word after keywords and assignments."""
    for word in segment.split():
        word = word.strip("\"'")
        if word in _KEYWORDS:
            continue
        if _ASSIGNMENT.match(word):
            continue
        return word
    return ""  # nothing but assignments (X=$NAME): stays in the shell


def exposures(script: str, names: Set[str]) -> list[Exposure]:
    """Every reference to one of ``names`` that would become part of a command line."""
    found: list[Exposure] = []
    heredoc: tuple[str, bool] | None = None  # (delimiter, tabs stripped)
    for number, line in _logical_lines(script):
        if heredoc is not None:
            delimiter, strip_tabs = heredoc
            if (line.lstrip("\t") if strip_tabs else line) == delimiter:
                heredoc = None
            continue
        opened = _HEREDOC.search(line)
        for match in _REFERENCE.finditer(line):
            name = match.group(1) or match.group(2)
            if name not in names:
                continue
            before = line[: match.start()]
            cut = max((m.end() for m in _SEPARATOR.finditer(before)), default=0)
            segment = before[cut:]
            word = _command_word(segment)
            if not word and segment.split():
                continue  # X=$NAME (alone, or as an environment prefix of a command): stays out of argv
            if word in SAFE_BUILTINS:
                continue
            found.append(Exposure(name, number, word or match.group(0)))
        if opened is not None:
            heredoc = (opened.group(3), opened.group(1) == "-")
    return found

"""Who may approve a gated step, and how many different people must (schemas/approvers.schema.json).

An approvers file is trusted configuration, like a routes file; it also holds the approval page's password
hashes, so it is refused when anyone but its owner may read it. A gate's ``Rule`` is merged per key from the
most specific level that sets it: the playbook's step, the playbook, its severity, the default; a step's own
``approval.approvals`` in the playbook is a minimum the file can raise, never lower.

Identities: the approval page's are login names; ``irx approve``'s are ``user@host`` and match on ``user``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from irx.errors import UsageError
from irx.inbox import account_of

__all__ = ["ANYONE", "Approvers", "Rule", "User", "account_of", "anyone", "hash_password", "load_approvers"]

# scrypt's cost for new hashes: 16 MiB and about 50 ms per check. Hashes read from the file are capped so a
# hash cannot make one login cost more than a few hundred MiB of memory.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
MAX_N, MAX_R, MAX_P = 2**17, 16, 4
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,63}")
_SEVERITIES = ("SEV1", "SEV2", "SEV3", "SEV4")
_PRIORITIES = {"P0": "SEV1", "P1": "SEV2", "P2": "SEV3", "P3": "SEV4"}


@dataclass(frozen=True)
class User:
    name: str  # account name; for `irx approve` it is the unix user (identity() before '@')
    groups: tuple[str, ...]
    password_hash: str | None  # for the web page login; None: this user cannot log in to the page


@dataclass(frozen=True)
class Rule:
    approvers: tuple[str, ...]  # "alice", "group:dba"; empty tuple = anyone may approve
    approvals: int = 1  # how many different people must approve
    requester_may_approve: bool = True  # False: the run's operator's approval does not count

    def describe(self) -> str:
        """The rule in words, for messages: ``2 approvals from group:dba, not the requester``."""
        who = ", ".join(self.approvers) if self.approvers else "anyone"
        count = f"{self.approvals} approval{'s' if self.approvals != 1 else ''}"
        return f"{count} from {who}" + ("" if self.requester_may_approve else ", not the requester")


ANYONE = Rule(())


@dataclass(frozen=True)
class _Level:
    """What one level of the policy sets (None: it leaves the key to a less specific level)."""

    approvers: tuple[str, ...] | None = None
    approvals: int | None = None
    requester_may_approve: bool | None = None

    @classmethod
    def of(cls, raw: Mapping[str, Any] | None) -> _Level:
        raw = raw or {}
        found = raw.get("approvers")
        return cls(tuple(found) if found is not None else None, raw.get("approvals"), raw.get("requester_may_approve"))


@dataclass(frozen=True)
class Approvers:
    users: Mapping[str, User]
    default: _Level = field(default_factory=_Level)
    severity: Mapping[str, _Level] = field(default_factory=dict)
    playbooks: Mapping[str, tuple[_Level, Mapping[str, _Level]]] = field(default_factory=dict)

    def verify_password(self, name: str, password: str) -> User | None:
        """The user ``name`` if ``password`` is theirs, else None. Costs one scrypt whoever asks: an unknown
        name, or a user without a password, is checked against a dummy hash, so timing tells nothing."""
        user = self.users.get(name)
        stored = user.password_hash if user is not None and user.password_hash else _DUMMY_HASH
        ok = _check_password(stored, password)
        return user if ok and user is not None and user.password_hash else None

    def rule_for(self, playbook: str, severity: str, step: str, declared: int | None = None) -> Rule:
        """The rule for ``step`` of ``playbook`` (whose severity is ``severity``); ``declared``: the step's own
        ``approval.approvals``, a minimum."""
        book, steps = self.playbooks.get(playbook, (_Level(), {}))
        levels = [steps.get(step, _Level()), book, self.severity.get(_PRIORITIES.get(severity, severity), _Level())]
        levels.append(self.default)
        approvers = next((lv.approvers for lv in levels if lv.approvers is not None), ())
        approvals = next((lv.approvals for lv in levels if lv.approvals is not None), 1)
        requester = next((lv.requester_may_approve for lv in levels if lv.requester_may_approve is not None), True)
        return Rule(approvers, max(approvals, declared or 1), requester)

    def eligible(self, rule: Rule) -> list[str] | None:
        """The accounts of this file that may approve under ``rule`` (groups resolved); None: anyone."""
        if not rule.approvers:
            return None
        return sorted(name for name in self.users if self.may_approve(rule, name))

    def may_approve(self, rule: Rule, name: str) -> bool:
        """Whether identity ``name`` (a login name, or ``user@host``) is one of ``rule``'s approvers."""
        account = account_of(name)
        if not rule.approvers:
            return True
        if account in rule.approvers:
            return True
        user = self.users.get(account)
        return user is not None and any(f"group:{group}" in rule.approvers for group in user.groups)


def anyone() -> Approvers:
    """The policy without a file: anyone may approve, once (unless a step declares more)."""
    return Approvers({})


def hash_password(password: str) -> str:
    """A new salted scrypt hash of ``password``: ``scrypt$N$r$p$<salt b64>$<hash b64>``."""
    salt = os.urandom(16)
    digest = _scrypt(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    b64 = base64.b64encode
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${b64(salt).decode()}${b64(digest).decode()}"


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=129 * r * n * p + 2**20, dklen=32)


def _parse_hash(text: str) -> tuple[int, int, int, bytes, bytes] | str:
    """The parts of a stored hash, or why it is not one irx accepts."""
    parts = text.split("$")
    if len(parts) != 6 or parts[0] != "scrypt":
        return "not a hash from irx hash-password (scrypt$N$r$p$SALT$HASH)"
    try:
        n, r, p = int(parts[1]), int(parts[2]), int(parts[3])
        salt, digest = base64.b64decode(parts[4], validate=True), base64.b64decode(parts[5], validate=True)
    except ValueError:
        return "not a hash from irx hash-password (scrypt$N$r$p$SALT$HASH)"
    if n < 2 or n & (n - 1) or n > MAX_N or not 1 <= r <= MAX_R or not 1 <= p <= MAX_P:
        return f"scrypt parameters out of range (N a power of 2 up to {MAX_N}, r 1..{MAX_R}, p 1..{MAX_P})"
    if len(salt) < 8 or len(digest) < 16:
        return "the salt or the hash is too short"
    return n, r, p, salt, digest


def _check_password(stored: str, password: str) -> bool:
    parsed = _parse_hash(stored)
    if isinstance(parsed, str):
        return False
    n, r, p, salt, digest = parsed
    return hmac.compare_digest(_scrypt(password, salt, n, r, p)[: len(digest)].ljust(len(digest), b"\0"), digest)


_DUMMY_HASH = "scrypt$16384$8$1$aXJ4LWR1bW15LXNhbHQ=$" + base64.b64encode(b"\0" * 32).decode()


def load_approvers(path: Path) -> Approvers:
    """The approvers in ``path``: ``UsageError`` for a file others may read, or every problem in it as
    ``path:line:col: message``."""
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise UsageError(f"{path}: cannot read the approvers file: {exc.strerror or exc}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise UsageError(
            f"{path}: the approvers file (it holds password hashes) is readable by others; chmod 600 {path}"
        )
    approvers, problems = check_approvers_file(path)
    if problems or approvers is None:
        shown = "; ".join(f"{path}:{line}:{col}: {message}" for line, col, message in problems[:5])
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        raise UsageError(shown + more)
    return approvers


def check_approvers_file(path: Path) -> tuple[Approvers | None, list[tuple[int, int, str]]]:
    """The approvers in ``path`` (None when it is not a valid approvers file) and every problem, sorted."""
    from jsonschema import Draft202012Validator

    from irx.document import read_document

    doc = read_document(path)
    if doc.problems:
        return None, sorted((p.line or 1, p.col or 1, p.message) for p in doc.problems)
    schema = json.loads(resources.files("irx").joinpath("schemas/approvers.schema.json").read_text(encoding="utf-8"))
    problems: list[tuple[int, int, str]] = []
    for error in Draft202012Validator(schema).iter_errors(doc.data):
        at = tuple(error.absolute_path)
        where = "/".join(map(str, at)) or "(top)"
        problems.append((*doc.position(at), f"{where}: {error.message}"))
    if problems:
        return None, sorted(problems)
    for at, message in _meaning_problems(doc.data):
        problems.append((*doc.position(at), f"{'/'.join(map(str, at))}: {message}"))
    if problems:
        return None, sorted(problems)
    return build_approvers(doc.data), []


def _meaning_problems(data: Mapping[str, Any]) -> list[tuple[tuple[str | int, ...], str]]:
    """What the schema cannot say: names that must be whole (no trailing newline), unique users, hashes irx
    can check, and rules that name only users and groups of the file."""
    found: list[tuple[tuple[str | int, ...], str]] = []
    users: dict[str, int] = {}
    groups: set[str] = set()
    for index, user in enumerate(data["users"]):
        name = user["name"]
        if not _NAME.fullmatch(name):
            found.append((("users", index, "name"), f"{name!r} is not an account name"))
        elif name in users:
            found.append((("users", index, "name"), f"{name!r} is already the name of users/{users[name]}"))
        users.setdefault(name, index)
        groups.update(user.get("groups", ()))
        parsed = _parse_hash(user["password"]) if "password" in user else None
        if isinstance(parsed, str):
            found.append((("users", index, "password"), parsed))
    policy = data.get("policy", {})
    levels: list[tuple[tuple[str | int, ...], Mapping[str, Any]]] = []
    if "default" in policy:
        levels.append((("policy", "default"), policy["default"]))
    levels += [(("policy", "severity", key), rule) for key, rule in policy.get("severity", {}).items()]
    for book, rule in policy.get("playbooks", {}).items():
        levels.append((("policy", "playbooks", book), rule))
        levels += [(("policy", "playbooks", book, "steps", s), r) for s, r in rule.get("steps", {}).items()]
    for at, rule in levels:
        for index, who in enumerate(rule.get("approvers", ())):
            kind, _, name = who.rpartition(":")
            if kind and name not in groups:
                found.append(((*at, "approvers", index), f"no user of this file is in group {name!r}"))
            elif not kind and who not in users:
                found.append(((*at, "approvers", index), f"{who!r} is not a user of this file"))
    return found


def build_approvers(data: Mapping[str, Any]) -> Approvers:
    """The model of a schema-valid approvers document."""
    users = {
        u["name"]: User(u["name"], tuple(u.get("groups", ())), u.get("password")) for u in data["users"]
    }  # fmt: skip
    policy = data.get("policy", {})
    books = {
        name: (_Level.of(raw), {step: _Level.of(r) for step, r in raw.get("steps", {}).items()})
        for name, raw in policy.get("playbooks", {}).items()
    }
    severity = {key: _Level.of(raw) for key, raw in policy.get("severity", {}).items() if key in _SEVERITIES}
    return Approvers(users, _Level.of(policy.get("default")), severity, books)

"""Secret redaction: every secret value becomes ``******`` before anything is written or shown.

A ``Redactor`` knows the secret values of one run (secret params, webhook URLs, inventory passwords) and
masks them in strings and, recursively, in the keys and values of dicts, lists and tuples. Secrets leak in
more shapes than their plain text, so each one is also matched as:

- shell-quoted (``shlex.quote``), as it appears in a rendered ``shell:`` command when it contains a quote;
- URL-encoded (``urllib.parse.quote`` and ``quote_plus``), as it appears inside a URL or a form body;
- JSON-escaped, as it appears in a command's JSON output when it contains ``"`` or ``\\``;
- for a DSN-like secret (``postgresql://user:PASSWORD@host/db`` or ``host=db password=PASSWORD``), its
  password on its own (raw and percent-decoded), as error messages and ``PGPASSWORD`` show it.

Independently of the known secrets, the password of any URL with userinfo (``scheme://user:PASSWORD@host``)
is masked too: a credential in a URL is a secret whether or not the playbook declared it.

All forms of all secrets are compiled into one regular expression, longest first. Occurrences may overlap
(``abcdef`` and ``cdefgh`` in ``abcdefgh``): the union of every occurrence is masked, so no part of any
secret survives. Empty and whitespace-only values are ignored: masking every space would destroy the text
and protects nothing.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, quote_plus, unquote, urlsplit

MASK = "******"

# scheme://user:PASSWORD@host -- the password group stops at the characters that end userinfo.
_URL_PASSWORD = re.compile(r"(?P<prefix>\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s/?#@:]*:)(?P<password>[^\s/?#@]+)@")
# libpq keyword/value connection strings: password=VALUE or password='quoted value'.
_KEYWORD_PASSWORD = re.compile(r"(?:^|\s)password\s*=\s*(?:'(?P<quoted>(?:[^'\\]|\\.)*)'|(?P<bare>\S+))")


def secret_forms(secret: str) -> set[str]:
    """Every text form in which ``secret`` may appear: plain, shell-quoted, URL-encoded, JSON-escaped, and
    for a DSN its password. Forms that contain the plain secret are left out: masking the plain text already
    covers them and keeps the surrounding quotes readable (``psql '******'``)."""
    forms = {secret}
    for form in (
        shlex.quote(secret),
        quote(secret, safe=""),
        quote(secret),
        quote_plus(secret),
        json.dumps(secret)[1:-1],
    ):
        if secret not in form:
            forms.add(form)
    for password in _dsn_passwords(secret):
        if password.strip() and password != secret:
            forms |= secret_forms(password)
    return forms


def credentials_in(text: str) -> set[str]:
    """The passwords a DSN-like text carries (``scheme://user:PASSWORD@host``, ``password=PASSWORD``)."""
    return _dsn_passwords(text)


def _dsn_passwords(text: str) -> set[str]:
    passwords: set[str] = set()
    if "://" in text:
        try:
            password = urlsplit(text.strip()).password
        except ValueError:  # not a URL after all (bad port, bad IPv6 literal)
            password = None
        if password:
            passwords |= {password, unquote(password)}
    for match in _KEYWORD_PASSWORD.finditer(text):
        value = match.group("quoted")
        if value is not None:
            passwords.add(re.sub(r"\\(.)", r"\1", value))
        else:
            passwords.add(match.group("bare"))
    return passwords


class Redactor:
    """Masks a run's secrets in strings and nested data; cheap when the text holds no secret.

    ``secrets`` may hold non-strings (a secret integer PIN): their ``str()`` is the secret. ``None``, empty
    and whitespace-only values are ignored. ``url_passwords`` also masks the password of any URL with
    userinfo, declared secret or not.
    """

    def __init__(self, secrets: Iterable[object] = (), *, url_passwords: bool = True) -> None:
        self._secrets: frozenset[str] = frozenset()
        self._pattern: tuple[re.Pattern[str], re.Pattern[str]] | None = None
        self._url_passwords = url_passwords
        self.add(*secrets)

    def add(self, *secrets: object) -> None:
        """Add secrets learnt during the run; the new pattern replaces the old one in a single assignment,
        so a thread redacting at the same time sees either the old or the new set, never a broken one."""
        values = {secret if isinstance(secret, str) else str(secret) for secret in secrets if secret is not None}
        values = {value for value in values if value.strip()} - self._secrets
        if not values:
            return
        merged = self._secrets | values
        forms = set().union(*(secret_forms(secret) for secret in merged))
        # Longest first: at each position the alternation then matches the longest secret starting there.
        ordered = sorted((form for form in forms if form.strip()), key=lambda form: (-len(form), form))
        alternation = "|".join(map(re.escape, ordered))
        # The plain pattern finds the first occurrence fast (most text holds none); from there a lookahead
        # finds every start position, overlapping ones included, and the spans are merged.
        self._pattern = (re.compile(alternation), re.compile(f"(?=({alternation}))"))
        self._secrets = merged

    def __len__(self) -> int:
        """The number of distinct secret values (forms not counted)."""
        return len(self._secrets)

    def redact_text(self, text: str) -> str:
        """``text`` with every occurrence of every secret form, and every URL password, masked."""
        pattern = self._pattern
        if pattern is not None:
            text = _mask_spans(text, pattern)
        if self._url_passwords and "://" in text:
            text = _URL_PASSWORD.sub(_mask_url_password, text)
        return text

    def exposes(self, text: str) -> bool:
        """Whether ``text`` holds a secret (in any of its forms) or a URL password."""
        return self.redact_text(text) != text

    def redact(self, value: Any) -> Any:
        """``value`` with secrets masked in every string, recursively through dicts (keys too), lists and
        tuples. A number or other scalar whose text contains a secret becomes its masked text; anything
        else is returned as is. Containers are copied, never modified in place."""
        if isinstance(value, str):
            return self.redact_text(value)
        if isinstance(value, dict):
            redacted: dict[Any, Any] = {}
            for key, item in value.items():
                new_key = self.redact(key)
                if new_key in redacted:  # two keys masked to the same text: keep both entries
                    new_key = _unused_key(f"{new_key}", redacted)
                redacted[new_key] = self.redact(item)
            return redacted
        if isinstance(value, list):
            return [self.redact(item) for item in value]
        if isinstance(value, tuple):
            return tuple(self.redact(item) for item in value)
        if isinstance(value, int | float) and not isinstance(value, bool) and self._pattern is not None:
            text = str(value)
            masked = self.redact_text(text)
            return value if masked == text else masked
        return value


def _mask_spans(text: str, patterns: tuple[re.Pattern[str], re.Pattern[str]]) -> str:
    plain, overlapping = patterns
    first = plain.search(text)
    if first is None:
        return text
    parts: list[str] = []
    done = 0  # text[:done] has been emitted
    span_start = span_end = -1
    for match in overlapping.finditer(text, first.start()):
        start = match.start()
        end = start + len(match.group(1))
        if start <= span_end:  # overlaps or touches the current span: extend it
            span_end = max(span_end, end)
            continue
        if span_end >= 0:
            parts += (text[done:span_start], MASK)
            done = span_end
        span_start, span_end = start, end
    if span_end < 0:
        return text
    parts += (text[done:span_start], MASK, text[span_end:])
    return "".join(parts)


def _unused_key(key: str, taken: dict[Any, Any]) -> str:
    number = 2
    while f"{key} ({number})" in taken:
        number += 1
    return f"{key} ({number})"


def _mask_url_password(match: re.Match[str]) -> str:
    return f"{match.group('prefix')}{MASK}@"

"""Secret redaction: every form of every secret masked, in text and nested data, overlaps included."""

from __future__ import annotations

import json
import shlex
import threading
import time
from urllib.parse import quote, quote_plus

import pytest
from hypothesis import given
from hypothesis import strategies as st

from irx.redact import MASK, Redactor, secret_forms


def test_plain_secret_is_masked_everywhere_in_a_string() -> None:
    redactor = Redactor(["hunter2"])
    assert redactor.redact_text("pw=hunter2; again hunter2.") == "pw=******; again ******."


def test_text_without_secrets_is_returned_unchanged() -> None:
    text = "connections: 42 active\n"
    assert Redactor(["hunter2"]).redact_text(text) is text
    assert Redactor([]).redact_text(text) is text


@pytest.mark.parametrize(
    "secret",
    [
        "p@ss.w*rd+(x)?",
        "a|b",
        "[abc]{2}",
        "^start$",
        "back\\slash\\d",
        "(?P<x>y)",
        "dollar$1\\1",
    ],
)
def test_regex_metacharacters_are_literal(secret: str) -> None:
    redactor = Redactor([secret])
    assert redactor.redact_text(f"<{secret}>") == f"<{MASK}>"
    # The metacharacters mean nothing: text the secret would match as a regex stays.
    assert redactor.redact_text("abcxyz") == "abcxyz"


def test_longest_secret_wins_over_its_prefix() -> None:
    redactor = Redactor(["abc", "abcdef"])
    assert redactor.redact_text("xabcdefx abc") == f"x{MASK}x {MASK}"


def test_overlapping_secrets_leave_no_fragment() -> None:
    redactor = Redactor(["abcdef", "cdefgh"])
    assert redactor.redact_text("0abcdefgh9") == f"0{MASK}9"
    # A secret inside another, and chains of overlaps.
    assert Redactor(["xyz", "wxyz0"]).redact_text("wxyz0") == MASK
    assert Redactor(["aab", "abb", "bbc"]).redact_text("-aabbc-") == f"-{MASK}-"


def test_repeated_overlapping_occurrences_of_one_secret() -> None:
    assert Redactor(["aa"]).redact_text("baaab") == f"b{MASK}b"


def test_nested_structures_keys_included_and_originals_untouched() -> None:
    redactor = Redactor(["s3cr3t"])
    data = {
        "cmd": "login s3cr3t",
        "s3cr3t-key": ["x", ("s3cr3t", 1), {"deep": ["y s3cr3t"]}],
        "n": 5,
        "ok": True,
        "none": None,
    }
    redacted = redactor.redact(data)
    assert redacted == {
        "cmd": f"login {MASK}",
        f"{MASK}-key": ["x", (MASK, 1), {"deep": [f"y {MASK}"]}],
        "n": 5,
        "ok": True,
        "none": None,
    }
    assert data["cmd"] == "login s3cr3t"  # copied, not modified in place


def test_keys_masked_to_the_same_text_are_all_kept() -> None:
    redacted = Redactor(["alpha1", "bravo2"]).redact({"alpha1": 1, "bravo2": 2})
    assert redacted == {MASK: 1, f"{MASK} (2)": 2}


def test_non_string_secrets_use_their_text() -> None:
    redactor = Redactor([123456, 2.5])
    assert redactor.redact_text("pin 123456 ratio 2.5") == f"pin {MASK} ratio {MASK}"
    assert redactor.redact({"pin": 123456, "other": 7}) == {"pin": MASK, "other": 7}


@pytest.mark.parametrize("ignored", ["", "   ", "\n", None])
def test_empty_and_blank_secrets_are_ignored(ignored: str | None) -> None:
    redactor = Redactor([ignored])
    assert len(redactor) == 0
    assert redactor.redact_text("a b\nc") == "a b\nc"


def test_one_character_secret_is_still_redacted() -> None:
    assert Redactor(["Q"]).redact_text("aQb") == f"a{MASK}b"


def test_shell_quoted_form_of_a_secret_with_quotes() -> None:
    secret = 'it\'s a "pass"'
    rendered = f"psql {shlex.quote(secret)} -c 'select 1'"
    assert secret not in rendered  # the rendered command does not contain the plain text
    assert Redactor([secret]).redact_text(rendered) == f"psql {MASK} -c 'select 1'"


def test_shell_quoted_simple_secret_keeps_its_quotes() -> None:
    assert Redactor(["pa ss"]).redact_text(f"echo {shlex.quote('pa ss')}") == f"echo '{MASK}'"


@pytest.mark.parametrize("encode", [lambda s: quote(s, safe=""), quote, quote_plus])
def test_url_encoded_forms(encode: object) -> None:
    secret = "p@ss w/rd&x=1"
    assert callable(encode)
    text = f"https://api.example/hook?token={encode(secret)}&next=1"
    redacted = Redactor([secret]).redact_text(text)
    assert redacted == f"https://api.example/hook?token={MASK}&next=1"


def test_json_escaped_form_in_command_output() -> None:
    secret = 'quo"te\\back'
    output = json.dumps({"password": secret})
    assert Redactor([secret]).redact_text(output) == '{"password": "******"}'


def test_dsn_secret_also_masks_its_password_alone() -> None:
    dsn = "postgresql://app:s3cr%40t@db.internal:5432/app?sslmode=require"
    redactor = Redactor([dsn])
    assert redactor.redact_text(f"connecting to {dsn}") == f"connecting to {MASK}"
    # psql echoes the password decoded, PGPASSWORD holds it raw, error messages show it encoded.
    assert redactor.redact_text("PGPASSWORD=s3cr@t psql") == f"PGPASSWORD={MASK} psql"
    assert redactor.redact_text("auth s3cr%40t failed") == f"auth {MASK} failed"


def test_keyword_dsn_secret_masks_its_password() -> None:
    redactor = Redactor(["host=db user=app password='pa ss' dbname=app"])
    assert redactor.redact_text("password authentication failed: pa ss") == f"password authentication failed: {MASK}"
    assert Redactor(["host=db password=hunter22"]).redact_text("hunter22") == MASK


def test_url_passwords_are_masked_even_when_not_declared() -> None:
    redactor = Redactor([])
    text = "fetching https://deploy:tok3n@git.example/repo.git and redis://:pw@cache:6379/0 ok"
    assert redactor.redact_text(text) == (
        f"fetching https://deploy:{MASK}@git.example/repo.git and redis://:{MASK}@cache:6379/0 ok"
    )
    # Userinfo without a password and plain URLs are left alone.
    untouched = "ssh://deploy@host/x https://example.com:8443/a@b"
    assert redactor.redact_text(untouched) == untouched
    assert Redactor([], url_passwords=False).redact_text(text) == text


def test_secrets_can_be_added_later() -> None:
    redactor = Redactor(["first-secret"])
    redactor.add("second-secret", "first-secret")
    assert len(redactor) == 2
    assert redactor.redact_text("first-secret second-secret") == f"{MASK} {MASK}"


def test_forms_of_a_plain_secret_are_just_itself() -> None:
    assert secret_forms("abcdef") == {"abcdef"}


def test_concurrent_add_and_redact() -> None:
    redactor = Redactor(["initial-secret"])
    errors: list[str] = []

    def reader() -> None:
        for _ in range(500):
            if "initial-secret" in redactor.redact_text("x initial-secret y"):
                errors.append("leaked")

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for thread in threads:
        thread.start()
    for number in range(50):
        redactor.add(f"added-{number:04d}")
    for thread in threads:
        thread.join()
    assert errors == []
    assert redactor.redact_text("added-0049") == MASK


def test_many_secrets_over_a_megabyte_stay_fast() -> None:
    secrets = [f"secret-{number:05d}-{'x' * (number % 30)}" for number in range(500)]
    redactor = Redactor(secrets)
    text = ("ordinary output line with nothing to hide 0123456789\n" * 20000) + secrets[-1]
    start = time.perf_counter()
    redacted = redactor.redact_text(text)
    elapsed = time.perf_counter() - start
    assert redacted.endswith(MASK)
    assert elapsed < 2.0, f"{elapsed:.2f}s to redact 1 MB with 500 secrets"


# Secrets drawn without "*": a secret made of mask characters could be recreated by the mask itself.
_alphabet = st.characters(codec="utf-8", exclude_characters="*", exclude_categories=["Cs"])
_secret = st.text(_alphabet, min_size=1, max_size=12).filter(lambda s: s.strip() != "")


@given(
    secrets=st.lists(_secret, min_size=1, max_size=5),
    pieces=st.lists(st.text(_alphabet, max_size=8), min_size=1, max_size=6),
)
def test_no_secret_survives_redaction(secrets: list[str], pieces: list[str]) -> None:
    text = "".join(piece + secrets[index % len(secrets)] for index, piece in enumerate(pieces))
    redacted = Redactor(secrets).redact_text(text)
    for secret in secrets:
        if secret.strip():
            assert secret not in redacted

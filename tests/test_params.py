"""Param values: -e parsing, types and checks, precedence, per-host values, secrets kept out of errors."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from irx.errors import ParamError, UsageError
from irx.model import Param, Playbook, build_playbook
from irx.params import InventoryLookup, Supplied, check, convert, parse_extra_vars, resolve

SECRET = "s3cr3t-Pa55'word"


def playbook(params: Mapping[str, Any]) -> Playbook:
    data = {
        "apiVersion": "irx/v1",
        "kind": "Playbook",
        "metadata": {"name": "demo", "title": "Demo", "severity": "SEV3"},
        "params": params,
        "diagnose": [{"id": "noop", "wait": "1s"}],
    }
    return build_playbook(data, Path("demo.yaml"), {})


def param(**spec: Any) -> Param:
    spec.setdefault("type", "string")
    return playbook({"p": spec}).params["p"]


def inventory(values: Mapping[str, Mapping[str, Any]]) -> InventoryLookup:
    """An inventory lookup over {host: {var: value}}."""

    def lookup(host: str, var: str) -> tuple[bool, Any]:
        found = values.get(host, {})
        return (var in found), found.get(var)

    return lookup


# --- -e ---------------------------------------------------------------------------------------------


def test_extra_vars_key_value_file_and_json_later_wins(tmp_path: Path) -> None:
    (tmp_path / "a.yml").write_text("port: 5432\nname: from-file\nunrelated: 1\n")
    (tmp_path / "b.json").write_text(json.dumps({"hosts": ["a", "b"]}))
    values = parse_extra_vars(
        ["name=first", f"@{tmp_path / 'a.yml'}", f"@{tmp_path / 'b.json'}", '{"flag": true}', "url=http://x/?a=b=c"]
    )
    assert values["name"] == Supplied("from-file", f"-e @{tmp_path / 'a.yml'}", text=False, strict=False)
    assert values["port"].value == 5432
    assert values["hosts"].value == ["a", "b"]
    assert values["flag"] == Supplied(True, "-e", text=False, strict=True)
    assert values["url"] == Supplied("http://x/?a=b=c", "-e", text=True, strict=True)  # split at the first =


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("port", "-e port: expected KEY=VALUE, @FILE or a JSON object"),
        ("hunter2 !x", "-e (option 1): expected KEY=VALUE, @FILE or a JSON object"),  # never echoed
        ("=5", "-e: '' is not a param name (expected KEY=VALUE)"),
        ("my-port=5", "-e: 'my-port' is not a param name (expected KEY=VALUE)"),
        ("@", "-e @: expected a file name after @"),
        ("@/no/such/file.yml", "-e @/no/such/file.yml: no such file"),
        ('{"a": ', "-e (option 1): not a valid JSON object: Expecting value at column 7"),
    ],
)
def test_bad_extra_vars_are_one_clear_error(item: str, message: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_extra_vars([item])
    assert str(caught.value) == message


def test_unreadable_and_malformed_files(tmp_path: Path) -> None:
    (tmp_path / "list.yml").write_text("- a\n- b\n")
    (tmp_path / "bad.yml").write_text(f"password: {SECRET}\n  nested: [\n")
    (tmp_path / "bin.yml").write_bytes(b"\xff\xfe\x00")
    cases = {
        f"@{tmp_path}": f"-e @{tmp_path}: is a directory, not a YAML or JSON file",
        f"@{tmp_path / 'list.yml'}": f"-e @{tmp_path / 'list.yml'}: must hold a mapping of param names to values",
        f"@{tmp_path / 'bin.yml'}": f"-e @{tmp_path / 'bin.yml'}: not UTF-8 text",
    }
    for item, message in cases.items():
        with pytest.raises(UsageError) as caught:
            parse_extra_vars([item])
        assert str(caught.value) == message
    with pytest.raises(UsageError) as caught:
        parse_extra_vars([f"@{tmp_path / 'bad.yml'}"])
    assert str(caught.value).startswith(f"-e @{tmp_path / 'bad.yml'}: not valid YAML or JSON: line 2:")
    assert SECRET not in str(caught.value)


def test_a_file_without_read_permission(tmp_path: Path) -> None:
    """Root reads files whatever their mode, so (as in CI) the check runs in a child that is not root."""
    import yaml  # loaded before dropping privileges: the child must not need to read site-packages

    assert yaml.__name__ == "yaml"
    import shutil
    import tempfile

    where = Path(tempfile.mkdtemp(prefix="irx-perm-"))  # traversable by anyone: only the file's mode refuses
    where.chmod(0o755)
    path = where / "locked.yml"
    path.write_text("a: 1\n")
    path.chmod(0)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: become nobody, try, report the message through the pipe
        os.close(read_end)
        message = "no error"
        try:
            if os.geteuid() == 0:
                os.setgid(65534)
                os.setuid(65534)
            parse_extra_vars([f"@{path}"])
        except UsageError as exc:
            message = str(exc)
        except BaseException as exc:  # anything else is reported, never raised in the forked test process
            message = f"{type(exc).__name__}: {exc}"
        os.write(write_end, message.encode())
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        message = pipe.read().decode()
    os.waitpid(pid, 0)
    shutil.rmtree(where)
    assert message == f"-e @{path}: permission denied"


# --- types --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "text", "value"),
    [
        ("string", " keep spaces ", " keep spaces "),
        ("integer", "42", 42),
        ("integer", " -7 ", -7),
        ("number", "2.5", 2.5),
        ("number", "3", 3),
        ("number", "1e3", 1000.0),
        ("boolean", "yes", True),
        ("boolean", "Off", False),
        ("boolean", "1", True),
        ("list", "a, b,,c", ["a", "b", "c"]),
        ("list", '["a", 1]', ["a", 1]),
        ("list", "", []),
    ],
)
def test_text_converts_to_the_param_type(kind: str, text: str, value: Any) -> None:
    assert convert(param(type=kind), text, text=True) == value


@pytest.mark.parametrize(
    ("kind", "raw", "message"),
    [
        ("integer", "1.5", "'1.5' is not an integer"),
        ("integer", "12abc", "'12abc' is not an integer"),
        ("number", "nan", "'nan' is not a number"),
        ("boolean", "maybe", "'maybe' is not a boolean (true/false, yes/no, on/off, 1/0)"),
        ("list", "[1,", "is not a JSON list: Expecting value at column 4"),
        ("list", '["a"] b', "is not a JSON list: Extra data at column 7"),
    ],
)
def test_wrong_text_says_what_is_wrong(kind: str, raw: str, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        convert(param(type=kind), raw, text=True)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("kind", "raw", "ok"),
    [
        ("string", 5432, "5432"),
        ("string", True, None),
        ("integer", True, None),
        ("integer", 3.0, 3),
        ("number", False, None),
        ("boolean", 1, None),
        ("list", ("a",), ["a"]),
        ("list", {"a": 1}, None),
    ],
)
def test_typed_values_are_checked_not_coerced_blindly(kind: str, raw: Any, ok: Any) -> None:
    if ok is None:
        with pytest.raises(ValueError, match="is not"):
            convert(param(type=kind), raw, text=False)
    else:
        assert convert(param(type=kind), raw, text=False) == ok


@given(st.integers(min_value=-(10**30), max_value=10**30))
def test_integers_round_trip_through_text(number: int) -> None:
    assert convert(param(type="integer"), str(number), text=True) == number


@pytest.mark.parametrize(
    ("spec", "value", "message"),
    [
        ({"type": "string", "choices": ["a", "b"]}, "c", '\'c\' is not one of the choices: "a", "b"'),
        ({"type": "list", "choices": ["a", "b"]}, ["a", "x"], '\'x\' is not one of the choices: "a", "b"'),
        ({"type": "integer", "minimum": 1}, 0, "0 is below the minimum 1"),
        ({"type": "number", "maximum": 2.5}, 3, "3 is above the maximum 2.5"),
        ({"type": "string", "pattern": "[a-z]+"}, "abc1", "'abc1' does not match the pattern [a-z]+"),
        ({"type": "string", "format": "uri"}, "not a uri", "'not a uri' is not a valid uri"),
        ({"type": "string", "format": "uri"}, "example.com/x", "'example.com/x' is not a valid uri"),
        ({"type": "string", "format": "hostname"}, "-bad-.example", "'-bad-.example' is not a valid hostname"),
        # A trailing newline (an alert label, a file) is not part of a hostname: `$` would have let it through.
        ({"type": "string", "format": "hostname"}, "db1\n", "'db1\\n' is not a valid hostname"),
        ({"type": "string", "format": "ip"}, "10.0.0.256", "'10.0.0.256' is not a valid ip"),
    ],
)
def test_checks_say_what_is_wrong(spec: dict[str, Any], value: Any, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        check(param(**spec), value)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("fmt", "value"),
    [
        ("uri", "https://example.com/health"),
        ("uri", "postgresql://user:pw@db:5432/app"),
        ("uri", "redis://127.0.0.1:6390/0"),
        ("hostname", "db01.prod.example.net"),
        ("hostname", "localhost"),
        ("ip", "10.0.0.1"),
        ("ip", "::1"),
    ],
)
def test_valid_formats_pass(fmt: str, value: str) -> None:
    check(param(format=fmt), value)


# --- precedence and hosts -----------------------------------------------------------------------------

PARAMS = {
    "port": {"type": "integer", "default": 1, "env": "IRX_TEST_PORT"},
    "url": {"type": "string", "format": "uri", "default": "http://default/"},
}


@pytest.mark.parametrize(
    ("cli", "inv", "env", "expected", "source"),
    [
        ("4", 3, "2", 4, "-e"),
        (None, 3, "2", 3, "inventory"),
        (None, None, "2", 2, "env IRX_TEST_PORT"),
        (None, None, "", 1, "default"),  # an empty environment variable counts as unset
        (None, None, None, 1, "default"),
    ],
)
def test_precedence_cli_inventory_env_default(
    cli: str | None, inv: int | None, env: str | None, expected: int, source: str
) -> None:
    supplied = parse_extra_vars([f"port={cli}"]) if cli else {}
    hostvars = {"h1": {"port": inv} if inv is not None else {}}
    environ = {"IRX_TEST_PORT": env} if env is not None else {}
    values = resolve(playbook(PARAMS), supplied, ["h1"], inventory(hostvars), environ)
    assert values.run["port"].value == expected
    assert values.run["port"].source == source
    assert values.host_value("port", "h1").value == expected  # type: ignore[union-attr]


def test_inventory_strings_are_converted_like_the_command_line() -> None:
    # INI group vars arrive as strings
    values = resolve(playbook(PARAMS), {}, ["h1"], inventory({"h1": {"port": "6432"}}), {})
    assert values.run["port"].value == 6432


def test_hosts_that_disagree_get_their_own_value_and_the_control_node_none() -> None:
    hostvars = {"db1": {"port": 5432}, "db2": {"port": 6432}, "app1": {}}
    values = resolve(playbook(PARAMS), {}, ["db1", "db2", "app1"], inventory(hostvars), {"IRX_TEST_PORT": "7"})
    assert values.varies("port")
    assert values.host_value("port", "db1").value == 5432  # type: ignore[union-attr]
    assert values.host_value("port", "db2").value == 6432  # type: ignore[union-attr]
    assert values.host_value("port", "app1").value == 7  # type: ignore[union-attr]  # env: no agreed value
    assert "port" not in values.run
    assert values.hints["port"] == (
        "params.port differs between hosts (db1: 5432; db2: 6432) and this step runs on the control node; "
        "pass -e port=... to choose"
    )


def test_hosts_that_agree_give_the_run_their_value_and_hosts_without_it_too() -> None:
    hostvars = {"db1": {"port": 5432}, "db2": {"port": 5432}, "app1": {}}
    values = resolve(playbook(PARAMS), {}, ["db1", "db2", "app1"], inventory(hostvars), {})
    assert not values.varies("port")
    assert values.run["port"].value == 5432
    assert values.host_value("port", "app1").value == 5432  # type: ignore[union-attr]


def test_the_command_line_wins_on_every_host() -> None:
    hostvars = {"db1": {"port": 5432}, "db2": {"port": 6432}}
    values = resolve(playbook(PARAMS), parse_extra_vars(["port=9"]), ["db1", "db2"], inventory(hostvars), {})
    assert not values.varies("port")
    assert values.for_host("db2")["port"] == 9


def test_errors_name_the_param_and_where_the_value_came_from() -> None:
    cases = [
        ({"port": Supplied("x", "-e", text=True, strict=True)}, {}, {}, "param port (from -e): 'x' is not an integer"),
        ({}, {"h1": {"port": "x"}}, {}, "param port (from inventory, host h1): 'x' is not an integer"),
        ({}, {}, {"IRX_TEST_PORT": "x"}, "param port (from env IRX_TEST_PORT): 'x' is not an integer"),
        ({}, {"h1": {"url": "nope"}}, {}, "param url (from inventory, host h1): 'nope' is not a valid uri"),
    ]
    for supplied, hostvars, environ, message in cases:
        with pytest.raises(ParamError) as caught:
            resolve(playbook(PARAMS), supplied, ["h1"], inventory(hostvars), environ)
        assert str(caught.value) == message


def test_a_required_param_without_value_says_how_to_supply_it() -> None:
    book = playbook({"token": {"type": "string", "required": True, "secret": True, "env": "API_TOKEN"}})
    with pytest.raises(ParamError) as caught:
        resolve(book, {}, ["h1"], inventory({}), {})
    assert str(caught.value) == (
        "param token is required and has no value: set it with -e token=..., "
        "inventory variable token or environment variable API_TOKEN"
    )
    # one host supplying it is enough
    resolve(book, {}, ["h1", "h2"], inventory({"h2": {"token": "t0k3n"}}), {})


def test_an_unknown_key_value_param_is_an_error_but_a_shared_file_may_hold_others(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as caught:
        resolve(playbook(PARAMS), parse_extra_vars(["prot=5"]), ["h1"], inventory({}), {})
    assert str(caught.value) == "-e prot: demo has no param 'prot' (its params: port, url)"
    shared = tmp_path / "prod.yml"
    shared.write_text(yaml.safe_dump({"port": 3, "other_playbooks_param": "x"}))
    values = resolve(playbook(PARAMS), parse_extra_vars([f"@{shared}"]), ["h1"], inventory({}), {})
    assert values.run["port"].value == 3


def test_secret_values_never_appear_in_errors() -> None:
    book = playbook(
        {
            "pw": {"type": "string", "secret": True, "pattern": "[a-z]+", "env": "PW"},
            "pin": {"type": "integer", "secret": True},
            "mode": {"type": "string", "secret": True, "choices": ["a", "b"]},
        }
    )
    attempts = [
        ({"pw": Supplied(SECRET, "-e", text=True, strict=True)}, {}, {}),
        ({}, {"h1": {"pw": SECRET}}, {}),
        ({}, {}, {"PW": SECRET}),
        ({"pin": Supplied(SECRET, "-e", text=True, strict=True)}, {}, {}),
        ({"mode": Supplied(SECRET, "-e", text=True, strict=True)}, {}, {}),
    ]
    for supplied, hostvars, environ in attempts:
        with pytest.raises(ParamError) as caught:
            resolve(book, supplied, ["h1"], inventory(hostvars), environ)
        assert SECRET not in str(caught.value)
        assert "the value" in str(caught.value)


def test_secret_values_are_collected_for_redaction() -> None:
    book = playbook({"pw": {"type": "string", "secret": True}, "keys": {"type": "list", "secret": True}})
    values = resolve(
        book,
        parse_extra_vars(["keys=key-1,key-2"]),
        ["h1", "h2"],
        inventory({"h1": {"pw": "pw-one"}, "h2": {"pw": "pw-two"}}),
        {},
    )
    assert sorted(values.secret_values()) == ["key-1", "key-2", "pw-one", "pw-two"]


# --- values a host can carry ----------------------------------------------------------------------------


@pytest.mark.parametrize("secret", [False, True])
def test_a_value_longer_than_the_limit_is_a_param_error_naming_it(secret: bool) -> None:
    from irx.params import MAX_VALUE_BYTES

    book = playbook({"p": {"type": "string", "secret": secret}, "items": {"type": "list"}})
    at_limit = "é" * (MAX_VALUE_BYTES // 2)  # bytes, not characters, count
    resolved = resolve(book, {"p": Supplied(at_limit, "-e", text=True, strict=True)}, [], inventory({}), {})
    assert resolved.for_run()["p"] == at_limit
    with pytest.raises(ParamError) as raised:
        resolve(book, {"p": Supplied(at_limit + "x", "-e", text=True, strict=True)}, [], inventory({}), {})
    assert str(raised.value) == (
        f"param p (from -e): is {MAX_VALUE_BYTES + 1} bytes long; a param value may be at most 65536 bytes (64 KiB)"
    )
    with pytest.raises(ParamError, match=r"items .* at most 65536 bytes"):
        resolve(book, {"items": Supplied(["ok", "x" * 70_000], "-e", text=False, strict=True)}, [], inventory({}), {})


def test_a_nul_character_is_a_param_error_from_every_source() -> None:
    book = playbook({"p": {"type": "string"}, "s": {"type": "string", "secret": True, "env": "S"}})
    with pytest.raises(ParamError, match=r"param p \(from inventory, host h1\): 'a\\x00b' holds a NUL character"):
        resolve(book, {}, ["h1"], inventory({"h1": {"p": "a\0b"}}), {})
    with pytest.raises(ParamError) as raised:
        resolve(book, {}, [], inventory({}), {"S": "top\0secret"})
    assert str(raised.value) == (
        "param s (from env S): the value holds a NUL character, which no command line or environment can carry"
    )


def test_a_secret_too_short_to_mask_is_refused_but_empty_is_none() -> None:
    book = playbook({"s": {"type": "string", "secret": True, "default": ""}})
    assert resolve(book, {}, [], inventory({}), {}).for_run()["s"] == ""
    assert (
        resolve(book, {"s": Supplied("abcd", "-e", text=True, strict=True)}, [], inventory({}), {}).for_run()["s"]
        == "abcd"
    )
    with pytest.raises(ParamError, match=r"^param s \(from -e\): the value is a secret of fewer than 4 characters"):
        resolve(book, {"s": Supplied("x", "-e", text=True, strict=True)}, [], inventory({}), {})


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("postgresql://app:hunter2pw@db/app", "'postgresql://app:******@db/app'"),
        ("host=db password=hunter2pw", "'host=db password=******'"),
        ("redis://:hunter2pw@cache:6379", "'redis://:******@cache:6379'"),
    ],
)
def test_a_refused_value_is_quoted_without_the_password_it_holds(value: str, shown: str) -> None:
    """A DSN refused for carrying a password must not print that password in the error."""
    book = playbook({"dsn": {"type": "string", "pattern": "[^@=]*"}})
    with pytest.raises(ParamError) as raised:
        resolve(book, {"dsn": Supplied(value, "-e", text=True, strict=True)}, [], inventory({}), {})
    assert str(raised.value) == f"param dsn (from -e): {shown} does not match the pattern [^@=]*"
    assert "hunter2pw" not in str(raised.value)

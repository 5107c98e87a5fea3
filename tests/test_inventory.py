"""Inventories through ansible-core, compared with what Ansible's own commands say about the same files."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from irx.errors import InventoryError
from irx.inventory import MAGIC_VARS, load_inventory, resolve_source

CASES = Path(__file__).parent / "cases" / "inventories"
VENV_BIN = Path(sys.executable).parent

# Patterns of Ansible's pattern language, each run against every inventory below.
PATTERNS = [
    "all",
    "web",
    "app:dbservers",
    "prod:!web",
    "backend:&app",
    "web[0:2]",
    "web[-1]",
    "~(app|db).*",
    "*canary*",
    "dbservers,queue",
    "no_such_group",
]


def script_inventory(tmp_path: Path) -> Path:
    """An executable inventory script printing JSON, as Ansible's script plugin runs it."""
    data = {
        "web": {"hosts": ["web-1", "web-2", "web-3"], "vars": {"http_port": 8080}},
        "app": {"hosts": ["app-1", "app-2"], "vars": {"app_service": "api"}},
        "dbservers": {"hosts": ["db-1"]},
        "backend": {"children": ["app", "dbservers"]},
        "_meta": {"hostvars": {"db-1": {"pg_port": 6432}, "app-2": {"app_service": "api-canary"}}},
    }
    script = tmp_path / "inventory.py"
    script.write_text(
        f"#!{sys.executable}\n"
        "import json, sys\n"
        f"DATA = {data!r}\n"
        "if sys.argv[1:] == ['--list']:\n"
        "    print(json.dumps(DATA))\n"
        "else:\n"
        "    print(json.dumps({}))\n"
    )
    script.chmod(0o755)
    return script


KINDS = ["ini", "yaml", "dir", "script", "generator", "constructed"]


def inventories(tmp_path: Path) -> dict[str, Path]:
    return {
        "ini": CASES / "ranges.ini",
        "yaml": CASES / "shaped.yml",
        "dir": CASES / "prod-dir",
        "script": script_inventory(tmp_path),
        "generator": CASES / "generated.yml",
        "constructed": CASES / "constructed-dir",
    }


def ansible_list_hosts(inventory: Path, patterns: list[str], limit: str | None, tmp_path: Path) -> list[set[str]]:
    """The hosts ansible-playbook --list-hosts gives each pattern (one play per pattern, one process).

    ansible-playbook prints each play's hosts from a set: the order is lost, the membership is exact.
    """
    plays = [
        {"name": f"p{i}", "hosts": pattern, "gather_facts": False, "tasks": []} for i, pattern in enumerate(patterns)
    ]
    book = tmp_path / "list.yml"
    book.write_text(json.dumps(plays))
    command = [str(VENV_BIN / "ansible-playbook"), "-i", str(inventory), "--list-hosts", str(book)]
    if limit:
        command += ["--limit", limit]
    done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=120)
    assert done.returncode == 0, done.stderr
    found: list[set[str]] = []
    for block in re.split(r"\n\s*play #\d+ ", done.stdout)[1:]:
        match = re.search(r"hosts \((\d+)\):\n?((?:\s+\S+\n?)*)", block)
        assert match is not None, block
        hosts = match.group(2).split()
        assert len(hosts) == int(match.group(1))
        found.append(set(hosts))
    assert len(found) == len(patterns), done.stdout
    return found


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("limit", [None, "web*:app*", "backend"])
def test_patterns_target_the_hosts_ansible_targets(kind: str, limit: str | None, tmp_path: Path) -> None:
    inventory = inventories(tmp_path)[kind]
    if limit == "backend" and kind == "dir":
        limit = "prod:!web"  # prod-dir has no backend group
    expected = ansible_list_hosts(inventory, PATTERNS, limit, tmp_path)
    inv = load_inventory(str(inventory), limit)
    for pattern, hosts in zip(PATTERNS, expected, strict=True):
        ours = inv.hosts(pattern)
        assert set(ours) == hosts, pattern
        assert len(ours) == len(hosts), pattern


@pytest.mark.parametrize("kind", KINDS)
def test_hosts_come_in_ansibles_order(kind: str, tmp_path: Path) -> None:
    # The order decides serial batches: it must be the order ansible itself walks the hosts in.
    inventory = inventories(tmp_path)[kind]
    pattern = "web:app:dbservers:!*canary*"
    done = subprocess.run(
        [str(VENV_BIN / "ansible"), pattern, "-i", str(inventory), "--list-hosts"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    expected = done.stdout.split()[2:]  # "hosts (N):" then one name per line
    assert list(load_inventory(str(inventory)).hosts(pattern)) == expected


@pytest.mark.parametrize("kind", KINDS)
def test_host_vars_match_ansible_inventory_list(kind: str, tmp_path: Path) -> None:
    inventory = inventories(tmp_path)[kind]
    done = subprocess.run(
        [str(VENV_BIN / "ansible-inventory"), "-i", str(inventory), "--list"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    expected = _plain(json.loads(done.stdout)["_meta"]["hostvars"])
    inv = load_inventory(str(inventory))
    hosts = inv.hosts("all")
    assert sorted(hosts) == sorted(set(hosts) | set(expected))
    for host in hosts:
        ours = {k: v for k, v in inv.host_vars(host).items() if k not in MAGIC_VARS}
        assert ours == expected.get(host, {}), host


def _plain(value: Any) -> Any:
    """ansible-inventory --list writes a value it will not template (a constructed plugin's compose:) as
    {"__ansible_unsafe": VALUE}: that is its JSON encoding of the trust tag, the value is VALUE."""
    if isinstance(value, dict):
        if set(value) == {"__ansible_unsafe"}:
            return value["__ansible_unsafe"]
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def test_ranges_children_and_group_vars(tmp_path: Path) -> None:
    inv = load_inventory(str(CASES / "ranges.ini"))
    assert len(inv.hosts("web")) == 21
    assert inv.hosts("app")[-3:] == ("appa-canary", "appb-canary", "appc-canary")
    assert inv.groups() == ["app", "backend", "cache", "dbservers", "frontend", "prod", "queue", "web"]
    assert inv.host_groups("web07.example.net") == ("frontend", "prod", "web")
    # a child group's vars win over its parent's
    assert inv.host_vars("web07.example.net")["max_conn"] == 100
    assert inv.host_vars("db01")["max_conn"] == 50
    assert inv.host_vars("db04")["pg_port"] == 5433


def test_directory_inventory_reads_group_and_host_vars() -> None:
    inv = load_inventory(str(CASES / "prod-dir"))
    assert inv.host_vars("db01.prod.example.net")["max_conn"] == 1000  # host_vars over group_vars
    assert inv.host_vars("db02.prod.example.net")["max_conn"] == 500
    assert inv.host_vars("db02.prod.example.net")["pg_port"] == 6432  # group over all
    assert inv.host_vars("web01.prod.example.net")["pg_port"] == 5432


def test_values_are_templated_as_ansible_would() -> None:
    inv = load_inventory(str(CASES / "prod-dir"))
    assert inv.value("app03.prod.example.net", "health_url") == "http://app03.prod.example.net:8080/health"
    assert inv.value("web01.prod.example.net", "health_url") == "https://www.prod.example.net/health"


def test_an_undefined_name_in_an_inventory_value_names_host_and_variable(tmp_path: Path) -> None:
    source = tmp_path / "hosts.yml"
    source.write_text("all:\n  hosts:\n    h1:\n      url: 'http://{{ nope }}/'\n")
    inv = load_inventory(str(source))
    with pytest.raises(InventoryError, match=r"host h1: variable url: .*nope"):
        inv.value("h1", "url")


def test_limit_uses_ansible_patterns_and_refuses_an_empty_selection() -> None:
    inv = load_inventory(str(CASES / "ranges.ini"), "web[0:1]:db04")
    assert sorted(inv.hosts("all")) == ["db04", "web01.example.net", "web02.example.net"]
    assert len(inv.hosts("web", limited=False)) == 21
    with pytest.raises(InventoryError) as caught:
        load_inventory(str(CASES / "ranges.ini"), "nothing_here")
    assert str(caught.value) == (
        "--limit 'nothing_here' matches no host in inventory "
        f"{CASES / 'ranges.ini'}; its groups: app, backend, cache, dbservers, frontend, prod, queue, web"
    )


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("broken-vars.ini", "ini plugin: Expected key=value host variable assignment, got: http_port"),
        ("broken.yml", "auto plugin: line 4: YAML parsing failed: While parsing a flow sequence"),
        ("broken-shape.yml", 'yaml plugin: Invalid "hosts" entry for "all" group, requires a dictionary, found "list"'),
    ],
)
def test_a_malformed_inventory_is_one_clear_error(name: str, message: str) -> None:
    with pytest.raises(InventoryError) as caught:
        load_inventory(str(CASES / name))
    text = str(caught.value)
    assert text.startswith(f"inventory {CASES / name}: {message}")
    assert "\n" not in text


def test_one_bad_file_in_a_directory_fails_the_whole_inventory(tmp_path: Path) -> None:
    # Ansible would warn and carry on without the bad file's hosts; irx refuses to plan on half an inventory.
    (tmp_path / "good.ini").write_text("[web]\nweb1\n")
    (tmp_path / "bad.ini").write_text("[db]\ndb1 port\n")
    with pytest.raises(InventoryError, match=r"bad\.ini: ini plugin: Expected key=value"):
        load_inventory(str(tmp_path))


def test_a_broken_script_is_an_error(tmp_path: Path) -> None:
    script = tmp_path / "inv.sh"
    script.write_text("#!/bin/sh\necho not json\n")
    script.chmod(0o755)
    with pytest.raises(InventoryError, match=r"inv\.sh: script plugin: .*JSON"):
        load_inventory(str(script))


def test_names_resolve_under_inventories_and_paths_as_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "inventories" / "staging").mkdir(parents=True)
    (tmp_path / "inventories" / "staging" / "hosts").write_text("[web]\nw1\n")
    (tmp_path / "inventories" / "qa.ini").write_text("[web]\nq1\n")
    (tmp_path / "inventories" / "dev.yml").write_text("all:\n  hosts:\n    d1:\n")
    (tmp_path / "mine.ini").write_text("[web]\nm1\n")
    assert resolve_source("staging") == str(tmp_path / "inventories" / "staging")
    assert resolve_source("qa") == str(tmp_path / "inventories" / "qa.ini")
    assert resolve_source("dev") == str(tmp_path / "inventories" / "dev.yml")
    assert resolve_source("mine.ini") == str(tmp_path / "mine.ini")
    assert resolve_source("./mine.ini") == str(tmp_path / "mine.ini")
    assert resolve_source("h1,h2,") == "h1,h2,"
    assert resolve_source(None).endswith(os.path.join("inventories", "local.yml"))  # the shipped default
    assert load_inventory("staging").hosts("all") == ("w1",)
    assert load_inventory("h1,h2,").hosts("all") == ("h1", "h2")


def test_a_missing_inventory_says_where_it_looked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(
        InventoryError, match=r"^inventory 'prodd' not found: no inventories/prodd\[\.yml\|\.yaml\|\.ini\] in "
    ):
        resolve_source("prodd")
    with pytest.raises(InventoryError, match=r"^inventory ./nope.ini: no such file or directory$"):
        resolve_source("./nope.ini")


def test_the_local_inventory_puts_this_machine_in_every_library_group() -> None:
    inv = load_inventory(None)
    assert inv.hosts("all") == ("localhost",)
    for group in ("dbservers", "app", "web", "cache", "queue"):
        assert inv.hosts(group) == ("localhost",)
    hostvars = inv.host_vars("localhost")
    assert hostvars["ansible_connection"] == "local"
    assert inv.value("localhost", "ansible_python_interpreter") == sys.executable


def test_example_prod_inventory_is_production_shaped() -> None:
    inv = load_inventory("example-prod")
    for group in ("dbservers", "app", "web", "cache", "queue"):
        assert inv.hosts(group), group
    assert all(inv.host_vars(host).get("ansible_python_interpreter") for host in inv.hosts("all"))


def test_importing_the_module_does_not_import_ansible() -> None:
    code = "import sys, irx.inventory, irx.plan, irx.params; print(any(m.startswith('ansible') for m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_ansible_warnings_do_not_reach_the_terminal(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "odd.ini"
    source.write_text(
        textwrap.dedent("""\
        [web]
        web1
        [web:vars]
        port=80
    """)
    )
    inv = load_inventory(str(source))
    assert inv.hosts("no_such_group") == ()
    out, err = capfd.readouterr()
    assert out == ""
    assert err == ""


# --- vault ------------------------------------------------------------------------------------------------

VAULT_PASSWORD = "irx-vault-test-pass"
VAULTED = "vaulted-db-password-4242"


def vaulted_inventory(tmp_path: Path) -> tuple[Path, Path]:
    """A directory inventory whose group_vars hold a vault-encrypted pg_password, and its password file."""
    password_file = tmp_path / "vault-pass"
    password_file.write_text(VAULT_PASSWORD + "\n")
    password_file.chmod(0o600)
    inventory = tmp_path / "vaulted"
    (inventory / "group_vars").mkdir(parents=True)
    (inventory / "hosts.ini").write_text("[dbservers]\ndb-1 pg_port=6432\n[app]\napp-1\n")
    done = subprocess.run(
        [str(VENV_BIN / "ansible-vault"), "encrypt_string", "--vault-password-file", str(password_file), VAULTED,
         "--name", "pg_password"],
        capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    (inventory / "group_vars" / "dbservers.yml").write_text(done.stdout + "plain: visible\n")
    return inventory, password_file


def test_vaulted_values_open_with_the_password_file_and_match_ansible_inventory(tmp_path: Path) -> None:
    from irx.inventory import Vault, vaulted_values

    inventory, password_file = vaulted_inventory(tmp_path)
    done = subprocess.run(
        [str(VENV_BIN / "ansible-inventory"), "-i", str(inventory), "--list",
         "--vault-password-file", str(password_file)],
        capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    expected = json.loads(done.stdout)["_meta"]["hostvars"]["db-1"]
    inv = load_inventory(str(inventory), vault=Vault(password_file=str(password_file)))
    ours = {k: v for k, v in inv.host_vars("db-1").items() if k not in MAGIC_VARS}
    assert set(ours) == set(expected) == {"pg_port", "pg_password", "plain"}
    assert expected["pg_password"].keys() == {"__ansible_vault"}  # ansible-inventory leaves it encrypted
    assert (inv.value("db-1", "pg_password"), inv.value("db-1", "plain")) == (VAULTED, "visible")
    assert vaulted_values(inv, ["db-1", "app-1"]) == [VAULTED]


def test_vaulted_values_with_ansibles_own_setting_or_none(tmp_path: Path) -> None:
    inventory, password_file = vaulted_inventory(tmp_path)
    env = {**os.environ, "ANSIBLE_VAULT_PASSWORD_FILE": str(password_file)}
    # Ansible reads its settings once per process: the setting is tried in a process of its own.
    shown = subprocess.run(
        [str(VENV_BIN / "irx"), "plan", "db-pool-exhausted", "-i", str(inventory), "--format", "json"],
        capture_output=True, text=True, check=False, timeout=120, env=env,
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    assert VAULTED not in shown.stdout + shown.stderr
    params = json.loads(shown.stdout)["plan"]["params"]
    assert params["pg_password"] == {"type": "string", "secret": True, "value": "******", "source": "inventory"}
    env.pop("ANSIBLE_VAULT_PASSWORD_FILE")
    missing = subprocess.run(
        [str(VENV_BIN / "irx"), "plan", "db-pool-exhausted", "-i", str(inventory)],
        capture_output=True, text=True, check=False, timeout=120, env=env,
    )  # fmt: skip
    assert (missing.returncode, missing.stdout) == (2, "")
    assert missing.stderr == (
        "irx: error: host db-1: variable pg_password is vault-encrypted: give --vault-password-file FILE or "
        "--ask-vault-pass (or set ANSIBLE_VAULT_PASSWORD_FILE)\n"
    )
    wrong = tmp_path / "wrong"
    wrong.write_text("not-the-password\n")
    refused = subprocess.run(
        [str(VENV_BIN / "irx"), "plan", "db-pool-exhausted", "-i", str(inventory), "--vault-password-file", str(wrong)],
        capture_output=True, text=True, check=False, timeout=120, env=env,
    )  # fmt: skip
    assert refused.returncode == 2
    assert refused.stderr.startswith("irx: error: host db-1: variable pg_password: Decryption failed"), refused.stderr

"""Hostile param values are data: never expanded, templated or executed, whatever characters they hold.

Every value below tries to run ``touch CANARY`` (CANARY: a file in the test's tmp_path, and OWNED, one
fixed path in /tmp for the whole session) or to be read as something else than itself: shell syntax,
Jinja2 (irx's and Ansible's), options, globs, tilde and variable expansion, odd bytes, a value near the
size limit. Three layers:

a. ``irx plan`` for every shipped playbook, every param and every value (in process, and through the
   real CLI for the refusals): a one-line param error with exit 2, or a plan whose rendered text holds
   the value as one word (shell) or verbatim (argv, env, URLs, messages);
b. real ``irx run --dry-run`` of every shipped playbook on localhost and on the SSH namespace hosts, every
   string param hostile at once: no canary, a documented exit code, no traceback, a valid journal;
c. a purpose-written playbook (playbooks/run-hostile-echo.yaml) that prints every value through each
   channel a value has on a host; the recorded output is the value, byte for byte.

The namespace hosts are network (and UTS) namespaces of this machine: they share its filesystem, so a
canary created on any of them is a file here (``test_namespace_hosts_share_the_filesystem`` proves it).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, quote_plus

import pytest
import yaml
from journal_checks import check_journal, host_results, of_type
from jsonschema import Draft202012Validator

from irx.errors import ExitCode, IrxError, ParamError
from irx.inventory import Inventory, load_inventory
from irx.loader import load_playbook
from irx.model import Param, Playbook
from irx.params import MAX_VALUE_BYTES, Supplied, check, convert
from irx.plan import FORMATS, build_plan, render
from irx.timeline import read_journal
from irx_testenv import SshHosts

if TYPE_CHECKING:
    from conftest import IrxCli  # tests/integration/conftest.py, which pytest loads as conftest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "playbooks"
SHIPPED_FILES = sorted(SHIPPED.glob("*.y*ml"))
LOCAL_INVENTORY = REPO / "inventories" / "local.yml"
VENV_BIN = Path(sys.executable).parent
# One path outside tmp_path for the whole session: a payload that ran with another working directory or
# TMPDIR, on any host, would still create it.
OWNED = Path(f"/tmp/irx-owned-{uuid.uuid4().hex[:12]}")
SSH_NAMES = ("web1", "web2", "db1")
DOCUMENTED_EXIT_CODES = {int(code) for code in ExitCode}
LARGE = 60 * 1024  # must pass: under MAX_VALUE_BYTES
TOO_LARGE = 70 * 1024  # must be refused
PLACEHOLDERS = ("irxplaceholder", "http://irxplaceholder.invalid/x", "1234567890K", "203.0.113.77")


def hostile_values(canary: Path) -> dict[str, str]:
    """Values a param must carry as data, by name. Each injection would create ``canary`` and OWNED."""
    touch = f"touch {canary} {OWNED}"
    values = {
        "command-substitution": f"$({touch})",
        "backticks": f"`{touch}`",
        "double-quote-break": f'"; {touch}; "',
        "single-quote-break": f"'; {touch}; '",
        "braced-home": "${HOME}",
        "home": "$HOME",
        "other-var": "${OTHER_VAR}",
        "secret-vars": "$PGPASSWORD${REDISCLI_AUTH}",
        "arithmetic": "$((6*7))",
        "pipe": f"| {touch}",
        "background": f"& {touch} &",
        "semicolon": f"; {touch}",
        "and": f"&& {touch}",
        "redirect": f">{canary}",
        "newline": f"x\n{touch}",
        "carriage-return": f"x\r{touch}",
        "jinja-expression": "{{ 7*7 }}",
        "jinja-raw": "{% raw %}x{% endraw %}",
        "jinja-comment": "{# c #}",
        "ansible-lookup": "{{ lookup('pipe', '" + touch + "') }}",
        "backslash": "\\",
        "backslashes": "a\\\\b\\nc\\",
        "option-help": "--help",
        "option-command": f"-c {touch}",
        "option-output": f"--output={canary}",
        "glob": "*",
        "tilde": "~root",
        "history": "!!",
        "printf-format": "%s%n%x%%",
        "quotes": "'\"'\"`",
        "spaces": "  leading and trailing  ",
        "unicode": "héllo wörld ☃ 日本語 🔥 \u202egnp.exe",
    }
    # URLs that pass format: uri (no whitespace), for the params that must be URLs.
    values["url-substitution"] = f"http://127.0.0.1:9/$(touch${{IFS}}{canary})"
    values["url-quote-break"] = f"http://127.0.0.1:9/';touch${{IFS}}{canary};'"
    values["url-jinja"] = "http://127.0.0.1:9/{{7*7}}{%raw%}"
    values["url-idna-host"] = "http://héllo☃.invalid/"
    values["url-control-char"] = "http://127.0.0.1:9/\x01"
    filler = f"$({touch}) "
    values["large-60k"] = (filler * (LARGE // len(filler) + 1))[:LARGE]
    return values


def refused_values() -> dict[str, tuple[str, str]]:
    """Values no param may accept, with the text the error must contain."""
    return {
        "too-large-70k": ("x" * TOO_LARGE, f"at most {MAX_VALUE_BYTES} bytes (64 KiB)"),
        "nul": ("before\0after", "NUL character"),
    }


# --- helpers ---------------------------------------------------------------------------------------------


def target_groups(playbooks: Sequence[Playbook]) -> list[str]:
    """Every inventory group the playbooks' targets name (patterns like ``dbservers:app:web``)."""
    groups: set[str] = set()
    for playbook in playbooks:
        for target in playbook.targets.values():
            for part in re.split(r"[:,]", target.hosts):
                name = part.lstrip("&!")
                if name and name != "all" and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", name):
                    groups.add(name)
    return sorted(groups)


def accepts(param: Param, value: Any) -> bool:
    """Whether ``param`` takes ``value`` as given in a ``-e @file`` (the param checks of irx)."""
    try:
        check(param, convert(param, value, text=False))
    except ValueError:
        return False
    return True


def strings(data: Any) -> Iterator[str]:
    if isinstance(data, str):
        yield data
    elif isinstance(data, Mapping):
        for key, value in data.items():
            yield str(key)
            yield from strings(value)
    elif isinstance(data, list | tuple):
        for item in data:
            yield from strings(item)


def substitute(data: Any, old: str, new: str, *, shell: bool = False) -> Any:
    """``data`` with the value ``old`` replaced by ``new`` as irx renders it: one shell word in a ``shell:``
    script (``shlex.quote``), verbatim everywhere else (argv items, env, URLs, messages, params)."""
    if isinstance(data, str):
        return data.replace(shlex.quote(old), shlex.quote(new)) if shell else data.replace(old, new)
    if isinstance(data, Mapping):
        return {key: substitute(value, old, new, shell=shell or key == "shell") for key, value in data.items()}
    if isinstance(data, list):
        return [substitute(item, old, new, shell=shell) for item in data]
    return data


def masked(data: Any, forms: Sequence[str]) -> Any:
    if isinstance(data, str):
        for form in sorted(forms, key=len, reverse=True):
            data = data.replace(form, "******")
        return data
    if isinstance(data, Mapping):
        return {key: masked(value, forms) for key, value in data.items()}
    if isinstance(data, list):
        return [masked(item, forms) for item in data]
    return data


def without_hashes(data: Any) -> Any:
    """``data`` without the hashes in it (a plan's per-step approval hashes change with any rendered byte)."""
    if isinstance(data, Mapping):
        return {key: without_hashes(value) for key, value in data.items() if key != "hash"}
    if isinstance(data, list):
        return [without_hashes(item) for item in data]
    return data


def first_difference(expected: Any, actual: Any, path: str = "") -> str:
    if isinstance(expected, Mapping) and isinstance(actual, Mapping):
        for key in sorted(set(expected) | set(actual), key=str):
            if expected.get(key) != actual.get(key):
                return first_difference(expected.get(key), actual.get(key), f"{path}/{key}")
    if isinstance(expected, list) and isinstance(actual, list) and len(expected) == len(actual):
        for index, (left, right) in enumerate(zip(expected, actual, strict=True)):
            if left != right:
                return first_difference(left, right, f"{path}[{index}]")
    return f"{path}: expected {str(expected)[:400]!r}, got {str(actual)[:400]!r}"


@dataclass
class LexFrame:
    """One nesting level of :func:`shell_contexts`' lexer: its mode, its open parentheses, and whether a
    ``$(`` opened it (its ``)`` closes it)."""

    mode: str  # "word", "dq" (inside double quotes) or "bt" (inside backticks)
    depth: int = 0
    pushed: bool = False


def shell_contexts(script: str, needle: str) -> list[str]:
    """The lexical context, in a bash script, of every occurrence of ``needle``: ``word`` where a
    shell-quoted value is one word of a command (also inside ``$( )``), else ``single-quoted``,
    ``double-quoted``, ``backticks``, ``comment``, ``heredoc`` (the body of one with an unquoted
    delimiter: expanded) or ``quoted-heredoc``. A small lexer, enough for the shipped scripts: quotes,
    backslashes, ``$( )`` and ``$(( ))``, backticks, comments, here-documents (not here-strings)."""
    targets = {m.start() for m in re.finditer(re.escape(needle), script)}
    found: list[str] = []
    frames = [LexFrame("word")]
    heredocs: list[tuple[str, bool, bool]] = []  # delimiter, strip tabs, quoted
    i, n = 0, len(script)
    while i < n:
        mode = frames[-1].mode
        if i in targets:
            found.append({"word": "word", "dq": "double-quoted", "bt": "backticks"}[mode])
        c = script[i]
        if mode in ("word", "bt"):
            if c == "\\":
                i += 2
                continue
            if c == "'":
                end = script.find("'", i + 1)
                end = n if end < 0 else end
                found += ["single-quoted" for t in targets if i < t < end]
                i = end + 1
                continue
            if c == '"':
                frames.append(LexFrame("dq"))
            elif c == "`":
                if mode == "bt":
                    frames.pop()
                else:
                    frames.append(LexFrame("bt"))
            elif c == "#" and (i == 0 or script[i - 1] in " \t\n;|&("):
                end = script.find("\n", i)
                end = n if end < 0 else end
                found += ["comment" for t in targets if i < t < end]
                i = end
                continue
            elif script.startswith("$(", i):
                frames.append(LexFrame("word", pushed=True))
                i += 2
                continue
            elif c == "(":
                frames[-1].depth += 1
            elif c == ")":
                if frames[-1].depth > 0:
                    frames[-1].depth -= 1
                elif frames[-1].pushed:
                    frames.pop()
            elif script.startswith("<<", i) and not script.startswith("<<<", i):
                m = re.match(r"<<(-?)[ \t]*(?:'([^']*)'|\"([^\"]*)\"|\\?([A-Za-z_][A-Za-z0-9_]*))", script[i:])
                if m:
                    quoted = m.group(2) is not None or m.group(3) is not None or "\\" in m.group(0)
                    word = next(g for g in m.groups()[1:] if g is not None)
                    heredocs.append((word, bool(m.group(1)), quoted))
                    i += len(m.group(0))
                    continue
            elif c == "\n" and heredocs:
                i += 1
                for word, strip, quoted in heredocs:
                    while i < n:
                        end = script.find("\n", i)
                        end = n if end < 0 else end
                        line = script[i:end]
                        if (line.lstrip("\t") if strip else line) == word:
                            i = end + 1
                            break
                        found += ["quoted-heredoc" if quoted else "heredoc" for t in targets if i <= t < end]
                        i = end + 1
                heredocs = []
                continue
        elif mode == "dq":
            if c == "\\":
                i += 2
                continue
            if c == '"':
                frames.pop()
            elif script.startswith("$(", i):
                frames.append(LexFrame("word", pushed=True))
                i += 2
                continue
            elif c == "`":
                frames.append(LexFrame("bt"))
        i += 1
    return found


def plain_string(param: Param) -> bool:
    return param.type == "string" and not (param.choices or param.pattern or param.format)


def no_canary(canary: Path) -> list[str]:
    return [str(path) for path in (canary, OWNED) if path.exists() or path.is_symlink()]


# --- fixtures --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shipped() -> list[Playbook]:
    playbooks = [load_playbook(path) for path in SHIPPED_FILES]
    assert len(playbooks) >= 15, [p.name for p in playbooks]
    return playbooks


@pytest.fixture(scope="module")
def local_plan_inventory() -> Inventory:
    return load_inventory(str(LOCAL_INVENTORY))


@pytest.fixture(scope="module")
def group_inventories(
    shipped: list[Playbook], ssh_hosts: SshHosts, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    """Two inventories in which every group the shipped playbooks target is a host under test: ``local``
    (localhost, local connection) and ``ssh`` (each group one of the namespace hosts, in turn, so the
    groups use all three; one host per group keeps a step to one SSH connection)."""
    groups = target_groups(shipped)
    assert {"dbservers", "app", "web", "cache", "queue"} <= set(groups), groups
    directory = tmp_path_factory.mktemp("hostile-inventories")
    local = {
        "all": {
            "hosts": {"localhost": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}},
            "children": {group: {"hosts": {"localhost": None}} for group in groups},
        }
    }
    ssh = ssh_hosts.inventory()
    ssh["all"]["children"].update(
        {group: {"hosts": {SSH_NAMES[index % len(SSH_NAMES)]: None}} for index, group in enumerate(groups)}
    )
    paths = {"local": directory / "local.yml", "ssh": directory / "ssh.yml"}
    paths["local"].write_text(yaml.safe_dump(local, sort_keys=False))
    paths["ssh"].write_text(yaml.safe_dump(ssh, sort_keys=False))
    return paths


@pytest.fixture(scope="module", autouse=True)
def owned_path_stays_absent() -> Iterator[None]:
    assert not OWNED.exists()
    yield
    assert not OWNED.exists(), f"{OWNED} was created: a hostile value ran as code"


def hosts_see_no_canary(ssh_hosts: SshHosts, canary: Path) -> dict[str, str]:
    """Ask every namespace host itself (over SSH) whether CANARY or OWNED exists there."""
    found = {}
    for name in SSH_NAMES:
        proc = subprocess.run(
            ssh_hosts.ssh_argv(name, f"ls -d {shlex.quote(str(canary))} {shlex.quote(str(OWNED))} 2>/dev/null; true"),
            capture_output=True, text=True, timeout=60, check=False, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        if proc.stdout.strip():
            found[name] = proc.stdout.strip()
    return found


def test_namespace_hosts_share_the_filesystem(ssh_hosts: SshHosts, tmp_path: Path) -> None:
    """The assumption the canary checks rest on: a file made here is seen by every namespace host, and a
    file a host makes is here. (Network and UTS namespaces only: ``ip netns exec`` + ``unshare --uts``.)"""
    here = tmp_path / "made-here"
    token = uuid.uuid4().hex
    here.write_text(token + "\n")
    for name in SSH_NAMES:
        there = tmp_path / f"made-on-{name}"
        script = f"cat {shlex.quote(str(here))} && hostname && echo {name} > {shlex.quote(str(there))}"
        proc = subprocess.run(
            ssh_hosts.ssh_argv(name, script), capture_output=True, text=True, timeout=60, check=False,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.split() == [token, name]
        assert there.read_text() == f"{name}\n"


@pytest.mark.parametrize(
    ("script", "contexts"),
    [
        ("echo X", ["word"]),
        ('echo "X"', ["double-quoted"]),
        ("echo 'X'", ["single-quoted"]),
        ("echo `X`", ["backticks"]),
        ('echo "$(dirname X)" "a\\"X"', ["word", "double-quoted"]),
        ("# X\necho X", ["comment", "word"]),
        ("cat <<'SQL'\nX\nSQL\necho X", ["quoted-heredoc", "word"]),
        ("cat <<EOF\nX\nEOF\n", ["heredoc"]),
        ("psql -v a=X <<'SQL'\nselect :'a';\nSQL\n", ["word"]),
        ("n=$(( 1 + 2 )); case $n in 3) echo X;; esac; echo \\'X ${v:-X}", ["word", "word", "word"]),
    ],
)
def test_the_shell_context_check_tells_a_word_from_a_quoted_place(script: str, contexts: list[str]) -> None:
    """The check the plan matrix relies on: a value is one word only outside quotes, comments and
    here-documents (inside double quotes ``'$(x)'`` still runs x; in a comment a newline ends it)."""
    assert shell_contexts(script, "X") == contexts


# --- a. irx plan: every playbook x every param x every value ----------------------------------------------


@dataclass
class Matrix:
    tried: int = 0
    refused: int = 0
    planned: int = 0
    shell_words: int = 0  # places a param lands in a shell script, each checked to be a word of a command


MATRIX = Matrix()


def plan_or_error(playbook: Playbook, inv: Inventory, name: str, value: str) -> Any:
    """The plan with ``-e name=value`` as typed on a command line (a list param: the one-item list
    ``[value]`` from ``-e @file``, since ``-e name=a,b`` splits text on commas), or the IrxError it raised."""
    if playbook.params[name].type == "list":
        supplied = Supplied([value], "-e @values.json", text=False, strict=False)
    else:
        supplied = Supplied(value, "-e", text=True, strict=True)
    try:
        return build_plan(playbook, inv, {name: supplied}, {})
    except IrxError as exc:
        return exc


@pytest.mark.parametrize("path", SHIPPED_FILES, ids=[p.stem for p in SHIPPED_FILES])
def test_plan_carries_every_hostile_value_as_data(path: Path, local_plan_inventory: Inventory, tmp_path: Path) -> None:
    """Every param of the playbook, every value: a clear param error, or a plan that is the plan of an
    inert placeholder value with that value put in its place, quoted as one shell word in scripts."""
    playbook = load_playbook(path)
    inv = local_plan_inventory
    canary = tmp_path / "canary"
    values = hostile_values(canary)
    problems: list[str] = []
    for name, param in playbook.params.items():
        base = None
        for placeholder in PLACEHOLDERS:
            found = plan_or_error(playbook, inv, name, placeholder)
            if not isinstance(found, IrxError):
                base = (placeholder, found)
                break
        if base is not None:  # where the value lands in each script: only as a word of a command is it data
            placeholder, base_plan = base
            for step in base_plan.body["steps"]:
                for group in step["renderings"]:
                    contexts = shell_contexts(group["action"].get("shell", ""), placeholder)
                    MATRIX.shell_words += len(contexts)
                    if set(contexts) - {"word"}:
                        problems.append(f"{playbook.name}: {step['id']}: params.{name} lands {contexts} in the script")
        for label, value in values.items():
            MATRIX.tried += 1
            where = f"{playbook.name}: -e {name}=<{label}>"
            result = plan_or_error(playbook, inv, name, value)
            if isinstance(result, IrxError):
                MATRIX.refused += 1
                message = str(result)
                if not isinstance(result, ParamError):
                    problems.append(f"{where}: {type(result).__name__} instead of a param error: {message[:300]}")
                elif "\n" in message or not message.startswith(f"param {name} "):
                    problems.append(f"{where}: unclear param error {message[:300]!r}")
                elif result.exit_code != ExitCode.USAGE:
                    problems.append(f"{where}: exit code {result.exit_code}")
                elif plain_string(param) and not (param.secret and len(value.strip()) < 4):
                    # A plain string takes anything a host can carry (a secret: at least 4 characters).
                    problems.append(f"{where}: a plain string param refused it: {message}")
                continue
            MATRIX.planned += 1
            if base is None:
                problems.append(f"{where}: accepted, but no placeholder value was (cannot compare the plan)")
                continue
            placeholder, base_plan = base
            if param.secret:
                forms = [value, shlex.quote(value), quote(value, safe=""), quote_plus(value)]
                leaked = [text for text in strings(result.body) for form in forms if form in text]
                if leaked:
                    problems.append(f"{where}: the secret is in the plan: {leaked[0][:200]!r}")
                expected = masked(base_plan.body, forms)
                actual = result.body
            else:
                expected = substitute(base_plan.body, placeholder, value)
                actual = result.body
            expected, actual = without_hashes(expected), without_hashes(actual)
            if expected != actual:
                problems.append(f"{where}: not carried as data: {first_difference(expected, actual)}")
            for fmt in FORMATS:  # every way a plan is shown renders, without quoting the secret
                shown = render(result, fmt)
                if param.secret and value in shown:
                    problems.append(f"{where}: the secret is in the {fmt} plan")
        if base is None and param.type == "string":
            refused_all = all(isinstance(plan_or_error(playbook, inv, name, v), IrxError) for v in values.values())
            assert refused_all, f"{playbook.name}: {name}: no placeholder accepted, yet hostile values were"
    for label, (value, expected_text) in refused_values().items():
        for name, param in playbook.params.items():
            MATRIX.tried += 1
            result = plan_or_error(playbook, inv, name, value)
            where = f"{playbook.name}: -e {name}=<{label}>"
            if not isinstance(result, ParamError):
                problems.append(f"{where}: not refused as a param error: {result!r}"[:300])
                continue
            MATRIX.refused += 1
            message = str(result)
            if "\n" in message or not message.startswith(f"param {name} "):
                problems.append(f"{where}: unclear param error {message[:300]!r}")
            if param.type in ("string", "list") and expected_text not in message:
                problems.append(f"{where}: the error does not say why: {message[:300]!r}")
            if param.secret and value in message:
                problems.append(f"{where}: the error quotes the secret")
    assert not canary.exists()
    assert problems == [], "\n".join(problems[:40]) + (f"\n... {len(problems) - 40} more" if len(problems) > 40 else "")


def test_plan_matrix_counts() -> None:
    """How much the matrix above tried (printed for the log with -s; runs after it)."""
    tried, planned, refused = MATRIX.tried, MATRIX.planned, MATRIX.refused
    print(f"\nplan matrix: {tried} (playbook, param, value) plans: {planned} planned, {refused} refused")
    print(f"  {MATRIX.shell_words} places where a param lands in a shell script, every one a word of a command")
    if tried:
        assert planned > 0
        assert refused > 0


# --- a'. the same through the real CLI ----------------------------------------------------------------------


def run_cli(*args: str, cwd: Path, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(VENV_BIN / "irx"), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120,
        check=False, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def test_cli_plan_refuses_values_no_host_can_carry(tmp_path: Path) -> None:
    """One line on stderr naming the param and the limit, exit 2, nothing on stdout, no traceback; the value
    under the limit plans, and the plan JSON holds it verbatim."""
    base = ("plan", "db-pool-exhausted", "-p", str(SHIPPED), "-i", str(LOCAL_INVENTORY))
    nul_file = tmp_path / "nul.json"
    nul_file.write_text(json.dumps({"app_service": "before\0after"}))
    cases = {
        "70 KiB on the command line": (
            ("-e", "app_service=" + "x" * TOO_LARGE),
            "irx: error: param app_service (from -e): is 71680 bytes long; a param value may be at most 65536 "
            "bytes (64 KiB)",
        ),
        "NUL in -e @file": (
            ("-e", f"@{nul_file}"),
            f"irx: error: param app_service (from -e @{nul_file}): 'before\\x00after' holds a NUL character, "
            "which no command line or environment can carry",
        ),
        "NUL in inline JSON": (
            ("-e", '{"app_service": "a\\u0000b"}'),
            "irx: error: param app_service (from -e): 'a\\x00b' holds a NUL character, which no command line or "
            "environment can carry",
        ),
        "secret too large": (
            ("-e", "@" + str(write_json(tmp_path / "big-secret.json", {"pg_password": "s" * TOO_LARGE}))),
            f"irx: error: param pg_password (from -e @{tmp_path / 'big-secret.json'}): is 71680 bytes long; "
            "a param value may be at most 65536 bytes (64 KiB)",
        ),
        "pattern": (
            ("-e", "app_user=$(touch /tmp/x)"),
            "irx: error: param app_user (from -e): '$(touch /tmp/x)' does not match the pattern "
            "[A-Za-z_][A-Za-z0-9_$-]*",
        ),
    }
    for label, (args, expected) in cases.items():
        proc = run_cli(*base, *args, cwd=tmp_path)
        assert (proc.returncode, proc.stdout) == (2, ""), (label, proc.stderr[:500])
        assert proc.stderr.splitlines() == [expected], label
        assert "Traceback" not in proc.stderr
        assert "s" * 64 not in proc.stderr  # never the secret, not even a part of it

    large = hostile_values(tmp_path / "canary")["large-60k"]
    proc = run_cli(*base, "--format", "json", "-e", "app_service=" + large, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[:500]
    plan = json.loads(proc.stdout)
    assert plan["plan"]["params"]["app_service"]["value"] == large
    assert not (tmp_path / "canary").exists()


def write_json(path: Path, data: Any) -> Path:
    # ensure_ascii=False: astral characters as UTF-8, not as \uD83D\uDD25 escapes (which irx reads wrongly,
    # see test_values_that_are_not_unicode_text_are_param_errors).
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


def test_values_that_are_not_unicode_text_are_param_errors(tmp_path: Path) -> None:
    """A value that is not Unicode text (bytes that are not UTF-8 on the command line or in the environment,
    a lone surrogate in JSON) is a param error, exit 2; a JSON file's surrogate pair is the character it
    encodes. Today all four are an internal error (exit 3, UnicodeEncodeError from the plan hash)."""
    base = [str(VENV_BIN / "irx"), "plan", "db-pool-exhausted", "-p", str(SHIPPED), "-i", str(LOCAL_INVENTORY)]
    env = {**os.environ, "TMPDIR": str(tmp_path)}  # irx's crash logs, if any, stay in tmp_path
    pair = tmp_path / "pair.json"
    pair.write_text('{"app_service": "fire \\ud83d\\udd25"}')  # what json.dumps writes for "fire 🔥"
    outcomes = {}
    cases: list[tuple[str, Sequence[str | bytes], dict[bytes, bytes]]] = [  # label, argv, extra environment
        ("argv bytes", [*base, "-e", b"app_service=x\xffy"], {}),
        ("environment bytes", base, {b"PGPASSWORD": b"s3cr\xffzz"}),
        ("lone surrogate in inline JSON", [*base, "-e", '{"app_service": "x\\ud800y"}'], {}),
        ("surrogate pair in a JSON file", [*base, "--format", "json", "-e", f"@{pair}"], {}),
    ]
    for label, argv, extra in cases:
        proc = subprocess.run(
            [os.fsencode(a) for a in argv], env={**{os.fsencode(k): os.fsencode(v) for k, v in env.items()}, **extra},
            capture_output=True, timeout=120, check=False, stdin=subprocess.DEVNULL, cwd=tmp_path,
        )  # fmt: skip
        stderr = proc.stderr.decode(errors="replace")
        outcomes[label] = (proc.returncode, stderr.strip())
        if label == "surrogate pair in a JSON file" and proc.returncode == 0:
            value = json.loads(proc.stdout)["plan"]["params"]["app_service"]["value"]
            outcomes[label] = (0, value)
    wrong = {}
    for label, (rc, said) in outcomes.items():
        if label == "surrogate pair in a JSON file":
            ok = (rc, said) == (0, "fire \U0001f525")
        else:  # one line naming the param, never the secret's text (not even its valid part)
            one_line = len(said.splitlines()) == 1 and said.startswith("irx: error: param ")
            ok = rc == 2 and one_line and "s3cr" not in said
        if not ok:
            wrong[label] = (rc, said[:300])
    assert wrong == {}


def test_cli_plan_matches_the_in_process_plan_for_every_value(
    tmp_path: Path, local_plan_inventory: Inventory, capsys: pytest.CaptureFixture[str]
) -> None:
    """``irx plan`` through the CLI (argument parsing, -e @file, output) gives the plan the matrix checked,
    for every hostile value of a shell-quoted, an env and an argv-carried param (the real subprocess once,
    the CLI entry point in process for the rest: each subprocess costs an Ansible inventory load)."""
    from irx.cli import main

    playbook = load_playbook(SHIPPED / "db-pool-exhausted.yaml")
    values = hostile_values(tmp_path / "canary")
    for index, (label, value) in enumerate(values.items()):
        for name in ("app_service", "pg_dsn"):
            if not accepts(playbook.params[name], value):
                continue
            vars_file = write_json(tmp_path / f"vars-{index}-{name}.json", {name: value})
            args = ["plan", "db-pool-exhausted", "-p", str(SHIPPED), "-i", str(LOCAL_INVENTORY), "--format", "json",
                    "-e", f"@{vars_file}"]  # fmt: skip
            if index == 0 and name == "app_service":
                proc = run_cli(*args, cwd=tmp_path)
                rc, out, err = proc.returncode, proc.stdout, proc.stderr
            else:
                rc = main(args)
                out, err = capsys.readouterr()
            assert (rc, err) == (0, ""), (label, name, err[:500])
            supplied = {name: Supplied(value, f"-e @{vars_file}", text=False, strict=False)}
            expected = build_plan(playbook, local_plan_inventory, supplied, dict(os.environ))
            got, wanted = json.loads(out)["plan"], json.loads(json.dumps(expected.body))
            assert got == wanted, (label, name, first_difference(wanted, got))
    assert not (tmp_path / "canary").exists()


# --- b. real dry runs of every shipped playbook, every string param hostile at once ----------------------


SPEED_PARAM = re.compile(r"(seconds|minutes|hours|samples)$")


def fast_values(playbook: Playbook) -> dict[str, Any]:
    """Durations and sample counts at their minimum: the runs wait for nothing they need not."""
    fast: dict[str, Any] = {}
    for name, param in playbook.params.items():
        if param.type == "integer" and SPEED_PARAM.search(name):
            fast[name] = int(param.minimum) if param.minimum is not None else 1
    return fast


def run_assignments(
    playbook: Playbook, values: Mapping[str, str], fixed: Sequence[Mapping[str, Any]]
) -> list[tuple[dict[str, Any], dict[str, list[str]]]]:
    """The params of each run (one per item of ``fixed``, the values that run must have) and which values
    each param got, by label. Every other string param is hostile: one value each, rotated so that the
    playbook's runs between them use as many different values as its params can take; in the last run one
    plain string param carries every value still unused, joined by spaces (a playbook has fewer params
    than there are values). List params get all values at once."""
    unused = sorted(values, key=lambda label: label != "large-60k")  # the 60 KiB one first: once per playbook
    assignments = []
    for run, pinned in enumerate(fixed):
        chosen: dict[str, Any] = fast_values(playbook)
        labels: dict[str, list[str]] = {}
        for name, param in playbook.params.items():
            if name in pinned:
                chosen[name] = pinned[name]
            elif param.type == "list":
                # All at once, but the 60 KiB one: a list is one word per item in a script, but one value in
                # env and argv, where the items together must stay under Linux's 128 KiB per value.
                items = [label for label in values if label != "large-60k" and accepts(param, [values[label]])]
                if accepts(param, [values[label] for label in items]):
                    chosen[name], labels[name] = [values[label] for label in items], items
            elif param.type == "string":
                taken = [label for label in unused if accepts(param, values[label])]
                if not taken:  # every value this param takes has been used: go round again
                    again = list(values)[run:] + list(values)[:run]
                    taken = [label for label in again if accepts(param, values[label])]
                if taken:
                    chosen[name], labels[name] = values[taken[0]], [taken[0]]
                    if taken[0] in unused:
                        unused.remove(taken[0])
        plain = [n for n, p in playbook.params.items() if n in labels and plain_string(p) and n not in pinned]
        if run == len(fixed) - 1 and plain:
            name = sorted(plain, key=lambda n: playbook.params[n].secret)[0]  # a secret one only if need be
            rest = [label for label in unused if label != "large-60k"]
            if labels[name] == ["large-60k"]:
                unused.append("large-60k")  # it keeps its single use elsewhere or in a later playbook run
                labels[name] = []
            joined = " ".join(values[label] for label in [*labels[name], *rest])
            if rest and accepts(playbook.params[name], joined):
                chosen[name], labels[name] = joined, [*labels[name], *rest]
                unused = [label for label in unused if label not in rest]
        assignments.append((chosen, labels))
    return assignments


@dataclass
class RunCounts:
    runs: int = 0
    pairs: set[tuple[str, str]] | None = None


RUNS = RunCounts(pairs=set())


@pytest.fixture(scope="module")
def local_services(pg_server: Any, redis_server: Any) -> dict[str, str]:
    """Real endpoints for the localhost runs, so that the steps after the first connection get to run with
    the other hostile values (psql variables, Redis keys and patterns); the SSH runs get hostile ones."""
    return {"pg_dsn": pg_server.dsn, "redis_url": redis_server.url}


@pytest.mark.parametrize("path", SHIPPED_FILES, ids=[p.stem for p in SHIPPED_FILES])
def test_dry_run_with_every_string_param_hostile(
    path: Path, irx_cli: IrxCli, group_inventories: dict[str, Path], ssh_hosts: SshHosts,
    local_services: dict[str, str], tmp_path: Path, timeline_validator: Draft202012Validator,
) -> None:  # fmt: skip
    """Two real dry runs at once, on localhost and on the SSH hosts: the diagnostics run for real with the
    hostile values; whatever fails, nothing runs that the playbook does not say, and irx stays in control."""
    playbook = load_playbook(path)
    canary = tmp_path / "canary"
    values = hostile_values(canary)
    real = {name: url for name, url in local_services.items() if name in playbook.params}
    kinds = ("local", "ssh")
    assignments = run_assignments(playbook, values, [real, {}])
    started = []
    for kind, (chosen, labels) in zip(kinds, assignments, strict=True):
        vars_file = write_json(tmp_path / f"vars-{kind}.json", chosen)
        argv = [str(VENV_BIN / "irx"), "run", playbook.name, "-p", str(SHIPPED), "-i", str(group_inventories[kind]),
                "--dry-run", "--format", "json", "-e", f"@{vars_file}"]  # fmt: skip
        proc = subprocess.Popen(
            argv, cwd=irx_cli.cwd, env=irx_cli.env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        started.append((kind, labels, proc))
    finished = []
    deadline = time.monotonic() + 600
    for kind, labels, proc in started:
        try:
            out, err = proc.communicate(timeout=max(1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            for *_, other in started:
                other.kill()
            pytest.fail(f"{playbook.name}: the dry run on {kind} did not finish within 10 minutes")
        finished.append((kind, labels, proc.returncode, out, err))
    problems = []
    for kind, labels, rc, out, err in finished:
        where = f"{playbook.name} on {kind} with {labels}"
        RUNS.runs += 1
        RUNS.pairs.update((playbook.name, label) for used in labels.values() for label in used)  # type: ignore[union-attr]
        if "Traceback" in out + err or "internal error" in err:
            problems.append(f"{where}: a traceback or internal error:\n{err[-3000:]}")
            continue
        if rc not in (0, 1):  # a dry run completes (0) or a diagnostic aborted it (1); 2, 3 and 4 are wrong here
            problems.append(f"{where}: exit {rc} (documented: {sorted(DOCUMENTED_EXIT_CODES)}):\n{err[-2000:]}")
            continue
        summary = json.loads(out)
        (journal_path,) = [p for p in irx_cli.journals() if p.parent.name == summary["run_id"]]
        journal = read_journal(journal_path)
        check_journal(journal, timeline_validator)
        assert journal.events[0]["mode"] == "dry-run"
        assert journal.events[-1]["exit_code"] == rc
        assert of_type(journal, "host_result"), f"{where}: no host step ran"
    assert problems == [], "\n\n".join(problems)
    assert no_canary(canary) == [], "a hostile value ran as code on the control node or a host"
    assert hosts_see_no_canary(ssh_hosts, canary) == {}
    assert list((tmp_path / "t").glob("irx-crash-*")) == []


def test_dry_run_counts(shipped: list[Playbook]) -> None:
    """What the dry runs above covered (printed for the log with -s; runs after them): every runnable value
    reached a real dry run of at least one playbook."""
    pairs = RUNS.pairs or set()
    if not RUNS.runs:
        return  # the dry runs were not selected in this session: nothing to count
    labels = list(hostile_values(Path("/canary")))
    print(f"\ndry runs: {RUNS.runs} real runs; (playbook, value) pairs: {len(pairs)} of {len(shipped) * len(labels)}")
    for playbook in shipped:
        used = {label for name, label in pairs if name == playbook.name}
        print(f"  {playbook.name}: {len(used)} of {len(labels)} values")
    assert {label for _, label in pairs} == set(labels), "a value no real dry run carried"


def test_http_step_with_an_unusable_url_fails_only_that_step(
    tmp_path: Path, irx_cli: IrxCli, timeline_validator: Draft202012Validator
) -> None:
    """A URL that no request can be built from (a host name that is not valid IDNA, a control character:
    both pass ``format: uri``) or a header value that is not ASCII fails its http step with a message, as a
    refused connection does; the run goes on and ends under irx's control. Today httpx's InvalidURL and
    UnicodeEncodeError escape executors/http.py run_http: ``irx: internal error``, exit 3."""
    cases = {
        "idna host": {"url": "http://héllo☃.invalid/"},
        "control character": {"url": "http://127.0.0.1:9/\x01"},
        "non-ascii header": {"url": "http://127.0.0.1:9/", "header": "héllo ☃"},
    }
    outcomes = {}
    for label, chosen in cases.items():  # one after the other: a real run holds the playbook's lock
        vars_file = write_json(tmp_path / f"{label.replace(' ', '-')}.json", chosen)
        ran = irx_cli.run("run-hostile-http", "-e", f"@{vars_file}")
        outcomes[label] = (ran.rc, "internal error" in ran.stderr, ran.stderr.strip()[-300:])
    assert {label: rc for label, (rc, _, _) in outcomes.items()} == dict.fromkeys(cases, 0), outcomes
    for journal in map(read_journal, irx_cli.journals()):
        check_journal(journal, timeline_validator)
        (get,) = of_type(journal, "step_finished", step="get")
        assert get["status"] == "failed"
        assert of_type(journal, "step_finished", step="after")[0]["status"] == "ok"


# --- c. byte for byte through every channel ------------------------------------------------------------------


ECHO_SLOTS = 40
RS = "\x1e"


def test_every_value_arrives_byte_for_byte_on_every_channel(
    irx_cli: IrxCli, tmp_path: Path, timeline_validator: Draft202012Validator
) -> None:
    """A real run (read-only printf steps) on localhost and web1: through a {{ }} template in a script, an
    env: value read as "$VAR", a command argv item, module args, and a step's output carried into later
    steps, every value arrives exactly as it was given."""
    canary = tmp_path / "canary"
    values = list(hostile_values(canary).values())
    assert len(values) <= ECHO_SLOTS
    slots = values + [""] * (ECHO_SLOTS - len(values))
    joined = "".join(value + RS for value in slots)
    assert len(joined.encode()) < 64 * 1024, "the journal keeps 64 KiB of stdout: the values must fit in it"
    vars_file = write_json(tmp_path / "values.json", {f"v{i:02d}": value for i, value in enumerate(slots)})

    ran = irx_cli.run("run-hostile-echo", "-l", "localhost,web1", "-e", f"@{vars_file}", timeout=300)

    assert ran.rc == 0, ran.output[-4000:]
    assert "Traceback" not in ran.stderr
    journal = read_journal(irx_cli.journals()[-1])
    check_journal(journal, timeline_validator)
    assert journal.events[-1]["status"] == "verified"
    hosts = ("localhost", "web1")
    expected_hash = hashlib.sha256(joined.encode()).hexdigest() + "  -"
    for step in ("via_template", "via_env", "via_argv", "bytes", "relay_template", "relay_env", "relay_argv"):
        results = host_results(journal, step)
        assert set(results) == set(hosts), step
        for host, result in results.items():
            assert result["status"] == "ok", (step, host, result.get("msg"), result.get("stderr", "")[:500])
            assert not result.get("stdout_truncated"), (step, host)
            got = result["stdout"]
            if step == "bytes":
                assert got == expected_hash, (step, host)
                continue
            if got != joined:
                parts = got.split(RS)
                wrong = [(slots[i], part) for i, part in enumerate(parts[: len(slots)]) if part != slots[i]]
                pytest.fail(f"{step} on {host}: {len(wrong)} values changed, e.g. {wrong[:3]!r}"[:3000])
    for host, result in host_results(journal, "via_module").items():
        assert result["status"] == "ok", (host, result.get("msg"))
        assert result["data"]["msg"] == slots, host
    assert no_canary(canary) == []

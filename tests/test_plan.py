"""``irx plan``: what would run where, its hash, secrets kept out, and one clear line for every bad input."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from irx.cli import main
from irx.plan import canonical_json, compress_hosts

REPO = Path(__file__).resolve().parents[1]
CASES = Path(__file__).parent / "cases" / "inventories"
IRX = str(Path(sys.executable).parent / "irx")
SHIPPED = sorted((REPO / "playbooks").glob("*.yaml"))
SECRET = "pa$$ 'w\"rd`x`"

HEAD = """\
apiVersion: irx/v1
kind: Playbook
metadata: {name: demo, title: Demo incident, severity: SEV3}
"""


def write_playbook(tmp_path: Path, body: str, name: str = "demo.yaml") -> Path:
    path = tmp_path / name
    path.write_text(HEAD + textwrap.dedent(body))
    return path


def plan(capsys: pytest.CaptureFixture[str], *args: str, code: int = 0) -> str:
    result = main(["plan", *args])
    out, err = capsys.readouterr()
    assert result == code, err
    return out if code == 0 else err


def plan_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(plan(capsys, *args, "--format", "json"))
    return data


# --- the shipped library ------------------------------------------------------------------------------


def test_the_library_is_not_empty() -> None:
    assert len(SHIPPED) >= 5


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
@pytest.mark.parametrize("fmt", ["text", "json", "markdown"])
def test_every_shipped_playbook_plans_on_the_default_inventory(
    path: Path, fmt: str, capsys: pytest.CaptureFixture[str]
) -> None:
    out = plan(capsys, str(path), "--format", fmt)
    assert "sha256:" in out


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_every_shipped_playbook_plans_on_the_example_production_inventory(
    path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = plan_json(capsys, str(path), "--inventory", "example-prod")
    assert data["plan"]["inventory"]["hosts"] > 1


# --- what runs where ----------------------------------------------------------------------------------

GROUPED = """\
params:
  app_service: {type: string, default: app}
  port: {type: integer, default: 80}
targets:
  app: {hosts: app, serial: 2}
  web: {hosts: web}
diagnose:
  - id: who
    "on": app
    shell: echo {{ host.name }}
  - id: status
    "on": app
    command: [systemctl, status, "{{ params.app_service }}"]
mitigate:
  - id: restart
    "on": app
    approval: required
    module: ansible.builtin.systemd
    args: {name: "{{ params.app_service }}", state: restarted}
    retries: 2
    delay: 5s
    timeout: 2m
    on_failure: rollback
  - id: ports
    "on": web
    when: params.port < 1024
    shell: curl -s localhost:{{ vars.http_port }}
    mutating: false
verify:
  - id: health
    http: {url: "http://lb.example.net:{{ params.port }}/health", expect: {status: 200}}
rollback:
  - id: tell
    notify: {message: "rolled back {{ params.app_service }}"}
"""


def test_hosts_with_the_same_rendering_are_grouped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    book = write_playbook(tmp_path, GROUPED.replace("rolled back {{ params.app_service }}", "rolled back"))
    data = plan_json(capsys, str(book), "-i", str(CASES / "ranges.ini"))
    steps = {step["id"]: step for step in data["plan"]["steps"]}
    assert len(steps["who"]["renderings"]) == 9  # host.name: one each
    status = steps["status"]["renderings"]
    assert [group["action"]["command"] for group in status] == [
        ["systemctl", "status", "api"],
        ["systemctl", "status", "api-canary"],
    ]
    assert status[0]["hosts"] == [f"app{i}" for i in range(1, 7)]
    assert status[1]["hosts"] == ["appa-canary", "appb-canary", "appc-canary"]
    restart = steps["restart"]
    assert restart["mutating"] is True
    assert {k: v for k, v in restart["approval"].items() if k != "hash"} == {"required": True, "reason": None}
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", restart["approval"]["hash"])  # what its gate will show
    assert restart["controls"] == {
        "on_failure": "rollback",
        "retries": 2,
        "delay": 5.0,
        "timeout": 120.0,
        "serial": 2,
    }
    assert restart["renderings"][0]["action"] == {
        "module": "ansible.builtin.systemd",
        "args": {"name": "api", "state": "restarted"},
    }
    ports = steps["ports"]
    assert ports["when"] == {"expr": "params.port < 1024", "decided": "now", "value": True}
    assert [(g["hosts"], g["action"]) for g in ports["renderings"]] == [
        ([f"web{i:02d}.example.net" for i in range(1, 21)], {"shell": "curl -s localhost:8080"}),
        (["lb-a.example.net"], {"shell": "curl -s localhost:80"}),
    ]
    assert ports["skipped"] == []
    # the app param differs between hosts, and the control-node step reading it cannot pick one
    assert data["plan"]["params"]["app_service"]["value"] is None


def test_a_control_node_step_cannot_use_a_param_its_hosts_disagree_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    book = write_playbook(tmp_path, GROUPED)
    err = plan(capsys, str(book), "-i", str(CASES / "ranges.ini"), "--format", "json", code=2)
    assert err == (
        "irx: error: step tell: notify.message: params.app_service differs between hosts (app1: 'api'; "
        "appa-canary: 'api-canary') and this step runs on the control node; pass -e app_service=... to choose\n"
    )
    data = plan_json(capsys, str(book), "-i", str(CASES / "ranges.ini"), "-e", "app_service=api")
    health, tell = data["plan"]["steps"][-2:]
    assert health["on"] == "control node"
    assert health["renderings"] == [
        {
            "hosts": None,
            "action": {"http": {"method": "GET", "url": "http://lb.example.net:80/health", "expect": {"status": 200}}},
        }
    ]
    assert tell["renderings"][0]["action"] == {"notify": "rolled back api"}


def test_text_form_is_compact_grouped_by_phase_and_marks_mutations(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    book = write_playbook(tmp_path, GROUPED)
    out = plan(capsys, str(book), "-i", str(CASES / "ranges.ini"), "-e", "app_service=api")
    lines = out.splitlines()
    assert lines[0] == "PLAN demo · SEV3 · Demo incident"
    assert lines[1] == f"inventory {CASES / 'ranges.ini'} · limit none · 30 hosts targeted"
    assert lines[2].startswith("hash sha256:")
    assert [line for line in lines if line.isupper()] == ["PARAMS", "DIAGNOSE", "MITIGATE", "VERIFY", "ROLLBACK"]
    text = "\n".join(lines)
    assert "   2 status · app: app[1:6], appa-canary, +2 more (9 hosts)\n     argv: systemctl status api" in text
    assert (
        "!  3 restart · APPROVAL · app: app[1:6], appa-canary, +2 more (9 hosts)\n"
        "     ansible.builtin.systemd name=api state=restarted\n"
        "     retries 2 · delay 5s · timeout 2m · on failure rollback · serial 2"
    ) in text
    assert (
        "   4 ports · web (21 hosts)\n"
        "     when params.port < 1024  [now: true]\n"
        "     web[01:20].example.net (20 hosts):\n"
        "       $ curl -s localhost:8080\n"
        "     lb-a.example.net:\n"
        "       $ curl -s localhost:80\n"
    ) in text
    assert "   5 health · control node\n     GET http://lb.example.net:80/health -> expect 200" in text
    # Compact: every line but the inventory's (which holds the checkout's absolute path) fits 110 columns.
    assert max(len(line) for line in lines if not line.startswith("inventory ")) <= 110


RUNTIME = """\
params:
  threshold: {type: integer, default: 5}
targets:
  db: {hosts: dbservers}
diagnose:
  - id: count
    "on": db
    shell: psql -Atc 'select count(*) from pg_stat_activity'
    parse: int
mitigate:
  - id: kill
    "on": db
    when: steps.count.max > params.threshold
    approval: required
    shell: kill {{ steps.count.data | join(' ') }} --limit {{ params.threshold }}
    until: result.rc == 0
    retries: 3
verify:
  - id: check
    assert:
      that: ["steps.count.max < params.threshold", "params.threshold > 1"]
      message: "still {{ steps.count.max }} over {{ params.threshold }} in {{ run.id }}"
  - id: tell
    notify: {message: "run {{ run.id }} ({{ run.severity }}) done"}
"""


def test_run_time_conditions_and_values_are_shown_as_such(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    book = write_playbook(tmp_path, RUNTIME)
    data = plan_json(capsys, str(book))
    steps = {step["id"]: step for step in data["plan"]["steps"]}
    kill = steps["kill"]
    assert kill["when"] == {"expr": "steps.count.max > params.threshold", "decided": "run time"}
    assert kill["until"] == {"expr": "result.rc == 0", "decided": "run time"}
    assert kill["renderings"][0]["action"] == {"shell": "kill {{ steps.count.data | join(' ') }} --limit 5"}
    assert kill["runtime"] == ["result.rc == 0", "steps.count.max > params.threshold", "steps.count.data | join(' ')"]
    check = steps["check"]["renderings"][0]["action"]
    assert check["assert"] == [
        {"expr": "steps.count.max < params.threshold", "decided": "run time"},
        {"expr": "params.threshold > 1", "value": True},
    ]
    assert check["message"] == "still {{ steps.count.max }} over 5 in {{ run.id }}"
    assert steps["tell"]["renderings"][0]["action"] == {"notify": "run {{ run.id }} (SEV3) done"}
    text = plan(capsys, str(book))
    assert "     when steps.count.max > params.threshold  [decided at run time]\n" in text
    assert "     until result.rc == 0  [decided at run time]\n" in text


def test_a_static_false_condition_skips_the_step(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    book = write_playbook(
        tmp_path,
        """\
        params:
          enabled: {type: boolean, default: false}
        targets:
          app: {hosts: app}
        mitigate:
          - id: restart
            "on": app
            when: params.enabled
            approval: required
            shell: systemctl restart app
        """,
    )
    step = plan_json(capsys, str(book))["plan"]["steps"][0]
    assert step["renderings"] == []
    assert step["skipped"] == [{"hosts": ["localhost"], "reason": "when: params.enabled is false"}]
    step = plan_json(capsys, str(book), "-e", "enabled=yes")["plan"]["steps"][0]
    assert step["renderings"][0]["hosts"] == ["localhost"]


def test_when_is_decided_once_for_the_step_not_per_host(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    book = write_playbook(
        tmp_path,
        """\
        targets:
          web: {hosts: web}
        diagnose:
          - {id: probe, "on": web, when: "vars.http_port == 80", shell: "true"}
        """,
    )
    err = plan(capsys, str(book), "-i", str(CASES / "ranges.ini"), code=2)
    assert err == (
        "irx: error: step probe: when: when: is decided once per step, on the control node: "
        "host and vars are not available in it\n"
    )


def test_a_control_node_step_has_no_host(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    book = write_playbook(tmp_path, 'verify:\n  - {id: tell, notify: {message: "done on {{ host.name }}"}}\n')
    err = plan(capsys, str(book), code=2)
    assert err == (
        "irx: error: step tell: notify.message: this step runs on the control node: "
        "host and vars exist only in steps with on:\n"
    )


def test_a_target_outside_the_limit_is_skipped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    book = write_playbook(tmp_path, GROUPED)
    data = plan_json(capsys, str(book), "-i", str(CASES / "ranges.ini"), "--limit", "web", "-e", "app_service=x")
    steps = {step["id"]: step for step in data["plan"]["steps"]}
    assert steps["status"]["skipped"] == [{"hosts": [], "reason": "no host of the target is within --limit"}]
    assert data["plan"]["targets"]["app"] == {"pattern": "app", "hosts": [], "excluded_by_limit": 9, "serial": 2}
    assert data["plan"]["inventory"] == {"name": str(CASES / "ranges.ini"), "limit": "web", "hosts": 21}
    assert (
        plan_json(capsys, str(book), "-i", str(CASES / "ranges.ini"), "--limit", "db01")["plan"]["inventory"]["hosts"]
        == 0
    )


def test_params_from_group_and_host_vars_are_per_host(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    book = write_playbook(
        tmp_path,
        """\
        params:
          max_conn: {type: integer, default: 10}
          health_url: {type: string, format: uri}
        targets:
          db: {hosts: dbservers}
          app: {hosts: app}
        diagnose:
          - id: limit
            "on": db
            shell: echo {{ params.max_conn }}
          - id: probe
            "on": app
            command: [curl, "{{ params.health_url }}"]
        """,
    )
    data = plan_json(capsys, str(book), "-i", str(CASES / "prod-dir"))
    params = data["plan"]["params"]
    assert params["max_conn"]["per_host"] == [
        {"hosts": ["db01.prod.example.net"], "value": 1000, "source": "inventory"},
        {"hosts": ["db02.prod.example.net"], "value": 500, "source": "inventory"},
    ]
    limit, probe = data["plan"]["steps"]
    assert [(g["hosts"], g["action"]["shell"]) for g in limit["renderings"]] == [
        (["db01.prod.example.net"], "echo 1000"),
        (["db02.prod.example.net"], "echo 500"),
    ]
    # templated in the inventory ("http://{{ inventory_hostname }}:8080/health"), rendered as Ansible would
    assert probe["renderings"][1]["action"]["command"] == ["curl", "http://app02.prod.example.net:8080/health"]


def test_a_target_matching_no_host_lists_the_groups(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    book = write_playbook(
        tmp_path,
        """\
        targets:
          db: {hosts: databases}
        diagnose:
          - {id: x, "on": db, shell: "true"}
        """,
    )
    err = plan(capsys, str(book), "-i", str(CASES / "prod-dir"), code=2)
    assert err == (
        f"irx: error: target db (databases) matches no host in inventory {CASES / 'prod-dir'}; "
        "its groups: app, cache, dbservers, prod, queue, web\n"
    )


# --- secrets ------------------------------------------------------------------------------------------

SECRETS = """\
params:
  pw: {type: string, secret: true}
  token: {type: string, secret: true, env: IRX_TEST_TOKEN}
  dsn: {type: string, secret: true, default: "postgresql://app:hunter2@db:5432/app"}
targets:
  db: {hosts: dbservers}
diagnose:
  - id: quoted
    "on": db
    shell: psql -X -c 'select 1'
    env: {PGPASSWORD: "{{ params.pw }}", TOKEN: "{{ params.token | reverse }}"}
  - id: argv
    "on": db
    command: [printenv, DATABASE_URL, UPPER]
    env: {DATABASE_URL: "{{ params.dsn }}", UPPER: "{{ params.pw | upper }}"}
  - id: call
    http:
      url: "https://api.example.net/v1?token={{ params.token | urlencode }}"
      headers: {Authorization: "Bearer {{ params.token }}"}
      json: {password: "{{ params.pw }}", nested: ["{{ params.pw }}"]}
      method: POST
    mutating: false
"""


@pytest.mark.parametrize("fmt", ["text", "json", "markdown"])
def test_secrets_are_never_shown(
    tmp_path: Path, fmt: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IRX_TEST_TOKEN", "tok-" + SECRET)
    book = write_playbook(tmp_path, SECRETS)
    out = plan(capsys, str(book), "-e", f"pw={SECRET}", "--format", fmt)
    for leak in (SECRET, SECRET.upper(), "hunter2", "tok-", "pa$$"):
        assert leak not in out
    assert "******" in out


def test_secrets_render_as_the_mask_in_every_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    book = write_playbook(tmp_path, SECRETS)
    data = plan_json(capsys, str(book), "-e", f"pw={SECRET}", "-e", "token=t0k3n")
    quoted, argv, call = (step["renderings"][0]["action"] for step in data["plan"]["steps"])
    assert quoted["shell"] == "psql -X -c 'select 1'"
    assert quoted["env"] == {"PGPASSWORD": "******", "TOKEN": "******"}  # the mask reversed, not the secret
    assert argv["env"] == {"DATABASE_URL": "******", "UPPER": "******"}
    assert call["http"]["headers"] == {"Authorization": "Bearer ******"}
    assert call["http"]["json"] == {"password": "******", "nested": ["******"]}
    assert data["plan"]["params"]["pw"] == {"type": "string", "secret": True, "value": "******", "source": "-e"}


def test_a_secret_in_an_error_message_is_masked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    book = write_playbook(
        tmp_path,
        """\
        params:
          pw: {type: string, secret: true}
        targets:
          db: {hosts: dbservers}
        diagnose:
          - {id: look, "on": db, env: {X: "{{ vars[params.pw] }}"}, shell: "printenv X"}
        """,
    )
    err = plan(capsys, str(book), "-e", f"pw={SECRET}", code=2)
    assert SECRET not in err
    assert err == "irx: error: step look: env.X: vars.****** is undefined\n"


# --- the hash -----------------------------------------------------------------------------------------


def run_irx(*args: str, cwd: Path = REPO, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [IRX, *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        cwd=cwd,
        env={**os.environ, **(env or {})},
    )


def test_the_plan_hash_is_stable_across_processes_and_checkable() -> None:
    inventory = ("--inventory", str(CASES / "prod-dir"), "-e", "health_url=https://www.example.net/health")
    args = ("plan", "slow-responses", *inventory, "--format", "json")
    first = run_irx(*args, env={"PYTHONHASHSEED": "1"})
    second = run_irx(*args, env={"PYTHONHASHSEED": "2"})
    assert first.returncode == second.returncode == 0, first.stderr + second.stderr
    one, two = json.loads(first.stdout), json.loads(second.stdout)
    assert one["hash"] == two["hash"]
    assert one["hash"] == "sha256:" + hashlib.sha256(canonical_json(one["plan"])).hexdigest()
    text = run_irx("plan", "slow-responses", *inventory)
    assert f"hash {one['hash']}\n" in text.stdout


def test_the_hash_follows_what_runs_not_secrets_or_paths(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    book = write_playbook(tmp_path, SECRETS)
    base = plan_json(capsys, str(book), "-e", "pw=pw-one", "-e", "token=tok-t")["hash"]
    assert plan_json(capsys, str(book), "-e", "pw=pw-two", "-e", "token=tok-t")["hash"] == base  # never seen
    other = tmp_path / "copy"
    other.mkdir()
    copy = other / "demo.yaml"
    copy.write_text(book.read_text())
    assert plan_json(capsys, str(copy), "-e", "pw=pw-one", "-e", "token=tok-t")["hash"] == base
    book2 = write_playbook(tmp_path, GROUPED, "grouped.yaml")
    inventory = ("-i", str(CASES / "ranges.ini"))
    one = plan_json(capsys, str(book2), *inventory, "-e", "port=80", "-e", "app_service=a")["hash"]
    assert plan_json(capsys, str(book2), *inventory, "-e", "port=81", "-e", "app_service=a")["hash"] != one
    assert plan_json(capsys, str(book2), *inventory, "-e", "port=80", "-e", "app_service=b")["hash"] != one
    limited = plan_json(capsys, str(book2), *inventory, "-e", "port=80", "-e", "app_service=a", "--limit", "app")
    assert limited["hash"] != one


# --- bad input: one line, a documented exit code, never a traceback -----------------------------------

BAD_TEMPLATE = """\
targets:
  app: {hosts: app}
diagnose:
  - id: show_port
    "on": app
    shell: echo {{ vars.no_such_var }}
"""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("-i", "nope"), "irx: error: inventory 'nope' not found: no inventories/nope[.yml|.yaml|.ini] in "),
        (("-i", str(CASES / "broken-vars.ini")), f"irx: error: inventory {CASES / 'broken-vars.ini'}: ini plugin: "),
        (("-i", str(CASES / "broken.yml")), f"irx: error: inventory {CASES / 'broken.yml'}: auto plugin: line 4: "),
        (
            ("--limit", "nosuchgroup"),
            "irx: error: --limit 'nosuchgroup' matches no host in inventory local; its groups: ",
        ),
        (("-e", "saturation_percent"), "irx: error: -e saturation_percent: expected KEY=VALUE, @FILE or a JSON object"),
        (("-e", "saturation_percent=lots"), "irx: error: param saturation_percent (from -e): 'lots' is not an integer"),
        (
            ("-e", "saturation_percent=101"),
            "irx: error: param saturation_percent (from -e): 101 is above the maximum 100",
        ),
        (("-e", "@/no/such/params.yml"), "irx: error: -e @/no/such/params.yml: no such file"),
        (("-e", "nosuch=1"), "irx: error: -e nosuch: db-pool-exhausted has no param 'nosuch' (its params: "),
        (("--format", "yaml"), "Error: Invalid value for '--format': 'yaml' is not one of 'text', 'json', 'markdown'."),
    ],
)
def test_bad_input_is_one_clear_line(args: tuple[str, ...], message: str) -> None:
    done = run_irx("plan", "db-pool-exhausted", *args)
    assert done.returncode == 2
    assert done.stdout == ""
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert lines[-1].startswith(message), done.stderr
    if not message.startswith("Error:"):  # click's own usage errors come with a usage line
        assert len(lines) == 1, done.stderr


def test_a_template_error_names_step_field_and_name(tmp_path: Path) -> None:
    book = write_playbook(tmp_path, BAD_TEMPLATE)
    done = run_irx("plan", str(book))
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == "irx: error: step show_port: shell: vars.no_such_var is undefined\n"


def test_an_unknown_playbook_is_a_usage_error() -> None:
    done = run_irx("plan", "no-such-playbook")
    assert done.returncode == 2
    assert done.stderr.startswith("irx: error: no playbook named 'no-such-playbook'")


# --- host lists -----------------------------------------------------------------------------------------


def test_compress_hosts_folds_numbered_runs_into_ansible_ranges() -> None:
    hosts = [f"web{i:02d}.example.net" for i in range(1, 21)] + ["db1", "db2", "db4", "lb", "app10", "app9"]
    assert compress_hosts(hosts) == ["web[01:20].example.net", "db[1:2]", "db4", "lb", "app[9:10]"]
    assert compress_hosts(["a1", "a01", "a2"]) == ["a01", "a[1:2]"]  # 01 and 1 are different names
    assert compress_hosts(["n08", "n09", "n10", "n11", "n100"]) == ["n[08:11]", "n100"]
    assert compress_hosts(["n8", "n9", "n10", "n011"]) == ["n[8:10]", "n011"]
    assert compress_hosts([]) == []


def test_a_secret_given_inline_with_e_is_warned_about(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """-e NAME=VALUE puts the secret in irx's own argv (ps); a file or the param's env var does not."""
    book = write_playbook(
        tmp_path,
        """\
        params:
          pw: {type: string, secret: true, env: DB_PASSWORD}
          user: {type: string}
        diagnose:
          - {id: show, assert: {that: "params.pw and params.user"}}
        """,
    )
    assert main(["plan", str(book), "-e", f"pw={SECRET}", "-e", "user=app"]) == 0
    err = capsys.readouterr().err
    assert err == (
        "irx: warning: param pw is secret, and -e puts it in irx's command line, visible to every user of this "
        "machine (ps); pass it in the environment variable DB_PASSWORD or a file (-e @FILE)\n"
    )
    (tmp_path / "vars.yml").write_text(f"pw: {json.dumps(SECRET)}\n")
    assert main(["plan", str(book), "-e", f"@{tmp_path / 'vars.yml'}", "-e", "user=app"]) == 0
    assert capsys.readouterr().err == ""

"""``irx new``: the files of a new playbook and its drill, as text (the command writes them).

The playbook carries what every shipped one does: the yaml-language-server modeline on line 1 (so an
editor checks it against irx's schema while it is typed), metadata, a param, and one step per phase:
a read-only diagnosis, a mitigation behind an approval, a verification that measures the recovery, and a
rollback. The drill skeleton follows docs/drills.md (molecule.yml, drill.yml, prepare.yml, verify.yml).
Every file is valid as written: ``irx validate`` is clean on a fresh scaffold.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}[a-z0-9]$")  # schemas/playbook.schema.json metadata.name


def check_name(name: str) -> str | None:
    """Why ``name`` cannot be a playbook name (the schema's metadata.name pattern), or None."""
    if NAME_PATTERN.match(name):
        return None
    return (
        f"'{name}' is not a playbook name: 2 to 64 lower-case letters, digits and dashes, "
        "starting and ending with a letter or digit (e.g. disk-full)"
    )


def schema_reference(playbook: Path) -> str:
    """What the modeline of ``playbook`` points at: ``../schemas/playbook.schema.json`` in a checkout laid out
    like irx's (schemas/ beside the playbook directory), else the schema installed with irx, relative to the
    playbook when they share a root, so the file still works from a clone elsewhere."""
    directory = playbook.parent.resolve()
    beside = directory.parent / "schemas" / "playbook.schema.json"
    target = beside if beside.is_file() else Path(str(resources.files("irx").joinpath("schemas/playbook.schema.json")))
    try:
        return Path(os.path.relpath(target.resolve(), directory)).as_posix()
    except ValueError:  # another drive (Windows)
        return target.resolve().as_uri()


def _title(name: str) -> str:
    return name.replace("-", " ").capitalize()


PLAYBOOK = """\
# yaml-language-server: $schema={schema}
apiVersion: irx/v1
kind: Playbook
metadata:
  name: {name}
  title: {title}
  severity: SEV3
  summary: >-
    TODO: what the responder sees, what this playbook checks, what it changes (and with whose approval)
    and how it proves the recovery. irx plan {name} shows every step; docs/playbook-format.md has the rest.
  tags: [todo]
  symptoms:
    - TODO the alert or the symptom that starts this playbook
params:
  service:
    type: string
    default: app
    pattern: "[A-Za-z0-9_.:@][A-Za-z0-9_.:@\\\\-]*"
    description: The systemd unit this playbook looks after.
targets:
  app:
    hosts: app
    serial: 1
    description: The hosts the service runs on (an inventory group), changed one at a time.

diagnose:
  - id: service_state
    name: Is the service running?
    "on": app
    command: [systemctl, is-active, "{{{{ params.service }}}}"]
    on_failure: continue  # not active is the finding, not the end of the run
    timeout: 15s

mitigate:
  - id: restart_service
    name: Restart the service
    "on": app
    become: true
    when: steps.service_state.failed
    approval: {{required: true, reason: "Restarting drops the service's open connections."}}
    module: ansible.builtin.systemd
    args:
      name: "{{{{ params.service }}}}"
      state: restarted
    timeout: 120s

verify:
  - id: service_running
    name: The service is running again
    "on": app
    mutating: false  # it only reads: a dry run checks it too
    command: [systemctl, is-active, "{{{{ params.service }}}}"]
    retries: 5
    delay: 3s
    timeout: 15s

rollback:
  - id: tell_humans
    name: Hand over to the humans
    notify:
      message: >-
        {name}: the service {{{{ params.service }}}} did not come back; irx stopped changing things.
        Take over by hand.
"""

MOLECULE = """\
# Drill: {name} against a real fault. How drills work: docs/drills.md. Run: molecule test -s {name}
# TODO: say what the fault is and what must fix it.
ansible:
  executor:
    args:
      ansible_playbook: ["--inventory=${{MOLECULE_PROJECT_DIRECTORY}}/molecule/_shared/inventory.yml"]
  playbooks:
    create: ../_shared/create.yml
    prepare: prepare.yml
    converge: ../_shared/converge.yml
    verify: verify.yml
    destroy: ../_shared/destroy.yml
scenario:
  test_sequence: [destroy, create, prepare, converge, verify, destroy]
"""

DRILL = """\
# The healthy system the drill starts (units under molecule/_shared/services or your own), the fault's
# parameters, the params irx gets (-e), the steps that must fix the fault and the run's expected status.
# TODO: replace the stand-in application by the service this playbook looks after.
drill_start: [app]
drill_ports: ["{{{{ web_port }}}}"]
drill_units:
  app:
    description: Application
    exec: ["{{{{ irx_python }}}}", "{{{{ drill_root }}}}/apps/cpu_burner.py", --health, "127.0.0.1:{{{{ web_port }}}}"]
    ready: {{tcp: "127.0.0.1:{{{{ web_port }}}}", timeout: 15}}
    stop_timeout: 5
drill_params:
  service: app
drill_fix: [restart_service]
"""

PREPARE = """\
# The fault, injected for real: wait until a real client sees it (docs/drills.md, "Writing a new drill").
- name: Inject the fault of {name}
  hosts: localhost
  gather_facts: false
  vars_files:
    - ../_shared/vars.yml
    - drill.yml
  tasks:
    - name: Stop the application the way the incident does (TODO - the real fault)
      ansible.builtin.command:
        argv: [systemctl, kill, --signal=KILL, app]
      environment: "{{{{ drill_env }}}}"
      changed_when: true
"""

VERIFY = """\
# Recovered for real: check the service with its own client, not with irx's exit code. A drill must be
# able to fail: without the fix in the playbook, these checks go red.
- name: Verify {name} recovered
  hosts: localhost
  gather_facts: false
  vars_files:
    - ../_shared/vars.yml
    - drill.yml
  tasks:
    - name: The shared drill checks
      ansible.builtin.include_tasks: ../_shared/verify-run.yml

    - name: The service answers (TODO - ask it with its own client)
      ansible.builtin.command:
        argv: [systemctl, is-active, app]
      environment: "{{{{ drill_env }}}}"
      changed_when: false

    - name: The journal shows the fix
      ansible.builtin.assert:
        quiet: true
        that:
          - run_steps.restart_service.status == 'ok'
          - run_steps.service_running.status == 'ok'
"""


@dataclass(frozen=True)
class Scaffold:
    """The files ``irx new NAME`` writes: path -> text, the playbook first."""

    files: dict[Path, str]


def scaffold(name: str, playbook: Path, drill_dir: Path | None) -> Scaffold:
    """The playbook ``name`` at ``playbook`` and, unless ``drill_dir`` is None, its drill scenario there."""
    values = {"name": name, "title": _title(name), "schema": schema_reference(playbook)}
    files = {playbook: PLAYBOOK.format(**values)}
    if drill_dir is not None:
        for filename, text in (
            ("molecule.yml", MOLECULE),
            ("drill.yml", DRILL),
            ("prepare.yml", PREPARE),
            ("verify.yml", VERIFY),
        ):
            files[drill_dir / filename] = text.format(**values)
    return Scaffold(files)

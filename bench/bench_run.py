"""irx run vs a hand-written ansible-playbook: same 6 host tasks, same 3 SSH hosts, same run.

The playbook: 3 diagnose steps, 2 mitigate steps (one guarded by a `when` on a parsed diagnostic), 1
verify step, on three real sshd hosts in network namespaces (irx_testenv.SshHosts). The reference is the
ansible-playbook an engineer would write for the same job (register + when). Both use Ansible's default
SSH settings (ControlMaster=auto, ControlPersist) with a fresh control-path directory per run, pipelining
on. Runs are interleaved; the table reports min and median wall time, the ratio irx/ansible-playbook, and
the time to the first diagnostic result (irx: the journal's first host_result; ansible-playbook: the
first per-host result line it prints).

    .venv/bin/python bench/bench_run.py [--runs 5] [--write]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from bench_validate import update_results

from irx_testenv import SshHosts

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SECTION = "## irx run vs ansible-playbook"

IRX_PLAYBOOK = """\
apiVersion: irx/v1
kind: Playbook
metadata: {name: bench-run, title: Six host steps, severity: SEV3}
targets:
  all: {hosts: testhosts}
diagnose:
  - {id: load, on: all, shell: "cat /proc/loadavg | cut -d' ' -f1"}
  - {id: procs, on: all, shell: "ps -e --no-headers | wc -l", parse: int}
  - {id: disk, on: all, shell: "df -P / | tail -1 | tr -s ' ' | cut -d' ' -f5 | tr -d %", parse: int}
mitigate:
  - {id: mark, on: all, shell: "touch /tmp/irx-bench-mark"}
  - {id: busy, on: all, shell: "echo busy", when: steps.procs.max > 100000}
verify:
  - {id: check, on: all, shell: "test -f /tmp/irx-bench-mark"}
"""

ANSIBLE_PLAYBOOK = """\
- hosts: testhosts
  gather_facts: false
  tasks:
    - {name: load, shell: "cat /proc/loadavg | cut -d' ' -f1", register: load}
    - {name: procs, shell: "ps -e --no-headers | wc -l", register: procs}
    - {name: disk, shell: "df -P / | tail -1 | tr -s ' ' | cut -d' ' -f5 | tr -d %", register: disk}
    - {name: mark, shell: "touch /tmp/irx-bench-mark"}
    - {name: busy, shell: "echo busy", when: "procs.stdout | int > 100000"}
    - {name: check, shell: "test -f /tmp/irx-bench-mark"}
"""


def timed(argv: list[str], env: dict[str, str], cwd: Path, first_marker: str | None) -> tuple[float, float | None]:
    """Wall time of a command, and when a line starting with ``first_marker`` first appeared."""
    started = time.monotonic()
    first: float | None = None
    with subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc:
        assert proc.stdout is not None
        output = []
        for line in proc.stdout:
            output.append(line)
            if first is None and first_marker and line.lstrip().startswith(first_marker):
                first = time.monotonic() - started
        rc = proc.wait(timeout=300)
    wall = time.monotonic() - started
    if rc != 0:
        raise SystemExit(f"{argv[0]} failed (rc {rc}):\n{''.join(output)[-2000:]}")
    return wall, first


def irx_first_result(runs_dir: Path) -> float:
    journal = sorted(runs_dir.glob("*/timeline.jsonl"))[-1]
    events = [json.loads(line) for line in journal.read_text().splitlines()]
    start = dt.datetime.fromisoformat(events[0]["ts"].replace("Z", "+00:00"))
    first = next(e for e in events if e["type"] == "host_result")
    return (dt.datetime.fromisoformat(first["ts"].replace("Z", "+00:00")) - start).total_seconds()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--write", action="store_true", help=f"update '{SECTION}' in bench/RESULTS.md")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="irx-bench-run-"))
    (work / "playbooks").mkdir()
    (work / "playbooks" / "bench-run.yaml").write_text(IRX_PLAYBOOK)
    (work / "site.yml").write_text(ANSIBLE_PLAYBOOK)
    with SshHosts(("web1", "web2", "db1"), base_dir=work) as hosts:
        inventory = hosts.inventory()
        group_vars = inventory["all"]["children"]["testhosts"]["vars"]
        group_vars["ansible_ssh_common_args"] = (
            f"-o UserKnownHostsFile={hosts.known_hosts} -o StrictHostKeyChecking=yes"
        )
        group_vars.pop("ansible_ssh_args")  # Ansible's defaults: ControlMaster=auto, ControlPersist=60s
        (work / "inventory.yml").write_text(yaml.safe_dump(inventory))
        irx_wall, irx_first, ans_wall, ans_first = [], [], [], []
        for index in range(args.runs):
            for tool in ("irx", "ansible") if index % 2 == 0 else ("ansible", "irx"):
                env = {
                    **os.environ,
                    "PATH": f"{BIN}:{os.environ['PATH']}",
                    "ANSIBLE_HOST_KEY_CHECKING": "True",
                    "ANSIBLE_SSH_CONTROL_PATH_DIR": tempfile.mkdtemp(prefix="cp-", dir=work),
                    "ANSIBLE_PIPELINING": "True",
                    "IRX_RUNS_DIR": str(work / "runs"),
                    "IRX_LOCK_DIR": str(work / "locks"),
                    "NO_COLOR": "1",
                    "ANSIBLE_NOCOLOR": "1",
                }
                if tool == "irx":
                    wall, _ = timed(
                        [str(BIN / "irx"), "run", "bench-run", "-i", "inventory.yml", "--yes", "-p", "playbooks"],
                        env,
                        work,
                        None,
                    )
                    irx_wall.append(wall)
                    irx_first.append(irx_first_result(work / "runs"))
                else:
                    wall, first = timed(
                        [str(BIN / "ansible-playbook"), "-i", "inventory.yml", "site.yml"], env, work, "changed: ["
                    )
                    ans_wall.append(wall)
                    ans_first.append(first or float("nan"))
    table = render(irx_wall, irx_first, ans_wall, ans_first)
    print(f"{SECTION}\n\n{table}")
    if args.write:
        update_results(SECTION, table)
    return 0


def render(irx_wall: list[float], irx_first: list[float], ans_wall: list[float], ans_first: list[float]) -> str:
    ratio = statistics.median(irx_wall) / statistics.median(ans_wall)
    lines = [
        f"{dt.date.today().isoformat()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{len(irx_wall)} interleaved runs each; 6 host tasks (3 diagnose, 2 mitigate with one `when`, 1 verify) "
        "on 3 SSH hosts in network namespaces, Ansible's default SSH settings, pipelining on.",
        "",
        "| tool | wall min | wall median | first diagnostic result (median) |",
        "|---|---|---|---|",
        f"| `irx run --yes` | {min(irx_wall):.2f} s | {statistics.median(irx_wall):.2f} s | "
        f"{statistics.median(irx_first):.2f} s |",
        f"| `ansible-playbook` (register/when) | {min(ans_wall):.2f} s | {statistics.median(ans_wall):.2f} s | "
        f"{statistics.median(ans_first):.2f} s |",
        "",
        f"Ratio irx / ansible-playbook (median wall): **{ratio:.2f}** (goal ≤ 1.15). irx includes its own work: "
        "loading and validating the playbook, the inventory, the plan hash, the SSH preflight, the fsync'd "
        "journal and the lock; Ansible's start-up is paid once per run (one ansible-runner session fed step by "
        "step).",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())

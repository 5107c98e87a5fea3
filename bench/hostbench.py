"""What bench_run.py and bench_scale.py share: the playbook, the tools, and timing a run from process spawn.

Every tool is timed the same way: the clock starts just before the process is spawned, the wall time
ends when it has exited, and the *first diagnostic result* is when the first host result of the first
diagnose task is known:

* ``irx run``: the ``ts`` of the journal's first ``host_result`` event with ``phase: diagnose`` (written
  and fsync'd as the result arrives; microsecond UTC), minus the spawn time (``time.time()``);
* ``ansible-playbook`` (plain, and with Mitogen's ``mitogen_linear`` strategy): the moment its first
  ``ok: [host]`` / ``changed: [host]`` line is read from its output (the linear strategy prints each
  host's result as it arrives; the first task is the first diagnose command).

Both sides run the same six shell commands on the same hosts with the same inventory, SSH settings
(Ansible's defaults: ControlMaster=auto, ControlPersist=60s, a fresh control-path directory per run) and
pipelining on. Mitogen is never an irx dependency: it is installed with pip into a cache directory of
its own (``--target``) the first time, and the column is left out when that fails.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

import yaml

from irx_testenv import SshHosts

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
MITOGEN_VERSION = "0.3.54"
MITOGEN_DIR = Path(
    os.environ.get("IRX_BENCH_MITOGEN", Path.home() / ".cache" / "irx-bench" / f"mitogen-{MITOGEN_VERSION}")
)

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

ANSIBLE_RESULT = re.compile(r"^(?:ok|changed): \[")
IRX_RESULT = re.compile(r"^\s*\d+(?:\.\d+)?s\s+[✓✗] \S+ [a-z ]+ \(\d+(?:\.\d+)?s\)$")  # a host's line
TOOLS = {
    "irx": "irx run --yes",
    "irx-mitogen": "irx run --yes --mitogen",
    "ansible": "ansible-playbook",
    "mitogen": "ansible-playbook + Mitogen",
}


@dataclass
class Sample:
    wall: float
    first: float  # the first host's result line on stdout (Ansible's `ok: [web1]`, irx's `✓ web1 ok (0.5s)`)
    journaled: float | None = None  # irx: its journal's first diagnose host_result (the step's whole batch)
    cpu: float | None = None  # the whole machine's busy CPU seconds while it ran: the tool, its ssh, the hosts


@dataclass
class Series:
    """The samples of one tool in one configuration."""

    tool: str
    samples: list[Sample] = field(default_factory=list)
    failed: int = 0  # runs that did not exit 0 (reported, not timed)

    def walls(self) -> list[float]:
        return [s.wall for s in self.samples]

    def firsts(self) -> list[float]:
        return [s.first for s in self.samples]

    def journaled(self) -> list[float]:
        return [s.journaled for s in self.samples if s.journaled is not None]

    def cpus(self) -> list[float]:
        return [s.cpu for s in self.samples if s.cpu is not None]


def busy_cpu() -> float | None:
    """The machine's busy CPU seconds since boot (``/proc/stat``: every state but idle and iowait), or None
    where there is no /proc. The hosts are processes in network namespaces of this same machine: the
    difference over a run is the tool's work, its SSH clients' and the hosts' side of it together."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return None
    ticks = [int(f) for f in fields[:8]]
    busy = sum(ticks) - ticks[3] - ticks[4]  # idle, iowait
    return busy / os.sysconf("SC_CLK_TCK")


def exit_on_signals() -> None:
    """SIGTERM and SIGHUP become an exit that unwinds through ``finally``/``with``: the hosts come down
    (Python's default for SIGTERM kills the process without running either)."""

    def terminate(signum: int, _frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, terminate)
    signal.signal(signal.SIGHUP, terminate)


def mitogen_strategy_dir() -> Path | None:
    """Mitogen's Ansible strategy plugins, installed on first use; None when it does not install here."""
    plugins = MITOGEN_DIR / "ansible_mitogen" / "plugins" / "strategy"
    if not plugins.is_dir():
        pip = [sys.executable, "-m", "pip", "install", "--quiet", "--target", str(MITOGEN_DIR)]
        done = subprocess.run([*pip, f"mitogen=={MITOGEN_VERSION}"], capture_output=True, text=True, check=False)
        if done.returncode != 0 or not plugins.is_dir():
            reason = done.stderr[-800:]
            print(f"Mitogen {MITOGEN_VERSION} did not install; no Mitogen column:\n{reason}", file=sys.stderr)
            return None
    return plugins


def write_inventory(hosts: SshHosts, work: Path, count: int | None = None) -> Path:
    """The SshHosts inventory (its first ``count`` hosts) with Ansible's default SSH connection sharing
    (what a user gets), and both playbooks, in ``work``."""
    inventory = hosts.inventory()
    group = inventory["all"]["children"]["testhosts"]
    if count is not None:
        group["hosts"] = dict(list(group["hosts"].items())[:count])
    group_vars = group["vars"]
    group_vars["ansible_ssh_common_args"] = f"-o UserKnownHostsFile={hosts.known_hosts} -o StrictHostKeyChecking=yes"
    group_vars.pop("ansible_ssh_args")  # Ansible's defaults: ControlMaster=auto, ControlPersist=60s
    work.mkdir(parents=True, exist_ok=True)
    path = work / "inventory.yml"
    path.write_text(yaml.safe_dump(inventory))
    (work / "playbooks").mkdir(exist_ok=True)
    (work / "playbooks" / "bench-run.yaml").write_text(IRX_PLAYBOOK)
    (work / "site.yml").write_text(ANSIBLE_PLAYBOOK)
    return path


def environment(work: Path, tool: str, mitogen: Path | None) -> dict[str, str]:
    env = {
        **os.environ,
        "PATH": f"{BIN}:{os.environ['PATH']}",
        "ANSIBLE_HOST_KEY_CHECKING": "True",
        "ANSIBLE_SSH_CONTROL_PATH_DIR": tempfile.mkdtemp(prefix="cp-", dir=work),
        "ANSIBLE_PIPELINING": "True",
        "IRX_RUNS_DIR": tempfile.mkdtemp(prefix="runs-", dir=work),
        "IRX_LOCK_DIR": str(work / "locks"),
        "NO_COLOR": "1",
        "ANSIBLE_NOCOLOR": "1",
    }
    if tool == "mitogen":
        assert mitogen is not None
        env["ANSIBLE_STRATEGY_PLUGINS"] = str(mitogen)
        env["ANSIBLE_STRATEGY"] = "mitogen_linear"
    return env


def argv(tool: str, forks: int) -> list[str]:
    if tool.startswith("irx"):
        return [str(BIN / "irx"), "run", "bench-run", "-i", "inventory.yml", "--yes", "-p", "playbooks",
                "--forks", str(forks), *(["--mitogen"] if tool == "irx-mitogen" else [])]  # fmt: skip
    return [str(BIN / "ansible-playbook"), "-i", "inventory.yml", "-f", str(forks), "site.yml"]


def run_once(tool: str, work: Path, forks: int, mitogen: Path | None) -> Sample | None:
    """One run of ``tool``, timed from spawn: its wall time and its first diagnostic result; None (and its
    output's tail on stderr) when it failed: a failed run is counted and reported, never timed."""
    env = environment(work, tool, mitogen)
    output: list[str] = []
    first: float | None = None
    spawned_at = time.time()
    cpu_before = busy_cpu()
    started = time.monotonic()
    with subprocess.Popen(
        argv(tool, forks), cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            output.append(line)
            if first is None and (IRX_RESULT if tool.startswith("irx") else ANSIBLE_RESULT).match(line):
                first = time.monotonic() - started
        rc = proc.wait(timeout=600)
    wall = time.monotonic() - started
    cpu_after = busy_cpu()
    cpu = cpu_after - cpu_before if cpu_before is not None and cpu_after is not None else None
    text = "".join(output)
    if rc != 0:  # an unknown strategy (Mitogen not loadable) is an error too, not a silent fallback
        print(f"{tool} failed (rc {rc}), not timed:\n{text[-1500:]}", file=sys.stderr)
        return None
    journaled = irx_first_result(Path(env["IRX_RUNS_DIR"])) - spawned_at if tool.startswith("irx") else None
    if first is None:
        raise SystemExit(f"{tool}: no host result line in its output:\n{text[-3000:]}")
    return Sample(wall, first, journaled, cpu)


def irx_first_result(runs_dir: Path) -> float:
    """The wall-clock time (epoch seconds) of the run's first diagnose host result."""
    journals = list(runs_dir.glob("*/timeline.jsonl"))
    if len(journals) != 1:
        raise SystemExit(f"expected one run journal in {runs_dir}, found {len(journals)}")
    for line in journals[0].read_text().splitlines():
        event = json.loads(line)
        if event.get("type") == "host_result" and event.get("phase") == "diagnose":
            return dt.datetime.fromisoformat(event["ts"].replace("Z", "+00:00")).timestamp()
    raise SystemExit(f"no diagnose host_result in {journals[0]}")


def interleaved(
    tools: Sequence[str],
    runs: int,
    work: Path,
    forks: int,
    mitogen: Path | None,
    loads: list[tuple[float, float]],
    warmup: bool = True,
) -> dict[str, Series]:
    """``runs`` rounds of every tool after one warm-up round, rotating the order each round; the
    1-minute load average is recorded before and after each round."""
    series = {tool: Series(tool) for tool in tools}
    # The warm-up writes no bytecode where PYTHONDONTWRITEBYTECODE is set, and pip compiled ansible-core's
    # but not irx's editable sources: compile them, so both sides start from cached bytecode.
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(REPO / "engine" / "irx")], check=True)
    for tool in tools if warmup else ():  # warm-up: page cache, host keys, Python bytecode
        run_once(tool, work, forks, mitogen)
    for index in range(runs):
        order = list(tools[index % len(tools) :]) + list(tools[: index % len(tools)])
        before = os.getloadavg()[0]
        for tool in order:
            sample = run_once(tool, work, forks, mitogen)
            if sample is None:
                series[tool].failed += 1
            else:
                series[tool].samples.append(sample)
        loads.append((before, os.getloadavg()[0]))
    return series


def med(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def low(values: Sequence[float]) -> float:
    return min(values) if values else float("nan")


def label(series: Series) -> str:
    return TOOLS[series.tool] + (f" ({series.failed} failed, not timed)" if series.failed else "")


def commit() -> str:
    """The commit of the irx that the benchmarked ``irx`` imports (PYTHONPATH decides), and its path."""
    found = subprocess.run(
        [str(BIN / "python"), "-c", "import irx; print(irx.__file__)"], capture_output=True, text=True, check=False
    )
    engine = Path(found.stdout.strip()).resolve().parents[1]

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=engine, capture_output=True, text=True, check=False).stdout.strip()

    head = git("rev-parse", "--short", "HEAD")
    if not head:
        return f"(irx from {engine}, not a git checkout)"
    dirty = " + uncommitted changes" if git("status", "--porcelain", ".") else ""
    return f"{head}{dirty} (irx from {engine})"


def versions() -> str:
    from importlib import metadata

    parts = [f"irx {metadata.version('irx')}", f"ansible-core {metadata.version('ansible-core')}"]
    return ", ".join(parts)


def load_text(loads: Sequence[tuple[float, float]]) -> str:
    return ", ".join(f"{a:.1f}/{b:.1f}" for a, b in loads)

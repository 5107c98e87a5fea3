"""irx run vs a hand-written ansible-playbook (and ansible-playbook + Mitogen): same 6 tasks, 3 SSH hosts.

The playbook: 3 diagnose steps, 2 mitigate steps (one guarded by a `when` on a parsed diagnostic), 1
verify step, on three real sshd hosts in network namespaces (irx_testenv.SshHosts). The reference is the
ansible-playbook an engineer would write for the same job (register + when), run plain and with
Mitogen's ``mitogen_linear`` strategy. Every tool is timed from process spawn, the same way (see
hostbench.py): wall time to exit, and time to the first diagnostic result. Runs are interleaved (the
order rotates each round) after a warm-up round; the 1-minute load average is recorded around each round.

    .venv/bin/python bench/bench_run.py [--runs 7] [--quick] [--no-mitogen] [--write]
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import os
import platform
import sys
import tempfile
from pathlib import Path

import hostbench as hb
from bench_validate import machine, update_results

from irx_testenv import SshHosts

SECTION = "## irx run vs ansible-playbook"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7, help="interleaved rounds after the warm-up (default 7)")
    parser.add_argument("--quick", action="store_true", help="3 rounds: a rough figure in about a minute")
    parser.add_argument("--no-mitogen", action="store_true", help="leave out the ansible-playbook + Mitogen column")
    parser.add_argument("--write", action="store_true", help=f"update '{SECTION}' in bench/RESULTS.md")
    args = parser.parse_args()
    runs = 3 if args.quick else args.runs
    mitogen = None if args.no_mitogen else hb.mitogen_strategy_dir()
    # irx --mitogen: Mitogen in irx's own Python (pip install 'irx[mitogen]'), as an operator would run it
    irx_mitogen = importlib.util.find_spec("ansible_mitogen") is not None and not args.no_mitogen
    tools = ["irx", "ansible", *(["irx-mitogen"] if irx_mitogen else []), *(["mitogen"] if mitogen else [])]
    work = Path(tempfile.mkdtemp(prefix="irx-bench-run-"))
    hb.exit_on_signals()
    loads: list[tuple[float, float]] = []
    started = dt.datetime.now(dt.UTC)
    with SshHosts(("web1", "web2", "db1"), base_dir=work, connect_timeout=30) as hosts:
        hb.write_inventory(hosts, work)
        series = hb.interleaved(tools, runs, work, 5, mitogen, loads)
    table = render(series, runs, loads, started)
    print(f"{SECTION}\n\n{table}")
    if args.write:
        update_results(SECTION, table)
    return 0


def render(series: dict[str, hb.Series], runs: int, loads: list[tuple[float, float]], started: dt.datetime) -> str:
    base = series["ansible"]
    lines = [
        f"Measured {started:%Y-%m-%d %H:%M} UTC on {machine()}, commit {hb.commit()}; {hb.versions()}"
        + (f", Mitogen {hb.MITOGEN_VERSION}" if "mitogen" in series else "")
        + ".",
        f"1-minute load average before/after each round: {hb.load_text(loads)} ({os.cpu_count()} cores).",
        "",
        f"{runs} interleaved rounds (order rotating) after a warm-up round; 6 host tasks (3 diagnose, 2 mitigate "
        "with one `when`, 1 verify) on 3 SSH hosts in network namespaces, forks 5, Ansible's default SSH "
        "settings (ControlPersist), pipelining on. **Every time is from process spawn**: wall to exit; first "
        "diagnostic result = the first host's result line of the first diagnose task on stdout, read the same "
        "way for both (Ansible: `ok: [web1]`; irx: `✓ web1 ok (0.3s)`). irx also journals the step's results "
        "with their output once every host of the step answered: *journaled* below. *Machine CPU*: the busy "
        "CPU seconds of the whole machine (`/proc/stat`) while the tool ran: its own processes, its SSH clients "
        "and the hosts' side (the namespace hosts are processes of this machine).",
        "",
        "| tool | wall min | wall median | x ansible-playbook | first result min | first result median "
        "| x ansible-playbook | machine CPU median |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for one in series.values():
        lines.append(
            f"| {hb.label(one)} | {hb.low(one.walls()):.2f} s | {hb.med(one.walls()):.2f} s | "
            f"{hb.med(one.walls()) / hb.med(base.walls()):.2f} | {hb.low(one.firsts()):.2f} s | "
            f"{hb.med(one.firsts()):.2f} s | {hb.med(one.firsts()) / hb.med(base.firsts()):.2f} | "
            f"{hb.med(one.cpus()):.2f} s |"
        )
    journaled = [f"{hb.label(one)} {hb.med(one.journaled()):.2f} s" for one in series.values() if one.journaled()]
    lines += ["", "First diagnose result journaled (median, from spawn): " + "; ".join(journaled) + "."]
    irx = series["irx"]
    wall_ratio = hb.med(irx.walls()) / hb.med(base.walls())
    first_ratio = hb.med(irx.firsts()) / hb.med(base.firsts())
    lines += [
        "",
        f"Goals (issue 15): irx / ansible-playbook wall ≤ 0.85: **{wall_ratio:.2f}** "
        f"({'met' if wall_ratio <= 0.85 else 'not met'}); first diagnostic result from spawn ≤ 0.6: "
        f"**{first_ratio:.2f}** ({'met' if first_ratio <= 0.6 else 'not met'}).",
        f"Python {platform.python_version()}. Reproduce: `.venv/bin/python bench/bench_run.py --write` "
        "(`--quick`: 3 rounds).",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())

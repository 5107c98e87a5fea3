"""Scaling: the bench_run.py playbook on 3, 10 and 30 SSH namespace hosts, forks 5 (Ansible's default)
and forks = hosts, irx run next to ansible-playbook (and ansible-playbook + Mitogen where it installs).

One set of 30 sshd hosts in network namespaces (irx_testenv.SshHosts) is started once; each host count
uses an inventory of its first N hosts. Every tool is timed from process spawn the same way as in
bench_run.py (hostbench.py). For each configuration, the tools run in interleaved rounds (order
rotating) after a warm-up round. The table gives the median wall time, the wall time per task (6 tasks),
and the *marginal cost of one host-task*: (median wall at N hosts - median wall at 3 hosts) / ((N - 3) x 6)
at the same forks. The hosts are always taken down: on success, error, Ctrl-C or SIGTERM (the context
manager's stop, then ``irx_testenv status``/``down`` on this run's uid if anything is left).

    .venv/bin/python bench/bench_scale.py [--runs 3] [--quick] [--no-mitogen] [--hosts 3,10,30] [--write]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import hostbench as hb
from bench_validate import machine, update_results

from irx_testenv import SshHosts

SECTION = "## Scaling: irx run vs ansible-playbook on 3, 10 and 30 hosts"
TASKS = 6


def configurations(counts: list[int]) -> list[tuple[int, int]]:
    """(hosts, forks): forks 5 and forks = hosts, once when they coincide or hosts <= 5."""
    out: list[tuple[int, int]] = []
    for count in counts:
        out.append((count, 5))
        if count > 5:
            out.append((count, count))
    return out


def leftover_check(uid: str) -> None:
    """After stop(): nothing of this uid may remain; if something does, irx_testenv down removes it."""
    status = subprocess.run(
        [sys.executable, "-m", "irx_testenv", "status", "--uid", uid], capture_output=True, text=True, check=False
    )
    if status.returncode != 0 or status.stdout.strip():
        print(f"leftovers of {uid} after stop:\n{status.stdout}{status.stderr}", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "irx_testenv", "down", "--uid", uid], check=False)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="interleaved rounds per configuration (default 3)")
    parser.add_argument("--quick", action="store_true", help="1 round per configuration, one warm-up overall")
    parser.add_argument("--no-mitogen", action="store_true", help="leave out the ansible-playbook + Mitogen column")
    parser.add_argument("--hosts", default="3,10,30", help="host counts, comma-separated (default 3,10,30)")
    parser.add_argument("--write", action="store_true", help=f"update '{SECTION}' in bench/RESULTS.md")
    args = parser.parse_args()
    counts = sorted({int(c) for c in args.hosts.split(",")})
    if not counts or counts[0] < 1 or counts[-1] > 200:
        parser.error("--hosts: counts between 1 and 200")
    runs = 1 if args.quick else args.runs
    mitogen = None if args.no_mitogen else hb.mitogen_strategy_dir()
    tools = ["irx", "ansible", *(["mitogen"] if mitogen else [])]
    work = Path(tempfile.mkdtemp(prefix="irx-bench-scale-"))
    hb.exit_on_signals()
    started = dt.datetime.now(dt.UTC)
    results: dict[tuple[int, int], dict[str, hb.Series]] = {}
    loads: dict[tuple[int, int], list[tuple[float, float]]] = {}
    hosts = SshHosts(
        [f"h{i:02d}" for i in range(1, counts[-1] + 1)], base_dir=work, start_timeout=120, connect_timeout=30
    )
    try:
        hosts.start()
        for count in counts:
            hb.write_inventory(hosts, work / f"h{count}", count)
        for index, (count, forks) in enumerate(configurations(counts)):
            loads[(count, forks)] = []
            results[(count, forks)] = hb.interleaved(
                tools, runs, work / f"h{count}", forks, mitogen, loads[(count, forks)], not args.quick or index == 0
            )
            print(f"done: {count} hosts, forks {forks}", file=sys.stderr)
    finally:
        hosts.stop()
        leftover_check(hosts.uid)
    table = render(results, loads, tools, runs, started)
    print(f"{SECTION}\n\n{table}")
    if args.write:
        update_results(SECTION, table)
    return 0


def render(
    results: dict[tuple[int, int], dict[str, hb.Series]],
    loads: dict[tuple[int, int], list[tuple[float, float]]],
    tools: list[str],
    runs: int,
    started: dt.datetime,
) -> str:
    lines = [
        f"Measured {started:%Y-%m-%d %H:%M} UTC on {machine()}, commit {hb.commit()}; {hb.versions()}"
        + (f", Mitogen {hb.MITOGEN_VERSION}" if "mitogen" in tools else "")
        + f"; {os.cpu_count()} cores.",
        "",
        f"The bench_run.py playbook (6 host tasks) on N SSH namespace hosts; {runs} interleaved round(s) per "
        "configuration; times from process spawn; Ansible's default SSH settings, pipelining on. "
        "`irx run --forks F`, `ansible-playbook -f F`. Marginal = (median wall at N - at 3 hosts, same forks) / "
        f"((N - 3) x {TASKS}): what one more host costs per task. First result: the first host's result line on "
        "stdout, as in bench_run.py; journaled: irx's first diagnose `host_result` (after the step's whole batch). "
        "Machine CPU: the whole machine's busy CPU seconds while the tool ran (bench_run.py).",
        "",
        "| hosts | forks | tool | wall min | wall median | x ansible-playbook | per task | marginal per host-task "
        "| first result median | journaled | machine CPU median | load before/after |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    smallest = min(count for count, _ in results)
    for (count, forks), series in results.items():
        base = series["ansible"]
        for tool in tools:
            one = series[tool]
            wall = hb.med(one.walls())
            ref = results.get((smallest, 5)) or results.get((smallest, smallest))
            marginal = "-"
            if ref is not None and count > smallest:
                marginal = f"{(wall - hb.med(ref[tool].walls())) / ((count - smallest) * TASKS) * 1000:.0f} ms"
            lines.append(
                f"| {count} | {forks} | {hb.label(one)} | {hb.low(one.walls()):.2f} s | {wall:.2f} s | "
                f"{wall / hb.med(base.walls()):.2f} | {wall / TASKS:.2f} s | {marginal} | "
                f"{hb.med(one.firsts()):.2f} s | {f'{hb.med(one.journaled()):.2f} s' if one.journaled() else '-'} | "
                f"{hb.med(one.cpus()):.2f} s | {hb.load_text(loads[(count, forks)])} |"
            )
    lines += ["", "Reproduce: `.venv/bin/python bench/bench_scale.py --write` (`--quick`: 1 round each).", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark: start-up of ``irx --help`` and ``irx validate ONE_FILE`` vs ``ansible-playbook --version``.

Each command runs ``--repeat`` times (default 15), interleaved and after one warm-up run each, from the
repository root; the median wall time is compared with ``ansible-playbook --version`` (goals:
``irx --help`` <= 0.3x, ``irx validate ONE_FILE`` <= 0.6x). ``python -c pass`` is shown as the floor
(interpreter start-up alone). Every run must exit 0 (and the validated file must be clean), otherwise the
benchmark aborts. ``--write`` updates the section "## Start-up" of bench/RESULTS.md.

    .venv/bin/python bench/bench_startup.py [--repeat 15] [--write]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path

from bench_validate import BIN, REPO, Series, header_lines, interleave, load, table, update_results

SECTION = "## Start-up"
GOALS = {"irx --help": 0.3, "irx validate ONE_FILE": 0.6}


def one_file() -> Path:
    for candidate in (REPO / "playbooks" / "db-pool-exhausted.yaml", REPO / "tests/cases/valid/full.yaml"):
        if candidate.is_file():
            return candidate.relative_to(REPO)
    sys.exit("benchmark aborted: no playbook to validate")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=15, help="measured runs per command (default 15)")
    parser.add_argument("--write", action="store_true", help="update bench/RESULTS.md")
    args = parser.parse_args(argv)

    load_before = load()
    playbook = one_file()
    ansible = Series(
        "ansible-playbook --version", [str(BIN / "ansible-playbook"), "--version"], REPO, "ansible-playbook"
    )
    series = [
        Series("irx --help", [str(BIN / "irx"), "--help"], REPO, "Usage:"),
        Series(
            "irx validate ONE_FILE",
            [str(BIN / "irx"), "validate", str(playbook)],
            REPO,
            "1 file checked: no problems",
        ),
        ansible,
        Series("python -c pass (floor)", [sys.executable, "-c", "pass"], REPO, ""),
    ]
    interleave(series, args.repeat)

    base = statistics.median(ansible.walls)
    rows = []
    verdicts = []
    for s in series:
        ratio = statistics.median(s.walls) / base
        goal = GOALS.get(s.label)
        met = "" if goal is None else ("met" if ratio <= goal else "**missed**")
        rows.append([*s.row()[:3], f"{ratio:.2f}", "" if goal is None else f"<= {goal}", met])
        if goal is not None:
            verdicts.append(f"{s.label} {ratio:.2f}x (goal <= {goal}: {met})")
    head = ["command", "min wall (s)", "median wall (s)", "x ansible-playbook --version", "goal", "verdict"]
    body = "\n".join(
        [
            *header_lines(["irx", "ansible-core"], load_before),
            "",
            f"{args.repeat} interleaved runs of each command after one warm-up run each, from the repository "
            f"root; every run exited 0. ONE_FILE is `{playbook.as_posix()}`; `python -c pass` is the "
            "interpreter's own start-up (the floor).",
            "",
            table(head, rows),
            "",
            "Ratios of medians: " + "; ".join(verdicts) + ".",
            "",
            "Reproduce: `.venv/bin/python bench/bench_startup.py --write`.",
        ]
    )
    print(body)
    if args.write:
        update_results(SECTION, body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Benchmark: ``irx validate`` vs ``check-jsonschema`` over 1,000 generated playbooks.

Generates N playbooks (default 1,000) from the shipped library (``playbooks/*.yaml``; plus
``tests/cases/valid/full.yaml`` while the library has fewer than 3 playbooks), each with a unique
``metadata.name`` and file name, spread over a few team sub-directories. Then, in the same run and on the
same files, times

* ``irx validate playbooks``  -- YAML with positions + JSON Schema + the semantic rules + duplicate names;
* ``check-jsonschema --schemafile schemas/playbook.schema.json FILE...`` -- JSON Schema only;

each as one process over the whole set (as a CI job runs them), interleaved, with a warm-up run of each
first. Every run must exit 0 and report the files clean, otherwise the benchmark aborts: timing a failing
run is meaningless.

Reports min / median wall time, CPU time and peak RSS per tool (from ``os.wait4``, i.e. of that child
alone) and the ratio irx / check-jsonschema (goal: <= 1.0). ``--write`` updates the section
"## irx validate vs check-jsonschema" of bench/RESULTS.md and leaves the other sections alone.

    .venv/bin/python bench/bench_validate.py [--count 1000] [--repeat 5] [--write]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "RESULTS.md"
SCHEMA = REPO / "schemas" / "playbook.schema.json"
BIN = Path(sys.executable).parent
SECTION = "## irx validate vs check-jsonschema"
TEAMS = ["payments", "search", "platform", "data", "edge", "identity", "messaging", "storage"]


# -- running a command and measuring it ---------------------------------------------------------------


@dataclass
class Run:
    wall: float  # seconds
    cpu: float  # user + sys seconds of the child
    rss_mb: float  # peak resident set size of the child, MiB
    code: int
    stdout: str
    stderr: str


def run(argv: Sequence[str], cwd: Path) -> Run:
    """Run ``argv`` once; wall time, CPU time and peak RSS of this child alone (``os.wait4``)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=cwd, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return Run(
            wall=wall,
            cpu=usage.ru_utime + usage.ru_stime,
            rss_mb=usage.ru_maxrss / 1024,  # KiB on Linux
            code=proc.returncode,
            stdout=out.read().decode("utf-8", "replace"),
            stderr=err.read().decode("utf-8", "replace"),
        )


@dataclass
class Series:
    label: str
    argv: list[str]
    cwd: Path
    expect: str  # a substring the clean run prints on stdout
    runs: list[Run] = field(default_factory=list)

    def once(self) -> Run:
        result = run(self.argv, self.cwd)
        if result.code != 0 or self.expect not in result.stdout:
            shown = " ".join(self.argv[:6]) + (" ..." if len(self.argv) > 6 else "")
            sys.exit(
                f"benchmark aborted: {self.label} did not report the files clean "
                f"(exit {result.code}; expected {self.expect!r} on stdout)\n$ {shown}\n"
                f"--- stdout (tail)\n{result.stdout[-3000:]}\n--- stderr (tail)\n{result.stderr[-3000:]}"
            )
        return result

    def measure(self) -> None:
        self.runs.append(self.once())

    @property
    def walls(self) -> list[float]:
        return [r.wall for r in self.runs]

    def row(self) -> list[str]:
        cpu = statistics.median(r.cpu for r in self.runs)
        rss = max(r.rss_mb for r in self.runs)
        return [
            self.label,
            f"{min(self.walls):.2f}",
            f"{statistics.median(self.walls):.2f}",
            f"{cpu:.2f}",
            f"{rss:.0f}",
        ]


def interleave(series: Sequence[Series], repeat: int, warmup: Sequence[Series] | None = None) -> None:
    """A warm-up run of each (not counted; ``warmup`` if given, else ``series``), then ``repeat`` rounds,
    alternating the order per round."""
    for s in series if warmup is None else warmup:
        s.once()
    for i in range(repeat):
        for s in series if i % 2 == 0 else reversed(series):
            s.measure()
            print(f"  round {i + 1}/{repeat}: {s.label:<28} {s.runs[-1].wall:6.2f} s", file=sys.stderr)


# -- machine, versions, RESULTS.md ---------------------------------------------------------------------


def version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine() -> str:
    model = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        found = re.search(r"^model name\s*:\s*(.+)$", cpuinfo.read_text(errors="replace"), re.MULTILINE)
        model = f", {found.group(1).strip()}" if found else ""
    return f"nproc {cpus()}{model}, {platform.system()} {platform.release()}, Python {platform.python_version()}"


def cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def load() -> float:
    """The 1-minute load average (other work on the machine inflates wall times)."""
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0


def header_lines(tools: Sequence[str], load_before: float) -> list[str]:
    versions = ", ".join(f"{t} {version(t)}" for t in tools)
    after = load()
    lines = [
        f"Measured {dt.datetime.now().astimezone():%Y-%m-%d %H:%M %Z} on {machine()}; "
        f"1-minute load average {load_before:.2f} before, {after:.2f} after.",
        f"Versions: {versions}.",
    ]
    if max(load_before, after) > cpus() / 2:
        lines.append(
            "**The machine was busy with other work during this run**: wall times are inflated and noisy; "
            "the runs are interleaved so ratios stay comparable, and CPU time is the steadier figure."
        )
    return lines


def table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def update_results(heading: str, body: str, path: Path = RESULTS) -> None:
    """Replace the section ``heading`` of RESULTS.md (up to the next ``## ``) or append it; keep the rest."""
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmark results\n"
    lines = text.splitlines()
    section = [heading, "", *body.strip("\n").splitlines(), ""]
    start = next((i for i, line in enumerate(lines) if line.strip() == heading), None)
    if start is None:
        while lines and not lines[-1].strip():
            lines.pop()
        lines += ["", *section]
    else:
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
        lines[start:end] = section
    path.write_text("\n".join(lines).rstrip("\n") + "\n", encoding="utf-8")
    print(f"updated {path.relative_to(REPO)}: {heading}", file=sys.stderr)


# -- the generated library -------------------------------------------------------------------------------


def templates() -> list[Path]:
    shipped = sorted((REPO / "playbooks").glob("*.yaml"))
    if len(shipped) < 3:
        shipped.append(REPO / "tests" / "cases" / "valid" / "full.yaml")
    if not shipped:
        sys.exit("benchmark aborted: no template playbooks found")
    return shipped


NAME = re.compile(r"^(metadata:\n(?:[ \t].*\n|\n)*?  name: )([^\s#]+)[ \t]*$", re.MULTILINE)
TITLE = re.compile(r"^(  title: )([^'\"|>\n][^\n]*?)[ \t]*$", re.MULTILINE)


def generate(root: Path, count: int) -> tuple[list[Path], list[str]]:
    """``count`` playbooks under ``root/playbooks/<team>/``, each with a unique name; returns the files."""
    sources = [(path, path.read_text(encoding="utf-8")) for path in templates()]
    files = []
    for i in range(count):
        source, text = sources[i % len(sources)]
        found = NAME.search(text)
        if found is None:
            sys.exit(f"benchmark aborted: no metadata.name line in template {source}")
        name = f"{found.group(2)}-{i:04d}"
        text = NAME.sub(lambda m, name=name: m.group(1) + name, text, count=1)
        text = TITLE.sub(lambda m, i=i: f"{m.group(1)}{m.group(2)} (variant {i})", text, count=1)
        team = TEAMS[i % len(TEAMS)]
        target = root / "playbooks" / team / f"{name}.yaml"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        files.append(target.relative_to(root))
    return files, [s.relative_to(REPO).as_posix() for s, _ in sources]


def describe(used: Sequence[str]) -> str:
    shipped = [u for u in used if u.startswith("playbooks/")]
    others = [f"`{u}`" for u in used if not u.startswith("playbooks/")]
    return ", ".join([f"the {len(shipped)} shipped `playbooks/*.yaml`", *others])


# -- main -------------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=1000, help="playbooks to generate (default 1000)")
    parser.add_argument("--repeat", type=int, default=3, help="measured runs per tool (default 3)")
    parser.add_argument("--write", action="store_true", help="update bench/RESULTS.md")
    args = parser.parse_args(argv)

    load_before = load()
    with tempfile.TemporaryDirectory(prefix="irx-bench-") as tmp:
        root = Path(tmp)
        files, used = generate(root, args.count)
        print(f"generated {len(files)} playbooks from {len(used)} templates in {root}", file=sys.stderr)
        irx = Series(
            "irx validate",
            [str(BIN / "irx"), "validate", "playbooks"],
            root,
            expect=f"{len(files)} files checked: no problems",
        )
        cjs = Series(
            "check-jsonschema",
            [str(BIN / "check-jsonschema"), "--schemafile", str(SCHEMA), *map(str, files)],
            root,
            expect="ok -- validation done",
        )
        # Warm-up on one file each: imports and .pyc files warm, the set's files are in the page cache
        # already (just written). A warm-up over all files would add ~a minute and change nothing.
        one = str(files[0])
        warmup = [
            Series("irx (warm-up)", [*irx.argv[:2], one], root, "1 file checked: no problems"),
            Series("check-jsonschema (warm-up)", [*cjs.argv[:3], one], root, cjs.expect),
        ]
        interleave([irx, cjs], args.repeat, warmup)

    ratio_min = min(irx.walls) / min(cjs.walls)
    ratio_med = statistics.median(irx.walls) / statistics.median(cjs.walls)
    ratio_cpu = statistics.median(r.cpu for r in irx.runs) / statistics.median(r.cpu for r in cjs.runs)
    verdict = "met" if ratio_med <= 1.0 else "**missed**"
    head = ["command", "min wall (s)", "median wall (s)", "median CPU (s)", "peak RSS (MiB)"]
    body = "\n".join(
        [
            *header_lines(["irx", "check-jsonschema", "jsonschema"], load_before),
            "",
            f"{len(files)} generated playbooks (templates: {describe(used)}; unique `metadata.name` "
            f"and file names, in {len(TEAMS)} sub-directories). One process per tool over the whole set, "
            f"{args.repeat} interleaved runs each after a warm-up run on one file; every run exited 0 and "
            "reported the files clean. `irx validate playbooks` does YAML with positions, the JSON Schema, "
            "the semantic rules and duplicate names; "
            "`check-jsonschema --schemafile schemas/playbook.schema.json FILE...` does the JSON Schema only.",
            "",
            table(head, [irx.row(), cjs.row()]),
            "",
            f"Ratio irx / check-jsonschema, wall time: **{ratio_med:.2f}** (median), {ratio_min:.2f} (min); "
            f"CPU time: {ratio_cpu:.2f} (median). Goal <= 1.0 (median wall): {verdict}.",
            "",
            "Reproduce: `.venv/bin/python bench/bench_validate.py --write`.",
        ]
    )
    print(body)
    if args.write:
        update_results(SECTION, body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

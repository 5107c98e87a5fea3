"""Same problems before and after: ``irx validate`` of two checkouts on the same 1,000 files, a third broken.

Generates bench_validate.py's 1,000 playbooks, then breaks a seeded third of them with edits a person
makes (a line deleted or duplicated, a key renamed, a value replaced by a number, a list or a template
error, a tab, an anchor and alias, an unknown tag, a second document), and runs
``irx validate --format json`` over the whole set with each checkout's engine on PYTHONPATH. The two
reports must be identical (every file, line, column, rule, message and level); the script prints the
counts and exits 1 on any difference, with the first ones shown.

    .venv/bin/python bench/compare_validate.py --before /work/main/engine [--after engine] [--count 1000]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
from pathlib import Path

from bench_validate import BIN, REPO, generate

EDITS = (
    "delete",
    "duplicate",
    "rename",
    "number",
    "list",
    "template",
    "tab",
    "alias",
    "tag",
    "document",
)


def break_file(path: Path, rng: random.Random) -> str:
    """Apply one seeded edit to ``path``; return its name."""
    lines = path.read_text(encoding="utf-8").splitlines()
    edit = rng.choice(EDITS)
    index = rng.randrange(1, len(lines))
    line = lines[index]
    indent = line[: len(line) - len(line.lstrip())]
    key, colon, value = line.strip().partition(": ")
    if edit == "delete":
        del lines[index]
    elif edit == "duplicate":
        lines.insert(index, line)
    elif edit == "rename" and colon:
        lines[index] = f"{indent}{key}x: {value}"
    elif edit == "number" and colon:
        lines[index] = f"{indent}{key}: {rng.choice(('0', '-3', '1.5', 'true', 'null', '[]', '{}'))}"
    elif edit == "list" and colon:
        lines[index] = f"{indent}{key}: [{value}]"
    elif edit == "template":
        lines[index] = line + " {{ steps.nope.stdout }} {% if %}"
    elif edit == "tab":
        lines[index] = "\t" + line.lstrip()
    elif edit == "alias" and colon:
        lines[index] = f"{indent}{key}: &anchor {value}"
        lines.append("x-alias: *anchor")
    elif edit == "tag" and colon:
        lines[index] = f"{indent}{key}: !custom {value}"
    elif edit == "document":
        lines.append("---")
        lines.append("extra: document")
    else:
        lines.insert(index, f"{indent}unexpected: 1")
        edit = "insert"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return edit


def report(engine: Path, root: Path) -> list[dict[str, object]]:
    env = {**os.environ, "PYTHONPATH": f"{engine}:{os.environ.get('PYTHONPATH', '')}"}
    check = subprocess.run([str(BIN / "python"), "-c", "import irx; print(irx.__file__)"], env=env,
                           capture_output=True, text=True, check=True)  # fmt: skip
    if not check.stdout.strip().startswith(str(engine.resolve())):
        sys.exit(f"PYTHONPATH {engine} does not win: irx comes from {check.stdout.strip()}")
    argv = [str(BIN / "irx"), "validate", "--format", "json", "playbooks"]
    done = subprocess.run(argv, cwd=root, env=env, capture_output=True, text=True, check=False)
    if done.returncode not in (0, 1):
        sys.exit(f"irx validate with {engine} failed (exit {done.returncode}):\n{done.stderr[-2000:]}")
    loaded = json.loads(done.stdout)
    problems = loaded["problems"] if isinstance(loaded, dict) else loaded
    return list(problems)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", type=Path, required=True, help="engine directory of the reference checkout")
    parser.add_argument("--after", type=Path, default=REPO / "engine", help="engine directory to compare")
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=15)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="irx-compare-"))
    files, _ = generate(root, args.count)
    rng = random.Random(args.seed)
    edits: dict[str, int] = {}
    for path in rng.sample(files, len(files) // 3):
        edit = break_file(root / path, rng)
        edits[edit] = edits.get(edit, 0) + 1
    before, after = report(args.before, root), report(args.after, root)
    rules: dict[str, int] = {}
    for problem in before:
        rule = str(problem.get("rule"))
        rules[rule] = rules.get(rule, 0) + 1
    print(f"{len(files)} files, {len(files) // 3} broken ({', '.join(f'{k} {v}' for k, v in sorted(edits.items()))})")
    print(f"problems: before {len(before)}, after {len(after)}; rules: {len(rules)} distinct")
    if before == after:
        print("identical reports")
        return 0
    missing = [p for p in before if p not in after][:10]
    extra = [p for p in after if p not in before][:10]
    print(f"DIFFERENT: only before (first 10): {missing}\nonly after (first 10): {extra}")
    return 1


if __name__ == "__main__":
    sys.exit(main())

"""Checking playbook files (``irx validate``): every problem at once, and reports in each CI's own format."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from xml.etree import ElementTree as ET

from irx import __version__
from irx.errors import UsageError
from irx.knock_ons import fold
from irx.loader import Checked, check_file, iter_playbook_files
from irx.problems import Problem


def check_paths(paths: Sequence[Path]) -> tuple[list[Path], list[Problem]]:
    """Every playbook file under ``paths`` and every problem found in them, in report order."""
    files = playbook_files(paths)
    problems: list[Problem] = []
    names: list[tuple[str, Path, tuple[int, int]]] = []  # only what the cross-file rule needs: memory stays flat
    for path in files:
        kind = _kind(path)
        if kind == "Routes":
            problems.extend(check_routes(path))
            continue
        if kind == "Approvers":
            problems.extend(check_approvers(path))
            continue
        checked = check_file(path)
        problems.extend(fold(checked.problems, checked.document))
        name = _name_of(checked)
        if name is not None:
            names.append((name, path, checked.document.position(("metadata", "name"))))
    return files, sorted(problems) + _duplicate_names(names)


_KIND = re.compile(rb"^kind:[ \t]*[\"']?(Routes|Approvers)[\"']?[ \t]*(#.*)?$", re.M)


def _kind(path: Path) -> str | None:
    """``Routes`` or ``Approvers`` when ``path`` says it is one (``kind:`` at the top level), else None: a
    playbook."""
    try:
        with path.open("rb") as stream:
            found = _KIND.search(stream.read(1 << 20))
    except OSError:
        return None  # the playbook check reports what cannot be read
    return found.group(1).decode() if found is not None else None


def check_approvers(path: Path) -> list[Problem]:
    """Every problem of an approvers file (schemas/approvers.schema.json, users, groups, password hashes).
    Its file mode is checked where it is used (irx run --approvers), not in a checkout."""
    from irx.approvers import check_approvers_file

    _, found = check_approvers_file(path)
    return [Problem(path, line, col, "approvers", message) for line, col, message in found]


def check_routes(path: Path, playbook_dir: Path | None = None) -> list[Problem]:
    """Every problem of a routes file (schemas/routes.schema.json, matchers, names), and what its routes
    ask of playbooks that they do not have (playbooks found as irx serve finds them)."""
    from irx.library import find_playbook
    from irx.loader import load_playbook
    from irx.routes import check_playbooks, check_routes_file

    routes, found = check_routes_file(path)
    if routes is not None:
        found += check_playbooks(routes, lambda name: load_playbook(find_playbook(name, playbook_dir)))
    return [Problem(path, line, col, "routes", message) for line, col, message in found]


def failing(problems: Sequence[Problem], strict: bool) -> bool:
    """Whether ``problems`` fail a check: any error, or any problem at all with ``strict``."""
    return any(p.level == "error" or strict for p in problems)


def playbook_files(paths: Sequence[Path]) -> list[Path]:
    if not paths:
        default = Path("playbooks")
        if not default.is_dir():
            raise UsageError("no PATH given and there is no playbooks/ directory here")
        paths = [default]
    for path in paths:
        if not path.exists():
            raise UsageError(f"{path}: no such file or directory")
    files = list(iter_playbook_files(list(paths)))
    if not files:
        raise UsageError(f"no playbook files (*.yaml, *.yml) in {', '.join(map(str, paths))}")
    return files


def _name_of(checked: Checked) -> str | None:
    data = checked.document.data
    meta = data.get("metadata") if isinstance(data, dict) else None
    name = meta.get("name") if isinstance(meta, dict) else None
    return name if isinstance(name, str) else None


def _duplicate_names(names: list[tuple[str, Path, tuple[int, int]]]) -> list[Problem]:
    first: dict[str, Path] = {}
    problems = []
    for name, path, (line, col) in names:
        if name in first:
            message = f"playbook name '{name}' is also used by {first[name]}"
            problems.append(Problem(path, line, col, "duplicate-playbook-name", message))
        else:
            first[name] = path
    return problems


def _shown(path: Path) -> str:
    """Paths as CI systems want them: relative to the working directory when inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _summary(files: Sequence[Path], problems: Sequence[Problem]) -> tuple[int, int]:
    errors = sum(p.level == "error" for p in problems)
    return errors, len(problems) - errors


def format_text(files: Sequence[Path], problems: Sequence[Problem], strict: bool) -> str:
    lines = [str(Problem(Path(_shown(p.path)), p.line, p.col, p.rule, p.message, p.level, p.also)) for p in problems]
    errors, warnings = _summary(files, problems)
    noun = "file" if len(files) == 1 else "files"
    if not problems:
        lines.append(f"{len(files)} {noun} checked: no problems")
    else:
        lines.append(f"{len(files)} {noun} checked: {errors} error(s), {warnings} warning(s)")
    return "\n".join(lines) + "\n"


def format_json(files: Sequence[Path], problems: Sequence[Problem], strict: bool) -> str:
    errors, warnings = _summary(files, problems)
    body = {
        "tool": "irx",
        "version": __version__,
        "files": [_shown(f) for f in files],
        "errors": errors,
        "warnings": warnings,
        "strict": strict,
        "problems": [
            {
                "path": _shown(p.path),
                "line": p.line,
                "column": p.col,
                "rule": p.rule,
                "level": p.level,
                "message": p.text,
                **(
                    {"also": [{"line": line, "column": col, "rule": rule} for line, col, rule in p.also]}
                    if p.also
                    else {}
                ),
            }
            for p in problems
        ],
    }
    return json.dumps(body, indent=2) + "\n"


def _gh_escape(text: str, prop: bool = False) -> str:
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return text.replace(":", "%3A").replace(",", "%2C") if prop else text


def format_github(files: Sequence[Path], problems: Sequence[Problem], strict: bool) -> str:
    """GitHub Actions workflow commands: one annotation per problem, shown on the PR's diff."""
    lines = []
    for p in problems:
        kind = "error" if p.level == "error" or strict else "warning"
        props = ",".join(
            [
                f"file={_gh_escape(_shown(p.path), True)}",
                f"line={max(p.line, 1)}",
                f"col={max(p.col, 1)}",
                f"title={_gh_escape('irx ' + p.rule, True)}",
            ]
        )
        lines.append(f"::{kind} {props}::{_gh_escape(p.text)}")
    errors, warnings = _summary(files, problems)
    lines.append(f"irx validate: {len(files)} file(s), {errors} error(s), {warnings} warning(s)")
    return "\n".join(lines) + "\n"


def format_junit(files: Sequence[Path], problems: Sequence[Problem], strict: bool) -> str:
    """JUnit XML: one test case per file, failing with every problem of that file."""
    by_file: dict[str, list[Problem]] = defaultdict(list)
    for p in problems:
        by_file[_shown(p.path)].append(p)
    names = [_shown(f) for f in files]
    failing = {n for n in names if any(p.level == "error" or strict for p in by_file[n])}
    suites = ET.Element("testsuites", name="irx validate", tests=str(len(names)), failures=str(len(failing)))
    suite = ET.SubElement(
        suites,
        "testsuite",
        name="irx validate",
        tests=str(len(names)),
        failures=str(len(failing)),
        errors="0",
        skipped="0",
    )
    for name in names:
        case = ET.SubElement(suite, "testcase", classname="irx.validate", name=name, file=name)
        found = by_file[name]
        text = "\n".join(str(Problem(Path(name), p.line, p.col, p.rule, p.message, p.level, p.also)) for p in found)
        if name in failing:
            first = next(p for p in found if p.level == "error" or strict)
            failure = ET.SubElement(case, "failure", message=f"{first.rule}: {first.message}", type=first.rule)
            failure.text = text
        elif found:
            ET.SubElement(case, "system-out").text = text
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"


def _related(p: Problem) -> list[dict[str, object]]:
    """The other places of a folded problem's cause, as SARIF related locations."""
    uri = Path(_shown(p.path)).as_posix()
    return [
        {
            "id": index,
            "message": {"text": rule},
            "physicalLocation": {
                "artifactLocation": {"uri": uri, "uriBaseId": "SRCROOT"},
                "region": {"startLine": max(line, 1), "startColumn": max(col, 1)},
            },
        }
        for index, (line, col, rule) in enumerate(p.also)
    ]


def format_sarif(files: Sequence[Path], problems: Sequence[Problem], strict: bool) -> str:
    """SARIF 2.1.0, as GitHub code scanning and most CI dashboards ingest it."""
    from irx.rule_docs import known_rules, rule_doc

    rule_ids = sorted({p.rule for p in problems} | set(known_rules()))
    docs = {r: rule_doc(r) for r in rule_ids}
    results = [
        {
            "ruleId": p.rule,
            "ruleIndex": rule_ids.index(p.rule),
            "level": "error" if p.level == "error" or strict else "warning",
            "message": {"text": p.text},
            **({"relatedLocations": _related(p)} if p.also else {}),
            "locations": [
                {
                    "physicalLocation": {
                        "artifactLocation": {"uri": Path(_shown(p.path)).as_posix(), "uriBaseId": "SRCROOT"},
                        "region": {"startLine": max(p.line, 1), "startColumn": max(p.col, 1)},
                    }
                }
            ],
        }
        for p in problems
    ]
    sarif = {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "irx",
                        "version": __version__,
                        "informationUri": "https://github.com/irx-dev/irx",
                        "rules": [
                            {
                                "id": r,
                                "name": r,
                                "shortDescription": {"text": docs[r].short},
                                "fullDescription": {"text": docs[r].full},
                                "helpUri": docs[r].help_uri,
                                "help": {"text": f"{docs[r].full} See {docs[r].help_uri}"},
                            }
                            for r in rule_ids
                        ],
                    }
                },
                "originalUriBaseIds": {"SRCROOT": {"uri": Path.cwd().as_uri() + "/"}},
                "results": results,
                "columnKind": "unicodeCodePoints",
            }
        ],
    }
    return json.dumps(sarif, indent=2) + "\n"


FORMATTERS: dict[str, Callable[[Sequence[Path], Sequence[Problem], bool], str]] = {
    "text": format_text,
    "json": format_json,
    "github": format_github,
    "junit": format_junit,
    "sarif": format_sarif,
}

"""The playbook library: finding playbooks by name, and what ``irx list`` and ``irx show`` show of them."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from irx import actions
from irx.errors import PlaybookError, UsageError
from irx.loader import iter_playbook_files, load_playbook, read_document
from irx.model import PHASES, Playbook, Step

PLAYBOOK_DIR_ENV = "IRX_PLAYBOOKS"


def default_playbook_dir() -> Path:
    """``$IRX_PLAYBOOKS``, else ./playbooks, else the library shipped inside the package."""
    env = os.environ.get(PLAYBOOK_DIR_ENV)
    if env:
        return Path(env)
    local = Path("playbooks")
    if local.is_dir():
        return local
    return Path(__file__).resolve().parent / "data" / "playbooks"


def _names(directory: Path) -> dict[str, Path]:
    """metadata.name -> file, for every readable playbook file in ``directory`` (cheap: YAML only)."""
    found: dict[str, Path] = {}
    for path in iter_playbook_files([directory]):
        data = read_document(path).data
        meta = data.get("metadata") if isinstance(data, dict) else None
        name = meta.get("name") if isinstance(meta, dict) else None
        found.setdefault(name if isinstance(name, str) else path.stem, path)
    return found


def find_playbook(name_or_path: str, playbook_dir: Path | None = None) -> Path:
    """The file of a playbook given by file path or by name (file stem, then metadata.name)."""
    as_path = Path(name_or_path)
    if as_path.suffix in {".yaml", ".yml"} or os.sep in name_or_path:
        if as_path.is_file():
            return as_path
        raise UsageError(f"{name_or_path}: no such playbook file")
    directory = playbook_dir or default_playbook_dir()
    if not directory.is_dir():
        raise UsageError(f"playbook directory {directory} does not exist (use --playbooks DIR or {PLAYBOOK_DIR_ENV})")
    for suffix in (".yaml", ".yml"):
        candidate = directory / f"{name_or_path}{suffix}"
        if candidate.is_file():
            return candidate
    names = _names(directory)
    if name_or_path in names:
        return names[name_or_path]
    import difflib

    close = difflib.get_close_matches(name_or_path, list(names), n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else f"; run 'irx list' to see the {len(names)} playbooks"
    raise UsageError(f"no playbook named '{name_or_path}' in {directory}{hint}")


def _summary(pb: Playbook) -> dict[str, Any]:
    return {
        "name": pb.name,
        "severity": pb.severity,
        "title": pb.title,
        "path": str(pb.path),
        "tags": list(pb.tags),
        "steps": pb.step_counts(),
    }


def list_playbooks(playbook_dir: Path | None = None) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """``irx list``'s rows (by severity, then name) and the files that do not load (path, error)."""
    directory = playbook_dir or default_playbook_dir()
    if not directory.is_dir():
        raise UsageError(f"playbook directory {directory} does not exist")
    rows, broken = [], []
    for path in iter_playbook_files([directory]):
        try:
            rows.append(_summary(load_playbook(path)))
        except PlaybookError as exc:  # an invalid file is listed as such, not fatal for the others
            broken.append({"path": str(path), "error": str(exc)})
    rows.sort(key=lambda r: (r["severity"], r["name"]))
    return rows, broken


def describe_action(step: Step) -> str:
    """The step's action in one line, as written (unrendered): the plan's one line (irx.actions)."""
    return actions.one_line(actions.render(step, actions.AS_WRITTEN))


def _step_json(step: Step) -> dict[str, Any]:
    return {
        "id": step.id,
        "name": step.name,
        "phase": step.phase,
        "action": step.action,
        "on": step.on,
        "summary": describe_action(step),
        "when": step.when,
        "until": step.until,
        "retries": step.retries,
        "timeout": step.timeout,
        "on_failure": step.on_failure,
        "mutating": step.mutating,
        "approval_required": step.approval_required,
        "approval_reason": step.approval_reason,
    }


def playbook_json(pb: Playbook) -> dict[str, Any]:
    """``irx show --format json``: the playbook as data, secret defaults masked."""
    return {
        **_summary(pb),
        "declared_severity": pb.declared_severity,
        "summary": pb.summary,
        "symptoms": list(pb.symptoms),
        "references": [dict(r) for r in pb.references],
        "params": {
            p.name: {
                "type": p.type,
                "description": p.description,
                "default": "******" if p.secret and p.has_default else p.default,
                "required": p.required,
                "secret": p.secret,
                "env": p.env,
            }
            for p in pb.params.values()
        },
        "targets": {t.name: {"hosts": t.hosts, "serial": t.serial} for t in pb.targets.values()},
        "phases": {phase: [_step_json(s) for s in pb.phases[phase]] for phase in PHASES},
    }

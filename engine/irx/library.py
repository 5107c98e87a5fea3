"""The playbook library: finding playbooks by name, ``irx list`` and ``irx show``."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click

from irx import actions
from irx.errors import ExitCode, PlaybookError, UsageError
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


def list_command(fmt: str = "text", playbook_dir: Path | None = None) -> int:
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
    if fmt == "json":
        click.echo(json.dumps({"playbooks": rows, "invalid": broken}, indent=2))
    else:
        width = max([len(r["name"]) for r in rows] + [4])
        click.echo(f"{'NAME':<{width}}  SEV   STEPS (d/m/v/r)  TITLE")
        for r in rows:
            counts = "/".join(str(r["steps"][p]) for p in PHASES)
            click.echo(f"{r['name']:<{width}}  {r['severity']}  {counts:<15}  {r['title']}")
        for b in broken:
            click.echo(f"invalid: {b['error']}", err=True)
    return ExitCode.FAILED if broken else ExitCode.OK


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


def show_command(name: str, fmt: str = "text", playbook_dir: Path | None = None) -> int:
    pb = load_playbook(find_playbook(name, playbook_dir))
    if fmt == "json":
        body = {
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
        click.echo(json.dumps(body, indent=2))
        return ExitCode.OK
    out = [f"{pb.name} — {pb.title} [{pb.severity}]"]
    if pb.summary:
        out += ["", " ".join(pb.summary.split())]
    if pb.symptoms:
        out += ["", "Symptoms:"] + [f"  - {s}" for s in pb.symptoms]
    if pb.params:
        out += ["", "Params:"]
        for p in pb.params.values():
            default = (
                ("******" if p.secret else repr(p.default))
                if p.has_default
                else "(required)"
                if p.required
                else "(none)"
            )
            env = f" env {p.env}" if p.env else ""
            out.append(
                f"  {p.name} ({p.type}{', secret' if p.secret else ''}) = {default}{env}  {p.description}".rstrip()
            )
    if pb.targets:
        out += ["", "Targets:"] + [f"  {t.name}: {t.hosts}" for t in pb.targets.values()]
    for phase in PHASES:
        steps = pb.phases[phase]
        if not steps:
            continue
        out += ["", f"{phase.capitalize()}:"]
        for s in steps:
            flags = ("!" if s.mutating else " ") + ("A" if s.approval_required else " ")
            where = f" on {s.on}" if s.on else ""
            out.append(f"  {flags} {s.id}{where}: {s.name or describe_action(s)}")
            if s.when is not None:
                out.append(f"       when {s.when}")
    out += ["", "! mutating   A needs approval"]
    click.echo("\n".join(out))
    return ExitCode.OK

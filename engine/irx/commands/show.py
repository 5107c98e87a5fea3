"""``irx show``: one playbook, its symptoms, params, targets and steps by phase (or JSON)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from irx.errors import ExitCode
from irx.model import PHASES, Param, Playbook


def main(name: str, *, fmt: str = "text", playbook_dir: Path | None = None) -> int:
    from irx.library import find_playbook, playbook_json
    from irx.loader import load_playbook

    pb = load_playbook(find_playbook(name, playbook_dir))
    if fmt == "json":
        click.echo(json.dumps(playbook_json(pb), indent=2))
    else:
        click.echo("\n".join(_text(pb)))
    return ExitCode.OK


def _param_line(p: Param) -> str:
    default = ("******" if p.secret else repr(p.default)) if p.has_default else "(required)" if p.required else "(none)"
    env = f" env {p.env}" if p.env else ""
    return f"  {p.name} ({p.type}{', secret' if p.secret else ''}) = {default}{env}  {p.description}".rstrip()


def _text(pb: Playbook) -> list[str]:
    from irx.library import describe_action

    out = [f"{pb.name} — {pb.title} [{pb.severity}]"]
    if pb.summary:
        out += ["", " ".join(pb.summary.split())]
    if pb.symptoms:
        out += ["", "Symptoms:"] + [f"  - {s}" for s in pb.symptoms]
    if pb.params:
        out += ["", "Params:", *(_param_line(p) for p in pb.params.values())]
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
    return out

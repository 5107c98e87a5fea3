"""``irx list``: the playbooks, one line each (or JSON); exit 1 when a file does not load."""

from __future__ import annotations

import json
from pathlib import Path

import click

from irx.errors import ExitCode
from irx.model import PHASES


def main(*, fmt: str = "text", playbook_dir: Path | None = None) -> int:
    from irx.library import list_playbooks

    rows, broken = list_playbooks(playbook_dir)
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

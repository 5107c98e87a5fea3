"""``irx plan``: load the playbook, the inventory and the params; print the plan (irx.plan) and its warnings."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import click

from irx.errors import ExitCode
from irx.inventory import Vault


def main(
    name: str,
    *,
    inventory: str | None = None,
    limit: str | None = None,
    extra_vars: Sequence[str] = (),
    fmt: str = "text",
    playbook_dir: Path | None = None,
    environ: Mapping[str, str] | None = None,
    vault: Vault | None = None,
) -> int:
    from irx.inventory import load_inventory
    from irx.library import find_playbook
    from irx.loader import load_playbook
    from irx.params import parse_extra_vars
    from irx.plan import build_plan, render

    playbook = load_playbook(find_playbook(name, playbook_dir))
    supplied = parse_extra_vars(extra_vars)  # cheap mistakes first, before Ansible's start-up
    inv = load_inventory(inventory, limit, vault)
    plan = build_plan(playbook, inv, supplied, os.environ if environ is None else environ)
    for warning in plan.warnings:
        click.echo(f"irx: warning: {warning}", err=True)
    click.echo(render(plan, fmt), nl=False)
    return ExitCode.OK

"""The ``irx`` commands on the playbook library: ``validate``, ``list``, ``show``, ``schema``, ``new`` (registered
on the group in irx.cli). Argument parsing only, as in irx.cli: each body hands over to its module of irx.commands."""

from __future__ import annotations

from pathlib import Path

import click

from irx.cli_journal import FORMAT_TEXT_JSON


@click.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "github", "junit", "sarif"]),
    default="text",
    show_default=True,
    help="Output format: text (path:line:col: rule: message), json, github (workflow annotations), "
    "junit (XML) or sarif (2.1.0).",
)
@click.option("--strict", is_flag=True, help="Treat warnings as problems (exit 1).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write the report to FILE.")
def validate(paths: tuple[Path, ...], fmt: str, strict: bool, output: Path | None) -> None:
    """Validate playbooks (files or directories; default: playbooks/).

    Reports every problem at once, YAML, schema and semantic, each as path:line:col: rule-id: message.
    Exit 0 when clean, 1 when problems were found (warnings only with --strict), 2 on usage errors.
    """
    from irx.commands.validate import main

    raise SystemExit(main(list(paths), fmt=fmt, strict=strict, output=output))


@click.command(name="list")
@click.option("--format", "fmt", type=FORMAT_TEXT_JSON, default="text", show_default=True)
@click.option("-p", "--playbooks", "playbook_dir", type=click.Path(path_type=Path), help="Playbook directory.")
def list_(fmt: str, playbook_dir: Path | None) -> None:
    """List the playbooks: name, severity, title and step counts per phase."""
    from irx.commands.list import main

    raise SystemExit(main(fmt=fmt, playbook_dir=playbook_dir))


@click.command()
@click.argument("name")
@click.option("--format", "fmt", type=FORMAT_TEXT_JSON, default="text", show_default=True)
@click.option("-p", "--playbooks", "playbook_dir", type=click.Path(path_type=Path), help="Playbook directory.")
def show(name: str, fmt: str, playbook_dir: Path | None) -> None:
    """Show one playbook: symptoms, params and steps by phase. NAME is a name or a file path."""
    from irx.commands.show import main

    raise SystemExit(main(name, fmt=fmt, playbook_dir=playbook_dir))


@click.command()
def schema() -> None:
    """Print the playbook JSON Schema (draft 2020-12)."""
    from irx.commands.schema import main

    raise SystemExit(main())


@click.command()
@click.argument("name")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the playbook to FILE instead of the library's NAME.yaml.",
)
@click.option(
    "-p",
    "--playbooks",
    "playbook_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="The library to write into. Default: $IRX_PLAYBOOKS, else ./playbooks (created when missing).",
)
@click.option("--no-drill", is_flag=True, help="Do not write the drill skeleton molecule/NAME/.")
def new(name: str, output: Path | None, playbook_dir: Path | None, no_drill: bool) -> None:
    """Start a new playbook NAME: a skeleton that validates, ready to edit.

    Writes NAME.yaml into the library irx run and irx plan read (--playbooks DIR, else $IRX_PLAYBOOKS, else
    ./playbooks; -o FILE for another place), with the editor's schema modeline on line 1, metadata, a param
    and one step per phase (diagnose, mitigate behind an approval, verify, rollback). In a checkout with
    drills (molecule/_shared beside the library) it also writes the drill skeleton molecule/NAME/
    (docs/drills.md). NAME is a playbook name (lower-case letters, digits, dashes). Never overwrites.
    Exit 0 written and valid, 2 bad NAME or a file (or a playbook of that name) already exists.
    """
    from irx.commands.new import main

    raise SystemExit(main(name, output=output, playbook_dir=playbook_dir, drill=not no_drill))

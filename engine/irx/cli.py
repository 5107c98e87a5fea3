"""The ``irx`` command line: argument parsing only.

Each command parses its options, calls one function that returns an exit code, and lets ``main`` map
``IrxError`` to one line on stderr and its exit code. Heavy libraries (ansible, ansible_runner, httpx,
paramiko, jsonschema) are imported inside the functions that need them, so ``irx --help`` stays fast.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from irx.cli_journal import FORMAT_TEXT_JSON, RUNS_DIR_OPTION
from irx.cli_options import duration_option, url_option
from irx.errors import ExitCode, IrxError

if TYPE_CHECKING:
    from irx.inventory import Vault

EXIT_CODES_HELP = """\b
Exit codes:
  0    success (validation clean, plan produced, run verified)
  1    problems found (validate) / the playbook failed (run)
  2    usage error: bad option, unknown playbook, invalid playbook, inventory or params
  3    internal error in irx (the traceback is written to a file)
  4    run stopped at an approval gate with nobody to approve (irx resume continues it)
  130  interrupted (Ctrl-C / SIGTERM / SIGHUP); everything done so far is recorded
"""


class _Commands(click.Group):
    """The group; a reader that goes away (``irx list | head -1``) is the end of the output, not an error."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            import os

            # Nothing more can be written; the interpreter's last flush must not fail either.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise SystemExit(ExitCode.OK) from None


@click.group(
    cls=_Commands,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog=EXIT_CODES_HELP,
)
@click.version_option(package_name="irx", prog_name="irx")
def cli() -> None:
    """irx: declarative incident remediation.

    Validate incident playbooks in CI, plan them for drills, run them against an Ansible inventory
    (diagnose -> mitigate -> verify, with approvals and rollback) and keep a timeline for the post-mortem.
    """


VAULT_OPTIONS = (
    click.option(
        "--vault-password-file",
        type=click.Path(exists=True, dir_okay=False),
        help="Open vault-encrypted inventory values with the password in FILE (default: Ansible's settings, "
        "e.g. ANSIBLE_VAULT_PASSWORD_FILE).",
    ),
    click.option("--ask-vault-pass", is_flag=True, help="Ask for the vault password on the terminal."),
)
BECOME_OPTIONS = (
    click.option(
        "--become-password-file",
        type=click.Path(exists=True, dir_okay=False),
        help="The sudo password of steps with become: true, in FILE (default: the inventory's "
        "ansible_become_password, or ANSIBLE_BECOME_PASSWORD_FILE). Never on a command line.",
    ),
    click.option(
        "-K", "--ask-become-pass", is_flag=True, help="Ask for the sudo password of become steps on the terminal."
    ),
)


def _vault_options(func: Any) -> Any:
    for option in reversed(VAULT_OPTIONS):
        func = option(func)
    return func


def _vault(
    password_file: str | None, ask: bool, become_password_file: str | None = None, ask_become: bool = False
) -> Vault:
    """The vault (and become) passwords of a command; --ask-vault-pass and --ask-become-pass need a terminal."""
    from irx.inventory import Vault

    def asked(flag: str, instead: str, prompt: str) -> str:
        if not sys.stdin.isatty():
            raise click.UsageError(f"{flag} needs a terminal; give {instead} FILE instead")
        return str(click.prompt(prompt, hide_input=True, err=True))

    return Vault(
        password_file=password_file,
        password=asked("--ask-vault-pass", "--vault-password-file", "Vault password") if ask else None,
        become_password_file=become_password_file,
        become_password=asked("--ask-become-pass", "--become-password-file", "BECOME password") if ask_become else None,
    )


@cli.command()
@click.argument("name")
@click.option(
    "-i",
    "--inventory",
    metavar="NAME|PATH",
    help="Inventory: a name under inventories/ (.yml, .yaml, .ini or a directory) or any Ansible "
    "inventory path. Default: local (this machine).",
)
@click.option("-l", "--limit", metavar="PATTERN", help="Only these hosts (Ansible pattern, as in ansible-playbook).")
@click.option(
    "-e",
    "--extra-vars",
    "extra_vars",
    multiple=True,
    metavar="KEY=VALUE|@FILE",
    help="A param value, or @FILE (YAML or JSON). Repeatable; wins over inventory, environment and default.",
)
@click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown"]), default="text", show_default=True)
@click.option("-p", "--playbooks", "playbook_dir", type=click.Path(path_type=Path), help="Playbook directory.")
@_vault_options
def plan(
    name: str,
    inventory: str | None,
    limit: str | None,
    extra_vars: tuple[str, ...],
    fmt: str,
    playbook_dir: Path | None,
    vault_password_file: str | None,
    ask_vault_pass: bool,
) -> None:
    """Show exactly what would run where, without running anything.

    Every step in order, by phase, with its hosts, its rendered command / module call / HTTP request,
    its controls, whether it changes a system (!) and needs approval. Conditions on earlier results are
    marked as decided at run time. Secret params show as ******. Prints a plan hash that approvals bind to.
    """
    from irx.commands.plan import main

    raise SystemExit(
        main(
            name,
            inventory=inventory,
            limit=limit,
            extra_vars=extra_vars,
            fmt=fmt,
            playbook_dir=playbook_dir,
            vault=_vault(vault_password_file, ask_vault_pass),
        )
    )


def _run_controls(command: Callable[..., None]) -> Callable[..., None]:
    """The options irx run and irx resume share: approvals, lock, journal, output, forks, secrets."""
    options: list[Callable[[Any], Any]] = [
        click.option("-y", "--yes", is_flag=True, help="Approve every approval gate (no prompt)."),
        click.option(
            "--approve",
            multiple=True,
            metavar="STEP[@HASH]",
            help="Approve this step's gate (repeatable); with @HASH (from irx plan or the gate), only that exact "
            "rendering.",
        ),
        click.option(
            "--wait-approval",
            "wait_approval",
            metavar="DURATION",
            help="At a gate nobody approved in advance, wait up to DURATION (e.g. 30m) for irx approve / irx deny "
            "from another terminal instead of asking here; then stop awaiting approval (exit 4).",
        ),
        click.option(
            "--force", is_flag=True, help="Run even if another run holds the lock of a host this run would change."
        ),
        click.option(
            "--approvers",
            type=click.Path(dir_okay=False, path_type=Path),
            envvar="IRX_APPROVERS",
            help="Who may approve each gate and how many must (schemas/approvers.schema.json; env IRX_APPROVERS). "
            "Default: anyone, once.",
        ),
        click.option(
            "--runs-dir",
            type=click.Path(file_okay=False, path_type=Path),
            envvar="IRX_RUNS_DIR",
            help="Where run journals go. Default: .irx/runs (env IRX_RUNS_DIR).",
        ),
        click.option("-q", "--quiet", is_flag=True, help="No live progress; only the final status line."),
        click.option(
            "--format",
            "fmt",
            type=FORMAT_TEXT_JSON,
            default="text",
            show_default=True,
            help="json: a machine-readable summary on stdout (progress goes to stderr).",
        ),
        click.option("--forks", type=click.IntRange(1, 500), default=10, show_default=True, help="Parallel hosts."),
        click.option(
            "--mitogen",
            is_flag=True,
            envvar="IRX_MITOGEN",
            help="Run host steps over Mitogen's connections (a warm interpreter per host; shell and command steps "
            "measured faster without it, see docs/design.md; needs pip install 'irx[mitogen]' and Python on the "
            "hosts; env IRX_MITOGEN=1).",
        ),
        click.option("-p", "--playbooks", "playbook_dir", type=click.Path(path_type=Path), help="Playbook directory."),
        _vault_options,
        BECOME_OPTIONS[0],
        BECOME_OPTIONS[1],
    ]
    for option in reversed(options):
        command = option(command)
    return command


@cli.command()
@click.argument("name")
@click.option("-i", "--inventory", help="Inventory NAME (inventories/NAME) or PATH. Default: local (this machine).")
@click.option("-l", "--limit", help="Further limit the hosts with an Ansible pattern.")
@click.option("-e", "--extra-vars", "extra_vars", multiple=True, metavar="K=V|@FILE", help="Param values (repeatable).")
@click.option("--dry-run", is_flag=True, help="Run the read-only steps for real; show which mutating steps would run.")
@click.option(
    "--trigger",
    metavar="@FILE",
    help="What started this run (JSON: source, incident, route, alertname, labels, fired_at), recorded in the "
    "journal and the post-mortem; irx serve passes the alert's.",
)
@click.option("--approval-url", metavar="URL", callback=url_option, help="Messages link to URL/runs/RUN_ID.")
@_run_controls
def run(
    name: str,
    inventory: str | None,
    limit: str | None,
    extra_vars: tuple[str, ...],
    dry_run: bool,
    yes: bool,
    approve: tuple[str, ...],
    wait_approval: str | None,
    trigger: str | None,
    approval_url: str | None,
    force: bool,
    approvers: Path | None,
    runs_dir: Path | None,
    quiet: bool,
    fmt: str,
    forks: int,
    mitogen: bool,
    playbook_dir: Path | None,
    vault_password_file: str | None,
    ask_vault_pass: bool,
    become_password_file: str | None,
    ask_become_pass: bool,
) -> None:
    """Run an incident playbook: diagnose, mitigate (with approvals), verify, roll back if needed.

    Every event is recorded in .irx/runs/RUN_ID/timeline.jsonl as it happens. Exit 0 verified, 1 failed or
    rolled back, 2 usage, 4 awaiting approval, 130 interrupted.
    """
    from irx.commands.run import main
    from irx.run import RunOptions

    options = RunOptions(
        inventory=inventory, limit=limit, extra_vars=extra_vars, dry_run=dry_run, yes=yes, approve=approve,
        wait_approval=duration_option("--wait-approval", wait_approval), approvers=approvers, trigger=trigger,
        approval_url=approval_url, force=force, runs_dir=runs_dir, quiet=quiet, fmt=fmt, forks=forks,
        mitogen=mitogen, playbook_dir=playbook_dir,
        vault=_vault(vault_password_file, ask_vault_pass, become_password_file, ask_become_pass),
    )  # fmt: skip
    raise SystemExit(main(name, options))


@cli.command()
@click.argument("run_id", metavar="RUN_ID|latest")
@click.option(
    "--from", "from_step", metavar="STEP", help="Run again from STEP, on all its hosts (and every later step)."
)
@click.option("--replan", is_flag=True, help="Continue although the playbook or inventory renders differently now.")
@click.option(
    "-e",
    "--extra-vars",
    "extra_vars",
    multiple=True,
    metavar="@FILE",
    help="A secret param given with -e when the run started (irx did not keep it); best as @FILE.",
)
@_run_controls
def resume(
    run_id: str,
    from_step: str | None,
    replan: bool,
    extra_vars: tuple[str, ...],
    yes: bool,
    approve: tuple[str, ...],
    wait_approval: str | None,
    force: bool,
    approvers: Path | None,
    runs_dir: Path | None,
    quiet: bool,
    fmt: str,
    forks: int,
    mitogen: bool,
    playbook_dir: Path | None,
    vault_password_file: str | None,
    ask_vault_pass: bool,
    become_password_file: str | None,
    ask_become_pass: bool,
) -> None:
    """Continue a run that stopped: at a gate (exit 4), interrupted, or failed.

    In the same journal, with the same playbook, inventory, limit and params: steps that completed are not
    run again (their results stand); the step it stopped at runs again only on the hosts where it did not
    succeed (--from STEP: from that step, on all hosts). Refused, with what differs, when the playbook or
    inventory renders differently now (--replan accepts it). Exit codes as irx run.
    """
    from irx.commands.resume import main
    from irx.run import RunOptions

    options = RunOptions(
        extra_vars=extra_vars, yes=yes, approve=approve, approvers=approvers, force=force, runs_dir=runs_dir,
        wait_approval=duration_option("--wait-approval", wait_approval), quiet=quiet, fmt=fmt, forks=forks,
        mitogen=mitogen, playbook_dir=playbook_dir, from_step=from_step, replan=replan,
        vault=_vault(vault_password_file, ask_vault_pass, become_password_file, ask_become_pass),
    )  # fmt: skip
    raise SystemExit(main(run_id, options))


@cli.command(name="hash-password")
def hash_password() -> None:
    """Print a password hash for an approvers file: the password is read twice from the terminal, or one line
    from stdin, never from an argument (ps shows arguments to everyone)."""
    from irx.commands.passwords import main

    raise SystemExit(main())


@cli.command()
@click.option(
    "--routes",
    "routes",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The routes file: which alerts start which playbook, where and how (schemas/routes.schema.json).",
)
@click.option(
    "--token-file",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Bearer tokens Alertmanager may send, one per line, in a file only you can read (chmod 600).",
)
@click.option("--bind", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(1, 65535), default=9095, show_default=True, help="Port to listen on.")
@click.option("--tls-cert", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="TLS certificate.")
@click.option("--tls-key", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="TLS private key.")
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(".irx/serve"),
    show_default=True,
    help="Where the incident book and the runs' logs live.",
)
@RUNS_DIR_OPTION
@click.option("-p", "--playbooks", "playbook_dir", type=click.Path(path_type=Path), help="Playbook directory.")
@click.option(
    "--stop-runs",
    is_flag=True,
    help="On shutdown, interrupt running incidents (they record it) instead of letting them finish.",
)
@click.option(
    "--approvers",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Approvers file (kind: Approvers): turns on the approval page at /runs for its users. Default: off.",
)
@click.option(
    "--public-url",
    metavar="URL",
    callback=url_option,
    help="Where browsers reach irx serve (scheme and host, e.g. https://irx.example.com behind a TLS proxy): "
    "links, the Origin check, Secure cookies. Default: from --bind, --port and --tls-cert.",
)
def serve(**options: Any) -> None:  # the options are ServeOptions' fields, one to one
    """Receive Alertmanager's webhook (POST /alerts/alertmanager) and start the routed playbooks.

    One incident per alert group: repeats and the resolution are recorded on it, at most the routes'
    max_concurrent runs at once, the rest queued. Each run is an ordinary irx run with its own journal.
    SIGTERM / Ctrl-C stop accepting alerts; running incidents continue unless --stop-runs.
    With --approvers, approvers log in at /runs to follow runs and approve or refuse the gates they wait at.
    """
    from irx.commands.serve import ServeOptions
    from irx.commands.serve import main as serve_main

    raise SystemExit(serve_main(ServeOptions(**options)))


from irx.cli_completion import install as _install_completion  # noqa: E402
from irx.cli_journal import approve, deny, history, report, runs  # noqa: E402 (the commands on a run's journal)
from irx.cli_library import list_, new, schema, show, validate  # noqa: E402 (the commands on the playbook library)

for _command in (validate, list_, show, schema, new, report, history, approve, deny, runs):
    cli.add_command(_command)
_install_completion(cli)  # shell completion of playbook names, step ids, inventories and run ids


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: run the CLI, map errors to one line and an exit code."""
    try:
        cli.main(args=list(argv) if argv is not None else None, prog_name="irx", standalone_mode=False)
    except SystemExit as exc:
        return int(exc.code or 0) if not isinstance(exc.code, str) else ExitCode.USAGE
    except click.exceptions.Abort:
        click.echo("irx: interrupted", err=True)
        return ExitCode.INTERRUPTED
    except click.ClickException as exc:
        exc.show()
        return ExitCode.USAGE
    except IrxError as exc:
        click.echo(f"irx: error: {exc}", err=True)
        return exc.exit_code
    except KeyboardInterrupt:
        click.echo("irx: interrupted", err=True)
        return ExitCode.INTERRUPTED
    except BrokenPipeError:
        return ExitCode.OK
    except Exception as exc:  # the one place a bug is turned into a message, not a traceback
        return _internal_error(exc)
    return ExitCode.OK


def _internal_error(exc: BaseException) -> int:
    import tempfile
    import traceback

    with tempfile.NamedTemporaryFile("w", prefix="irx-crash-", suffix=".log", delete=False) as log:
        traceback.print_exception(exc, file=log)
    click.echo(f"irx: internal error: {type(exc).__name__}: {exc} (traceback in {log.name})", err=True)
    return ExitCode.INTERNAL


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

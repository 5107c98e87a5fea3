"""The ``irx`` command line: argument parsing only.

Each command parses its options, calls one function that returns an exit code, and lets ``main`` map
``IrxError`` to one line on stderr and its exit code. Heavy libraries (ansible, ansible_runner, httpx,
paramiko, jsonschema) are imported inside the functions that need them, so ``irx --help`` stays fast.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

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
  4    run stopped at an approval gate with nobody to approve
  130  interrupted (Ctrl-C / SIGTERM / SIGHUP); everything done so far is recorded
"""

FORMAT_TEXT_JSON = click.Choice(["text", "json"])


@click.group(
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog=EXIT_CODES_HELP,
)
@click.version_option(package_name="irx", prog_name="irx")
def cli() -> None:
    """irx: declarative incident remediation.

    Validate incident playbooks in CI, plan them for drills, run them against an Ansible inventory
    (diagnose -> mitigate -> verify, with approvals and rollback) and keep a timeline for the post-mortem.
    """


@cli.command()
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


@cli.command(name="list")
@click.option("--format", "fmt", type=FORMAT_TEXT_JSON, default="text", show_default=True)
@click.option("-p", "--playbooks", "playbook_dir", type=click.Path(path_type=Path), help="Playbook directory.")
def list_(fmt: str, playbook_dir: Path | None) -> None:
    """List the playbooks: name, severity, title and step counts per phase."""
    from irx.commands.list import main

    raise SystemExit(main(fmt=fmt, playbook_dir=playbook_dir))


@cli.command()
@click.argument("name")
@click.option("--format", "fmt", type=FORMAT_TEXT_JSON, default="text", show_default=True)
@click.option("-p", "--playbooks", "playbook_dir", type=click.Path(path_type=Path), help="Playbook directory.")
def show(name: str, fmt: str, playbook_dir: Path | None) -> None:
    """Show one playbook: symptoms, params and steps by phase. NAME is a name or a file path."""
    from irx.commands.show import main

    raise SystemExit(main(name, fmt=fmt, playbook_dir=playbook_dir))


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


@cli.command()
def schema() -> None:
    """Print the playbook JSON Schema (draft 2020-12)."""
    from irx.commands.schema import main

    raise SystemExit(main())


@cli.command()
@click.argument("name")
@click.option("-i", "--inventory", help="Inventory NAME (inventories/NAME) or PATH. Default: local (this machine).")
@click.option("-l", "--limit", help="Further limit the hosts with an Ansible pattern.")
@click.option("-e", "--extra-vars", "extra_vars", multiple=True, metavar="K=V|@FILE", help="Param values (repeatable).")
@click.option("--dry-run", is_flag=True, help="Run the read-only steps for real; show which mutating steps would run.")
@click.option("-y", "--yes", is_flag=True, help="Approve every approval gate (no prompt).")
@click.option(
    "--approve",
    multiple=True,
    metavar="STEP[@HASH]",
    help="Approve this step's gate (repeatable); with @HASH (from irx plan or the gate), only that exact rendering.",
)
@click.option(
    "--wait-approval",
    "wait_approval",
    metavar="DURATION",
    help="At a gate nobody approved in advance, wait up to DURATION (e.g. 30m) for irx approve / irx deny from "
    "another terminal instead of asking here; then stop awaiting approval (exit 4).",
)
@click.option(
    "--trigger",
    metavar="@FILE",
    help="What started this run (JSON: source, incident, route, alertname, labels, fired_at), recorded in the "
    "journal and the post-mortem; irx serve passes the alert's.",
)
@click.option("--approval-url", metavar="URL", callback=url_option, help="Messages link to URL/runs/RUN_ID.")
@click.option("--force", is_flag=True, help="Run even if another run holds the lock of a host this run would change.")
@click.option(
    "--runs-dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="IRX_RUNS_DIR",
    help="Where run journals go. Default: .irx/runs (env IRX_RUNS_DIR).",
)
@click.option("-q", "--quiet", is_flag=True, help="No live progress; only the final status line.")
@click.option(
    "--format",
    "fmt",
    type=FORMAT_TEXT_JSON,
    default="text",
    show_default=True,
    help="json: a machine-readable summary on stdout (progress goes to stderr).",
)
@click.option("--forks", type=click.IntRange(1, 500), default=10, show_default=True, help="Parallel hosts.")
@click.option("-p", "--playbooks", "playbook_dir", type=click.Path(path_type=Path), help="Playbook directory.")
@_vault_options
@BECOME_OPTIONS[0]
@BECOME_OPTIONS[1]
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
    runs_dir: Path | None,
    quiet: bool,
    fmt: str,
    forks: int,
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
        inventory=inventory,
        limit=limit,
        extra_vars=extra_vars,
        dry_run=dry_run,
        yes=yes,
        approve=approve,
        wait_approval=duration_option("--wait-approval", wait_approval),
        trigger=trigger,
        approval_url=approval_url,
        force=force,
        runs_dir=runs_dir,
        quiet=quiet,
        fmt=fmt,
        forks=forks,
        playbook_dir=playbook_dir,
        vault=_vault(vault_password_file, ask_vault_pass, become_password_file, ask_become_pass),
    )
    raise SystemExit(main(name, options))


RUNS_DIR_OPTION = click.option(
    "--runs-dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="IRX_RUNS_DIR",
    help="Where run journals are. Default: .irx/runs (env IRX_RUNS_DIR).",
)


@cli.command()
@click.argument("run_id", default="latest", metavar="[RUN_ID|latest]")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["markdown", "json", "html"]),
    default="markdown",
    show_default=True,
    help="markdown: a post-mortem draft; json: described by schemas/report.schema.json; html: one file.",
)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write the report to FILE.")
@RUNS_DIR_OPTION
def report(run_id: str, fmt: str, output: Path | None, runs_dir: Path | None) -> None:
    """Render a run's report from its journal: timeline, evidence, resolution, metrics vs severity targets.

    RUN_ID is a run id, a unique prefix of one, or latest (default). A journal with torn or corrupted lines
    is still reported (its problems are listed). Exit 0 written, 2 unknown run or unwritable FILE.
    """
    from irx.commands.report import main

    raise SystemExit(main(run_id, fmt=fmt, output=output, runs_dir=runs_dir))


@cli.command()
@click.option("--format", "fmt", type=FORMAT_TEXT_JSON, default="text", show_default=True)
@RUNS_DIR_OPTION
def history(fmt: str, runs_dir: Path | None) -> None:
    """List recorded runs, newest first: id, playbook, inventory, mode, status, operator, started, duration."""
    from irx.commands.history import main

    raise SystemExit(main(fmt=fmt, runs_dir=runs_dir))


@cli.command()
@click.argument("run_id")
@click.argument("step", required=False)
@click.option("--hash", "expect_hash", metavar="HASH", help="Approve only this rendering (from irx runs or the gate).")
@click.option("-y", "--yes", is_flag=True, help="Approve what the gate shows without asking (no --hash needed).")
@RUNS_DIR_OPTION
def approve(run_id: str, step: str | None, expect_hash: str | None, yes: bool, runs_dir: Path | None) -> None:
    """Approve the gate a run waits at (a run started with --wait-approval), from another terminal.

    Shows what the step would run on each host and its approval hash, then records the approval, as this
    account, bound to that hash: the run runs exactly that, or nothing. RUN_ID may be a unique prefix; STEP
    defaults to the step the run waits for. Exit 0 recorded, 2 not waiting, another step, or a stale --hash.
    """
    from irx.commands.approve import decide

    raise SystemExit(decide(run_id, step, approve=True, expect_hash=expect_hash, yes=yes, runs_dir=runs_dir))


@cli.command()
@click.argument("run_id")
@click.argument("step", required=False)
@click.option("--reason", required=True, help="Why not: recorded in the journal and the post-mortem.")
@RUNS_DIR_OPTION
def deny(run_id: str, step: str | None, reason: str, runs_dir: Path | None) -> None:
    """Refuse the gate a run waits at: the step does not run, the run goes on without it.

    Exit 0 recorded, 2 not waiting or another step.
    """
    if not reason.strip():
        raise click.BadParameter("say why the step must not run", param_hint="--reason")
    from irx.commands.approve import decide

    raise SystemExit(decide(run_id, step, approve=False, reason=reason.strip(), runs_dir=runs_dir))


@cli.command()
@click.option("--format", "fmt", type=FORMAT_TEXT_JSON, default="text", show_default=True)
@RUNS_DIR_OPTION
def runs(fmt: str, runs_dir: Path | None) -> None:
    """List the runs still running, waiting at a gate (and for what), or stopped awaiting approval."""
    from irx.commands.approve import runs as main

    raise SystemExit(main(fmt=fmt, runs_dir=runs_dir))


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
@click.option("--public-url", metavar="URL", callback=url_option, help="How people reach this server (run pages).")
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
def serve(
    routes: Path,
    token_file: Path,
    bind: str,
    port: int,
    tls_cert: Path | None,
    tls_key: Path | None,
    public_url: str | None,
    state_dir: Path,
    runs_dir: Path | None,
    playbook_dir: Path | None,
    stop_runs: bool,
) -> None:
    """Receive Alertmanager's webhook (POST /alerts/alertmanager) and start the routed playbooks.

    One incident per alert group: repeats and the resolution are recorded on it, at most the routes'
    max_concurrent runs at once, the rest queued. Each run is an ordinary irx run with its own journal.
    SIGTERM / Ctrl-C stop accepting alerts; running incidents continue unless --stop-runs.
    """
    from irx.commands.serve import ServeOptions
    from irx.commands.serve import main as serve_main

    options = ServeOptions(
        routes=routes,
        token_file=token_file,
        bind=bind,
        port=port,
        tls_cert=tls_cert,
        tls_key=tls_key,
        public_url=public_url,
        state_dir=state_dir,
        runs_dir=runs_dir,
        playbook_dir=playbook_dir,
        stop_runs=stop_runs,
    )
    raise SystemExit(serve_main(options))


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

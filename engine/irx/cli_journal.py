"""The ``irx`` commands that read or answer a run's journal: ``report``, ``history``, ``approve``, ``deny``,
``runs`` (registered on the group in irx.cli). Argument parsing only, as in irx.cli: each body hands over
to its module of irx.commands."""

from __future__ import annotations

from pathlib import Path

import click

FORMAT_TEXT_JSON = click.Choice(["text", "json"])

RUNS_DIR_OPTION = click.option(
    "--runs-dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="IRX_RUNS_DIR",
    help="Where run journals are. Default: .irx/runs (env IRX_RUNS_DIR).",
)


@click.command()
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


@click.command()
@click.option("--format", "fmt", type=FORMAT_TEXT_JSON, default="text", show_default=True)
@RUNS_DIR_OPTION
def history(fmt: str, runs_dir: Path | None) -> None:
    """List recorded runs, newest first: id, playbook, inventory, mode, status, operator, started, duration."""
    from irx.commands.history import main

    raise SystemExit(main(fmt=fmt, runs_dir=runs_dir))


@click.command()
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


@click.command()
@click.argument("run_id")
@click.argument("step", required=False)
@click.option("--reason", required=True, help="Why not: recorded in the journal and the post-mortem.")
@RUNS_DIR_OPTION
def deny(run_id: str, step: str | None, reason: str, runs_dir: Path | None) -> None:
    """Refuse the gate a run waits at: the step does not run, the run goes on without it.

    Exit 0 recorded, 2 not waiting or another step.
    """
    from irx.inbox import one_line

    reason = one_line(reason)  # as it is recorded: control characters alone are no reason
    if not reason:
        raise click.BadParameter("say why the step must not run", param_hint="--reason")
    from irx.commands.approve import decide

    raise SystemExit(decide(run_id, step, approve=False, reason=reason, runs_dir=runs_dir))


@click.command()
@click.option("--format", "fmt", type=FORMAT_TEXT_JSON, default="text", show_default=True)
@RUNS_DIR_OPTION
def runs(fmt: str, runs_dir: Path | None) -> None:
    """List the runs still running, waiting at a gate (and for what), or stopped awaiting approval."""
    from irx.commands.approve import runs as main

    raise SystemExit(main(fmt=fmt, runs_dir=runs_dir))

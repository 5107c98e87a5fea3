"""How an incident becomes an ``irx run`` command line (pure: no process is started)."""

from __future__ import annotations

from pathlib import Path

import pytest

from irx.incidents import Incident
from irx.routes import Mode, Route
from irx.serve.dispatch import Launch, run_argv

LAUNCH = Launch(command=("irx",), runs_dir=Path("/runs"), work_dir=Path("/state"), environ={})


def incident(limit: str | None = None) -> Incident:
    return Incident("0123456789abcdef-0001", "{}:{}", "irx", "r", "running", 1.0, 1.0, limit=limit)


@pytest.mark.parametrize("mode", ["diagnose", "dry-run"])
def test_diagnose_and_dry_run_never_run_a_mutating_step(mode: Mode) -> None:
    argv = run_argv(Route("r", (), "db-pool-exhausted", mode=mode), incident(), LAUNCH, None)
    assert "--dry-run" in argv
    assert not any(a.startswith("--approve") for a in argv)


def test_run_mode_pre_approves_only_the_named_steps_and_every_value_is_one_argument() -> None:
    route = Route("r", (), "db-pool-exhausted", inventory="prod", mode="run", approve=("kill_idle",))
    argv = run_argv(route, incident(limit="-rf db1"), LAUNCH, Path("/state/p.json"))
    assert argv == [
        "irx", "run", "db-pool-exhausted", "--runs-dir=/runs", "--quiet", "--format=json", "--inventory=prod",
        "--limit=-rf db1", "--extra-vars=@/state/p.json", "--wait-approval=30m", "--approve=kill_idle",
    ]  # fmt: skip


def test_run_mode_gates_wait_for_a_person_as_long_as_the_route_says() -> None:
    route = Route("r", (), "db-pool-exhausted", mode="run", approval_timeout="2h")
    assert "--wait-approval=2h" in run_argv(route, incident(), LAUNCH, None)
    dry = run_argv(Route("r", (), "db-pool-exhausted", mode="dry-run"), incident(), LAUNCH, None)
    assert not any(a.startswith("--wait-approval") for a in dry)  # a dry run has no gate to wait at


def test_the_public_url_reaches_the_run_as_its_own_argument() -> None:
    launch = Launch(command=("irx",), runs_dir=Path("/runs"), work_dir=Path("/state"), environ={},
                    public_url="https://irx.example.com/on call")  # fmt: skip
    argv = run_argv(Route("r", (), "db-pool-exhausted"), incident(), launch, None, Path("/state/t.json"))
    assert argv[6:8] == ["--trigger=@/state/t.json", "--approval-url=https://irx.example.com/on call"]
    assert not any(a.startswith("--approval-url") for a in run_argv(Route("r", (), "x"), incident(), LAUNCH, None))


@pytest.mark.parametrize(
    ("bind", "tls", "expected"),
    [("127.0.0.1", False, "http://127.0.0.1:9095"), ("::1", True, "https://[::1]:9095")],
)
def test_the_default_public_url_is_where_irx_serve_listens(bind: str, tls: bool, expected: str) -> None:
    from irx.commands.serve import ServeOptions, public_origin

    options = ServeOptions(Path("r.yaml"), Path("t"), bind=bind, tls_cert=Path("c") if tls else None)
    assert public_origin(options) == expected
    assert (
        public_origin(ServeOptions(Path("r.yaml"), Path("t"), public_url="https://irx.example"))
        == "https://irx.example"
    )

"""Shell completion through Click's real protocol: ``irx`` run as a subprocess the way bash, zsh and fish run it
(``_IRX_COMPLETE=..._complete``, ``COMP_WORDS``, ``COMP_CWORD``), over a real library and a real run's journal."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
IRX = [sys.executable, "-m", "irx.cli"]

PLAYBOOK = """\
apiVersion: irx/v1
kind: Playbook
metadata: {name: tiny-check, title: A tiny check, severity: SEV4}
diagnose:
  - id: look_around
    notify: {message: looking}
verify:
  - id: all_good
    assert: {that: "1 == 1"}
  - id: also_good
    assert: {that: "2 == 2"}
"""


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A working directory with the shipped playbooks and inventories, and one real recorded run."""
    root = tmp_path_factory.mktemp("completion")
    shutil.copytree(REPO / "playbooks", root / "playbooks")
    shutil.copytree(REPO / "inventories", root / "inventories")
    (root / "playbooks" / "tiny-check.yaml").write_text(PLAYBOOK)
    env = {k: v for k, v in os.environ.items() if k not in {"IRX_PLAYBOOKS", "IRX_RUNS_DIR"}}
    run = subprocess.run(
        [*IRX, "run", "tiny-check", "-y", "--format", "json"], cwd=root, env=env, capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    (root / "run_id").write_text(json.loads(run.stdout)["run_id"])
    return root


def complete(workdir: Path, line: str, shell: str = "bash", **env: str) -> list[str]:
    """What ``shell`` would offer for ``line`` (the cursor at its end), as Click's completion script asks."""
    words = line.split(" ")
    environ = {k: v for k, v in os.environ.items() if k not in {"IRX_PLAYBOOKS", "IRX_RUNS_DIR"}} | env
    if shell == "fish":  # fish passes the word under the cursor itself, not its index
        environ |= {"COMP_WORDS": line, "COMP_CWORD": words[-1]}
    else:
        environ |= {"COMP_WORDS": line, "COMP_CWORD": str(len(words) - 1)}
    environ["_IRX_COMPLETE"] = f"{shell}_complete"
    result = subprocess.run(IRX, cwd=workdir, env=environ, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    if shell == "zsh":  # type, value, help: three lines per item
        lines = result.stdout.splitlines()
        return [lines[i + 1] for i in range(0, len(lines), 3) if lines[i] == "plain"]
    return [item.split(",", 1)[1].split("\t")[0] for item in result.stdout.splitlines() if item.startswith("plain,")]


@pytest.mark.parametrize("command", ["run", "plan", "show"])
def test_playbook_names(workdir: Path, command: str) -> None:
    assert complete(workdir, f"irx {command} high-") == ["high-cpu", "high-error-rate", "high-memory"]
    assert "tiny-check" in complete(workdir, f"irx {command} ")
    shipped = {p.stem for p in (REPO / "playbooks").glob("*.yaml")}
    assert set(complete(workdir, f"irx {command} ")) == shipped | {"tiny-check"}


def test_playbook_names_from_the_library_given(workdir: Path, tmp_path: Path) -> None:
    (tmp_path / "mine.yaml").write_text(PLAYBOOK.replace("tiny-check", "only-mine"))
    assert complete(workdir, f"irx run -p {tmp_path} ") == ["mine", "only-mine"]
    assert complete(workdir, "irx plan ", IRX_PLAYBOOKS=str(tmp_path)) == ["mine", "only-mine"]


def test_inventory_names(workdir: Path) -> None:
    assert complete(workdir, "irx run high-cpu -i ") == ["example-prod", "local"]
    assert complete(workdir, "irx plan high-cpu --inventory ex") == ["example-prod"]


def test_step_ids_of_the_playbook_named_before(workdir: Path) -> None:
    assert complete(workdir, "irx run tiny-check --approve ") == ["all_good", "also_good", "look_around"]
    assert complete(workdir, "irx run high-cpu --approve restart") == ["restart_app"]
    assert complete(workdir, "irx run no-such-playbook --approve ") == []  # nothing, and no traceback


def test_run_ids_and_the_steps_of_that_run(workdir: Path) -> None:
    run_id = (workdir / "run_id").read_text()
    for command in ("report", "resume", "approve", "deny"):
        assert complete(workdir, f"irx {command} ") == [run_id, "latest"], command
    assert complete(workdir, f"irx resume {run_id[:8]}") == [run_id]
    assert complete(workdir, f"irx resume {run_id} --from al") == ["all_good", "also_good"]
    assert complete(workdir, f"irx approve {run_id} ") == ["all_good", "also_good", "look_around"]
    assert complete(workdir, "irx report ", IRX_RUNS_DIR=str(workdir / "elsewhere")) == []


@pytest.mark.parametrize("shell", ["zsh", "fish"])
def test_zsh_and_fish_get_the_same_names(workdir: Path, shell: str) -> None:
    assert complete(workdir, "irx show high-", shell) == ["high-cpu", "high-error-rate", "high-memory"]
    assert complete(workdir, "irx run tiny-check --approve al", shell) == ["all_good", "also_good"]


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_the_completion_script_is_sourceable(workdir: Path, shell: str) -> None:
    env = os.environ | {"_IRX_COMPLETE": f"{shell}_source"}
    result = subprocess.run(IRX, cwd=workdir, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0
    assert "_IRX_COMPLETE" in result.stdout
    if shell == "bash":
        check = subprocess.run(["bash", "-n"], input=result.stdout, capture_output=True, text=True, check=False)
        assert check.returncode == 0, check.stderr

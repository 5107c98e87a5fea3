"""The ``irx-validate`` pre-commit hook (.pre-commit-hooks.yaml), run by the real ``pre-commit try-repo``.

pre-commit installs the hook the way a team's repository gets it: a virtualenv with irx pip-installed
from this repository (committed, as pre-commit reads a repository), dependencies from PyPI through
constraints.txt. try-repo installs into a fresh store each time: that install is most of this test's 3 minutes
(two try-repo runs) on a loaded machine.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
PRE_COMMIT = Path(sys.executable).parent / "pre-commit"
GIT_ID = ["-c", "user.name=irx test", "-c", "user.email=test@irx.invalid", "-c", "commit.gpgsign=false"]


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(["git", *GIT_ID, *args], cwd=cwd, capture_output=True, text=True, check=True, timeout=120)
    return done.stdout


def snapshot_of_this_tree(dest: Path) -> Path:
    """This working tree as a one-commit repository: what try-repo sees is the code under test, uncommitted
    changes included (a plain clone would test the last commit)."""
    listed = git(REPO, "ls-files", "-z", "--cached", "--others", "--exclude-standard").split("\0")
    for name in filter(None, listed):
        source = REPO / name
        if source.is_file() and not source.is_symlink():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
        elif source.is_symlink():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            (dest / name).symlink_to(os.readlink(source))
    git(dest, "init", "-q")
    git(dest, "add", "-A")
    git(dest, "commit", "-q", "-m", "snapshot")
    return dest


def test_pre_commit_runs_irx_validate_on_the_playbooks_of_a_commit(tmp_path: Path) -> None:
    irx_repo = snapshot_of_this_tree(tmp_path / "irx")
    team = tmp_path / "team"
    (team / "playbooks").mkdir(parents=True)
    (team / "notes").mkdir()
    shutil.copy(REPO / "playbooks" / "high-cpu.yaml", team / "playbooks" / "high-cpu.yaml")
    broken = (REPO / "playbooks" / "high-cpu.yaml").read_text().replace("name: high-cpu", "name: broken", 1)
    broken = broken.replace("    serial: 1\n", "    serial: 1\n    colour: red\n", 1)
    (team / "playbooks" / "broken.yaml").write_text(broken)
    line = broken.splitlines().index("    colour: red") + 1
    (team / "notes" / "not-a-playbook.yaml").write_text("just: [notes\n")  # outside playbooks/: not checked
    git(team, "init", "-q")
    git(team, "add", "-A")

    env = os.environ | {
        "PRE_COMMIT_HOME": str(tmp_path / "cache"),
        "PIP_CONSTRAINT": str(REPO / "constraints.txt"),
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    }
    env.pop("PYTHONPATH", None)  # the hook's own environment must be what pre-commit installed, not ours

    def try_repo(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(PRE_COMMIT), "try-repo", str(irx_repo), "irx-validate", *args],
            cwd=team, env=env, capture_output=True, text=True, timeout=900, check=False,
        )  # fmt: skip

    everything = try_repo("--all-files")
    output = everything.stdout + everything.stderr
    assert everything.returncode == 1, output
    assert "irx validate" in output
    assert "Failed" in output
    assert f"playbooks/broken.yaml:{line}:5: schema-unknown-key: unknown key 'colour' in targets.app" in output
    assert "2 files checked: 1 error(s)" in output  # both playbooks, in one invocation, not the notes
    assert "not-a-playbook" not in output
    assert "high-cpu.yaml:" not in output

    good = try_repo("--files", "playbooks/high-cpu.yaml")
    assert good.returncode == 0, good.stdout + good.stderr
    assert "Passed" in good.stdout

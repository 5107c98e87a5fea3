"""What `pip install irx` gets: the engine, its schemas, templates, playbooks and Ansible plugins, and no
test harness (irx_testenv is its own package under testenv/, installed only for tests, drills and demo)."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_the_wheel_ships_the_engine_and_no_test_harness(tmp_path: Path) -> None:
    env = {**os.environ, "PIP_CONSTRAINT": str(REPO / "constraints.txt"), "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path), str(REPO)],
        capture_output=True, text=True, timeout=300, check=False, env=env,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = tmp_path.glob("irx-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert [n for n in names if "testenv" in n or n.startswith("tests/")] == []
    for needed in ("irx/cli.py", "irx/lease.py", "irx/schemas/timeline.schema.json",
                   "irx/executors/ansible_plugins/modules/irx_command.py",
                   "irx/executors/ansible_plugins/modules/irx_lease.py",
                   "irx/executors/ansible_plugins/action/irx_command.py",
                   "irx/executors/ansible_plugins/module_utils/irx_step.py",
                   "irx/executors/ansible_plugins/module_utils/irx_command_args.py",
                   "irx/executors/ansible_plugins/module_utils/irx_leases.py",
                   "irx/executors/ansible_plugins/strategy/irx.py"):  # fmt: skip
        assert needed in names
    assert any(n.startswith("irx/data/playbooks/") and n.endswith(".yaml") for n in names)
    assert any(n.startswith("irx/templates/messages/") for n in names)
    assert {n.split("/")[0] for n in names} == {
        "irx",
        wheel.name.split("-")[0] + "-" + wheel.name.split("-")[1] + ".dist-info",
    }

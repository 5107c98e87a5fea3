"""``irx new NAME`` as a user runs it: a real subprocess, in a checkout and outside one."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
IRX = [sys.executable, "-m", "irx.cli"]


def irx(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != "IRX_PLAYBOOKS"} | (env or {})
    return subprocess.run([*IRX, *args], capture_output=True, text=True, cwd=cwd, env=environ, timeout=120, check=False)


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A checkout laid out like irx's: schemas/, playbooks/ and the shared drill plays."""
    root = tmp_path / "repo"
    (root / "playbooks").mkdir(parents=True)
    shutil.copytree(REPO / "schemas", root / "schemas")
    shutil.copytree(REPO / "molecule" / "_shared", root / "molecule" / "_shared")
    return root


def test_new_writes_a_playbook_that_validates_and_plans_and_its_drill(checkout: Path) -> None:
    result = irx("new", "disk-full", cwd=checkout)
    assert result.returncode == 0, result.stderr
    playbook = checkout / "playbooks" / "disk-full.yaml"
    text = playbook.read_text()
    assert text.splitlines()[0] == "# yaml-language-server: $schema=../schemas/playbook.schema.json"
    data = yaml.safe_load(text)
    assert data["metadata"]["name"] == "disk-full"
    assert list(data["params"]) == ["service"]
    assert [len(data[phase]) for phase in ("diagnose", "mitigate", "verify", "rollback")] == [1, 1, 1, 1]
    assert data["mitigate"][0]["approval"]["required"] is True
    assert "1 file checked: no problems" in result.stdout
    # the files it says it wrote, and nothing it does not say
    drill = checkout / "molecule" / "disk-full"
    assert sorted(p.name for p in drill.iterdir()) == ["drill.yml", "molecule.yml", "prepare.yml", "verify.yml"]
    for name in ("molecule.yml", "drill.yml", "prepare.yml", "verify.yml"):
        assert f"created {Path('molecule/disk-full') / name}" in result.stdout
        yaml.safe_load((drill / name).read_text())  # each is YAML
    scenario = yaml.safe_load((drill / "molecule.yml").read_text())
    assert scenario["ansible"]["playbooks"]["converge"] == "../_shared/converge.yml"
    assert yaml.safe_load((drill / "drill.yml").read_text())["drill_fix"] == ["restart_service"]
    # independently of irx new's own check: strict validation (warnings too) and a plan
    strict = irx("validate", "--strict", "playbooks/disk-full.yaml", cwd=checkout)
    assert strict.returncode == 0, strict.stdout
    plan = irx("plan", "disk-full", cwd=checkout)
    assert plan.returncode == 0, plan.stderr
    assert "restart_service" in plan.stdout


def test_new_refuses_to_overwrite_anything(checkout: Path) -> None:
    assert irx("new", "disk-full", "--no-drill", cwd=checkout).returncode == 0
    playbook = checkout / "playbooks" / "disk-full.yaml"
    playbook.write_text(playbook.read_text() + "# my edits\n")
    again = irx("new", "disk-full", cwd=checkout)
    assert again.returncode == 2
    assert again.stderr.strip() == (
        "irx: error: playbooks/disk-full.yaml already exists; irx new never overwrites (remove it or pick another NAME)"
    )
    assert playbook.read_text().endswith("# my edits\n")
    assert not (checkout / "molecule" / "disk-full").exists()  # nothing half-written either
    # the drill alone existing is refused too, before the playbook is written
    (checkout / "molecule" / "other").mkdir()
    (checkout / "molecule" / "other" / "verify.yml").write_text("- kept\n")
    refused = irx("new", "other", cwd=checkout)
    assert refused.returncode == 2
    assert "molecule/other/verify.yml already exists" in refused.stderr
    assert not (checkout / "playbooks" / "other.yaml").exists()
    assert (checkout / "molecule" / "other" / "verify.yml").read_text() == "- kept\n"


def test_new_refuses_a_name_another_file_already_uses(checkout: Path) -> None:
    text = (REPO / "playbooks" / "high-cpu.yaml").read_text()
    (checkout / "playbooks" / "cpu.yaml").write_text(text)  # metadata.name high-cpu in another file
    result = irx("new", "high-cpu", cwd=checkout)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "irx: error: a playbook named 'high-cpu' already exists: playbooks/cpu.yaml; pick another NAME"
    )


@pytest.mark.parametrize("name", ["Disk", "disk_full", "-disk", "d", "disk-", "a" * 65, "../etc/x", "x.yaml"])
def test_new_refuses_what_is_not_a_playbook_name(checkout: Path, name: str) -> None:
    result = irx("new", "--", name, cwd=checkout)
    assert result.returncode == 2
    assert result.stderr.startswith(f"irx: error: '{name}' is not a playbook name")
    assert len(result.stderr.splitlines()) == 1
    assert list((checkout / "playbooks").iterdir()) == []


def test_new_outside_a_checkout_writes_the_library_irx_reads(tmp_path: Path) -> None:
    """No checkout: ./playbooks is created, the modeline points at the schema installed with irx, no drill
    (there is no molecule/_shared), and irx run/plan find the playbook by name."""
    result = irx("new", "cache-down", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "no drill written" in result.stdout
    playbook = tmp_path / "playbooks" / "cache-down.yaml"
    modeline = playbook.read_text().splitlines()[0]
    schema = (playbook.parent / modeline.split("$schema=", 1)[1]).resolve()
    assert schema.read_text() == (REPO / "schemas" / "playbook.schema.json").read_text()
    assert not (tmp_path / "molecule").exists()
    assert irx("plan", "cache-down", cwd=tmp_path).returncode == 0
    # $IRX_PLAYBOOKS is the library when set; -o FILE writes anywhere
    library = tmp_path / "library"
    assert irx("new", "queue-stuck", cwd=tmp_path, env={"IRX_PLAYBOOKS": str(library)}).returncode == 0
    assert (library / "queue-stuck.yaml").is_file()
    elsewhere = irx("new", "one-off", "-o", str(tmp_path / "x" / "mine.yml"), cwd=tmp_path)
    assert elsewhere.returncode == 0  # written and valid; the file is not named after it: a warning, said
    assert "name-mismatch" in elsewhere.stdout
    assert yaml.safe_load((tmp_path / "x" / "mine.yml").read_text())["metadata"]["name"] == "one-off"


def test_new_help_says_where_it_writes(tmp_path: Path) -> None:
    result = irx("new", "--help", cwd=tmp_path)
    assert result.returncode == 0
    assert "$IRX_PLAYBOOKS" in result.stdout
    assert "./playbooks" in result.stdout
    assert "Never overwrites" in result.stdout

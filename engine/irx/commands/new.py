"""``irx new NAME``: write a playbook skeleton (and its drill), refuse to overwrite, validate it at once."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from irx.errors import ExitCode, UsageError


def library_dir(playbook_dir: Path | None) -> Path:
    """Where ``irx new`` writes: --playbooks, else $IRX_PLAYBOOKS, else ./playbooks (created): the library
    irx run, plan and list read, never the examples shipped inside the package."""
    from irx.library import PLAYBOOK_DIR_ENV

    if playbook_dir is not None:
        return playbook_dir
    env = os.environ.get(PLAYBOOK_DIR_ENV)
    return Path(env) if env else Path("playbooks")


def drill_dir_for(playbook: Path, name: str) -> Path | None:
    """molecule/NAME beside the playbook's directory, when that checkout has the shared drill plays
    (molecule/_shared); None elsewhere: a drill needs them."""
    molecule = Path(os.path.relpath(playbook.absolute().parent.parent / "molecule"))
    return molecule / name if (molecule / "_shared").is_dir() else None


def _taken(name: str, directory: Path) -> Path | None:
    """The file of a playbook already named ``name`` in ``directory``, if any."""
    from irx.library import find_playbook

    if not directory.is_dir():
        return None
    try:
        return find_playbook(name, directory)
    except UsageError:
        return None


def main(name: str, *, output: Path | None, playbook_dir: Path | None, drill: bool) -> int:
    from irx.scaffold import check_name, scaffold
    from irx.validate import check_paths, failing, format_text

    problem = check_name(name)
    if problem is not None:
        raise UsageError(problem)
    directory = library_dir(playbook_dir)
    playbook = output if output is not None else directory / f"{name}.yaml"
    if playbook.suffix not in {".yaml", ".yml"}:
        raise UsageError(f"{playbook}: a playbook file ends in .yaml or .yml")
    existing = _taken(name, playbook.parent if output is not None else directory)
    if existing is not None and existing.resolve() != playbook.resolve():
        raise UsageError(f"a playbook named '{name}' already exists: {existing}; pick another NAME")
    drill_dir = drill_dir_for(playbook, name) if drill else None
    files = scaffold(name, playbook, drill_dir).files
    for path in files:
        if path.exists() or path.is_symlink():
            raise UsageError(f"{path} already exists; irx new never overwrites (remove it or pick another NAME)")
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with path.open("x", encoding="utf-8") as handle:  # "x": a file created meanwhile is not overwritten
                handle.write(text)
        except FileExistsError as exc:
            raise UsageError(f"{path} already exists; irx new never overwrites") from exc
        print(f"created {path}")
    if drill and drill_dir is None:
        print(f"no drill written: no molecule/_shared beside {playbook.parent} (docs/drills.md; --no-drill: no note)")
    _, problems = check_paths([playbook])
    sys.stdout.write(format_text([playbook], problems, strict=False))  # -o other-name.yaml: name-mismatch
    print(f"next: edit {playbook}, then irx validate {playbook} and irx plan {name}")
    return ExitCode.FAILED if failing(problems, strict=False) else ExitCode.OK

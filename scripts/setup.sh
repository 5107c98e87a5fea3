#!/usr/bin/env bash
# Create .venv and install irx with its test extra. Idempotent: a second run only checks.
#
# Versions: pyproject.toml holds the ranges irx supports; constraints.txt pins the exact versions the
# suite last passed with, and every install here goes through it (build dependencies too), so a new
# upstream release cannot break CI. IRX_DEPS=latest installs the newest releases the ranges allow instead
# (into .venv-latest, so the pinned venv is kept); `scripts/setup.sh --freeze` rewrites constraints.txt
# from the current venv once the suite passed with it.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=.venv
if [ "${IRX_DEPS:-pinned}" = latest ]; then
  VENV=.venv-latest
fi
if [ "${1:-}" = --freeze ]; then
  {
    grep -E '^(#|pip==|setuptools==|wheel==)' constraints.txt  # the installer and build backend pins stay
    "$VENV"/bin/python -m pip freeze --exclude-editable | grep -v -i -E '^irx(-testenv)?[= ]'
  } > constraints.txt.new
  mv constraints.txt.new constraints.txt
  echo "constraints.txt: $(grep -vc '^#' constraints.txt) pins from $VENV"
  exit 0
fi
if [ ! -x "$VENV"/bin/python ]; then
  "$PY" -m venv "$VENV"
fi
stamp=$VENV/.irx-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ testenv/pyproject.toml -nt "$stamp" ] \
    || [ constraints.txt -nt "$stamp" ]; then
  pip=("$VENV"/bin/python -m pip install -q --disable-pip-version-check)
  if [ "$VENV" = .venv-latest ]; then
    "${pip[@]}" -U pip
    "${pip[@]}" -U --upgrade-strategy eager -e '.[test]' -e ./testenv
  else
    export PIP_CONSTRAINT=$PWD/constraints.txt
    "${pip[@]}" pip
    "${pip[@]}" -e '.[test]' -e ./testenv  # the test harness: its own package, not in irx's wheel
  fi
  touch "$stamp"
fi
# An editable install leaves irx's own modules uncompiled, and with PYTHONDONTWRITEBYTECODE set (as some CI
# and sandbox environments do) Python never caches them: every irx process, hundreds in the tests, would
# compile about 50 modules again (70-140 ms each time). Writing the bytecode takes 0.2 s.
"$VENV"/bin/python -m compileall -q engine/irx testenv/irx_testenv >/dev/null

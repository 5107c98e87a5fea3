#!/usr/bin/env bash
# The test command (README, .ci/run): install everything, then lint, type-check, run the whole suite,
# then the drills (molecule scenarios against real injected faults, scripts/drills.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" = 0 ]; then
  bash scripts/install-system-deps.sh
else
  echo "note: not root; system packages (sshd, redis, nginx, postgres) must already be installed" >&2
fi
bash scripts/setup.sh
# IRX_DEPS=latest: the newest releases pyproject.toml allows, in .venv-latest (scripts/setup.sh)
IRX_VENV=$PWD/.venv
if [ "${IRX_DEPS:-pinned}" = latest ]; then IRX_VENV=$PWD/.venv-latest; fi
export IRX_VENV PATH="$IRX_VENV/bin:$PATH"
ruff check engine testenv tests bench molecule
ruff format --check engine testenv tests bench molecule
mypy  # strict, over the package, testenv and the tests: [tool.mypy] in pyproject.toml
set +e
pytest "$@"
rc=$?
set -e
if [ "$rc" = 5 ]; then
  echo "pytest collected no tests: that is a failure here" >&2
  rc=1
fi
if [ "$#" -gt 0 ]; then  # a chosen subset of the tests: no drills
  exit "$rc"
fi
if [ "$(id -u)" = 0 ]; then
  bash scripts/drills.sh || rc=1
else
  echo "note: not root; the drills (network namespaces, mounts) are skipped: run scripts/drills.sh as root" >&2
  rc=1
fi
exit "$rc"

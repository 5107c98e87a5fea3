#!/usr/bin/env bash
# The test command (README, .ci/run): install everything, then lint, type-check, and run the whole suite
# with the drills beside it (molecule scenarios against real injected faults, scripts/drills.sh).
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
drills_pid=""
if [ "$#" -eq 0 ] && [ "$(id -u)" = 0 ]; then
  # The drills run beside the tests, in lanes with network namespaces of their own (scripts/drills.sh): the
  # machine is busy while they run, which is what a drill has to stand (docs/drills.md).
  mkdir -p .irx/drills
  lanes=${IRX_DRILL_LANES:-2}
  echo "drills: running beside the tests in $lanes lanes; their results follow the tests' (.irx/drills/summary.txt)"
  IRX_DRILL_LANES=$lanes bash scripts/drills.sh >.irx/drills/summary.txt 2>&1 &
  drills_pid=$!
fi
pytest "$@"
rc=$?
if [ "$rc" = 5 ]; then
  echo "pytest collected no tests: that is a failure here" >&2
  rc=1
fi
if [ "$#" -gt 0 ]; then  # a chosen subset of the tests: no drills
  exit "$rc"
fi
if [ -n "$drills_pid" ]; then
  wait "$drills_pid" || rc=1
  cat .irx/drills/summary.txt
else
  echo "note: not root; the drills (network namespaces, mounts) are skipped: run scripts/drills.sh as root" >&2
  rc=1
fi
exit "$rc"

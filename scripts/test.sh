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
if [ "$#" -gt 0 ]; then  # a chosen subset of the tests: no drills
  pytest "$@"
  rc=$?
  [ "$rc" = 5 ] && { echo "pytest collected no tests: that is a failure here" >&2; rc=1; }
  exit "$rc"
fi
if [ "$(id -u)" != 0 ]; then
  pytest
  rc=$?
  [ "$rc" = 5 ] && { echo "pytest collected no tests: that is a failure here" >&2; rc=1; }
  echo "note: not root; the drills (network namespaces, mounts) are skipped: run scripts/drills.sh as root" >&2
  exit 1
fi
# Three parts on two cores. The integration tests in the foreground; beside them the drills, in lanes with
# network namespaces of their own (scripts/drills.sh): the machine is busy while they run, which is what a
# drill has to stand (docs/drills.md). The unit tests start when the drills end, on the core the drills
# free, instead of after the integration tests on one core.
mkdir -p .irx/drills
lanes=${IRX_DRILL_LANES:-2}
echo "drills: running beside the integration tests in $lanes lanes, then the unit tests; their results follow"
IRX_DRILL_LANES=$lanes bash scripts/drills.sh >.irx/drills/summary.txt 2>&1 &
drills=$!
(
  while kill -0 "$drills" 2>/dev/null; do sleep 2; done
  exec pytest tests --ignore=tests/integration -p no:cacheprovider
) >.irx/unit-tests.log 2>&1 &
unit=$!
# Ctrl-C or a TERM: the drills tear their scenarios down (scripts/drills.sh), the unit tests stop
trap 'kill -TERM "$drills" "$unit" 2>/dev/null; wait; exit 130' INT TERM
pytest tests/integration --durations=20  # the slowest, for whoever reviews the time CI takes
rc=$?
[ "$rc" = 5 ] && { echo "pytest collected no integration tests: that is a failure here" >&2; rc=1; }
wait "$drills"
drills_rc=$?
wait "$unit"
unit_rc=$?
echo "== the unit tests (.irx/unit-tests.log)"
if [ "$unit_rc" = 0 ]; then
  tail -n 2 .irx/unit-tests.log
else
  cat .irx/unit-tests.log
  echo "the unit tests failed (exit $unit_rc)" >&2
  rc=1
fi
echo "== the drills (.irx/drills/summary.txt)"
cat .irx/drills/summary.txt
[ "$drills_rc" = 0 ] || rc=1
exit "$rc"

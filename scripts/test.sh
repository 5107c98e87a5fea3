#!/usr/bin/env bash
# The test command (README, .ci/run): install everything, then lint, type-check and run the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" = 0 ]; then
  bash scripts/install-system-deps.sh
else
  echo "note: not root; system packages (sshd, redis, nginx, postgres) must already be installed" >&2
fi
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
ruff check engine tests bench
mypy
set +e
pytest "$@"
rc=$?
set -e
if [ "$rc" = 5 ]; then
  echo "pytest collected no tests: that is a failure here" >&2
  exit 1
fi
exit "$rc"

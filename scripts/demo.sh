#!/usr/bin/env bash
# The README's first command: set everything up, then run irx's main job on the embedded default inventory.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" = 0 ]; then
  bash scripts/install-system-deps.sh
fi
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
exec .venv/bin/python scripts/demo.py

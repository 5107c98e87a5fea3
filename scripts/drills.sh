#!/usr/bin/env bash
# Run the drills: every molecule scenario (or the ones named), one after the other, each with molecule's
# full sequence (destroy, create, prepare, converge, verify, destroy). Prints one line per scenario with
# its wall time, keeps each log in .irx/drills/logs/, and exits non-zero if any scenario failed.
# Ctrl-C (SIGINT to the foreground process group: molecule, Ansible and irx stop) still runs the
# scenario's destroy, which proves nothing is left behind; SIGTERM to this script alone does the same
# once the scenario in progress ends. Needs root (namespaces, tmpfs, the postgres user), scripts/setup.sh.
#
#   bash scripts/drills.sh                      # all scenarios
#   bash scripts/drills.sh db-pool-exhausted    # just these
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH="${IRX_VENV:-$PWD/.venv}/bin:$PATH" NO_COLOR=1 ANSIBLE_FORCE_COLOR=0 PY_COLORS=0
if [ "$#" -gt 0 ]; then
  scenarios=("$@")
else
  mapfile -t scenarios < <(find molecule -mindepth 2 -maxdepth 2 -name molecule.yml -printf '%h\n' | xargs -n1 basename | sort)
fi
logs=.irx/drills/logs
mkdir -p "$logs"
# Drills use fixed ports and derive their names from the scenario: one drill run per machine at a time.
exec 9>/tmp/irx-drills.lock
if ! flock -n 9; then
  echo "drills: another drill run holds /tmp/irx-drills.lock; waiting for it" >&2
  flock 9
fi
current=""
interrupted() {
  trap - INT TERM
  echo "drills: interrupted during $current; tearing it down" >&2
  molecule destroy -s "$current" >>"$logs/$current.log" 2>&1
  uid=$(printf %s "$current" | sha1sum | cut -c1-6)  # as molecule/_shared/vars.yml derives it
  if python -m irx_testenv status --uid "$uid" >&2; then echo "drills: teardown complete, nothing left behind" >&2
  else echo "drills: LEFT BEHIND (see above); python -m irx_testenv down removes it" >&2; fi
  exit 130
}
trap interrupted INT TERM
failed=()
start_all=$SECONDS
for scenario in "${scenarios[@]}"; do
  current=$scenario
  start=$SECONDS
  molecule test -s "$scenario" >"$logs/$scenario.log" 2>&1
  rc=$?
  if [ "$rc" = 0 ]; then
    printf 'drill %-36s passed  %4ds\n' "$scenario" $((SECONDS - start))
  else
    printf 'drill %-36s FAILED  %4ds  (log: %s)\n' "$scenario" $((SECONDS - start)) "$logs/$scenario.log"
    # The first lines shown are the real failure: molecule's harmless "CRITICAL '.../molecule.yml' glob
    # failed" (printed for every delegated scenario) is left out of the excerpt, not out of the log.
    grep -v -E "CRITICAL '[^']*molecule\.yml' glob failed" "$logs/$scenario.log" \
      | grep -E -A12 'fatal:|FAILED!|CRITICAL' | head -n 40 | sed 's/^/    /'
    failed+=("$scenario")
  fi
done
echo "drills: ${#scenarios[@]} run, ${#failed[@]} failed, $((SECONDS - start_all))s"
[ "${#failed[@]}" = 0 ]

#!/usr/bin/env bash
# Run the drills: every molecule scenario (or the ones named), each with molecule's full sequence (destroy,
# create, prepare, converge, verify, destroy). Prints one line per scenario with its wall time, keeps each
# log in .irx/drills/logs/, and exits non-zero if any scenario failed.
#
#   bash scripts/drills.sh                      # all scenarios, in IRX_DRILL_LANES lanes (default 1)
#   bash scripts/drills.sh --lanes 2            # two scenarios at a time
#   bash scripts/drills.sh db-pool-exhausted    # just these
#
# Each lane runs in a network namespace of its own (irxdrills-laneN, with its own loopback), so the fixed
# ports the drills use (PostgreSQL 54329, nginx 8089, Redis 6390, ...) never meet another lane's, the
# demo's, or a real service's. A lane takes the next scenario from a shared queue when it is free.
# Ctrl-C (SIGINT to the foreground process group: molecule, Ansible and irx stop) still runs each running
# scenario's destroy, which proves nothing is left behind; SIGTERM to this script alone does the same once
# the scenarios in progress end. Needs root (namespaces, tmpfs, the postgres user), scripts/setup.sh.
# IRX_DRILL_TAG=T gives the scenarios other names (uid, output .irx/drills/T-<scenario>/, lock), for a
# drill run beside another one (tests/integration/test_drills.py).
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH="${IRX_VENV:-$PWD/.venv}/bin:$PATH" NO_COLOR=1 ANSIBLE_FORCE_COLOR=0 PY_COLORS=0
lanes=${IRX_DRILL_LANES:-1}
queue=""  # set in a lane: the run's queue directory
names=()
while [ "$#" -gt 0 ]; do
  case $1 in
    --lanes) lanes=${2:-}; shift 2 || shift ;;
    --lanes=*) lanes=${1#*=}; shift ;;
    --queue) queue=$2; shift 2 ;;  # internal: this process is a lane
    -h | --help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) echo "drills: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) names+=("$1"); shift ;;
  esac
done
case $lanes in
  '' | *[!0-9]* | 0) echo "drills: --lanes wants a whole number of lanes, 1 or more (got '$lanes')" >&2; exit 2 ;;
esac
tag=${IRX_DRILL_TAG:-}
logs=.irx/drills/logs
prefix=${tag:+$tag-}  # of a tagged run's logs and molecule state
mkdir -p "$logs"

# --- a lane: take scenarios off the queue until it is empty ---------------------------------------------
if [ -n "$queue" ]; then
  current=""
  interrupted() {
    trap '' INT TERM  # the teardown below is not to be cut short by a second signal
    echo "drills: interrupted during $current; tearing it down" >&2
    molecule destroy -s "$current" >>"$logs/$prefix$current.log" 2>&1
    uid=$(printf %s "$tag$current" | sha1sum | cut -c1-6)  # as molecule/_shared/vars.yml derives it
    if python -m irx_testenv status --uid "$uid" >&2; then echo "drills: teardown complete, nothing left behind" >&2
    else echo "drills: LEFT BEHIND (see above); python -m irx_testenv down removes it" >&2; fi
    exit 130
  }
  take() {  # the next scenario, removed from the queue; fails when there is none
    (
      flock 8
      next=$(head -n 1 "$queue/todo")
      [ -n "$next" ] || exit 1
      sed -i 1d "$queue/todo"
      printf %s "$next"
    ) 8>"$queue/lock"
  }
  trap interrupted INT TERM
  while current=$(take); do
    log=$logs/$prefix$current.log
    start=$SECONDS
    MOLECULE_EPHEMERAL_DIRECTORY=$PWD/.irx/drills/molecule/$prefix$current molecule test -s "$current" >"$log" 2>&1
    rc=$?
    took=$((SECONDS - start))
    if [ "$rc" = 0 ]; then
      printf 'drill %-36s passed  %4ds\n' "$current" "$took"
      echo "passed $current" >>"$queue/done"
    else
      printf 'drill %-36s FAILED  %4ds  (log: %s)\n' "$current" "$took" "$log"
      echo "FAILED $current" >>"$queue/done"
    fi
  done
  exit 0
fi

# --- the run: the queue, the lanes, the summary ---------------------------------------------------------
if [ "${#names[@]}" -gt 0 ]; then
  scenarios=("${names[@]}")
else
  # The longest first (measured: docs/drills.md), so that no lane is left with one at the end.
  mapfile -t scenarios < <(
    { printf '%s\n' db-pool-exhausted-leak-persists slow-responses auth-failures external-api-outage
      find molecule -mindepth 2 -maxdepth 2 -name molecule.yml -printf '%h\n' | xargs -n1 basename | sort
    } | awk '!seen[$0]++' | while read -r s; do [ -f "molecule/$s/molecule.yml" ] && echo "$s"; done
  )
fi
for scenario in "${scenarios[@]}"; do
  if [ ! -f "molecule/$scenario/molecule.yml" ]; then
    echo "drills: no scenario '$scenario' (molecule/$scenario/molecule.yml)" >&2
    exit 2
  fi
done
[ "$lanes" -le "${#scenarios[@]}" ] || lanes=${#scenarios[@]}
# Drills derive their names from the scenario: one drill run per machine at a time (per tag).
exec 9>"/tmp/irx-drills${tag:+-$tag}.lock"
if ! flock -n 9; then
  echo "drills: another drill run holds /tmp/irx-drills${tag:+-$tag}.lock; waiting for it" >&2
  flock 9
fi
queue=$(mktemp -d /tmp/irx-drills-queue.XXXXXX)
printf '%s\n' "${scenarios[@]}" >"$queue/todo"
: >"$queue/done"
start_all=$SECONDS
netns=()
pids=()
stop_lanes() { kill -TERM "${pids[@]}" 2>/dev/null; }
trap stop_lanes INT TERM
for lane in $(seq 1 "$lanes"); do
  ns=irxdrills${tag:+-$tag}-lane$lane
  ip netns del "$ns" 2>/dev/null  # a run killed with -9 left it
  ip netns add "$ns" && ip -n "$ns" link set lo up || { echo "drills: cannot make network namespace $ns" >&2; exit 1; }
  netns+=("$ns")
  # Only the network namespace: mounts (tmpfs volumes, the hosts' namespaces) stay the machine's own.
  nsenter --net="/run/netns/$ns" bash "$0" --queue "$queue" &
  pids+=("$!")
done
for pid in "${pids[@]}"; do
  while kill -0 "$pid" 2>/dev/null; do wait "$pid"; done  # a trapped signal ends a wait early
  wait "$pid"
  [ "$?" = 130 ] && interrupted=1
done
for ns in "${netns[@]}"; do ip netns del "$ns"; done
ran=$(grep -c . "$queue/done")
mapfile -t failed < <(sed -n 's/^FAILED //p' "$queue/done")
rm -rf "$queue"
for scenario in "${failed[@]}"; do
  # The first lines shown are the real failure: molecule's harmless "CRITICAL '.../molecule.yml' glob
  # failed" (printed for every delegated scenario) is left out of the excerpt, not out of the log.
  echo "drill $scenario failed:"
  grep -v -E "CRITICAL '[^']*molecule\.yml' glob failed" "$logs/$prefix$scenario.log" \
    | grep -E -A12 'fatal:|FAILED!|CRITICAL' | head -n 40 | sed 's/^/    /'
done
echo "drills: $ran run, ${#failed[@]} failed, $((SECONDS - start_all))s, $lanes lane(s)"
[ -z "${interrupted:-}" ] || exit 130
[ "${#failed[@]}" = 0 ] && [ "$ran" = "${#scenarios[@]}" ]

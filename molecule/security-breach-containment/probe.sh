#!/bin/bash
# What reaches what: the site through nginx, app1's application port from this machine, from app2 and from
# app1's own loopback, SSH (port 22) between the hosts both ways, a real SSH login from this machine (the
# control node) to each host, and which network namespaces hold an nftables table irx_isolation (this
# machine's own namespace is "root"). One line each; "open" = a TCP connection was made within 3 s.
set -uo pipefail
tcp() { if timeout 3 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null; then echo open; else echo closed; fi; }
in_ns() { local ns=$1; shift; ip netns exec "irxt-$DRILL_UID-$ns" "$@"; }
echo "site $(curl -s -o /dev/null -w '%{http_code}' --max-time 3 "$SITE/")"
echo "control->app1:$HOST_PORT $(tcp "$APP1" "$HOST_PORT")"
echo "app2->app1:$HOST_PORT $(in_ns app2 bash -c "$(declare -f tcp); tcp $APP1 $HOST_PORT")"
echo "app2->app1:22 $(in_ns app2 bash -c "$(declare -f tcp); tcp $APP1 22")"
echo "app1->app2:22 $(in_ns app1 bash -c "$(declare -f tcp); tcp $APP2 22")"
echo "app1->lo:$HOST_PORT $(in_ns app1 bash -c "$(declare -f tcp); tcp 127.0.0.1 $HOST_PORT")"
for h in app1 app2; do
  addr=APP${h#app}
  name=$(ssh -F /dev/null -i "$SSH_DIR/id_ed25519" -o IdentitiesOnly=yes -o UserKnownHostsFile="$SSH_DIR/known_hosts" \
    -o StrictHostKeyChecking=yes -o BatchMode=yes -o ConnectTimeout=5 -o ControlMaster=no "root@${!addr}" hostname 2>&1)
  echo "ssh control->$h ${name:-no answer}"
done
tables=()
nft list tables 2>/dev/null | grep -qw irx_isolation && tables+=(root)
for h in app1 app2; do in_ns "$h" nft list tables 2>/dev/null | grep -qw irx_isolation && tables+=("$h"); done
echo "isolation tables: ${tables[*]:-none}"

#!/usr/bin/env bash
# Install the Debian packages irx's integration tests and drills need, and nothing else.
#
# Idempotent and non-interactive: when every package is already present it exits in well under a
# second without touching apt. Services are never left running: a policy-rc.d forbids apt from
# starting them, and anything that slipped through is stopped and disabled afterwards, because the
# tests start private instances on their own ports and must not meet a system instance.
#
# Usage: scripts/install-system-deps.sh        (as root, or with passwordless sudo)
set -euo pipefail

# Packages keyed by a file that proves they are installed (cheaper and more exact than dpkg queries).
declare -A WANT=(
  [openssh-server]=/usr/sbin/sshd
  [redis-server]=/usr/bin/redis-server
  [nginx-light]=/usr/sbin/nginx
  [iproute2]=/usr/sbin/ip
  [chromium]=/usr/bin/chromium
  [psmisc]=/usr/bin/fuser
  [openssh-client]=/usr/bin/ssh-keygen
  [util-linux]=/usr/bin/unshare
  [python3]=/usr/bin/python3
  [sudo]=/usr/bin/sudo  # least-privilege tests: a non-root SSH user escalating with sudo (Ansible become)
  # security-breach-containment isolates a host with nftables; its drill applies the rules inside a
  # namespace host only (molecule/security-breach-containment/).
  [nftables]=/usr/sbin/nft
  # The alert loop (tests/integration/test_alert_loop.py): exporter -> Prometheus rule -> Alertmanager webhook.
  [prometheus]=/usr/bin/prometheus
  [prometheus-alertmanager]=/usr/bin/prometheus-alertmanager
  [prometheus-postgres-exporter]=/usr/bin/prometheus-postgres-exporter
  # The editor check (tests/integration/test_editor_schema.py): node and npm for yaml-language-server (below).
  [nodejs]=/usr/bin/node
  [npm]=/usr/bin/npm
)
# yaml-language-server, the language server editors run on playbooks, at the version the test last passed with.
YAML_LS_VERSION=2.0.0
install_yaml_ls() {
  local bin package
  if bin=$(command -v yaml-language-server) && bin=$(readlink -f "$bin"); then
    package=$(dirname "$(dirname "$bin")")/package.json  # <prefix>/lib/node_modules/yaml-language-server/bin/...
    if grep -q "\"version\": *\"$YAML_LS_VERSION\"" "$package" 2>/dev/null; then
      return
    fi
  fi
  echo "install-system-deps: installing yaml-language-server@$YAML_LS_VERSION (npm)"
  SUDO_NPM=()
  if ((EUID != 0)); then SUDO_NPM=(sudo -n); fi
  "${SUDO_NPM[@]}" npm install --global --no-fund --no-audit "yaml-language-server@$YAML_LS_VERSION" >/dev/null
}
# Any PostgreSQL major will do: the test environment discovers /usr/lib/postgresql/*/bin.
if ! compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then
  WANT[postgresql]=/usr/lib/postgresql/NONE/bin/initdb
fi

missing=()
for pkg in "${!WANT[@]}"; do
  [[ -e "${WANT[$pkg]}" ]] || missing+=("$pkg")
done

if ((${#missing[@]} == 0)); then
  install_yaml_ls
  echo "install-system-deps: all present"
  exit 0
fi

SUDO=()
if ((EUID != 0)); then
  SUDO=(sudo -n)
fi

echo "install-system-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive

# policy-rc.d exit 101 = "action forbidden": invoke-rc.d then skips start/restart in maintainer
# scripts. Remove it again only if we created it, so a pre-existing site policy survives.
POLICY=/usr/sbin/policy-rc.d
created_policy=0
if [[ ! -e $POLICY ]]; then
  printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee "$POLICY" >/dev/null
  "${SUDO[@]}" chmod 755 "$POLICY"
  created_policy=1
fi
cleanup() { if ((created_policy)); then "${SUDO[@]}" rm -f "$POLICY"; fi; }
trap cleanup EXIT

"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends \
  -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${missing[@]}"

# Belt and braces: where systemd is PID 1 the policy file is honoured too, but stop and disable
# anyway so a later boot does not bring system instances up on the default ports.
for svc in ssh redis-server nginx postgresql prometheus prometheus-alertmanager prometheus-postgres-exporter; do
  if command -v systemctl >/dev/null && [[ -d /run/systemd/system ]]; then
    "${SUDO[@]}" systemctl disable --now "$svc" >/dev/null 2>&1 || true
  elif [[ -x /etc/init.d/$svc ]]; then
    "${SUDO[@]}" /etc/init.d/"$svc" stop >/dev/null 2>&1 || true
  fi
done

for pkg in "${!WANT[@]}"; do
  if [[ ! -e "${WANT[$pkg]}" ]] && [[ $pkg != postgresql ]]; then
    echo "install-system-deps: $pkg installed but ${WANT[$pkg]} is missing" >&2
    exit 1
  fi
done
if ! compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then
  echo "install-system-deps: postgresql installed but no initdb found" >&2
  exit 1
fi
install_yaml_ls
echo "install-system-deps: done"

#!/bin/bash
# The breach, as real HTTP requests through nginx from their own source addresses ($USERS, $ATTACKER).
# Writes each one's session token to $OUT/<name>.sid for verify.
set -euo pipefail
req() { curl -s -o /dev/null -w '%{http_code}\n' --max-time 5 --path-as-is --interface "$@"; }
login() { curl -s --max-time 5 --interface "$1" -X POST "$SITE/login?user=$2" | sed -n 's/.*"sid": "\([0-9a-f]*\)".*/\1/p'; }
i=0
for ip in $USERS; do
  i=$((i + 1)); user=$(echo alice bob carol | cut -d' ' -f$i)
  sid=$(login "$ip" "$user"); echo "$sid" > "$OUT/$user.sid"
  req "$ip" -b "sid=$sid" "$SITE/account"
  req "$ip" "$SITE/" ; req "$ip" "$SITE/static/app.css"
done
req "${USERS%% *}" "$SITE/.env"  # one user's odd request: under suspicious_min_hits
for _ in 1 2; do
  for path in '/static/../../etc/passwd' '/search?q=1%20union%20select%20password%20from%20users' '/.env' \
      '/.git/config' '/wp-admin/' '/cgi-bin/status?cmd=id'; do
    req "$ATTACKER" "$SITE$path"
  done
done
sid=$(login "$ATTACKER" admin); echo "$sid" > "$OUT/attacker.sid"
for table in users users payments api_keys; do req "$ATTACKER" -b "sid=$sid" "$SITE/export?table=$table"; done

# What a real TLS client sees on $TLS_CONNECT for SNI $TLS_NAME: openssl s_client verifies the chain against
# the drill CA ($TLS_CA) and the host name, or fails. Prints "days left|SHA-256 fingerprint|not after".
set -euo pipefail
pem=$(echo | timeout 10 openssl s_client -connect "$TLS_CONNECT" -servername "$TLS_NAME" -CAfile "$TLS_CA" \
  -verify_return_error -verify_hostname "$TLS_NAME" 2>/dev/null | openssl x509)
end=$(printf '%s\n' "$pem" | openssl x509 -noout -enddate | cut -d= -f2-)
fp=$(printf '%s\n' "$pem" | openssl x509 -noout -fingerprint -sha256 | cut -d= -f2-)
echo "$(( ($(date -d "$end" +%s) - $(date +%s)) / 86400 ))|$fp|$end"

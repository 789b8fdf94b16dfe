#!/usr/bin/env bash
# network.block_with = "nftables" end to end (issue 27), run inside `unshare --net` on
# the segment of netns-segment.sh (a network namespace has its own nftables ruleset):
# an outside address blocked by the lockout lands in the daemon's set and its packets
# are dropped in the kernel (a new connection never completes: curl's exit 28, not the
# daemon's close at accept); a LAN computer's block stays the daemon's; at stop the
# table goes.
# Prints one line per check.
# Usage: netns-nft.sh PBX_AUTHD_BINARY WORKDIR
set -euo pipefail
bin=$1 dir=$2
# shellcheck source=netns-segment.sh
source "$(dirname "$0")/netns-segment.sh" 1

cat >"$dir/config.toml" <<'EOF'
[network]
block_with = "nftables"
EOF
start_box
echo "table $(nft list tables | grep -c 'inet pbx_authd') rule $(nft list chain inet pbx_authd input | grep -c 'dport { 8080, 8443 } drop')"

fail5() { # SOURCE: five wrong passwords from it
  local _
  for _ in 1 2 3 4 5; do
    curl -s -o /dev/null --interface "$1" -H 'content-type: application/json' \
      -d '{"username":"admin","password":"not the passphrase"}' \
      http://10.99.0.1:8080/api/v1/login || true
  done
}
fail5 10.99.1.1
fail5 10.99.0.7
sleep 0.5
set4=$(nft list set inet pbx_authd blocked4)
grep -q '10.99.1.1 timeout' <<<"$set4" && echo "outsider in the set" || echo "outsider not in the set: $set4"
grep -q '10.99.0.7' <<<"$set4" && echo "lan in the set" || echo "lan not in the set"
code=0
curl -s -o /dev/null --connect-timeout 2 --interface 10.99.1.1 http://10.99.0.1:8080/healthz || code=$?
echo "outsider connect exit $code"
echo "lan healthz $(curl -s -o /dev/null -w '%{http_code}' --interface 10.99.0.7 http://10.99.0.1:8080/healthz)"
kill -TERM "$pid"
wait "$pid" || true
echo "after stop table $(nft list tables | grep -c 'inet pbx_authd' || true)"

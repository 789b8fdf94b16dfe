#!/usr/bin/env bash
# The local-network rule end to end, run inside `unshare --net` on the segment of
# netns-segment.sh: 10.99.0.7 is on the box's segment, 10.99.1.5 elsewhere.
# Prints one line per check: "<who> <what> <status> <detail>".
# Usage: netns-localnet.sh PBX_AUTHD_BINARY WORKDIR
set -euo pipefail
bin=$1 dir=$2
# shellcheck source=netns-segment.sh
source "$(dirname "$0")/netns-segment.sh" 5

pid=
start() {
  "$bin" --dev --state-dir "$dir/state" --http 0.0.0.0:8080 --https 127.0.0.1:8443 "$@" \
    >"$dir/out" 2>>"$dir/err" &
  pid=$!
  for _ in $(seq 1 200); do
    curl -fsS -o /dev/null http://127.0.0.1:8080/healthz 2>/dev/null && return 0
    sleep 0.05
  done
  echo "daemon did not start" >&2; cat "$dir/err" >&2; exit 1
}
stop() { kill -TERM "$pid"; wait "$pid" || true; }
trap '[[ -n $pid ]] && kill -9 $pid 2>/dev/null || true' EXIT

post() { # SOURCE PATH JSON → "<status> <error code>"
  local body code
  body=$(mktemp)
  code=$(curl -s -o "$body" -w '%{http_code}' --interface "$1" -H 'content-type: application/json' \
    -d "$3" "http://10.99.0.1:8080/api/v1/$2")
  echo "$code $(grep -o '"error":"[a-z_]*"' "$body" | cut -d'"' -f4)"
}
api() { # SOURCE → the reset link's answer
  post "$1" reset '{"token":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","new_password":"another calm evening"}'
}
code() { # SOURCE → a recovery code's answer
  post "$1" recover-with-code '{"username":"admin","code":"K7QF-2M9D-XR4T-8WPA","new_password":"another calm evening"}'
}

start
code=$(curl -s -o "$dir/page" -w '%{http_code}' --interface 10.99.1.5 'http://10.99.0.1:8080/reset?token=x')
grep -q '10.99.0.0/24' "$dir/page" && named=names-subnet || named=no-subnet
echo "outsider page $code $named"
echo "outsider api $(api 10.99.1.5)"
echo "same-segment api $(api 10.99.0.7)"
echo "loopback api $(api 127.0.0.1)"
echo "outsider code $(code 10.99.1.5)"
echo "same-segment code $(code 10.99.0.7)"
stop

printf '[server]\ncloud = true\n' >"$dir/cloud.toml"
start --config "$dir/cloud.toml"
echo "cloud outsider api $(api 10.99.1.5)"
stop

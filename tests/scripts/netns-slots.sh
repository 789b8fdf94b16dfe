#!/usr/bin/env bash
# Connection slots by trust end to end (issue 27), run inside `unshare --net` on the
# segment of netns-segment.sh: a pool of 8 connections, 4 per address, so 2 knock
# slots past it (a quarter of the pool). Two outside addresses hold all 8 (idle, as a
# slow spray does). Then: a new outside browser is answered 503 `busy` and closed (a
# knock slot, no known browser); the owner's known browser from outside (its device
# cookie, or its session) is served on a knock slot; the LAN computer is served from
# the own segment's slots. With the knock slots held too, an outsider is closed at
# accept and the LAN still gets in.
# Prints "<who> <HTTP status> [error code]" (curl's 000: closed without an answer).
# Usage: netns-slots.sh PBX_AUTHD_BINARY WORKDIR
set -euo pipefail
bin=$1 dir=$2
# shellcheck source=netns-segment.sh
source "$(dirname "$0")/netns-segment.sh" 20

cat >"$dir/config.toml" <<'EOF'
[server]
max_connections = 8
max_connections_per_address = 4
EOF
start_box

get() { # SOURCE [COOKIE_JAR] → the status of GET /healthz
  curl -s -o /dev/null -w '%{http_code}' --max-time 5 --interface "$1" -b "${2:-/dev/null}" \
    http://10.99.0.1:8080/healthz || true
}

# The owner replaces the label password from the LAN, then signs in from outside: that
# browser keeps a device cookie (and a session).
jar=$dir/owner.jar
owner_ready "$jar"
curl -s -o /dev/null -c "$jar" -b "$jar" --interface 10.99.1.20 -H 'content-type: application/json' \
  -d "{\"username\":\"admin\",\"password\":\"$pw\"}" http://10.99.0.1:8080/api/v1/login
grep -q pbx_device "$jar" && echo "owner-cookie kept"
# The device cookie alone, as a browser whose session has ended would send it.
grep -v pbx_session "$jar" >"$dir/device-only.jar"
grep -q pbx_session "$dir/device-only.jar" || echo "device-only jar"

echo "before $(get 10.99.1.3)"
hold() { # FILE ADDRESS... → holds 4 idle connections from each address, up to 30 s
  python3 - "$@" <<'PY' &
import socket, sys, time
held = [socket.create_connection(("10.99.0.1", 8080), source_address=(a, 0))
        for a in sys.argv[2:] for _ in range(4)]
open(sys.argv[1], "w").close()
time.sleep(30)
PY
}
# Eight idle connections (no request: each waits out the header timeout).
hold "$dir/held" 10.99.1.1 10.99.1.2
holder=$!
while [[ ! -e $dir/held ]]; do sleep 0.05; done
sleep 0.3
stranger=$(curl -s -o "$dir/stranger" -w '%{http_code}' --max-time 5 --interface 10.99.1.3 \
  http://10.99.0.1:8080/api/v1/session || true)
echo "outsider-when-full $stranger $(grep -o '"error":"[a-z_]*"' "$dir/stranger" | cut -d'"' -f4)"
echo "known-device-when-full $(get 10.99.1.20 "$dir/device-only.jar")"
echo "known-session-when-full $(get 10.99.1.19 "$jar")"
echo "lan-when-full $(get 10.99.0.7)"
# An outsider's idle connections take the two knock slots (each for up to 2 s, then
# closed; the other two are closed at accept).
hold "$dir/knock" 10.99.1.4
knockers=$!
while [[ ! -e $dir/knock ]]; do sleep 0.05; done
sleep 0.3
echo "known-when-knock-full $(get 10.99.1.20 "$dir/device-only.jar")"
echo "lan-when-knock-full $(get 10.99.0.7)"
# The idle knockers are closed after 2 s: the known browser gets in again.
sleep 2.5
echo "known-after-knockers-closed $(get 10.99.1.20 "$dir/device-only.jar")"
kill "$holder" "$knockers" 2>/dev/null || true
wait "$holder" "$knockers" 2>/dev/null || true
kill -TERM "$pid"
wait "$pid" || true

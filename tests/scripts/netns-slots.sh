#!/usr/bin/env bash
# Connection slots by trust end to end (issue 27), run inside `unshare --net` on the
# segment of netns-segment.sh: a pool of 8 connections, 4 per address; two outside
# addresses hold all 8 (idle, as a slow spray does); a third outside address is closed
# at accept, the LAN computer is answered (the own segment's slots past the pool).
# Prints "<who> <HTTP status>" (curl's 000: closed without an answer).
# Usage: netns-slots.sh PBX_AUTHD_BINARY WORKDIR
set -euo pipefail
bin=$1 dir=$2
# shellcheck source=netns-segment.sh
source "$(dirname "$0")/netns-segment.sh" 3

cat >"$dir/config.toml" <<'EOF'
[server]
max_connections = 8
max_connections_per_address = 4
EOF
start_box

get() { # SOURCE → the status of GET /healthz
  curl -s -o /dev/null -w '%{http_code}' --max-time 5 --interface "$1" \
    http://10.99.0.1:8080/healthz || true
}

echo "before $(get 10.99.1.3)"
# Eight idle connections (no request: each waits out the header timeout).
python3 - "$dir/held" <<'PY' &
import socket, sys, time
held = [socket.create_connection(("10.99.0.1", 8080), source_address=(f"10.99.1.{a}", 0))
        for a in (1, 2) for _ in range(4)]
open(sys.argv[1], "w").close()
time.sleep(8)
PY
holder=$!
while [[ ! -e $dir/held ]]; do sleep 0.05; done
sleep 0.3
echo "outsider-when-full $(get 10.99.1.3)"
echo "lan-when-full $(get 10.99.0.7)"
kill "$holder" 2>/dev/null || true
wait "$holder" 2>/dev/null || true
kill -TERM "$pid"
wait "$pid" || true

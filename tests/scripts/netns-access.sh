#!/usr/bin/env bash
# Who may reach the admin (SPEC §10) with real non-loopback peers, inside `unshare --net`
# on the segment of netns-segment.sh: 10.99.0.7 is on the box's segment, 10.99.1.5
# elsewhere. HTTPS-only (308 but from loopback), `__Host-` cookies over HTTPS, and the
# admin networks' `local` entry. Prints one line per check.
# Usage: netns-access.sh PBX_AUTHD_BINARY WORKDIR
set -euo pipefail
bin=$1 dir=$2
# shellcheck source=netns-segment.sh
source "$(dirname "$0")/netns-segment.sh" 5

printf '[server]\nhttps_only = true\n[access]\nadmin_networks = ["local"]\n' >"$dir/config.toml"
"$bin" --dev --state-dir "$dir/state" --http 0.0.0.0:8080 --https 0.0.0.0:8443 \
  --config "$dir/config.toml" >"$dir/out" 2>>"$dir/err" &
pid=$!
trap 'kill -9 $pid 2>/dev/null || true' EXIT
for _ in $(seq 1 200); do
  curl -fsS -o /dev/null http://127.0.0.1:8080/healthz 2>/dev/null && break
  sleep 0.05
done
label=$(sed -n 's/^initial admin password: //p' "$dir/out")
[[ -n $label ]] || { echo "no label password" >&2; cat "$dir/err" >&2; exit 1; }

plain() { # SOURCE METHOD PATH → "<status> <location>"
  curl -s -o /dev/null -w '%{http_code} %{redirect_url}' --interface "$1" -X "$2" \
    -H 'content-type: application/json' ${4:+-d "$4"} "http://10.99.0.1:8080$3"
}
echo "outsider page $(plain 10.99.1.5 GET '/login?next=x')"
echo "outsider healthz $(plain 10.99.1.5 GET /healthz)"
echo "outsider login $(plain 10.99.1.5 POST /api/v1/login '{}')"
echo "segment page $(plain 10.99.0.7 GET /login)"
code=$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:8080/login)
echo "loopback page $code"

signin() { # SOURCE → "<status> <error> <cookie name and flags>"
  local body headers
  body=$(mktemp) headers=$(mktemp)
  code=$(curl -sk -o "$body" -D "$headers" -w '%{http_code}' --interface "$1" \
    -H 'content-type: application/json' \
    -d "{\"username\":\"admin\",\"password\":\"$label\"}" https://10.99.0.1:8443/api/v1/login)
  local err cookie
  err=$(grep -o '"error":"[a-z_]*"' "$body" | cut -d'"' -f4 || true)
  cookie=$(grep -i '^set-cookie: __Host-pbx_session=' "$headers" | grep -o 'Path=/\|Secure\|HttpOnly' | tr '\n' ' ' || true)
  echo "$code ${err:--} ${cookie:--}" | sed 's/ *$//'
}
echo "outsider https sign-in $(signin 10.99.1.5)"
echo "segment https sign-in $(signin 10.99.0.7)"

#!/usr/bin/env bash
# Smoke-runs one release binary under qemu-user: size budget, glibc floor (armv7),
# `--dev` start on loopback, /healthz over HTTP and HTTPS, a login with the printed
# initial password (argon2 works on that CPU), then a clean SIGTERM stop.
# Usage: qemu-smoke.sh TARGET BINARY MAX_BYTES
set -euo pipefail
target=$1 bin=$2 max=$3

size=$(stat -c %s "$bin")
if (( size > max )); then
  echo "FAIL $target: $bin is $size bytes, budget $max" >&2
  exit 1
fi

case $target in
  x86_64-*)  qemu=(qemu-x86_64-static) ;;
  aarch64-*) qemu=(qemu-aarch64-static) ;;
  armv7-*-musleabihf)
             qemu=(qemu-arm-static)
             # Static: no interpreter, no shared library, whatever libc the box has.
             if readelf -l "$bin" | grep -q INTERP || readelf -d "$bin" 2>/dev/null | grep -q NEEDED; then
               echo "FAIL $target: not a static binary" >&2; exit 1
             fi ;;
  armv7-*)   qemu=(qemu-arm-static -L /usr/arm-linux-gnueabihf)
             newest=$(readelf -V --wide "$bin" | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -n1)
             if [[ "$(printf '%s\n' "$newest" GLIBC_2.17 | sort -V | tail -n1)" != GLIBC_2.17 ]]; then
               echo "FAIL $target: needs $newest, floor is GLIBC_2.17" >&2; exit 1
             fi ;;
  *) echo "unknown target $target" >&2; exit 1 ;;
esac

state=$(mktemp -d)
pid=
cleanup() { [[ -n $pid ]] && kill -9 "$pid" 2>/dev/null; rm -rf "$state"; }
trap cleanup EXIT

"${qemu[@]}" "$bin" --dev --state-dir "$state/dev" --http 127.0.0.1:0 --https 127.0.0.1:0 \
  >"$state/out" 2>"$state/err" &
pid=$!
for _ in $(seq 1 600); do
  grep -q '^listening: https://' "$state/out" 2>/dev/null && break
  kill -0 "$pid" 2>/dev/null || { echo "FAIL $target: exited early" >&2; cat "$state/err" >&2; exit 1; }
  sleep 0.2
done
http=$(sed -n 's#^listening: http://\(.*\)/$#\1#p' "$state/out")
https=$(sed -n 's#^listening: https://\(.*\)/$#\1#p' "$state/out")
password=$(sed -n 's/^initial admin password: //p' "$state/out")
[[ -n $http && -n $https && -n $password ]] || { echo "FAIL $target: no listeners" >&2; cat "$state/out" "$state/err" >&2; exit 1; }

[[ "$(curl -fsS "http://$http/healthz")" == ok ]]
[[ "$(curl -fsS --cacert "$state/dev/tls/cert.pem" "https://localhost:${https##*:}/healthz" --resolve "localhost:${https##*:}:127.0.0.1")" == ok ]]
code=$(curl -s -o /dev/null -w '%{http_code}' -H 'content-type: application/json' \
  -d "{\"username\":\"admin\",\"password\":\"$password\"}" "http://$http/api/v1/login")
[[ $code == 200 ]] || { echo "FAIL $target: login gave $code" >&2; exit 1; }

kill -TERM "$pid"
status=0
wait "$pid" || status=$?
pid=
[[ $status == 0 ]] || { echo "FAIL $target: exit status $status" >&2; exit 1; }
printf 'ok %-34s %8d bytes (%.2f MiB) healthz http+https, login, SIGTERM\n' "$target" "$size" "$(awk -v s="$size" 'BEGIN{print s/1048576}')"

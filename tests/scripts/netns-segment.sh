# Sourced by the netns-*.sh tests, inside `unshare --net` (a private network namespace
# made for the test: nothing here can reach any other host):
#   v0 (veth) 10.99.0.1/24  the box's own LAN segment, seen by the daemon via getifaddrs
#   lo        10.99.0.7/32  a computer on that segment
#   lo        10.99.1.N/32  computers elsewhere (routed in, not on the segment), N = 1..$1
# The sourcing script sets $bin (the daemon binary) and $dir (its work directory).
# shellcheck shell=bash disable=SC2154
ip link set lo up
ip link add v0 type veth peer name v1
ip addr add 10.99.0.1/24 dev v0
ip link set v0 up
ip link set v1 up
ip addr add 10.99.0.7/32 dev lo
for n in $(seq 1 "$1"); do ip addr add "10.99.1.$n/32" dev lo; done

# start_box: the daemon ($bin, state under $dir) with $dir/config.toml on the segment
# (port 8080); sets $pid and $label (the initial admin password). Stopped at exit.
start_box() {
  "$bin" --dev --state-dir "$dir/state" --http 0.0.0.0:8080 --https 127.0.0.1:8443 \
    --config "$dir/config.toml" >"$dir/out" 2>>"$dir/err" &
  pid=$!
  trap 'touch "$dir/stop"; kill -9 $pid 2>/dev/null || true' EXIT
  local up='' _
  for _ in $(seq 1 200); do
    curl -fsS -o /dev/null http://127.0.0.1:8080/healthz 2>/dev/null && { up=1; break; }
    sleep 0.05
  done
  [[ -n $up ]] || { echo "daemon did not start" >&2; cat "$dir/err" >&2; exit 1; }
  label=$(sed -n 's/^initial admin password: //p' "$dir/out")
  [[ -n $label ]] || { echo "no label password" >&2; cat "$dir/err" >&2; exit 1; }
}

# owner_ready JAR: the owner replaces the label password with $pw from the LAN
# computer; JAR then holds that browser's cookies.
pw="amber tram over the bridge"
owner_ready() {
  curl -s -o "$dir/first" -c "$1" --interface 10.99.0.7 -H 'content-type: application/json' \
    -d "{\"username\":\"admin\",\"password\":\"$label\"}" http://10.99.0.1:8080/api/v1/login
  local csrf
  csrf=$(grep -o '"csrf_token":"[^"]*"' "$dir/first" | cut -d'"' -f4)
  curl -s -o /dev/null -b "$1" -H "x-csrf-token: $csrf" -H 'content-type: application/json' \
    --interface 10.99.0.7 -d "{\"current_password\":\"$label\",\"new_password\":\"$pw\"}" \
    http://10.99.0.1:8080/api/v1/password
}

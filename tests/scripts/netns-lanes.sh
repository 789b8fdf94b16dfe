#!/usr/bin/env bash
# The password checks' lanes by trust end to end (issue 27), run inside `unshare --net`
# on the segment of netns-segment.sh: while sixteen outside addresses keep the hashing
# queue full with guesses at random usernames, the owner's known browser (outside, with
# its device cookie) and a computer on the LAN sign in, each five times.
# Prints "<who> <status>x<count> ..." per party and the flood's answers.
# Usage: netns-lanes.sh PBX_AUTHD_BINARY WORKDIR
set -euo pipefail
bin=$1 dir=$2
# shellcheck source=netns-segment.sh
source "$(dirname "$0")/netns-segment.sh" 20

# One hash at a time and two places in the queue: sixteen guessers fill it at once.
cat >"$dir/config.toml" <<'EOF'
[policy]
hash_concurrency = 1
hash_queue = 2
lockout_failures = 100
account_slowdown_step_ms = 0
EOF
start_box

login() { # SOURCE USERNAME PASSWORD [COOKIE_JAR] → the status
  curl -s -o /dev/null -w '%{http_code}' --max-time 10 --interface "$1" -b "${4:-/dev/null}" \
    -c "${4:-/dev/null}" -H 'content-type: application/json' \
    -d "{\"username\":\"$2\",\"password\":\"$3\"}" http://10.99.0.1:8080/api/v1/login || true
}

# The owner replaces the label password from the LAN, then signs in from outside once:
# that browser keeps a device cookie.
jar=$dir/owner.jar
owner_ready "$jar"
echo "owner-outside $(login 10.99.1.20 admin "$pw" "$jar")"

# The flood: sixteen addresses, each guessing as fast as it is answered.
jobs=()
for a in $(seq 1 16); do
  (while [[ ! -e $dir/stop ]]; do
     login "10.99.1.$a" "user$RANDOM" "guess $RANDOM"; echo
   done >"$dir/flood.$a") &
  jobs+=($!)
done
sleep 2
known=() lan=()
for _ in 1 2 3 4 5; do
  known+=("$(login 10.99.1.20 admin "$pw" "$jar")")
  lan+=("$(login 10.99.0.7 admin "$pw")")
done
touch "$dir/stop"
wait "${jobs[@]}"
count() { sort | uniq -c | awk '{printf "%sx%s ", $1, $2}'; }
echo "known-during-flood $(printf '%s\n' "${known[@]}" | count)"
echo "lan-during-flood $(printf '%s\n' "${lan[@]}" | count)"
busy=$(cat "$dir"/flood.* | grep -c '^503$' || true)
[[ $busy -gt 0 ]] && echo "flood got 503" || echo "flood never got 503"
echo "flood answers: $(cat "$dir"/flood.* | count)"
kill -TERM $pid
wait $pid || true

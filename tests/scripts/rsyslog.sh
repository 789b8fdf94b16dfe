#!/usr/bin/env bash
# A real syslog daemon for the tests: Debian's rsyslogd on loopback, UDP and TCP on the
# given ports, every line written raw to OUT. Runs in the foreground until killed.
# Usage: rsyslog.sh WORKDIR UDP_PORT TCP_PORT
set -euo pipefail
dir=$1 udp=$2 tcp=$3
cat >"$dir/rsyslog.conf" <<CONF
global(workDirectory="$dir")
module(load="imudp")
input(type="imudp" address="127.0.0.1" port="$udp")
module(load="imtcp")
input(type="imtcp" address="127.0.0.1" port="$tcp")
template(name="raw" type="string" string="%rawmsg%\n")
*.* action(type="omfile" file="$dir/out.log" template="raw")
CONF
exec /usr/sbin/rsyslogd -n -iNONE -f "$dir/rsyslog.conf"

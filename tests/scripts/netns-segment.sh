# Sourced by the netns-*.sh tests, inside `unshare --net` (a private network namespace
# made for the test: nothing here can reach any other host):
#   v0 (veth) 10.99.0.1/24  the box's own LAN segment, seen by the daemon via getifaddrs
#   lo        10.99.0.7/32  a computer on that segment
#   lo        10.99.1.N/32  computers elsewhere (routed in, not on the segment), N = 1..$1
# shellcheck shell=bash
ip link set lo up
ip link add v0 type veth peer name v1
ip addr add 10.99.0.1/24 dev v0
ip link set v0 up
ip link set v1 up
ip addr add 10.99.0.7/32 dev lo
for n in $(seq 1 "$1"); do ip addr add "10.99.1.$n/32" dev lo; done

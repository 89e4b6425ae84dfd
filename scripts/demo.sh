#!/usr/bin/env bash
# The main job, end to end: a 3-node Flannel vxlan lab, shown, proven with real
# pings, and torn down again (also when something fails on the way).
set -euo pipefail
cd "$(dirname "$0")/.."
name="demo-$$"
netctl() { node bin/run.js "$@"; }
trap 'netctl lab down --name "$name" >/dev/null 2>&1 || true' EXIT
echo "\$ netctl lab up --name $name --nodes 3 --backend flannel-vxlan"
netctl lab up --name "$name" --nodes 3 --backend flannel-vxlan
echo
echo "\$ netctl lab status --name $name --all-pairs"
netctl lab status --name "$name" --all-pairs
echo
echo "\$ ip netns exec $name.node1 ip route    # what flanneld programs: onlink routes via each peer's VTEP"
ip netns exec "$name.node1" ip route
echo
echo "\$ ip netns exec $name.node1 bridge fdb show dev flannel.1"
ip netns exec "$name.node1" bridge fdb show dev flannel.1
echo
echo "\$ netctl lab down --name $name"
netctl lab down --name "$name"
trap - EXIT

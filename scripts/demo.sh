#!/usr/bin/env bash
# The main job, end to end: a 3-node Flannel vxlan lab, shown, proven with real
# pings, and torn down again (also when something fails on the way).
set -euo pipefail
# Labs need root: as root (a container) run directly, otherwise through sudo. PATH is
# passed on so that the Node npm put first on it (node_modules/.bin) is the one used.
if [ "$(id -u)" -ne 0 ]; then
  exec sudo -- env "PATH=$PATH" ${NETCTL_DEMO_NAME:+"NETCTL_DEMO_NAME=$NETCTL_DEMO_NAME"} bash "$0" "$@"
fi
cd "$(dirname "$0")/.."
name="${NETCTL_DEMO_NAME:-demo-$$}"   # a lab name of your own: NETCTL_DEMO_NAME=...
netctl() { node bin/run.js "$@"; }
trap 'netctl lab down --lab "$name" >/dev/null 2>&1 || true' EXIT
echo "\$ netctl lab up --lab $name --nodes 3 --backend flannel-vxlan"
netctl lab up --lab "$name" --nodes 3 --backend flannel-vxlan
echo
echo "\$ netctl lab status --lab $name --all-pairs"
netctl lab status --lab "$name" --all-pairs
echo
# Trace exits 0 when delivered both ways and 1 with a diagnosis: both are answers here, not failures.
trace() {
  echo "\$ netctl trace $*"
  local rc=0
  netctl trace "$@" || rc=$?
  echo "(exit $rc)"
}
trace pod-node1-1 pod-node3-2 --lab "$name"
echo
# node3's VTEP MAC and address, and pod-node3-2's IP, from the lab's inventory (flannel's backend-data annotation)
read -r vtep3 ip3 podip < <(netctl lab status --lab "$name" --json | node --input-type=module -e '
  import {readFileSync} from "node:fs"
  import {parse} from "yaml"
  let text = ""
  for await (const chunk of process.stdin) text += chunk
  const inv = parse(readFileSync(JSON.parse(text).inventory, "utf8"))
  const node3 = inv.nodes.find((n) => n.name === "node3")
  const pod = inv.pods.find((p) => p.name === "pod-node3-2")
  console.log(JSON.parse(node3.annotations["flannel.alpha.coreos.com/backend-data"]).VtepMAC, node3.internalIP, pod.ip)
')
echo "\$ ip netns exec $name.node1 bridge fdb del $vtep3 dev flannel.1 dst $ip3 self    # break it: node1 forgets where node3's VTEP is"
ip netns exec "$name.node1" bridge fdb del "$vtep3" dev flannel.1 dst "$ip3" self
echo "\$ ip netns exec $name.node1.pod1 ping -n -c 1 -W 1 $podip    # the kernel agrees: nothing gets through"
ip netns exec "$name.node1.pod1" ping -n -c 1 -W 1 "$podip" || true
echo
trace pod-node1-1 pod-node3-2 --lab "$name"
echo
echo "\$ ip netns exec $name.node1 bridge fdb replace $vtep3 dev flannel.1 dst $ip3 self permanent    # the fix"
ip netns exec "$name.node1" bridge fdb replace "$vtep3" dev flannel.1 dst "$ip3" self permanent
echo "\$ ip netns exec $name.node1.pod1 ping -n -q -c 1 -W 2 $podip"
ip netns exec "$name.node1.pod1" ping -n -q -c 1 -W 2 "$podip"
echo
echo "\$ ip netns exec $name.node1 ip route    # what flanneld programs: onlink routes via each peer's VTEP"
ip netns exec "$name.node1" ip route
echo
echo "\$ ip netns exec $name.node1 bridge fdb show dev flannel.1"
ip netns exec "$name.node1" bridge fdb show dev flannel.1
echo
echo "\$ netctl lab down --lab $name"
netctl lab down --lab "$name"
trap - EXIT

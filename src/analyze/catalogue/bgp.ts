/**
 * BGP findings: Calico's BIRD sessions (node-to-node mesh or route
 * reflectors) and the routes they should install.
 */
import type {CatalogueEntry} from './types.js'

export const BGP: CatalogueEntry[] = [
  {
    code: 'BGP_SESSION_DOWN',
    area: 'bgp',
    severity: 'error',
    title: 'BGP session not Established',
    meaning:
      "A BIRD session to a peer is not Established (Idle, Connect, Active, OpenSent), so this node neither learns the peer's pod blocks nor advertises its own to it. Usual causes: TCP 179 blocked, the peer address is wrong (Calico picked another interface), or the AS numbers disagree.",
    symptoms:
      "Pods on new or moved blocks are unreachable between these two nodes; `calicoctl node status` shows the peer not 'Established'.",
    confirm: ['calicoctl node status', 'birdc show protocols all <protocol>', 'ss -tnp'],
    fix: [
      '# BGP runs on TCP 179 between node addresses',
      'iptables -I INPUT -p tcp --dport 179 -s <peerIP> -j ACCEPT',
      'birdc restart <protocol>',
      '# if the address is wrong, fix how calico-node picks it (IP_AUTODETECTION_METHOD)',
    ].join('\n'),
    dispositions: ['NO_ROUTE'],
    related: ['BGP_AS_MISMATCH', 'NODE_IP_MISMATCH', 'BGP_ROUTE_NOT_INSTALLED'],
  },
  {
    code: 'BGP_AS_MISMATCH',
    area: 'bgp',
    severity: 'error',
    title: 'peer AS differs from the one configured',
    meaning:
      'This node expects the peer in one AS but the peer opens the session from another, so BIRD rejects its OPEN ("Bad peer AS") and the session never comes up. Calico nodes use 64512 unless the BGPConfiguration or the node sets another.',
    symptoms: 'The session cycles between Active and OpenSent; BIRD logs "Bad peer AS".',
    confirm: [
      'birdc show protocols all <protocol>',
      'calicoctl get nodes -o wide',
      'calicoctl get bgpconfiguration default -o yaml',
    ],
    fix: [
      '# the peering expects AS <peerAS>, this node runs <localAS>: make them agree',
      'calicoctl get node <peer> -o yaml',
      '# set spec.bgp.asNumber (or remove it to use the cluster default) and calicoctl apply -f the result',
    ].join('\n'),
    dispositions: ['NO_ROUTE'],
    related: ['BGP_SESSION_DOWN'],
  },
  {
    code: 'BGP_ROUTE_NOT_INSTALLED',
    area: 'bgp',
    severity: 'error',
    title: 'BIRD has the route, the kernel does not',
    meaning:
      "BIRD learnt the peer's block over an Established session but the route is not in the kernel's table. The kernel refused it (the next hop is not directly reachable: another subnet without IPIP or VXLAN), an export filter kept it out, or a route from another protocol holds the prefix.",
    symptoms:
      'Sessions are all Established, yet `ip route` lacks some blocks and pods on those blocks are unreachable.',
    confirm: ['birdc show route for <podCIDR> all', 'ip route show <podCIDR>', 'ip route show proto bird'],
    fix: [
      '# BIRD logs why the kernel refused the route',
      'birdc show protocols all',
      '# a next hop on another subnet needs IPIP or VXLAN (CrossSubnet); a route of another protocol in the way:',
      'ip route del <podCIDR>',
    ].join('\n'),
    dispositions: ['NO_ROUTE'],
    related: ['ROUTE_MISSING', 'HOSTGW_NOT_L2_ADJACENT'],
  },
  {
    code: 'BGP_MESH_TOO_LARGE',
    area: 'bgp',
    severity: 'warning',
    title: 'node-to-node mesh beyond ~100 nodes',
    meaning:
      'Every node peers with every other: n−1 sessions per node and n(n−1)/2 in all. Calico advises the full mesh up to about 100 nodes; beyond that BIRD load and convergence time grow fast, and route reflectors keep sessions per node constant.',
    symptoms: 'Slow route convergence after node churn, busy BIRD processes, sessions flapping under load.',
    confirm: ['calicoctl get bgpconfiguration default -o yaml', 'calicoctl node status'],
    fix: [
      '# choose two or three nodes as route reflectors',
      'kubectl label node <node> route-reflector=true',
      '# give them spec.bgp.routeReflectorClusterID, add a BGPPeer that peers all nodes with them, then set nodeToNodeMeshEnabled: false',
    ].join('\n'),
  },
  {
    code: 'RR_CLUSTER_ID_CONFLICT',
    area: 'bgp',
    severity: 'error',
    title: 'route reflectors share a cluster ID wrongly',
    meaning:
      "Route reflectors that do not serve the same clients share one cluster ID. A reflector drops any route whose CLUSTER_LIST already carries its own ID, so routes passed from one such reflector to the other are discarded as loops and their clients miss each other's blocks.",
    symptoms: 'Nodes see the blocks of some nodes but not of others, depending on which reflector they peer with.',
    confirm: ['calicoctl get nodes -o yaml', 'birdc show route all'],
    fix: [
      '# either every client peers with every reflector of cluster <clusterID>, or each reflector group gets its own ID',
      'calicoctl get node <node> -o yaml',
      '# edit spec.bgp.routeReflectorClusterID and calicoctl apply -f the result',
    ].join('\n'),
    dispositions: ['NO_ROUTE'],
  },
  {
    code: 'BGP_PEER_UNKNOWN',
    area: 'bgp',
    severity: 'warning',
    title: 'BGP peer that is no node of the cluster',
    meaning:
      'BIRD has a session to an address that belongs to no current node: a node that was removed without its Calico node object, an old node IP, or a BGPPeer pointing at a wrong address. It never establishes and hides real faults in the status.',
    symptoms:
      '`calicoctl node status` lists a peer that stays Active or Connect and matches no node in `kubectl get nodes -o wide`.',
    confirm: ['calicoctl get nodes -o wide', 'calicoctl get bgppeers -o wide', 'kubectl get nodes -o wide'],
    fix: [
      '# a Calico node object left behind by a removed node',
      'calicoctl delete node <peer>',
      '# or delete the BGPPeer that names <peerIP>',
    ].join('\n'),
    related: ['BGP_SESSION_DOWN'],
  },
]

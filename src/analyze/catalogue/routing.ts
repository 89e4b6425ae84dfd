/**
 * Routing findings: the per-peer routes each backend programs. Flannel vxlan:
 * `<podCIDR> via <vtepIP> dev flannel.1 onlink`; host-gw: `<podCIDR> via <nodeIP>
 * dev <uplink>`; Calico: `<block> via <nodeIP> proto bird` (or dev tunl0 onlink).
 */
import type {CatalogueEntry} from './types.js'

export const ROUTING: CatalogueEntry[] = [
  {
    code: 'ROUTE_MISSING',
    area: 'routing',
    severity: 'error',
    title: "no route to a peer's pod subnet",
    meaning:
      "The node has no route for another node's podCIDR, so packets to those pods take the default route: out the uplink unencapsulated, where nothing knows the pod network. The agent never programmed it, or lost it when a device went down.",
    symptoms:
      'Pods on this node cannot reach the pods of one peer; `ip route get` to such a pod shows the default gateway.',
    confirm: ['ip route show <podCIDR>', 'ip route get <dstIP>'],
    fix: [
      "# the route the backend programs for <peer>'s pods",
      'ip route replace <podCIDR> via <nexthop> dev <dev> onlink',
      '# Calico: BIRD installs these; see BGP_ROUTE_NOT_INSTALLED and BGP_SESSION_DOWN instead',
    ].join('\n'),
    dispositions: ['NO_ROUTE'],
    related: ['TUNNEL_DEVICE_MISSING', 'BGP_ROUTE_NOT_INSTALLED'],
  },
  {
    code: 'ROUTE_STALE',
    area: 'routing',
    severity: 'warning',
    title: 'route for a pod subnet no node owns',
    meaning:
      'A route remains for a podCIDR that belongs to no current node, or points at a node that has left. When the subnet is handed to a new node, traffic to its pods still follows the old route.',
    symptoms: "A newly joined node's pods are unreachable from some nodes only.",
    confirm: ['ip route show <podCIDR>', 'kubectl get nodes -o custom-columns=NAME:.metadata.name,CIDR:.spec.podCIDR'],
    fix: [
      'ip route del <podCIDR>',
      '# remove the departed VTEP too, if there was one',
      'ip neigh del <vtepIP> dev <dev>',
      'bridge fdb del <staleMAC> dev <dev>',
    ].join('\n'),
    related: ['FDB_STALE', 'ROUTE_WRONG_NEXTHOP'],
  },
  {
    code: 'ROUTE_WRONG_NEXTHOP',
    area: 'routing',
    severity: 'error',
    title: 'route to a pod subnet uses the wrong next hop',
    meaning:
      "The route for a peer's podCIDR exists but goes via a next hop or device that does not lead to that peer: another node's address or VTEP, or the uplink instead of the tunnel. The packet reaches a node that does not own the pods and is dropped there or sent back.",
    symptoms:
      "Traffic to one peer's pods fails or shows up on a third node; traceroute from a pod shows an unexpected node.",
    confirm: ['ip route get <dstIP>', 'kubectl get nodes -o wide'],
    fix: 'ip route replace <podCIDR> via <nexthop> dev <dev> onlink',
    dispositions: ['LOOP', 'NO_ROUTE'],
    related: ['ROUTE_STALE', 'NODE_IP_MISMATCH'],
  },
  {
    code: 'BLACKHOLE_ROUTE',
    area: 'routing',
    severity: 'error',
    title: 'a blackhole route swallows the destination',
    meaning:
      'A blackhole, unreachable or prohibit route is the longest match for the destination. Calico installs `blackhole <block>` for its own IPAM blocks on purpose; it is a fault when it covers an address that lives on another node (a borrowed address or a block with two owners).',
    symptoms:
      'Traffic to some pods is dropped on the sending node itself; unreachable routes answer with an ICMP error.',
    confirm: ['ip route show type blackhole', 'ip route get <dstIP>', 'calicoctl ipam check'],
    fix: [
      "# if the block <podCIDR> is not this node's, remove the blackhole and fix the block ownership",
      'ip route del blackhole <podCIDR>',
      'calicoctl ipam show --show-blocks',
    ].join('\n'),
    dispositions: ['BLACKHOLE'],
    related: ['PODCIDR_OVERLAP', 'PODCIDR_DUPLICATE'],
  },
  {
    code: 'HOSTGW_NOT_L2_ADJACENT',
    area: 'routing',
    severity: 'error',
    title: 'host-gw between nodes on different subnets',
    meaning:
      "Flannel host-gw routes each peer's podCIDR via the peer's node IP on the uplink, which only works when every node pair shares one L2 segment. Across a router the kernel refuses the route (the gateway is not directly reachable), or the next hop never resolves.",
    symptoms: 'Pods reach pods on nodes in the same subnet only; flanneld logs route errors for the others.',
    confirm: ['ip route get <peerIP>', 'ip route show <podCIDR>'],
    fix: [
      '# host-gw cannot cross an L3 hop: keep an encapsulating backend, or put the nodes on one L2 segment',
      'netctl backend set flannel-vxlan',
      '# (Calico: calico-vxlan-crosssubnet or calico-ipip-crosssubnet encapsulate only across subnets)',
    ].join('\n'),
    dispositions: ['NO_ROUTE', 'NEIGHBOR_UNRESOLVED'],
    related: ['ROUTE_MISSING'],
  },
  {
    code: 'ASYMMETRIC_PATH',
    area: 'routing',
    severity: 'warning',
    title: 'the reply takes another path than the request',
    meaning:
      'The return walk leaves by other interfaces (or another tunnel) than the forward walk came in by. That alone delivers, but strict rp_filter drops it, and stateful firewalls that see only one half mark the flow INVALID.',
    symptoms:
      'Pings may work while TCP connections reset or hang; drops move when rp_filter or conntrack settings change.',
    confirm: ['ip route get <dstIP> from <srcIP> iif <dev>', 'ip route get <srcIP>'],
    fix: [
      '# make both directions take the same kind of path (one backend, one CrossSubnet choice on every node)',
      '# or relax the check it trips over',
      'sysctl -w net/ipv4/conf/<dev>/rp_filter=2',
    ].join('\n'),
    dispositions: ['RP_FILTER_DROP', 'DENIED'],
    related: ['RP_FILTER_ASYMMETRIC'],
  },
]

/**
 * Overlay findings: the vxlan / udp tunnel state each node programs per peer.
 * Flannel vxlan, per remote node: route `<podCIDR> via <vtepIP> dev flannel.1 onlink`,
 * PERMANENT neigh `<vtepIP> lladdr <VtepMAC>`, FDB `<VtepMAC> dst <nodeIP> self permanent`.
 * Calico vxlan keeps the same three on vxlan.calico.
 */
import type {CatalogueEntry} from './types.js'

const FLANNEL_RESTART = 'kubectl -n kube-flannel delete pod -l app=flannel --field-selector spec.nodeName=<node>'

/** ENCAP_PORT_BLOCKED's fix where ufw drops the overlay: its own command, which survives ufw's reloads. */
export const UFW_ENCAP_FIX = [
  '# ufw drops it on <node>: allow the overlay from the other nodes (and in any cloud security group between them)',
  'ufw allow proto udp from <peerIP> to any port <port>',
].join('\n')

/**
 * ENCAP_PORT_BLOCKED's fix when the node's own nftables table drops the overlay (the entry's is iptables'):
 * firewalld's command where firewalld owns the table, else nft's, ahead of the rule that drops it.
 */
export function nftEncapFix(family: string, table: string): string {
  return (
    family === 'inet' && table === 'firewalld'
      ? [
          "# firewalld's <chain> blocks it on <node>: open the overlay's port (and in any cloud security group between the nodes)",
          'firewall-cmd --permanent --add-port=<port>/udp',
          'firewall-cmd --reload',
        ]
      : [
          '# <family> <nftTable> chain <chain> blocks it on <node>: accept the overlay from the other nodes first',
          'nft insert rule <family> <nftTable> <chain> ip saddr <peerIP> udp dport <port> accept',
        ]
  ).join('\n')
}

export const OVERLAY: CatalogueEntry[] = [
  {
    code: 'FDB_MISSING',
    area: 'overlay',
    severity: 'error',
    title: 'no FDB entry for a peer VTEP',
    meaning:
      "The vxlan device has no forwarding entry telling it which underlay address owns a peer's VTEP MAC. Flannel and Calico create the device with learning off, so nothing fills the gap: frames for that peer have no outer destination and are dropped.",
    symptoms:
      'Pods on this node cannot reach pods on one peer (or all peers); the neighbour entry and the route look fine.',
    confirm: [
      'bridge fdb show dev <dev>',
      "kubectl get node <peer> -o jsonpath='{.metadata.annotations.flannel\\.alpha\\.coreos\\.com/backend-data}'",
    ],
    fix: [
      '# add the entry the agent should have programmed for <peer> (<peerIP>)',
      'bridge fdb replace <vtepMAC> dev <dev> dst <peerIP> self permanent',
      '# then find out why the agent lost it: restart flanneld on <node> and read its log',
      FLANNEL_RESTART,
    ].join('\n'),
    dispositions: ['FDB_MISS'],
    related: ['NEIGH_MISSING', 'VTEP_MAC_MISMATCH'],
  },
  {
    code: 'FDB_STALE',
    area: 'overlay',
    severity: 'error',
    title: 'FDB entry points at the wrong node',
    meaning:
      'A VTEP MAC is mapped to an underlay address that is no longer the peer that owns it: the node was replaced or changed its IP, or the MAC belongs to no live node. The encapsulated frame goes to the old address and is lost there.',
    symptoms:
      'One peer is unreachable from this node only; a capture shows vxlan packets leaving towards an address that is not the peer.',
    confirm: ['bridge fdb show dev <dev>', 'kubectl get nodes -o wide'],
    fix: [
      '# drop the entry that sends <vtepMAC> to <staleIP>, then point it at <peer>',
      'bridge fdb del <vtepMAC> dev <dev> dst <staleIP>',
      'bridge fdb replace <vtepMAC> dev <dev> dst <peerIP> self permanent',
    ].join('\n'),
    dispositions: ['FDB_MISS'],
    related: ['FDB_MISSING', 'NODE_IP_MISMATCH'],
  },
  {
    code: 'NEIGH_MISSING',
    area: 'overlay',
    severity: 'error',
    title: "no neighbour entry for a peer's VTEP address",
    meaning:
      "The route to a peer's pods goes via the peer's VTEP address on the vxlan device, but there is no neighbour entry giving its MAC. The kernel then ARPs on the vxlan device, where no flood entry carries the request to anyone, so the lookup stays INCOMPLETE and the packet is dropped.",
    symptoms: "`ip neigh` shows the VTEP address INCOMPLETE or FAILED; pings to that peer's pods get no answer.",
    confirm: ['ip neigh show dev <dev>', 'ip route get <dstIP>'],
    fix: [
      "# the VTEP MAC is in <peer>'s flannel.alpha.coreos.com/backend-data annotation",
      'ip neigh replace <vtepIP> lladdr <vtepMAC> dev <dev> nud permanent',
    ].join('\n'),
    dispositions: ['NEIGHBOR_UNRESOLVED'],
    related: ['FDB_MISSING', 'NEIGH_NOT_PERMANENT'],
  },
  {
    code: 'NEIGH_NOT_PERMANENT',
    area: 'overlay',
    severity: 'warning',
    title: 'VTEP neighbour entry is not PERMANENT',
    meaning:
      "The neighbour entry for a peer's VTEP address exists but in a dynamic state (REACHABLE, STALE, DELAY) instead of PERMANENT. Someone added it by hand or the kernel learnt it; it can age out, and nothing on the vxlan device will resolve it again.",
    symptoms: 'Traffic to one peer works, then stops minutes later and comes back only when the agent restarts.',
    confirm: ['ip -d neigh show dev <dev>'],
    fix: 'ip neigh replace <vtepIP> lladdr <vtepMAC> dev <dev> nud permanent',
    dispositions: ['NEIGHBOR_UNRESOLVED'],
    related: ['NEIGH_MISSING'],
  },
  {
    code: 'VTEP_MAC_MISMATCH',
    area: 'overlay',
    severity: 'error',
    title: 'programmed VTEP MAC differs from the peer device',
    meaning:
      "The MAC this node uses for a peer (neighbour lladdr, FDB entry) is not the MAC of the peer's vxlan device, or not the one in the peer's backend-data annotation. It happens when the peer recreated its device and the change never reached this node. The receiver drops frames whose inner destination MAC is not its own.",
    symptoms: 'Encapsulated packets reach the peer (visible on its uplink) but nothing comes out of its vxlan device.',
    confirm: [
      'ip neigh show dev <dev>',
      'bridge fdb show dev <dev>',
      "kubectl get node <peer> -o jsonpath='{.metadata.annotations.flannel\\.alpha\\.coreos\\.com/backend-data}'",
    ],
    fix: [
      '# replace <staleMAC> with the MAC <peer> really has (if its annotation is out of date, restart flanneld on <peer> first)',
      'ip neigh replace <vtepIP> lladdr <vtepMAC> dev <dev> nud permanent',
      'bridge fdb del <staleMAC> dev <dev>',
      'bridge fdb replace <vtepMAC> dev <dev> dst <peerIP> self permanent',
    ].join('\n'),
    dispositions: ['DECAP_REJECTED'],
    related: ['FDB_STALE', 'NEIGH_MISSING'],
  },
  {
    code: 'VXLAN_PORT_MISMATCH',
    area: 'overlay',
    severity: 'error',
    title: 'vxlan UDP port differs between nodes',
    meaning:
      "Nodes send vxlan on different UDP ports: flannel uses 8472 (also the kernel's default), Calico's vxlan.calico uses 4789. A receiver only decapsulates on the port its own device listens on, so packets to any other port are refused.",
    symptoms:
      'Cross-node pod traffic fails in one or both directions; the receiver answers ICMP port unreachable to the sending node.',
    confirm: ['ip -d link show <dev>', 'ss -ulpn'],
    fix: [
      '# use one port everywhere (<port>): flannel net-conf.json Backend.Port, Calico FelixConfiguration vxlanPort',
      'kubectl -n kube-flannel get configmap kube-flannel-cfg -o yaml',
      '# the device keeps its port until it is recreated: delete it and restart the agent on <node>',
      'ip link delete <dev>',
    ].join('\n'),
    dispositions: ['DECAP_REJECTED'],
    related: ['VNI_MISMATCH', 'ENCAP_PORT_BLOCKED'],
  },
  {
    code: 'VNI_MISMATCH',
    area: 'overlay',
    severity: 'error',
    title: 'vxlan VNI differs between nodes',
    meaning:
      'The VXLAN network identifier differs: flannel uses VNI 1 (its device is named flannel.<VNI>), Calico uses 4096. The receiver accepts only frames whose VNI matches one of its own vxlan devices on that port and drops the rest silently.',
    symptoms: "Encapsulated packets arrive on the peer's uplink and vanish; no ICMP error comes back.",
    confirm: ['ip -d link show type vxlan'],
    fix: [
      '# make the VNI <vni> on every node (flannel net-conf.json Backend.VNI, Calico FelixConfiguration vxlanVNI), then recreate the device',
      'ip link delete <dev>',
      FLANNEL_RESTART,
    ].join('\n'),
    dispositions: ['DECAP_REJECTED'],
    related: ['VXLAN_PORT_MISMATCH'],
  },
  {
    code: 'TUNNEL_DEVICE_MISSING',
    area: 'overlay',
    severity: 'error',
    title: 'tunnel device absent',
    meaning:
      'The device the backend needs is not there: flannel.1 (flannel vxlan), flannel0 (flannel udp), vxlan.calico or tunl0 (Calico). Without it the per-peer routes cannot exist; usually the agent is not running, failed at start, or the backend was changed half way.',
    symptoms: 'This node reaches no pod on another node; routes to other podCIDRs are missing or point at nothing.',
    confirm: ['ip -d link show <dev>', 'kubectl get pods -A -o wide --field-selector spec.nodeName=<node>'],
    fix: ['# restart the network agent on <node> and read why it did not create <dev>', FLANNEL_RESTART].join('\n'),
    dispositions: ['NO_ROUTE'],
    related: ['TUNNEL_DEVICE_DOWN', 'ROUTE_MISSING'],
  },
  {
    code: 'TUNNEL_DEVICE_DOWN',
    area: 'overlay',
    severity: 'error',
    title: 'tunnel device is down',
    meaning:
      'The tunnel device exists but is not UP, so the kernel removes the routes through it and refuses to send on it. Someone set it down, or the agent stopped half way through configuring it.',
    symptoms: '`ip link` shows the device without UP (state DOWN); pods reach only pods on their own node.',
    confirm: ['ip link show <dev>', 'ip route show dev <dev>'],
    fix: [
      'ip link set <dev> up',
      '# the agent re-adds the routes the kernel removed when the device went down',
      FLANNEL_RESTART,
    ].join('\n'),
    dispositions: ['NO_ROUTE'],
    related: ['TUNNEL_DEVICE_MISSING', 'LINK_DOWN'],
  },
  {
    code: 'ENCAP_PORT_BLOCKED',
    area: 'overlay',
    severity: 'error',
    title: 'firewall drops the encapsulated traffic',
    meaning:
      'A firewall between or on the nodes drops the overlay itself: UDP 8472 (flannel vxlan), 4789 (Calico vxlan), 8285 (flannel udp) or IP protocol 4 (Calico IPIP). Node-to-node traffic works, so the fault hides until pods talk across nodes.',
    symptoms:
      'Pods reach pods on their own node only; nodes ping each other fine; captures show encapsulated packets leaving and never arriving.',
    confirm: ['iptables-save -t filter', 'nft list ruleset', 'tcpdump -ni any udp port <port>'],
    fix: [
      '# accept the overlay from the other nodes on <node> (and in any cloud security group between them)',
      'iptables -I INPUT -p udp --dport <port> -s <peerIP> -j ACCEPT',
      '# for Calico IPIP: iptables -I INPUT -p 4 -s <peerIP> -j ACCEPT',
    ].join('\n'),
    dispositions: ['DENIED'],
    related: ['FIREWALL_DROP', 'VXLAN_PORT_MISMATCH'],
  },
  {
    code: 'VXLAN_CSUM_OFFLOAD',
    area: 'overlay',
    severity: 'warning',
    title: 'vxlan TX checksum offload on an affected kernel',
    meaning:
      'The vxlan device leaves the outer UDP checksum to offload, and on some kernel, driver or NAT combinations it goes out wrong. The receiver drops the packet as a bad checksum; retransmits fail the same way.',
    symptoms:
      'Connections through Services stall for about 63 seconds (SYN retransmits) while pod-IP pings work; the receiver logs "UDP: bad checksum".',
    confirm: ['ethtool -k <dev>', 'dmesg'],
    fix: [
      'ethtool -K <dev> tx-checksum-ip-generic off',
      '# keep it across reboots: a udev rule for <dev>; Calico: FelixConfiguration featureDetectOverride ChecksumOffloadBroken=true',
    ].join('\n'),
    dispositions: ['DECAP_REJECTED'],
  },
  {
    code: 'UDP_DAEMON_DOWN',
    area: 'overlay',
    severity: 'error',
    title: 'flannel udp forwarder not running',
    meaning:
      "With flannel's udp backend, flanneld itself reads each packet from the flannel0 TUN device and sends it to the peer in UDP 8285. If flanneld is not running or not bound to 8285, the sender's packets die in flannel0 and the receiver has no socket to take them.",
    symptoms: 'All cross-node pod traffic stops at once; flannel0 still exists with its route.',
    confirm: ['ss -ulpn', 'ip -d link show flannel0', 'ip route show dev flannel0'],
    fix: [
      FLANNEL_RESTART,
      '# udp copies every packet through userspace; vxlan or host-gw do the same in the kernel',
    ].join('\n'),
    dispositions: ['BLACKHOLE', 'DECAP_REJECTED'],
    related: ['TUNNEL_DEVICE_MISSING'],
  },
]

/**
 * What each trace disposition means. The finding codes that lead to each
 * are not listed here: index.ts derives them from the entries' dispositions.
 */
import type {Disposition} from '../../model/trace.js'

export const DISPOSITION_TEXT: Record<Disposition, {summary: string; explanation: string}> = {
  DELIVERED: {
    summary: 'the packet reached the destination address',
    explanation:
      'Every hop found a way on and a local address of the destination namespace took the packet. With a return path, the reply was walked too; a delivered trace can still carry warnings.',
  },
  NO_ROUTE: {
    summary: 'no route matched the destination',
    explanation:
      'A FIB lookup (policy rules, then longest prefix) found nothing for the destination, or only a route through a device that is down. The hop names the table it searched; look for the missing per-peer route and why the agent did not program it.',
  },
  BLACKHOLE: {
    summary: 'a blackhole, unreachable or prohibit route took the packet',
    explanation:
      "The longest match was a route that discards: Calico's blackhole for its own IPAM blocks, a hand-made unreachable, or a device that swallows packets (flannel0 with no flanneld reading it). The evidence is the route line.",
  },
  NEIGHBOR_UNRESOLVED: {
    summary: 'the next hop has no usable neighbour entry, or a bridge cannot send the frame to it',
    explanation:
      "The route chose a next hop but there is no MAC for it: INCOMPLETE or FAILED, or, on a vxlan device, no PERMANENT entry for the peer's VTEP address. An ARP request on a vxlan device with no flood entry reaches nobody, so the agent must program it. A bridge that holds the MAC behind the port the frame came in by does not send it back out there unless that port has hairpin on (a pod reaching itself through a Service, with br_netfilter on: HAIRPIN_OFF).",
  },
  FDB_MISS: {
    summary: 'the vxlan device does not know where to send the frame',
    explanation:
      "The frame's destination MAC (a peer's VTEP) has no FDB entry naming an underlay address, and learning is off, so the device drops it. Compare `bridge fdb show dev flannel.1` with the peer's backend-data annotation.",
  },
  DECAP_REJECTED: {
    summary: 'the receiver refused the encapsulated packet',
    explanation:
      'The outer packet arrived but the receiving node would not unwrap it: no vxlan device on that UDP port, another VNI, an inner destination MAC that is not its own, a bad checksum, or no flannel udp daemon on 8285. The hop names which.',
  },
  DENIED: {
    summary: 'a firewall rule or a NetworkPolicy dropped the packet, or the receiver refused it',
    explanation:
      "An iptables or nftables rule (a chain policy, a DROP or REJECT) or a NetworkPolicy decided against the packet. The evidence is the table, chain and rule line that matched. On a return path it can also be the source's own stack refusing a reply that does not come from where it sent the request (a translation conntrack never undid, e.g. a reply bridged past a node with br_netfilter off): TCP resets it, UDP drops it. kube-proxy's own REJECT or DROP for a Service without endpoints (or without one on the node, under a Local traffic policy) is SERVICE_NO_ENDPOINTS: the Service is the cause, and kube-proxy writes its rule again if deleted.",
  },
  FORWARDING_DISABLED: {
    summary: 'a node had to route the packet with forwarding off',
    explanation:
      'The packet needed to cross a node from one interface to another, and net.ipv4.ip_forward (or the interface forwarding switch) is 0 there, so the kernel dropped it.',
  },
  RP_FILTER_DROP: {
    summary: 'reverse-path filtering dropped the packet as spoofed',
    explanation:
      'The packet came in on an interface other than the one the route back to its source would use, and rp_filter there is strict (the effective value is max(all, interface)). `ip route get DST from SRC iif DEV` shows the same refusal.',
  },
  MTU_EXCEEDED: {
    summary: 'the packet is larger than a link on the path allows',
    explanation:
      'With DF set, the packet (outer headers included, after encapsulation) exceeds the MTU of an outgoing device. The kernel sends ICMP fragmentation-needed, which may never reach the sender through the overlay.',
  },
  LOOP: {
    summary: 'the packet came back to a hop it had already passed',
    explanation:
      'The walk revisited a node and interface with the same packet, or the TTL ran out: two nodes route the destination to each other, usually because a route points at the wrong next hop.',
  },
  INSUFFICIENT_INFO: {
    summary: 'the snapshot lacks what the next decision needs',
    explanation:
      'netctl stops rather than guess: a node was unreachable, a probe section failed, or a table (iptables, FDB, BGP) was not collected. The trace lists what was missing; collect it and trace again.',
  },
  UNDERLAY_DROP: {
    summary: 'the real packet left one node and never reached the next (trace --probe)',
    explanation:
      "Only `trace --probe` ends here: the walk delivers, but the packet sent for real was counted leaving the sending node's uplink and never arriving on the receiving node's. The network between the nodes drops it; the finding names the two node addresses and the encapsulation that must pass.",
  },
}

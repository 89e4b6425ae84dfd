/**
 * MTU findings. Overheads over the underlay MTU: vxlan 50 bytes (outer IPv4 20
 * + UDP 8 + VXLAN 8 + inner Ethernet 14), IPIP 20, flannel udp 28 (IPv4 + UDP).
 */
import type {CatalogueEntry} from './types.js'

export const MTU: CatalogueEntry[] = [
  {
    code: 'MTU_MISMATCH',
    area: 'mtu',
    severity: 'warning',
    title: 'MTUs disagree along the pod path',
    meaning:
      'Devices on one path have different MTUs: a pod\'s eth0 or cni0 above the tunnel device, or the tunnel device sized differently on two nodes. A full-size packet with DF set is refused at the smallest link, and if the ICMP "fragmentation needed" does not make it back the sender never learns.',
    symptoms:
      'Pings and small requests work; large transfers (TLS handshakes, big responses, image pulls through a pod proxy) hang.',
    confirm: ['ip link show <dev>', 'ping -M do -s 1400 -c 1 <dstIP>'],
    fix: [
      'ip link set <dev> mtu <mtu>',
      '# pods keep the MTU they were created with: fix the CNI config (flannel derives it from the uplink; Calico FelixConfiguration vxlanMTU / ipipMTU) and recreate the pods',
    ].join('\n'),
    dispositions: ['MTU_EXCEEDED'],
    related: ['MTU_EXCEEDS_ENCAP'],
  },
  {
    code: 'MTU_EXCEEDS_ENCAP',
    area: 'mtu',
    severity: 'error',
    title: 'tunnel MTU leaves no room for encapsulation',
    meaning:
      'The tunnel device MTU plus its encapsulation overhead is larger than the underlay MTU: vxlan needs 50 bytes (MTU − 50), IPIP 20 (MTU − 20), flannel udp 28. A full-size pod packet, once wrapped, no longer fits the uplink: it is fragmented at best and dropped at worst (DF set, or an underlay that drops fragments).',
    symptoms:
      'Small packets cross nodes, full-size ones do not; throughput collapses or connections stall after the handshake.',
    confirm: ['ip -d link show <dev>', 'ip link show', 'ping -M do -s 1472 -c 1 <peerIP>'],
    fix: [
      '# <mtu> = underlay MTU − overhead (vxlan 50, IPIP 20, udp 28)',
      'ip link set <dev> mtu <mtu>',
      '# then set the same in the CNI config so new pods get it, and recreate the pods',
    ].join('\n'),
    dispositions: ['MTU_EXCEEDED'],
    related: ['MTU_MISMATCH'],
  },
]

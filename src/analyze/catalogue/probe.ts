/**
 * What `trace --probe` finds: where the real packet and the walk part. The
 * walk cannot see the underlay between nodes (routers, security groups), and
 * a model can be wrong; the probe's counters say which of the two it is.
 */
import type {CatalogueEntry} from './types.js'

export const PROBE: CatalogueEntry[] = [
  {
    code: 'UNDERLAY_DROP',
    area: 'probe',
    severity: 'error',
    title: 'the underlay between two nodes drops the pod traffic',
    meaning:
      "Every node's state delivers the packet, and the real packet left the sending node's uplink, but the receiving node's uplink never counted it (or the sending uplink counted it as dropped on its way out): something between the nodes (a router, a firewall appliance, a cloud security group or network ACL, a switch or bridge port) drops the encapsulation. When a lost DF ping passes at 84 bytes, it is the size: a link between the nodes has a lower MTU than the nodes' uplinks, and the finding says so. No node shows it; only a real packet does.",
    symptoms:
      'Pods on the same node reach each other, pods on different nodes (or on these two) do not; netctl trace alone says DELIVERED.',
    confirm: ['tcpdump -ni any <capture>', 'ip -s link show <dev>'],
    fix: [
      '# allow <encap> from <nodeIP> to <peerIP> and back in every firewall, router ACL and security group between the two nodes, and check that every router and switch port on the way is up',
      '# then watch it arrive here on <peer> while the pods ping (nothing here means the underlay still drops it)',
      'tcpdump -ni any <capture>',
    ].join('\n'),
    dispositions: ['UNDERLAY_DROP'],
    related: ['ENCAP_PORT_BLOCKED', 'HOSTGW_NOT_L2_ADJACENT', 'MODEL_DISAGREES'],
  },
  {
    code: 'MODEL_DISAGREES',
    area: 'probe',
    severity: 'error',
    title: "netctl's walk and the real packet disagree",
    meaning:
      "The walk over the collected state and a real packet sent from the source pod ended differently, and not in the underlay: netctl's model of this dataplane is wrong or blind here. Neither answer can be trusted until the difference is understood; the evidence is the hop where they part (or the drop rule whose counter rose while the walk said the packet passes), the counters, and netctl's version.",
    symptoms:
      'trace says one thing (DELIVERED, or a drop at some hop), ping or a connection between the same pods says another.',
    confirm: ['netctl version'],
    fix: [
      "# report it to netctl with this trace's JSON (the same command with --json) and netctl version: the model has a blind spot here",
      'netctl version',
    ].join('\n'),
    related: ['UNDERLAY_DROP'],
  },
]

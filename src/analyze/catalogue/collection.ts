/**
 * Collection findings: what netctl itself could not read. Analysis goes on
 * without it and says INSUFFICIENT_INFO where the missing state mattered.
 */
import type {CatalogueEntry} from './types.js'

export const COLLECTION: CatalogueEntry[] = [
  {
    code: 'NODE_UNREACHABLE',
    area: 'collection',
    severity: 'error',
    title: 'netctl could not reach the node',
    meaning:
      'The probe never ran on this node: ssh failed or timed out, or the debug pod could not be scheduled or exec into. The rest of the cluster is still analysed, but every hop on this node is unknown, so a trace through it ends in INSUFFICIENT_INFO.',
    symptoms: 'The run reports the node as unreachable and exits 3; traces through it stop there.',
    confirm: ['kubectl get node <node> -o wide', 'ssh <nodeIP> true'],
    fix: [
      '# check the node is Ready and that ssh (keys, ProxyJump, known_hosts) or the debug pod works for it',
      'kubectl describe node <node>',
      '# or reach it the other way (ssh vs a privileged debug pod) and run again',
    ].join('\n'),
    dispositions: ['INSUFFICIENT_INFO'],
    related: ['COLLECTION_PARTIAL'],
  },
  {
    code: 'COLLECTION_PARTIAL',
    area: 'collection',
    severity: 'warning',
    title: 'part of the node state could not be read',
    meaning:
      "The probe ran, but some sections failed: a tool is missing (bridge, nft, iptables-save, birdc), too old for JSON output, or not permitted. Checks that need those sections are skipped on this node, and the evidence lists what failed and why.",
    symptoms: 'Fewer findings than expected for the node; traces through it may end in INSUFFICIENT_INFO.',
    confirm: ['ip -V', 'command -v bridge nft iptables-save birdc ethtool'],
    fix: [
      '# install the missing tools (iproute2 with JSON output, nftables, iptables) or run the probe as root',
      'id -u',
    ].join('\n'),
    dispositions: ['INSUFFICIENT_INFO'],
    related: ['NODE_UNREACHABLE'],
  },
]
